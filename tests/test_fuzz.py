"""Property tests (hypothesis) for the parts that read text nobody checked: the citation parser,
the article cleaner and the question check. They must never raise on odd input, and what they
promise (markers point at passages, offsets point into the original file) must hold for any text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_hardening import Tally, tally_fixture

from rag import RAG, BadInput, Passage
from rag.citations import MARKER, MAX_RANGE, check_support, citations_for, cited_numbers, clean_markers, marker_numbers
from rag.documents import BOILERPLATE_LINES, DATELINE, clean_article, html_to_text, parse_dateline
from rag.safety import UNPRINTABLE

tally = tally_fixture("fuzz")
FUZZ = settings(max_examples=150, deadline=None)

# Text a model or a scraped page might produce: brackets, digits, separators, scripts, controls.
ODD_CHARS = st.characters(codec="utf-8") | st.sampled_from([*'[]【】0123456789,;-– and\n\t.!?"“(#©', "\x00", "\r"])
ODD_TEXT = st.text(ODD_CHARS, max_size=300)
MARKERS = st.from_regex(MARKER, fullmatch=True)
ARTICLE_LINES = st.lists(
    st.one_of(
        st.text(ODD_CHARS, max_size=80),
        st.sampled_from(["All news", "© Sergei Bobylev/TASS", "(c) Reuters", "Read more", "", "   "]),
        # Table rows and rules, with and without outer bars, front matter, and a wiki's reference marks.
        st.sampled_from(["| a | b |", "|---|:-:|", "a | `b` |", "--- | ---", "| | x |", "c \\| d", "|", "| - |"]),
        st.sampled_from(["---", "+++", "title: T", 'title = "T"', "date: 2024"]),  # front matter
        st.sampled_from(["The infor-", "mation", "information", "a well-", "known", "well-known"]),  # hyphens
        st.lists(st.sampled_from(["Asia.", "[1]", "[2]", " It", "[citation needed]", ",", "a[1]", "[x](y)"])).map(
            "".join
        ),
        st.from_regex(DATELINE, fullmatch=False).map(lambda s: s.replace("\n", " ")),
    ),
    max_size=25,
)


def passages(count: int) -> list[Passage]:
    """`count` distinct passages."""
    return [Passage(f"doc{n}.txt", f"Title {n}", f"Passage number {n} text.", 0.1, 0, 10) for n in range(count)]


def fixed_similarity(sentences: list[str], texts: list[str]) -> list[list[float]]:
    """A deterministic stand-in score: shared characters over length (no model needed for parsing)."""
    return [[len(set(s) & set(t)) / max(len(set(s) | set(t)), 1) for t in texts] for s in sentences]


@FUZZ
@given(text=ODD_TEXT, count=st.integers(0, 12))
def test_cleaned_markers_only_name_passages_that_exist(tally: Tally, text: str, count: int) -> None:
    tally.bad()
    cleaned = clean_markers(text, count)
    assert all(1 <= n <= count for n in cited_numbers(cleaned))
    assert clean_markers(cleaned, count) == cleaned  # a second pass finds nothing to change


@FUZZ
@given(marker=MARKERS, prefix=ODD_TEXT, count=st.integers(0, 12))
@example(marker="[" + "0," * 60 + "0]", prefix="0", count=0)  # a long list, found by a CI run
def test_every_bracket_form_is_parsed_and_kept_in_range(tally: Tally, marker: str, prefix: str, count: int) -> None:
    tally.bad()
    inside = MARKER.fullmatch(marker)[1]
    numbers = marker_numbers(inside)
    assert numbers and all(isinstance(n, int) and n >= 0 for n in numbers)
    # Ranges are bounded: "1-999" is not a thousand citations. A list may be long ("1, 2, …, 60").
    assert len(numbers) <= MAX_RANGE * len(re.findall(r"\d{1,3}", inside))
    given_passages = passages(count)
    citations = citations_for(prefix + marker, given_passages)
    assert all(1 <= c.marker <= count and c.passage == given_passages[c.marker - 1] for c in citations)


@FUZZ
@given(text=ODD_TEXT, count=st.integers(0, 6))
def test_support_check_never_invents_markers(tally: Tally, text: str, count: int) -> None:
    tally.bad()
    kept, dropped = check_support(clean_markers(text, count), passages(count), fixed_similarity, 0.3)
    assert all(1 <= n <= count for n in cited_numbers(kept))
    assert all(isinstance(s, str) for s in dropped)


@FUZZ
@given(lines=ARTICLE_LINES, newline=st.sampled_from(["\n", "\r\n", "\n\n", "\n \t\n"]), markdown=st.booleans())
def test_cleaned_article_maps_every_character_back_into_the_original(
    tally: Tally, lines: list[str], newline: str, markdown: bool
) -> None:
    tally.bad()
    original = newline.join(lines)
    doc = clean_article(original, doc_id="fuzz.txt", markdown=markdown)
    assert doc.title.strip()
    for line in doc.text.split("\n\n") if doc.text else []:
        assert line.lower() not in BOILERPLATE_LINES and not line.startswith("©")
    # Every character but the spaces that join lines or replace markup, and the ": " and "; " that
    # stand at a table's bars, is where the map says.
    for at, char in enumerate(doc.text):
        found = original[doc.original_offset(at)]
        assert char.isspace() or found == char or (char in ":;" and found == "|"), (at, doc.text, doc.segments)
    assert all(0 <= doc.original_offset(i) <= len(original) for i in range(0, len(doc.text) + 1, 7))


@FUZZ
@given(text=ODD_TEXT)
def test_dateline_parser_and_html_reader_accept_any_text(tally: Tally, text: str) -> None:
    tally.bad()
    dateline = parse_dateline(text)
    assert all(isinstance(part, str) for part in (dateline.place, dateline.date, dateline.agency))
    assert isinstance(html_to_text(f"<html><body><h1>{text}</h1><p>{text}</p></body></html>"), str)


@FUZZ
@given(place=st.from_regex(r"[A-Z][A-Z .'\-]{1,30}[A-Z]", fullmatch=True), day=st.integers(1, 31))
def test_any_well_formed_dateline_is_found(tally: Tally, place: str, day: int) -> None:
    tally.bad()
    assert parse_dateline(f"{place}, March {day}. /TASS/. Text follows.").date == f"March {day}"


@pytest.fixture(scope="module")
def bare_rag(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RAG]:
    """A RAG whose parts are never loaded: only its question check runs."""
    home = Path(tmp_path_factory.mktemp("fuzz")) / ".rag"
    rag = RAG(home=home, max_question_chars=200, ollama_host="http://127.0.0.1:9")
    yield rag
    assert not rag.loaded("embedder") and not rag.loaded("backend") and not rag.loaded("store")


@FUZZ
@given(question=st.text(st.characters(codec="utf-8") | st.characters(categories=["Cs", "Cc"]), max_size=400))
def test_question_check_refuses_or_returns_clean_text(tally: Tally, bare_rag: RAG, question: str) -> None:
    tally.bad()
    try:
        checked = bare_rag.check_question(question)
    except BadInput as exc:
        assert re.search(r"empty|limit", str(exc))
        return
    assert checked and checked == checked.strip() and len(checked) <= 200
    assert not UNPRINTABLE.search(checked)
    checked.encode("utf-8")  # no lone surrogates left for the tokenizer or the HTTP client
