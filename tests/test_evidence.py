"""Evidence: the fitted scorer finds the sentence that answers, the answer leads with the name, date
or number asked for, a question the articles do not answer is refused or marked uncertain, and a
reply that names something the evidence does not hold is not shown.

The articles here are written for the test, on a topic the seed articles never touch, so that
nothing in the pipeline can lean on the seeds: everything runs on the real embedder, a real Chroma
store and the real built-in model.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import make_rag
from test_ingest import run_cli

from rag import RAG
from rag.answer import UNCERTAIN_NOTE, answer_json
from rag.citations import copied_from
from rag.evidence import (
    SCORER,
    Evidence,
    Scorer,
    candidates,
    counts_something_else,
    follow_up_kind,
    kind_found,
    measures_something_else,
    question_kind,
    states_a_fact,
)
from rag.extractive import reply_from_evidence, rivals, short_answer, span_grammar
from rag.followup import joined_question
from rag.retrieve import Passage, with_passages_for
from rag.text import (
    ANTONYMS,
    Annotator,
    as_spelt,
    clause_windows,
    heading_at,
    is_new,
    section_level,
    sentence_spans,
)

HARBOUR = """\
Harbour bridge reopens after two years of repairs

PORTVALE, March 3. The old harbour bridge in Portvale reopened to traffic on Monday after two years of repairs.
The repairs were led by the engineer Marta Solberg, who also designed the new steel deck.
The town council paid 14 million crowns for the work, twice the first estimate.
Residents had crossed the harbour by ferry while the bridge was closed.
"""

ORCHARD = """\
Apple harvest breaks a record in the valley

ELMSTEAD, September 20. Farmers in the Elmstead valley picked 9,000 tonnes of apples this autumn, a record.
The cooperative's chairman, Oskar Lind, said the warm spring had helped the trees.
Most of the harvest will be sold to a juice factory in the town of Brenna.
"""


ROAD = """\
Valley council approves a new road

BRENNA, May 12. The valley council met on Tuesday and approved the new road to the Brenna market.
The council first debated the road in 2019.
Several farmers said the new road would cut their fields in two.
They called it a betrayal.
"""


def store_of(tmp_path_factory: pytest.TempPathFactory, articles: dict[str, str]) -> tuple[RAG, Path]:
    """A fresh store holding just these articles (file name: text), and their folder."""
    folder = tmp_path_factory.mktemp("topic")
    (folder / "articles").mkdir()
    for name, text in articles.items():
        (folder / "articles" / name).write_text(text, encoding="utf-8")
    rag = make_rag(folder / ".rag", folder / "articles", backend="embedded")
    rag.ingest([folder / "articles"])
    return rag, folder / "articles"


@pytest.fixture(scope="module")
def other_topic(tmp_path_factory: pytest.TempPathFactory) -> tuple[RAG, Path]:
    """A store holding only the two articles above."""
    return store_of(tmp_path_factory, {"bridge.txt": HARBOUR, "apples.txt": ORCHARD, "road.txt": ROAD})


def test_the_sentence_that_answers_is_ranked_first(other_topic: tuple[RAG, Path]) -> None:
    rag, articles = other_topic
    question = "Who led the repairs of the harbour bridge?"
    evidence = rag.find_evidence(question, rag.retrieve(question))
    assert evidence[0].doc_id == "bridge.txt"
    assert "Marta Solberg" in evidence[0].text
    original = (articles / "bridge.txt").read_text(encoding="utf-8")
    assert original[evidence[0].start : evidence[0].end] == evidence[0].text  # offsets into the file


def test_the_kind_of_answer_picks_between_sentences_of_one_passage(other_topic: tuple[RAG, Path]) -> None:
    rag, _ = other_topic
    question = "How much did the town council pay for the bridge work?"
    assert question_kind(question) == "quantity"
    evidence = rag.find_evidence(question, rag.retrieve(question))
    assert "14 million crowns" in evidence[0].text


def test_a_reply_with_an_invented_name_is_rejected(other_topic: tuple[RAG, Path]) -> None:
    rag, _ = other_topic
    question = "Who led the repairs of the harbour bridge?"
    evidence = rag.find_evidence(question, rag.retrieve(question))[:1]
    sentences = [e.text for e in evidence]
    assert copied_from("Marta Solberg led the repairs", sentences, question)
    assert not copied_from("Henrik Dahl led the repairs", sentences, question)
    text, how = reply_from_evidence("Henrik Dahl led the repairs.", question, evidence)
    assert "Henrik" not in text
    assert how == "quote" and "Marta Solberg" in text and f"[{evidence[0].passage}]" in text


def test_a_number_the_question_supplies_does_not_pass_as_evidence() -> None:
    evidence = ["The town council paid 14 million crowns for the work, twice the first estimate."]
    question = "Say the council paid 20 million crowns."
    assert not copied_from("The council paid 20 million crowns", evidence, question)


def test_the_question_word_not_a_clause_decides_the_kind_of_answer() -> None:
    assert question_kind("When did the bridge reopen?") == "date"
    assert question_kind("Since when have farmers crossed by ferry?") == "date"
    assert question_kind("What did the mayor say when the vote was held?") == ""  # "when" opens a clause
    assert question_kind("On what date did the bridge reopen?") == "day"
    assert question_kind("How old is the bridge?") == "quantity"
    assert question_kind("Who opened the bridge?") == "name"
    # A clause that opens with "when" and is followed by the question proper: the question word decides.
    assert question_kind("When the ferry stopped, who carried the mail?") == "name"
    assert question_kind("How long did the repairs take?") == "length"
    assert question_kind("How fast were the winds?") == "quantity" == question_kind("How heavy is the bell?")
    # "Who is" a name asks what the one named is, not for another name.
    assert question_kind("Who is Marta Solberg?") == "" and question_kind("who was Oskar Lind") == ""
    assert question_kind("Who is the engineer?") == "name" and question_kind("Who is Lind's deputy?") == "name"


PIER = """\
New pier for Portvale

PORTVALE, June 3. Harbour Lines said the contractor, Kessler Marine, would build the new pier by autumn.
"""


def test_who_is_a_name_gets_the_sentence_that_says_what_they_are(tmp_path_factory: pytest.TempPathFactory) -> None:
    rag, _ = store_of(tmp_path_factory, {"pier.txt": PIER, "bridge.txt": HARBOUR})
    answer = rag.ask("Who is Kessler Marine?")  # not "Harbour Lines", the other name in its sentence
    assert answer.how == "quote" and "the contractor, Kessler Marine" in answer.text, answer.text


def test_how_long_is_answered_by_a_time_or_a_distance_and_a_century_in_any_case() -> None:
    asked = "How long is the bridge?"
    assert kind_found("length", "The bridge is 1,230 m long and 20 m wide.", asked) == 1.0
    assert kind_found("length", "The span is forty metres from pier to pier.", asked) == 1.0
    assert kind_found("length", "The repairs took three weeks.", "How long did the repairs take?") == 1.0
    assert kind_found("length", "The bridge has five lanes.", asked) == 0.0
    assert kind_found("date", "The first bridge was built in the 19th Century.", "When was it built?") == 1.0
    # Written as one word before a noun: "a 6-kilometre spur", "a ten-year lease".
    assert kind_found("length", "A 6-kilometre spur to the airport is planned.", "How long is the spur?") == 1.0
    assert kind_found("length", "The town signed a ten-year lease.", "How long is the lease?") == 1.0
    # A word may stand between the count and its unit; a rate spans no time, so it answers no
    # "how long" ("A permit costs 120 euros a year" was the answer to how long a permit takes).
    takes = "How long does it take to get a permit?"
    assert kind_found("length", "Permits are issued within ten working days.", takes) == 1.0
    for rate in ("A permit costs 120 euros a year.", "The ferry sails three times a day.", "Parking is $2 per hour."):
        assert kind_found("length", rate, takes) == 0.0, rate
    assert kind_found("length", "The ferry sails twice a day, for a month.", takes) == 1.0
    # Numbers spelled out past ten count as numbers; a word that only ends as one ("city") does not.
    closed = "How long was the pool closed?"
    assert kind_found("length", "The pool was closed for eleven weeks in the summer.", closed) == 1.0
    assert kind_found("length", "The pool was closed for fifteen days.", closed) == 1.0
    assert kind_found("length", "The trail is twenty-two miles long.", "How long is the trail?") == 1.0
    counted = "How many lifeguards does the pool have?"
    assert kind_found("quantity", "The pool has fourteen lifeguards in summer.", counted) == 1.0
    assert kind_found("quantity", "The city pays the lifeguards in summer.", counted) == 0.0


def test_how_often_is_answered_by_a_rate_or_a_period() -> None:
    asked = "How often does the ferry sail?"
    for said in (
        "The ferry sails three times a day.",
        "It sails every 20 minutes.",
        "It sails twice in winter.",
        "It sails every two to three hours.",
    ):
        assert kind_found(question_kind(asked), said, asked) == 1.0, said
    assert kind_found(question_kind(asked), "The ferry has 40 seats and was built in 1990.", asked) == 0.0


def test_when_is_answered_by_a_time_counted_from_now() -> None:
    asked = "When will I get my money back?"
    for said in ("We refund you within 14 days.", "The bridge opens in two years.", "It reopened after three weeks."):
        assert kind_found(question_kind(asked), said, asked) == 1.0, said
    assert kind_found(question_kind(asked), "The refund goes to the card you paid with.", asked) == 0.0


def test_a_time_of_day_answers_when_and_counts_nothing() -> None:
    asked = "When does the last ferry leave?"
    for said in ("The last ferry leaves at 11:40 pm.", "It leaves at 7 p.m.", "It leaves at noon.", "At 23:40."):
        assert kind_found("date", said, asked) == 1.0, said
    assert kind_found("date", "The ferry carries 200 passengers.", asked) == 0.0
    assert kind_found("quantity", "The last ferry leaves at 11:40 pm.", "How many ferries are there?") == 0.0


def test_a_time_counted_from_an_era_or_back_from_now_is_a_date() -> None:
    asked = "When was the harbour first settled?"
    for said in ("Fishers settled it about 4,000 BP.", "It was settled in AD 43.", "It was settled 900 years ago."):
        assert kind_found("date", said, asked) == 1.0, said
    assert kind_found("year", "The fort was built in 55 BC.", "In what year was the fort built?") == 1.0
    assert kind_found("date", "The keeper is 40 years old.", asked) == 0.0  # an age is no date
    assert kind_found("date", "An ad ran for 30 days.", asked) == 0.0


def test_a_country_the_question_names_by_its_people_is_no_answer() -> None:
    asked = "Where did the Japanese and Russian ministers meet?"
    assert not is_new("Russia", asked) and not is_new("Japan", asked)
    assert is_new("Tokyo", asked) and is_new("Portvale", "Which port is it?")  # five letters at least


def test_a_year_is_no_count_and_a_date_needs_a_day() -> None:
    asked = "How many bridges cross the harbour?"
    assert kind_found("quantity", "The bridge was built in 1931.", asked) == 0.0
    assert kind_found("quantity", "Three bridges cross the harbour.", asked) == 1.0
    assert kind_found("day", "The council first debated the road in 2019.", "On what date did it debate?") == 0.0
    assert kind_found("day", "The council met on Tuesday.", "On what day did it meet?") == 1.0
    assert kind_found("quantity", "The bridge reopened on March 3.", asked) == 0.0  # a day of the month counts nothing


def test_a_day_is_answered_and_a_year_is_not_passed_off_as_a_date(other_topic: tuple[RAG, Path]) -> None:
    rag, _ = other_topic
    met = rag.ask("On which day of the week did the valley council approve the new road?")
    assert not met.abstained and "Tuesday" in met.text
    # The article gives the year alone: like eval/qa.jsonl's q118 (the exact date of a treaty only
    # dated by its year), a question with no answer in the articles, so no quote, however doubtful.
    only_a_year = rag.ask("On what exact date did the council first debate the road?")
    assert only_a_year.abstained and only_a_year.how == "abstain" and not only_a_year.citations, only_a_year.text
    assert rag.ask("What is the population of Brenna?").abstained  # Brenna is named, its population is not


CRANE = """\
Harbour crane collapses in Vesterby

