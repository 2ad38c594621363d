"""Citation markers: parse `[n]` from an answer, map them to passages, drop the ones that point nowhere.

LlamaIndex's `CitationQueryEngine` asks for markers but trusts whatever the model writes. Here a
marker that names no passage is removed from the text, and each answer sentence is checked
against the passages by embedding similarity: a sentence the model left uncited gets the
marker of the passage that clearly supports it, so that small models still give sourced answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.retrieve import Passage

# [1], [1, 2], [1][2], [1-2] and the full-width brackets some models emit.
MARKER = re.compile(r"[\[【]\s*(\d{1,3}(?:\s*(?:,|;|-|–|and)\s*\d{1,3})*)\s*[\]】]")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“(])")


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
        if len(bounds) == 2 and 0 < bounds[1] - bounds[0] < 10:
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
    """Answer text split into sentences (markers stay with the sentence they follow)."""
    return [s for s in SENTENCE_END.split(text.strip()) if s.strip()]


def strip_markers(text: str) -> str:
    """Text without its markers, for comparing a sentence with passages."""
    return MARKER.sub("", text).strip()


def attribute(
    text: str,
    passages: Sequence[Passage],
    similarity: Callable[[list[str], list[str]], list[list[float]]],
    threshold: float,
) -> str:
    """Add a marker to each uncited sentence whose best-matching passage is similar enough."""
    sentences = split_sentences(text)
    bare = [(i, strip_markers(s)) for i, s in enumerate(sentences) if not MARKER.search(s)]
    bare = [(i, s) for i, s in bare if len(s.split()) >= 3]
    if not bare or not passages:
        return text
    scores = similarity([s for _, s in bare], [p.text for p in passages])
    for (i, _), row in zip(bare, scores):
        best = max(range(len(row)), key=row.__getitem__)
        if row[best] >= threshold:
            sentences[i] = _append_marker(sentences[i], best + 1)
    return " ".join(sentences)


def _append_marker(sentence: str, number: int) -> str:
    """Put the marker before the closing punctuation: "... Tokyo [2]." """
    stripped = sentence.rstrip()
    if stripped and stripped[-1] in ".!?":
        return f"{stripped[:-1]} [{number}]{stripped[-1]}"
    return f"{stripped} [{number}]"
