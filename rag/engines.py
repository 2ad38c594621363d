"""The RAG objects that answer, one per backend and model, under the names servers list them by.

The chat and the HTTP API share one `Engines`: the configured RAG, others built on demand for
another backend or Ollama model (sharing the configured one's store, retriever and embedder, each
with its own generator, so a few at most are kept), and the `AnswerQueue` that gives each model
one answer at a time. After an ingest the others are dropped: each keeps its own note of whether
the store held chunks, which only the RAG that ingested resets.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from rag.answer_queue import AnswerQueue
from rag.api import RAG
from rag.errors import BackendUnavailable, BadInput, NotFound
from rag.ingest import IngestReport, Progress

BACKEND_CHOICES = ("auto", "embedded", "ollama", "openai")
EMBEDDED = "embedded"  # the built-in model's name in model lists: it never changes with the file
OLLAMA_PREFIX = "ollama/"  # an Ollama model is listed as ollama/<its name>
OPENAI_PREFIX = "openai/"  # a model of the OpenAI-compatible server as openai/<its name>
# The setting that names a backend's model (`auto` takes Ollama's, its first choice).
MODEL_SETTING = {"auto": "ollama_model", "ollama": "ollama_model", "openai": "openai_model"}


class Engines:
    """The RAG for each backend and model, built once, and the turns they take."""

    def __init__(self, rag: RAG) -> None:
        self.rag = rag
        self.settings = rag.settings
        self.queue = AnswerQueue(rag.settings.api_queue)
        self._others = functools.lru_cache(maxsize=4)(rag.answering_with)

    def pick(self, backend: str, model: str = "") -> RAG:
        """The RAG that answers with this backend and model ("": the configured one), the configured RAG when they match."""
        if backend not in BACKEND_CHOICES:
            raise BadInput(f"unknown backend '{backend}'; choose one of: {', '.join(BACKEND_CHOICES)}")
        setting = MODEL_SETTING.get(backend)
        if setting is None:  # the built-in model: no name to choose
            return self.rag if backend == self.settings.backend else self._others(backend=backend)
        configured = getattr(self.settings, setting)
        model = (model or "").strip() or configured
        if (backend, model) == (self.settings.backend, configured):
            return self.rag
        return self._others(backend=backend, **{setting: model})

    def model_names(self) -> list[str]:
        """The models that can answer now: the built-in one always, each model Ollama and the
        OpenAI-compatible server have when they answer."""
        from rag.generate import ollama_models

        ollama = [OLLAMA_PREFIX + name for name in ollama_models(self.settings.ollama_host, 1.0) or []]
        return [EMBEDDED, *ollama, *(OPENAI_PREFIX + name for name in self.openai_names())]

    def openai_names(self) -> list[str]:
        """The models of the OpenAI-compatible server; none when it is not set or does not answer."""
        from rag.generate import openai_models

        if not self.settings.openai_base_url:
            return []
        try:
            return openai_models(self.settings, timeout=1.0)
        except BackendUnavailable:
            return []

    def by_name(self, name: str) -> RAG:
        """The RAG for a listed model name; `NotFound` naming the valid ones otherwise."""
        from rag.generate import has_model, ollama_models

        if name == EMBEDDED:
            return self.pick(EMBEDDED)
        if name.startswith(OPENAI_PREFIX) and name.removeprefix(OPENAI_PREFIX) in self.openai_names():
            return self.pick("openai", name.removeprefix(OPENAI_PREFIX))
        pulled = ollama_models(self.settings.ollama_host, timeout=1.0) or []
        ollama = name.removeprefix(OLLAMA_PREFIX)
        if name.startswith(OLLAMA_PREFIX) and has_model(pulled, ollama):
            return self.pick("ollama", ollama)
        raise NotFound(f"the model '{name}' does not exist; choose one of: {', '.join(self.model_names())}")

    def ingest(self, paths: Sequence[Path] | None = None, progress: Progress | None = None) -> IngestReport:
        """Ingest with the configured RAG, then drop the others (their note that the store holds chunks
        may no longer be true; the store and retriever they share are the configured RAG's)."""
        try:
            return self.rag.ingest(paths, progress=progress)
        finally:
            self._others.cache_clear()


def model_name(rag: RAG) -> str:
    """The listed name of the model a RAG answers with (loading its backend when it is `auto`)."""
    if rag.settings.backend == EMBEDDED:
        return EMBEDDED
    if rag.settings.backend == "ollama":
        return OLLAMA_PREFIX + rag.settings.ollama_model
    backend = rag.backend  # `auto`'s choice, or the OpenAI-compatible server's model (the first it lists when unset)
    return EMBEDDED if backend.name == EMBEDDED else f"{backend.name}/{backend.model}"
