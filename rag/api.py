"""The `RAG` class: the Python API that the CLI, the app and the eval suite all use.

It wires the stages together and owns the loaded parts (embedder, store, retriever, generator),
built once per object and only when first needed: `rag info` never loads the language model.
`ask()` consumes `stream()`, so there is one path from a question to an answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, Unpack

from rag.answer import NOT_COVERED, Answer, Event, How, Piece, final_answer
from rag.chunking import chunk_id
from rag.evidence import Evidence, Scorer, follow_up_kind, opening, select, written_by
from rag.extractive import Extractive
from rag.followup import Standalone
from rag.ingest import IngestReport, Progress
from rag.retrieve import HybridRetriever, Passage, Retrieval, led_by, term_coverage, to_passage
from rag.safety import REFUSAL_TEXT, checked_question, is_override_attempt
from rag.scope import (
    NOT_IN_SCOPE,
    WHICH_ARTICLE,
    WHOLE_ARTICLE,
    WRITER_WORDS,
    Where,
    asks_what_it_says,
    asks_who_wrote,
    credited_articles,
    named_articles,
    names_no_article,
    scope_of,
)
from rag.settings import Settings
from rag.strategy import Strategy, Tools, Turn, timed
from rag.text import Annotator
from rag.writing import Writing

if TYPE_CHECKING:
    from rag.embeddings import EmbeddingCache
    from rag.generate import Backend
    from rag.store import Store, StoredDocument

log = logging.getLogger(__name__)


History = Sequence[dict] | None
T = TypeVar("T")


class Options(TypedDict, total=False):
    """What `ask()` and `stream()` take beside the question and its history."""

    k: int | None  # passages handed to the model (default: the settings' top_k)
    temperature: float | None
    where: Where  # only these articles (rag/scope.py)


# How each backend answers (rag/strategy.py): a new way of answering is a class added here.
STRATEGIES: dict[str, type[Strategy]] = {"embedded": Extractive, "ollama": Writing, "openai": Writing}


class RAG:
    """Ask questions about a folder of articles and get answers that cite their passages."""

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        self.settings = settings.model_copy(update=overrides) if settings else Settings(**overrides)
        self._lock = threading.RLock()
        self._parts: dict[str, Any] = {}  # what `_part` has loaded, by name
        self._documents: tuple[str, list[StoredDocument]] = ("", [])  # (store version, its articles)
        # Once the store held chunks, questions skip counting them (a scan in Chroma: 1 to 2 ms at
        # 10k chunks, 10 ms at 100k, on every question); an ingest here counts again.
        self._store_had_chunks = False

    # -- the parts, loaded on first use -------------------------------------------------------

    def _part(self, name: str, load: Callable[[], T]) -> T:
        """The part of that name, loaded by `load` the first time it is needed."""
        with self._lock:
            if name not in self._parts:
                self._parts[name] = load()
            return self._parts[name]

    def loaded(self, name: str) -> bool:
        """Whether a part ("embedder", "store", "backend", …) has been loaded: `rag info` and a
        refused question load no model."""
        return name in self._parts

    @property
    def embedder(self) -> Any:
        """The embedding model: ours on ONNX Runtime, or LlamaIndex's `HuggingFaceEmbedding` as a
        fallback (`rag.embeddings.llama_index_embedding` gives LlamaIndex code a `BaseEmbedding`)."""
        from rag.embeddings import load_embedder

        return self._part("embedder", lambda: load_embedder(self.settings))

    @property
    def embedding_cache(self) -> EmbeddingCache:
        """The vectors of sentences and words embedded for recent questions (see `EmbeddingCache`)."""
        from rag.embeddings import EmbeddingCache

        return self._part("embedding_cache", lambda: EmbeddingCache(self.embedder, self.settings.embedding_cache_texts))

    @property
    def store(self) -> Store:
        """The Chroma collection, checked against the embedding model."""
        return self._part("store", self._open_store)

    def _open_store(self, rebuild: bool = False) -> Store:
        """The store opened (or dropped and made again); what reads it is rebuilt on first use."""
        from rag.embeddings import configured_dimension, embedding_dimension
        from rag.store import Store

        with self._lock:
            # Read from the model's config when possible: `rag info` then never loads torch.
            dimension = configured_dimension(self.settings) or embedding_dimension(self.embedder)
            for name in ("store", "retriever", "strategy"):
                self._parts.pop(name, None)
            self._parts["store"] = Store.open(self.settings, dimension, rebuild=rebuild)
            return self._parts["store"]

    @property
    def retriever(self) -> HybridRetriever:
        """Dense + BM25 retriever over the store."""
        return self._part("retriever", lambda: HybridRetriever(self.store, self.embedder, self.settings))

    @property
    def backend(self) -> Backend:
        """The generator (Ollama or the embedded model), chosen once."""
        from rag.generate import choose_backend

        return self._part("backend", lambda: choose_backend(self.settings))

    @property
    def strategy(self) -> Strategy:
        """How the backend answers (`STRATEGIES`), with the parts it may use."""
        return self._part("strategy", lambda: STRATEGIES[self.backend.name](self.backend, self._tools()))

    def _tools(self) -> Tools:
        similarity = self.embedding_cache.similarities
        return Tools(self.settings, self.scorer, self.annotator, similarity, self.retriever.retrieve)

    @property
    def scorer(self) -> Scorer:
        """The fitted model that scores evidence sentences and decides abstention (`rag/scorer.json`)."""
        path = self.settings.scorer_path
        return self._part("scorer", lambda: Scorer.load(path) if path else Scorer.load())

    @property
    def annotator(self) -> Annotator:
        """spaCy's entity recogniser (loaded on the first short answer)."""
        return self._part("annotator", Annotator)

    def answering_with(self, **overrides: str) -> RAG:
        """A RAG that answers with another backend or model (`overrides` of the settings) over this
        one's parts: the same store, retriever, embedder and kept vectors. Loading them again would
        hold a second embedder (about 100 MB) and take its start-up; only the generator differs.
        Ingest through this RAG, not the other: a rebuild here makes a new store the other would not see."""
        other = RAG(self.settings, **overrides)
        shared = (self.embedder, self.embedding_cache, self.store, self.retriever, self.annotator)
        other._parts.update(zip(("embedder", "embedding_cache", "store", "retriever", "annotator"), shared))
        return other

    # -- ingest --------------------------------------------------------------------------------

    def ingest(
        self, paths: Sequence[str | Path] | None = None, rebuild: bool = False, progress: Progress | None = None
    ) -> IngestReport:
        """Add, update and remove articles under `paths` (default: the corpus folder)."""
        from rag.embeddings import piece_counter
        from rag.ingest import ingest

        roots = [Path(p) for p in (paths or [self.settings.corpus])]
        store = self._open_store(rebuild=True) if rebuild else self.store
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
        return checked_question(question, self.settings.max_question_chars)

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
        that ask (a model's tokens for a rewrite are added to `usage`)."""
        if not history:
            return Standalone(question, question)
        return self.strategy.standalone(question, history, {} if usage is None else usage)

    def ask(self, question: str, history: History = None, **options: Unpack[Options]) -> Answer:
        """Answer a question from the articles, with citations: `stream()` without the pieces."""
        return final_answer(self.stream(question, history, **options))

    def stream(
        self,
        question: str,
        history: History = None,
        k: int | None = None,
        temperature: float | None = None,
        where: Where = None,
    ) -> Iterator[Event]:
        """Yield `Piece`s of the text as it is written, then the final `Answer`; `where` limits the articles.

        The question goes down the stages once: checked, made standalone, retrieved, refused or its
        sentences ranked (rag/evidence.py), then answered by the backend's strategy."""
        started = time.perf_counter()
        question = self.check_question(question)
        doc_ids = self.scope_ids(where)
        usage: dict[str, int] = {}
        standalone = self.standalone_question(question, history, usage)
        doc_ids, lead = self.named_scope(standalone, doc_ids)
        retrieval = self.lookup(standalone, k, doc_ids)
        writer = lead is None and asks_who_wrote(standalone.asking)
        lead = self.written_of(standalone, retrieval, doc_ids) if writer else lead
        writer = writer and lead is not None
        timings = {"retrieval_ms": (time.perf_counter() - started) * 1000}
        passages = retrieval.passages if lead is None else led_by(lead, retrieval.passages, k or self.settings.top_k)
        turn = Turn(question, standalone, passages, k=k, doc_ids=doc_ids, temperature=temperature)
        turn.usage, turn.timings = usage, timings  # a rewrite's tokens, the time so far: the answer's own
        turn.whole_article = "" if lead is None else "byline" if writer else "opening"
        refusal = self.refusal(turn, retrieval)
        if refusal is None:
            turn.kind = follow_up_kind(standalone.asking, standalone.previous)
            if lead is None:
                turn.evidence = self.find_evidence(standalone.scored, turn.passages, turn.kind)
            else:
                turn.evidence = written_by(lead) if writer else opening(lead, self.settings.evidence_sentences)
            timings["evidence_ms"] = (time.perf_counter() - started) * 1000 - timings["retrieval_ms"]
            answer = yield from timed(self.strategy.answer(turn), timings, started)
        else:
            answer = refusal
            yield Piece(answer.text)
        timings["total_s"] = time.perf_counter() - started
        yield answer

    def refusal(self, turn: Turn, retrieval: Retrieval) -> Answer | None:
        """The answer when the question gets none from the backend: an instruction override, or
        nothing relevant in the articles (or in the chosen ones); an article asked for as a whole
        is relevant by being named. Who wrote "the article", of several and none named, is asked back."""
        if is_override_attempt(turn.question):
            return turn.answer(None, text=REFUSAL_TEXT, how=How.REFUSE)
        standalone = turn.standalone
        if not turn.whole_article and asks_who_wrote(standalone.asking) and names_no_article(standalone.text):
            return turn.answer(None, text=WHICH_ARTICLE, how=How.ABSTAIN)
        if not turn.whole_article and not retrieval.is_relevant(
            self.settings.min_relevance, self.settings.min_coverage
        ):
            return turn.answer(None, text=NOT_COVERED if turn.doc_ids is None else NOT_IN_SCOPE, how=How.ABSTAIN)
        return None

    def named_scope(
        self, standalone: Standalone, doc_ids: frozenset[str] | None
    ) -> tuple[frozenset[str] | None, Passage | None]:
        """The articles the question names by quoted title, inside the scope given (rag/scope.py),
        and the named article's first passage when it asks only what that article says. Only the
        words that ask now count: a follow-up joined to a question that named an article is not
        held to it ("Who started it?" may be about any article)."""
        named, rest = named_articles(standalone.asking, self._named_documents)
        named = named if doc_ids is None else named & doc_ids
        if not named:
            return doc_ids, None
        if len(named) > 1 or not asks_what_it_says(rest):
            return named, None
        return named, self.first_passage(next(iter(named)))

    def written_of(
        self, standalone: Standalone, retrieval: Retrieval, doc_ids: frozenset[str] | None
    ) -> Passage | None:
        """The first passage of the article a question asks who wrote, whose byline answers it (or
        its lack: the article does not say): the one article in the scope or the store, else the
        one whose dateline credits the agency the question names ("the AP story"), else the one
        retrieval ranks first, if the question says what it is about and what was found is about
        that at all. None when there is no such article, and the question is answered as any
        other, refused, or asked back (`refusal`)."""
        documents = [d for d in self._named_documents() if doc_ids is None or d.doc_id in doc_ids]
        credited = credited_articles(standalone.asking, documents)
        # "Who wrote the story about the dam?" is about the dam: "wrote" and "story" are in no article's words.
        relevant = retrieval.is_relevant(
            self.settings.min_relevance,
            self.settings.min_coverage,
            coverage=term_coverage(standalone.asking, retrieval.passages, WHOLE_ARTICLE | WRITER_WORDS),
        )
        found = [p.doc_id for p in retrieval.passages if p.doc_id in credited] if relevant else []
        if len(documents) == 1:
            article = documents[0].doc_id
        elif len(credited) == 1 or found:  # the one story of the agency named, or the one found of several
            article = (found or credited)[0]
        elif names_no_article(standalone.text):
            return None
        elif relevant:
            article = retrieval.passages[0].doc_id
        else:
            return None
        return self.first_passage(article)

    def _named_documents(self) -> list[StoredDocument]:
        self.ensure_corpus()
        return self._current_documents()

    def first_passage(self, doc_id: str) -> Passage | None:
        """The opening chunk of a stored article as a passage, found by its title (None when the
        store lacks it); its score is 1, first by being named."""
        doc = next((d for d in self._current_documents() if d.doc_id == doc_id), None)
        if doc is None or len(doc.content_hashes) != 1:
            return None
        chunks = self.store.chunks([chunk_id(doc_id, next(iter(doc.content_hashes)), 0)])
        return to_passage(chunks[0], 1.0, None, ("title",)) if chunks else None

    def find_evidence(self, question: str, passages: list[Passage], kind: str | None = None) -> list[Evidence]:
        """The sentences of the passages most likely to answer the question, best first; `kind` is
        the kind of answer wanted when not the question's own (a follow-up's)."""
        similarity = self.embedding_cache.similarities
        return select(question, passages, similarity, self.scorer, self.settings.evidence_sentences, kind)

    def similarities(self, sentences: list[str], texts: list[str]) -> list[list[float]]:
        """Cosine similarity of each sentence to each text, with the store's embedder."""
        return self.embedding_cache.similarities(sentences, texts)

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
