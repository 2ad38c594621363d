"""`python -m bench.reader HOME QUESTION [BM25_DIR]`: a fresh reader process, start to first passages.

Without BM25_DIR it is ours: `RAG(home).retrieve(question)`, the lexical index opened from disk.
With it, the reader the lexical index replaced: the embedder, the store's dense search and
LlamaIndex's `BM25Retriever` loaded from the folder it was saved in. The parent times the process
and reads its peak memory; this prints what the first question cost inside it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bench.measure import NO_OLLAMA


def ours(home: Path, question: str) -> int:
    """Passages found by the product's reader."""
    from rag import RAG

    return len(RAG(home=home, ollama_host=NO_OLLAMA).retrieve(question))


def saved_bm25s(home: Path, question: str, folder: Path) -> int:
    """Hits found by dense search plus the saved bm25s index, as the replaced reader did."""
    from llama_index.retrievers.bm25 import BM25Retriever

    from rag.embeddings import embedding_dimension, load_embedder
    from rag.settings import Settings
    from rag.store import Store

    settings = Settings(home=home, ollama_host=NO_OLLAMA)
    embedder = load_embedder(settings)
    store = Store.open(settings, embedding_dimension(embedder))
    bm25 = BM25Retriever.from_persist_dir(str(folder), show_progress=False)
    hits = store.nearest(embedder.get_query_embedding(question), 20)
    return len(store.nodes([chunk_id for chunk_id, _ in hits])) + len(bm25.retrieve(question))


def main(argv: list[str]) -> None:
    """Answer one question and print how long the first one took in this process."""
    started = time.perf_counter()
    home, question = Path(argv[0]), argv[1]
    found = saved_bm25s(home, question, Path(argv[2])) if len(argv) > 2 else ours(home, question)
    sys.stdout.write("\n" + json.dumps({"found": found, "in_process_s": time.perf_counter() - started}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
