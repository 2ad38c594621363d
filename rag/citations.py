"""Citation markers: parse `[n]` from an answer, map them to passages, drop the ones that point nowhere.

LlamaIndex's `CitationQueryEngine` asks for markers but trusts whatever the model writes. Here a
marker that names no passage is removed from the text, and each answer sentence is checked
against the passages by embedding similarity: a marker must point at a passage that supports its
sentence, a sentence the model left uncited gets the marker of the passage that supports it (so
small models still give sourced answers), and a sentence no passage supports is dropped.
Embeddings blur numbers ("April 12, 2023" and "April 12, 2014" are near neighbours), so every
number in a sentence must also be in its cited passages or the question.

A reply of the small model is held to a stricter test (`copied_from`): its names and numbers must
occur in the evidence it was shown, and nearly all its content words too. That catches an
invented name; a name copied from the evidence but put in the wrong role still gets past it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.retrieve import Passage
from rag.text import CAPITALISED, SENTENCE_END, content_terms

MAX_RANGE = 10  # a range ("2-4") expands to at most this many numbers; a wider one is read as its two ends
# [1], [1, 2], [1][2], [1-2] and the full-width brackets some models emit.
MARKER = re.compile(r"[\[【]\s*(\d{1,3}(?:\s*(?:,|;|-|–|and)\s*\d{1,3})*)\s*[\]】]")
# A cited passage this much less similar to a sentence than the best passage is re-pointed.
REPOINT_MARGIN = 0.1
NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
# Words a reply may use about its sources, or to open a sentence, without copying them.
REPLY_FILLER = frozenset(
    "the a an it its he she they this that these those there according article articles text passage "
    "passages says said states stated yes no".split()
)
REPLY_FILLER_TERMS = content_terms(" ".join(REPLY_FILLER))


# How a model says the passages lack the answer.
MODEL_ABSTAINS = re.compile(
    r"articles? (?:do(?:es)?n[’']t|do(?:es)? not) (?:say|cover|mention|contain)|"
    r"passages? (?:do(?:es)?n[’']t|do(?:es)? not) (?:say|contain|mention|provide|answer)|"
    r"(?:articles?|passages?|facts|sources?|text) (?:do(?:es)?n[’']t|do(?:es)? not) (?:provide|give|include|state)|"
    r"\bno (?:information|mention|details?)\b|not (?:mentioned|stated|provided|covered) in the (?:passages|articles)|"
    r"(?:can ?not|can[’']t|unable to) (?:answer|find|determine)",
    re.IGNORECASE,
)


def model_abstained(text: str) -> bool:
    """Whether the reply says the passages lack the answer (or is empty)."""
    return not text.strip() or bool(MODEL_ABSTAINS.search(text))


@dataclass(frozen=True)
class Citation:
    """One marker in the answer and the passage it points at."""

    marker: int
    passage: Passage


def marker_numbers(group: str) -> list[int]:
    """The numbers inside one bracket: "1, 3" -> [1, 3]; "2-4" -> [2, 3, 4]."""
    numbers: list[int] = []
    for part in re.split(r"\s*(?:,|;|and)\s*", group):
        bounds = [int(x) for x in re.split(r"\s*[-–]\s*", part) if x.strip().isdigit()]
        if len(bounds) == 2 and 0 < bounds[1] - bounds[0] < MAX_RANGE:
            numbers.extend(range(bounds[0], bounds[1] + 1))
        else:
            numbers.extend(bounds)
    return numbers


def clean_markers(text: str, passage_count: int) -> str:
    """Rewrite every bracket as `[n]` markers, keeping only numbers 1..passage_count."""

    def rewrite(match: re.Match) -> str:
        valid = [n for n in dict.fromkeys(marker_numbers(match[1])) if 1 <= n <= passage_count]
        return "".join(f"[{n}]" for n in valid)

    cleaned = MARKER.sub(rewrite, text)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()


def cited_numbers(text: str) -> list[int]:
    """Marker numbers in order of first appearance."""
    return list(dict.fromkeys(n for m in MARKER.finditer(text) for n in marker_numbers(m[1])))


def citations_for(text: str, passages: Sequence[Passage]) -> list[Citation]:
    """The passages an answer cites, one `Citation` per distinct valid marker."""
    return [Citation(n, passages[n - 1]) for n in cited_numbers(text) if 1 <= n <= len(passages)]


def split_sentences(text: str) -> list[str]:
    """Text split into sentences and lines (markers stay with the sentence they follow).

    Lines count as sentences: headlines, captions and datelines end without a full stop.
    """
    return [s.strip() for line in text.splitlines() for s in SENTENCE_END.split(line) if s.strip()]


def strip_markers(text: str) -> str:
    """Text without its markers, for comparing a sentence with passages."""
    return MARKER.sub("", text).strip()


def numbers_in(text: str) -> set[str]:
    """The numbers written in a text, without thousands separators: "1,000 in 1987" -> {"1000", "1987"}."""
    return {n.replace(",", "") for n in NUMBER.findall(text)}


def numbers_supported(sentence: str, sources: Sequence[Passage], question: str = "") -> bool:
    """Whether every number in the sentence is in the sources (text, title, dateline) or the question.

    The gap between two years stated there also counts, so "27 years after 1945" can stand.
    """
    wanted = numbers_in(strip_markers(sentence))
    if not wanted:
        return True
    found = numbers_in(question).union(*(numbers_in(f"{p.title} {p.dateline} {p.text}") for p in sources))
    years = [int(n) for n in found if n.isdigit() and 1000 <= int(n) <= 2100]
    found |= {str(abs(a - b)) for a in years for b in years}
    return wanted <= found


def support_matrix(
    sentences: list[str], passages: Sequence[Passage], similarity: Callable[[list[str], list[str]], list[list[float]]]
) -> list[list[float]]:
    """How well each passage supports each sentence: the best of its similarity to the whole
    passage and to the passage's closest sentence (a short claim matches one sentence best)."""
    units, owner = [], []
    for index, passage in enumerate(passages):
        for unit in [passage.text, *split_sentences(passage.text)]:
            units.append(unit)
            owner.append(index)
    scores = similarity(sentences, units)
    matrix = [[0.0] * len(passages) for _ in sentences]
    for row, sentence_scores in zip(matrix, scores):
        for index, score in zip(owner, sentence_scores):
            row[index] = max(row[index], score)
    return matrix


