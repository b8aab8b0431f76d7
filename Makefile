# crimeclass: `make demo` runs the main job on the bundled sample; `make test` runs the tests.
# Both create .venv and install pinned versions (constraints.txt) by themselves, once.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo-output
DATA   ?= ../shared/data
PYTEST_ARGS ?=
RESULTS ?= results-output
YEARS  := 2012 2013 2014 2015 2016 2017

.DEFAULT_GOAL := help
.PHONY: help install chromium hey demo results results-docs docs-images test test-fast lint bench peers lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[all,dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install crimeclass with every extra (idempotent)

demo: $(STAMP) ## run the main job end to end on the bundled real sample
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(BIN)/crimeclass ingest --sample --store $(DEMO)/crimeclass.duckdb
	$(BIN)/crimeclass info --store $(DEMO)/crimeclass.duckdb
	$(BIN)/crimeclass quarantine --store $(DEMO)/crimeclass.duckdb --limit 5
	$(BIN)/crimeclass export --store $(DEMO)/crimeclass.duckdb --out $(DEMO)/parquet
	$(BIN)/crimeclass explore --store $(DEMO)/crimeclass.duckdb --out $(DEMO)/report
	$(BIN)/crimeclass train --store $(DEMO)/crimeclass.duckdb --since 2012-01-01 --trials 5 \
		--runs-dir $(DEMO)/runs
	$(BIN)/crimeclass evaluate $$(ls -d $(DEMO)/runs/*/ | head -1) --n-boot 200 --explain-rows 2000
	$(BIN)/crimeclass predict --run $$(ls -d $(DEMO)/runs/*/ | head -1) \
		--store $(DEMO)/crimeclass.duckdb --since 2017-01-01 --out $(DEMO)/predictions.parquet
	@echo
	@echo "Demo output is in $(DEMO)/: the store crimeclass.duckdb, the Parquet export parquet/,"
	@echo "the exploration report report/report.html, the training run runs/<run-id>/"
	@echo "(report.html, metrics.json, models/ with a model card each, evaluation/evaluation.html)"
	@echo "and the best model's scores of 2017 in predictions.parquet."

# The results run: trained on 2012-2016, 2017 held out; then the same configuration a year
# earlier (2012-2015, 2016 held out: the rolling origin of docs/results.md).
TRAIN_RESULTS := --store $(RESULTS)/real_2012_2017.duckdb --since 2012-01-01 --trials 20 \
	--models lr,rf,svm,xgb,nn,lgbm,stack

results: $(STAMP) ## docs/results/ and docs/results.md from ../shared/data: ingest 2012-2017, train and evaluate twice (two hours)
	rm -rf $(RESULTS) && mkdir -p $(RESULTS)
	$(BIN)/crimeclass ingest $(foreach y,$(YEARS),$(DATA)/chicago_crimes_datastore_$(y).csv.gz) \
		--store $(RESULTS)/real_2012_2017.duckdb
	$(BIN)/crimeclass train $(TRAIN_RESULTS) --until 2018-01-01 --holdout 2017 \
		--runs-dir $(RESULTS)/runs
	$(BIN)/crimeclass evaluate $$(ls -d $(RESULTS)/runs/*/ | head -1) --explain-rows 10000
	$(BIN)/crimeclass train $(TRAIN_RESULTS) --until 2017-01-01 --holdout 2016 \
		--runs-dir $(RESULTS)/runs-2016
	$(BIN)/crimeclass evaluate $$(ls -d $(RESULTS)/runs-2016/*/ | head -1) --explain-rows 10000
	$(BIN)/python scripts/results_docs.py --run $$(ls -d $(RESULTS)/runs/*/ | head -1) \
		--earlier $$(ls -d $(RESULTS)/runs-2016/*/ | head -1)

results-docs: $(STAMP) ## docs/results.md again from the committed outputs in docs/results/
	$(BIN)/python scripts/results_docs.py

# The browser tests drive Debian's chromium (chromium-driver comes with it). Installed here,
# once, never by a test; where it cannot be, the browser tests fail and say why.
chromium: ## install Debian's chromium and chromium-driver when missing (apt-get, as root)
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
		exit 0; fi; \
	sudo=; if [ "$$(id -u)" != 0 ]; then sudo="sudo -n"; fi; \
	if ! command -v apt-get >/dev/null 2>&1 || { [ -n "$$sudo" ] && ! sudo -n true 2>/dev/null; }; \
	then echo "note: chromium is missing and cannot be installed here (apt-get as root is" \
		"needed): the browser tests will fail. Install Debian's chromium and" \
		"chromium-driver to run them."; exit 0; fi; \
	echo "installing Debian's chromium and chromium-driver (once) ..."; \
	if ! { $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
		chromium-driver >/dev/null; }; then \
		echo "note: apt-get could not install chromium: the browser tests will fail."; fi

# The load test of the service (bench/serve.py) drives it with Debian's hey. Installed here,
# once, never by a test or a bench.
hey: ## install Debian's hey (HTTP load generator) when missing (apt-get, as root)
	@if command -v hey >/dev/null 2>&1; then exit 0; fi; \
	sudo=; if [ "$$(id -u)" != 0 ]; then sudo="sudo -n"; fi; \
	if ! command -v apt-get >/dev/null 2>&1 || { [ -n "$$sudo" ] && ! sudo -n true 2>/dev/null; }; \
	then echo "note: hey is missing and cannot be installed here (apt-get as root is" \
		"needed): install Debian's hey to run bench/serve.py."; exit 0; fi; \
	echo "installing Debian's hey (once) ..."; \
	if ! { $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hey >/dev/null; }; then \
		echo "note: apt-get could not install hey: bench/serve.py will stop."; fi

docs-images: $(STAMP) chromium ## redraw docs/img (report, serve page, architecture)
	$(BIN)/python scripts/docs_images.py
	$(BIN)/python scripts/architecture.py docs/img/architecture.png

test: $(STAMP) chromium ## run the whole test suite (the slow tests too)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

test-fast: $(STAMP) ## run the tests without the slow ones
	$(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy

bench: $(STAMP) ## run the benchmarks (minutes; figures into bench/results/)
	$(BIN)/python bench/ingest.py --data $(DATA)
	$(BIN)/python bench/ingest_stages.py --data $(DATA)
	$(BIN)/python bench/sources.py --data $(DATA)
	$(BIN)/python bench/explore.py --data $(DATA)
	$(BIN)/python bench/train.py --data $(DATA)
	$(BIN)/python bench/features.py --data $(DATA)
	$(BIN)/python bench/online.py --data $(DATA)
	$(BIN)/python bench/growth.py --data $(DATA)

peers: $(STAMP) ## crimeclass's best against LightGBM, XGBoost and FLAML, after make results (40 min)
	$(BIN)/python bench/peers.py --store $(RESULTS)/real_2012_2017.duckdb --run $$(ls -d $(RESULTS)/runs/*/ | head -1) --lgbm-trials 8
	$(BIN)/python bench/xgb_default.py --store $(RESULTS)/real_2012_2017.duckdb
	$(BIN)/python scripts/results_docs.py

lock: ## re-pin constraints.txt from a fresh environment
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install --quiet -e '.[all,dev]'
	.lockenv/bin/python -m pip freeze --exclude-editable > constraints.txt
	rm -rf .lockenv

clean: ## remove the virtual environment and outputs
	rm -rf $(VENV) $(DEMO) .pytest_cache .ruff_cache .mypy_cache
