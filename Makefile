# Two commands work on a fresh machine: `make run` and `make test`. Both create .venv and install
# what is missing: torch first (the locally served CPU build), then the pinned lock file.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-full lint bench install clean-cache

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.lock
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m src.train

test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q

test-full: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(STAMP)
	$(PY) -m benchmarks.data_loading
	$(PY) -m benchmarks.train_throughput

clean-cache:
	rm -rf data/cache
