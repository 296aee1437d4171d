"""``lslo serve`` as a user runs it: a trained tiny run, a real process on a free port, real clients.

- concurrent requests of every direction give exactly what ``model.translate`` gives each alone;
- real third-party LibreTranslate clients, pinned dev dependencies, work unchanged: libretranslatepy,
  libretranslate-aio (sync and async), deep-translator's LibreTranslator, and Dialect's request
  sequence replayed (Dialect is a GNOME app, not importable here);
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
LANGS = ("en", "fr", "de")  # languages lingua detects (it lacks Hausa)
EN = "The children are playing in the park this afternoon."
FR = "Les enfants jouent dans le parc cet après-midi."
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

    from lslo.serving.segment import layout, make_splitter

    _, model = load_run(run, checkpoint="best")
    split = make_splitter("sentencex")
    for body, answer in zip(requests, answers):
        q = body["q"] if isinstance(body["q"], list) else [body["q"]]
        alone = []
        for text in q:  # each text's sentences translated on their own, put back with their spaces
            lay = layout(text, body["source"], split)
            assert len(lay.sentences) == 2  # conftest's segments are two sentences each
            alone.append(lay.fill(model.translate(lay.sentences, [body["source"]] * 2, [body["target"]] * 2,
                                                  num_beams=2, max_new_tokens=8, length_penalty=1.0)))
        got = answer.json()["translatedText"]
        assert (got if isinstance(body["q"], list) else [got]) == alone

    metrics = httpx.get(server + "/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    # at least one generation call held more than one direction: the batches really mixed
    single = next(line for line in metrics.splitlines() if line.startswith('lslo_batch_directions_bucket{le="1.0"}'))
    count = next(line for line in metrics.splitlines() if line.startswith("lslo_batch_directions_count"))
    assert float(single.split()[-1]) < float(count.split()[-1]), metrics


def _direct(server, **body):
    return httpx.post(server + "/translate", json={"api_key": KEY, **body}, timeout=60).json()


def test_libretranslatepy_translate_detect_languages(server):
    from libretranslatepy import LibreTranslateAPI

    lt = LibreTranslateAPI(server, api_key=KEY)
    assert [lang["code"] for lang in lt.languages()] == list(LANGS)
    assert lt.translate(EN, "en", "fr") == _direct(server, q=EN, source="en", target="fr")["translatedText"]
    assert lt.translate(FR, "auto", "en") == _direct(server, q=FR, source="fr", target="en")["translatedText"]
    assert lt.detect(FR)[0]["language"] == "fr"
    with pytest.raises(Exception, match="403"):
        LibreTranslateAPI(server, api_key="nope").translate(EN, "en", "fr")


def test_libretranslate_aio_sync_and_async(server, tmp_path):
    import asyncio

    from libretranslate_aio import AsyncLibreTranslate, ForbiddenError, LibreTranslate

    with LibreTranslate(server, api_key=KEY, timeout=60) as lt:
        one = lt.translate(EN, "en", "de")
        assert one.translated_text == _direct(server, q=EN, source="en", target="de")["translatedText"]
        many = lt.translate([EN, EN + " Again."], "en", "fr")
        assert isinstance(many.translated_text, list) and len(many.translated_text) == 2
        auto = lt.translate(FR, "auto", "de")
        assert auto.detected_language.language == "fr" and auto.detected_language.confidence > 50
        alt = lt.translate(EN, "en", "fr", alternatives=1)  # beam 2: one more hypothesis
        assert alt.alternatives is not None and len(alt.alternatives) <= 1
        html = lt.translate("<p>Open the <b>window</b></p>", "en", "fr", format="html")
        assert html.translated_text.startswith("<p>") and "<b>" in html.translated_text
        assert lt.detect(EN)[0].language == "en"
        assert [x.code for x in lt.languages()] == list(LANGS)
        settings = lt.frontend_settings()
        assert settings.key_required and settings.language.source.code == "auto" and ".docx" in \
            settings.supported_files_format
        path = tmp_path / "notes.txt"
        path.write_text(EN + "\n" + EN, encoding="utf-8")
        url = lt.translate_file(path, "en", "fr").translated_file_url
        text = httpx.get(url).text
        line = _direct(server, q=EN, source="en", target="fr")["translatedText"]
        assert text == line + "\n" + line
        assert lt.health()
    with LibreTranslate(server, api_key="nope") as bad, pytest.raises(ForbiddenError, match="Invalid API key"):
        bad.translate(EN, "en", "fr")

    async def go():
        async with AsyncLibreTranslate(server, api_key=KEY, timeout=60) as alt:
            return await asyncio.gather(alt.translate(EN, "en", "fr"), alt.translate(FR, "fr", "en"))

    a, b = asyncio.run(go())
    assert a.translated_text == _direct(server, q=EN, source="en", target="fr")["translatedText"]
    assert b.translated_text == _direct(server, q=FR, source="fr", target="en")["translatedText"]


def test_deep_translator_libretranslator(server):
    from deep_translator import LibreTranslator
    from deep_translator.exceptions import AuthorizationException

    url = server + "/"
    named = LibreTranslator(source="en", target="fr", api_key=KEY, custom_url=url)
    assert named.translate(EN) == _direct(server, q=EN, source="en", target="fr")["translatedText"]
    assert named.translate_batch([EN, EN + " Again."]) == [
        _direct(server, q=t, source="en", target="fr")["translatedText"] for t in (EN, EN + " Again.")]
    auto = LibreTranslator(source="auto", target="de", api_key=KEY, custom_url=url)
    assert auto.translate(FR) == _direct(server, q=FR, source="fr", target="de")["translatedText"]
    with pytest.raises(AuthorizationException):
        LibreTranslator(source="en", target="fr", api_key="nope", custom_url=url).translate(EN)


def _dialect_error(status: int, data: dict) -> str:
    """Dialect's LibreTranslate provider, ``check_known_errors``: which error it raises for an answer."""
    error = data.get("error", "")
    if error == "Please contact the server operator to obtain an API key":
        return "APIKeyRequired"
    if error == "Invalid API key":
        return "APIKeyInvalid"
    if "is not supported" in error:
        return "InvalidLangCode"
    if "exceeds text limit" in error:
        return "BatchSizeExceeded"
    return "UnexpectedError"


