"""Hybrid retrieval: dense vectors from Chroma plus BM25, fused by reciprocal rank, then de-duplicated.

Chroma does the dense search (`rag.store`) and `rag.lexical` the BM25 one, at the same time in
two threads. The fusion is ours, not LlamaIndex's: `QueryFusionRetriever` overwrites each hit's score with its fused rank score (we need the dense
cosine for the abstention gate) and falls back to the global `Settings.llm`. The diversity step
is ours too: the articles repeat the same background paragraphs, and k copies of one paragraph
would waste the model's context, so a passage mostly contained in one already chosen is skipped.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from itertools import chain, groupby
from typing import TYPE_CHECKING, Any, TypeVar

from rag.lexical import LexicalIndex, Scoped, index_path
from rag.settings import Settings
from rag.store import Store, StoredChunk, Vectors
from rag.text import WORD, content_terms

if TYPE_CHECKING:
    from rag.embeddings import Embedder

log = logging.getLogger(__name__)
SCOPES_KEPT = 16  # scopes whose chunks a retriever keeps (one a chat, while the store is unchanged)
ALSO_PLACES = 2  # of a question's passages, those another wording of it may take (see `with_passages_for`)
VECTORS_KEPT_UP_TO = 2000  # chunks of a scope whose vectors are kept too (3 MB at 384 dimensions)


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk as the rest of the pipeline sees it; `start`/`end` index the original file."""

    doc_id: str
    title: str
    text: str
    score: float
    start: int
    end: int
    dateline: str = ""
    chunk_id: str = ""
    similarity: float | None = None  # dense cosine, when the dense search found it
    found_by: tuple[str, ...] = ()  # which searches found it: "dense" (meaning), "bm25" (words)
    lines: tuple[tuple[int, int], ...] = ()  # (offset in text, offset in the original) of each line
    headings: tuple[str, ...] = ()  # the headings over its first line, outermost first
    after_heading: bool = False  # whether one of them ends right before it
    # The levels its file marks for its headings ("Fees", 2), by which `rag.evidence` places them.
    heading_levels: tuple[tuple[str, int], ...] = ()

    @cached_property
    def terms(self) -> frozenset[str]:
        """The content terms of its text and title, stemmed once for the tie-break and the coverage gate."""
        return frozenset(content_terms(self.text + " " + self.title))

    def original_offset(self, offset: int) -> int:
        """The character offset in the original file of an offset in `text`."""
        line_start, original = max(((a, b) for a, b in self.lines if a <= offset), default=(0, self.start))
        return original + offset - line_start

    def to_dict(self) -> dict:
        """The passage as every JSON output shows it (CLI, app, HTTP API, eval)."""
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "dateline": self.dateline,
            "text": self.text,
            "score": self.score,
            "similarity": self.similarity,
            "start": self.start,
            "end": self.end,
            "found_by": list(self.found_by),
        }


@dataclass(frozen=True)
class Retrieval:
    """The passages for one question, with the two signals the abstention gate reads."""

    passages: list[Passage]
    best_similarity: float  # highest dense cosine among the candidates
    coverage: float  # share of the question's content words found in the passages

    def is_relevant(self, min_similarity: float, min_coverage: float, coverage: float | None = None) -> bool:
        """Whether anything found is about the question: close in meaning, or naming its rare words;
        `coverage` in place of the question's own when some of its words ask rather than name
        ("Who wrote the story about the dam?" is about the dam, `RAG.written_of`)."""
        covered = self.coverage if coverage is None else coverage
        return bool(self.passages) and (self.best_similarity >= min_similarity or covered >= min_coverage)


def to_passage(chunk: StoredChunk, score: float, similarity: float | None, found_by: tuple[str, ...] = ()) -> Passage:
    """A stored chunk, its scores and the searches that found it as a plain `Passage`."""
    meta = chunk.metadata
    return Passage(
        doc_id=meta.get("doc_id", ""),
        title=meta.get("title", ""),
        text=chunk.text,
        score=score,
        start=int(meta.get("start", 0)),
        end=int(meta.get("end", 0)),
        dateline=meta.get("dateline", ""),
        chunk_id=chunk.chunk_id,
        similarity=similarity,
        found_by=found_by,
        lines=_stored_pairs(meta.get("lines"), int, int),
        headings=tuple(h for h in str(meta.get("headings") or "").split("\n") if h),
        after_heading=bool(meta.get("after_heading", False)),
        heading_levels=_stored_pairs(meta.get("heading_levels"), str, int),
    )


def led_by(lead: Passage, passages: Sequence[Passage], k: int) -> list[Passage]:
    """`k` passages, `lead` first (an article's opening, when what it says is asked), then the
    others found, without it again."""
    return [lead, *[p for p in passages if p.chunk_id != lead.chunk_id][: k - 1]]


A = TypeVar("A")
B = TypeVar("B")


