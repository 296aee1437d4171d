"""The README and the documentation site: short, generated from the results, built without a
warning, and every lslo command they show accepted by lslo's own parser."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from docs_helpers import ROOT, code_blocks, doc_files, lslo_commands

from lslo.cli.main import build_parser

README = ROOT / "README.md"
README_BUDGET = 200  # lines: what a newcomer reads in two minutes
# Phrases about the history of the work, or documents the repository does not have: the docs
# speak about the software (history goes to CHANGELOG.md).
FORBIDDEN = (r"\bSPEC\b", "git history", "last session", "my other work", "once reported", "as the issue",
             "today's", r"pip install 'lslo\[", r"pip install lslo\b")


def test_readme_fits_its_budget():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= README_BUDGET, f"README.md has {n} lines, the budget is {README_BUDGET}: move detail into docs/"


def test_generated_pages_are_current():
    sys.path.insert(0, str(ROOT))
    from tools.docs.generate import stale

    assert stale() == [], "generated pages differ from benchmarks/results/*.json: run `python -m tools.docs`"


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_lslo_command_shown_is_accepted_by_the_parser(path, capsys):
    parser = build_parser()
    for line, argv in lslo_commands(path.read_text(encoding="utf-8")):
        if {"-h", "--help", "--version"} & set(argv):
            argv = [a for a in argv if a not in ("-h", "--help", "--version")]
            if not argv:
                continue
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{path.name}: `{line}` is not a valid lslo command: {capsys.readouterr().err.strip()}")


def test_no_history_and_no_missing_documents_in_the_docs():
    for path in [p for p in doc_files() if p.name != "changelog.md"]:
        text = path.read_text(encoding="utf-8")
        for phrase in FORBIDDEN:
            m = re.search(phrase, text)
            assert m is None, f"{path.relative_to(ROOT)} says {m.group(0)!r}"


def test_readme_links_point_at_files_that_exist():
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert len(local) >= 10
    missing = [link for link in local if not (ROOT / link).exists()]
    assert missing == []


def test_readme_has_the_paper_and_its_citation():
    text = README.read_text(encoding="utf-8")
    assert "https://arxiv.org/abs/2409.05224" in text
    bib = "".join(body for _, body in code_blocks(text, ("bibtex",)))
    assert "@inproceedings" in bib and "Kamigaito" in bib and "2409.05224" in bib
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")
    assert "preferred-citation" in (ROOT / "CITATION.cff").read_text(encoding="utf-8")


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install -e '.[docs]'")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    site = tmp_path / "site"
    assert (site / "index.html").is_file() and (site / "results" / "plots").is_dir()
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert "parameter_report" in api and "translate" in api  # docstrings rendered, not just the headings
    quick = (site / "quickstart" / "index.html").read_text(encoding="utf-8")
    assert "testbed-software-lang12.yaml" in quick  # the README's section, included
