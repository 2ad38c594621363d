# `make run` sets up and starts the app; `make test` sets up and runs every test.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint browser wordnet

setup: $(VENV)/.installed

# llama.cpp compiles on install. By default it builds for this very CPU (-march=native), and on a
# CPU with AMX tiles that takes ggml's AMX matrix kernels, which crashed the built-in model here at
# its first token (SIGSEGV in ggml_backend_amx_mul_mat). So it is built for AVX2, which any x86-64
# of the last decade runs, and never from a wheel pip cached from a native build.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON

# torch first and pinned to the CPU build: an unpinned torch pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install "torch==2.13.0+cpu"
	if [ "$$(uname -m)" = x86_64 ]; then \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --no-cache-dir "llama-cpp-python[server]==0.3.36"; \
	fi
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

# WordNet 3.0, only for the test that eval/antonyms.py still writes rag/antonyms.txt from it (the
# app reads the committed list and needs no WordNet).
wordnet:
	@test -f /usr/share/wordnet/data.adj || { \
		if [ "$$(id -u)" -ne 0 ]; then \
			echo "WordNet is missing: install it with sudo apt-get install -y --no-install-recommends wordnet-base" >&2; \
			exit 1; \
		fi; \
		apt-get update && apt-get install -y --no-install-recommends wordnet-base; \
	}

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup browser wordnet lint
	$(BIN)/python -m pytest
