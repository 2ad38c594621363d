"""The evaluation suite: scores on worked examples, the grounding check against hand labels, the
report, the naive baseline beside ours, and the regression gate (passing on the seeds, failing
when retrieval is broken). CI runs retrieval on the whole set and generation on a spread subset."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import NO_OLLAMA, SEEDS

from eval.dataset import DEFAULT_QA, load_rows, spread
from eval.gate import MINIMUMS, check, load_limits
from eval.grounding import SupportCheck, agreement, load_labels, score_answer
from eval.metrics import alias_match, best_f1, retrieval_scores, token_f1
from rag import RAG
from rag.cli import main

CAPTION = (
    "Russia's Foreign Minister Sergey Lavrov and his Japanese counterpart Fumio Kishida seen during talks "
    "at the foreign ministry's Iikura guest house in Tokyo"
)
PANCAKES = "Whisk two eggs with milk and flour, then fry the batter in butter until golden."


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One results folder for the module, so the eval store is built once."""
    return tmp_path_factory.mktemp("eval-results")


def rag_eval(out: Path, *args: str, **env: str) -> Result:
    """`rag eval --out OUT ARGS` with the embedded model and no Ollama."""
    variables = {"RAG_OLLAMA_HOST": NO_OLLAMA, "RAG_BACKEND": "embedded", **env}
    return CliRunner().invoke(main, ["eval", "--out", str(out), *args], env=variables, catch_exceptions=False)


# -- scores on worked examples --------------------------------------------------------------------


def test_token_f1_follows_the_squad_normalisation() -> None:
    # "the" and punctuation go; 3 shared tokens: precision 3/3, recall 3/5.
    assert token_f1("The Iikura guest house.", "Iikura guest house in Tokyo") == pytest.approx(0.75)
    assert token_f1("Article 107", "article 107") == 1.0
    assert best_f1("It is Article 107 [2].", ["nothing alike", "Article 107"]) == pytest.approx(2 * 0.5 / 1.5)


def test_alias_match_needs_the_gold_form_as_whole_words() -> None:
    assert alias_match("The agreement entered into force in 1972 [1].", ["27 years", "1972"])
    assert not alias_match("It was signed in 19721.", ["1972"])
    assert alias_match("Talks were held at the Iikura Guest House.", ["Iikura guest house"])


def test_retrieval_scores_rank_the_first_passage_from_a_gold_document() -> None:
    scores = retrieval_scores(["b.txt", "a.txt", "a.txt", "d.txt", "c.txt"], ["a.txt", "c.txt"])
    assert scores == {"hit@1": 0.0, "hit@3": 1.0, "hit@5": 1.0, "mrr": 0.5, "recall@5": 1.0}
    assert retrieval_scores(["b.txt"], ["a.txt"])["mrr"] == 0.0


# -- the question set -----------------------------------------------------------------------------


def test_question_set_points_at_real_articles_and_verbatim_support() -> None:
    rows = load_rows(DEFAULT_QA)
    assert len(rows) == 179
    for row in rows:
        texts = [(SEEDS / doc).read_text(encoding="utf-8") for doc in row.doc_ids]
        assert row.answerable == bool(row.doc_ids) == (row.type != "unanswerable"), row.id
        assert not row.answerable or any(row.support in text for text in texts), row.id


def test_limit_spreads_questions_across_types_and_categories() -> None:
    rows = spread(load_rows(DEFAULT_QA), 7)
    assert {r.group for r in rows} == {
        "single",
        "multi",
        "paraphrase",
        "followup",
        "missing_fact",
        "off_topic",
        "injection",
    }
    assert [r.id for r in rows] == sorted(r.id for r in rows)


# -- grounding ------------------------------------------------------------------------------------


def test_grounding_check_agrees_with_the_hand_labelled_sentences(seeded_rag: RAG) -> None:
    verdicts = agreement(load_labels(), SupportCheck(seeded_rag.similarities))
    assert len(verdicts) >= 10
    assert [label["id"] for label, supported in verdicts if supported != label["supported"]] == []


def test_alce_scores_a_redundant_citation_as_imprecise(seeded_rag: RAG) -> None:
    check = SupportCheck(seeded_rag.similarities)
    scored = score_answer("Lavrov and Kishida held talks at the Iikura guest house [1][2].", [CAPTION, PANCAKES], check)
    assert scored["citation_recall"] == 1.0
    assert scored["sentences"][0]["precise"] == [True, False]
    assert scored["citation_precision"] == 0.5
    unsupported = score_answer(
        "Lavrov and Kishida held talks at the Iikura guest house [2].", [CAPTION, PANCAKES], check
    )
    assert unsupported["citation_recall"] == 0.0 and unsupported["citation_precision"] == 0.0