def test_dialects_request_sequence_replayed(server):
    """Dialect (dialect/providers/modules/libretrans.py) cannot be imported here (a GNOME app); its
    sequence is replayed with its own field names and its own checks on the answers."""
    c = httpx.Client(base_url=server, timeout=60)
    assert c.get("/spec").json()["info"]["title"] == "LibreTranslate"  # validate_instance
    detect = c.post("/detect", data={"q": "hello", "api_key": KEY})  # validate_api_key: form data
    assert "confidence" in detect.json()[0]
    assert _dialect_error(403, c.post("/detect", data={"q": "hello", "api_key": "nope"}).json()) == "APIKeyInvalid"
    langs = c.get("/languages").json()  # init_trans
    settings = c.get("/frontend/settings").json()
    assert [lang["code"] for lang in langs] == list(LANGS) and all(lang["name"] for lang in langs)
    assert settings["apiKeys"] and settings["keyRequired"] and not settings["suggestions"]  # no /suggest call
    assert int(settings["charLimit"]) == 5000
    r = c.post("/translate", json={"q": FR, "source": "auto", "target": "en", "api_key": KEY}).json()  # translate
    assert r["detectedLanguage"]["language"] == "fr" and isinstance(r["translatedText"], str)
    bad = c.post("/translate", json={"q": EN, "source": "en", "target": "pt", "api_key": KEY})
    assert bad.status_code == 400 and _dialect_error(400, bad.json()) == "InvalidLangCode"
    big = c.post("/translate", json={"q": "a" * 5001, "source": "en", "target": "fr", "api_key": KEY})
    assert big.status_code == 400 and _dialect_error(400, big.json()) == "BatchSizeExceeded"
    suggest = c.post("/suggest", data={"q": EN, "s": "x", "source": "en", "target": "fr", "api_key": KEY})
    assert suggest.status_code == 403 and "disabled" in suggest.json()["error"]


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

        def run_page():
            browser.find_element(By.ID, "go").click()
            wait.until(lambda b: b.find_element(By.ID, "output").text.strip() or b.find_element(By.ID, "error").text)
            assert browser.find_element(By.ID, "error").text == ""
            return browser.find_element(By.ID, "output").text.strip()

        # source "Auto Detect": the page shows the detected language; alternatives listed under it
        Select(browser.find_element(By.ID, "source")).select_by_value("auto")
        Select(browser.find_element(By.ID, "target")).select_by_value("en")
        browser.find_element(By.ID, "input").clear()
        browser.find_element(By.ID, "input").send_keys(FR)
        browser.find_element(By.ID, "alts").clear()
        browser.find_element(By.ID, "alts").send_keys("1")
        got = run_page()
        assert browser.find_element(By.ID, "detected").text.startswith("Detected: French (")
        assert got == _direct(server, q=FR, source="fr", target="en")["translatedText"].strip()
        assert len(browser.find_elements(By.CSS_SELECTOR, "#alternatives li")) <= 1
        # HTML mode keeps the tags (shown as text in the output box)
        browser.find_element(By.ID, "alts").clear()
        browser.find_element(By.ID, "alts").send_keys("0")
        Select(browser.find_element(By.ID, "source")).select_by_value("en")
        Select(browser.find_element(By.ID, "target")).select_by_value("fr")
        browser.find_element(By.ID, "html").click()
        browser.find_element(By.ID, "input").clear()
        browser.find_element(By.ID, "input").send_keys("<p>Open the <b>window</b></p>")
        out = run_page()
        assert out.startswith("<p>") and "<b>" in out and out.endswith("</p>")
        # a file: upload, then the download link gives the translated file
        path = Path(tmp_path) / "page-file.txt"
        path.write_text(EN, encoding="utf-8")
        browser.find_element(By.ID, "file").send_keys(str(path))
        browser.find_element(By.ID, "gofile").click()
        wait.until(lambda b: b.find_element(By.ID, "download").is_displayed() or b.find_element(By.ID, "fileerror").text)
        assert browser.find_element(By.ID, "fileerror").text == ""
        href = browser.find_element(By.ID, "download").get_attribute("href")
        assert httpx.get(href).text == _direct(server, q=EN, source="en", target="fr")["translatedText"]
        # a wrong key shows the server's error on the page
        browser.find_element(By.ID, "apikey").clear()
        browser.find_element(By.ID, "apikey").send_keys("wrong")
        browser.find_element(By.ID, "go").click()
        wait.until(lambda b: b.find_element(By.ID, "error").text)
        assert browser.find_element(By.ID, "error").text == "Invalid API key"
        assert browser.find_element(By.ID, "output").text == ""  # the previous translation is gone
    finally:
        browser.quit()
