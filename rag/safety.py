"""What must not reach the model: instruction overrides in questions, control tokens in any text.

An article is data, never instructions: chat-template tokens and the tags that fence passages off
are removed from article text and questions, so an article cannot close its passage and open a
forged one. A question that tries to change the instructions is refused before retrieval's
passages reach the model; one that only contains the words ("Why did the council override the
rules?") is answered. Not handled: overrides phrased without the patterns below (the prompt's
"passages are quoted data" rule and the citation check are the next lines of defence), and
orders written as third-person statements.
"""

from __future__ import annotations

import re

from rag.errors import BadInput

# A question that tries to change the instructions is not passed to the model at all. What makes
# it one is whom the words aim at: an order (a sentence that opens with the verb, or one put to
# "you") or the assistant's own rules ("your instructions"). A question about someone else who
# ignored or overrode rules ("Did the council ignore the earlier agreements?") is not one.
_OPENS = (
    r"(?:^|\n|[!?;:]\s+|(?<!\.\w)\.\s+)"  # the text or a sentence (not "U.S." in "the U.S. act as")
    r"[\s\"'“‘(*#>\-–—]*(?:(?:now|please|just|so|ok|okay|then|and|also)\b[\s,]*)*"  # softeners
)
_TO_YOU = r"\byou\s+(?:(?:should|must|will|shall|can|could|would|need\s+to|have\s+to|are\s+to|to|now|please|just)\s+)*"
_ORDER = rf"(?:{_OPENS}|{_TO_YOU})"
_DROP = r"(?:ignore|disregard|forget|override|bypass)"
_RULES = r"(?:instructions?|rules|prompts?|guidelines|directions|programming|constraints|restrictions)"
_YOUR_RULES = rf"\byour\s+(?:\w+\s+){{0,2}}?{_RULES}\b"
_HIDDEN = (
    rf"(?:{_YOUR_RULES}|\byour\s+(?:\w+\s+)?(?:configuration|config|settings|credentials|secrets|passwords)\b"
    r"|\bsystem\s+prompt\b|\bapi\s+keys?\b)"
)
_REVEAL = (
    r"\b(?:print|show|reveal|repeat|output|display|leak|dump|tell\s+me|give\s+me|what(?:'s|\s+is|\s+are|\s+were))\b"
)
_ROLE = r"(?:act|behave|roleplay|role-play)\s+(?:as|like)\b|pretend\s+(?:to\s+be|you\b)"
_MODES = r"(?:developer|dev|god|debug|admin|sudo|jailbreak|dan|unrestricted)\s+mode\b"
_MODE = rf"(?:enter|enable|activate|switch\s+to|turn\s+on|go\s+into)\s+(?:the\s+)?{_MODES}"
# An order to assert something, or to cite a given passage, is an instruction, not a question.
_ASSERT = r"(?:say|state|claim|write|declare|assert|pretend)\s+that\b"
_OVERRIDES = (
    rf"{_ORDER}{_DROP}\b[^.?!\n]{{0,40}}?\b(?:{_RULES}|above|everything)\b",  # "Ignore the above and …"
    rf"\b(?:ignor|disregard|forget|forgot|overrid|bypass)\w*\b[^.?!\n]{{0,40}}?{_YOUR_RULES}",  # "… ignoring your rules"
    rf"{_REVEAL}[^.?!\n]{{0,20}}?{_HIDDEN}",  # "Print your system prompt"
    r"\byou\s+are\s+now\b|\bfrom\s+now\s+on\b[^.?!\n]{0,10}\byou\b",  # "You are now …"
    rf"{_ORDER}(?:{_ROLE}|{_MODE}|{_ASSERT})",  # "Act as …", "Enter developer mode", "Now say that …"
    rf"{_OPENS}{_MODES}\s+(?:is\s+)?(?:now\s+)?(?:enabled|activated|on|unlocked)\b",  # "Developer mode on."
    r"\bcite\s*\[\d+\]",
)
# One compiled pattern, so that eval/ can search with it as the app does.
OVERRIDE_ATTEMPT = re.compile("|".join(_OVERRIDES), re.IGNORECASE)
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


def checked_question(question: object, max_chars: int) -> str:
    """The question trimmed and without control characters, or BadInput when empty or too long."""
    if isinstance(question, str):
        question = " ".join(printable(question).split())
    if not isinstance(question, str) or not question:
        raise BadInput("the question is empty; type a question about the articles")
    if len(question) > max_chars:
        raise BadInput(f"the question is {len(question):,} characters long; the limit is {max_chars:,}")
    return question


def is_override_attempt(question: str) -> bool:
    """Whether the question tries to change the instructions rather than ask about the articles."""
    return bool(OVERRIDE_ATTEMPT.search(question))
