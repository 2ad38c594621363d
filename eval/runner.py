"""Run the question set through the public API and score every row.

Ours goes through `RAG.ask` (or, with retrieval only, through its retriever), on a store kept
under the results folder so that evaluating never touches the user's `.rag/`. Answers are
generated at temperature 0, so two runs on one machine give the same scores.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eval.baseline import NaiveBaseline, sentence_outcome
from eval.dataset import Row
from eval.grounding import SupportCheck, score_answer
from eval.metrics import alias_match, answer_words, best_f1, evidence_scores, retrieval_scores, totals
from rag import RAG, Settings
from rag.citations import cited_numbers
from rag.errors import BadInput
from rag.followup import joined_question
from rag.retrieve import Retrieval
from rag.safety import OVERRIDE_ATTEMPT

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
BASELINES = ("naive", "sentence")

Outcome = Callable[[Row], dict]


def eval_home(out: Path, settings: Settings) -> Path:
    """A store folder under `out` for this corpus, embedder and chunking (each needs its own)."""
    key = f"{Path(settings.corpus).resolve()}|{settings.embed_model}|{settings.chunk_tokens}|{settings.chunk_overlap}"
    return out / ".store" / f"{Path(settings.corpus).name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def open_rag(out: Path, corpus: Path | None = None, **overrides: Any) -> RAG:
    """A RAG whose store lives under `out` (settings otherwise from `RAG_*` variables and `overrides`)."""
    settings = Settings(**overrides, **({"corpus": corpus} if corpus else {}))
    return RAG(settings, home=eval_home(out, settings))


def gate_refuses(settings: Settings, question: str, retrieval: Retrieval) -> bool:
    """Whether `ask` would refuse before generating: an instruction override, or nothing relevant.

    The same two tests `RAG.ask` applies; the API does not expose them as one call.
    """
    relevant = retrieval.is_relevant(settings.min_relevance, settings.min_coverage)
    return bool(OVERRIDE_ATTEMPT.search(question)) or not relevant


def retrieval_outcome(rag: RAG, row: Row) -> dict:
    """Retrieved doc_ids, the gate's verdict and its two signals (follow-ups joined to the last question)."""
    standalone = joined_question(rag.check_question(row.question), row.history)
    started = time.perf_counter()
    retrieval = rag.lookup(standalone)
    evidence = rag.find_evidence(standalone.asking, retrieval.passages)
    return {
        "retrieved": [p.doc_id for p in retrieval.passages],
        "evidence": [e.text for e in evidence],
        "evidence_score": evidence[0].score if evidence else 0.0,
        "gate_refused": gate_refuses(rag.settings, row.question, retrieval),
        "best_similarity": retrieval.best_similarity,
        "coverage": retrieval.coverage,
        "retrieval_ms": (time.perf_counter() - started) * 1000,
    }


def answer_outcome(rag: RAG, check: SupportCheck, row: Row) -> dict:
    """The answer, its timings, its citations checked against the passages it was given."""
    answer = rag.ask(row.question, history=row.history or None, temperature=0.0)
    passages = [p.text for p in answer.passages]
    outcome = {
        "retrieved": [p.doc_id for p in answer.passages],
        "gate_refused": answer.backend == "none",
        "answer": answer.text,
        "answer_words": answer_words(answer.text),
        "how": answer.how,
        "evidence": [e.text for e in answer.evidence],
        "evidence_score": answer.evidence[0].score if answer.evidence else 0.0,
        "answer_sentence": answer_sentence(answer),
        "abstained": answer.abstained,
        "uncertain": answer.uncertain,
        "backend": answer.backend,
        "model": answer.model,
        **{key: answer.timings.get(key) for key in ("retrieval_ms", "ttft_s", "total_s")},
        **citation_counts(answer),
    }
    if not answer.abstained:
        outcome.update(score_answer(answer.text, passages, check))
    return outcome


def answer_sentence(answer: Any) -> str:
    """The sentence the answer rests on: its first cited evidence sentence, else the first evidence
    sentence; empty for an abstention, which offers none."""
    if answer.abstained:
        return ""
    held = answer.used_evidence or answer.evidence
    return held[0].text if held else ""


