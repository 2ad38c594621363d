"""`rag eval --suite`: every question set the project holds, each over its own articles, in one table.

The sets are the seeds' dev and test halves of `qa.jsonl` (over the default corpus, `seeds/`) and
each SQuAD file under `eval/squad/` (over its articles, written as text files under the results
folder, each corpus with its own store). Each set has a role: "tuning" sets (seeds dev, Rhine) may
be looked at while choosing rules and thresholds; "reporting" sets (seeds test,
Computational_complexity_theory) are only reported, nothing is chosen by looking at them. Only the
seeds rows are checked against `minimums.json`, which was measured on them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from eval.dataset import DEFAULT_QA, Row, in_split, load_rows, spread
from eval.metrics import totals
from eval.runner import run
from eval.squad import SQUAD_DIR, load_squad, role, write_squad_corpus
from rag import RAG

SEEDS_ROLES = {"dev": "tuning", "test": "reporting"}


@dataclass(frozen=True)
class QuestionSet:
    """One set of the suite: its rows, the corpus they are about (None: the settings' corpus)."""

    name: str
    role: str  # "tuning" or "reporting"
    rows: list[Row]
    corpus: Path | None = None
    gated: bool = False  # checked against the minimums (only the seeds are)


def project_sets(out: Path, limit: int | None = None, squad_dir: Path = SQUAD_DIR) -> list[QuestionSet]:
    """The seeds' halves and every SQuAD file of `squad_dir`, each cut to `limit` rows spread over it."""
    seeds = load_rows(DEFAULT_QA)
    sets = [
        QuestionSet(f"seeds {split}", SEEDS_ROLES[split], spread(in_split(seeds, split), limit), gated=True)
        for split in SEEDS_ROLES
    ]
    for path in sorted(squad_dir.glob("*.json")):
        rows = spread(load_squad(path), limit, evenly=True)
        sets.append(QuestionSet(path.stem, role(path), rows, write_squad_corpus(path, out / "squad")))
    return sets


def run_suite(
    sets: Sequence[QuestionSet],
    open_rag: Callable[[Path | None], RAG],
    retrieval_only: bool = False,
    baselines: Sequence[str] = (),
    progress: bool = True,
) -> dict:
    """Each set through `run` on a RAG over its corpus (opened by `open_rag`, one at a time, since
    each holds its own models); the result is what `suite.json` holds."""
    done, rag, corpus = [], None, None
    for question_set in sets:
        if rag is None or question_set.corpus != corpus:
            rag, corpus = None, question_set.corpus  # let the last one go before opening the next
            rag = open_rag(corpus)
        results = run(rag, question_set.rows, retrieval_only, baselines, progress)
        done.append({"name": question_set.name, "role": question_set.role, "gated": question_set.gated, **results})
    return {"config": suite_config(done, retrieval_only), "sets": done}


def suite_config(done: list[dict], retrieval_only: bool) -> dict:
    """What was run, for the report's header."""
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "retrieval only" if retrieval_only else "full",
        "backend": done[0]["config"]["backend"] if done else None,
        "questions": sum(s["config"]["questions"] for s in done),
    }


def gated_totals(results: dict) -> dict:
    """Totals of our pipeline over the rows of every gated set (the seeds' halves together)."""
    rows = [r for s in results["sets"] if s["gated"] for r in s["pipelines"]["ours"]["rows"]]
    return totals(rows)
