# Two commands work on a fresh machine: `make run` and `make test`. Both create .venv and install
# what is missing: torch first (the locally served CPU build), then the pinned lock file.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-durations test-slow test-full lint bench install clean-cache postgres server \
	ship serve user

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.lock
	touch $(STAMP)

# The main job on the embedded default data: the fp32 baseline and the core methods as one sweep
# (one MLflow parent run), a timing pass over fresh processes, then the verdict table of that sweep
# (2026-12-06 on 2 cores, fresh clone: 1,033 s at bef4a4b, 1,054 s at 84cd81a on a slower evening:
# the sweep 579 s, the pass 468 s; the ONNX Runtime leg, deployment and parity, is about 100 s:
# RUN_ARGS="trainer.threads=2 benchmark.runtimes=[eager]" skips it).
# Training takes both cores here (trainer.threads=2: 1.45x faster per step than one thread at the
# default model's width); the config's default stays 1 for shared machines and parallel launchers.
# Every method (five more; about twice as long): make run METHODS=all
METHODS ?= baseline,dynamic,static,qat,prune_structured,distill,prune_dynamic
ALL_METHODS := baseline,dynamic,static,qat,fp16,bf16,prune,prune_structured,distill,prune_dynamic,distill_dynamic,distill_qat
ifeq ($(METHODS),all)
override METHODS := $(ALL_METHODS)
endif
# make run FOLDS=0,1,2,3,4: the five folds (46 minutes with RUN_ARGS="trainer.threads=2
# benchmark.runtimes=[eager]", before the timing pass; the ONNX Runtime leg adds about 4 minutes
# per fold).
FOLDS ?= 0
RUN_ARGS ?= trainer.threads=2
# In-run latency is each run's record beside its baseline; the timing pass that follows replaces
# every speed figure of the board with its own, so the sweep times the large batch one round, not
# two (about 5 s a job). SWEEP_LATENCY= keeps the config's in-run setting.
SWEEP_LATENCY ?= benchmark.large_batch_rounds=1
# The timing pass after the sweep (python -m src.timing): every variant in fresh processes, the
# board's speed. TIMING_ARGS="processes=10" is the publication setting (README "Speed").
TIMING_ARGS ?=
SWEEP = make-run-$(shell date +%Y-%m-%d_%H-%M-%S)

run: $(STAMP)
	$(eval SWEEP_ID := $(SWEEP))
	$(PY) -m src.train -m +method=$(METHODS) data.fold=$(FOLDS) $(SWEEP_LATENCY) $(RUN_ARGS) hydra.sweep.dir=$(CURDIR)/outputs/multiruns/$(SWEEP_ID); \
	status=$$?; \
	$(PY) -m src.timing sweep_id=$(SWEEP_ID) $(TIMING_ARGS); \
	$(PY) -m src.leaderboard sweep_id=$(SWEEP_ID) out_dir=$(CURDIR)/outputs/leaderboard/$(SWEEP_ID) \
	&& exit $$status

test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q

# After make run (README "Ship"): register the board's choice of the newest make-run sweep in
# MLflow's Model Registry (alias candidate; champion by the non-inferiority rule), then serve it.
#   make ship SHIP_ARGS="variant=static"     a variant you name (the version records it)
#   make ship SWEEP_ID=<id>                  another sweep
#   make serve                               models:/$(MODEL_NAME)@candidate on 127.0.0.1:5001
NEWEST_SWEEP = $(lastword $(sort $(notdir $(wildcard outputs/multiruns/make-run-*))))
SHIP_ARGS ?=
MODEL_NAME ?= dyad_brand3-battery-brand3
MODEL_ALIAS ?= candidate
SERVE_PORT ?= 5001
STORE = $${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlruns/mlflow.db}

SHIP_SWEEP = $(or $(SWEEP_ID),$(NEWEST_SWEEP))

ship: $(STAMP)
	@test -n "$(SHIP_SWEEP)" || { echo "error: no make-run sweep in outputs/multiruns: run make \
	run first, or give SWEEP_ID=<id>" >&2; exit 2; }
	$(PY) -m src.ship sweep_id=$(SHIP_SWEEP) $(SHIP_ARGS)

