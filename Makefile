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

# Only what the browser needs (no notification daemon, printing, udev or GPU drivers); installing
# takes root, so anyone else is told the one command to run instead of failing inside apt-get.
browser:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" -ne 0 ]; then \
			echo "chromium is missing: install it with sudo apt-get install -y --no-install-recommends chromium" >&2; \
			exit 1; \
		fi; \
		apt-get update && apt-get install -y --no-install-recommends chromium; \
	}

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup browser lint
	$(BIN)/python -m pytest
