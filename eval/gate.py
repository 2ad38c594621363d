"""The regression gate: totals compared with the committed limits in `minimums.json`.

A metric fails when it is below its minimum (above its maximum, for refusal rates) by more than
the file's tolerance. Metrics a run did not measure (generation metrics in a retrieval-only run)
are not checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rag.errors import BadInput

MINIMUMS = Path(__file__).resolve().parent / "minimums.json"


@dataclass(frozen=True)
class Verdict:
    """One metric against its limit."""

    metric: str
    value: float
    limit: float
    upper: bool  # True when the limit is a maximum
    tolerance: float

    @property
    def passed(self) -> bool:
        """Within the limit, give or take the tolerance."""
        if self.upper:
            return self.value <= self.limit + self.tolerance
        return self.value >= self.limit - self.tolerance

    def line(self) -> str:
        """`hit@5 0.984 ≥ 0.930 (tolerance 0.02): ok`"""
        sign = "≤" if self.upper else "≥"
        status = "ok" if self.passed else "FAILED"
        return f"{self.metric} {self.value:.3f} {sign} {self.limit:.3f} (tolerance {self.tolerance}): {status}"


def load_limits(path: Path = MINIMUMS) -> dict:
    """The limits file: `tolerance`, `minimums` and `maximums` (metric -> value), optional per-metric `tolerances`."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInput(f"cannot read the limits file {path}: {exc}") from exc
    if not isinstance(spec.get("tolerance"), int | float):
        raise BadInput(f"{path} needs a numeric `tolerance`")
    return spec


def limit_labels(spec: dict) -> dict[str, str]:
    """Each limited metric's limit as the report shows it (`≥ 0.930`)."""
    labels = {metric: f"≥ {value:.3f}" for metric, value in spec.get("minimums", {}).items()}
    labels.update({metric: f"≤ {value:.3f}" for metric, value in spec.get("maximums", {}).items()})
    return labels


def check(totals: dict, spec: dict) -> list[Verdict]:
    """A verdict for every limited metric this run measured."""
    tolerances = spec.get("tolerances", {})
    verdicts = []
    for upper, section in ((False, "minimums"), (True, "maximums")):
        for metric, limit in spec.get(section, {}).items():
            if totals.get(metric) is not None:
                tolerance = float(tolerances.get(metric, spec["tolerance"]))
                verdicts.append(Verdict(metric, float(totals[metric]), float(limit), upper, tolerance))
    return verdicts
