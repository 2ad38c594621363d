"""The question set: rows of `qa.jsonl` read, checked and, for quick runs, sampled across types."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import BadInput

TYPES = ("single", "multi", "paraphrase", "followup", "unanswerable")
# Thresholds and prompts are tuned on "dev" rows and reported on "test" rows; "" = not assigned.
SPLITS = ("dev", "test", "")
DEFAULT_QA = Path(__file__).resolve().parent / "qa.jsonl"


@dataclass(frozen=True)
class Row:
    """One question with its gold answer, gold documents and, for follow-ups, the earlier turns."""

    id: str
    question: str
    answer: str
    aliases: tuple[str, ...]
    doc_ids: tuple[str, ...]
    type: str
    answerable: bool
    support: str = ""
    category: str = ""
    history: list[dict] = field(default_factory=list)
    split: str = ""  # "dev" (tune on it) or "test" (report it), fixed in the file

    @property
    def group(self) -> str:
        """The type, or for unanswerable rows their category (what `spread` samples across)."""
        return self.category or self.type


def parse_row(line: str, number: int) -> Row:
    """One line of the file as a `Row`; BadInput names the line when a field is missing or wrong."""
    try:
        data = json.loads(line)
        row = Row(
            id=str(data["id"]),
            question=str(data["question"]),
            answer=str(data.get("answer", "")),
            aliases=tuple(data.get("aliases", [])),
            doc_ids=tuple(data.get("doc_ids", [])),
            type=str(data["type"]),
            answerable=bool(data["answerable"]),
            support=str(data.get("support", "")),
            category=str(data.get("category", "")),
            history=list(data.get("history", [])),
            split=str(data.get("split", "")),
        )
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise BadInput(f"line {number} of the question set is not a valid row ({type(exc).__name__}: {exc})") from exc
    if row.split not in SPLITS:
        raise BadInput(f"line {number} of the question set has split '{row.split}'; use one of: {', '.join(SPLITS)}")
    if not row.question.strip() or (row.answerable and not row.answer):
        raise BadInput(f"line {number} of the question set needs a question and, when answerable, an answer")
    return row


def load_rows(path: Path) -> list[Row]:
    """Every row of a `.jsonl` question set, with unique ids."""
    if not path.is_file():
        raise BadInput(f"{path}: no such question set (see eval/README.md for the format)")
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [parse_row(line, n) for n, line in enumerate(lines, start=1) if line.strip()]
    ids = [r.id for r in rows]
    if len(set(ids)) != len(ids):
        raise BadInput(f"{path}: row ids are not unique")
    return rows


def spread(rows: list[Row], limit: int | None, evenly: bool = False) -> list[Row]:
    """At most `limit` rows, taken in turn from each type (and unanswerable category), in file order.

    Each type gives its first rows, or with `evenly` rows spaced evenly through it (a SQuAD file
    lists its questions paragraph by paragraph, so its first rows are about one paragraph)."""
    if limit is None or limit >= len(rows):
        return rows
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    counts = dict.fromkeys(groups, 0)
    while sum(counts.values()) < limit:
        for name, members in groups.items():
            if counts[name] < len(members) and sum(counts.values()) < limit:
                counts[name] += 1
    chosen = [row for name, members in groups.items() for row in _take(members, counts[name], evenly)]
    order = {r.id: i for i, r in enumerate(rows)}
    return sorted(chosen, key=lambda r: order[r.id])


def _take(members: list[Row], count: int, evenly: bool) -> list[Row]:
    if not evenly or not count:
        return members[:count]
    return [members[i * len(members) // count] for i in range(count)]


def in_split(rows: list[Row], split: str | None) -> list[Row]:
    """The rows of one split ("dev" or "test"), or all rows for None or "all"."""
    if split in (None, "all"):
        return rows
    return [r for r in rows if r.split == split]
