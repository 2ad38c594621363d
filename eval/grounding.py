"""Is an answer sentence supported by the passages it cites? A local check, and ALCE citation scores.

No entailment model ships with the project, so support is a similarity check plus a word check:
the sentence must be close in meaning (all-MiniLM-L6-v2 cosine) to the cited text or one of its
sentences, most of its content words must occur there, and every number in it must. The word
check catches what embeddings blur: a wrong date or an invented name in an otherwise matching
sentence. It cannot catch names from the passage put in the wrong roles ("Morgulov's counterpart
was Taro Kono" when the passage names Kono as the foreign minister). `grounding_labels.jsonl`
holds hand-labelled pairs the check is tested against.

Citation recall and precision follow ALCE (Gao et al., 2023): a sentence counts towards recall
when its citations jointly support it; a citation is precise unless it does not support the
sentence alone and the sentence's other citations support it without it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.citations import cited_numbers, split_sentences, strip_markers
from rag.retrieve import content_terms

Similarity = Callable[[list[str], list[str]], list[list[float]]]

LABELS = Path(__file__).resolve().parent / "grounding_labels.jsonl"
# Chosen on the labelled pairs: supported sentences scored at least 0.40 and kept at least 86% of
# their content words; unsupported ones kept at most 75% or missed a number.
MIN_SIMILARITY = 0.35
MIN_WORD_SHARE = 0.8
NUMBER = re.compile(r"\d+")
# Words answers use to talk about their sources, which the passages need not contain.
FILLER = content_terms("according passage passages article articles fact facts text states stated mentions answer")


def word_share(sentence: str, texts: Sequence[str]) -> float:
    """Share of the sentence's content words (stemmed) that occur in the texts."""
    wanted = content_terms(sentence) - FILLER
    if not wanted:
        return 1.0
    return len(wanted & content_terms(" ".join(texts))) / len(wanted)


def numbers_found(sentence: str, texts: Sequence[str]) -> bool:
    """Whether every number in the sentence occurs in the texts."""
    return set(NUMBER.findall(sentence)) <= set(NUMBER.findall(" ".join(texts)))


def is_extract(sentence: str, texts: Sequence[str]) -> bool:
    """Whether the sentence, its markers and closing stop taken off, is a span of words copied from
    a cited text: a short answer ("9,000 tonnes [1].") is what its passage says word for word, while
    a few words are too short for the similarity check to judge."""
    extract = " ".join(strip_markers(sentence).strip().rstrip(".").split())
    return bool(extract) and any(re.search(rf"(?<!\w){re.escape(extract)}(?!\w)", " ".join(t.split())) for t in texts)


@dataclass(frozen=True)
class SupportCheck:
    """Decides whether texts support a sentence (see the module docstring for how)."""

    similarity: Similarity
    min_similarity: float = MIN_SIMILARITY
    min_word_share: float = MIN_WORD_SHARE

    def supports(self, sentence: str, texts: Sequence[str]) -> bool:
        """Whether the texts (jointly) support the sentence."""
        if not texts or not sentence.strip():
            return False
        if is_extract(sentence, texts):
            return True
        if word_share(sentence, texts) < self.min_word_share or not numbers_found(sentence, texts):
            return False
        return self.closest(sentence, texts) >= self.min_similarity

    def closest(self, sentence: str, texts: Sequence[str]) -> float:
        """Highest similarity of the sentence to the joined texts, each text, or one of their sentences."""
        units = ["\n".join(texts)] if len(texts) > 1 else []
        units += [unit for text in texts for unit in [text, *split_sentences(text)]]
        return max(self.similarity([sentence], units)[0])

    def describe(self) -> str:
        """One line saying how support is decided, for the report."""
        return (
            f"similarity ≥ {self.min_similarity} (all-MiniLM-L6-v2 cosine to the cited text or one of its "
            f"sentences), ≥ {self.min_word_share:.0%} of content words and every number found in the cited text; "
            "or a span copied word for word from it"
        )


def precise(sentence: str, marker: int, texts: dict[int, str], check: SupportCheck) -> bool:
    """ALCE precision of one citation in a jointly supported sentence with several citations."""
    if check.supports(sentence, [texts[marker]]):
        return True
    return not check.supports(sentence, [t for n, t in texts.items() if n != marker])


def score_sentence(sentence: str, passages: Sequence[str], check: SupportCheck) -> dict:
    """One answer sentence: its markers, whether they support it, and which of them are precise."""
    markers = [n for n in cited_numbers(sentence) if 1 <= n <= len(passages)]
    text = re.sub(r"\s+([.,;:!?])", r"\1", strip_markers(sentence))
    texts = {n: passages[n - 1] for n in markers}
    supported = check.supports(text, list(texts.values()))
    if not supported or len(markers) == 1:
        flags = [supported] * len(markers)
    else:
        flags = [precise(text, n, texts, check) for n in markers]
    return {"text": text, "markers": markers, "supported": supported, "precise": flags}


def score_answer(answer: str, passages: Sequence[str], check: SupportCheck) -> dict:
    """Sentence scores, ALCE citation recall (supported share) and precision (precise share of citations)."""
    sentences = [score_sentence(s, passages, check) for s in split_sentences(answer) if strip_markers(s)]
    citations = sum(len(s["markers"]) for s in sentences)
    return {
        "sentences": sentences,
        "citation_recall": sum(s["supported"] for s in sentences) / len(sentences) if sentences else None,
        "citation_precision": sum(sum(s["precise"]) for s in sentences) / citations if citations else 0.0,
    }


def load_labels(path: Path = LABELS) -> list[dict]:
    """Hand-labelled {sentence, passage, supported} pairs."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def agreement(labels: Sequence[dict], check: SupportCheck) -> list[tuple[dict, bool]]:
    """Each labelled pair with the check's verdict."""
    return [(label, check.supports(label["sentence"], [label["passage"]])) for label in labels]
