"""Scores for one question and their totals: retrieval hits, answer match and F1, abstention rates.

Answer scoring follows the SQuAD evaluation script: lower case, no punctuation, no articles,
then token F1 against the best of the gold answer and its aliases. Alias match asks whether
any gold form occurs, as whole words, in the answer (answers here are sentences, not spans).
Sentence held asks the same of the sentence an answer rests on, so that a short answer cut out
of the right sentence can be told from a wrong sentence; precision when answering is the share of
answers (abstentions left out) that hold a gold form, an answer to an unanswerable question wrong.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

from rag.citations import strip_markers

ARTICLES = re.compile(r"\b(a|an|the)\b")
PUNCTUATION = set(string.punctuation) | set("’‘“”–—")
RETRIEVAL_DEPTHS = (1, 3, 5)
EVIDENCE_KEYS = ("evidence_support@1", "evidence_support@3", "evidence_alias@1", "evidence_alias@3")


def normalize(text: str) -> str:
    """SQuAD normalisation: lower case, punctuation and articles removed, single spaces."""
    text = "".join(" " if ch in PUNCTUATION else ch for ch in text.lower())
    return " ".join(ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """Harmonic mean of token precision and recall between two normalised texts."""
    predicted, wanted = normalize(prediction).split(), normalize(gold).split()
    common = sum((Counter(predicted) & Counter(wanted)).values())
    if not common:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


def best_f1(prediction: str, golds: Sequence[str]) -> float:
    """Token F1 against the closest gold form, citation markers ignored."""
    text = strip_markers(prediction)
    return max((token_f1(text, g) for g in golds if g.strip()), default=0.0)


def alias_match(prediction: str, golds: Sequence[str]) -> bool:
    """Whether any gold form occurs in the answer as whole words, after normalisation."""
    text = f" {normalize(strip_markers(prediction))} "
    return any(f" {normalize(g)} " in text for g in golds if normalize(g))


def same_sentence(found: str, support: str) -> bool:
    """Whether an evidence sentence is the gold support sentence: one holds the other after
    normalisation, or they share at least 60% of their words (Dice), which allows for a
    caption's credit or a split at a semicolon."""
    a, b = normalize(found), normalize(support)
    if not a or not b:
        return False
    if a in b or b in a:
        return True
    words_a, words_b = set(a.split()), set(b.split())
    return 2 * len(words_a & words_b) / (len(words_a) + len(words_b)) >= 0.6


def evidence_scores(evidence: Sequence[str], support: str, golds: Sequence[str]) -> dict[str, float]:
    """Sentence-level hit@1 and hit@3 of the ranked evidence, against the gold support sentence
    and against the gold answer's forms (an evidence sentence that holds the answer)."""
    scores = {}
    for depth in (1, 3):
        top = evidence[:depth]
        scores[f"evidence_support@{depth}"] = float(any(same_sentence(e, support) for e in top))
        scores[f"evidence_alias@{depth}"] = float(any(alias_match(e, golds) for e in top))
    return scores


def answer_words(answer: str) -> int:
    """Words in an answer, its markers not counted."""
    return len(strip_markers(answer).split())


def first_gold_rank(retrieved: Sequence[str], gold: Iterable[str]) -> int | None:
    """1-based rank of the first retrieved passage from a gold document, or None."""
    wanted = set(gold)
    return next((rank for rank, doc in enumerate(retrieved, start=1) if doc in wanted), None)


def retrieval_scores(retrieved: Sequence[str], gold: Sequence[str]) -> dict[str, float]:
    """hit@1/3/5, reciprocal rank and recall@5 of the gold documents, from ranked passage doc_ids."""
    rank = first_gold_rank(retrieved, gold)
    scores = {f"hit@{k}": float(rank is not None and rank <= k) for k in RETRIEVAL_DEPTHS}
    scores["mrr"] = 1.0 / rank if rank else 0.0
    scores["recall@5"] = len(set(gold) & set(retrieved[:5])) / len(set(gold)) if gold else 0.0
    return scores


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None, or None when there are none."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def quantile(values: Iterable[float | None], q: float) -> float | None:
    """The q-quantile (0..1) of the values that are not None, interpolating linearly."""
    present = sorted(v for v in values if v is not None)
    if not present:
        return None
    position = q * (len(present) - 1)
    low = int(position)
    high = min(low + 1, len(present) - 1)
    return present[low] + (present[high] - present[low]) * (position - low)