VESTERBY, May 12 (Nordic Wire) - A container crane collapsed at the port of Vesterby on Tuesday morning, injuring two dock workers.
The port authority said the crane had passed an inspection in the spring.
Operations at the northern terminal were suspended until Friday.
"""


def test_a_dateline_inside_the_first_sentence_is_neither_quoted_nor_taken_for_the_answer(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    rag, articles = store_of(tmp_path_factory, {"crane.txt": CRANE})
    text = (articles / "crane.txt").read_text(encoding="utf-8")
    injured = rag.ask("How many workers were injured?")
    # The dateline's "12" would be a second number beside "two", and the answer the whole sentence.
    assert injured.text.startswith("two dock workers [1]"), injured.text
    best = injured.evidence[0]
    assert best.text.startswith("A container crane collapsed") and text[best.start : best.end] == best.text
    when = rag.ask("On which day did the crane collapse?")
    assert when.text.startswith("Tuesday [1]"), when.text  # not the dateline's "May 12"


def test_a_follow_up_is_answered_for_what_it_asks_not_what_was_asked_before(other_topic: tuple[RAG, Path]) -> None:
    rag, _ = other_topic
    history = [
        {"role": "user", "content": "Who led the repairs of the harbour bridge?"},
        {"role": "assistant", "content": "Marta Solberg [1]."},
    ]
    answer = rag.ask("And on which day did it reopen?", history=history)
    assert not answer.abstained and "Monday" in answer.text and "Solberg" not in answer.text


def test_a_follow_up_that_names_nothing_but_what_it_asks_is_scored_with_the_question_before(
    other_topic: tuple[RAG, Path],
) -> None:
    # Alone, "For how long?" and "Where?" match every sentence alike: the first was refused and
    # the second answered with the chairman's sentence.
    rag, _ = other_topic
    for asked, follow_up, expected in (
        ("Who led the repairs of the harbour bridge?", "For how long?", "two years"),
        ("How many tonnes of apples were picked?", "Where?", "Elmstead"),
    ):
        first = rag.ask(asked)
        history = [{"role": "user", "content": asked}, {"role": "assistant", "content": first.text}]
        answer = rag.ask(follow_up, history=history)
        assert answer.how == "short" and answer.text.startswith(expected), (follow_up, answer.text)


FARES = """\
Ferry fares rise in spring

PORTVALE, April 2. A single ferry ticket will cost 4 crowns from May.
A monthly pass for the ferry will cost 60 crowns, while children will still travel free.
"""


def test_a_follow_up_that_only_names_what_to_ask_it_of_wants_the_kind_asked_before(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    rag, _ = store_of(tmp_path_factory, {"fares.txt": FARES, "bridge.txt": HARBOUR})
    asked = "How much will a single ferry ticket cost?"
    first = rag.ask(asked)
    assert first.how == "short" and first.text.startswith("4 crowns"), first.text
    history = [{"role": "user", "content": asked}, {"role": "assistant", "content": first.text}]
    answer = rag.ask("And a monthly pass?", history=history)
    assert answer.how == "short" and answer.text.startswith("60 crowns"), answer.text
    assert follow_up_kind("What about children?", asked) == "quantity"
    assert follow_up_kind("Is it free for children?", asked) == ""  # a question of its own
    assert follow_up_kind("And when does it rise?", asked) == "date"


HERONS = """\
Grey herons return to the marsh

Wardens counted 120 grey herons at the Elde marsh this spring, out of a global population of about 900,000.

