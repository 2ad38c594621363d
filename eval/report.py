"""What a run leaves behind: `results.json`, `report.md` with `report.png`, and a table for the terminal;
for `--suite`, `suite.json` and `suite.md` with one row per set and pipeline."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

# (metric, label) in the order the tables show them; rates first, then latencies.
METRICS = (
    ("hit@1", "retrieval hit@1"),
    ("hit@3", "retrieval hit@3"),
    ("hit@5", "retrieval hit@5"),
    ("mrr", "retrieval MRR"),
    ("recall@5", "gold-document recall@5"),
    ("evidence_support@1", "evidence hit@1, gold sentence"),
    ("evidence_support@3", "evidence hit@3, gold sentence"),
    ("evidence_alias@1", "evidence hit@1, holds the answer"),
    ("evidence_alias@3", "evidence hit@3, holds the answer"),
    ("alias_match", "answer alias match"),
    ("sentence_held", "answer's sentence holds the answer"),
    ("precision_when_answering", "precision when answering"),
    ("confidently_wrong", "confidently wrong, all questions"),
    ("uncertain_rate", "answers marked uncertain"),
    ("wrong_when_uncertain", "wrong among those marked uncertain"),
    ("wrong_when_sure", "wrong among those not marked"),
    ("token_f1", "answer token F1"),
    ("grounded_sentences", "sentences supported by their citations"),
    ("citation_recall", "citation recall (ALCE)"),
    ("citation_precision", "citation precision (ALCE)"),
    ("citations_in_retrieved", "citations pointing at retrieved passages"),
    ("abstain_rate", "abstain rate, unanswerable"),
    ("false_refusal_rate", "false-refusal rate, answerable"),
    ("gate_abstain_rate", "gate refusals, unanswerable"),
    ("gate_false_refusal_rate", "gate refusals, answerable"),
    ("answer_words_p50", "answer words, median"),
    ("retrieval_ms_p50", "retrieval ms, median"),
    ("ttft_s_p50", "time to first token s, median"),
    ("total_s_p50", "total s, median"),
    ("total_s_p95", "total s, 95th percentile"),
)
LATENCIES = {"retrieval_ms_p50", "ttft_s_p50", "total_s_p50", "total_s_p95", "answer_words_p50"}
# (metric, heading) of the suite's table, one row per set and pipeline.
SUITE_COLUMNS = (
    ("hit@5", "hit@5"),
    ("answer_held", "answer held (answerable)"),
    ("sentence_held", "sentence held (answerable)"),
    ("precision_when_answering", "precision when answering"),
    ("false_refusal_rate", "false refusals"),
    ("abstain_rate", "abstain (unanswerable)"),
    ("confidently_wrong", "confidently wrong"),
    ("answer_words_p50", "answer words p50"),
    ("total_s_p50", "p50 seconds"),
)


def fmt(value: float | None, metric: str = "") -> str:
    """A metric value for a table: 3 decimals for rates and seconds (answers take hundredths of one
    when no model writes), 1 for milliseconds and words, a dash when not measured."""
    if value is None:
        return "—"
    return f"{value:.1f}" if metric in LATENCIES and not metric.endswith("_s_p50") else f"{value:.3f}"


def measured(results: dict) -> list[tuple[str, str]]:
    """The metrics at least one pipeline measured in this run."""
    runs = results["pipelines"].values()
    return [(key, label) for key, label in METRICS if any(run["totals"].get(key) is not None for run in runs)]


def columns(results: dict) -> list[tuple[str, dict]]:
    """(heading, totals) per table column: each pipeline on all rows, then on its dev and test rows."""
    found = []
    for name, run in results["pipelines"].items():
        found.append((name, run["totals"]))
        found += [(f"{name} {split}", totals) for split, totals in run.get("splits", {}).items()]
    return found


def table_rows(results: dict, limits: dict[str, str]) -> list[list[str]]:
    """Header and one row per measured metric: label, each column's value, the gate's limit."""
    shown = columns(results)
    rows = [["metric", *(heading for heading, _ in shown), "limit"]]
    for key, label in measured(results):
        rows.append([label, *(fmt(totals.get(key), key) for _, totals in shown), limits.get(key, "")])
    return rows


def terminal_table(rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """Plain columns, the first `left` left-aligned and the rest right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def markdown_table(rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table without columns nothing was measured in; numeric columns right-aligned."""
    head, *body = rows
    keep = [i for i in range(len(head)) if i == 0 or any(row[i] not in ("", "—") for row in body)]
    rows = [[row[i] for i in keep] for row in rows]
    head, *body = rows
    numeric = [all(_numeric(row[i]) for row in body) for i in range(len(head))]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return "\n".join(lines)


def _numeric(cell: str) -> bool:
    return cell in ("", "—") or cell.lstrip("≥≤ ").replace(".", "", 1).isdigit()


def by_type(rows: Sequence[dict]) -> list[list[str]]:
    """Per type (and unanswerable category): questions, hit@5, alias match, abstained."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["category"] or row["type"], []).append(row)
    table = [["type", "questions", "hit@5", "alias match", "abstained"]]
    for name, members in groups.items():
        table.append(
            [name, str(len(members)), *(_share(members, key) for key in ("hit@5", "alias_match", "abstained"))]
        )
    return table


def _share(rows: Sequence[dict], key: str) -> str:
    values = [float(r[key]) for r in rows if r.get(key) is not None]
    return fmt(sum(values) / len(values)) if values else "—"


def per_question(rows: Sequence[dict]) -> list[list[str]]:
    """One line per question: scores and timings."""
    table = [["id", "split", "type", "hit@5", "F1", "abstained", "retrieval ms", "first token s", "total s", "answer"]]
    for r in rows:
        answer = (r.get("answer") or "").replace("\n", " ")
        table.append(
            [
                r["id"],
                r.get("split") or "—",
                r["category"] or r["type"],
                fmt(r.get("hit@5")),
                fmt(r.get("token_f1")),
                "—" if r.get("abstained") is None else "yes" if r["abstained"] else "no",
                fmt(r.get("retrieval_ms"), "retrieval_ms_p50"),
                fmt(r.get("ttft_s"), "ttft_s_p50"),
                fmt(r.get("total_s"), "total_s_p50"),
                answer[:120] + ("…" if len(answer) > 120 else ""),
            ]
        )
    return table


def markdown(results: dict, limits: dict[str, str], check_lines: Sequence[str], plot: str) -> str:
    """The whole report: settings, the side-by-side table, the plot, per type, per question."""
    config = results["config"]
    parts = [
        "# Evaluation report",
        f"{config['created']} · {config['mode']} · {config['questions']} questions · corpus `{config['corpus']}`"
        f" · generator: {config['backend'] or 'none'} · settings: {config['settings']}",
        "## Totals",
        markdown_table(table_rows(results, limits)),
        f"Grounding check: {config['grounding_check']}.",
    ]
    if check_lines:
        parts += ["## Regression check", "\n".join(f"- {line}" for line in check_lines)]
    parts += [f"![metrics and latency]({plot})"]
    for name, run in results["pipelines"].items():
        parts += [f"## {name}: by type", markdown_table(by_type(run["rows"]))]
        parts += [f"## {name}: per question", markdown_table(per_question(run["rows"]))]
    return "\n\n".join(parts) + "\n"


def plot(results: dict, path: Path) -> None:
    """Bars of the rate metrics per pipeline beside a histogram of per-question latency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["pipelines"])
    rates = [(k, label) for k, label in measured(results) if k not in LATENCIES]
    figure, (bars, histogram) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [2, 1]})
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = [results["pipelines"][name]["totals"].get(k) or 0.0 for k, _ in rates]
        bars.bar([x + i * width for x in range(len(rates))], values, width, label=name)
    bars.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(rates))], [k for k, _ in rates], rotation=60)
    bars.set_ylim(0, 1.05)
    bars.legend()
    bars.set_title("metrics (higher is better except refusal rates)")
    _latency_histogram(histogram, results, names)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _latency_histogram(axes: object, results: dict, names: Sequence[str]) -> None:
    full = results["config"]["mode"] == "full"
    key, unit = ("total_s", "seconds per question") if full else ("retrieval_ms", "retrieval milliseconds")
    for name in names:
        values = [r[key] for r in results["pipelines"][name]["rows"] if r.get(key) is not None]
        axes.hist(values, bins=20, alpha=0.6, label=name)
    axes.set_xlabel(unit)
    axes.set_ylabel("questions")
    axes.legend()
    axes.set_title("latency")


def write(results: dict, out: Path, limits: dict[str, str], check_lines: Sequence[str]) -> dict[str, Path]:
    """Write `results.json`, `report.png` and `report.md` under `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "plot": out / "report.png", "report": out / "report.md"}
    paths["json"].write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    plot(results, paths["plot"])
    paths["report"].write_text(markdown(results, limits, check_lines, paths["plot"].name), encoding="utf-8")
    return paths


def suite_rows(results: dict) -> list[list[str]]:
    """Header and one row per set and pipeline: set, role, pipeline, questions, `SUITE_COLUMNS`."""
    rows = [["set", "role", "pipeline", "questions", *(heading for _, heading in SUITE_COLUMNS)]]
    for entry in results["sets"]:
        for name, run in entry["pipelines"].items():
            values = [fmt(run["totals"].get(key), key) for key, _ in SUITE_COLUMNS]
            rows.append([entry["name"], entry["role"], name, str(run["totals"]["questions"]), *values])
    return rows


def suite_markdown(results: dict, check_lines: Sequence[str]) -> str:
    """The suite's report: what ran, the table, the sets' corpora, the check of the seeds rows."""
    config = results["config"]
    parts = [
        "# Evaluation suite",
        f"{config['created']} · {config['mode']} · {config['questions']} questions"
        f" · generator: {config['backend'] or 'none'}",
        markdown_table(suite_rows(results)),
        "Roles: tune on the *tuning* sets; the *reporting* sets are only reported, nothing is chosen by"
        " looking at them. Answer held: the answer holds a gold form (alias match), abstentions counting"
        " as misses; sentence held: the sentence it rests on does.",
        "\n".join(f"- {s['name']} ({s['role']}): corpus `{s['config']['corpus']}`" for s in results["sets"]),
    ]
    if check_lines:
        parts += ["## Regression check (seeds rows)", "\n".join(f"- {line}" for line in check_lines)]
    return "\n\n".join(parts) + "\n"


def write_suite(results: dict, out: Path, check_lines: Sequence[str]) -> dict[str, Path]:
    """Write `suite.json` and `suite.md` under `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "suite.json", "report": out / "suite.md"}
    paths["json"].write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    paths["report"].write_text(suite_markdown(results, check_lines), encoding="utf-8")
    return paths
