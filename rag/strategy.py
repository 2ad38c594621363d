"""The interface every way of answering implements, and what it is handed for one question.

`RAG.stream()` checks the question, retrieves passages and ranks their sentences (rag/evidence.py)
whatever the backend; then a `Strategy` makes the answer: `Extractive` (rag/extractive.py) for
the built-in 135M model, which quotes or copies from the evidence, and `Writing`
(rag/writing.py) for a model that writes from whole passages (Ollama). `RAG` picks one by the
backend's name from `rag.api.STRATEGIES`; a new way of answering is one class registered there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rag.answer import ABSTAIN_TEXT, Answer, How, Piece
from rag.evidence import Evidence, Scorer, Similarity
from rag.followup import Standalone
from rag.retrieve import Passage, Retrieval
from rag.settings import Settings
from rag.text import Annotator

if TYPE_CHECKING:
    from rag.generate import Backend


@dataclass
class Turn:
    """One question on its way to an answer. Each step reads the question it names:
    - `question`, as asked: the override check, and the answer's record;
    - `standalone.text`, made understandable without the conversation: retrieval, the model's
      prompt and the check of its reply;
    - `standalone.asking`, the words that ask now: the evidence and the kind of answer wanted."""

    question: str
    standalone: Standalone
    passages: list[Passage]
    kind: str = ""  # the kind of answer asked for (rag.evidence.follow_up_kind of `standalone`)
    evidence: list[Evidence] = field(default_factory=list)
    k: int | None = None
    doc_ids: frozenset[str] | None = None  # the articles a scope allows (None: all)
    # What one article's own lines answer: "opening" (what it says) or "byline" (who wrote it), the
    # evidence then being those lines; "" for any other question.
    whole_article: str = ""
    temperature: float | None = None
    usage: dict[str, int] = field(default_factory=dict)  # the model's tokens so far, a rewrite included
    timings: dict[str, float] = field(default_factory=dict)

    def answer(self, backend: Backend | None, **fields: object) -> Answer:
        """The `Answer` to this turn: the fields a strategy decides, and the turn's own."""
        made_by = {"backend": backend.name, "model": backend.model, "notice": backend.notice} if backend else {}
        common = {
            "question": self.question,
            "standalone_question": self.standalone.text,
            "passages": self.passages,
            "timings": self.timings,
            "usage": self.usage,
        }
        return Answer(**(common | made_by | fields))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Tools:
    """The parts of a `RAG` a strategy may use, loaded once and shared by every strategy over it."""

    settings: Settings
    scorer: Scorer
    annotator: Annotator
    similarity: Similarity
    search: Callable[[str, int | None, frozenset[str] | None], Retrieval]  # a second retrieval


class Strategy:
    """How one kind of backend answers: first the question made standalone, then the answer."""

    def __init__(self, backend: Backend, tools: Tools) -> None:
        self.backend = backend
        self.tools = tools

    def standalone(self, question: str, history: Sequence[dict] | None, usage: dict[str, int]) -> Standalone:
        """The question made understandable without the conversation (`usage` gains a model's tokens)."""
        raise NotImplementedError

    def answer(self, turn: Turn) -> Generator[Piece, None, Answer]:
        """Yield the text as it is written; return the `Answer` with its citations checked."""
        raise NotImplementedError

    def messages(self, question: str, passages: Sequence[Passage], evidence: Sequence[Evidence]) -> list:
        """The chat messages the model reads for a question (for benchmarks and inspection)."""
        raise NotImplementedError

    def abstain(self, turn: Turn, **fields: object) -> Answer:
        """The articles don't say."""
        return turn.answer(self.backend, text=ABSTAIN_TEXT, how=How.ABSTAIN, evidence=turn.evidence, **fields)


def timed(
    pieces: Generator[Piece, None, Answer], timings: dict[str, float], started: float
) -> Generator[Piece, None, Answer]:
    """A strategy's pieces passed on, the time to the first noted (`ttft_s`); returns its `Answer`."""
    while True:
        try:
            piece = next(pieces)
        except StopIteration as done:
            return done.value
        timings.setdefault("ttft_s", time.perf_counter() - started)
        yield piece
