# Two commands do all the set-up on a fresh machine:
#   make run   create .venv (Python >= 3.12), install fibrosim, run the main job on studies/
#   make test  same set-up, then ruff, mypy and pytest
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
OUT ?= out

# A Python >= 3.12: the first of these that exists and is new enough.
# pyenv keeps interpreters under $(pyenv root)/versions, which is not on PATH.
PYENV_ROOT_DIR := $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
PYTHON_CANDIDATES := $(PYTHON) python3.14 python3.13 python3.12 python3 \
	$(sort $(wildcard $(PYENV_ROOT_DIR)/versions/3.1[2-9]*/bin/python3))
FOUND_PYTHON := $(firstword $(foreach p,$(PYTHON_CANDIDATES),$(shell command -v $(p) >/dev/null 2>&1 && $(p) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && echo $(p))))

.PHONY: run test lint typecheck bench clean

$(VENV)/.installed: pyproject.toml
	@if [ -z "$(FOUND_PYTHON)" ]; then \
		echo "error: fibrosim needs Python >= 3.12; none found on PATH or under $(PYENV_ROOT_DIR)/versions." >&2; \
		echo "       Install one (e.g. 'pyenv install 3.12') or pass PYTHON=/path/to/python3.12." >&2; \
		exit 1; fi
	@echo "using $(FOUND_PYTHON) ($$($(FOUND_PYTHON) --version))"
	$(FOUND_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=25.1"
	$(PY) -m pip install --quiet -e ".[parallel]" --group dev
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/fibrosim report --out $(OUT)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check fibrosim tests analyses benchmarks validation
	$(VENV)/bin/ruff format --check fibrosim tests analyses benchmarks validation

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest -q
	$(VENV)/bin/pytest -q benchmarks --benchmark-disable

bench: $(VENV)/.installed
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache
