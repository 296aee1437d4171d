"""``lslo serve`` as a user runs it: a trained tiny run, a real process on a free port, real clients.

- concurrent requests of every direction give exactly what ``model.translate`` gives each alone;
- the libretranslatepy package (a third-party LibreTranslate client) works unchanged;
- SIGTERM finishes the queued requests and exits 0;
- the web page translates in a real headless browser (Debian's chromium), with a screenshot.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import segments, write_run_config

from lslo.cli.main import main
from lslo.serving.server import free_port

KEY = "k-123"
LANGS = ("en", "fr", "ha")
DIRECTIONS = [(s, t) for s in LANGS for t in LANGS if s != t]


@pytest.fixture(scope="module")
def run(m2m_dir, flores_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    cfg = write_run_config(tmp / "c.yaml", m2m_dir, flores_dir, tmp / "run", epochs=1, langs=LANGS)
    assert main(["train", str(cfg), "--quiet"]) == 0
    return tmp / "run"


def start(run, *extra, env=None):
    port = free_port()
    cmd = [sys.executable, "-m", "lslo.cli.main", "serve", str(run), "--port", str(port), "--beam", "2",
           "--max-new-tokens", "8", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"lslo serve exited {proc.returncode}: {proc.stdout.read()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("lslo serve did not come up")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def server(run):
    proc, url = start(run, "--max-wait-ms", "200", env={"LSLO_API_KEY": KEY})
    yield url
    stop(proc)


def concurrently(calls):
    barrier = threading.Barrier(len(calls))
    out = [None] * len(calls)

    def go(i, fn):
        barrier.wait()
        out[i] = fn()

    threads = [threading.Thread(target=go, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def test_concurrent_mixed_directions_equal_translating_each_request_alone(run, server):
    from lslo.training import load_run

    requests = []
    for k, (s, t) in enumerate(DIRECTIONS * 2):
        q = segments(s, 1 + k % 3, offset=k)
        requests.append({"q": q if k % 2 else q[0], "source": s, "target": t, "api_key": KEY})
    answers = concurrently([lambda b=b: httpx.post(server + "/translate", json=b, timeout=120) for b in requests])
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]

    _, model = load_run(run, checkpoint="best")
    for body, answer in zip(requests, answers):
        q = body["q"] if isinstance(body["q"], list) else [body["q"]]
        alone = model.translate(q, [body["source"]] * len(q), [body["target"]] * len(q), num_beams=2,
                                max_new_tokens=8, length_penalty=1.0)
        got = answer.json()["translatedText"]
        assert (got if isinstance(body["q"], list) else [got]) == alone

    metrics = httpx.get(server + "/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    # at least one generation call held more than one direction: the batches really mixed
    single = next(line for line in metrics.splitlines() if line.startswith('lslo_batch_directions_bucket{le="1.0"}'))
    count = next(line for line in metrics.splitlines() if line.startswith("lslo_batch_directions_count"))
    assert float(single.split()[-1]) < float(count.split()[-1]), metrics


def test_libretranslatepy_client_works_unchanged(server):
    from libretranslatepy import LibreTranslateAPI

    lt = LibreTranslateAPI(server, api_key=KEY)
    codes = [lang["code"] for lang in lt.languages()]
    assert codes == list(LANGS)
    text = segments("en", 1)[0]
    assert lt.translate(text, "en", "fr") == httpx.post(
        server + "/translate", json={"q": text, "source": "en", "target": "fr", "api_key": KEY}).json()["translatedText"]
    with pytest.raises(Exception, match="401"):
        LibreTranslateAPI(server, api_key="nope").translate(text, "en", "fr")


def test_sigterm_drains_queued_requests_and_exits_0(run):
    proc, url = start(run, "--max-wait-ms", "1500")  # the first batch waits 1.5 s: requests pile up
    bodies = [{"q": segments(s, 2, offset=i), "source": s, "target": t} for i, (s, t) in enumerate(DIRECTIONS)]
    answers = [None] * len(bodies)

    def call(i):
        answers[i] = httpx.post(url + "/translate", json=bodies[i], timeout=120)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(120)
    assert proc.wait(60) == 0, proc.stdout.read()
    assert [a.status_code for a in answers] == [200] * len(bodies)
    assert all(len(a.json()["translatedText"]) == 2 for a in answers)
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/health", timeout=2)


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("no headless browser here: `make test` installs Debian's chromium and chromium-driver "
                    "(apt-get, as root); this machine has " + ("no chromium" if not chromium else "no chromedriver"))
    return chromium, driver


def test_web_page_translates_in_a_headless_browser(server, tmp_path):
    chromium, driver = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1000,700"):
        opts.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=opts)
    try:
        browser.get(server + "/")
        wait = WebDriverWait(browser, 60)
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#target option")) == len(LANGS))
        assert browser.find_element(By.ID, "apikey").is_displayed()  # the server asks for a key
        Select(browser.find_element(By.ID, "source")).select_by_value("en")
        Select(browser.find_element(By.ID, "target")).select_by_value("fr")
        text = segments("en", 1)[0]
        browser.find_element(By.ID, "input").send_keys(text)
        browser.find_element(By.ID, "apikey").send_keys(KEY)
        browser.find_element(By.ID, "go").click()
        wait.until(lambda b: b.find_element(By.ID, "output").text.strip() or b.find_element(By.ID, "error").text)
        assert browser.find_element(By.ID, "error").text == ""
        expected = httpx.post(server + "/translate",
                              json={"q": text, "source": "en", "target": "fr", "api_key": KEY}).json()
        assert browser.find_element(By.ID, "output").text.strip() == expected["translatedText"].strip()
        shot = Path(tmp_path) / "serve-page.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 5000
        # a wrong key shows the server's error on the page
        browser.find_element(By.ID, "apikey").clear()
        browser.find_element(By.ID, "apikey").send_keys("wrong")
        browser.find_element(By.ID, "go").click()
        wait.until(lambda b: b.find_element(By.ID, "error").text)
        assert "api_key" in browser.find_element(By.ID, "error").text
        assert browser.find_element(By.ID, "output").text == ""  # the previous translation is gone
    finally:
        browser.quit()
