"""`rag eval` / `python -m eval`: run the question set, write the report, print the table, gate on limits."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from eval.dataset import DEFAULT_QA
from eval.gate import MINIMUMS
from eval.runner import BASELINES, DEFAULT_OUT
from rag.errors import BadInput, RagError


def _one_line_errors(command: Callable) -> Callable:
    """The package's named errors as `Error: ...` and exit code 1 (2 for bad input), as `rag` does."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RagError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2 if isinstance(exc, BadInput) else 1)

    return run


@click.command("eval")
@click.option("--qa", "qa", type=click.Path(path_type=Path), default=DEFAULT_QA, help="Question set (.jsonl).")
@click.option("--corpus", type=click.Path(path_type=Path), default=None, help="Articles the questions are about.")
@click.option(
    "--squad",
    type=click.Path(path_type=Path),
    default=None,
    help="A SQuAD 2.0 JSON file as the question set; its articles, written under OUT/squad/, as the corpus.",
)
@click.option(
    "--suite",
    is_flag=True,
    help="Every set the project holds (seeds dev and test, eval/squad/*.json), one table row per set and pipeline.",
)
@click.option(
    "--split",
    type=click.Choice(["all", "dev", "test"]),
    default="all",
    show_default=True,
    help="Rows of one half only: tune on dev, report test.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="At most N questions (per set), spread across types."
)
@click.option("--retrieval-only", is_flag=True, help="Score retrieval and the gate only (seconds, no generation).")
@click.option(
    "--baseline",
    "baselines",
    type=click.Choice([*BASELINES, "all"]),
    multiple=True,
    help="Also run a baseline: naive (plain LlamaIndex), sentence (best sentence quoted); repeat it, or 'all'.",
)
@click.option("--backend", type=click.Choice(["auto", "ollama", "openai", "embedded"]), default=None, help="Generator.")
@click.option("--check", is_flag=True, help="Exit 1 when a metric misses its limit in the minimums file.")
@click.option("--minimums", type=click.Path(path_type=Path), default=MINIMUMS, help="Limits for --check.")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, help="Folder for results and report.")
@click.option("--calibrate", is_flag=True, help="Report the abstention gate's signals and best thresholds.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of the table.")
@_one_line_errors
def eval_command(
    qa: Path,
    corpus: Path | None,
    squad: Path | None,
    suite: bool,
    split: str,
    limit: int | None,
    retrieval_only: bool,
    baselines: tuple[str, ...],
    backend: str | None,
    check: bool,
    minimums: Path,
    out: Path,
    calibrate: bool,
    as_json: bool,
) -> None:
    """Score the assistant on known questions: retrieval, answers, citation grounding and abstention.

    --suite tags each set with its role: tuning (seeds dev, Rhine: tune on it) or reporting (seeds
    test, Computational_complexity_theory: only report it, choose nothing by it).
    """
    chosen = BASELINES if "all" in baselines else tuple(dict.fromkeys(baselines))
    overrides = {"backend": backend} if backend else {}
    if suite:
        if squad or corpus or qa != DEFAULT_QA or calibrate or split != "all":
            raise BadInput("--suite runs the project's own sets; drop --squad, --qa, --corpus, --split and --calibrate")
        _suite(out, limit, retrieval_only, chosen, check, minimums, as_json, overrides)
        return
    limits: Path | None = minimums
    if squad and minimums == MINIMUMS:  # limits measured on the seeds say nothing about another corpus
        if check:
            raise BadInput("the minimums file holds limits measured on the seeds; with --squad --check pass --minimums")
        limits = None
    rows, corpus = _question_set(qa, squad, corpus, split, limit, out)
    rag = _open(out, corpus, overrides)
    if calibrate:
        _calibrate(rag, rows, as_json)
        return
    _evaluate(rag, rows, retrieval_only, chosen, check, limits, out, as_json)


