# Everything a new user needs: `make demo` and `make test` create the virtual environment,
# install pipewarden with its dependencies, and run.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test bench lint clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "pipewarden needs Python 3.11 or newer on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/pipewarden demo

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/cli.py
	$(BIN)/python bench/sync.py
	$(BIN)/python bench/reconcile.py
	$(BIN)/python bench/checks.py
	$(BIN)/python bench/checks_store.py
	$(BIN)/python bench/check_flow.py
	$(BIN)/python bench/events.py
	$(BIN)/python bench/exporter.py
	$(BIN)/python bench/profiles.py
	@# Ten times the rows (issue 14) takes minutes: only with BENCH_SCALE=10m.
	@if [ "$(BENCH_SCALE)" = 10m ]; then $(BIN)/python bench/scale.py; \
	else echo "bench/scale.py (10,000,000 rows a side) skipped: run BENCH_SCALE=10m make bench"; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy pipewarden
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) .pipewarden .pytest_cache
