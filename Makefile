# Two commands on a fresh machine: `make demo` and `make test`. Both set up first and are idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.molvae-installed
DEMO_IMAGES := runs/demo-images
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: setup demo demo-images test lint bench-images bench-ingest bench-search clean

setup: $(STAMP)

# Re-run only when the dependencies change. torch==2.13.0 first when none is present: a bare
# torch requirement would pull the newest build (multi-GB CUDA on PyPI's Linux wheels); the
# pinned one comes from pip's configured index (README "Install"); an installed torch is kept.
# A venv whose creation failed half-way (no ensurepip) has a python but no pip: it starts over.
$(STAMP): pyproject.toml
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

# The molecular pipeline on the bundled data (20k training molecules, 100k library): prints the
# candidates CSV and the MLflow run. Re-running reuses the cached ingest and library.
demo: setup
	$(BIN)/molvae run --out runs/demo

demo-images: setup
	$(BIN)/molvae images run --out $(DEMO_IMAGES)

# pytest's exit 5 means it collected no tests: molvae's suite is never empty, so that is a
# broken collection (wrong paths, import-time skips), and it must not pass unnoticed.
test: setup
	@$(BIN)/python -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests (exit 5)" >&2; fi; \
	exit $$status

# Benchmarks read ../shared/datasets (or pass --data / --moses); pythae and FPSim2 are bench-only extras.
bench-images: setup
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python benchmarks/image_vae.py all

bench-ingest: setup
	$(BIN)/python benchmarks/ingest.py all

bench-search: setup
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python benchmarks/search.py

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf runs .pytest_cache .ruff_cache
