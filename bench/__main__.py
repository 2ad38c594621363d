"""`python -m bench [--quick] [--out FILE]`: run the benchmarks (the same as `rag bench`)."""

from __future__ import annotations

from pathlib import Path

import click

from bench.run import DEFAULT_OUT, run_bench


@click.command()
@click.option("--quick", is_flag=True, help="Toy sizes, to check that every phase runs (about a minute).")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True, help="JSON to write.")
def main(quick: bool, out: Path) -> None:
    """Measure ingest, retrieval, generation and start-up speed against the raw libraries."""
    run_bench(quick=quick, out=out, echo=lambda line: click.echo(line, err=line.endswith(" s")))


if __name__ == "__main__":
    main()
