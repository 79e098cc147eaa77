# Two commands on a fresh machine: `make demo` and `make test`. Both set up first and are idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.molvae-installed
DEMO_IMAGES := runs/demo-images
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: setup demo demo-images test lint bench-images bench-ingest bench-search clean

setup: $(STAMP)

# Re-run only when the dependencies change. torch==2.13.0 first when none is present:
# a bare torch requirement would pull a multi-GB CUDA build; users with their own torch keep it.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

demo: demo-images

demo-images: setup
	$(BIN)/molvae images train bundled -o $(DEMO_IMAGES)/model --epochs 10 --iwae-k 100
	$(BIN)/molvae images sample $(DEMO_IMAGES)/model -o $(DEMO_IMAGES)/samples.png -n 64
	$(BIN)/molvae images interpolate $(DEMO_IMAGES)/model bundled -o $(DEMO_IMAGES)/interpolation.png
	$(BIN)/molvae images variations $(DEMO_IMAGES)/model bundled -o $(DEMO_IMAGES)/variations.png
	$(BIN)/molvae images inpaint $(DEMO_IMAGES)/model bundled -o $(DEMO_IMAGES)/inpainting.png
	$(BIN)/molvae images anomaly $(DEMO_IMAGES)/model bundled -o $(DEMO_IMAGES)/anomaly.csv
	@echo "Image demo written to $(DEMO_IMAGES)/: model/ (config.json, weights.pt, metrics.json) and the PNG grids."

test: setup
	$(BIN)/python -m pytest

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
