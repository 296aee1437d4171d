# lslo: `make install`, `make test`, `make demo`, `make bench`, `make docs`
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# The CPU build of torch used when no torch is importable. A GPU user who already has
# torch (system site-packages are visible in the venv) keeps theirs.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install browser test demo bench lint docs docs-serve clean

# mkdocs 1.6 prints a banner about MkDocs 2.0 on every run; the site is built with 1.6.1 (pinned).
export NO_MKDOCS_2_WARNING := 1

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(PIP) install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[dev,serve]"
	touch $@

# Two workers: the suite is CPU-bound and the machines have 2 cores.
TEST_WORKERS ?= 2

# The web page test drives Debian's chromium + chromedriver: installed here when missing and
# possible (root with apt-get); otherwise that one test is skipped and says why.
BROWSER_PKGS := chromium chromium-driver
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing $(BROWSER_PKGS) for the web page test (apt-get)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BROWSER_PKGS) >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BROWSER_PKGS) >/dev/null 2>&1; } || \
	  echo "could not install $(BROWSER_PKGS): the browser test will be skipped"; \
	else echo "no chromium and no root apt-get: the browser test will be skipped"; fi

test: install browser
	$(VENV)/bin/ruff check src tests benchmarks tools examples
	$(PY) -m pytest -n $(TEST_WORKERS) tests

demo: install
	$(PY) -m lslo.testbed.demo

bench: install
	$(PY) benchmarks/speed.py

lint: install
	$(VENV)/bin/ruff check src tests benchmarks tools examples

# The documentation site (site/): generated pages first, then a strict build (warnings are errors).
docs: install
	$(PY) -m tools.docs
	$(VENV)/bin/mkdocs build --strict

docs-serve: install
	$(VENV)/bin/mkdocs serve

clean:
	rm -rf $(VENV) site build dist *.egg-info src/*.egg-info .pytest_cache
