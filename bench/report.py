"""Turn the phases' raw results into the flat JSON keys, the goals table and the latency plot."""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any

SCOPED = {"hybrid_scoped": "1 article in 20", "hybrid_scoped_1pct": "1 in 100", "hybrid_scoped_one": "one article"}
METHODS = ("dense", "bm25", "hybrid", *SCOPED, "sequential", "raw_dense", "lexical_index", "raw_fts5")
# Per size, from the retrieval phase: what a new article, a new process and a new index cost.
PER_SIZE = {
    "add_one_then_retrieve_s": "add_one_then_retrieve_writer_s",
    "add_one_then_retrieve_reader_s": "add_one_then_retrieve_reader_s",
    "add_one_ingest_s": "add_one_ingest_s",
    "fresh_reader_s": "fresh_reader_s",
    "fresh_reader_rss_mb": "fresh_reader_rss_mb",
    "bm25s_reader_s": "bm25s_reader_s",
    "bm25s_reader_rss_mb": "bm25s_reader_rss_mb",
    "lexical_first_build_s": "lexical_first_build_s",
    "bm25s_build_s": "bm25s_build_s",
    "read_texts_s": "read_texts_s",
    "lexical_index_mb": "lexical_index_mb",
    "scope_lookup_ms": "scope_lookup_ms",
}
TABLE_START, TABLE_END = "<!-- bench:table -->", "<!-- /bench:table -->"


def flatten(phases: dict[str, Any]) -> dict[str, Any]:
    """The keys the issue names, from the phases' results (None where a phase did not run)."""
    ingest, retrieval, generation, startup, answering, served = (
        phases.get(k) or {} for k in ("ingest", "retrieval", "generation", "startup", "answering", "openai_generation")
    )
    sizes = retrieval.get("sizes", {})
    full = ingest.get("full", {})
    app = startup.get("app", {})
    return {
        "ingest_chunks_per_s": full.get("chunks_per_s"),
        "ingest_overhead_ratio": ingest.get("ratio", {}).get("ratio"),
        "reingest_unchanged_s": full.get("reingest_unchanged_s"),
        "reingest_embedding_calls": full.get("reingest_embedding_calls"),
        "retrieve_p50_ms": {m: {s: v[m]["p50_ms"] for s, v in sizes.items() if m in v} for m in METHODS},
        "retrieve_p95_ms": {m: {s: v[m]["p95_ms"] for s, v in sizes.items() if m in v} for m in METHODS},
        "ttft_s": generation.get("ttft_s"),
        "tokens_per_s": generation.get("tokens_per_s"),
        "generation_overhead_ratio": generation.get("generation_overhead_ratio"),
        "openai_generation_overhead_ratio": served.get("openai_generation_overhead_ratio"),
        "cold_start_s": _last(startup.get("cold_start", {}).get("seconds")),
        "app_ready_s": app.get("ready_s"),
        "peak_rss_mb": {
            "ingest": phases.get("ingest_peak_rss_mb"),
            "query": startup.get("cold_start", {}).get("peak_rss_mb"),
            "app": app.get("peak_rss_mb"),
        },
        # Beyond the list: what explains the figures above.
        "raw_encode_chunks_per_s": ingest.get("ratio", {}).get("raw_chunks_per_s"),
        "ingest_to_own_embedder_ratio": ingest.get("ratio", {}).get("ratio_to_own_embedder"),
        "ingest_to_own_embedder_ratio_median_round": _median(
            ingest.get("ratio", {}).get("ratio_to_own_embedder_rounds")
        ),
        "ingest_to_embedding_inside_ratio": ingest.get("ratio", {}).get("ratio_to_embedding_inside"),
        "raw_tokens_per_s": generation.get("raw_tokens_per_s"),
        # Our `openai` backend and the raw client on one llama.cpp server, the prompt already evaluated.
        "openai_tokens_per_s": {k: served.get(k) for k in ("tokens_per_s", "raw_tokens_per_s")},
        "openai_same_output": served.get("same_output"),
        "openai_prefill_s_p50": _median(served.get("prefill_s")),
        "reingest_unchanged_cli_s": startup.get("reingest_cli", {}).get("seconds"),
        "rag_info_s": startup.get("info", {}).get("process_s"),
        "rag_info_imports": startup.get("info", {}).get("imported"),
        "app_page_s": app.get("page_s"),
        "app_note": app.get("note"),
        # The built-in model's quoted answers, seconds at p50, with and without the embedding cache.
        "answer_p50_s": {k: answering.get(k, {}).get("p50_s") for k in ("uncached", "cached_first", "cached_again")},
        "answer_cache_speedup": {k: answering.get(f"speedup_{k}") for k in ("first", "again")},
        "answer_cache_same_answers": answering.get("same_answers"),
        **{key: {s: v.get(name) for s, v in sizes.items()} for key, name in PER_SIZE.items()},
        "query_embedding_p50_ms": {s: v.get("query_embedding", {}).get("p50_ms") for s, v in sizes.items()},
        "embedding_backends": (phases.get("embedding") or {}).get("variants"),
    }


def _ratio(value: float | None, base: float | None) -> float | None:
    """value / base, or None when either is missing."""
    return value / base if value is not None and base else None


def _median(values: list | None) -> float | None:
    return statistics.median(values) if values else None


def _last(values: list | None) -> Any:
    return values[-1] if values else None


