"""Follow-up questions: make "and when was that?" standalone before retrieval.

A large model (Ollama) rewrites the question with the conversation (`CONDENSE_PROMPT`, as
LlamaIndex's condense-plus-context engine does); the built-in 135M model
rewrites badly, so for it, and whenever a rewrite looks wrong, the follow-up is joined to the
previous question, which is enough for retrieval.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.citations import model_abstained
from rag.evidence import ONLY_NAMES
from rag.safety import printable, sanitize
from rag.text import content_terms

CONDENSE_PROMPT = """\
Rewrite the last question so that it can be understood without the conversation.
Keep every name, date and number. Reply with the rewritten question only.

Conversation:
{history}

Last question: {question}
Standalone question:"""

FOLLOW_UP_WORDS = re.compile(
    r"^(?:and|but|so|also|what about|how about|then)\b|"
    r"\b(?:it|its|that|this|those|these|they|them|their|he|him|his|she|her|there|then|the same)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Standalone:
    """A question made understandable without the conversation: `text` is what retrieval searches
    with, `asking` the words that ask. They differ only when a follow-up was joined to the question
    before it: "And when was that visit?" wants a date, whatever the question before it wanted."""

    text: str
    asking: str

    @property
    def joined(self) -> bool:
        """Whether the follow-up was joined to the previous question (and is also searched alone)."""
        return self.text != self.asking

    @property
    def scored(self) -> str:
        """What the evidence is scored against: the follow-up's own words, or the joined question
        when they name nothing but what is asked ("For how long?", "When?", "How many?"), which
        alone match every sentence alike, or only name what to ask the question before of ("And
        in the world?" after "How many leopards live in Nepal?"): alone, "world" matched the
        "World Wildlife Fund" of another sentence."""
        only_names = names_nothing(self.asking) or ONLY_NAMES.search(self.asking) is not None
        return self.text if self.joined and only_names else self.asking

    @property
    def previous(self) -> str:
        """The question before, that a joined follow-up leans on ("" when not joined)."""
        return self.text.removesuffix(self.asking).strip() if self.joined else ""


# The measure a "how" asks for ("long" in "For how long?"): what is asked, not what it is asked of.
HOW_MEASURE = re.compile(r"\bhow\s+(\w+)", re.IGNORECASE)


def names_nothing(question: str) -> bool:
    """Whether a question has no content word but the measure a "how" asks for."""
    return not content_terms(question) - content_terms(" ".join(HOW_MEASURE.findall(question)))


CHAIN = 3  # questions a follow-up is joined to at most: a follow-up of a follow-up of a question


def previous_question(history: Sequence[dict] | None) -> str:
    """The last question the user asked before this one, led by the ones it leaned on in turn:
    "Who is the mayor?", "What did she say?", then "Where did she say it?" is joined to both, or
    it would lose whom it is about."""
    chain: list[str] = []
    for turn in reversed(history or []):
        content = printable(str(turn.get("content", ""))).strip()
        if turn.get("role") == "user" and content:
            chain.insert(0, content)
            if len(chain) == CHAIN or not looks_dependent(content):
                break
    return " ".join(chain)


def looks_dependent(question: str) -> bool:
    """A question that leans on the conversation: pronouns, "and ...", or only a few words."""
    return bool(FOLLOW_UP_WORDS.search(question)) or len(question.split()) <= 3


def joined_question(question: str, history: Sequence[dict] | None) -> Standalone:
    """A follow-up prefixed with the previous question, which is enough for retrieval; asking in its own words."""
    previous = previous_question(history)
    if not previous or not looks_dependent(question):
        return Standalone(question, question)
    return Standalone(f"{previous} {question}", question)


def condense_messages(question: str, history: Sequence[dict]) -> list:
    """A request to rewrite the follow-up as a standalone question."""
    from llama_index.core.llms import ChatMessage

    lines = [f"{t.get('role', 'user')}: {sanitize(str(t.get('content', '')))[:800]}" for t in history[-6:]]
    prompt = CONDENSE_PROMPT.format(history="\n".join(lines), question=sanitize(question))
    return [ChatMessage(role="user", content=prompt)]


def accept_rewrite(rewrite: str, question: str, history: Sequence[dict]) -> Standalone:
    """The model's rewrite when it is a plausible question (it then asks in its own words), else the
    joined question."""
    rewrite = rewrite.strip().strip('"').splitlines()[0].strip() if rewrite.strip() else ""
    if 3 <= len(rewrite) <= 4 * len(question) + 200 and not model_abstained(rewrite):
        return Standalone(rewrite, rewrite)
    return joined_question(question, history)
