"""`python -m bench [--quick] [--out FILE] [--sizes 1m]`: run the benchmarks (the same as `rag bench`)."""

from __future__ import annotations

from pathlib import Path

import click

from bench.run import DEFAULT_OUT, parse_sizes, run_bench, run_sizes


@click.command()
@click.option("--quick", is_flag=True, help="Toy sizes, to check that every phase runs (about a minute).")
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="JSON to write [default: results/latest.json]."
)
@click.option(
    "--sizes",
    default=None,
    help="Only the retrieval phase, at these store sizes (e.g. 1m or 10k,100k), into results/sizes-<sizes>.json.",
)
def main(quick: bool, out: Path | None, sizes: str | None) -> None:
    """Measure ingest, retrieval, generation and start-up speed against the raw libraries."""
    echo = lambda line: click.echo(line, err=line.endswith(" s"))  # noqa: E731 - one line
    if sizes:
        run_sizes(parse_sizes(sizes), out or DEFAULT_OUT.with_name(f"sizes-{sizes.replace(',', '-')}.json"), echo)
        return
    run_bench(quick=quick, out=out or DEFAULT_OUT, echo=echo)


if __name__ == "__main__":
    main()
