# gatebench: one command each. The first use creates .venv and installs everything.
PYTHON_BOOT ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
PROFILE     ?= default
RUN         ?= results/latest
THRESHOLD   ?= 5

.PHONY: install bench test test-fast lint report compare browser postgres h2load clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

bench: $(STAMP) postgres
	$(PY) -m harness run --profile $(PROFILE)

# The whole suite (CI runs this). First every test that asserts no throughput or timing, on
# every CPU (end-to-end fault tests among them); then the `solo` tests alone, one at a time:
# they pin servers and locust to CPUs and assert throughput or timing, so nothing may run
# beside them. Together: every test `pytest` collects.
test: lint browser postgres h2load
	$(PY) -m pytest -m "not solo" -n auto --dist loadfile
	$(PY) -m pytest -m solo

# The edit loop: lint and the tests that start no server, no locust, no harness run.
test-fast: lint
	$(PY) -m pytest -m "not e2e and not cli" -n auto --dist loadfile

# The real-I/O scenarios (db, db_lookup) start a throwaway PostgreSQL cluster: Debian's
# package provides initdb and postgres (the harness finds /usr/lib/postgresql/*/bin).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else \
	    echo "note: the db scenarios need PostgreSQL (sudo apt-get install postgresql); without it their cells are skipped" >&2; \
	  fi; }

# `python -m harness crosscheck` (and its test) replays HTTP/2 cells with h2load, from Debian's
# nghttp2-client package.
h2load:
	@command -v h2load >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client >/dev/null; \
	  else \
	    echo "note: python -m harness crosscheck needs h2load (sudo apt-get install nghttp2-client); without it its test fails" >&2; \
	  fi; }

# The HTML report test opens report.html in a real headless Chromium (Debian's package).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "make test needs Chromium for the HTML report test: sudo apt-get install chromium" >&2; \
	    exit 1; \
	  fi; }

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

report: $(STAMP)
	$(PY) -m harness report $(RUN)
	$(PY) -m harness runs >/dev/null  # refresh results/index.html

compare: $(STAMP)
	@test -n "$(A)" -a -n "$(B)" || { echo "usage: make compare A=results/<run> B=results/<run> [THRESHOLD=5]" >&2; exit 2; }
	@# make exits 2 on any failed recipe: say the harness's own status (1 regression, 2 bad usage)
	@$(PY) -m harness compare $(A) $(B) --threshold $(THRESHOLD) || { status=$$?; \
	  echo "make compare: python -m harness compare exited $$status (1 regression, 2 bad usage; use it directly in CI)" >&2; \
	  exit $$status; }

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