def citation_counts(answer: Any) -> dict:
    """Markers in the text, and how many name a retrieved passage through the answer's citations."""
    retrieved = {p.chunk_id for p in answer.passages}
    by_marker = {c.marker: c.passage.chunk_id for c in answer.citations}
    markers = cited_numbers(answer.text)
    inside = [m for m in markers if 1 <= m <= len(answer.passages) and by_marker.get(m) in retrieved]
    return {"citations": len(markers), "citations_retrieved": len(inside)}


def score(row: Row, outcome: dict) -> dict:
    """One result row: the question, what happened, and its scores."""
    record = {
        "id": row.id,
        "split": row.split,
        "type": row.type,
        "category": row.category,
        "answerable": row.answerable,
        "question": row.question,
        "gold_answer": row.answer,
        "gold_doc_ids": list(row.doc_ids),
        **outcome,
    }
    if row.answerable:
        golds = [row.answer, *row.aliases]
        record.update(retrieval_scores(outcome["retrieved"], row.doc_ids))
        if row.support and "evidence" in outcome:
            record.update(evidence_scores(outcome["evidence"], row.support, golds))
        if "answer" in outcome:
            record["alias_match"] = alias_match(outcome["answer"], golds)
            record["token_f1"] = best_f1(outcome["answer"], golds)
        if "answer_sentence" in outcome:
            record["evidence_held"] = alias_match(outcome["answer_sentence"], golds)
    return record


def evaluate(rows: Sequence[Row], outcome: Outcome, label: str, progress: bool = True) -> dict:
    """Every row scored (with a progress bar on stderr), and the totals."""
    from tqdm import tqdm

    bar = tqdm(rows, desc=label, unit="question", file=sys.stderr, disable=not progress, leave=False)
    scored = [score(row, outcome(row)) for row in bar]
    result: dict[str, Any] = {"totals": totals(scored), "rows": scored}
    splits = {split: [r for r in scored if r["split"] == split] for split in ("dev", "test")}
    if all(splits.values()):  # both halves ran: report them side by side
        result["splits"] = {split: totals(members) for split, members in splits.items()}
    return result


def pipelines(rag: RAG, retrieval_only: bool, baselines: Sequence[str] = ()) -> dict[str, Outcome]:
    """The outcome function of each pipeline to run: ours, then each baseline asked for (`BASELINES`)."""
    if retrieval_only:
        chosen: dict[str, Outcome] = {"ours": lambda row: retrieval_outcome(rag, row)}
    else:
        check = SupportCheck(rag.similarities)
        chosen = {"ours": lambda row: answer_outcome(rag, check, row)}
    for name in baselines:
        chosen[name] = baseline_outcome(rag, name, retrieval_only)
    return chosen


def baseline_outcome(rag: RAG, name: str, retrieval_only: bool) -> Outcome:
    """The outcome function of one baseline; BadInput lists the names when `name` is none of them."""
    if name == "naive":
        naive = NaiveBaseline.from_rag(rag, with_llm=not retrieval_only)
        return naive.retrieval_only if retrieval_only else lambda row: naive.answer(row, rag.backend)
    if name == "sentence":
        return lambda row: sentence_outcome(rag, row, answer=not retrieval_only)
    raise BadInput(f"no baseline named '{name}'; choose from: {', '.join(BASELINES)}")


def run(
    rag: RAG, rows: Sequence[Row], retrieval_only: bool = False, baselines: Sequence[str] = (), progress: bool = True
) -> dict:
    """Evaluate each pipeline on the rows; the result is what `results.json` holds."""
    results = {
        name: evaluate(rows, outcome, name, progress)
        for name, outcome in pipelines(rag, retrieval_only, baselines).items()
    }
    return {"config": run_config(rag, rows, retrieval_only), "pipelines": results}


def run_config(rag: RAG, rows: Sequence[Row], retrieval_only: bool) -> dict:
    """What was run, for the report's header."""
    settings = rag.settings
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "retrieval only" if retrieval_only else "full",
        "corpus": str(settings.corpus),
        "questions": len(rows),
        "settings": {key: getattr(settings, key) for key in ("top_k", "candidates", "min_relevance", "min_coverage")},
        "backend": None if retrieval_only else f"{rag.backend.name} ({rag.backend.model})",
        "grounding_check": SupportCheck(rag.similarities).describe(),
    }
