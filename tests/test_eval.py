"""The evaluation suite: scores on worked examples, the grounding check against hand labels, the
report, the naive baseline beside ours, and the regression gate (passing on the seeds, failing
when retrieval is broken). CI runs retrieval on the whole set and generation on a spread subset.
SQuAD files are read into rows and a corpus, and evaluated, on a small made-up article."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import NO_OLLAMA, SEEDS, make_rag

from eval.baseline import sentence_outcome
from eval.dataset import DEFAULT_QA, Row, load_rows, spread
from eval.gate import MINIMUMS, check, load_limits
from eval.grounding import SupportCheck, agreement, load_labels, score_answer
from eval.metrics import alias_match, best_f1, precision_when_answering, retrieval_scores, token_f1, totals
from eval.squad import answer_offsets, load_squad, write_squad_corpus
from rag import RAG
from rag.cli import main
from rag.errors import BadInput

CAPTION = (
    "Russia's Foreign Minister Sergey Lavrov and his Japanese counterpart Fumio Kishida seen during talks "
    "at the foreign ministry's Iikura guest house in Tokyo"
)
PANCAKES = "Whisk two eggs with milk and flour, then fry the batter in butter until golden."
# A made-up article in SQuAD 2.0's format: two paragraphs, three answerable questions, one not.
LIGHTHOUSE = [
    "The Marrowfen Lighthouse stands on a granite spur at the northern tip of Quillon Island. It was "
    "designed by the engineer Adela Brisk and first lit in 1874. Its lamp burned whale oil until the "
    "keepers switched to paraffin.",
    "The tower is painted in red and white bands. Visitors climb 212 steps to reach the gallery, which "
    "looks out over the Sallow Strait. The last resident keeper, Tobias Wren, left when the light was automated.",
]
LIGHTHOUSE_QAS = [  # (paragraph, id, question, answer texts, unanswerable)
    (
        0,
        "lh1",
        "Who designed the Marrowfen Lighthouse?",
        ["Adela Brisk", "the engineer Adela Brisk", "Adela Brisk"],
        False,
    ),
    (0, "lh2", "In what year was the Marrowfen Lighthouse first lit?", ["1874"], False),
    (1, "lh3", "How many steps do visitors climb to reach the gallery?", ["212", "212 steps"], False),
    (1, "lh4", "Who painted the bands on the lighthouse tower?", ["Tobias Wren"], True),
]


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One results folder for the module, so the eval store is built once."""
    return tmp_path_factory.mktemp("eval-results")


@pytest.fixture
def squad_file(tmp_path: Path) -> Path:
    """The made-up lighthouse article as a SQuAD 2.0 file."""
    paragraphs = [{"context": text, "qas": []} for text in LIGHTHOUSE]
    for number, qid, question, texts, impossible in LIGHTHOUSE_QAS:
        context = LIGHTHOUSE[number]
        answers = [{"text": t, "answer_start": context.index(t)} for t in texts]
        qa = {"id": qid, "question": question, "is_impossible": impossible}
        qa.update({"answers": [], "plausible_answers": answers} if impossible else {"answers": answers})
        paragraphs[number]["qas"].append(qa)
    path = tmp_path / "Lighthouse.json"
    path.write_text(
        json.dumps({"version": "v2.0", "data": [{"title": "Marrowfen_Lighthouse", "paragraphs": paragraphs}]})
    )
    return path


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


def test_precision_when_answering_leaves_out_abstentions_and_counts_unanswerable_answers_wrong() -> None:
    rows = [
        {"answerable": True, "abstained": False, "alias_match": True, "evidence_held": True},
        {"answerable": True, "abstained": False, "alias_match": False, "evidence_held": True},
        {"answerable": False, "abstained": False},  # answered a question the article does not answer
        {"answerable": True, "abstained": True, "alias_match": False, "evidence_held": False},
        {"answerable": False, "abstained": True},
    ]
    assert precision_when_answering(rows) == pytest.approx(1 / 3)
    scored = totals(rows)
    assert scored["precision_when_answering"] == pytest.approx(1 / 3)
    # The short answer holds the gold once in three answerable rows; the sentence it rests on twice.
    assert scored["answer_held"] == pytest.approx(1 / 3) and scored["sentence_held"] == pytest.approx(2 / 3)
    assert precision_when_answering([{"answerable": True, "hit@5": 1.0}]) is None  # retrieval only


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


def test_squad_file_reads_as_rows_with_aliases_support_and_unanswerable_questions(squad_file: Path) -> None:
    rows = {row.id: row for row in load_squad(squad_file)}
    assert list(rows) == ["lh1", "lh2", "lh3", "lh4"]
    designer = rows["lh1"]
    assert (designer.answer, designer.aliases) == ("Adela Brisk", ("the engineer Adela Brisk",))
    assert designer.doc_ids == ("Marrowfen_Lighthouse.txt",) and designer.type == "single" and designer.answerable
    assert designer.support == "It was designed by the engineer Adela Brisk and first lit in 1874."
    assert rows["lh3"].support.startswith("Visitors climb 212 steps")
    trap = rows["lh4"]  # its plausible answer is not a gold one
    assert (trap.answerable, trap.type, trap.category, trap.answer, trap.aliases) == (
        False,
        "unanswerable",
        "squad",
        "",
        (),
    )


def test_squad_corpus_is_one_file_per_article_rewritten_only_when_it_changed(squad_file: Path, tmp_path: Path) -> None:
    corpus = write_squad_corpus(squad_file, tmp_path / "squad")
    article = corpus / "Marrowfen_Lighthouse.txt"
    text = article.read_text(encoding="utf-8")
    assert text.startswith("Marrowfen Lighthouse\n\n") and LIGHTHOUSE[1] in text
    start, end = answer_offsets(squad_file)["lh1"][0]
    assert text[start:end] == "Adela Brisk"
    written = article.stat().st_mtime_ns
    assert write_squad_corpus(squad_file, tmp_path / "squad") == corpus
    assert article.stat().st_mtime_ns == written


