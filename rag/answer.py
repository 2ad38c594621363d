"""What an answer is, as every caller receives it: the `Answer`, the events of its stream, and its JSON.

`RAG.stream()` yields `Piece`s of text as they are written, then one `Answer`. `ask()`, the CLI,
the chat and the HTTP API all read that stream through `text_then_answer`, and all turn the
`Answer` into JSON with `answer_json`: one shape everywhere (the HTTP API puts OpenAI's envelope
around the same fields). How the answer is made is rag/strategy.py's business; this module only
holds what flows out of it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from rag.citations import Citation
from rag.evidence import Evidence
from rag.retrieve import Passage

ABSTAIN_TEXT = "The articles don't say."
NOT_COVERED = "The articles don't cover this: none of the passages found is about it."
UNCERTAIN_NOTE = "This is the closest sentence found; it may not say exactly what you asked."


class How(StrEnum):
    """How the answer was made."""

    MODEL = "model"  # a model's reply, its citations checked
    SHORT = "short"  # the one name, date or number of the asked kind in the best sentence
    QUOTE = "quote"  # the best evidence sentence quoted
    OPENING = "opening"  # the opening sentence of the article the question names, quoted (rag/scope.py)
    BYLINE = "byline"  # the byline of the article the question asks who wrote, quoted (rag/scope.py)
    RECKON = "reckon"  # the years between two events, each cited (rag/compose.py)
    NAMES = "names"  # two names, each cited (rag/compose.py)
    ABSTAIN = "abstain"  # the articles don't say, or don't cover the question
    REFUSE = "refuse"  # an attempt to change the assistant's rules


@dataclass(frozen=True, kw_only=True)
class Answer:
    """A reply with its sources; `citations` point only at `passages`, `evidence` at sentences of them."""

    text: str
    how: How
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    backend: str = "none"  # "none": refused before any backend was asked
    model: str = ""
    question: str = ""  # as asked
    standalone_question: str = ""  # as searched: a follow-up joined to, or rewritten with, the conversation
    notice: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)  # what the model wrote that no passage supported
    # Every ranked sentence of the passages, those of the cited passages first, each run best first
    # (the same for every backend; `used_evidence` is the ones the answer rests on).
    evidence: list[Evidence] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)  # the model's tokens; empty when no model ran
    # The best sentence's probability is under the scorer's `sure`: shown, but marked as possibly
    # not saying what was asked.
    uncertain: bool = False

    @property
    def abstained(self) -> bool:
        """Whether the answer declines: the articles don't say, or the question was refused."""
        return self.how in (How.ABSTAIN, How.REFUSE)

    @property
    def used_evidence(self) -> list[Evidence]:
        """The evidence sentences in the passages the answer cites, best first (none for an abstention)."""
        if self.abstained:
            return []
        cited = {c.marker for c in self.citations}
        return [e for e in self.evidence if e.passage in cited]

    @property
    def quotes_its_evidence(self) -> bool:
        """Whether the answer's text holds its best evidence sentence whole (a quote, an opening, a
        byline), so that showing the sentence again would repeat it; a wire story's "no byline"
        answer cites its dateline without quoting it."""
        used = self.used_evidence
        return bool(used) and " ".join(used[0].text.split()) in self.text


@dataclass(frozen=True)
class Piece:
    """A piece of the answer's text as it is written; the pieces of one stream joined are its draft."""

    text: str


Event = Piece | Answer
T = TypeVar("T")


def text_then_answer(events: Iterable[Event], show: Callable[[str], T] = str) -> Generator[T, None, Answer]:
    """Yield each piece's text as `show` makes it (the text itself, an event of a stream, HTML);
    return the final `Answer`: `answer = yield from text_then_answer(events)`."""
    for event in events:
        if isinstance(event, Answer):
            return event
        yield show(event.text)
    raise RuntimeError("the answer stream ended without an answer")


def final_answer(events: Iterable[Event]) -> Answer:
    """The `Answer` a stream ends with, its pieces read and dropped."""
    pieces = text_then_answer(events)
    while True:
        try:
            next(pieces)
        except StopIteration as done:
            return done.value


def usage_counts(answer: Answer) -> dict[str, int]:
    """OpenAI's token counts: the model's prompt and reply tokens (a follow-up's rewrite included),
    zero when no model ran (an evidence quote, an abstention before generation)."""
    counted = {key: answer.usage.get(key, 0) for key in ("prompt_tokens", "completion_tokens")}
    return {**counted, "total_tokens": sum(counted.values())}


def answer_json(answer: Answer) -> dict:
    """The answer as JSON shows it: `rag ask --json`, the app's `/ask`, and the HTTP API beside
    OpenAI's fields (so no key here is one of OpenAI's but `usage`, which is OpenAI's shape)."""
    used = answer.used_evidence
    return {
        "answer": answer.text,
        "abstained": answer.abstained,
        "how": answer.how.value,
        "uncertain": answer.uncertain,
        "answered_by": {"backend": answer.backend, "model": answer.model, "notice": answer.notice},
        "usage": usage_counts(answer),
        "citations": [{"marker": c.marker, **c.passage.to_dict()} for c in answer.citations],
        "evidence": [e.to_dict() | {"cited": e in used} for e in answer.evidence],
        "passages": [p.to_dict() for p in answer.passages],
    }


def cited_first(evidence: Sequence[Evidence], citations: Sequence[Citation]) -> list[Evidence]:
    """The ranked sentences with those of the cited passages first, each group in its own order."""
    cited = {c.marker for c in citations}
    return sorted(evidence, key=lambda e: e.passage not in cited)