# MLflow's scoring server runs uvicorn from PATH: the venv's bin goes first.
serve: $(STAMP)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH MLFLOW_TRACKING_URI=$(STORE) $(VENV)/bin/mlflow models serve \
		-m "models:/$(MODEL_NAME)@$(MODEL_ALIAS)" -h 127.0.0.1 -p $(SERVE_PORT) --env-manager local

# The fast tier with its 30 slowest tests listed: where the suite's time goes.
test-durations: $(STAMP)
	$(PY) -m pytest -m "not slow" --durations=30 -q

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q

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

# A tracking server the whole group writes to (README "Tracking server"): MLflow on PostgreSQL,
# with a lock on the door.
#   make postgres   a PostgreSQL cluster of your own in mlruns/postgres (as a normal user; PostgreSQL
#                   refuses root), password authentication (scram-sha-256) with a generated password
#                   kept owner-only in $(PG_SECRET) (password; pgpass, libpq's PGPASSFILE). A group
#                   with a database sets MLFLOW_BACKEND to it instead.
#   make server     mlflow server on MLFLOW_BACKEND with MLflow's basic-auth app: the admin
#                   credential is generated on first start into $(AUTH_DIR)/basic_auth.ini
#                   (owner-only); binds to 127.0.0.1 unless MLFLOW_HOST=0.0.0.0 (then put it behind
#                   a TLS reverse proxy: README). Artifacts under MLFLOW_ARTIFACTS (served through it).
#   make user NAME=alice EDIT=battery
#                   a user who may read every experiment and write to EDIT's; their credentials
#                   file is $(AUTH_DIR)/users/alice.credentials, for them to copy to
#                   ~/.mlflow/credentials. Then, everywhere:
#                   export MLFLOW_TRACKING_URI=http://<this host>:$(MLFLOW_PORT)
PG_BIN ?= $(or $(lastword $(wildcard /usr/lib/postgresql/*/bin)),$(patsubst %/,%,$(dir $(shell command -v pg_ctl))))
PGDATA ?= $(CURDIR)/mlruns/postgres
PGPORT ?= 5432
PG_SECRET ?= $(CURDIR)/mlruns/postgres-secret
MLFLOW_BACKEND ?= postgresql://mlflow@127.0.0.1:$(PGPORT)/mlflow
MLFLOW_ARTIFACTS ?= $(CURDIR)/mlruns/server-artifacts
MLFLOW_HOST ?= 127.0.0.1
MLFLOW_PORT ?= 5000
AUTH_DIR ?= $(CURDIR)/mlruns/server-auth
EDIT ?=

postgres: $(STAMP)
	test -f $(PGDATA)/PG_VERSION || { $(PY) -m src.tracking.access postgres $(PG_SECRET) && \
		$(PG_BIN)/initdb -D $(PGDATA) -U mlflow --auth-local=scram-sha-256 \
		--auth-host=scram-sha-256 --pwfile=$(PG_SECRET)/password -E UTF8; }
	$(PG_BIN)/pg_ctl -D $(PGDATA) -l $(PGDATA)/server.log -w start \
		-o "-p $(PGPORT) -k $(PGDATA) -c listen_addresses=127.0.0.1"
	PGPASSFILE=$(PG_SECRET)/pgpass $(PG_BIN)/createdb -h 127.0.0.1 -p $(PGPORT) -U mlflow -w \
		mlflow 2>/dev/null || true

server: $(STAMP)
	PGPASSFILE=$(PG_SECRET)/pgpass $(PY) -m src.tracking.access serve $(AUTH_DIR) -- \
		--backend-store-uri $(MLFLOW_BACKEND) --artifacts-destination $(MLFLOW_ARTIFACTS) \
		--host $(MLFLOW_HOST) --port $(MLFLOW_PORT)

user: $(STAMP)
	@test -n "$(NAME)" || { echo "error: give the user's name: make user NAME=alice EDIT=battery" >&2; exit 2; }
	$(PY) -m src.tracking.access add-user $(NAME) --dir $(AUTH_DIR) \
		--uri http://127.0.0.1:$(MLFLOW_PORT) $(if $(EDIT),--edit $(EDIT))
