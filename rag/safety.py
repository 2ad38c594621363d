"""What must not reach the model: instruction overrides in questions, control tokens in any text.

An article is data, never instructions: chat-template tokens and the tags that fence passages off
are removed from article text and questions, so an article cannot close its passage and open a
forged one. A question that tries to change the instructions is refused before retrieval's
passages reach the model. Not handled: overrides phrased without the trigger words below (the
prompt's "passages are quoted data" rule and the citation check are the next lines of defence).
"""

from __future__ import annotations

import re

# A question that tries to change the instructions is not passed to the model at all.
OVERRIDE_ATTEMPT = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions?|rules|prompt|above|previous)\b|"
    r"\bsystem prompt\b|\byou are now\b|\bact as\b|\bdeveloper mode\b|\bjailbreak|"
    # An order to assert something, or to cite a given passage, is an instruction, not a question.
    r"(?:^|[.!?:]\s+)(?:now\s+|please\s+|just\s+)?(?:say|state|claim|write|declare|pretend|assert)\s+that\b|"
    r"\bcite\s*\[\d+\]",
    re.IGNORECASE | re.DOTALL,
)
REFUSAL_TEXT = "I only answer questions about the articles, from what they say; I can't follow other instructions."
# Chat-template tokens, and the tags that fence passages off, must not reach the model from
# article text or questions: an article could close its passage and open a forged one.
CONTROL_TOKENS = re.compile(r"<\|[a-z_]+\|>|</?s>|\[/?INST\]|<\s*/?\s*passage\b", re.IGNORECASE)
# Control characters (but tab and line ends) and lone surrogates, which the tokenizers reject.
UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def sanitize(text: str) -> str:
    """Text with chat-template control tokens, control characters and lone surrogates removed."""
    return CONTROL_TOKENS.sub("", printable(text))


def printable(text: str) -> str:
    """Text without control characters and lone surrogates (from a terminal paste or a browser)."""
    return UNPRINTABLE.sub("", text)


def is_override_attempt(question: str) -> bool:
    """Whether the question tries to change the instructions rather than ask about the articles."""
    return bool(OVERRIDE_ATTEMPT.search(question))
