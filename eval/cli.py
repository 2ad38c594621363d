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
    "--split",
    type=click.Choice(["all", "dev", "test"]),
    default="all",
    show_default=True,
    help="Rows of one half only: tune on dev, report test.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N questions, spread across types.")
@click.option("--retrieval-only", is_flag=True, help="Score retrieval and the gate only (seconds, no generation).")
@click.option("--baseline", type=click.Choice(BASELINES), default=None, help="Also run a plain LlamaIndex pipeline.")
@click.option("--backend", type=click.Choice(["auto", "ollama", "embedded"]), default=None, help="Generator.")
@click.option("--check", is_flag=True, help="Exit 1 when a metric misses its limit in the minimums file.")
@click.option("--minimums", type=click.Path(path_type=Path), default=MINIMUMS, help="Limits for --check.")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, help="Folder for results and report.")
@click.option("--calibrate", is_flag=True, help="Report the abstention gate's signals and best thresholds.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of the table.")
@_one_line_errors
def eval_command(
    qa: Path,
    corpus: Path | None,
    split: str,
    limit: int | None,
    retrieval_only: bool,
    baseline: str | None,
    backend: str | None,
    check: bool,
    minimums: Path,
    out: Path,
    calibrate: bool,
    as_json: bool,
) -> None:
    """Score the assistant on known questions: retrieval, answers, citation grounding and abstention."""
    from eval.dataset import in_split, load_rows, spread
    from eval.runner import open_rag

    rows = spread(in_split(load_rows(qa), split), limit)
    if not rows:
        raise BadInput(f"{qa} has no rows in the '{split}' split")
    rag = open_rag(out, corpus, **({"backend": backend} if backend else {}))
    ingested = rag.ingest([rag.settings.corpus])
    for warning in ingested.warnings:
        click.echo(f"Warning: skipped {warning}", err=True)
    if calibrate:
        _calibrate(rag, rows, as_json)
        return
    _evaluate(rag, rows, retrieval_only, baseline, check, minimums, out, as_json)


def _calibrate(rag: Any, rows: list, as_json: bool) -> None:
    from eval.calibrate import calibrate, describe

    result = calibrate(rag, rows)
    click.echo(json.dumps(result, indent=1) if as_json else describe(result))


def _evaluate(
    rag: Any,
    rows: list,
    retrieval_only: bool,
    baseline: str | None,
    check: bool,
    minimums: Path,
    out: Path,
    as_json: bool,
) -> None:
    from eval import gate, report
    from eval.runner import run

    spec = gate.load_limits(minimums)
    results = run(rag, rows, retrieval_only, baseline)
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
    failed = [v for v in verdicts if not v.passed]
    for verdict in failed:
        click.echo(f"Check: {verdict.line()}", err=True)
    if check:
        click.echo(f"Check: {len(verdicts) - len(failed)} of {len(verdicts)} limits met", err=True)
    if failed:
        sys.exit(1)
