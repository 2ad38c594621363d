"""The `RAG` class: the Python API that the CLI, the app and the eval suite all use.

It wires the stages together and owns the loaded parts (embedder, store, retriever, generator),
built once per object and only when first needed: `rag info` never loads the language model.
`ask()` consumes `stream()`, so there is one path from a question to an answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.answer import (
    ABSTAIN_TEXT,
    NOT_COVERED,
    Answer,
    answer_messages,
    cited_first,
    evidence_messages,
    evidence_text,
    model_abstained,
    reply_from_evidence,
    short_answer,
    span_grammar,
)
from rag.citations import check_support, citations_for, clean_markers
from rag.compose import named_text, reckoned_text, sub_questions, two_names, years_between
from rag.errors import BadInput
from rag.evidence import Evidence, Scorer, holds_asked_kind, question_kind, select
from rag.followup import Standalone, accept_rewrite, condense_messages, joined_question
from rag.ingest import IngestReport, Progress
from rag.retrieve import HybridRetriever, Passage, Retrieval
from rag.safety import REFUSAL_TEXT, is_override_attempt, printable
from rag.scope import NOT_IN_SCOPE, Where, scope_of
from rag.settings import Settings
from rag.text import Annotator

if TYPE_CHECKING:
    from rag.embeddings import EmbeddingCache
    from rag.generate import Backend
    from rag.store import Store, StoredDocument

log = logging.getLogger(__name__)


History = Sequence[dict] | None


class RAG:
    """Ask questions about a folder of articles and get answers that cite their passages."""

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        self.settings = settings.model_copy(update=overrides) if settings else Settings(**overrides)
        self._lock = threading.RLock()
        self._embedder: Any = None
        self._embedding_cache: EmbeddingCache | None = None
        self._store: Store | None = None
        self._retriever: HybridRetriever | None = None
        self._backend: Backend | None = None
        self._scorer: Scorer | None = None
        self._annotator: Annotator | None = None
        self._documents: tuple[str, list[StoredDocument]] = ("", [])  # (store version, its articles)
        # Once the store held chunks, questions skip counting them (a scan in Chroma: 1 to 2 ms at
        # 10k chunks, 10 ms at 100k, on every question); an ingest here counts again.
        self._store_had_chunks = False

    # -- the parts, loaded on first use -------------------------------------------------------

    @property
    def embedder(self) -> Any:
        """The embedding model: ours on ONNX Runtime, or LlamaIndex's `HuggingFaceEmbedding` as a
        fallback (`rag.embeddings.llama_index_embedding` gives LlamaIndex code a `BaseEmbedding`)."""
        with self._lock:
            if self._embedder is None:
                from rag.embeddings import load_embedder

                self._embedder = load_embedder(self.settings)
            return self._embedder

    @property
    def embedding_cache(self) -> EmbeddingCache:
        """The vectors of sentences and words embedded for recent questions (see `EmbeddingCache`)."""
        with self._lock:
            if self._embedding_cache is None:
                from rag.embeddings import EmbeddingCache

                self._embedding_cache = EmbeddingCache(self.embedder, self.settings.embedding_cache_texts)
            return self._embedding_cache

    @property
    def store(self) -> Store:
        """The Chroma collection, checked against the embedding model."""
        return self._open_store()

    def _open_store(self, rebuild: bool = False) -> Store:
        with self._lock:
            if self._store is None or rebuild:
                from rag.embeddings import configured_dimension, embedding_dimension
                from rag.store import Store

                # Read from the model's config when possible: `rag info` then never loads torch.
                dimension = configured_dimension(self.settings) or embedding_dimension(self.embedder)
                self._store = Store.open(self.settings, dimension, rebuild=rebuild)
                self._retriever = None
            return self._store

    @property
    def retriever(self) -> HybridRetriever:
        """Dense + BM25 retriever over the store."""
        with self._lock:
            if self._retriever is None:
                self._retriever = HybridRetriever(self.store, self.embedder, self.settings)
            return self._retriever

    @property
    def backend(self) -> Backend:
        """The generator (Ollama or the embedded model), chosen once."""
        with self._lock:
            if self._backend is None:
                from rag.generate import choose_backend

                self._backend = choose_backend(self.settings)
            return self._backend

    @property
    def scorer(self) -> Scorer:
        """The fitted model that scores evidence sentences and decides abstention (`rag/scorer.json`)."""
        with self._lock:
            if self._scorer is None:
                self._scorer = Scorer.load(self.settings.scorer_path) if self.settings.scorer_path else Scorer.load()
            return self._scorer

    @property
    def annotator(self) -> Annotator:
        """spaCy's entity recogniser, loaded on the first short answer."""
        with self._lock:
            if self._annotator is None:
                self._annotator = Annotator()
            return self._annotator

    def answering_with(self, backend: str, ollama_model: str) -> RAG:
        """A RAG that answers with another backend or Ollama model over this one's parts: the same
        store, retriever, embedder and kept vectors. Loading them again would hold a second
        embedder (about 100 MB) and take its start-up; only the generator differs. Ingest through
        this RAG, not the other: a rebuild here makes a new store the other would not see."""
        other = RAG(self.settings, backend=backend, ollama_model=ollama_model)
        with self._lock:
            other._embedder = self.embedder
            other._embedding_cache = self.embedding_cache
            other._store = self.store
            other._retriever = self.retriever
            other._annotator = self.annotator
        return other

    # -- ingest --------------------------------------------------------------------------------

    def ingest(
        self, paths: Sequence[str | Path] | None = None, rebuild: bool = False, progress: Progress | None = None
    ) -> IngestReport:
        """Add, update and remove articles under `paths` (default: the corpus folder)."""
        from rag.embeddings import piece_counter
        from rag.ingest import ingest

        roots = [Path(p) for p in (paths or [self.settings.corpus])]
        store = self._open_store(rebuild=rebuild)
        report = ingest(roots, store, self.embedder, piece_counter(self.embedder), self.settings, progress)
        self._store_had_chunks = False
        self.retriever.reset()
        log.info("ingest: %s", report.summary())
        return report

    def documents(self) -> list[StoredDocument]:
        """The stored articles, sorted by doc_id."""
        return sorted(self.store.documents().values(), key=lambda d: d.doc_id)

    def ensure_corpus(self, progress: Progress | None = None) -> IngestReport | None:
        """Ingest the default corpus when the store is empty (first run)."""
        if self._store_had_chunks:
            return None
        if self.store.count() == 0:
            return self.ingest([self.settings.corpus], progress=progress)
        self._store_had_chunks = True
        return None

    # -- questions -----------------------------------------------------------------------------

    def check_question(self, question: str) -> str:
        """The question trimmed and without control characters, or BadInput when empty or too long."""
        if isinstance(question, str):
            question = " ".join(printable(question).split())
        if not isinstance(question, str) or not question:
            raise BadInput("the question is empty; type a question about the articles")
        if len(question) > self.settings.max_question_chars:
            raise BadInput(
                f"the question is {len(question):,} characters long; the limit is {self.settings.max_question_chars:,}"
            )
        return question

    def retrieve(self, question: str, k: int | None = None, where: Where = None) -> list[Passage]:
        """The top k passages for a question, most relevant first; only from the articles `where` names."""
        return self._retrieve(self.check_question(question), k, self.scope_ids(where)).passages

    def _retrieve(
        self, question: str, k: int | None, doc_ids: frozenset[str] | None = None, also: str = ""
    ) -> Retrieval:
        self.ensure_corpus()
        return self.retriever.retrieve(question, k, doc_ids, also)

    def lookup(self, standalone: Standalone, k: int | None = None, doc_ids: frozenset[str] | None = None) -> Retrieval:
        """The passages for a question asked as `standalone` in its conversation. A follow-up joined
        to the question before it is also searched in its own words: the joined words find what the
        conversation is about, its own what it asks now."""
        return self._retrieve(standalone.text, k, doc_ids, standalone.asking if standalone.joined else "")

    def scope_ids(self, where: Where) -> frozenset[str] | None:
        """The doc_ids a scope names (None: every article); BadInput when it names none."""
        scope = scope_of(where)
        if not scope:
            return None
        self.ensure_corpus()
        return scope.resolve(self._current_documents())

    def _current_documents(self) -> list[StoredDocument]:
        """The stored articles, read again only when the store changed (reading them all takes a while)."""
        version = self.store.version()
        with self._lock:
            if self._documents[0] != version or not version:
                self._documents = (version, list(self.store.documents().values()))
            return self._documents[1]

    def standalone_question(self, question: str, history: History, usage: dict[str, int] | None = None) -> Standalone:
        """The question made understandable without the conversation, for retrieval, and the words
        that ask (the model's tokens for a rewrite are added to `usage`)."""
        if not history:
            return Standalone(question, question)
        if self.backend.name == "embedded":
            # A 135M model rewrites questions badly; joining to the previous question retrieves well.
            return joined_question(question, history)
        messages = condense_messages(question, list(history))
        rewrite = "".join(self.backend.stream(messages, temperature=0.0, usage=usage))
        return accept_rewrite(rewrite, question, history)

    def ask(
        self,
        question: str,
        history: History = None,
        k: int | None = None,
        temperature: float | None = None,
        where: Where = None,
    ) -> Answer:
        """Answer a question from the articles (only those `where` names), with citations (`stream()` without the pieces)."""
        answer = None
        for event in self.stream(question, history, k=k, temperature=temperature, where=where):
            if isinstance(event, Answer):
                answer = event
        if answer is None:  # stream() always ends with an Answer; this guards a broken generator
            raise RuntimeError("the answer stream ended without an answer")
        return answer

    def stream(
        self,
        question: str,
        history: History = None,
        k: int | None = None,
        temperature: float | None = None,
        where: Where = None,
    ) -> Iterator[str | Answer]:
        """Yield text pieces as they are generated, then the final `Answer`; `where` limits the articles."""
        started = time.perf_counter()
        question = self.check_question(question)
        doc_ids = self.scope_ids(where)
        usage: dict[str, int] = {}  # the model's tokens for this answer, rewrite included
        standalone = self.standalone_question(question, history, usage)
        retrieval = self.lookup(standalone, k, doc_ids)
        timings = {"retrieval_ms": (time.perf_counter() - started) * 1000}
        passages = retrieval.passages
        refusal = self._refusal(question, retrieval, scoped=doc_ids is not None)
        if refusal:
            yield refusal
            timings["total_s"] = time.perf_counter() - started
            how = "refuse" if refusal == REFUSAL_TEXT else "abstain"
            yield Answer(refusal, [], passages, True, "none", "", question, standalone.text, timings=timings, how=how)
            return
        # The sentence that answers is found with the follow-up's own words, else the one that
        # answered before wins again.
        asking = standalone.asking
        kind = question_kind(asking)
        evidence = self.find_evidence(asking, passages, kind)
        timings["evidence_ms"] = (time.perf_counter() - started) * 1000 - timings["retrieval_ms"]
        backend = self.backend
        common = dict(
            backend=backend.name,
            model=backend.model,
            question=question,
            standalone_question=standalone.text,
            notice=backend.notice,
            timings=timings,
            usage=usage,
        )
        small = backend.name == "embedded"
        composed = self._composed(asking, passages, evidence, common, (k, doc_ids)) if small else None
        if composed:  # the years between two events, or two names, put together here: no generation
            timings["total_s"] = time.perf_counter() - started
            yield composed.text
            yield composed
            return
        if small and not self.answers_from(evidence):
            yield ABSTAIN_TEXT  # nothing in the passages scores as an answer: no generation
            timings["total_s"] = time.perf_counter() - started
            yield Answer(ABSTAIN_TEXT, [], passages, True, evidence=evidence, how="abstain", **common)
            return
        shown = evidence[: self.settings.evidence_shown] if small else evidence  # a large model reads them all
        pieces: list[str] = []
        for piece in self._generate(standalone.text, passages, shown, backend, temperature, usage):
            if not pieces:
                timings["ttft_s"] = time.perf_counter() - started
            pieces.append(piece)
            if not small:
                yield piece
        timings["total_s"] = time.perf_counter() - started
        if not small:
            yield self._finish("".join(pieces), passages, evidence, common)
            return
        # The small model's reply is shown only once checked against the evidence: it comes whole.
        answer = self._finish_small("".join(pieces), passages, evidence, kind, common)
        yield answer.text
        yield answer

    def _generate(
        self,
        question: str,
        passages: list[Passage],
        shown: list[Evidence],
        backend: Backend,
        temperature: float | None,
        usage: dict[str, int],
    ) -> Iterator[str]:
        """The model's reply; for the built-in model, limited to the evidence's words, or none at all."""
        mode = self.settings.small_answer if backend.name == "embedded" else "free"
        if mode == "quote":
            return iter(())
        grammar = (span_grammar(evidence_text(shown)) or None) if mode == "constrained" else None
        prompt = self.prompt(question, passages, shown, backend)
        return backend.stream(prompt, temperature, grammar=grammar, usage=usage)

    def prompt(self, question: str, passages: list[Passage], evidence: list[Evidence], backend: Backend) -> list:
        """The messages for the model: the evidence alone for the small built-in model, else whole
        passages with the evidence named."""
        if backend.name == "embedded":
            return evidence_messages(question, evidence)
        return answer_messages(question, passages, evidence)

    def find_evidence(self, question: str, passages: list[Passage], kind: str | None = None) -> list[Evidence]:
        """The sentences of the passages most likely to answer the question, best first; `kind` is
        the kind of answer wanted when not the question's own (a follow-up's)."""
        return select(question, passages, self.similarities, self.scorer, self.settings.evidence_sentences, kind)

    def answers_from(self, evidence: list[Evidence]) -> bool:
        """Whether the best sentence is an answer at all: its probability reaches the threshold and
        it holds the kind of answer asked for."""
        return bool(evidence) and evidence[0].score >= self.min_evidence and holds_asked_kind(evidence[0].signals)

    @property
    def min_evidence(self) -> float:
        """The best sentence's probability below which the built-in model abstains (the fitted one unless set)."""
        given = self.settings.min_evidence
        return self.scorer.threshold if given is None else given

    def _refusal(self, question: str, retrieval: Retrieval, scoped: bool = False) -> str:
        """Why the question gets no generation (an instruction override, or nothing relevant in the
        articles, or in the chosen ones), or ""."""
        if is_override_attempt(question):
            return REFUSAL_TEXT
        if not retrieval.is_relevant(self.settings.min_relevance, self.settings.min_coverage):
            return NOT_IN_SCOPE if scoped else NOT_COVERED
        return ""

    def _composed(
        self, question: str, passages: list[Passage], evidence: list[Evidence], common: dict, search: tuple
    ) -> Answer | None:
        """The answer put together from two facts (rag/compose.py): the years between two events, or
        two names; None when the question asks neither or a fact is not found. Each ask is also
        searched on its own (`search`: k and scope), its passages added after the question's: the
        two facts are often in different articles."""
        for ask in sub_questions(question):
            have = {p.chunk_id for p in passages}
            passages = passages + [p for p in self.retriever.retrieve(ask, *search).passages if p.chunk_id not in have]
        facts = (question, passages, self.similarities, self.scorer, self.min_evidence)
        if years := years_between(*facts):
            text, used, how = reckoned_text(*years), [d.evidence for d in years if d.evidence], "reckon"
        elif names := two_names(*facts):
            text, used, how = named_text(*names), [n.evidence for n in names], "names"
        else:
            return None
        used = sorted(used, key=lambda e: e.score, reverse=True)  # best first, as everywhere
        rest = [e for e in evidence if e not in used]
        return Answer(text, citations_for(text, passages), passages, False, evidence=used + rest, how=how, **common)

    def _finish_small(
        self, raw: str, passages: list[Passage], evidence: list[Evidence], kind: str, common: dict
    ) -> Answer:
        """The small model's reply kept when it only copies from the evidence it was shown, else the
        best evidence quoted; `evidence` is every ranked sentence, those cited first."""
        shown = evidence[: self.settings.evidence_shown]
        question = common["standalone_question"]
        text, how = reply_from_evidence(raw, question, shown, kind)
        dropped = [raw] if how != "model" and raw.strip() else []
        short = short_answer(shown[0], question, kind, self.annotator) if self.settings.short_answers else ""
        if how == "quote" and short:
            text, how = short, "short"
        cited = citations_for(text, passages)
        # Between the abstention threshold and `sure`, an answer is shown with a note of doubt.
        uncertain = shown[0].score < self.scorer.sure
        used = cited_first(evidence, cited)
        return Answer(
            text, cited, passages, False, evidence=used, how=how, dropped=dropped, uncertain=uncertain, **common
        )

    def _finish(self, raw: str, passages: list[Passage], evidence: list[Evidence], common: dict) -> Answer:
        """A large model's reply with checked citations, or an abstention."""
        standalone = common["standalone_question"]
        if model_abstained(raw):
            return Answer(ABSTAIN_TEXT, [], passages, True, evidence=evidence, how="abstain", **common)
        text, dropped = check_support(
            clean_markers(raw, len(passages)), passages, self.similarities, self.settings.min_support, standalone
        )
        if not text:
            return Answer(ABSTAIN_TEXT, [], passages, True, dropped=dropped, evidence=evidence, how="abstain", **common)
        cited = citations_for(text, passages)
        evidence = cited_first(evidence, cited)
        return Answer(text, cited, passages, False, dropped=dropped, evidence=evidence, how="model", **common)

    def similarities(self, sentences: list[str], texts: list[str]) -> list[list[float]]:
        """Cosine similarity of each sentence to each text, with the store's embedder."""
        vectors = self.embedding_cache.vectors(sentences + texts)
        a, b = vectors[: len(sentences)], vectors[len(sentences) :]
        return (a @ b.T).tolist()  # the embedder returns unit vectors

    def info(self) -> dict[str, Any]:
        """Store path, counts, embedding model and the backend that would answer (no LLM loaded)."""
        from rag.generate import describe_backend

        docs = self.documents()
        return {
            "store": self.settings.chroma_url or str(self.settings.chroma_path.resolve()),
            "documents": len(docs),
            "chunks": self.store.count(),
            "embedding_model": f"{self.settings.embed_model} ({self.settings.embed_backend})",
            "backend": describe_backend(self.settings),
            "corpus": str(self.settings.corpus),
        }
