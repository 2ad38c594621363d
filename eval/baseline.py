"""Baselines to compare with: a plain LlamaIndex pipeline, and the best sentence quoted.

The naive baseline is a plain LlamaIndex `VectorStoreIndex` over the same corpus: default
chunking (`SentenceSplitter`, 1024 tokens), default top k (2), in memory, dense only, no
abstention gate, no citations, no follow-up handling (the question is asked alone). It shares our
embedder and our generator's LLM object, passed explicitly, so the difference in the report is
what our pipeline adds, not a different model.

The sentence baseline takes our retrieved passages and quotes, with its `[n]`, the sentence that
scores best by cosine to the question (our embedder) plus the idf-weighted share of the question's
content words it holds: no gate, no answer kinds, no model, never an abstention. It shows what the
answering stage adds over the plainest use of the same retrieval.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.dataset import Row
from eval.metrics import answer_words
from rag import RAG
from rag.citations import model_abstained
from rag.retrieve import Passage
from rag.text import content_terms, idf, rarity, sentence_spans, word_overlap

MIN_WORDS = 4  # shorter lines are titles and headings, which resemble every question about their topic


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
        outcome.update(answer=text, answer_words=answer_words(text), abstained=model_abstained(text))
        outcome["total_s"] = _since(started)
        outcome.update(backend=backend.name, model=backend.model)
        return outcome


def sentence_outcome(rag: RAG, row: Row, answer: bool = True) -> dict:
    """The sentence baseline on one row: retrieval, its sentences ranked and (with `answer`) the best
    one quoted with its passage number. Follow-ups are asked alone; nothing retrieved, nothing quoted."""
    started = time.perf_counter()
    passages = rag.retrieve(row.question)
    outcome: dict = {"retrieved": [p.doc_id for p in passages], "retrieval_ms": _since(started) * 1000}
    found = candidate_sentences(passages)
    scored = sorted(zip(sentence_scores(rag, row.question, [s for _, s in found]), found), key=lambda x: -x[0])
    outcome.update(evidence=[s for _, (_, s) in scored], evidence_score=scored[0][0] if scored else 0.0)
    if answer:
        number, best = scored[0][1] if scored else (0, "")
        text = f"“{best}” [{number}]" if best else ""
        outcome.update(answer=text, answer_words=answer_words(text), answer_sentence=best, abstained=not best)
        outcome.update(
            how="quote" if best else "abstain", backend="baseline", model="sentence", total_s=_since(started)
        )
    return outcome


def candidate_sentences(passages: Sequence[Passage]) -> list[tuple[int, str]]:
    """(1-based passage number, sentence) for each distinct sentence of the passages that can state a fact."""
    seen: set[str] = set()
    found = []
    for number, passage in enumerate(passages, start=1):
        for start, end in sentence_spans(passage.text):
            text = passage.text[start:end]
            if len(text.split()) >= MIN_WORDS and text not in seen:
                seen.add(text)
                found.append((number, text))
    return found


def sentence_scores(rag: RAG, question: str, sentences: list[str]) -> list[float]:
    """Cosine of question and sentence plus the share of the question's content words in the sentence,
    each word weighted by its idf over these sentences (a word none of them holds weighs most)."""
    if not sentences:
        return []
    cosines = rag.similarities([question], sentences)[0]
    terms = [content_terms(s) for s in sentences]
    asked, weight, unseen = content_terms(question), rarity(terms), idf(0, len(terms))
    return [cosine + word_overlap(asked, held, weight, unseen) for cosine, held in zip(cosines, terms, strict=True)]


def _since(started: float) -> float:
    return time.perf_counter() - started
