"""Retrieval at 1k, 10k and 100k chunks (1M on request): the searches, start-up, and adding one article.

Chunks are recombined seed sentences (see `bench.corpus`), made with `rag.ingest.to_nodes` and
written as ingest writes them, to a real Chroma collection (`rag.store.Store.upsert`) and to the
lexical index (`rag.lexical.LexicalIndex.add`), then searched with `rag.retrieve.HybridRetriever`
using the real embedder for the questions.
Stand-in vectors: embedding 100k chunks with the model would take over an hour on two cores, and
this measures the index, not the model. So each seed sentence is embedded once with the real
model, and a chunk's vector is the normalised mean of its sentences' vectors plus a little seeded
noise: vectors in the model's own space, clustered the way real chunks are, at no model cost.
The raw libraries on the same input stand beside ours: `collection.query` for dense search,
bm25s (what LlamaIndex's BM25Retriever, which the lexical index replaced, runs) for BM25.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench.corpus import Recombiner, questions
from bench.measure import NO_OLLAMA, percentile, python_child, run_child, timed_ms

CHUNKS_PER_ARTICLE = 5
# Scoped questions: about one article in 20 (5% of the store), one in 100, and a single article.
SCOPES = {"hybrid_scoped": 20, "hybrid_scoped_1pct": 100, "hybrid_scoped_one": 0}
SENTENCES_PER_CHUNK = 6
NOISE = 0.05
WRITE_BATCH = 4000  # under Chroma's maximum batch of 5,461 records
PROGRESS_EVERY = 50_000  # chunks between the build's progress lines (stderr)
BASELINE_UP_TO = 100_000  # bm25s in memory at 1M chunks would not fit beside the rest
ADDED = "Zorvathian envoy Quellimar Ostrava met the Kuril delegation"  # words no synthetic chunk holds


def size_label(size: int) -> str:
    """1000 -> '1k', 100000 -> '100k', 1000000 -> '1m'."""
    if size % 1_000_000 == 0:
        return f"{size // 1_000_000}m"
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def progress(line: str) -> None:
    """A progress line on stderr: `--sizes 1m` shows them while its hour of writes runs."""
    print(line, file=sys.stderr, flush=True)


def synthetic_batches(size: int, sentence_vectors: np.ndarray, seed: int) -> Iterator[list[Any]]:
    """`size` chunk nodes in articles of five, each with its stand-in vector, a write batch at a time."""
    from rag.chunking import Chunk, chunk_id
    from rag.documents import clean_article
    from rag.ingest import to_nodes

    drawer = Recombiner(seed)
    noise = np.random.default_rng(seed)
    batch: list[Any] = []
    for article in range(0, size, CHUNKS_PER_ARTICLE):
        parts = [drawer.draw(SENTENCES_PER_CHUNK) for _ in range(min(CHUNKS_PER_ARTICLE, size - article))]
        doc_id = f"synthetic/{article // CHUNKS_PER_ARTICLE:07d}.txt"
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
            batch.append(node)
        if len(batch) >= WRITE_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def build_store(home: Path, size: int, embedder: Any, sentence_vectors: np.ndarray) -> tuple[Any, Any, dict]:
    """A fresh store of `size` synthetic chunks, written to Chroma and the lexical index as ingest does."""
    from rag.chunking import embed_text
    from rag.embeddings import embedding_dimension
    from rag.lexical import LexicalIndex, index_path
    from rag.settings import Settings
    from rag.store import Store

    settings = Settings(home=home, ollama_host=NO_OLLAMA)
    store = Store.open(settings, embedding_dimension(embedder), rebuild=True)
    index = LexicalIndex(index_path(settings))
    index.catch_up(store, force=True)  # empty; records which collection it mirrors
    timing = {"generate_s": 0.0, "write_s": 0.0, "lexical_write_s": 0.0}
    began = started = time.perf_counter()
    written, next_report = 0, PROGRESS_EVERY
    for batch in synthetic_batches(size, sentence_vectors, seed=size):
        timing["generate_s"] += time.perf_counter() - started
        started = time.perf_counter()
        store.upsert(batch)
        timing["write_s"] += time.perf_counter() - started
        started = time.perf_counter()
        index.add((n.node_id, n.metadata["doc_id"], embed_text(n.metadata["title"], n.text)) for n in batch)
        timing["lexical_write_s"] += time.perf_counter() - started
        written += len(batch)
        if written >= next_report:
            next_report += PROGRESS_EVERY
            elapsed = time.perf_counter() - began
            progress(f"{size_label(size)} store: {written:,} of {size:,} chunks written, {elapsed:.0f} s")
        started = time.perf_counter()
    started = time.perf_counter()
    index.compact(force=True)
    timing["lexical_write_s"] += time.perf_counter() - started
    index.set_meta("synced", store.version())  # as ingest does when it holds the write lock
    return store, settings, timing


def lexical_startup(store: Any, size: int) -> dict:
    """The one-off cost of a lexical index from nothing (a new machine on a shared server, an upgrade):
    ours caught up from the store, and bm25s indexing the same texts read back the same way."""
    from rag.lexical import LexicalIndex

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        fresh = LexicalIndex(Path(folder) / "fresh.sqlite3")
        fresh.catch_up(store, force=True)
        ours = time.perf_counter() - started
        disk = sum(f.stat().st_size for f in Path(folder).glob("fresh.sqlite3*")) / 2**20  # with its WAL
        fresh.close()
    result = {"lexical_first_build_s": ours, "lexical_index_mb": disk}
    if size <= BASELINE_UP_TO:
        result.update(bm25s_build(store))
    return result


def quiet_bm25s() -> None:
    """bm25s sets its logger to DEBUG when imported, which would print among the progress lines."""
    logging.getLogger("bm25s").setLevel(logging.ERROR)


def bm25s_build(store: Any) -> dict:
    """Raw bm25s over the same texts, tokenised as the BM25Retriever did (read back from Chroma)."""
    import bm25s
    import Stemmer

    quiet_bm25s()
    started = time.perf_counter()
    texts = [text for _, _, text in store.index_texts(store.ids())]
    read = time.perf_counter() - started
    started = time.perf_counter()
    tokens = bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"), show_progress=False)
    bm25s.BM25().index(tokens, show_progress=False)
    return {"read_texts_s": read, "bm25s_build_s": time.perf_counter() - started}


def scope_of(size: int, every: int) -> frozenset[str]:
    """The doc_ids of one article in `every` ("only the articles from March"); the middle article alone for 0."""
    articles = -(-size // CHUNKS_PER_ARTICLE)
    chosen = range(0, articles, every) if every else [articles // 2]
    return frozenset(f"synthetic/{n:07d}.txt" for n in chosen)


def latencies(retriever: Any, embedder: Any, asked: list[str], size: int, warmup: int = 3) -> dict:
    """Per-question milliseconds of each search, ours and the raw libraries', after warm-up questions.

    A scope's chunks are looked up once and kept while the store is unchanged (as in a chat that
    keeps its chosen articles); `scope_lookup_ms` is that first lookup for the 5% scope."""
    for question in asked[:warmup]:
        retriever.retrieve(question)
    collection, k = retriever.store.collection, retriever.settings.candidates
    scopes = {name: scope_of(size, every) for name, every in SCOPES.items()}
    lookup = timed_ms(lambda: retriever.index.scoped(scopes["hybrid_scoped"]), 3)
    calls = {
        "dense": retriever.dense,
        "bm25": retriever.lexical,
        "hybrid": retriever.retrieve,
        **{name: lambda q, s=scope: retriever.retrieve(q, doc_ids=s) for name, scope in scopes.items()},
        "query_embedding": embedder.get_query_embedding,
        "raw_dense": lambda q: collection.query(
            query_embeddings=[embedder.get_query_embedding(q)], n_results=k, include=["documents", "metadatas"]
        ),
        "lexical_index": lambda q: retriever.index.search(q, k),  # the chunk ids alone, no texts read
        "sequential": lambda q: (retriever.dense(q), retriever.lexical(q)),  # both, one after the other
    }
    times: dict[str, list[float]] = {name: [] for name in calls}
    for question in asked:
        for name, call in calls.items():
            times[name] += timed_ms(lambda c=call, q=question: c(q), 1)
    return {
        **{
            name: {"p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95), "n": len(values)}
            for name, values in times.items()
        },
        "scope_lookup_ms": lookup[0],
    }


def fts5_baseline(index: Any, asked: list[str], k: int) -> dict:
    """SQLite FTS5, the other candidate: its bm25() over the very stems our index holds, per question."""
    with tempfile.TemporaryDirectory() as folder:
        db = sqlite3.connect(Path(folder) / "fts5.sqlite3")
        db.execute("CREATE VIRTUAL TABLE terms USING fts5(stems)")
        db.execute("ATTACH ? AS lexical", (str(index.path),))
        started = time.perf_counter()
        db.execute("INSERT INTO terms(rowid, stems) SELECT row, stems FROM lexical.chunks")
        db.commit()
        built = time.perf_counter() - started
        sql = "SELECT rowid, -bm25(terms) FROM terms WHERE terms MATCH ? ORDER BY bm25(terms) LIMIT ?"
        times = []
        for question in asked:
            query = " OR ".join(f'"{term}"' for term in dict.fromkeys(index.terms(question)))
            times += timed_ms(lambda q=query: db.execute(sql, (q, k)).fetchall(), 1) if query else []
        db.close()
    timing = {"p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95), "n": len(times)}
    return {"raw_fts5": timing, "fts5_build_s": built}


def add_one(home: Path, asked: list[str]) -> dict:
    """A running reader and a second process's reader, one article ingested, then one question each."""
    from rag import RAG

    folder = home.parent / "added"
    folder.mkdir(exist_ok=True)
    (folder / "envoy.txt").write_text(f"Envoy visits the Kurils\n\n{ADDED} in Tokyo on Friday.\n", encoding="utf-8")
    writer, reader = RAG(home=home, ollama_host=NO_OLLAMA), RAG(home=home, ollama_host=NO_OLLAMA)
    for rag in (writer, reader):
        rag.retrieve(asked[0])  # both running and warm, as an app is when someone adds an article
    started = time.perf_counter()
    writer.ingest([folder])
    ingest_s = time.perf_counter() - started
    result = {"add_one_ingest_s": ingest_s}
    for name, rag in (("writer", writer), ("reader", reader)):
        started = time.perf_counter()
        passages = rag.retrieve("Quellimar Ostrava", k=1)
        result[f"add_one_then_retrieve_{name}_s"] = time.perf_counter() - started
        result[f"add_one_found_{name}"] = bool(passages) and passages[0].doc_id == "envoy.txt"
    return result