def test_a_squad_file_with_an_answer_off_its_offset_is_bad_input(squad_file: Path) -> None:
    data = json.loads(squad_file.read_text())
    data["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 3
    squad_file.write_text(json.dumps(data))
    with pytest.raises(BadInput, match=r"not a SQuAD 2\.0 file.*lh1"):
        load_squad(squad_file)


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


def test_sentence_baseline_quotes_and_cites_the_best_sentence(tmp_path: Path) -> None:
    corpus = tmp_path / "articles"
    corpus.mkdir()
    (corpus / "kites.txt").write_text(
        "Kites over Pellmoor\n\nA festival of kites is held each spring on the dunes of Pellmoor. The largest "
        "kite ever flown there was shaped like a whale and measured forty metres. Judges award a silver ribbon "
        "to the steadiest flyer.\n"
    )
    (corpus / "bread.txt").write_text(
        "Sourdough\n\nA sourdough starter is fed with flour and water every day. Bakers in Tallow Row keep "
        "their starters in cool cellars through the summer.\n"
    )
    rag = make_rag(tmp_path / ".rag", corpus)
    rag.ingest([corpus])
    row = Row(
        "k1", "How long was the largest kite flown at Pellmoor?", "forty metres", (), ("kites.txt",), "single", True
    )
    outcome = sentence_outcome(rag, row)
    best = "The largest kite ever flown there was shaped like a whale and measured forty metres."
    number = int(re.fullmatch(rf"“{re.escape(best)}” \[(\d+)\]", outcome["answer"]).group(1))
    assert outcome["retrieved"][number - 1] == "kites.txt"
    assert outcome["evidence"][0] == outcome["answer_sentence"] == best
    assert (outcome["abstained"], outcome["how"], outcome["backend"]) == (False, "quote", "baseline")


def test_squad_eval_runs_ours_and_the_sentence_baseline_over_the_article(squad_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = rag_eval(out, "--squad", str(squad_file), "--baseline", "sentence")
    assert done.exit_code == 0, done.output
    assert "precision when answering" in done.stdout and "sentence" in done.stdout
    assert (out / "squad" / "Lighthouse" / "Marrowfen_Lighthouse.txt").is_file()
    results = json.loads((out / "results.json").read_text())
    for name in ("ours", "sentence"):
        run = results["pipelines"][name]
        assert {r["id"]: r["answerable"] for r in run["rows"]} == {"lh1": True, "lh2": True, "lh3": True, "lh4": False}
        assert "precision_when_answering" in run["totals"]
    baseline = results["pipelines"]["sentence"]
    assert not any(r["abstained"] for r in baseline["rows"])  # it never abstains, so lh4 is wrong
    assert baseline["totals"]["precision_when_answering"] <= 0.75
    assert all(r["gold_doc_ids"] == ["Marrowfen_Lighthouse.txt"] for r in baseline["rows"])


def test_suite_runs_every_set_on_its_own_corpus_and_tags_its_role(out: Path) -> None:
    done = rag_eval(out, "--suite", "--retrieval-only", "--limit", "2", "--json")
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    roles = {s["name"]: s["role"] for s in summary["sets"]}
    assert roles == {
        "seeds dev": "tuning",
        "seeds test": "reporting",
        "Rhine": "tuning",
        "Computational_complexity_theory": "reporting",
    }
    assert all(s["totals"]["ours"]["questions"] == 2 for s in summary["sets"])
    results = json.loads((out / "suite.json").read_text())
    corpora = {s["name"]: Path(s["config"]["corpus"]) for s in results["sets"]}
    assert corpora["Rhine"] == out / "squad" / "Rhine" and corpora["seeds dev"] == SEEDS
    assert "| set | role | pipeline | questions |" in (out / "suite.md").read_text()


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
    # The default leads with the one name, date or number of the asked kind in the best evidence
    # sentence, else quotes that sentence, or puts an answer together from two facts, or abstains.
    assert {r["how"] for r in answered} <= {
        "short",
        "quote",
        "opening",
        "byline",
        "model",
        "abstain",
        "reckon",
        "names",
    }
    quoted = [r for r in answered if r["how"] == "quote"]
    assert all(r["evidence"] and r["answer"].startswith("“") for r in quoted)
    short = [r for r in answered if r["how"] == "short"]
    assert quoted + short, "no answer at all"
    assert all(re.fullmatch(r".+ \[\d\]\.", r["answer"]) and len(r["answer"].split()) <= 12 for r in short)
    assert all(r["total_s"] > 0 for r in answered)


@pytest.mark.slow
def test_a_squad_subset_meets_its_own_minimums(out: Path) -> None:
    """60 questions of the SQuAD tuning article, half of them unanswerable, against eval/squad_minimums.json."""
    squad = Path(__file__).resolve().parents[1] / "eval" / "squad"
    done = rag_eval(
        out,
        "--squad",
        str(squad / "Rhine.json"),
        "--limit",
        "60",
        "--check",
        "--minimums",
        str(squad.parent / "squad_minimums.json"),
    )
    assert done.exit_code == 0, done.output + done.stderr
    results = json.loads((out / "results.json").read_text())
    rows = results["pipelines"]["ours"]["rows"]
    assert len(rows) == 60 and sum(r["answerable"] for r in rows) == 30
    assert {r["how"] for r in rows} <= {"short", "quote", "abstain", "refuse"}
    held = [r for r in rows if r["answerable"] and r["alias_match"]]
    assert held and all(r["citations_retrieved"] == r["citations"] >= 1 for r in held)