def _question_set(
    qa: Path, squad: Path | None, corpus: Path | None, split: str, limit: int | None, out: Path
) -> tuple[list, Path | None]:
    """The rows to run (one split, at most `limit`) and their corpus (None: the settings' corpus)."""
    from eval.dataset import in_split, load_rows, spread

    if squad is None:
        source, rows = qa, load_rows(qa)
    else:
        from eval.squad import load_squad, write_squad_corpus

        if corpus is not None:
            raise BadInput("--squad brings its own corpus (the file's articles); drop --corpus")
        source, rows = squad, load_squad(squad)
        corpus = write_squad_corpus(squad, out / "squad")
    rows = spread(in_split(rows, split), limit, evenly=squad is not None)
    if not rows:
        raise BadInput(f"{source} has no rows in the '{split}' split")
    return rows, corpus


def _open(out: Path, corpus: Path | None, overrides: dict) -> Any:
    """A RAG on the eval's own store for `corpus`, with the corpus ingested (skipped files warned of)."""
    from eval.runner import open_rag

    rag = open_rag(out, corpus, **overrides)
    ingested = rag.ingest([rag.settings.corpus])
    for warning in ingested.warnings:
        click.echo(f"Warning: skipped {warning}", err=True)
    return rag


def _calibrate(rag: Any, rows: list, as_json: bool) -> None:
    from eval.calibrate import calibrate, describe

    result = calibrate(rag, rows)
    click.echo(json.dumps(result, indent=1) if as_json else describe(result))


def _evaluate(
    rag: Any,
    rows: list,
    retrieval_only: bool,
    baselines: tuple[str, ...],
    check: bool,
    minimums: Path | None,
    out: Path,
    as_json: bool,
) -> None:
    from eval import gate, report
    from eval.runner import run

    spec = gate.load_limits(minimums) if minimums else {}
    results = run(rag, rows, retrieval_only, baselines)
    verdicts = gate.check(results["pipelines"]["ours"]["totals"], spec) if check else []
    results["check"] = [{"line": v.line(), "passed": v.passed} for v in verdicts]
    paths = report.write(results, out, gate.limit_labels(spec), [v.line() for v in verdicts])
    if as_json:
        summary = {name: run["totals"] for name, run in results["pipelines"].items()}
        files = {k: str(p) for k, p in paths.items()}
        click.echo(
            json.dumps({"config": results["config"], "totals": summary, "check": results["check"], "files": files})
        )
    else:
        click.echo(report.terminal_table(report.table_rows(results, gate.limit_labels(spec))))
        click.echo(f"\nReport: {paths['report']}\nResults: {paths['json']}")
    _end_check(verdicts, check)


def _suite(
    out: Path,
    limit: int | None,
    retrieval_only: bool,
    baselines: tuple[str, ...],
    check: bool,
    minimums: Path,
    as_json: bool,
    overrides: dict,
) -> None:
    from eval import gate, report
    from eval.suite import gated_totals, project_sets, run_suite

    spec = gate.load_limits(minimums)
    results = run_suite(
        project_sets(out, limit), lambda corpus: _open(out, corpus, overrides), retrieval_only, baselines
    )
    verdicts = gate.check(gated_totals(results), spec) if check else []
    results["check"] = [{"line": v.line(), "passed": v.passed} for v in verdicts]
    paths = report.write_suite(results, out, [v.line() for v in verdicts])
    if as_json:
        sets = [
            {"name": s["name"], "role": s["role"], "totals": {n: r["totals"] for n, r in s["pipelines"].items()}}
            for s in results["sets"]
        ]
        files = {k: str(p) for k, p in paths.items()}
        click.echo(json.dumps({"config": results["config"], "sets": sets, "check": results["check"], "files": files}))
    else:
        click.echo(report.terminal_table(report.suite_rows(results), left=3))
        click.echo(f"\nReport: {paths['report']}\nResults: {paths['json']}")
    _end_check(verdicts, check)


def _end_check(verdicts: list, check: bool) -> None:
    """Each failed limit on stderr, the count when checking, and exit 1 when one failed."""
    failed = [v for v in verdicts if not v.passed]
    for verdict in failed:
        click.echo(f"Check: {verdict.line()}", err=True)
    if check:
        click.echo(f"Check: {len(verdicts) - len(failed)} of {len(verdicts)} limits met", err=True)
    if failed:
        sys.exit(1)
