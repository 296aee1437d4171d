"""Reading the README and the docs as a user would: their code blocks and the commands in them."""

from __future__ import annotations

import json
import re
import shlex
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
                   re.S | re.M)
# where a command of lslo starts inside a shell line: `lslo ...`, `.venv/bin/lslo ...`, `... -m lslo ...`
LSLO = re.compile(r"(?:^|\s)(?:\S*/)?(?:lslo|-m lslo)\s")


def doc_files() -> list[Path]:
    """The README and every page of the docs site (generated pages and snippets included)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def code_blocks(text: str, langs: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """Fenced code blocks as (language, body), dedented (blocks inside lists and admonitions too)."""
    out = []
    for m in FENCE.finditer(text):
        if langs is None or m.group("lang") in langs:
            out.append((m.group("lang"), textwrap.dedent(m.group("body"))))
    return out


def shell_lines(body: str) -> list[str]:
    """A shell block's logical lines: backslash continuations joined, comments and prompts dropped."""
    lines, cur = [], ""
    for raw in body.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        if cur.strip():
            lines.append(cur.strip().removeprefix("$ "))
        cur = ""
    return lines


def lslo_argv(line: str) -> list[str] | None:
    """The arguments of the lslo command in a shell line (after a pipe, `-m lslo`, `.venv/bin/`), or None."""
    for part in re.split(r"\s(?:\||&&|;)\s", line):
        words = shlex.split(part, comments=True)
        while words and words[-1] == "&":
            words.pop()
        for i, w in enumerate(words):
            if w == "lslo" or w.endswith("/lslo"):
                if i > 0 and words[i - 1] != "-m" and not w.endswith("/lslo") and words[0] not in ("lslo",):
                    continue  # a word 'lslo' inside another command's arguments
                return words[i + 1:]
    return None


def lslo_commands(text: str) -> list[tuple[str, list[str]]]:
    """Every lslo command line in a page's shell-like code blocks, as (line, argv)."""
    out = []
    for _lang, body in code_blocks(text, ("bash", "sh", "shell", "console", "text", "")):
        for line in shell_lines(body):
            if LSLO.search(" " + line + " "):
                argv = lslo_argv(line)
                if argv is not None:
                    out.append((line, argv))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_once(argv: list[str], body: dict) -> dict:
    """Start `lslo serve` as a user would (its own process), ask it one request, stop it."""
    port = free_port()
    argv = [a if a != "5000" else str(port) for a in argv]
    proc = subprocess.Popen([sys.executable, "-m", "lslo", *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(proc.stdout.read().decode()) from None
                time.sleep(0.2)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/translate", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(req, timeout=60).read())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
