"""Answers put together from two cited facts: how many years lie between two events, and
questions that ask for two names ("Which two …?", "Which …, and which …?").

"How many years separate A and B?" and "How many years after A did B?" are answered by no single
sentence: each event's year is in its own sentence, often in different articles, and a 135M model
cannot be trusted with the subtraction. So each event is looked up on its own as a question
of kind "year" with `rag.evidence.select`, the year it names is read from the best sentence, and
the difference is stated with both years and the passages they come from. A year the question
itself gives ("the 1855 treatise") is taken from the question.

Two names are not in one sentence either. The question is read as two asks, each ask's best
evidence sentence is found, and the name that answers is cut out of it: a run of capitalised
words that the question does not already give, with the words of the role the question asks
about taken off its front ("Danish Prime Minister Ada Lind" answers "which Danish prime minister"
as "Ada Lind").

Not handled: months and days ("how many weeks"), events with no year written beside them, more
than two events or names, names the capital letters do not mark, and questions that are not in
English. An event whose sentence names several years takes the year nearest its own words,
which can be the wrong one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.evidence import NAME, YEAR, Evidence, Scorer, Similarity, question_kind, select
from rag.retrieve import Passage
from rag.text import WORD, content_terms

NAMES_SOMEONE = 0.6  # `name_strength` of a word that is surely a name, not a capitalised opener
COMMON_OPENERS = frozenset(
    "the a an he she it they we i this that these those there however but and in on at according "
    "after before as his her their its when while if so also moreover during since until from with for by "
    "of under over between".split()
)


def name_strength(name: str, sentence: str) -> float:
    """1 for a name of two or more words ("Ada Lind"), 0.6 for one word inside the sentence, 0.3 for
    one word that opens it (it may be any word: "Residents"), 0 for a common opener ("The")."""
    if " " in name.strip():
        return 1.0
    if not sentence.lstrip("\"“‘'([ ").startswith(name):
        return 0.6
    return 0.0 if name.lower() in COMMON_OPENERS else 0.3


# "how many years separate/lie between A and B", "how many years passed between A and B"
BETWEEN = re.compile(
    r"^how many years (?:separate|lie between|passed between|elapsed between|are there between|"
    r"were there between|went by between|between)\s+(?P<parts>.+?)\??$",
    re.IGNORECASE,
)
# "how many years after/before A did/was/were B", "how long after A did B": the events are cut
# at an auxiliary verb, the last one first ("after the lighthouse was lit was the harbour dredged").
AFTER = re.compile(r"^how (?:many years|long) (?:after|before)\s+(?P<events>.+?)\??$", re.IGNORECASE)
AUXILIARY = re.compile(r"\s+(?:did|does|do|was|were|had|has|have|will)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Dated:
    """The year found for an event: from the question (evidence None) or from a sentence."""

    year: int
    evidence: Evidence | None


def events(question: str) -> list[tuple[str, str]]:
    """The ways of reading the question as two events (first, second), most likely first; [] when it
    does not ask for the years between two events."""
    text = " ".join(question.split())
    after, between = AFTER.match(text), BETWEEN.match(text)
    if after:
        return cuts(after["events"], AUXILIARY, last_first=True)
    return cuts(between["parts"], re.compile(r"\s+and\s+")) if between else []


def cuts(text: str, at: re.Pattern, last_first: bool = False) -> list[tuple[str, str]]:
    """Every way of cutting the text in two at a match of `at`, in order (or last first)."""
    found = [(text[: m.start()].strip(" ,"), text[m.end() :].strip(" ,")) for m in at.finditer(text)]
    found = [(first, second) for first, second in found if first and second]
    return found[::-1] if last_first else found


def year_of(
    event: str, passages: Sequence[Passage], similarity: Similarity, scorer: Scorer, min_score: float
) -> Dated | None:
    """The year of one event: one the event's words give, else the year the best sentence about it
    names, nearest the event's own words; None when no sentence's confidence reaches `min_score`."""
    given = YEAR.findall(event)
    if given:
        return Dated(int(given[0]), None)
    for found in select(event, passages, similarity, scorer, 3, kind="year"):
        years = list(YEAR.finditer(found.text))
        if found.confidence >= min_score and years:
            return Dated(nearest_year(found.text, years, event), found)
    return None


def nearest_year(sentence: str, years: list[re.Match], event: str) -> int:
    """Of the years a sentence names, the one closest to the words it shares with the event."""
    wanted = content_terms(event)
    at = [m.start() for m in WORD.finditer(sentence) if content_terms(m.group()) & wanted]
    if not at:
        return int(years[0].group())
    return int(min(years, key=lambda y: min(abs(y.start() - a) for a in at)).group())


def years_between(
    question: str, passages: Sequence[Passage], similarity: Similarity, scorer: Scorer, min_score: float
) -> tuple[Dated, Dated] | None:
    """The two events' years when the question asks for the years between them and both are found,
    at least one from the passages; else None."""
    for first_event, second_event in events(question):
        first = year_of(first_event, passages, similarity, scorer, min_score)
        second = year_of(second_event, passages, similarity, scorer, min_score)
        if first and second and (first.evidence or second.evidence) and first.year != second.year:
            return first, second
    return None


def reckoned_text(first: Dated, second: Dated) -> str:
    """The answer: the span in years, then each year with where it comes from."""

    def source(dated: Dated) -> str:
        return f"{dated.year} [{dated.evidence.passage}]" if dated.evidence else f"{dated.year} (as the question says)"

    early, late = sorted((first, second), key=lambda d: d.year)
    return f"{late.year - early.year} years: from {source(early)} to {source(late)}."


# "Which two ministers …?", "Name both …"
BOTH = re.compile(r"^(?:which|what|who|name)\s+(?:the\s+)?(?:two|both)\b", re.IGNORECASE)
# "Which president …, and which president …?": two asks in one question
AND_ASK = re.compile(r"^(?P<first>(?:which|who|what)\b.+?),?\s+and\s+(?P<second>(?:which|who|what)\b.+?)\??$", re.I)


@dataclass(frozen=True)
class Named:
    """A name cut out of an evidence sentence."""

    name: str
    evidence: Evidence


def asks(question: str) -> list[str]:
    """The question's asks when it wants two names: the same ask twice for "which two", two asks for
    "which …, and which …"; [] otherwise."""
    text = " ".join(question.split())
    if BOTH.match(text):
        return [text, text]
    pair = AND_ASK.match(text)
    return [pair["first"], pair["second"]] if pair else []


def answer_name(sentence: str, ask: str) -> str:
    """The name in the sentence that answers the ask, or "": a run of capitals none of whose own words
    the ask gives, opening words ("During the") and the ask's role words ("Danish Prime Minister") taken
    off its front; a name that follows the role the ask names ("minister Ada Lind") first."""
    asked = content_terms(ask)

    def of_ask(word: str) -> bool:
        terms = content_terms(word)
        return bool(terms) and terms <= asked

    best, best_rank = "", (0.0, 0.0)
    for found in NAME.finditer(sentence):
        words = found.group().split()
        while len(words) > 1 and words[0].lower() in COMMON_OPENERS:
            words.pop(0)
        role = 0
        while role < len(words) - 1 and of_ask(words[role]):
            role += 1
        name = " ".join(words[role:])
        strength = name_strength(name, sentence)
        if content_terms(name) & asked or strength < NAMES_SOMEONE:
            continue
        before = sentence[: found.start()].split()[-1:]
        rank = (float(role > 0 or any(of_ask(w) for w in before)), strength)
        if rank > best_rank:
            best, best_rank = name, rank
    return best


def two_names(
    question: str, passages: Sequence[Passage], similarity: Similarity, scorer: Scorer, min_score: float
) -> tuple[Named, Named] | None:
    """Two different names, each from a sentence whose confidence reaches `min_score` for its ask, or None."""
    found: list[Named] = []
    for ask in asks(question):
        kind = question_kind(ask) or "name"
        for evidence in select(ask, passages, similarity, scorer, 3, kind=kind):
            name = answer_name(evidence.text, ask) if evidence.confidence >= min_score else ""
            if name and all(name != other.name for other in found):
                found.append(Named(name, evidence))
                break
    return (found[0], found[1]) if len(found) == 2 else None


def named_text(first: Named, second: Named) -> str:
    """The answer: both names, each cited to its passage."""
    return f"{first.name} [{first.evidence.passage}] and {second.name} [{second.evidence.passage}]."


def sub_questions(question: str) -> list[str]:
    """The separate asks of a question put together from two facts, each worth its own search: the
    two events of a span of years (as first read), or two asks for a name."""
    pair = AND_ASK.match(" ".join(question.split()))
    if pair:
        return [pair["first"], pair["second"]]
    found = events(question)
    return [part for part in found[0] if not YEAR.search(part)] if found else []