def _stored_pairs(value: object, first: Callable[[Any], A], second: Callable[[Any], B]) -> tuple[tuple[A, B], ...]:
    """Pairs a chunk's metadata holds as JSON (its line map, its headings' levels); empty for a
    chunk stored before they were recorded, or a value that is not such a list."""
    try:
        return tuple((first(a), second(b)) for a, b in json.loads(str(value)))
    except (TypeError, ValueError):
        return ()


def reciprocal_rank_fusion(rankings: list[list[str]], k: int) -> dict[str, float]:
    """Fused score per id: the sum over rankings of 1 / (k + rank), rank starting at 1."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


def with_passages_for(passages: list[Passage], others: list[Passage], k: int) -> list[Passage]:
    """The passages with the first of another wording's passages in the last places (ALSO_PLACES, at
    most half of k), k in all. Fused with equal weight, a follow-up's own vague words ("And what
    did it restore?") moved the conversation's article out of the first place (article hit@1 0.850
    to 0.823); in the last places they add the sentence that answers what it asks now
    (eval/README.md)."""
    places = min(ALSO_PLACES, k // 2)
    head = passages[: k - places]
    have = {p.chunk_id for p in head}
    added = [p for p in others[:places] if p.chunk_id not in have]
    have |= {p.chunk_id for p in added}
    return (head + added + [p for p in passages[len(head) :] if p.chunk_id not in have])[:k]


def found_by(chunk_id: str, rankings: dict[str, list[str]]) -> tuple[str, ...]:
    """The names of the searches whose ranking holds the chunk, in the rankings' order."""
    return tuple(name for name, ranking in rankings.items() if chunk_id in ranking)


def term_coverage(question: str, passages: Sequence[Passage], ignored: frozenset[str] = frozenset()) -> float:
    """Share of the question's content words, but the `ignored` ones, that occur in the passages (0
    when it has none).

    Dense similarity misses short name questions ("Who is Ada Lindqvist?" may score under 0.2), while
    an off-topic question shares almost no words with any passage.
    """
    wanted = content_terms(question) - ignored
    if not wanted:
        return 0.0
    found = set().union(*(p.terms for p in passages)) if passages else set()
    return len(wanted & found) / len(wanted)


def break_ties(passages: list[Passage], question: str) -> list[Passage]:
    """The passages by fused score, and among equal scores (the first of one search and the first
    of the other score the same in rank fusion) the one holding more of the question's words first:
    a new article's rare name found only by BM25 must not lose to a vague dense match."""
    return list(tie_broken(sorted(passages, key=lambda p: -p.score), question))


def tie_broken(passages: Iterable[Passage], question: str) -> Iterator[Passage]:
    """Passages already in fused order, each run of equal scores reordered as `break_ties` does, lazily:
    a run's words are counted only when it is reached (stemming every candidate cost more than the
    rest of the fusion, and diversity stops after k)."""
    wanted: set[str] | None = None
    for _, same in groupby(passages, key=lambda p: p.score):
        run = list(same)
        if len(run) > 1:
            wanted = content_terms(question) if wanted is None else wanted
            run.sort(key=lambda p: -len(wanted & p.terms))
        yield from run


def _kept_as_walked(passages: Iterable[Passage], walked: list[Passage]) -> Iterator[Passage]:
    """The passages, each added to `walked` as it is reached."""
    for passage in passages:
        walked.append(passage)
        yield passage


def shingles(text: str, size: int = 3) -> set[tuple[str, ...]]:
    """Word n-grams of a text, lower-cased, for near-duplicate detection."""
    words = WORD.findall(text.lower())
    return {tuple(words[i : i + size]) for i in range(max(len(words) - size + 1, 1))}


def diverse(passages: Iterable[Passage], k: int, max_overlap: float) -> list[Passage]:
    """The first k passages, skipping any whose shingles are mostly inside one already chosen. A
    passage that holds a chosen one and more is kept: measured against the smaller of the two, an
    article's opening chunk was dropped for its short last chunk, which the chunk overlap puts
    mostly inside it, and with it the sentence that answered (eval/README.md)."""
    chosen: list[tuple[Passage, set]] = []
    for passage in passages:
        grams = shingles(passage.text)
        if all(len(grams & other) / max(len(grams), 1) <= max_overlap for _, other in chosen):
            chosen.append((passage, grams))
        if len(chosen) == k:
            break
    return [p for p, _ in chosen]


@dataclass
class KeptScope:
    """A scope's chunks and, once read, their vectors (a small scope's only)."""

    chunks: Scoped
    vectors: Vectors | None = None


