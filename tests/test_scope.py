"""Scoped questions: a filter by article, dateline or title limits both searches and the answer.

Against the real store of the five seed articles: 002 is the Tokyo article (Lavrov and Kishida at
the Iikura guest house), 003 the one on Igor Morgulov and Takeo Mori. A question that names an
article by its quoted title is tested on made-up documentation pages (`MANUAL`).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_rag
from ollama_server import OllamaServer

import rag.store as store_module
from rag import RAG, BadInput, ui
from rag.cli import main as rag_command
from rag.evidence import candidates
from rag.scope import NOT_IN_SCOPE, WHICH_ARTICLE, Scope, asks_what_it_says, named_articles, scope_of
from rag.store import StoredDocument, scoped_search_way

TOKYO, MORI = "002_5c202a017dd63dc4.txt", "003_4d11091f11b44f0d.txt"


def test_a_scope_resolves_to_doc_ids_by_glob_dateline_and_title(seeded_rag: RAG) -> None:
    docs = seeded_rag.documents()
    assert Scope(doc_ids=("002_*",)).resolve(docs) == {TOKYO}
    assert Scope(doc_ids=("002_*", MORI)).resolve(docs) == {TOKYO, MORI}
    assert Scope(dateline="tokyo").resolve(docs) == {TOKYO}  # a place
    assert Scope(dateline="March 21").resolve(docs) == {MORI}  # a date
    assert Scope(title="peace treaty").resolve(docs) >= {TOKYO, MORI}
    assert Scope(title="journey Tokyo").resolve(docs) == {MORI}  # every word, in any order
    assert Scope(doc_ids=("00*",), dateline="Moscow").resolve(docs) == {
        d.doc_id for d in docs if "Moscow" in d.dateline
    }
    assert scope_of({"doc_ids": "002_*"}) == Scope(doc_ids=("002_*",)) and not scope_of(None)


def test_a_filter_that_matches_nothing_is_a_clear_error(seeded_rag: RAG) -> None:
    with pytest.raises(BadInput, match=r"no article matches the filter \(title with 'sourdough'\)"):
        seeded_rag.retrieve("Who is Takeo Mori?", where={"title": "sourdough"})
    with pytest.raises(BadInput, match="unknown filter author"):
        seeded_rag.retrieve("Who is Takeo Mori?", where={"author": "TASS"})
    with pytest.raises(BadInput, match="must be text"):
        seeded_rag.retrieve("Who is Takeo Mori?", where={"dateline": 15})


def test_bm25_and_dense_both_keep_to_the_scope(seeded_rag: RAG) -> None:
    everywhere = seeded_rag.retrieve("Iikura guest house")  # also brings both indexes up to date
    assert everywhere[0].doc_id == TOKYO and "bm25" in everywhere[0].found_by
    assert {p.doc_id for p in everywhere if "bm25" in p.found_by} == {TOKYO}  # the words are only in 002
    # Inside 003 the words match nothing, and meaning alone finds 003's passages, no other article's.
    scoped = seeded_rag.retrieve("Iikura guest house", where="003_*")
    assert scoped and {p.doc_id for p in scoped} == {MORI} and all(p.found_by == ("dense",) for p in scoped)


@pytest.mark.parametrize("way", ["scored here", "wide search filtered", "chroma's id filter", "wide, too few"])
def test_every_way_of_a_scoped_dense_search_finds_the_same_nearest_chunks(
    seeded_rag: RAG, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    """The store picks how to search inside a scope by its size; each way must rank as scoring every
    chunk of the scope by its stored vector would."""
    free, dear = 0.0, 1e9
    costs = {  # COST_SCORE_HERE_US, COST_WIDE_US, COST_ID_FILTER_US, WIDE_MARGIN
        "scored here": (free, dear, (dear, 0), 2),
        "wide search filtered": (dear, free, (dear, 0), 2),
        "chroma's id filter": (dear, dear, (free, 0), 2),
        "wide, too few": (dear, free, (dear, 0), 0),  # the filtered candidates are too few: Chroma's filter
    }[way]
    for name, value in zip(("COST_SCORE_HERE_US", "COST_WIDE_US", "COST_ID_FILTER_US", "WIDE_MARGIN"), costs):
        monkeypatch.setattr(store_module, name, value)
    seeded_rag.retrieve("Iikura guest house")  # both indexes up to date
    retriever, store = seeded_rag.retriever, seeded_rag.store
    question = "When was the 1956 Joint Declaration signed?"
    scope = retriever.index.scoped({TOKYO, MORI})
    vector = seeded_rag.embedder.get_query_embedding(question)
    stored = store.collection.get(include=["embeddings", "metadatas"])
    every = sorted(
        (
            (float(np.dot(vec, vector) / np.linalg.norm(vec) / np.linalg.norm(vector)), chunk_id, meta["doc_id"])
            for chunk_id, vec, meta in zip(stored["ids"], stored["embeddings"], stored["metadatas"])
        ),
        reverse=True,
    )
    assert {doc for _, _, doc in every[:5]} - {TOKYO, MORI}  # other articles are nearer: filtering matters
    inside = [(chunk_id, similarity) for similarity, chunk_id, doc in every if doc in (TOKYO, MORI)]
    expected = inside[:5]
    assert len(scope.chunk_ids) == len(inside) > 5 and scope.total == len(stored["ids"])
    found = store.nearest_among(vector, 5, scope.chunk_ids, scope.total)
    assert [cid for cid, _ in found] == [cid for cid, _ in expected]
    assert [round(s, 4) for _, s in found] == [round(s, 4) for _, s in expected]
    # The retriever keeps a small scope's vectors and scores them itself: the scope's nearest chunk
    # among the passages, and each passage's similarity the one scoring every chunk gives.
    retrieval = retriever.retrieve(question, k=5, doc_ids={TOKYO, MORI})
    exact = dict(inside)
    assert {p.doc_id for p in retrieval.passages} <= {TOKYO, MORI}
    assert expected[0][0] in [p.chunk_id for p in retrieval.passages]
    assert retrieval.best_similarity == pytest.approx(expected[0][1], abs=1e-4)
    dense = [p for p in retrieval.passages if p.similarity is not None]
    assert dense and [p.similarity for p in dense] == pytest.approx([exact[p.chunk_id] for p in dense], abs=1e-4)


def test_the_scoped_search_takes_the_way_of_least_cost() -> None:
    assert scoped_search_way(5, 100_000, 20)[0] == "here"  # one article
    assert scoped_search_way(5_000, 100_000, 20) == ("wide", 800)  # one article in 20
    assert scoped_search_way(500, 10_000, 20) == ("wide", 800)
    assert scoped_search_way(1_000, 100_000, 20)[0] == "ids"  # one in 100: too many to score, too few to find


def test_k_passages_still_come_from_inside_the_scope(seeded_rag: RAG) -> None:
    where = {"doc_ids": [TOKYO, MORI]}
    passages = seeded_rag.retrieve("Which islands does Japan claim?", k=4, where=where)
    assert len(passages) == 4 and {p.doc_id for p in passages} <= {TOKYO, MORI}


@pytest.mark.slow
def test_a_question_about_another_article_is_refused_or_answered_from_the_chosen_one(seeded_rag: RAG) -> None:
    refused = seeded_rag.ask("Who is Takeo Mori?", where=[TOKYO])  # Mori is only in 003
    assert refused.abstained and refused.text == NOT_IN_SCOPE and "chosen articles" in refused.text
    assert {p.doc_id for p in refused.passages} <= {TOKYO}
    answered = seeded_rag.ask("Who is Takeo Mori?")  # the same question over every article
    assert not answered.abstained and answered.citations[0].passage.doc_id == MORI
    inside = seeded_rag.ask("Where did Lavrov and Kishida hold talks?", where={"doc_ids": [MORI]})
    assert {p.doc_id for p in inside.passages} == {MORI} and {c.passage.doc_id for c in inside.citations} <= {MORI}
    assert "Iikura" not in inside.text


def test_the_cli_takes_the_scope_as_options(seeded_rag: RAG) -> None:
    env = {"RAG_HOME": str(seeded_rag.settings.home), "RAG_CORPUS": str(seeded_rag.settings.corpus)}
    result = CliRunner().invoke(rag_command, ["retrieve", "--json", "--doc", "003_*.txt", "Iikura"], env=env)
    assert result.exit_code == 0, result.output
    assert {p["doc_id"] for p in json.loads(result.output)["passages"]} == {MORI}
    result = CliRunner().invoke(rag_command, ["retrieve", "--dateline", "Tokyo", "-k", "2", "Lavrov"], env=env)
    assert result.exit_code == 0 and result.output.count(TOKYO) == 2, result.output
    missing = CliRunner().invoke(rag_command, ["ask", "--doc", "999_*", "Who is Takeo Mori?"], env=env)
    assert missing.exit_code == 2 and "no article matches" in missing.output


# -- an article named in the question ---------------------------------------------------------

# Made-up documentation pages whose titles share few words with their opening: on such a folder
# the app's own example question ('What does the article "..." say?') once got "The articles
# don't say."
MANUAL = {
    "tides.md": (
        "# Reading the tide tables\n\nEach row gives the time and height of one high or low water at the "
        "harbour mouth. Heights are in metres above chart datum, so a negative figure means the sea falls "
        "below it. Times are local and already allow for summer time.\n"
    ),
    "moorings.md": (
        "# Renting a mooring\n\nVisiting boats pay by the night at the harbour office, which opens at seven. "
        "Boats longer than twelve metres must book two days ahead. The fee includes fresh water but not "
        "electricity.\n"
    ),
    "history.html": (
        "<html><head><title>About the harbour trust</title></head><body><h1>About the harbour trust</h1>"
        "<p>The trust was founded in 1911 by four fishing families who wanted a breakwater of their own.</p>"
        "<p>It is run by an elected board of nine and owns the quays, the slipway and the old net loft.</p>"
        "</body></html>"
    ),
}
TITLES = {
    "tides.md": "Reading the tide tables",
    "moorings.md": "Renting a mooring",
    "history.html": "About the harbour trust",
}
OPENINGS = {
    "tides.md": "Each row gives the time and height of one high or low water at the harbour mouth.",
    "moorings.md": "Visiting boats pay by the night at the harbour office, which opens at seven.",
    "history.html": "The trust was founded in 1911 by four fishing families who wanted a breakwater of their own.",
}


def folder_rag(tmp_path_factory: pytest.TempPathFactory, files: dict[str, str]) -> RAG:
    """A fresh store holding just these files (name: text), read from a folder of their own."""
    folder = tmp_path_factory.mktemp("folder")
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    rag = make_rag(folder / ".rag", folder, backend="embedded")
    rag.ingest([folder])
    return rag


@pytest.fixture(scope="module")
def manual_rag(tmp_path_factory: pytest.TempPathFactory) -> RAG:
    return folder_rag(tmp_path_factory, MANUAL)


def test_a_title_in_quotes_is_found_whatever_its_case_quotes_and_end_mark() -> None:
    docs = [StoredDocument(name, frozenset(), "", title, "", ()) for name, title in TITLES.items()]
    assert named_articles('What does the article "Renting a mooring" say?', lambda: docs)[0] == {"moorings.md"}
    named, rest = named_articles("Summarise “renting a MOORING.”", lambda: docs)
    assert named == {"moorings.md"} and asks_what_it_says(rest)
    named, rest = named_articles("In 'Reading the tide tables', what unit are heights in?", lambda: docs)
    assert named == {"tides.md"} and not asks_what_it_says(rest)
    # Apostrophes are no quotes, an unknown title names nothing, and no quote reads no documents.
    assert named_articles("What's the trust's slipway for?", lambda: docs)[0] == set()
    assert named_articles('What does "Renting a car" say?', lambda: docs)[0] == set()
    assert named_articles("Who founded the trust?", lambda: pytest.fail("read the documents")) == (
        frozenset(),
        "Who founded the trust?",
    )


def test_each_example_question_is_answered_with_its_articles_opening_sentence(manual_rag: RAG) -> None:
    questions = ui.example_questions(manual_rag.documents())
    assert len(questions) == len(MANUAL)
    for question in questions:
        answer = manual_rag.ask(question)
        [cited] = answer.citations
        assert answer.text == f"“{OPENINGS[cited.passage.doc_id]}” [1]", (question, answer.text)
        assert TITLES[cited.passage.doc_id] in question and answer.how == "opening" and not answer.uncertain
        assert {p.doc_id for p in answer.passages} == {cited.passage.doc_id}  # that article only
        assert answer.passages[0].found_by == ("title",) and ui.found_label(answer.passages[0]).endswith("question")
        # The evidence is where the sentence is in the file (an HTML page's offsets index its text).
        evidence = answer.evidence[0]
        if evidence.doc_id.endswith(".md"):
            original = (manual_rag.settings.corpus / evidence.doc_id).read_text(encoding="utf-8")
            assert original[evidence.start : evidence.end] == OPENINGS[evidence.doc_id]


def test_a_question_that_names_an_article_is_answered_from_it_alone(manual_rag: RAG) -> None:
    # Asked of every article, "how long" finds the mooring page's "two days ahead"; asked of the
    # tide tables, which say no such thing about booking, it is not answered from another page.
    question = "How long ahead must boats longer than twelve metres book?"
    assert "two days" in manual_rag.ask(question).text
    scoped = manual_rag.ask(f'In "Reading the tide tables": {question}')
    assert {p.doc_id for p in scoped.passages} == {"tides.md"} and "two days" not in scoped.text
    # A scope given with the question wins over a title it names outside that scope.
    other = manual_rag.ask(f'In "Reading the tide tables": {question}', where="moorings.md")
    assert {p.doc_id for p in other.passages} == {"moorings.md"}
    # A follow-up is not held to the article the question before it named.
    history = [{"role": "user", "content": 'What does the article "Renting a mooring" say?'}]
    history.append({"role": "assistant", "content": f"“{OPENINGS['moorings.md']}” [1]"})
    follow_up = manual_rag.ask("When was the trust founded?", history=history)
    assert follow_up.text == "1911 [1]." and follow_up.citations[0].passage.doc_id == "history.html"


def test_a_model_that_writes_reads_the_named_articles_opening_first(manual_rag: RAG, ollama: OllamaServer) -> None:
    ollama.reply = "Visiting boats pay by the night at the harbour office [1]."
    rag = make_rag(manual_rag.settings.home, manual_rag.settings.corpus, ollama_host=ollama.url)
    answer = rag.ask('What does the article "Renting a mooring" say?')
    assert answer.backend == "ollama" and answer.how == "model" and answer.citations[0].passage.doc_id == "moorings.md"
    assert {p.doc_id for p in answer.passages} == {"moorings.md"}
    assert answer.passages[0].text.startswith(OPENINGS["moorings.md"])
    prompt = ollama.requests_to("/api/chat")[-1]["messages"][-1]["content"]
    assert f'[1] "{OPENINGS["moorings.md"]}"' in prompt  # the opening named as the evidence


STORIES = {
    "ferry.md": (
        "# Ferry timetable cut for the winter\n\n*By Ana Lis, Harbour Courier — 3 November 2026*\n\n"
        "The Portvale ferry will run four times a day instead of six from December, the harbour trust said "
        "on Monday. The trust blamed the cost of fuel.\n\n"
        "A letter of protest was written by Tomas Berg, who chairs the islanders' association.\n"
    ),
    "bakery.txt": (
        "Bakery wins regional prize\n\nBY JONAS WEBER, Valley News\n\n"
        "The Mill Lane bakery won the regional bread prize on Saturday with a rye loaf baked in a wood oven.\n"
    ),
    "council.txt": (
        "Council agrees new bus routes\n\n"
        "By Christmas Eve the town council had agreed three new bus routes.\n\n"
        "They start in March after a public vote.\n"
    ),
    "quarry.txt": (
        "Quarry workers end strike\n\n"
        "RIVERTON, Nov. 5 (Baltic Wire) -- Workers at the Riverton quarry ended a two-day strike on Wednesday "
        "after a pay deal, their union said.\n"
    ),
    "interview.txt": (
        "Forty winters at the harbour\n\nInterview by Lena Brandt, Harbour Courier\n\n"
        "Nils Ek retires this month as the harbour master of Portvale. We asked him about his years on the quays.\n\n"
        "Q: How did you start?\nA: I started in 1986 as a deckhand on the old ferry.\n\n"
        "Q: What worries you most about the winter?\nA: Ice. When the bay freezes, the ferry needs an icebreaker "
        "to reach the island.\n"
    ),
}


@pytest.fixture(scope="module")
def stories_rag(tmp_path_factory: pytest.TempPathFactory) -> RAG:
    """Made-up news stories: three with a byline, one without, one from a wire with its dateline only."""
    return folder_rag(tmp_path_factory, STORIES)


def test_who_wrote_an_article_is_answered_with_its_byline(stories_rag: RAG) -> None:
    ferry = stories_rag.ask("Who wrote the story about the ferry timetable?")
    assert ferry.how == "byline" and "Ana Lis" in ferry.text and ferry.text.endswith("[1]"), ferry.text
    cited = ferry.evidence[0]
    assert cited.doc_id == "ferry.md" and ferry.citations[0].passage.doc_id == "ferry.md"
    line = "By Ana Lis, Harbour Courier — 3 November 2026"
    assert STORIES["ferry.md"][cited.start : cited.end] == line  # its place in the file, inside the emphasis
    bakery = stories_rag.ask("Who wrote the article about the bakery prize?")
    assert bakery.how == "byline" and "JONAS WEBER" in bakery.text, bakery.text
    # A follow-up asks of the article the conversation is about.
    history = [
        {"role": "user", "content": "When will the ferry run less often?"},
        {"role": "assistant", "content": "December [1]."},
    ]
    follow = stories_rag.ask("Who wrote that story?", history=history)
    assert follow.how == "byline" and "Ana Lis" in follow.text, follow.text
    # In a filter of one article, no topic is needed; of several, which one is asked back.
    assert "JONAS WEBER" in stories_rag.ask("Who is the author?", where="bakery.txt").text
    which = stories_rag.ask("Who is the author?")
    assert which.abstained and which.text == WHICH_ARTICLE and not which.citations, which.text
    # An article without a byline does not say who wrote it ("By Christmas Eve the council…" opens its
    # text, and is no byline): no other article's byline is given.
    council = stories_rag.ask("Who wrote the article about the new bus routes?")
    assert council.abstained and not council.citations, council.text
    # A wire story names no writer; its dateline credits the agency, and the agency names the story.
    credited = "The story has no byline; its dateline credits Baltic Wire [1]."
    for question in ("Who wrote the story about the quarry strike?", "Who wrote the Baltic Wire story?"):
        wire = stories_rag.ask(question)
        assert wire.how == "byline" and wire.text == credited, wire.text
        assert wire.citations[0].passage.doc_id == "quarry.txt" and wire.evidence[0].text.startswith("RIVERTON")
    assert ui.byline(wire).startswith("Taken from the dateline of the article")  # not "Quoted from the byline"
    env = {"RAG_HOME": str(stories_rag.settings.home), "RAG_CORPUS": str(stories_rag.settings.corpus)}
    shown = CliRunner().invoke(rag_command, ["ask", "Who wrote the Baltic Wire story?"], env=env)
    assert "Evidence [1]: “RIVERTON, Nov. 5 (Baltic Wire) --” (quarry.txt" in shown.output, shown.output
    # Who wrote something the story tells of is in the story, not its byline.
    letter = stories_rag.ask("Who has written a letter of protest?")
    assert letter.how != "byline" and "Tomas Berg" in letter.text, letter.text


def test_an_interview_is_quoted_without_its_labels_and_its_byline_says_who_wrote_it(stories_rag: RAG) -> None:
    by = stories_rag.ask("Who wrote the interview with the harbour master?")
    assert by.how == "byline" and "Lena Brandt" in by.text, by.text
    explainer = stories_rag.ask("Who wrote the explainer on the ferry timetable?")
    assert explainer.how == "byline" and "Ana Lis" in explainer.text, explainer.text
    # The interviewer's "Q:" and the answer's "A:" are not part of what was said.
    passages = [p for p in stories_rag.retrieve("harbour master winter ferry 1986") if p.doc_id == "interview.txt"]
    said = [s.text for s in candidates(passages)]
    assert "I started in 1986 as a deckhand on the old ferry." in said, said
    assert not any(s.startswith(("Q:", "A:")) for s in said), said


def test_a_byline_is_no_heading_over_the_story() -> None:
    from rag.documents import clean_article
    from rag.text import headings_over

    story = clean_article(STORIES["ferry.md"], doc_id="ferry.md", markdown=True)
    assert story.text.startswith("By Ana Lis")
    assert headings_over(story.text, [len(story.text) - 1], dict(story.heading_levels)) == [((), False)]


def test_a_papers_list_of_authors_is_its_byline(tmp_path_factory: pytest.TempPathFactory) -> None:
    # A paper names its authors, each with a university, on one line longer than a story's byline.
    authors = "Authors: Ana Lis (University of Portvale), Jonas Weber (Valley Institute), Lena Brandt (Ice Lab)"
    paper = f"# Sea ice over the bay\n\n**{authors}**\n\nThe bay froze for 41 days in the winter of 2025.\n"
    rag = folder_rag(tmp_path_factory, {"paper.md": paper})
    answer = rag.ask("Who are the authors?")
    assert answer.how == "byline" and answer.text == f"“{authors}” [1]", answer.text


def test_a_byline_in_lower_case_under_a_pages_heading_is_no_part_of_its_title(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # A line under an HTML page's <h1> starts anew, though it starts in lower case as a line
    # wrapped by a file's width does: the headline stays the title, the byline says who wrote it.
    page = (
        "<html><body><h1>Ferry crews end their strike</h1><p class='byline'>by Ana Lis, Staff writer</p>"
        "<p>RIVERTON – The ferry crews ended a two-day strike on Wednesday after a pay deal.</p></body></html>"
    )
    rag = folder_rag(tmp_path_factory, {"strike.html": page, "bakery.txt": STORIES["bakery.txt"]})
    assert [d.title for d in rag.documents() if d.doc_id == "strike.html"] == ["Ferry crews end their strike"]
    answer = rag.ask("Who wrote the story about the ferry strike?")
    assert answer.how == "byline" and answer.text == "“by Ana Lis, Staff writer.” [1]", answer.text


def test_a_pages_author_named_in_its_head_says_who_wrote_it(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Many news pages print no byline in the story, only in their head's <meta name="author">; and
    # "Who wrote the pay story?" names one word of the story ("wrote" and "story" are in none, and
    # count for nothing in whether the story is about the question).
    page = (
        '<html><head><title>Ferry crews end strike</title><meta name="author" content="Ana Lis"></head><body>'
        "<h1>Ferry crews end their strike</h1>"
        "<p>RIVERTON (Harbour Courier) – The ferry crews ended a two-day strike on Wednesday after a pay deal.</p>"
        "</body></html>"
    )
    rag = folder_rag(tmp_path_factory, {"strike.html": page, "bakery.txt": STORIES["bakery.txt"]})
    for question in ("Who wrote the ferry story?", "Who wrote the pay story?", "Who wrote the article on the deal?"):
        answer = rag.ask(question)
        assert answer.how == "byline" and answer.text == "“By Ana Lis.” [1]", (question, answer.text)
        assert answer.citations[0].passage.doc_id == "strike.html"