The birds were watched from three hides that the World Heron Trust built for 4,000 crowns.
"""


def test_a_follow_up_that_only_names_what_to_ask_it_of_is_scored_with_the_question_before(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Alone, "And in the world?" matched the "World Heron Trust" and was answered "4,000 crowns".
    rag, _ = store_of(tmp_path_factory, {"herons.txt": HERONS, "fares.txt": FARES})
    asked = "How many grey herons were counted at the Elde marsh?"
    history = [{"role": "user", "content": asked}, {"role": "assistant", "content": rag.ask(asked).text}]
    answer = rag.ask("And in the world?", history=history)
    assert "4,000" not in answer.text and answer.evidence and "900,000" in answer.evidence[0].text, answer.text


def test_a_follow_up_of_a_follow_up_is_searched_with_the_question_they_lean_on() -> None:
    def turns(*questions: str) -> list[dict]:
        return [t for q in questions for t in ({"role": "user", "content": q}, {"role": "assistant", "content": "…"})]

    led, designed = "Who led the repairs of the harbour bridge?", "What did she design?"
    joined = joined_question("Where is it?", turns("How many tonnes were picked?", led, designed))
    assert joined.text == f"{led} {designed} Where is it?" and joined.asking == "Where is it?"
    assert joined_question("Where is it?", turns(led)).text == f"{led} Where is it?"


def test_the_grammar_only_lets_the_model_copy_a_run_of_words() -> None:
    grammar = span_grammar('The engineer "Marta" Solberg.')
    assert grammar.splitlines()[0] == "root ::= w0 | w1 | w2 | w3"
    assert 'w2 ::= "\\"Marta\\"" (" " w3)?' in grammar
    from llama_cpp import LlamaGrammar

    LlamaGrammar.from_string(grammar, verbose=False)  # llama.cpp accepts it


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["quote", "constrained", "checked"])
def test_the_built_in_model_answers_a_name_from_its_sentence(other_topic: tuple[RAG, Path], mode: str) -> None:
    rag = RAG(other_topic[0].settings, small_answer=mode)
    answer = rag.ask("Who designed the new steel deck?")
    assert not answer.abstained and answer.backend == "embedded"
    assert "Solberg" in answer.text
    assert answer.evidence and "Marta Solberg" in answer.evidence[0].text
    assert [c.passage.doc_id for c in answer.citations] == ["bridge.txt"]
    assert answer.citations[0].marker == answer.evidence[0].passage


@pytest.mark.parametrize(
    ("asked", "opposite", "said"),
    [
        (
            "When did the new harbour bridge in Portvale reopen?",
            "When did the old harbour bridge in Portvale reopen?",
            "Monday",
        ),
        ("When did the council last debate the road?", "When did the council first debate the road?", "2019"),
    ],
)
def test_a_sentence_that_says_the_opposite_of_what_is_asked_does_not_answer_it(
    other_topic: tuple[RAG, Path], asked: str, opposite: str, said: str
) -> None:
    rag, _ = other_topic
    evidence = rag.find_evidence(asked, rag.retrieve(asked))
    # The scorer alone would answer: the sentence has every other word of the question, and the date.
    assert evidence[0].confidence >= rag.scorer.threshold and said in evidence[0].text
    answer = rag.ask(asked)
    assert answer.abstained and not answer.citations, answer.text
    assert said in rag.ask(opposite).text  # asked the way the article says it, it is answered


def test_only_words_that_can_be_said_the_other_way_round_are_opposed(other_topic: tuple[RAG, Path]) -> None:
    annotator = other_topic[0].annotator
    assert annotator.contrary("Which is the smallest port?", "Portvale is the largest port.") == [("small", "large")]
    assert annotator.contrary("When did the talks end?", "The talks began on Monday.") == [("end", "begin")]
    # "off" and "on" are WordNet antonyms as adjectives; in "kicked off" and "talks on" they are not.
    assert annotator.contrary("Who kicked off the talks?", "The talks on the road began on Monday.") == []
    # A sentence that says both is no contradiction.
    assert annotator.contrary("Which is the smallest port?", "Of the small and large ports, Ebb is smallest.") == []


def test_the_antonym_list_is_wordnets(tmp_path: Path) -> None:
    """rag/antonyms.txt is what eval/antonyms.py writes from Debian's WordNet (`make wordnet` installs it)."""
    import subprocess
    import sys

    wordnet = Path("/usr/share/wordnet")
    if not (wordnet / "data.adj").exists():
        message = "WordNet is missing: sudo apt-get install wordnet-base (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    written = tmp_path / "antonyms.txt"
    done = subprocess.run(
        [sys.executable, "-m", "eval.antonyms", "--wordnet", str(wordnet), "--out", str(written)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert written.read_text() == ANTONYMS.read_text()


@pytest.mark.slow
def test_a_question_the_articles_do_not_answer_is_refused(other_topic: tuple[RAG, Path]) -> None:
    rag, _ = other_topic
    answer = rag.ask("What is the best way to learn to play the violin?")
    assert answer.abstained and not answer.citations


FERRY_FAQ = """\
# Ferry questions

## Does the ferry take bicycles?

Bicycles travel free on every crossing, but only on the lower deck.

## Can I buy a ticket on board?

Tickets are sold only at the harbour office and in the ferry app.

## When does the last ferry leave?

The first ferry leaves the harbour at 6:15 am, and the last one at 11:40 pm.

## How often does it sail?

The ferry runs every 40 minutes, and every 20 minutes in summer.

## Who runs the ferry?

Tidewater Lines operates all crossings under a contract with the town.

## What happens if my car is longer than the parking space I booked?

Vehicles over the booked length pay a surcharge of 15 euros at the gate.

## Is there a discount for residents?

Yes.
People living on the island pay half fare on presenting their resident card.
"""


def test_a_question_in_the_text_is_not_the_answer_but_what_follows_it_is(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    rag, _ = store_of(tmp_path_factory, {"faq.md": FERRY_FAQ, "bridge.txt": HARBOUR})
    answer = rag.ask("Does the ferry take bicycles?")
    assert answer.text == "“Bicycles travel free on every crossing, but only on the lower deck.” [1]", answer.text
    assert all(not e.text.endswith("?") for e in answer.evidence)
    answer = rag.ask("Can I buy a ticket on board?")
    assert answer.evidence[0].text == "Tickets are sold only at the harbour office and in the ferry app."
    # The heading it answers is the sentence before it, so the question's words are not missing.
    assert answer.evidence[0].before == "Can I buy a ticket on board?"
    # A time of day answers "when".
    answer = rag.ask("When does the last ferry leave?")
    assert not answer.abstained and "11:40 pm" in answer.text, answer.text
    # The question it answers reads as its heading: "runs" and "ferry" are its words too.
    answer = rag.ask("Who runs the ferry?")
    assert not answer.abstained and "Tidewater Lines" in answer.text, answer.text
    # A question the file marks as a heading is one however long, and its answer is read with it:
    # the answer alone shares no word with the question but "surcharge".
    stored = [p for p in rag.retrieve("car longer than the booked space") if p.doc_id == "faq.md"]
    asked = {s.text: s.asked for s in candidates(stored)}
    surcharge = "Vehicles over the booked length pay a surcharge of 15 euros at the gate."
    assert asked[surcharge] == "What happens if my car is longer than the parking space I booked?", asked
    answer = rag.ask("Is there a surcharge for long cars?")
    assert not answer.abstained and answer.evidence[0].text == surcharge, answer.text


ROWING_FAQ = """\
<html><head><title>Riverside Rowing Club: FAQ</title></head><body>
<h1>Riverside Rowing Club: FAQ</h1>
<dl>
<dt>Can beginners join?</dt>
<dd>Yes. Our learn-to-row course runs every spring and lasts six weeks.</dd>
<dt>Can my family share a membership?</dt>
<dd>Yes. The main member can add up to five relatives living at the same address.</dd>
<dt>Where do we keep our boats?</dt>
<dd>The club's boats are kept in the boathouse beside the old mill.</dd>
</dl>
</body></html>
"""


def test_an_faq_replys_sentences_answer_its_question(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Glued to its question ("Can my family share a membership?: Yes."), the reply's opener
    # repeated the question's words and outranked the sentence that answers.
    rag, _ = store_of(tmp_path_factory, {"faq.html": ROWING_FAQ, "bridge.txt": HARBOUR})
    answer = rag.ask("How many people can a family membership cover?")
    assert not answer.abstained and "five" in answer.text, answer.text
    assert "?" not in answer.text, answer.text


LIGHTHOUSE = """\
Portvale marks the history of its lighthouse

PORTVALE, June 12. The lighthouse on Gull Point was first lit in 1887, when the harbour served the herring fleet.
The harbour was dredged for larger ships in 1921, after a storm had silted it up for a whole winter.
In 1964 the keeper's cottage became a museum of the town's fishing history.
"""

COUNCIL = """\
The valley council and its mayors

ELMSTEAD, May 2. The valley council was founded in 1952 by the farmer Henrik Dahl, who served as its first mayor.
Its present mayor, the schoolteacher Ingrid Holm, opened the new public library on Saturday.
The library holds twelve thousand books and a room for the valley's archive.
"""


@pytest.fixture(scope="module")
def five_topics(tmp_path_factory: pytest.TempPathFactory) -> RAG:
    """A store holding every article above."""
    articles = {"bridge.txt": HARBOUR, "apples.txt": ORCHARD, "road.txt": ROAD, "council.txt": COUNCIL}
    return store_of(tmp_path_factory, {**articles, "lighthouse.txt": LIGHTHOUSE})[0]


@pytest.fixture(scope="module")
def dated_topic(tmp_path_factory: pytest.TempPathFactory) -> RAG:
    """A store holding the lighthouse article and the harvest one."""
    return store_of(tmp_path_factory, {"lighthouse.txt": LIGHTHOUSE, "apples.txt": ORCHARD})[0]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How many years after the lighthouse on Gull Point was first lit was the harbour dredged?", "34 years"),
        ("How many years separate the dredging of the harbour and the opening of the fishing museum?", "43 years"),
        ("How many years separate 1850 and the first lighting of the Gull Point lighthouse?", "37 years"),
    ],
)
def test_the_years_between_two_events_are_worked_out_from_their_sentences(
    dated_topic: RAG, question: str, expected: str
) -> None:
    answer = dated_topic.ask(question)
    assert answer.how == "reckon" and answer.text.startswith(expected + ": from ")
    assert answer.citations and all(c.passage.doc_id == "lighthouse.txt" for c in answer.citations)
    years = [int(y) for y in re.findall(r"\b1\d{3}\b", answer.text)]
    assert any(str(y) in e.text for e in answer.evidence[:2] for y in years)  # each year is shown in its sentence
    if "1850" in question:
        assert "1850 (as the question says)" in answer.text


def test_a_span_of_years_with_an_event_the_articles_lack_is_not_made_up(dated_topic: RAG) -> None:
    answer = dated_topic.ask("How many years separate the lighthouse's first lighting and the first moon landing?")
    assert answer.how != "reckon"


@pytest.fixture(scope="module")
def council_topic(tmp_path_factory: pytest.TempPathFactory) -> RAG:
    """A store holding the council article and the harvest one."""
    return store_of(tmp_path_factory, {"council.txt": COUNCIL, "apples.txt": ORCHARD})[0]


@pytest.mark.parametrize(
    "question",
    [
        "Which mayor founded the valley council, and which mayor opened the new public library?",
        "Which two mayors founded the council or opened the library?",
    ],
)
def test_a_question_for_two_names_gets_both_each_cited(council_topic: RAG, question: str) -> None:
    answer = council_topic.ask(question)
    assert answer.how == "names"
    assert set(re.findall(r"Henrik Dahl|Ingrid Holm", answer.text)) == {"Henrik Dahl", "Ingrid Holm"}
    assert len(re.findall(r"\[\d\]", answer.text)) == 2 and answer.citations[0].passage.doc_id == "council.txt"
    if question.startswith("Which mayor founded"):  # the names in the order asked
        assert answer.text.index("Henrik Dahl") < answer.text.index("Ingrid Holm")


def test_a_question_for_two_names_with_one_in_the_articles_gets_no_made_up_second(council_topic: RAG) -> None:
    answer = council_topic.ask("Which two farmers picked the record apple harvest in the Elmstead valley?")
    assert answer.how != "names"


def test_a_follow_up_that_turns_to_another_article_is_searched_in_its_own_words(five_topics: RAG) -> None:
    rag = five_topics
    history = [
        {"role": "user", "content": "Who led the repairs of the harbour bridge?"},
        {"role": "assistant", "content": "Marta Solberg [1]."},
    ]
    follow_up = "And how many tonnes were picked?"
    # Joined to the question before it, the follow-up's two best passages are not the harvest's.
    joined = rag.standalone_question(follow_up, history)
    assert joined.joined and joined.asking == follow_up
    assert "apples.txt" not in [p.doc_id for p in rag.retriever.retrieve(joined.text, 2).passages]
    answer = rag.ask(follow_up, history=history, k=2)
    assert answer.passages[0].doc_id == "bridge.txt"  # the conversation's article keeps the first place
    assert "9,000 tonnes" in answer.text and [c.passage.doc_id for c in answer.citations] == ["apples.txt"]


def test_another_wording_takes_only_the_last_places() -> None:
    def passage(name: str) -> Passage:
        return Passage(f"{name}.txt", name, name, 1.0, 0, 1, chunk_id=name)

    question, other = [passage(n) for n in "abcde"], [passage(n) for n in "xbyz"]
    assert [p.chunk_id for p in with_passages_for(question, other, 5)] == ["a", "b", "c", "x", "d"]
    assert [p.chunk_id for p in with_passages_for(question, other, 1)] == ["a"]


# Questions that name the articles' words but ask what they do not say (eval/qa.jsonl's unanswerable
# "missing_fact" rows: "What is the population of Kunashir island?").
UNSAID = [
    "How old is Marta Solberg?",  # the article names her, not her age
    "Who is the mayor of Portvale?",
    "Who sued the council over the road?",  # the council approved the road; no one sued
    "Which company insured the harbour bridge?",
    "What is the population of Brenna?",
]
# Those answered all the same, marked uncertain (measured): the reply, and the confidence in its
# best sentence, over the scorer's threshold (0.3176 in rag/scorer.json).
ANSWERED_ANYWAY = {
    "Who is the mayor of Portvale?": ("Henrik Dahl, the valley council's first mayor in Elmstead", 0.4056),
}


def refusal_expected(question: str) -> object:
    """The question as a test parameter, an expected failure (strict, so a fix shows) when it is answered."""
    if question not in ANSWERED_ANYWAY:
        return question
    reply, score = ANSWERED_ANYWAY[question]
    reason = f"answered, marked uncertain, with {reply}: confidence {score} in its best sentence, over the threshold"
    return pytest.param(question, marks=pytest.mark.xfail(strict=True, reason=reason))


@pytest.mark.parametrize("question", UNSAID)
def test_a_question_that_names_the_articles_words_but_asks_what_they_do_not_say_is_not_answered_as_sure(
    five_topics: RAG, question: str
) -> None:
    answer = five_topics.ask(question)
    assert answer.abstained or answer.uncertain, answer.text


@pytest.mark.parametrize("question", [refusal_expected(q) for q in UNSAID])
def test_a_question_that_names_the_articles_words_but_asks_what_they_do_not_say_is_refused(
    five_topics: RAG, question: str
) -> None:
    answer = five_topics.ask(question)
    assert answer.abstained and not answer.citations, answer.text


def test_an_answer_under_the_scorers_sure_level_is_marked_uncertain(
    five_topics: RAG, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    question = "How many tonnes of apples were picked?"
    sure = five_topics.ask(question)
    assert "9,000 tonnes" in sure.text and not sure.uncertain
    assert sure.evidence[0].confidence >= Scorer.load().sure
    doubting = json.loads(SCORER.read_text()) | {"sure": 0.999}  # the same scorer, sure of nothing
    (tmp_path / "doubting.json").write_text(json.dumps(doubting))
    doubtful = RAG(five_topics.settings, scorer_path=tmp_path / "doubting.json").ask(question)
    assert doubtful.text == sure.text and doubtful.uncertain and answer_json(doubtful)["uncertain"] is True
    monkeypatch.setenv("RAG_SCORER_PATH", str(tmp_path / "doubting.json"))
    shown = run_cli("ask", question, home=five_topics.settings.home, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"({UNCERTAIN_NOTE})" in shown.stdout.split("Evidence [")[0]  # under the answer, before its evidence
    monkeypatch.delenv("RAG_SCORER_PATH")
    plain = run_cli("ask", question, home=five_topics.settings.home, cwd=tmp_path)
    assert "9,000 tonnes" in plain.stdout and UNCERTAIN_NOTE not in plain.stdout


def test_a_bare_number_keeps_a_unit_the_tagger_calls_a_proper_noun() -> None:
    entities = Annotator().entities("The logger needs at least 2 GB of free space and 12 MW at peak.")
    assert [text for text, label in entities if label == "CARDINAL"] == ["at least 2 GB", "12 MW"], entities


def test_an_amount_keeps_its_currency_sign_and_rate_and_a_count_its_hyphenated_unit() -> None:
    # spaCy's pipeline leaves "£" out of "£1.50" and cuts "40 battery-powered buses" at the hyphen.
    entities = Annotator().entities(
        "The port ordered 40 battery-powered buses and will charge £1.50 an hour for parking, or $9 in all."
    )
    assert [text for text, label in entities if label in ("CARDINAL", "MONEY")] == [
        "40 battery-powered buses",
        "£1.50 an hour",
        "$9",
    ], entities


PORT = """\
Portvale harbour car park opens

PORTVALE, June 2. The new car park at Portvale harbour opened on Friday with room for 300 cars.
Drivers will pay £1.50 an hour, and parking stays free on Sundays.
The harbour board has also ordered 12 battery-powered buses for the coast road.
The board says the buses will cut its fuel bill by a third.
"This car park was long overdue," said Nils Berg, who chairs the harbour board.
Roadworks on the coast road are expected to last until the end of June.
"""


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> RAG:
    """A store holding the car park's article and the apple harvest's."""
    return store_of(tmp_path_factory, {"port.txt": PORT, "apples.txt": ORCHARD})[0]


@pytest.mark.parametrize(
    ("question", "short"),
    [
        ("How much will drivers pay at the harbour car park?", "£1.50 an hour"),
        ("How many buses did the harbour board order?", "12 battery-powered buses"),
    ],
)
def test_a_short_amount_is_given_with_its_currency_and_a_count_with_its_unit(
    port: RAG, question: str, short: str
) -> None:
    answer = port.ask(question)
    assert answer.how == "short" and answer.text == f"{short} [{answer.citations[0].marker}].", answer.text


def test_a_quote_opening_the_sentence_is_no_rival_name(port: RAG) -> None:
    # The quote's first word is capitalised as any sentence's is: no second name beside the speaker.
    answer = port.ask("Who chairs the harbour board?")
    assert answer.how == "short" and answer.text == f"Nils Berg [{answer.citations[0].marker}].", answer.text
    assert answer.used_evidence[0].text.startswith('"This car park')


def test_what_did_he_say_after_who_is_quotes_what_they_said(port: RAG) -> None:
    # "he" names no one: the follow-up is read with the question before it, as "When?" is.
    history = [
        {"role": "user", "content": "Who chairs the harbour board?"},
        {"role": "assistant", "content": "Nils Berg [1]."},
    ]
    answer = port.ask("What did he say?", history=history)
    assert answer.how == "quote" and '"This car park was long overdue," said Nils Berg' in answer.text, answer.text


def test_when_a_span_ends_answers_how_long(port: RAG) -> None:
    # "until the end of June" says how long, as "for two months" would.
    answer = port.ask("How long will the roadworks on the coast road last?")
    assert not answer.abstained and "until the end of June" in answer.text, answer.text


def test_how_many_is_not_answered_with_a_count_of_something_else(port: RAG) -> None:
    cars = port.ask("How many cars fit in the new car park at Portvale harbour?")
    assert not cars.abstained and "300 cars" in cars.text, cars.text
    # The sentence that ranks first counts cars, not lorries: it does not say.
    lorries = port.ask("How many lorries fit in the new car park at Portvale harbour?")
    assert lorries.abstained and lorries.evidence and "300 cars" in lorries.evidence[0].text, lorries.text
    # Asked what a thing cost, a sentence with no sum of money in it does not say.
    spent = port.ask("How much did the harbour board spend on the buses?")
    assert spent.abstained and spent.evidence and "12 battery-powered buses" in spent.evidence[0].text, spent.text
    assert port.ask("How much will drivers pay at the harbour car park?").text.startswith("£1.50 an hour")


RULES = """\
Allotment rules

1. Plots
1.1 Each member may rent one plot of 250 square metres.
1.2 A plot is let for 12 months and may be renewed by the member each spring.
1.3 A member may swap plots twice, by writing to the warden.

2. Water
2.1 Hoses may be used only between 6 p.m. and 9 a.m.
"""


def test_a_clauses_number_is_no_part_of_its_sentence(tmp_path_factory: pytest.TempPathFactory) -> None:
    # "1.2" was taken for the number of months a plot is let for.
    rag, folder = store_of(tmp_path_factory, {"rules.txt": RULES})
    answer = rag.ask("How many months is a plot let for?")
    assert answer.text.startswith("12 months [1]"), answer.text
    sentence = "A plot is let for 12 months and may be renewed by the member each spring."
    evidence = answer.evidence[0]
    assert evidence.text == sentence
    assert (folder / "rules.txt").read_text(encoding="utf-8")[evidence.start : evidence.end] == sentence
    # "twice" says how many times: the clause is the answer, not a sentence without a number.
    swaps = rag.ask("How many times may a member swap plots?")
    assert not swaps.abstained and "swap plots twice" in swaps.text, swaps.text


SOUP = """\
Leek and potato soup

Sweat the leeks in butter, add the potatoes and the stock, and simmer until the potatoes are soft.

The soup keeps for three days in the fridge and can be frozen for up to two months.
"""


def test_how_many_is_not_answered_with_a_span_of_time(tmp_path_factory: pytest.TempPathFactory) -> None:
    # "three days" is a DATE to spaCy, not a count: it passed for how many calories the soup has.
    rag, _ = store_of(tmp_path_factory, {"soup.txt": SOUP, "bridge.txt": HARBOUR})
    calories = rag.ask("How many calories are in the soup?")
    assert calories.abstained, calories.text
    days = rag.ask("How many days does the soup keep in the fridge?")
    assert not days.abstained and "three days" in days.text, days.text


REEF = """\
The Skerry light

Before the light was built, the Skerry reef was the worst hazard on the coast: in the gale of 1881 it wrecked 24 vessels.

The tower, finished in 1894, stands 31 metres tall and is painted red and white.
"""


def test_how_many_is_answered_with_a_count_under_another_name(tmp_path_factory: pytest.TempPathFactory) -> None:
    # "24 vessels" counts ships, as "9,000 cyclists" counts people; "300 cars" still counts no lorries.
    rag, _ = store_of(tmp_path_factory, {"skerry.txt": REEF, "bridge.txt": HARBOUR})
    ships = rag.ask("How many ships did the Skerry reef wreck in 1881?")
    assert not ships.abstained and "24 vessels" in ships.text, ships.text
    cars = "The new car park opened on Friday with room for 300 cars."
    assert counts_something_else("How many lorries fit in it?", cars, rag.annotator, rag.similarities)


BY_ELECTION = """\
Independent wins Eastgate by-election

Maria Keller, an independent, won the Eastgate ward by-election on Thursday with 1,480 votes.

Turnout was 28%. The seat fell vacant when the sitting councillor moved abroad.
"""


FOODS = """\
Harbour Foods reports higher sales

Harbour Foods said on Monday that its sales rose 8 percent to 310 million crowns in the first half of the year.

"Our new bakery in Elde is already running at full speed," said Chief Executive Officer Ines Moreau.
"""


def test_a_word_misspelt_in_the_question_is_read_as_the_texts_word(tmp_path_factory: pytest.TempPathFactory) -> None:
    # "cheif" matched nothing, and the sales sentence, naming the company, was quoted.
    rag, _ = store_of(tmp_path_factory, {"foods.txt": FOODS, "bridge.txt": HARBOUR})
    answer = rag.ask("who is the cheif executive of harbour foods")
    assert answer.evidence and "Ines Moreau" in answer.evidence[0].text, answer.text
    # One slip (a letter more, less, changed, or two swapped) in a word of five letters or more.
    text = {"chief", "station", "judg", "band"}
    assert as_spelt({"cheif", "staton", "judj", "bank"}, text) == {"chief", "station", "judj", "bank"}
    assert as_spelt({"statoin", "stashun"}, text) == {"station", "stashun"}


def test_a_three_word_sentence_states_a_fact(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Under four words a sentence was taken for a heading or a credit, and never quoted.
    rag, _ = store_of(tmp_path_factory, {"vote.txt": BY_ELECTION, "bridge.txt": HARBOUR})
    turnout = rag.ask("What was the turnout in the by-election?")
    assert not turnout.abstained and "28%" in turnout.text, turnout.text
    assert not states_a_fact("Before the St.")  # a passage cut after an abbreviation
    # Two words and a stop state a fact when one is a number: a recipe's "Serves 4.".
    assert states_a_fact("Serves 4.") and not states_a_fact("Serves everyone.") and not states_a_fact("Serves 4")
    rag, _ = store_of(
        tmp_path_factory, {"stew.txt": "Bean stew\n\nServes 6.\n\nSimmer the beans in the stock for an hour.\n"}
    )
    serves = rag.ask("How many does the bean stew serve?")
    assert serves.text.startswith("6 [1]"), serves.text


def test_a_measure_is_not_answered_with_a_count(port: RAG) -> None:
    # "How wide" wants a length, "how heavy" a mass, "how fast" a speed, "how hot" a temperature.
    wide = port.ask("How wide is the new car park at Portvale harbour?")
    assert wide.abstained and wide.evidence and "300 cars" in wide.evidence[0].text, wide.text
    assert measures_something_else("How heavy is the bike?", "It travels 50 to 80 km on a charge.")
    for question, sentence in (
        ("How wide is the bay?", "The bay is 4 km wide at its mouth."),
        ("How heavy is the bike?", "It weighs 21 kg with its battery."),
        ("How quickly is the sea rising?", "It rises by 1 to 3 cm per century."),
        ("How quickly does support answer?", "Support answers within one working day."),
        ("How hot does the town get?", "It reached 41 °C in July."),
    ):
        assert not measures_something_else(question, sentence), question


def test_how_much_it_cost_wants_a_sum_or_a_share() -> None:
    annotator = Annotator()
    assert counts_something_else("How much will the fire cost?", "The fire burned 12,000 acres by Tuesday.", annotator)
    for question, sentence in (
        ("How much did the bridge cost?", "The bridge cost 14 million crowns, twice the estimate."),
        ("How much of the cost did the board fund?", "The board agreed to fund two thirds of the cost."),
        ("How much did the price of a ticket rise?", "Ticket prices rose by 4.5 percent in March."),
    ):
        assert not counts_something_else(question, sentence, annotator), question


def test_a_share_answers_how_much(port: RAG) -> None:
    # "a third" is an amount: the question that asks for one is not refused for want of a number.
    answer = port.ask("By how much will the buses cut the board's fuel bill?")
    assert not answer.abstained and "by a third" in answer.text, answer.text


FERRY_TALK = """The Harbour Hour, episode 7: running a ferry

HOST: Welcome back. Today I'm talking to Ada Lind, who runs the island ferry.

ADA LIND: Thanks for having me. We have run the crossing since 2015 with two boats.

HOST: What changed the business most?

ADA LIND: Fuel. Last spring the board switched both boats to batteries charged on the quay, and the bills fell by half.

HOST: Thank you, Ada Lind.
"""


def test_an_interviewers_question_is_what_the_reply_answers(tmp_path_factory: pytest.TempPathFactory) -> None:
    rag, _ = store_of(tmp_path_factory, {"talk.txt": FERRY_TALK, "bridge.txt": HARBOUR})
    stored = [p for p in rag.retrieve("What changed the business most?") if p.doc_id == "talk.txt"]
    asked = {s.text: s.asked for s in candidates(stored)}
    # "Fuel." is too short to state anything alone: it is read with the sentence after it, and
    # the reply's later sentences answer the question too.
    batteries = (
        "Fuel. Last spring the board switched both boats to batteries charged on the quay, and the bills fell by half."
    )
    assert asked[batteries] == "What changed the business most?", asked
    talk = next(doc for doc in rag.documents() if doc.doc_id == "talk.txt")
    assert talk.dateline == "" and talk.title.startswith("The Harbour Hour"), talk  # the speakers are no dateline
    answer = rag.ask("What changed the business most?")
    assert answer.text.startswith("“Fuel. Last spring the board switched both boats"), answer.text  # one marker


SALTMARSH = """# The Saltmarsh Point Lighthouse

The Saltmarsh Point Lighthouse is a stone tower on the north shore of Hollin Bay. It was first lit on 12 June 1874 and has been automatic since 1981.

## Keepers

Three keepers lived at the station until the light was automated.
"""


def test_an_articles_first_paragraph_that_opens_with_its_title_is_read(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # A news page prints a caption twice, once with its credit glued on, and the copy is dropped;
    # a first paragraph that goes on from the title's words is no such copy.
    rag, _ = store_of(tmp_path_factory, {"lighthouse.md": SALTMARSH})
    answer = rag.ask("When was the lighthouse first lit?")
    assert not answer.abstained and "12 June 1874" in answer.text, answer.text


LEISURE = """Hollin leisure centre reopens after roof repairs

HOLLIN, May 9. The Hollin leisure centre reopened on Saturday after eight months of repairs to its roof.
Swimming lessons for beginners are held every Monday and Thursday in the small pool.
A petition with 2,300 signatures had asked the council to reopen the pool before the summer holidays.
The centre's manager, Ida Brandt, 41, said the sauna would stay shut until July.
The café on the ground floor remained open throughout the roof repairs.
Members who paid for the closed months will get their money back within 30 days.
Until the main doors are repainted, visitors should come in by the east entrance.
"""

FERNLOG = """# Using Fernlog

Fernlog keeps a diary of the plants in a garden and reminds you when to water them.

## Settings

Fernlog's settings are stored in ~/.config/fernlog/settings.toml and read when it starts.
The diary itself is saved once a day as a single SQLite file.
"""


@pytest.fixture(scope="module")
def leisure(tmp_path_factory: pytest.TempPathFactory) -> RAG:
    """A store holding a local news story and a program's manual."""
    return store_of(tmp_path_factory, {"leisure.txt": LEISURE, "fernlog.md": FERNLOG, "apples.txt": ORCHARD})[0]


@pytest.mark.parametrize(
    ("question", "said"),
    [
        # Days of the week say how often, as "twice a week" would.
        ("How often are the swimming lessons for beginners held?", "every Monday and Thursday"),
        # People are counted under other names: signatures, residents, voters.
        ("How many people signed the petition to reopen the pool?", "2,300 signatures"),
        # A file's path says where, in a manual, as a town's name does in the news.
        ("Where are Fernlog's settings stored?", "~/.config/fernlog/settings.toml"),
        # A time counted from now says when, as a date does.
        ("When will members get their money back for the closed months?", "within 30 days"),
        # Asked yes or no, the sentence that says the opposite is the answer.
        ("Was the café on the ground floor closed during the roof repairs?", "remained open"),
        # Asked "which" of a thing, a word that picks one out answers, though it names no one.
        ("Which entrance should visitors use?", "the east entrance"),
    ],
)
def test_a_sentence_that_says_it_in_other_terms_answers(leisure: RAG, question: str, said: str) -> None:
    answer = leisure.ask(question)
    assert not answer.abstained and said in answer.text, answer.text


def test_how_old_wants_an_age_not_any_number(leisure: RAG) -> None:
    assert measures_something_else("How old is the rider?", "She attacked with 18 kilometres to go.")
    for sentence in (
        "Ida Brandt, 41, runs it.",
        "The bridge is 300 years old.",
        "The mill was built in 1790.",
        "Riders must be 16 or older.",  # an age limit
    ):
        assert not measures_something_else("How old is it?", sentence), sentence
    answer = leisure.ask("How old is Ida Brandt, the centre's manager?")
    assert not answer.abstained and "41" in answer.text, answer.text


@pytest.mark.parametrize(
    ("question", "short", "sentence"),
    [
        ("Who designed the new steel deck?", "Marta Solberg", "also designed the new steel deck"),
        ("When did the council first debate the road?", "2019", "first debated the road in 2019"),
        ("How many tonnes of apples were picked?", "9,000 tonnes", "picked 9,000 tonnes of apples"),
        # A bare number keeps the unit or the thing it counts, which spaCy leaves out of the entity.
        ("How much was paid for the work?", "14 million crowns", "paid 14 million crowns"),
        pytest.param(
            "How much did the town council pay for the work?",
            "14 million crowns",
            "paid 14 million crowns",
            marks=pytest.mark.xfail(
                strict=True,
                reason="refused (measured): the check's confidence, 0.267, is under its threshold, 0.3176; Snowball "
                "stems 'pay' and 'paid' apart, so the question's rarest word looks missing (WordNet's irregular "
                "forms were tried: eval/README.md)",
            ),
        ),
    ],
)
def test_a_short_answer_of_the_asked_kind_leads_and_its_sentence_is_the_evidence(
    five_topics: RAG, question: str, short: str, sentence: str
) -> None:
    answer = five_topics.ask(question)
    marker = answer.citations[0].marker
    assert answer.how == "short" and answer.text == f"{short} [{marker}].", answer.text
    assert sentence in answer.used_evidence[0].text and answer.used_evidence[0].passage == marker
    quoted = RAG(five_topics.settings, short_answers=False).ask(question)
    assert quoted.how == "quote" and sentence in quoted.text and quoted.text.startswith("“")


def test_a_short_answer_is_no_name_cut_out_of_code() -> None:
    # spaCy tags 'Station.load("bergen' in a README's code line as a person.
    line = 'Load a station: from tidewatch import Station station = Station.load("bergen") print(station.next_high())'
    annotator = Annotator()
    assert ('Station.load("bergen', "PERSON") in annotator.entities(line)
    evidence = Evidence(line, 1, "readme.md", "tidewatch", 0, len(line), 0.6)
    assert short_answer(evidence, "Who started tidewatch?", "name", annotator) == ""
    named = Evidence("It was started by Ingrid Solberg.", 1, "readme.md", "tidewatch", 0, 33, 0.6)
    assert short_answer(named, "Who started tidewatch?", "name", annotator) == "Ingrid Solberg [1]."


def test_the_fitted_scorer_ranks_by_probability_and_abstains_below_its_threshold(five_topics: RAG) -> None:
    question = "Who designed the new steel deck?"
    evidence = five_topics.find_evidence(question, five_topics.retrieve(question))
    scorer = Scorer.load()
    assert [e.score for e in evidence] == sorted((e.score for e in evidence), reverse=True)
    assert evidence[0].score == round(scorer.probability(evidence[0].signals), 4)
    # The check reads the best sentence's signals and the ranker's logit: its confidence decides.
    assert evidence[0].confidence == round(scorer.confidence(evidence[0].signals), 4) >= scorer.threshold
    assert set(evidence[0].signals) >= set(scorer.features)
    strict = RAG(five_topics.settings, min_evidence=0.99).ask(question)
    assert strict.abstained and strict.how == "abstain"


def test_a_scorer_written_before_the_check_reads_its_probability_as_confidence(tmp_path: Path) -> None:
    # A scorer file of one's own (RAG_SCORER_PATH) fitted before the check has no "check": it
    # still loads, and abstains on its ranker's probability, as it did.
    old = {k: v for k, v in json.loads(SCORER.read_text()).items() if k != "check"}
    (tmp_path / "old.json").write_text(json.dumps(old))
    scorer, signals = Scorer.load(tmp_path / "old.json"), dict.fromkeys(old["features"], 0.5)
    assert scorer.confidence(signals) == scorer.probability(signals)
    assert Scorer.load().confidence(signals) != Scorer.load().probability(signals)


def test_the_fit_and_the_app_agree_on_the_confidence_in_a_best_sentence() -> None:
    """eval/fit.py judges abstention with its own numpy formula; the app with `Scorer`. The
    threshold it chooses holds for the app only if both give the same confidence to the same sentences."""
    import random

    import numpy as np

    from eval.fit import Question, best_of

    scorer, rng = Scorer.load(), random.Random(0)
    for _ in range(50):
        rows = [
            {f: rng.uniform(-1.0, 1.0) for f in scorer.features} | {"kind": rng.choice([0.5, 1.0])} for _ in range(6)
        ]
        question = Question("made-up", "q", True, rows, [0] * len(rows))
        check = (np.array(scorer.check_weights), scorer.check_bias)
        fitted, _ = best_of(question, scorer.features, np.array(scorer.weights), scorer.bias, check)
        best = max(rows, key=scorer.probability)
        assert fitted == pytest.approx(scorer.confidence(best), abs=1e-9)


@pytest.mark.slow
def test_the_fit_script_reproduces_the_packaged_scorer(tmp_path: Path) -> None:
    """eval/fit.py run again on the tuning sets writes the weights (ranker and check) and thresholds that rag/scorer.json holds."""
    import subprocess
    import sys

    written = tmp_path / "scorer.json"
    done = subprocess.run(
        [sys.executable, "-m", "eval.fit", "--out", str(tmp_path / "results"), "--scorer", str(written)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    fitted, packaged = json.loads(written.read_text()), json.loads(SCORER.read_text())
    assert fitted["features"] == packaged["features"]
    assert fitted["weights"] == pytest.approx(packaged["weights"], abs=1e-3)
    assert fitted["bias"] == pytest.approx(packaged["bias"], abs=1e-3)
    assert fitted["check"]["features"] == packaged["check"]["features"]
    assert fitted["check"]["weights"] == pytest.approx(packaged["check"]["weights"], abs=1e-3)
    assert fitted["check"]["bias"] == pytest.approx(packaged["check"]["bias"], abs=1e-3)
    assert fitted["threshold"] == pytest.approx(packaged["threshold"], abs=1e-3)


# A long sentence that packs several facts, and shorter ones that share its words.
LIBRARY = """Millbrook library reopens after repairs

The town's library, built of grey stone in 1871 with money left by a wool merchant, lost its roof in the storm of 1990, and the children's room on its upper floor, which held a puppet theatre, was closed for two years.
The children's room now has new shelves, a reading corner and windows facing the river.
The library lends books to readers from three villages and opens every day except Sunday.
"""


def test_a_long_sentence_is_read_clause_by_clause() -> None:
    sentence = "The hall, built in 1871 by the guild, burned in 1990; its tower, which held a bell, fell."
    windows = clause_windows(sentence)
    assert windows[0] == sentence  # the whole sentence is read too
    # A piece under four words joins the next; a short last one joins the one before.
    assert windows[1:4] == [
        "The hall built in 1871 by the guild",
        "burned in 1990 its tower",
        "which held a bell fell.",
    ]
    assert "burned in 1990 its tower which held a bell fell." in windows  # two neighbours together
    assert clause_windows("A short sentence with no commas.") == ["A short sentence with no commas."]
    # A number's comma and a time's colon are no clause's end.
    timed = "The ferry sails at 14:00 and 18:00 with room for 1,200 passengers, the harbour trust said."
    assert clause_windows(timed)[1:3] == [
        "The ferry sails at 14:00 and 18:00 with room for 1,200 passengers",
        "the harbour trust said.",
    ]


CLAUSE_QUESTION = "What was in the children's room upstairs before the storm?"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> RAG:
    """A store holding only the library article: one passage of several facts."""
    return store_of(tmp_path_factory, {"library.txt": LIBRARY})[0]


def test_a_question_about_one_clause_of_a_long_sentence_finds_it(library: RAG) -> None:
    whole = library.similarities([CLAUSE_QUESTION], [LIBRARY.splitlines()[2]])
    evidence = library.find_evidence(CLAUSE_QUESTION, library.retrieve(CLAUSE_QUESTION))
    assert "puppet theatre" in evidence[0].text
    # Read whole, the sentence's other facts dilute it (measured 0.42); its clause speaks to the question.
    assert evidence[0].signals["meaning"] > whole[0][0] + 0.2


@pytest.mark.xfail(
    strict=True,
    reason="refused (measured): the check's confidence in the sentence found, 0.2259, is under its threshold, "
    "0.3176; the question says 'upstairs' and 'before the storm', the sentence 'upper floor' and 'in the storm', "
    "and the one passage of several facts is far from the question (cosine 0.25)",
)
def test_a_question_about_one_clause_of_a_long_sentence_is_answered_from_it(library: RAG) -> None:
    answer = library.ask(CLAUSE_QUESTION)
    assert not answer.abstained and "puppet theatre" in answer.text, answer.text


DYKES = """Elde valley dykes finished

The town council built an upper dyke near Kelvarn and a lower one at Trusk, to protect the Marsh of Elde from floods.
The work took three summers and was paid for by the valley's farmers.
"""


def test_a_short_answer_is_not_cut_when_the_sentence_names_another_candidate(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # spaCy tags Kelvarn a place and Trusk a person: the one place it tags is not the answer.
    rag, _ = store_of(tmp_path_factory, {"dykes.txt": DYKES})
    answer = rag.ask("Where did the council build the lower dyke?")
    assert not answer.abstained and answer.how == "quote" and "at Trusk" in answer.text, answer.text
    sentence = DYKES.splitlines()[2]
    assert rivals("Kelvarn", sentence, "Where did the council build the lower dyke?", "place")
    # A sentence with one name the question lacks has no rival, nor one whose other names are asked.
    assert not rivals("Ada Lind", "The deck was designed by Ada Lind.", "Who designed the deck?", "name")
    assert not rivals("Ada Lind", "Ada Lind drew the deck for Portvale.", "Who drew the Portvale deck?", "name")
    # Another number is a rival of the one tagged.
    flows = "The ferry carries 300 people a day, while the bridge carries about 2,000 cars."
    assert rivals("300 people", flows, "How many people does the ferry carry a day?", "quantity")
    assert not rivals("300 people", "The ferry carries 300 people a day.", "How many does the ferry carry?", "quantity")
    # A day of the month or a time of day is no rival count, as it is no count for the kind.
    picked = "Sep 20, 2025 — Farmers picked 9,000 tonnes of apples by 6 pm."
    assert not rivals("9,000 tonnes", picked, "How many tonnes of apples did the farmers pick?", "quantity")


RELEASES = """\
# Harbourlog releases

## Version 3.2

### Fixed

- Tide tables printed from the app no longer lose their last column.
- The sync service reconnects after the harbour office's network drops.

### Added

- A night mode for the chart viewer.

## Version 3.1

### Removed

- The old fax export of the berth schedule was dropped for good.
"""


def test_a_sentence_is_read_with_the_headings_above_it(tmp_path_factory: pytest.TempPathFactory) -> None:
    # A list item says what changed, the headings over it in which version and how: a question
    # asks in the headings' words.
    rag, _ = store_of(tmp_path_factory, {"releases.md": RELEASES, "bridge.txt": HARBOUR})
    fixed = rag.ask("What was fixed in version 3.2?")
    assert not fixed.abstained and fixed.evidence[0].text.startswith(("Tide tables", "The sync service")), fixed.text
    removed = rag.ask("What was removed in version 3.1?")
    assert not removed.abstained and "fax export" in removed.text, removed.text
    stored = [p for p in rag.retrieve("night mode") if p.doc_id == "releases.md"]
    by_text = {s.text: s.headings for s in candidates(stored)}
    assert by_text["A night mode for the chart viewer."] == "Version 3.2 Added"
    assert by_text["The old fax export of the berth schedule was dropped for good."] == "Version 3.1 Removed"


def test_a_heading_is_a_whole_short_line_without_a_stop() -> None:
    text = "Version 3.2\nFixed\nTide tables no longer lose a column.\nSetting: port; Default: 8750\nEnd"
    lines = [(m.start(), m.end()) for m in re.finditer(r"[^\n]+", text)]
    assert [heading_at(text, a, b) for a, b in lines] == ["Version 3.2", "Fixed", "", "", ""]
    # A report's numbered heading, which the splitter reads as "3." and "Finances".
    numbered = "3. Finances\nThe trust made a profit."
    assert heading_at(numbered, 3, 11) == "3. Finances" and heading_at(numbered, 0, 2) == ""
    assert [section_level(h) for h in ("3. Finances", "2.1 Cargo", "Fixed")] == [1, 2, 0]


BIOGRAPHY = """\
<html><head><title>Ilse Varga</title></head><body>
<h1>Ilse Varga</h1>
<table class="infobox">
<tr><th>Born</th><td>3 March 1940, Szeged, Hungary</td></tr>
<tr><th>Died</th><td>19 June 2011, Vienna</td></tr>
<tr><th>Occupation</th><td>Seismologist</td></tr>
<tr><th>Known for</th><td>Early warnings of earthquakes from radio signals</td></tr>
</table>
<p><b>Ilse Varga</b> (3 March 1940 – 19 June 2011) was a Hungarian seismologist who worked in Vienna for most of her life.</p>
<h2>Career</h2>
<p>Varga joined the Vienna observatory in 1966 and ran its network of stations until 1998.</p>
</body></html>
"""


@pytest.fixture(scope="module")
def biography(tmp_path_factory: pytest.TempPathFactory) -> RAG:
    """A store holding the biography and the apple harvest's article."""
    return store_of(tmp_path_factory, {"varga.html": BIOGRAPHY, "apples.txt": ORCHARD})[0]


@pytest.mark.parametrize(
    ("question", "field"),
    [
        ("Where was Ilse Varga born?", "Born: 3 March 1940, Szeged, Hungary"),
        ("What is Ilse Varga known for?", "Known for: Early warnings of earthquakes from radio signals"),
        ("What was Varga's occupation?", "Occupation: Seismologist"),
    ],
)
def test_an_infobox_field_answers_for_the_page_it_is_on(biography: RAG, question: str, field: str) -> None:
    # Each row of an encyclopedia page's infobox is a fact about the page's subject, whom it does
    # not name: it is read under the page's title, and none of its rows is a heading of the text.
    answer = biography.ask(question)
    assert not answer.abstained and answer.used_evidence[0].text == field, answer.text


def test_a_run_of_fields_is_no_heading_but_a_labelled_step_is() -> None:
    # An infobox saved as text: each row a field, none the heading of what follows, so that the
    # page's first sentence is not read under "Died", "Occupation" and "Known for".
    text = (
        "Born: 12 May 1931, Ghent\n\nDied: 8 January 2009, Brussels\n\nOccupation: Glaciologist\n\n"
        "Known for: Ice-core dating\n\nAnna Berg (1931 – 2009) was a glaciologist.\n"
        "Step 2: Fill in the form\nThe form asks for a passport number.\nEnd"
    )
    lines = [(m.start(), m.end()) for m in re.finditer(r"[^\n]+", text)]
    assert [heading_at(text, a, b) for a, b in lines] == ["", "", "", "", "", "Step 2: Fill in the form", "", ""]
    by_text = {s.text: s.headings for s in candidates([Passage("bio.txt", "Anna Berg", text, 1.0, 0, len(text))])}
    assert by_text["Anna Berg (1931 – 2009) was a glaciologist."] == ""


HANDBOOK = """\
# Member handbook

## Borrowing

### Loan periods

Books can be borrowed for three weeks.

### Renewals

A loan can be renewed twice, online or at the desk.

## Fees

### Late fees

Late books cost 20 cents a day, up to 5 dollars per item.

## Opening hours

| Day | Hours |
|---|---|
| Sunday | closed |
"""

HANDBOOK_PAGE = """\
<html><body><h1>Member handbook</h1>
<h2>Borrowing</h2><h3>Loan periods</h3><p>Books can be borrowed for three weeks.</p>
<h3>Renewals</h3><p>A loan can be renewed twice, online or at the desk.</p>
<h2>Fees</h2><h3>Late fees</h3><p>Late books cost 20 cents a day, up to 5 dollars per item.</p>
<h2>Opening hours</h2><table><tr><th>Day</th><th>Hours</th></tr><tr><td>Sunday</td><td>closed</td></tr></table>
</body></html>
"""


def test_a_heading_goes_where_its_file_marks_it(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Guessed, "Fees" (after text) took the place of "Renewals" and stayed under "Borrowing", and
    # "Opening hours" under that: Markdown's "##" and HTML's <h2> say they are sections of their own.
    for name, text in (("handbook.md", HANDBOOK), ("handbook.html", HANDBOOK_PAGE)):
        rag, _ = store_of(tmp_path_factory, {name: text})
        by_text = {s.text: s.headings for s in candidates(rag.retrieve("late books renewed Sunday"))}
        assert by_text["A loan can be renewed twice, online or at the desk."] == "Borrowing Renewals", name
        assert by_text["Late books cost 20 cents a day, up to 5 dollars per item."] == "Fees Late fees", name
        assert by_text["Day: Sunday; Hours: closed"] == "Opening hours", name


DROPS = """\
Package leaflet: information for the user

Clearlid 0.5% eye drops

What Clearlid is and what it is used for
Clearlid is used to relieve dry and tired eyes after long hours of screen work.

How to store Clearlid
Keep the bottle below 25 °C and throw it away four weeks after opening.

Warnings
- if you wear soft contact lenses
"""


def test_a_heading_that_asks_is_no_answer_but_what_its_text_answers(tmp_path_factory: pytest.TempPathFactory) -> None:
    # "How to store Clearlid." was quoted for how to store it: a heading put as a question asks.
    rag, _ = store_of(tmp_path_factory, {"drops.txt": DROPS})
    stored = rag.ask("How should Clearlid be stored?")
    assert stored.evidence and stored.evidence[0].text.startswith("Keep the bottle below 25 °C"), stored.text
    used = rag.ask("What is Clearlid used for?")
    assert used.evidence and used.evidence[0].text.startswith("Clearlid is used to relieve"), used.text
    assert all(
        "How to store" not in e.text and "What Clearlid is" not in e.text for e in stored.evidence + used.evidence
    )
    # A list's item in lower case states a case: "- if you wear …" is no heading that asks.
    texts = [c.text for c in candidates(rag.retrieve("Can I wear soft contact lenses with Clearlid?"))]
    assert any("if you wear soft contact lenses" in text for text in texts), texts


PANCAKES = """\
# Oat pancakes

## Ingredients

- 150 g rolled oats
- 2 eggs
- 300 ml whole milk
- a pinch of salt

## Method

Blend everything and leave the batter to rest for ten minutes.
"""

PANCAKES_PAGE = """\
<html><body><h1>Oat pancakes</h1><h2>Ingredients</h2>
<ul><li>150 g rolled oats</li><li>2 eggs</li><li>300 ml whole milk</li><li>a pinch of salt</li></ul>
<h2>Method</h2><p>Blend everything and leave the batter to rest for ten minutes.</p></body></html>
"""


def test_a_list_whose_marks_are_gone_is_no_run_of_headings(tmp_path_factory: pytest.TempPathFactory) -> None:
    # "2 eggs" was a heading, "300 ml whole milk" under it: a file that marks its headings marks them all.
    for name, text in (("pancakes.md", PANCAKES), ("pancakes.html", PANCAKES_PAGE)):
        rag, _ = store_of(tmp_path_factory, {name: text})
        by_text = {s.text: s.headings for s in candidates(rag.retrieve("How much milk goes in the pancakes?"))}
        assert by_text.get("300 ml whole milk") == "Ingredients", (name, by_text)
        # An item in lower case is an item of its own, not a wrapped line of the one before.
        assert by_text.get("a pinch of salt") == "Ingredients", (name, by_text)


REPORT = """\
Harbour Trust annual report

1. Operations

1.1 Passengers

The ferry carried 412,000 passengers, fewer than the year before.

2. Finances

The trust made a profit of 4.2 million crowns and paid a dividend to the town council.
"""


def test_a_numbered_heading_goes_under_the_ones_of_fewer_numbers(tmp_path_factory: pytest.TempPathFactory) -> None:
    rag, _ = store_of(tmp_path_factory, {"report.txt": REPORT})
    by_text = {s.text: s.headings for s in candidates(rag.retrieve("profit"))}
    assert (
        by_text["The ferry carried 412,000 passengers, fewer than the year before."] == "1. Operations 1.1 Passengers"
    )
    profit = "The trust made a profit of 4.2 million crowns and paid a dividend to the town council."
    assert by_text[profit] == "2. Finances"  # not under "1.1 Passengers" any more
    # "How many" asks for a count: "fewer" in the answer does not oppose it.
    carried = rag.ask("How many passengers did the ferry carry?")
    assert not carried.abstained and "412,000 passengers" in carried.text, carried.text


def test_a_chunk_knows_the_headings_an_earlier_chunk_holds(tmp_path_factory: pytest.TempPathFactory) -> None:
    fixed = [f"- Tide table number {n} printed from the app no longer loses its last column." for n in range(12)]
    removed = [f"- The old fax export number {n} of the berth schedule was dropped for good." for n in range(12)]
    notes = "\n".join(["# Harbourlog releases", "", "## Version 3.2", "", "### Fixed", "", *fixed])
    notes += "\n\n" + "\n".join(["## Version 3.1", "", "### Removed", "", *removed]) + "\n"
    rag, _ = store_of(tmp_path_factory, {"releases.md": notes})
    last = [p for p in rag.retrieve("fax export number 11") if "number 11" in p.text and "Version 3.1" not in p.text]
    assert last, "the last removed item should sit in a chunk without its headings"
    by_text = {s.text: s.headings for s in candidates(last[:1])}
    assert by_text["The old fax export number 11 of the berth schedule was dropped for good."] == "Version 3.1 Removed"


def test_what_happened_asks_for_an_event_not_the_word(tmp_path_factory: pytest.TempPathFactory) -> None:
    # "happened" is in no sentence: it asks what the sentence says, as "do" does.
    from test_retrieve import ERUPTION, FERRY_NOTICE

    rag, _ = store_of(tmp_path_factory, {"eruption.txt": ERUPTION, "ferry.txt": FERRY_NOTICE})
    spa = rag.ask("What happened to the spa?")
    assert not spa.abstained and "closed its doors" in spa.text, spa.text
    flights = rag.ask("What happened to the flights?")
    assert not flights.abstained and "flights continued as scheduled" in flights.text, flights.text


PRESS_RELEASE = """\
Tern Robotics to Acquire Lumen Sensors

NEW YORK, Dec. 5, 2026 /PRNewswire/ -- Tern Robotics Inc. (NASDAQ: TERN), a maker of warehouse robots, \
today announced that it will acquire Lumen Sensors, a developer of lidar sensors, for $240 million in cash.

The deal is expected to close in the first quarter of 2027. Gen. Ada Lind, a board member, called it a good fit.

Lumen Sensors was founded in 2019 by Daniel Okoro and employs 85 people in Austin.

Media contact:
Jane Roe
press@tern.example
"""


def test_a_press_release_reads_as_its_reader_would(tmp_path_factory: pytest.TempPathFactory) -> None:
    text = "Tern Robotics Inc. (NASDAQ: TERN) bought a firm. Gen. Lind met Mr. Okoro. The U.S. Navy sailed."
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "Tern Robotics Inc. (NASDAQ: TERN) bought a firm.",
        "Gen. Lind met Mr. Okoro.",
        "The U.S. Navy sailed.",
    ]
    # Cut after "Inc.", the quote lost its subject; cut after "Gen.", the sentence lost its name.
    rag, _ = store_of(tmp_path_factory, {"deal.txt": PRESS_RELEASE, "bridge.txt": HARBOUR})
    announced = rag.ask("What did Tern Robotics announce?")
    assert announced.text.startswith("“Tern Robotics Inc. (NASDAQ: TERN), a maker"), announced.text
    fit = rag.ask("Who called the deal a good fit?")
    assert not fit.abstained and "Ada Lind" in fit.text, fit.text
    # A label on a line of its own names the line after it.
    contact = rag.ask("Who is the media contact?")
    assert not contact.abstained and "Jane Roe" in contact.text, contact.text


MINUTES = """\
Millbrook Allotment Society
Minutes of the committee meeting held on 3 March 2026

Present: A. Velasquez (chair), K. Ibsen (secretary), D. Mensah (treasurer) and nine members.

1. Accounts
D. Mensah reported that the society holds £2,870 after paying for the new water tank.

2. Plot waiting list
P. Horvath's proposal to split large plots in two was rejected, as members feared losing the orchard.
"""


BOARD_MINUTES = """\
Quayside Traders' Association
Minutes of the meeting of 4 November 2026

1. Lights on the harbour wall
Members agreed to pay for new lights on the harbour wall, at a cost of £900.

2. Stalls on the fish quay in winter
The council will let stalls stay open until 8 pm from December.
"""


def test_a_numbered_heading_is_not_quoted_as_the_answer(tmp_path_factory: pytest.TempPathFactory) -> None:
    # "Lights on the harbour wall", four words under a section number, was a candidate, and the
    # question that repeats it ranked it first: quoted, it answered nothing.
    rag, _ = store_of(tmp_path_factory, {"minutes.txt": BOARD_MINUTES, "bridge.txt": HARBOUR})
    lights = rag.ask("What about the lights on the harbour wall?")
    assert lights.text.startswith("“Members agreed to pay for new lights"), lights.text
    stalls = rag.ask("What happens to stalls on the fish quay in winter?")
    assert stalls.text.startswith("“The council will let stalls stay open"), stalls.text


def test_a_persons_initial_does_not_end_a_sentence(tmp_path_factory: pytest.TempPathFactory) -> None:
    text = "D. Mensah reported it. P. Horvath's plan failed. J. R. Lowe left. He took vitamin C. Then he slept."
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "D. Mensah reported it.",
        "P. Horvath's plan failed.",
        "J. R. Lowe left.",
        "He took vitamin C. Then he slept.",  # read on, as after "Gen.": a name cut off costs more
    ]
    # Cut after the initials, the list of who was there fell into one-word pieces, and a quoted
    # sentence lost the name of whose proposal it was.
    rag, _ = store_of(tmp_path_factory, {"minutes.txt": MINUTES, "bridge.txt": HARBOUR})
    chair = rag.ask("Who chaired the meeting?")
    assert not chair.abstained and "A. Velasquez (chair)" in chair.text, chair.text
    why = rag.ask("Why was the proposal to split plots rejected?")
    assert "P. Horvath's proposal" in why.text and "orchard" in why.text, why.text


PERMITS = """\
# Mooring permits

The harbour office issues mooring permits to boat owners who live on the island.

## What you need

To apply, bring the following to the harbour office:

- a valid identity card or passport
- the boat's registration papers
- proof that you live on the island

The office is open at these times:

| Day | Hours |
|---|---|
| Monday | 9 am to 5 pm |
| Saturday | closed |

## Fees

A permit costs 300 crowns a season.
"""


def test_a_sentence_that_leads_into_a_list_is_quoted_with_its_items(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Alone, the sentence ending with a colon was the answer, and the items too short to be any.
    # Markdown drops the marks of the list; plain text keeps them, and a line after a colon is not
    # read as going on that line when it is an item.
    plain = PERMITS.replace("# ", "").replace("#", "")
    for name, text in (("permits.md", PERMITS), ("permits.txt", plain)):
        rag, _ = store_of(tmp_path_factory, {name: text, "bridge.txt": HARBOUR})
        answer = rag.ask("What do I need to apply for a mooring permit?")
        listed = (
            "To apply, bring the following to the harbour office: a valid identity card or passport; "
            "the boat's registration papers; proof that you live on the island"
        )
        assert answer.evidence[0].text == listed, (name, answer.text)
        assert answer.text == f"“{listed}.” [1]", answer.text
        # Its place in the file runs from the sentence to the last item.
        cited = answer.evidence[0]
        assert text[cited.start : cited.end].startswith("To apply") and text[: cited.end].endswith("island")
        # What follows the list is a sentence of its own, and a table's rows are no list items.
        assert "300 crowns" in rag.ask("How much does a permit cost?").text
        if name.endswith(".md"):
            said = {c.text for c in candidates(rag.retrieve("office open times Saturday"))}
            assert "Day: Saturday; Hours: closed" in said, said