def goals(flat: dict[str, Any], bench_seconds: float) -> list[dict[str, Any]]:
    """Each goal of the issue with its measured value and whether it is met."""
    hybrid = flat["retrieve_p95_ms"]["hybrid"]
    today_rss = (flat["bm25s_reader_rss_mb"] or {}).get("100k")  # the reader the lexical index replaced
    rows = [
        ("ingest_overhead_ratio", flat["ingest_overhead_ratio"], "≤", 1.10),
        ("ingest_to_own_embedder_ratio", flat["ingest_to_own_embedder_ratio"], "≤", 1.05),
        ("reingest_unchanged_s", flat["reingest_unchanged_s"], "<", 2.0),
        ("reingest_embedding_calls", flat["reingest_embedding_calls"], "=", 0),
        ("hybrid p95 at 10k (ms)", hybrid.get("10k"), "≤", 12.0),
        ("hybrid p95 at 100k (ms)", hybrid.get("100k"), "≤", 25.0),
        *(  # both searches restricted to the scope
            (
                f"scoped ({what}) / unscoped p95 at {size}",
                _ratio(flat["retrieve_p95_ms"][m].get(size), hybrid.get(size)),
                "≤",
                1.5,
            )
            for m, what in SCOPED.items()
            for size in ("10k", "100k")
        ),
        ("add_one_then_retrieve_s at 100k", (flat["add_one_then_retrieve_s"] or {}).get("100k"), "≤", 1.0),
        ("fresh_reader_s at 100k", (flat["fresh_reader_s"] or {}).get("100k"), "≤", 3.0),
        ("fresh reader peak MB at 100k", (flat["fresh_reader_rss_mb"] or {}).get("100k"), "≤", today_rss),
        ("generation_overhead_ratio", flat["generation_overhead_ratio"], "≤", 1.05),
        ("openai_generation_overhead_ratio", flat["openai_generation_overhead_ratio"], "≤", 1.05),
        ("full bench run (s)", bench_seconds, "<", 900.0),
    ]
    return [_goal(name, value, op, limit) for name, value, op, limit in rows]


def _goal(name: str, value: float | None, op: str, limit: float | None) -> dict[str, Any]:
    if value is None or limit is None or (isinstance(value, float) and math.isnan(value)):
        return {"goal": name, "value": None, "limit": f"{op} {limit}", "met": None, "missed_by": None}
    met = {"≤": value <= limit, "<": value < limit, "=": value == limit}[op]
    missed = None if met else (f"{value - limit:+.3g}" if limit == 0 else f"{value / limit:.2f}× the limit")
    return {"goal": name, "value": value, "limit": f"{op} {fmt(limit)}", "met": met, "missed_by": missed}


def fmt(value: Any) -> str:
    """A number as the table shows it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def markdown(result: dict[str, Any]) -> str:
    """The results as Markdown tables: machine, goals, every key, retrieval by size."""
    m = result["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, {m['platform']}.",
        f"Load average before/after: {result['load_before']} / {result['load_after']}; "
        f"full run {result['bench_seconds']:.0f} s, {result['finished']}.",
        "",
        "| goal | measured | limit | met | missed by |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {g['goal']} | {fmt(g['value'])} | {g['limit']} | {fmt(g['met'])} | {g['missed_by'] or ''} |"
        for g in result["goals"]
    ]
    lines += ["", "| key | value |", "|---|---|"]
    for key, value in result["results"].items():
        if key.startswith("retrieve_") or key == "embedding_backends":
            continue
        shown = ", ".join(f"{k} {fmt(v)}" for k, v in value.items()) if isinstance(value, dict) else fmt(value)
        lines.append(f"| `{key}` | {shown} |")
    lines += ["", "| search | size | p50 ms | p95 ms |", "|---|---|---|---|"]
    p50, p95 = result["results"]["retrieve_p50_ms"], result["results"]["retrieve_p95_ms"]
    for method in METHODS:
        for size in p50[method]:
            lines.append(f"| {method} | {size} | {fmt(p50[method][size])} | {fmt(p95[method][size])} |")
    return "\n".join(lines + _embedding_table(result["results"].get("embedding_backends")))


def _embedding_table(variants: dict[str, dict] | None) -> list[str]:
    if not variants:
        return []
    lines = [
        "",
        "| embedding backend | texts/s | speed-up | support hit@5 | support MRR | article MRR |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in variants.items():
        cells = [v["texts_per_s"], v["speedup"], v["support_hit_at_5"], v["support_mrr"], v["article_mrr"]]
        lines.append(f"| {name} | " + " | ".join(fmt(float(c)) for c in cells) + " |")
    return lines


def write_readme(readme: Path, table: str) -> None:
    """Replace the text between the table markers in the README (appending them when missing)."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    block = f"{TABLE_START}\n{table}\n{TABLE_END}"
    if TABLE_START in text and TABLE_END in text:
        pattern = re.compile(re.escape(TABLE_START) + ".*?" + re.escape(TABLE_END), re.DOTALL)
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text, encoding="utf-8")


def plot(result: dict[str, Any], path: Path) -> None:
    """Latency (p50 solid, p95 dashed) against corpus size, one colour per search."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = result["phases"]["retrieval"]["sizes"]
    counts = [sizes[s]["chunks"] for s in sizes]
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in METHODS[:3]:  # ours: dense, BM25, hybrid
        (line,) = ax.plot(counts, [sizes[s][method]["p50_ms"] for s in sizes], marker="o", label=f"{method} p50")
        ax.plot(
            counts, [sizes[s][method]["p95_ms"] for s in sizes], "--", color=line.get_color(), label=f"{method} p95"
        )
    ax.set(xscale="log", xlabel="chunks in the store", ylabel="ms per question", title="Retrieval latency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
