"""The `rag` command: a thin layer over the Python API; errors become one line and a nonzero exit."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from rag.errors import BadInput, RagError


def _fail_cleanly(command: Callable) -> Callable:
    """Turn the package's named errors into `Error: ...` on stderr and exit code 1 (2 for bad input)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except BadInput as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        except RagError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)

    return run


def _rag(**overrides: Any) -> Any:
    from rag.api import RAG

    return RAG(**overrides)


class _Bar:
    """A tqdm progress bar on stderr fed by the ingest progress callback."""

    def __init__(self) -> None:
        self.bar: Any = None

    def __call__(self, done: int, total: int, stage: str) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=stage.capitalize(), unit="chunk", file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log what each stage does.")
def main(verbose: bool) -> None:
    """Chat with your articles: local answers that cite their sources."""
    from rag.quiet import quiet_libraries

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    quiet_libraries()


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--rebuild", is_flag=True, help="Drop the store and embed everything again (after changing the model).")
@_fail_cleanly
def ingest(paths: tuple[Path, ...], rebuild: bool) -> None:
    """Add, update or remove articles (default: the seeds folder)."""
    bar = _Bar()
    try:
        report = _rag().ingest(list(paths) or None, rebuild=rebuild, progress=bar)
    finally:
        bar.close()
    for warning in report.warnings:
        click.echo(f"Warning: skipped {warning}", err=True)
    click.echo(report.summary())


def _print_answer(answer: Any) -> None:
    from rag.answer import UNCERTAIN_NOTE, How

    click.echo(answer.text)
    if answer.uncertain:
        click.echo(f"({UNCERTAIN_NOTE})")
    if used := answer.used_evidence:
        best = used[0]  # the sentence the answer rests on, so that it can be checked
        where = f"{best.doc_id}, characters {best.start}–{best.end}"
        if answer.how in (How.QUOTE, How.OPENING) or (answer.how == How.BYLINE and answer.quotes_its_evidence):
            click.echo(f"\nEvidence [{best.passage}]: {where}")  # the answer is that sentence already
        else:
            click.echo(f"\nEvidence [{best.passage}]: “{' '.join(best.text.split())}” ({where})")
    if answer.citations:
        click.echo("\nSources:")
        for c in sorted(answer.citations, key=lambda c: c.marker):
            dateline = f" ({c.passage.dateline})" if c.passage.dateline else ""
            click.echo(f"  [{c.marker}] {c.passage.title}{dateline} — {c.passage.doc_id}")
    if answer.notice:
        click.echo(f"\n{answer.notice}", err=True)


def _scope_options(command: Callable) -> Callable:
    """--doc, --dateline and --title: ask about some articles only (rag/scope.py)."""
    command = click.option("--title", default="", help="Only articles whose title has these words.")(command)
    command = click.option(
        "--dateline", default="", help="Only articles whose dateline contains this (date or place)."
    )(command)
    return click.option(
        "--doc", "docs", multiple=True, help="Only this article: a doc_id or a glob such as '002_*.txt' (repeatable)."
    )(command)


def _where(docs: tuple[str, ...], dateline: str, title: str) -> dict:
    return {"doc_ids": list(docs), "dateline": dateline, "title": title}


@main.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("-k", "top_k", type=int, default=None, help="Passages handed to the model.")
@click.option(
    "--backend",
    type=click.Choice(["auto", "ollama", "openai", "embedded"]),
    default=None,
    help="Generator (default: RAG_BACKEND).",
)
@_scope_options
@_fail_cleanly
def ask(
    question: str,
    as_json: bool,
    top_k: int | None,
    backend: str | None,
    docs: tuple[str, ...],
    dateline: str,
    title: str,
) -> None:
    """Answer a question from the articles, citing its sources."""
    engine = _rag(backend=backend) if backend else _rag()
    engine.check_question(question)  # a bad question is refused before the first run indexes anything
    _first_run(engine)
    answer = engine.ask(question, k=top_k, where=_where(docs, dateline, title))
    if as_json:
        from rag.answer import answer_json

        click.echo(json.dumps(answer_json(answer), ensure_ascii=False))
    else:
        _print_answer(answer)


def _first_run(engine: Any) -> None:
    """On an empty store, index the default corpus with a progress bar before the first question."""
    bar = _Bar()
    try:
        engine.ensure_corpus(progress=bar)
    finally:
        bar.close()


@main.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("-k", "top_k", type=int, default=5, show_default=True, help="Passages to return.")
@_scope_options
@_fail_cleanly
def retrieve(question: str, as_json: bool, top_k: int, docs: tuple[str, ...], dateline: str, title: str) -> None:
    """Show the passages retrieved for a question, without generating an answer."""
    engine = _rag()
    engine.check_question(question)
    _first_run(engine)
    passages = engine.retrieve(question, k=top_k, where=_where(docs, dateline, title))
    if as_json:
        click.echo(json.dumps({"passages": [p.to_dict() for p in passages]}, ensure_ascii=False))
        return
    for n, p in enumerate(passages, start=1):
        click.echo(f"[{n}] {p.score:.4f} {p.title} — {p.doc_id} ({p.start}-{p.end})\n    {p.text[:200]}…")


@main.command()
@click.option("--check", is_flag=True, help="Also check that the lexical index holds exactly the store's chunks.")
@_fail_cleanly
def info(check: bool) -> None:
    """Store path, documents and chunks, embedding model, and the backend that would answer."""
    rag = _rag()
    for key, value in rag.info().items():
        click.echo(f"{key.replace('_', ' ')}: {value}")
    if check:
        missing, extra = rag.retriever.index.difference(rag.store)
        if missing or extra:
            click.echo(f"lexical index: {len(missing)} chunks missing, {len(extra)} extra; `rag ingest` repairs it")
            sys.exit(1)
        click.echo("lexical index: holds exactly the store's chunk ids")


@main.command(
    "eval", add_help_option=False, context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
@click.pass_context
def eval_(ctx: click.Context) -> None:
    """Score the assistant on a question set: retrieval, answers, grounding, abstention (see `rag eval --help`)."""
    from eval.cli import eval_command  # the suite lives in eval/; imported here so `rag --help` stays fast

    eval_command.main(ctx.args, prog_name="rag eval")


@main.command(add_help_option=False, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def bench(ctx: click.Context) -> None:
    """Measure ingest, retrieval, generation and start-up speed (see `rag bench --help`, bench/README.md)."""
    from bench.__main__ import main as bench_command  # imported here so `rag --help` stays fast

    bench_command.main(ctx.args, prog_name="rag bench")


@main.command(add_help_option=False, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Start the chat app at http://127.0.0.1:7860 (options: `rag serve --help`)."""
    from rag.webapp import main as serve_app  # imported here: Gradio takes seconds to load

    serve_app(ctx.args, prog="rag serve")


if __name__ == "__main__":
    main()
