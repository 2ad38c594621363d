"""Retrieval latency at 1k, 10k and 100k chunks: dense, BM25 and hybrid, through the product's classes.

Chunks are recombined seed sentences (see `bench.corpus`), written with `rag.ingest.to_nodes`
and `rag.store.Store.upsert` into a real Chroma collection, and searched with
`rag.retrieve.HybridRetriever` using the real embedder for the questions.
Stand-in vectors: embedding 100k chunks with the model would take over an hour on two cores, and
this measures the index, not the model. So each seed sentence is embedded once with the real
model, and a chunk's vector is the normalised mean of its sentences' vectors plus a little seeded
noise: vectors in the model's own space, clustered the way real chunks are, at no model cost.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.corpus import Recombiner, questions
from bench.measure import NO_OLLAMA, percentile, timed_ms

CHUNKS_PER_ARTICLE = 5
SENTENCES_PER_CHUNK = 6
NOISE = 0.05
WRITE_BATCH = 4000  # under Chroma's maximum batch of 5,461 records


def size_label(size: int) -> str:
    """1000 -> '1k', 100000 -> '100k'."""
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def synthetic_nodes(size: int, sentence_vectors: np.ndarray, seed: int) -> list[Any]:
    """`size` chunk nodes in articles of five, each with its stand-in vector."""
    from rag.chunking import Chunk, chunk_id
    from rag.documents import clean_article
    from rag.ingest import to_nodes

    drawer = Recombiner(seed)
    noise = np.random.default_rng(seed)
    nodes: list[Any] = []
    for article in range(0, size, CHUNKS_PER_ARTICLE):
        parts = [drawer.draw(SENTENCES_PER_CHUNK) for _ in range(min(CHUNKS_PER_ARTICLE, size - article))]
        doc_id = f"synthetic/{article // CHUNKS_PER_ARTICLE:06d}.txt"
        text = "\n\n".join([parts[0].title] + [p.text for p in parts])
        doc = clean_article(text, doc_id=doc_id, source=doc_id)
        chunks, start = [], len(parts[0].title) + 2
        for index, part in enumerate(parts):
            cid = chunk_id(doc_id, doc.content_hash, index)
            chunks.append(Chunk(cid, doc_id, index, part.text, start, start + len(part.text)))
            start += len(part.text) + 2
        for node, part in zip(to_nodes(doc, chunks, "synthetic"), parts):
            vector = sentence_vectors[list(part.sentence_ids)].mean(axis=0)
            vector = vector / np.linalg.norm(vector) + noise.normal(0, NOISE / np.sqrt(len(vector)), len(vector))
            node.embedding = (vector / np.linalg.norm(vector)).tolist()
            nodes.append(node)
    return nodes


def build_store(home: Path, size: int, embedder: Any, sentence_vectors: np.ndarray) -> tuple[Any, Any, dict]:
    """A fresh store of `size` synthetic chunks, and how long writing it took."""
    from rag.embeddings import embedding_dimension
    from rag.settings import Settings
    from rag.store import Store

    settings = Settings(home=home, ollama_host=NO_OLLAMA)
    store = Store.open(settings, embedding_dimension(embedder), rebuild=True)
    started = time.perf_counter()
    nodes = synthetic_nodes(size, sentence_vectors, seed=size)
    made = time.perf_counter() - started
    for offset in range(0, len(nodes), WRITE_BATCH):
        store.upsert(nodes[offset : offset + WRITE_BATCH])
    return store, settings, {"generate_s": made, "write_s": time.perf_counter() - started - made}


def bm25_startup(store: Any, settings: Any) -> dict:
    """Seconds to the first BM25 index of a process: built from the store, then loaded as saved."""
    from rag.retrieve import HybridRetriever

    started = time.perf_counter()
    HybridRetriever(store, None, settings).bm25()
    built = time.perf_counter() - started
    started = time.perf_counter()
    store.nodes()
    read = time.perf_counter() - started
    started = time.perf_counter()
    HybridRetriever(store, None, settings).bm25()
    return {"bm25_build_s": built, "read_nodes_s": read, "bm25_load_saved_s": time.perf_counter() - started}


def latencies(retriever: Any, embedder: Any, asked: list[str], warmup: int = 3) -> dict:
    """Per-question milliseconds of each search, after a few warm-up questions."""
    for question in asked[:warmup]:
        retriever.retrieve(question)
    times: dict[str, list[float]] = {"dense": [], "bm25": [], "hybrid": [], "query_embedding": []}
    for question in asked:
        times["dense"] += timed_ms(lambda q=question: retriever.dense(q), 1)
        times["bm25"] += timed_ms(lambda q=question: retriever.lexical(q), 1)
        times["hybrid"] += timed_ms(lambda q=question: retriever.retrieve(q), 1)
        times["query_embedding"] += timed_ms(lambda q=question: embedder.get_query_embedding(q), 1)
    return {
        name: {"p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95), "n": len(values)}
        for name, values in times.items()
    }


def run(work: Path, sizes: list[int], question_limit: int | None) -> dict:
    """The retrieval phase: for each size, build a store, time BM25 start-up and the three searches."""
    from bench.corpus import seed_sentences
    from rag.embeddings import load_embedder
    from rag.retrieve import HybridRetriever
    from rag.settings import Settings

    embedder = load_embedder(Settings(home=work / "embedder", ollama_host=NO_OLLAMA))
    sentence_vectors = np.asarray(embedder.get_text_embedding_batch(seed_sentences()))
    asked = [row["question"] for row in questions(question_limit)]
    results = {}
    for size in sizes:
        home = work / f"retrieval-{size_label(size)}"
        store, settings, build = build_store(home, size, embedder, sentence_vectors)
        startup = bm25_startup(store, settings)
        retriever = HybridRetriever(store, embedder, settings)
        results[size_label(size)] = {
            "chunks": store.count(),
            **build,
            **startup,
            **latencies(retriever, embedder, asked),
        }
    return {"sizes": results, "vectors": "mean of real MiniLM sentence vectors + seeded noise", "questions": len(asked)}