def share(flags: Iterable[bool | None]) -> float | None:
    """Fraction of the flags that are true, ignoring None (not measured)."""
    return mean(None if f is None else float(f) for f in flags)


def totals(rows: Sequence[dict]) -> dict[str, float | int | None]:
    """Every metric over a run's rows; None where this run could not measure it."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    result: dict[str, float | int | None] = {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
    }
    for key in (*(f"hit@{k}" for k in RETRIEVAL_DEPTHS), "mrr", "recall@5", *EVIDENCE_KEYS, "alias_match", "token_f1"):
        result[key] = mean(r.get(key) for r in answerable)
    result["answer_held"] = result["alias_match"]  # the suite's name: the short answer holds a gold form
    result["sentence_held"] = share(r.get("evidence_held") for r in answerable)
    result["confidently_wrong"] = share(confidently_wrong(r) for r in rows)
    answered = [r for r in rows if r.get("abstained") is False]
    result["precision_when_answering"] = precision_when_answering(rows)
    result["uncertain_rate"] = share(r.get("uncertain") for r in answered)
    result["wrong_when_uncertain"] = share(confidently_wrong(r) for r in answered if r.get("uncertain"))
    result["wrong_when_sure"] = share(confidently_wrong(r) for r in answered if r.get("uncertain") is False)
    result["answer_words_p50"] = quantile((r.get("answer_words") for r in answered), 0.5)
    result.update(grounding_totals(rows))
    result["abstain_rate"] = share(r.get("abstained") for r in unanswerable)
    result["false_refusal_rate"] = share(r.get("abstained") for r in answerable)
    result["gate_abstain_rate"] = share(r.get("gate_refused") for r in unanswerable)
    result["gate_false_refusal_rate"] = share(r.get("gate_refused") for r in answerable)
    result["retrieval_ms_p50"] = quantile((r.get("retrieval_ms") for r in rows), 0.5)
    result["ttft_s_p50"] = quantile((r.get("ttft_s") for r in rows), 0.5)
    result["total_s_p50"] = quantile((r.get("total_s") for r in rows), 0.5)
    result["total_s_p95"] = quantile((r.get("total_s") for r in rows), 0.95)
    return result


def precision_when_answering(rows: Sequence[dict]) -> float | None:
    """Among the answers that are not abstentions, the share that hold a gold form; an answer to an
    unanswerable question is wrong. None when nothing was answered (or no answer was generated)."""
    answered = [r for r in rows if r.get("abstained") is False]
    return share(not confidently_wrong(r) for r in answered)


def confidently_wrong(row: dict) -> bool | None:
    """An answer that is not an abstention and holds no gold form (any answer to an unanswerable
    question); None when no answer was generated (retrieval-only runs)."""
    if "abstained" not in row:
        return None
    return not row["abstained"] and not row.get("alias_match", False)


def grounding_totals(rows: Sequence[dict]) -> dict[str, float | None]:
    """Supported share of all answer sentences, mean ALCE citation recall and precision per
    answer, and the share of citations that point at a retrieved passage."""
    sentences = [s for r in rows for s in r.get("sentences") or []]
    cited = sum(r.get("citations") or 0 for r in rows)
    inside = sum(r.get("citations_retrieved") or 0 for r in rows)
    return {
        "grounded_sentences": share(s["supported"] for s in sentences) if sentences else None,
        "citation_recall": mean(r.get("citation_recall") for r in rows),
        "citation_precision": mean(r.get("citation_precision") for r in rows),
        "citations_in_retrieved": inside / cited if cited else None,
    }
