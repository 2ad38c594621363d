"""Calibrate the abstention gate on the question set, from retrieval alone.

`ask` refuses before generating when the best dense similarity is below `min_relevance` and the
share of question words found is below `min_coverage`. This reports both signals for answerable
and unanswerable questions and the threshold pair that best separates them (most unanswerable
refused minus answerable refused; ties go to fewer false refusals, then to the current values).
Questions the instruction-override filter refuses anyway are left out. Thresholds fitted on the
set also scored by it flatter it: read the result as a suggestion, not a measurement.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from eval.dataset import Row
from eval.metrics import quantile
from eval.runner import retrieval_outcome
from rag import RAG
from rag.safety import OVERRIDE_ATTEMPT


@dataclass(frozen=True)
class Signals:
    """The gate's two inputs for one question."""

    id: str
    group: str  # "answerable" or the unanswerable category
    similarity: float
    coverage: float

    def refused(self, min_similarity: float, min_coverage: float) -> bool:
        """Whether the gate refuses at these thresholds."""
        return self.similarity < min_similarity and self.coverage < min_coverage


def collect(rag: RAG, rows: Sequence[Row]) -> list[Signals]:
    """Signals of every row the override filter lets through."""
    found = []
    for row in rows:
        if OVERRIDE_ATTEMPT.search(row.question):
            continue
        outcome = retrieval_outcome(rag, row)
        group = "answerable" if row.answerable else row.category or "unanswerable"
        found.append(Signals(row.id, group, outcome["best_similarity"], outcome["coverage"]))
    return found


def rates(signals: Sequence[Signals], min_similarity: float, min_coverage: float) -> tuple[float, float]:
    """(share of unanswerable refused, share of answerable refused) at these thresholds."""
    wanted = [s.refused(min_similarity, min_coverage) for s in signals if s.group != "answerable"]
    unwanted = [s.refused(min_similarity, min_coverage) for s in signals if s.group == "answerable"]
    return sum(wanted) / max(len(wanted), 1), sum(unwanted) / max(len(unwanted), 1)


def cut_points(values: Sequence[float]) -> list[float]:
    """Thresholds between consecutive observed values, plus one below and one above them all."""
    ordered = sorted(set(round(v, 4) for v in values))
    middles = [round((a + b) / 2, 4) for a, b in itertools.pairwise(ordered)]
    return [ordered[0] - 0.01, *middles, ordered[-1] + 0.01]


def best_pair(signals: Sequence[Signals], current: tuple[float, float], max_false_refusal: float = 1.0) -> dict:
    """The thresholds that best separate answerable from unanswerable questions, refusing at most
    `max_false_refusal` of the answerable ones."""

    def rank(pair: tuple[float, float]) -> tuple[float, float, float]:
        refused, false_refused = rates(signals, *pair)
        distance = abs(pair[0] - current[0]) + abs(pair[1] - current[1])
        return (refused - false_refused, -false_refused, -distance)

    similarities = cut_points([x.similarity for x in signals])
    coverages = cut_points([x.coverage for x in signals])
    pairs = [(s, c) for s in similarities for c in coverages if rates(signals, s, c)[1] <= max_false_refusal]
    return _pair(signals, max(pairs, key=rank))


def _pair(signals: Sequence[Signals], pair: tuple[float, float]) -> dict:
    refused, false_refused = rates(signals, *pair)
    return {
        "min_relevance": pair[0],
        "min_coverage": pair[1],
        "abstain_rate": refused,
        "false_refusal_rate": false_refused,
    }


def distribution(values: Sequence[float]) -> dict[str, float | None]:
    """min, quartiles and max."""
    return {
        name: quantile(values, q) for name, q in (("min", 0), ("p25", 0.25), ("median", 0.5), ("p75", 0.75), ("max", 1))
    }


def calibrate(rag: RAG, rows: Sequence[Row]) -> dict:
    """Signal distributions per group, the current thresholds' rates and the best pair."""
    signals = collect(rag, rows)
    current = (rag.settings.min_relevance, rag.settings.min_coverage)
    groups = sorted({s.group for s in signals}, key=lambda g: (g != "answerable", g))
    return {
        "distributions": {
            group: {
                "questions": sum(s.group == group for s in signals),
                "similarity": distribution([s.similarity for s in signals if s.group == group]),
                "coverage": distribution([s.coverage for s in signals if s.group == group]),
            }
            for group in groups
        },
        "current": _pair(signals, current),
        "best": best_pair(signals, current),
        "best_without_false_refusals": best_pair(signals, current, max_false_refusal=0.0),
        "signals": [s.__dict__ for s in signals],
    }


def describe(result: dict) -> str:
    """The calibration as plain text for the terminal."""
    lines = ["signal      group          n    min    p25 median    p75    max"]
    for group, found in result["distributions"].items():
        for signal in ("similarity", "coverage"):
            values = " ".join(f"{v:6.3f}" for v in found[signal].values())
            lines.append(f"{signal:<11} {group:<13} {found['questions']:>2} {values}")
    for name in ("current", "best", "best_without_false_refusals"):
        pair = result[name]
        lines.append(
            f"{name.replace('_', ' ')}: min_relevance={pair['min_relevance']:.3f} min_coverage={pair['min_coverage']:.3f}: "
            f"abstains on {pair['abstain_rate']:.1%} of unanswerable, refuses {pair['false_refusal_rate']:.1%} of answerable"
        )
    return "\n".join(lines)
