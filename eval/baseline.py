"""The naive baseline: a plain LlamaIndex `VectorStoreIndex` over the same corpus, for comparison.

Default chunking (`SentenceSplitter`, 1024 tokens), default top k (2), in memory, dense only,
no abstention gate, no citations, no follow-up handling (the question is asked alone). It shares
our embedder and our generator's LLM object, passed explicitly, so the difference in the report
is what our pipeline adds, not a different model.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from eval.dataset import Row
from rag import RAG
from rag.answer import model_abstained


class NaiveBaseline:
    """Retrieve and answer with LlamaIndex's defaults."""

    def __init__(self, index: Any, corpus: Path, llm: Any = None) -> None:
        self.index = index
        self.corpus = corpus.resolve()
        self.retriever = index.as_retriever()
        self.engine = index.as_query_engine(llm=llm, streaming=True) if llm is not None else None

    @classmethod
    def from_rag(cls, rag: RAG, with_llm: bool = True) -> NaiveBaseline:
        """An in-memory index of `rag`'s corpus with `rag`'s embedder (and its generator's LLM)."""
        from llama_index.core import SimpleDirectoryReader, VectorStoreIndex

        from rag.embeddings import llama_index_embedding

        corpus = Path(rag.settings.corpus)
        documents = SimpleDirectoryReader(str(corpus), recursive=True).load_data()
        index = VectorStoreIndex.from_documents(documents, embed_model=llama_index_embedding(rag.embedder))
        return cls(index, corpus, rag.backend.llm if with_llm else None)

    def doc_id(self, node: Any) -> str:
        """A node's file relative to the corpus folder, as our doc_ids are."""
        path = Path(node.metadata.get("file_path", node.metadata.get("file_name", ""))).resolve()
        return path.relative_to(self.corpus).as_posix() if path.is_relative_to(self.corpus) else path.name

    def retrieve(self, row: Row) -> tuple[list[Any], dict]:
        """The retrieved nodes and the row's retrieval outcome."""
        started = time.perf_counter()
        nodes = self.retriever.retrieve(row.question)
        outcome = {"retrieved": [self.doc_id(n.node) for n in nodes], "retrieval_ms": _since(started) * 1000}
        return nodes, outcome

    def retrieval_only(self, row: Row) -> dict:
        """Retrieval outcome of one row."""
        return self.retrieve(row)[1]

    def answer(self, row: Row, backend: Any) -> dict:
        """Retrieval and answer outcome of one row, streamed to time the first token."""
        from llama_index.core.schema import QueryBundle

        if self.engine is None:
            raise ValueError("this baseline was built without an LLM")
        started = time.perf_counter()
        nodes, outcome = self.retrieve(row)
        pieces: list[str] = []
        with backend.lock:  # the same llama.cpp model our pipeline uses, which is not thread-safe
            for piece in self.engine.synthesize(QueryBundle(row.question), nodes).response_gen:
                if not pieces:
                    outcome["ttft_s"] = _since(started)
                pieces.append(piece)
        text = "".join(pieces).strip()
        outcome.update(answer=text, abstained=model_abstained(text), total_s=_since(started))
        outcome.update(backend=backend.name, model=backend.model)
        return outcome


def _since(started: float) -> float:
    return time.perf_counter() - started
