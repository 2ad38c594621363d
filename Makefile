# `make run` sets up and starts the app; `make test` sets up and runs every test.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint browser

setup: $(VENV)/.installed

# torch first and pinned to the CPU build: an unpinned torch pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install "torch==2.13.0+cpu"
	$(BIN)/pip install -e ".[test]"
	touch $@

run: setup
	$(BIN)/python app.py

browser:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup browser lint
	$(BIN)/python -m pytest