class HybridRetriever:
    """Dense (Chroma) and lexical (BM25 in `rag.lexical`) search over one store, run at once, then fused."""

    def __init__(
        self, store: Store, embedder: Embedder, settings: Settings, lexical: LexicalIndex | None = None
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.index = lexical or LexicalIndex(index_path(settings))
        self._version = ""  # the store version both indexes reflect
        # Scopes' chunks (and a small scope's vectors), kept while the store is at this version.
        self._scopes: tuple[str, dict[frozenset[str], KeptScope]] = ("", {})
        self._lock = threading.Lock()
        # The lexical search runs here while the calling thread runs the dense one: ONNX Runtime,
        # Chroma and SQLite all release the GIL in their native code.
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lexical")

    def reset(self) -> None:
        """Check the store's version again before the next search, after this process wrote to it."""
        with self._lock:
            self._version = ""

    def refresh(self) -> None:
        """After a write by this or another process or machine, catch both indexes up with the store."""
        with self._lock:
            version = self.store.version()
            if version != self._version:
                self.store.catch_up()
                added, removed = self.index.catch_up(self.store)
                if added or removed:
                    log.info("lexical index caught up: %d chunks added, %d removed", added, removed)
                self._version = version

    def dense(self, question: str, scope: KeptScope | None = None) -> list[tuple[str, float]]:
        """The dense half of `retrieve`: ids of the chunks nearest the question by cosine similarity
        of their embeddings, nearest first, with that similarity; only the scope's chunks when given
        (searched as `Store.nearest_among` says, or a small scope's kept vectors scored here)."""
        vector, k = self.embedder.get_query_embedding(question), self.settings.candidates
        if scope is None:
            return self.store.nearest(vector, k)
        chunks = scope.chunks
        if len(chunks.chunk_ids) > VECTORS_KEPT_UP_TO:
            return self.store.nearest_among(vector, k, chunks.chunk_ids, chunks.total)
        if scope.vectors is None:  # a small scope's vectors are read once, then scored here
            scope.vectors = self.store.vectors(chunks.chunk_ids)
        return scope.vectors.nearest(vector, k)

    def lexical(self, question: str, scope: KeptScope | None = None) -> list[tuple[str, float]]:
        """The lexical half of `retrieve`: ids of the best chunks by BM25 (names, numbers and rare
        words the embedder blurs), best first, with their score; chunks holding none of the
        question's words are left out (only the scope's chunks when given)."""
        within = scope.chunks if scope else None
        hits = self.index.search(question, self.settings.candidates, within=within)
        return [(chunk_id, score) for chunk_id, score in hits if score > 0]

    def _kept(self, doc_ids: Collection[str] | None) -> KeptScope | None:
        """A scope's chunks, looked up once and kept for the questions that follow while the store
        is unchanged: a chat keeps its chosen articles."""
        if doc_ids is None:
            return None
        self.refresh()
        key = frozenset(doc_ids)
        with self._lock:
            if self._scopes[0] != self._version:
                self._scopes = (self._version, {})
            kept = self._scopes[1].get(key)
        if kept is None:
            kept = KeptScope(self.index.scoped(key))
            with self._lock:
                cache = self._scopes[1]
                if len(cache) >= SCOPES_KEPT:
                    cache.pop(next(iter(cache)))
                cache[key] = kept
        return kept

    def retrieve(
        self, question: str, k: int | None = None, doc_ids: Collection[str] | None = None, also: str = ""
    ) -> Retrieval:
        """The top k diverse passages for a question, by reciprocal rank fusion of both searches.

        With `doc_ids` (a resolved `rag.scope.Scope`) both searches rank only those articles' chunks,
        before fusion, so k passages still come from inside the scope. `also` is another wording
        (a follow-up's own words): its best passages take the last places. Both searches return ids;
        texts are read afterwards for the fused candidates diversity looks at, a few more than k."""
        k = k or self.settings.top_k
        self.refresh()
        kept = self._kept(doc_ids)
        lexical = self._pool.submit(self.lexical, question, kept)
        similarity = dict(self.dense(question, kept))
        rankings = {"dense": list(similarity), "bm25": [cid for cid, _ in lexical.result()]}
        fused = reciprocal_rank_fusion(list(rankings.values()), self.settings.rrf_k)
        ranked = sorted(fused, key=lambda cid: fused[cid], reverse=True)
        passages: list[Passage] = []
        chosen: list[Passage] = []
        for batch in (ranked[: 2 * k], ranked[2 * k :]):  # the rest only when repeats used up the first
            if len(chosen) == k or not batch:
                break
            chunks = {chunk.chunk_id: chunk for chunk in self.store.chunks(batch)}
            found = [
                to_passage(chunks[c], fused[c], similarity.get(c), found_by(c, rankings)) for c in batch if c in chunks
            ]
            # Diversity walks the batch as it is put in order, so it stops before ordering the rest.
            walked = chain(list(passages), _kept_as_walked(tie_broken(found, question), passages))
            chosen = diverse(walked, k, self.settings.duplicate_overlap)
        if also:
            chosen = with_passages_for(chosen, self.retrieve(also, k, doc_ids).passages, k)
        best = max(similarity.values(), default=0.0)
        return Retrieval(chosen, best, term_coverage(question, chosen))