def check_support(
    text: str,
    passages: Sequence[Passage],
    similarity: Callable[[list[str], list[str]], list[list[float]]],
    threshold: float,
    question: str = "",
) -> tuple[str, list[str]]:
    """Keep each sentence's markers that point at a supporting passage, add the best supporting
    passage to a sentence left without one, and drop sentences no passage supports.

    Returns the checked text and the dropped sentences. Embedding similarity catches claims that
    are about something else entirely; the number test catches a wrong date or figure in an
    otherwise matching sentence. Names put in the wrong roles get past both.
    """
    sentences = [s for s in split_sentences(text) if strip_markers(s)]
    if not sentences or not passages:
        return "", sentences
    matrix = support_matrix([strip_markers(s) for s in sentences], passages, similarity)
    kept, dropped = [], []
    for sentence, row in zip(sentences, matrix):
        best = max(range(len(row)), key=row.__getitem__)
        # A marker stands when its passage supports the sentence about as well as the best one does.
        floor = max(threshold, row[best] - REPOINT_MARGIN)
        cited = [n for n in cited_numbers(sentence) if 1 <= n <= len(passages) and row[n - 1] >= floor]
        if not cited and row[best] >= threshold:
            cited = [best + 1]
        if cited and not numbers_supported(sentence, [passages[n - 1] for n in cited], question):
            # Point it at the closest passage that does state its numbers, if one is close enough.
            close = [i for i in range(len(row)) if row[i] >= threshold]
            stating = [i for i in close if numbers_supported(sentence, [passages[i]], question)]
            if stating:
                cited = [max(stating, key=row.__getitem__) + 1]
            else:  # a figure drawn from two passages, such as the years between two events
                together = numbers_supported(sentence, [passages[i] for i in close], question)
                cited = [i + 1 for i in close] if together else []
        if cited:
            kept.append(with_markers(strip_markers(sentence), cited))
        else:
            dropped.append(sentence)
    return " ".join(kept), dropped


def with_markers(sentence: str, numbers: list[int]) -> str:
    """Put the markers before the closing punctuation: "... Portvale [2]." A space before a mark
    that ends a word is dropped ("Portvale ."); one before a mark that opens a word is the text's
    own ("the .deb package", "run ./setup")."""
    stripped = re.sub(r"\s+([.,;:!?])(?=\s|$)", r"\1", sentence.rstrip())
    markers = "".join(f"[{n}]" for n in numbers)
    if stripped and stripped[-1] in ".!?":
        return f"{stripped[:-1]} {markers}{stripped[-1]}"
    return f"{stripped} {markers}"


def copied_from(reply: str, sources: Sequence[str], question: str, min_share: float = 0.75) -> bool:
    """Whether a short reply only copies: every name and number in it occurs in the sources, at
    least `min_share` of its content words occur there or in the question, and it says something
    the question does not."""
    reply = strip_markers(reply)
    evidence = " ".join(sources)
    known = f"{evidence} {question}"
    # Names and numbers must come from the evidence itself: a question that asks the model to
    # "say that the council sold the bridge in 2019" must not lend the reply its year.
    words = {_bare(w) for w in re.findall(r"[\w'’\-]+", evidence)}
    names = {_bare(n) for n in CAPITALISED.findall(reply)} - REPLY_FILLER
    if not names <= words or not numbers_in(reply) <= numbers_in(evidence):
        return False
    terms = content_terms(reply) - REPLY_FILLER_TERMS
    if not terms or not terms - content_terms(question):
        return False  # an empty reply, or the question said back
    return len(terms & content_terms(known)) / len(terms) >= min_share


def _bare(word: str) -> str:
    """A word lower-cased without its possessive: "Dahl's" -> "dahl"."""
    return re.sub(r"['’]s$", "", word.lower())


def marker_for(reply: str, sources: Sequence[str]) -> int:
    """Index of the source sharing the most content words with the reply (the first on a tie)."""
    terms = content_terms(strip_markers(reply))
    overlap = [len(terms & content_terms(s)) for s in sources]
    return max(range(len(sources)), key=lambda i: (overlap[i], -i))