# -- the runner, the report and the gate ----------------------------------------------------------


def test_retrieval_run_puts_the_naive_baseline_beside_ours_and_passes_the_check(out: Path, tmp_path: Path) -> None:
    user_home = tmp_path / "user" / ".rag"
    done = rag_eval(out, "--retrieval-only", "--baseline", "naive", "--check", RAG_HOME=str(user_home))
    assert done.exit_code == 0, done.output
    assert "retrieval hit@1" in done.stdout and "naive" in done.stdout
    results = json.loads((out / "results.json").read_text())
    ours, naive = results["pipelines"]["ours"], results["pipelines"]["naive"]
    assert len(ours["rows"]) == len(naive["rows"]) == 179
    assert ours["totals"]["hit@5"] > naive["totals"]["hit@5"]
    assert naive["totals"]["hit@1"] is not None and naive["totals"]["gate_abstain_rate"] is None
    assert results["check"] and all(line["passed"] for line in results["check"])
    report = (out / "report.md").read_text()
    assert (
        "| metric | ours | ours dev | ours test | naive | naive dev | naive test | limit |" in report
        and "![metrics and latency](report.png)" in report
    )
    assert (out / "report.png").stat().st_size > 10_000
    assert not user_home.exists()  # the eval keeps its own store under the results folder


def test_check_fails_when_retrieval_is_broken(out: Path) -> None:
    # One candidate from each search and one passage: the right article often goes missing.
    done = rag_eval(out, "--retrieval-only", "--check", RAG_TOP_K="1", RAG_CANDIDATES="1")
    assert done.exit_code == 1
    assert "FAILED" in done.stderr and "hit@5" in done.stderr


def test_json_summary_has_the_totals_of_each_pipeline(out: Path) -> None:
    done = rag_eval(out, "--retrieval-only", "--limit", "5", "--json")
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["totals"]["ours"]["questions"] == 5
    assert summary["config"]["mode"] == "retrieval only" and summary["check"] == []


def test_calibration_reports_the_gate_signals_for_both_kinds_of_question(out: Path) -> None:
    done = rag_eval(out, "--calibrate", "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert {"answerable", "off_topic", "missing_fact"} <= set(result["distributions"])
    best, current = result["best"], result["current"]
    assert best["abstain_rate"] - best["false_refusal_rate"] >= current["abstain_rate"] - current["false_refusal_rate"]
    assert result["best_without_false_refusals"]["false_refusal_rate"] == 0.0


def test_a_malformed_question_set_fails_with_one_line(out: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x1", "question": "Where?"}\n')
    done = rag_eval(out, "--qa", str(bad), "--retrieval-only")
    assert done.exit_code == 2
    assert done.stderr.startswith("Error: line 1 of the question set")


def test_limits_file_states_a_tolerance_and_covers_every_kind_of_metric() -> None:
    spec = load_limits(MINIMUMS)
    assert 0 < spec["tolerance"] <= 0.05
    limited = set(spec["minimums"]) | set(spec["maximums"])
    assert {"hit@1", "hit@5", "mrr", "alias_match", "citations_in_retrieved", "abstain_rate"} <= limited
    assert {"evidence_support@1", "confidently_wrong", "answer_words_p50", "false_refusal_rate"} <= limited
    assert spec["minimums"]["citations_in_retrieved"] == 1.0
    assert [v.passed for v in check({"hit@1": 0.0}, spec)] == [False]


@pytest.mark.slow
def test_generation_subset_meets_the_minimums(out: Path) -> None:
    done = rag_eval(out, "--limit", "12", "--check")
    assert done.exit_code == 0, done.output + done.stderr
    results = json.loads((out / "results.json").read_text())
    rows = results["pipelines"]["ours"]["rows"]
    assert len(rows) == 12
    assert results["pipelines"]["ours"]["totals"]["citations_in_retrieved"] == 1.0
    answered = [r for r in rows if r["backend"] == "embedded"]
    assert answered and all("SmolLM2" in r["model"] for r in answered)
    # The default quotes the best evidence sentence, or puts an answer together from two facts, or
    # abstains; each answer with its evidence.
    assert {r["how"] for r in answered} <= {"quote", "model", "abstain", "reckon", "names"}
    quoted = [r for r in answered if r["how"] == "quote"]
    assert quoted and all(r["evidence"] and r["answer"].startswith("“") for r in quoted)
    composed = [r for r in answered if r["how"] in ("reckon", "names")]
    assert all(len(re.findall(r"\[\d+\]", r["answer"])) >= 1 and r["evidence"] for r in composed)
    assert all(r["total_s"] > 0 for r in answered)
