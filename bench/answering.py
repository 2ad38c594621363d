"""Answering speed of the built-in model's default path (the best evidence sentence, quoted), with and
without the embedding cache, on the same questions in one run.

Evidence selection embeds every sentence of the retrieved passages and the words of the best ones:
nearly all of such an answer's time. `rag.embeddings.EmbeddingCache` keeps those vectors. Three
passes over the same questions of the eval set, on the seed articles: the cache off
(`embedding_cache_texts=0`), the cache on from empty (a chat's questions in turn), and the same
questions again (a text embedded before is not embedded again). The answers must not change.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.corpus import SEEDS, questions
from bench.measure import NO_OLLAMA, percentile


def timed_answers(rag: object, asked: list[str]) -> tuple[list[float], list[str]]:
    """Seconds and answer text of each question, asked in turn."""
    seconds, texts = [], []
    for question in asked:
        started = time.perf_counter()
        answer = rag.ask(question)  # type: ignore[attr-defined]
        seconds.append(time.perf_counter() - started)
        texts.append(answer.text)
    return seconds, texts


def run(work: Path, question_limit: int) -> dict:
    """The three passes over the first `question_limit` questions without history."""
    from rag import RAG

    asked = [row["question"] for row in questions() if not row.get("history")][:question_limit]
    passes: dict[str, tuple[list[float], list[str]]] = {}
    for name, cached in (("uncached", 0), ("cached_first", None)):
        overrides = {} if cached is None else {"embedding_cache_texts": cached}
        rag = RAG(home=work / "answering-home", corpus=SEEDS, backend="embedded", ollama_host=NO_OLLAMA, **overrides)
        rag.ingest([SEEDS])
        rag.ask(asked[-1])  # warm-up: imports, the store, the retriever, the embedder's first runs
        rag.embedding_cache.clear()  # of the warm-up's texts
        passes[name] = timed_answers(rag, asked)
    passes["cached_again"] = timed_answers(rag, asked)
    base = percentile(passes["uncached"][0], 50)
    return {
        "questions": len(asked),
        **{
            name: {"p50_s": percentile(seconds, 50), "p95_s": percentile(seconds, 95)}
            for name, (seconds, _) in passes.items()
        },
        "speedup_first": base / percentile(passes["cached_first"][0], 50),
        "speedup_again": base / percentile(passes["cached_again"][0], 50),
        "same_answers": len({tuple(texts) for _, texts in passes.values()}) == 1,
        "cached_texts": len(rag.embedding_cache),
    }