def fresh_reader(home: Path) -> dict:
    """A new process on the store, from start to its first passages, and its peak memory."""
    child = run_child(python_child("bench.reader", str(home), "Where did Lavrov and Kishida hold talks?"))
    return {"fresh_reader_s": child.seconds, "fresh_reader_rss_mb": child.peak_rss_mb, **child.json()}


def bm25s_reader(home: Path, store: Any, size: int) -> dict:
    """The same for the reader this replaced: the saved BM25Retriever index loaded, then both searches."""
    if size > BASELINE_UP_TO:
        return {}
    from llama_index.retrievers.bm25 import BM25Retriever

    quiet_bm25s()
    folder = home.parent / "bm25s-saved"
    BM25Retriever.from_defaults(nodes=store.nodes(), similarity_top_k=20).persist(str(folder), show_progress=False)
    child = run_child(python_child("bench.reader", str(home), "Where did Lavrov and Kishida hold talks?", str(folder)))
    return {"bm25s_reader_s": child.seconds, "bm25s_reader_rss_mb": child.peak_rss_mb}


def run(work: Path, sizes: list[int], question_limit: int | None) -> dict:
    """The retrieval phase: for each size, build a store, time start-up, the searches and adding one article."""
    from bench.corpus import seed_sentences
    from rag.embeddings import load_embedder
    from rag.retrieve import HybridRetriever
    from rag.settings import Settings

    embedder = load_embedder(Settings(home=work / "embedder", ollama_host=NO_OLLAMA))
    sentence_vectors = np.asarray(embedder.get_text_embedding_batch(seed_sentences()))
    asked = [row["question"] for row in questions(question_limit)]
    results = {}
    for size in sizes:
        home = work / f"retrieval-{size_label(size)}" / ".rag"
        store, settings, build = build_store(home, size, embedder, sentence_vectors)
        progress(f"{size_label(size)}: a lexical index from nothing")
        startup = lexical_startup(store, size)
        progress(f"{size_label(size)}: the searches, {len(asked)} questions")
        retriever = HybridRetriever(store, embedder, settings)
        searches = latencies(retriever, embedder, asked, size)
        if size <= BASELINE_UP_TO:
            searches.update(fts5_baseline(retriever.index, asked, settings.candidates))
        progress(f"{size_label(size)}: fresh readers, then adding one article")
        readers = {**fresh_reader(home), **bm25s_reader(home, store, size)}
        results[size_label(size)] = {
            "chunks": store.count(),
            **build,
            **startup,
            **searches,
            **readers,
            **add_one(home, asked),
        }
    return {"sizes": results, "vectors": "mean of real MiniLM sentence vectors + seeded noise", "questions": len(asked)}
