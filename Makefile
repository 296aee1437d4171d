# lslo: `make install`, `make test`, `make demo`, `make bench`
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# The CPU build of torch used when no torch is importable. A GPU user who already has
# torch (system site-packages are visible in the venv) keeps theirs.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install test demo bench lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(PIP) install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[dev]"
	touch $@

# Two workers: the suite is CPU-bound and the machines have 2 cores.
TEST_WORKERS ?= 2

test: install
	$(PY) -m pytest -n $(TEST_WORKERS) tests

demo: install
	$(PY) -m lslo.testbed.demo

bench: install
	$(PY) benchmarks/speed.py

lint: install
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .pytest_cache
