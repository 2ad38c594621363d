"""Follow-up questions: make "and when was that?" standalone before retrieval.

A large model (Ollama) rewrites the question with the conversation (`CONDENSE_PROMPT` in
rag/answer.py, as LlamaIndex's condense-plus-context engine does); the built-in 135M model
rewrites badly, so for it, and whenever a rewrite looks wrong, the follow-up is joined to the
previous question, which is enough for retrieval.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.answer import CONDENSE_PROMPT, model_abstained
from rag.safety import printable, sanitize

FOLLOW_UP_WORDS = re.compile(
    r"^(?:and|but|so|also|what about|how about|then)\b|"
    r"\b(?:it|its|that|this|those|these|they|them|their|he|him|his|she|her|there|then|the same)\b",
    re.IGNORECASE,
)


def previous_question(history: Sequence[dict] | None) -> str:
    """The last question the user asked before this one."""
    for turn in reversed(history or []):
        content = printable(str(turn.get("content", ""))).strip()
        if turn.get("role") == "user" and content:
            return content
    return ""


def looks_dependent(question: str) -> bool:
    """A question that leans on the conversation: pronouns, "and ...", or only a few words."""
    return bool(FOLLOW_UP_WORDS.search(question)) or len(question.split()) <= 3


def joined_question(question: str, history: Sequence[dict] | None) -> str:
    """The follow-up prefixed with the previous question, which is enough for retrieval."""
    previous = previous_question(history)
    if not previous or not looks_dependent(question):
        return question
    return f"{previous} {question}"


def asking_part(question: str, standalone: str) -> str:
    """The words that ask: the follow-up itself when it was joined to the previous question ("And
    when was that visit?" wants a date, whatever the question before it wanted), else the
    standalone question."""
    joined = standalone != question and standalone.endswith(f" {question}")
    return question if joined else standalone


def condense_messages(question: str, history: Sequence[dict]) -> list:
    """A request to rewrite the follow-up as a standalone question."""
    from llama_index.core.llms import ChatMessage

    lines = [f"{t.get('role', 'user')}: {sanitize(str(t.get('content', '')))[:800]}" for t in history[-6:]]
    prompt = CONDENSE_PROMPT.format(history="\n".join(lines), question=sanitize(question))
    return [ChatMessage(role="user", content=prompt)]


def accept_rewrite(rewrite: str, question: str, history: Sequence[dict]) -> str:
    """The model's rewrite when it is a plausible question, else the joined question."""
    rewrite = rewrite.strip().strip('"').splitlines()[0].strip() if rewrite.strip() else ""
    if 3 <= len(rewrite) <= 4 * len(question) + 200 and not model_abstained(rewrite):
        return rewrite
    return joined_question(question, history)
