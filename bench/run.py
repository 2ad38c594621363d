"""The whole benchmark: each phase in its own process, then the JSON, the README table and the plot.

Phases: ingest (leaves a 1,000-article store behind), start-up (fresh `rag ask`, `rag info`,
`rag ingest` and `python app.py` against that store), generation (in process, and through an
OpenAI-compatible server the phase starts), answering (the built-in model's quoted answers, with
and without the embedding cache), retrieval at 1k/10k/100k chunks, and the embedding backends.
`quick` runs every phase on toy sizes, to check the wiring.
"""

from __future__ import annotations

import datetime
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import report, startup
from bench.measure import load_average, machine, python_child, run_child

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "latest.json"
README = BENCH_DIR / "README.md"

FULL = {
    "ingest": {"articles": 1000, "ratio_articles": 60, "rounds": 3},
    "generation": {"rounds": 3, "max_new_tokens": 256},
    "openai_generation": {"question_count": 4, "repeats": 6, "max_new_tokens": 256},
    "answering": {"question_limit": 60},
    "retrieval": {"sizes": [1_000, 10_000, 100_000], "question_limit": 60},
    "embedding": {"repeat": 8, "rounds": 2},
}
QUICK = {
    "ingest": {"articles": 6, "ratio_articles": 2, "rounds": 1},
    "generation": {"rounds": 1, "max_new_tokens": 16},
    "openai_generation": {"question_count": 1, "repeats": 2, "max_new_tokens": 16},
    "answering": {"question_limit": 4},
    "retrieval": {"sizes": [200], "question_limit": 4},
    "embedding": None,
}


def run_phase(
    name: str, work: Path, kwargs: dict, timeout: float = 1800, show_progress: bool = False
) -> tuple[dict, float]:
    """One phase in a child process: its result and its peak memory in MB (with its progress shown, on request)."""
    command = python_child("bench.phase", name, str(work), json.dumps(kwargs))
    child = run_child(command, timeout=timeout, show_stderr=show_progress)
    try:
        return child.json(), child.peak_rss_mb
    except (RuntimeError, ValueError) as exc:
        return {"error": str(exc)[-1500:]}, child.peak_rss_mb


def run_bench(quick: bool = False, out: Path = DEFAULT_OUT, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every phase, write `out` (and the plot beside it), and return the result."""
    params = QUICK if quick else FULL
    started, load_before = time.perf_counter(), load_average()
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    try:
        phases = _phases(params, work, quick, echo)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - started
    flat = report.flatten(phases)
    result = {
        "results": flat,
        "goals": report.goals(flat, seconds),
        "bench_seconds": seconds,
        "quick": quick,
        "machine": machine(),
        "load_before": load_before,
        "load_after": load_average(),
        "finished": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "params": params,
        "phases": phases,
    }
    _write(result, out, echo)
    return result


def parse_sizes(text: str) -> list[int]:
    """'10k,1m' -> [10000, 1000000]."""
    units = {"k": 1_000, "m": 1_000_000}
    try:
        return [int(float(part[:-1]) * units[part[-1]]) if part[-1] in units else int(part) for part in text.split(",")]
    except (ValueError, IndexError) as exc:
        raise SystemExit(f"--sizes takes sizes such as 1m or 10k,100k, not '{text}'") from exc


def run_sizes(sizes: list[int], out: Path, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """The retrieval phase alone at the given sizes (the 1M-chunk run), written to `out` as JSON."""
    started, load_before = time.perf_counter(), load_average()
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    try:
        kwargs = {**FULL["retrieval"], "sizes": sizes}
        # 1M chunks take over an hour: the build's progress lines are shown as they come
        retrieval, peak = run_phase("retrieval", work, kwargs, timeout=6 * 3600, show_progress=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "retrieval": retrieval,
        "retrieval_peak_rss_mb": peak,
        "bench_seconds": time.perf_counter() - started,
        "machine": machine(),
        "load_before": load_before,
        "load_after": load_average(),
        "finished": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    echo(json.dumps(report.flatten({"retrieval": retrieval}), indent=1, default=str))
    echo(f"\nwrote {out}")
    return result


def _phases(params: dict, work: Path, quick: bool, echo: Callable[[str], None]) -> dict[str, Any]:
    phases: dict[str, Any] = {}
    step = time.perf_counter()
    phases["ingest"], phases["ingest_peak_rss_mb"] = run_phase("ingest", work, params["ingest"])
    echo(f"ingest: {time.perf_counter() - step:.0f} s")
    home, corpus = phases["ingest"].get("home"), phases["ingest"].get("corpus")
    if home and corpus:
        step = time.perf_counter()
        phases["startup"] = startup.run(home, corpus, quick)
        echo(f"start-up: {time.perf_counter() - step:.0f} s")
    for name in ("generation", "openai_generation", "answering", "retrieval", "embedding"):
        if params[name] is None:
            phases[name] = None
            continue
        step = time.perf_counter()
        phases[name], phases[f"{name}_peak_rss_mb"] = run_phase(name, work, params[name])
        echo(f"{name}: {time.perf_counter() - step:.0f} s")
    return phases


def _write(result: dict[str, Any], out: Path, echo: Callable[[str], None]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    table = report.markdown(result)
    if (result["phases"].get("retrieval") or {}).get("sizes"):
        report.plot(result, out.with_name("latency.png"))
    if out.resolve() == DEFAULT_OUT.resolve():
        report.write_readme(README, table)
    echo(table)
    echo(f"\nwrote {out}")
