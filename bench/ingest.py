"""Ingest speed: our `RAG.ingest` against raw `SentenceTransformer.encode` of the same chunk texts.

Both use the same model files and the configured batch size; ours runs the model on ONNX Runtime
and the raw library on PyTorch, so a ratio under 1 is the ONNX speed-up net of everything else
ingest does. Rounds alternate (ours, raw, ours, raw) so that other load on the machine hits both,
and the best round of each is kept. Then a 1,000-article corpus is ingested once and again
unchanged, counting calls into the embedder.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench.corpus import write_articles
from bench.measure import NO_OLLAMA


class CallCounter:
    """Wraps an embedder's `get_text_embedding_batch`, counting calls, keeping the texts and the
    seconds spent inside it."""

    def __init__(self, embedder: Any) -> None:
        self.calls = 0
        self.seconds = 0.0
        self.texts: list[str] = []
        self.inner = embedder.get_text_embedding_batch
        # An instance attribute shadows the method; pydantic models allow it through object.__setattr__.
        object.__setattr__(embedder, "get_text_embedding_batch", self)

    def __call__(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        self.calls += 1
        self.texts.extend(texts)
        started = time.perf_counter()
        try:
            return self.inner(texts, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


def ours_vs_raw(rag: Any, subset: Path, rounds: int) -> dict:
    """Best-of-rounds seconds for our ingest and for raw encode of exactly the texts it embedded."""
    from rag.embeddings import load_torch, resolve_model_path

    counter = CallCounter(rag.embedder)
    model = load_torch(resolve_model_path(rag.settings.embed_model), rag.settings)._model
    batch = rag.settings.embed_batch_size
    model.encode(["warm up the model"] * batch, batch_size=batch)
    rag.ingest([sorted(subset.iterdir())[0]], rebuild=True)  # warm up our path: imports, collection
    ours, raw, embed_only, inside, chunks = [], [], [], [], 0
    for _ in range(rounds):
        counter.texts, counter.seconds = [], 0.0
        started = time.perf_counter()
        chunks = rag.ingest([subset], rebuild=True).chunks_written
        ours.append(time.perf_counter() - started)
        inside.append(counter.seconds)
        texts = list(counter.texts)
        started = time.perf_counter()
        model.encode(texts, batch_size=batch, normalize_embeddings=True)
        raw.append(time.perf_counter() - started)
        started = time.perf_counter()
        counter.inner(sorted(texts, key=len, reverse=True))  # our embedder alone, in ingest's order
        embed_only.append(time.perf_counter() - started)
    return {
        "chunks": chunks,
        "ours_s": min(ours),
        "raw_encode_s": min(raw),
        "ours_rounds_s": ours,
        "raw_rounds_s": raw,
        "ratio": min(ours) / min(raw),
        "embedder_only_s": min(embed_only),
        # What ingest adds to its own embedder: reading, cleaning, chunking, hashing, Chroma writes.
        "ratio_to_own_embedder": min(ours) / min(embed_only),
        # The same, from each round's two timings back to back: the machine's speed drifts by 10%
        # over a minute here, which the best-of-rounds ratio above takes in whole.
        "ratio_to_own_embedder_rounds": [a / b for a, b in zip(ours, embed_only)],
        # Ingest against the time spent inside its own embedder calls, in the same run: what the
        # reading, chunking, hashing and the writes not hidden behind the model add.
        "ratio_to_embedding_inside": statistics.median(a / b for a, b in zip(ours, inside)),
        "raw_chunks_per_s": chunks / min(raw),
        "batch_size": batch,
    }


def full_and_unchanged(rag: Any, corpus: Path) -> dict:
    """First ingest of the corpus, then a second one with nothing changed, counting embed calls."""
    counter = CallCounter(rag.embedder)
    first = rag.ingest([corpus], rebuild=True)
    counter.calls = 0
    started = time.perf_counter()
    second = rag.ingest([corpus])
    reingest_s = time.perf_counter() - started
    return {
        "articles": len(first.added),
        "chunks": first.chunks_written,
        "first_ingest_s": first.seconds,
        "chunks_per_s": first.chunks_written / first.seconds,
        "reingest_unchanged_s": reingest_s,
        "reingest_embedding_calls": counter.calls,
        "reingest_unchanged_articles": len(second.unchanged),
        "reingest_chunks_written": second.chunks_written,
    }


def run(work: Path, articles: int, ratio_articles: int, rounds: int) -> dict:
    """The ingest phase; leaves `work/home` holding the full corpus for the start-up phase."""
    from rag import RAG

    corpus, subset = work / "articles", work / "subset"
    write_articles(corpus, articles, seed=7)
    write_articles(subset, ratio_articles, seed=11)
    rag = RAG(home=work / "home", corpus=corpus, ollama_host=NO_OLLAMA)
    result = {"ratio": ours_vs_raw(rag, subset, rounds)}
    result["full"] = full_and_unchanged(rag, corpus)
    result["home"] = str(work / "home")
    result["corpus"] = str(corpus)
    return result
