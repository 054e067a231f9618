# gatebench: one command each. The first use creates .venv and installs everything.
PYTHON_BOOT ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
PROFILE     ?= default
RUN         ?= results/latest

.PHONY: install bench test lint report clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

bench: $(STAMP)
	$(PY) -m harness run --profile $(PROFILE)

test: lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

report: $(STAMP)
	$(PY) -m harness report $(RUN)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
