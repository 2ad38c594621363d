"""Shared fixtures: temporary stores holding the seed articles, and a local Ollama-speaking server.

Everything is real (Chroma, the packaged embedder, the packaged SmolLM2); only the Ollama server,
which cannot be installed here, is stood in for by `ollama_server.OllamaServer`, which speaks its
wire protocol.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from ollama_server import OllamaServer

from rag import RAG

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
# A port where nothing listens, so "auto" finds no Ollama even on a machine that runs one.
NO_OLLAMA = "http://127.0.0.1:9"


@pytest.fixture(scope="session", autouse=True)
def shared_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One ONNX export of the embedder for the in-process tests, not one per temporary store
    (`test_embeddings.py` exports into fresh folders; the app and CLI subprocess tests do too)."""
    os.environ["RAG_MODEL_CACHE"] = str(tmp_path_factory.mktemp("models"))
    yield
    os.environ.pop("RAG_MODEL_CACHE", None)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A writable copy of the seed articles."""
    target = tmp_path / "articles"
    shutil.copytree(SEEDS, target)
    return target


def make_rag(home: Path, corpus: Path, **overrides: object) -> RAG:
    """A RAG on a fresh embedded store under `home`, never reaching a real Ollama, nor an
    OpenAI-compatible server the developer's environment names (`OPENAI_BASE_URL`)."""
    overrides.setdefault("ollama_host", NO_OLLAMA)
    overrides.setdefault("openai_base_url", None)
    return RAG(home=home, corpus=corpus, **overrides)


@pytest.fixture(scope="session")
def seeded_rag(tmp_path_factory: pytest.TempPathFactory) -> RAG:
    """One RAG for the whole session whose store holds the five seed articles (read-only use)."""
    home = tmp_path_factory.mktemp("seeded")
    rag = make_rag(home / ".rag", SEEDS, backend="embedded")
    rag.ingest([SEEDS])
    return rag


@pytest.fixture
def ollama() -> Iterator[OllamaServer]:
    """A local server on 127.0.0.1 that speaks Ollama's chat and tags API."""
    with OllamaServer() as server:
        yield server
