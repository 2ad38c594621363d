"""Ingest: cleaning, chunking within the embedder's limit, incremental updates, model checks, bad files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SEEDS, make_rag

from rag import RAG, BadInput, StoreMismatch, documents
from rag.chunking import embed_text
from rag.documents import DATELINE, Dateline, clean_article, html_to_text, read_document
from rag.embeddings import model_limit, resolve_model_path
from rag.evidence import candidates
from rag.retrieve import Passage

CAPTION = "Russia's Foreign Minister Sergey Lavrov and his Japanese counterpart Fumio Kishida seen during talks"


def seed(name: str) -> Path:
    """The seed article whose file name starts with `name`."""
    return next(SEEDS.glob(f"{name}*"))


def test_news_page_boilerplate_is_dropped_and_caption_kept_once() -> None:
    doc = read_document(seed("002"), "002.txt", 10**7)
    assert "All news" not in doc.text
    assert "©" not in doc.text
    assert doc.text.count(CAPTION) == 1
    assert "Iikura guest house in Tokyo" in doc.text
    assert doc.title.startswith("Japan’s position on peace treaty")


def test_a_news_page_copied_into_a_text_file_loses_its_buttons_and_links() -> None:
    page = (
        "Skip to content\nFerry fares rise in spring\n4 min read\nShare\nSave\n"
        "Image source, Harbour Photos\nImage caption, The night ferry leaves Portvale\n"
        "A single ferry ticket will cost 4 crowns from May, the harbour office said.\n"
        "Sign up to our daily newsletter\nRelated topics\nPortvale\nMore on this story\n"
    )
    doc = clean_article(page, doc_id="fares.txt")
    assert doc.title == "Ferry fares rise in spring"
    assert doc.text.split("\n\n") == [
        "Image caption, The night ferry leaves Portvale",
        "A single ferry ticket will cost 4 crowns from May, the harbour office said.",
        "Portvale",
    ]


def test_a_wire_storys_credit_and_rights_lines_are_dropped() -> None:
    story = (
        "Tram line extended\n\nKYIV, Ukraine (AP) — The tram line reached the river.\n\n"
        "Reporting by Ana Lis in Kyiv; Editing by Tom Hale\n\nAdditional reporting by Ivo Sand\n\n"
        "Copyright 2024 The Associated Press. All rights reserved.\n\n© 2024 AFP\n\n"
        "Our Standards: The Thomson Reuters Trust Principles.\n\nCopyright law was not discussed.\n\n"
        "Reporting by Pieter de Vries; Editing by Mark Potter\n\nReporting by the council showed delays.\n\n"
        "(Reporting by Lena Berg; Editing by Ana Ruiz)\n"  # in brackets, as Reuters prints it
    )
    doc = clean_article(story, doc_id="tram.txt")
    assert doc.text.split("\n\n") == [
        "KYIV, Ukraine (AP) — The tram line reached the river.",
        "Copyright law was not discussed.",
        "Reporting by the council showed delays.",  # not names: a sentence of the story
    ]


def test_dateline_is_parsed_leniently_without_inventing_a_year() -> None:
    tokyo = read_document(seed("002"), "002.txt", 10**7).dateline
    assert (tokyo.place, tokyo.date, tokyo.agency) == ("TOKYO", "April 15", "TASS")
    misspelt = read_document(seed("004"), "004.txt", 10**7).dateline
    assert (misspelt.place, misspelt.date) == ("MOSXOW", "February 11")
    assert not re.search(r"\b\d{4}\b", str(misspelt))  # the article states no year
    assert read_document(seed("000"), "000.txt", 10**7).dateline.place == ""


# Made-up openings in each wire style, and the dateline each must give: no year unless one is printed.
WIRE_DATELINES = {
    "OSLO, May 4. /NTB/. The night ferry to the islands ran late again.": ("OSLO", "May 4", "NTB"),
    "LONDON (Reuters) - Tea auction prices rose for a third week.": ("LONDON", "", "Reuters"),
    "NEW YORK (AP) — A rare orchid bloomed in the botanical garden.": ("NEW YORK", "", "AP"),
    "RIO DE JANEIRO (Associated Press) – Samba schools began rehearsals.": ("RIO DE JANEIRO", "", "Associated Press"),
    "PARIS, March 3 (AFP) – The bakers' guild crowned a new champion.": ("PARIS", "March 3", "AFP"),
    "GENEVA, Jan. 9 (Kyodo) - Watchmakers reported record orders.": ("GENEVA", "Jan. 9", "Kyodo"),
    "BERLIN, October 12, 2021 (dpa) — A night train line reopened.": ("BERLIN", "October 12, 2021", "dpa"),
    "SEATTLE, June 2, 2019 (Associated Press) - The ferry fleet grew.": ("SEATTLE", "June 2, 2019", "Associated Press"),
    "SALEM, Ore. (AP) — The state fair opened early.": ("SALEM, Ore.", "", "AP"),
    "KYIV, Ukraine (AP) — The tram network was extended.": ("KYIV, Ukraine", "", "AP"),
    "DENVER, Colo. -- The tram network was extended.": ("DENVER, Colo.", "", ""),  # a newspaper's own story
    "BOSTON, March 3 — The ferry fleet grew.": ("BOSTON", "March 3", ""),
    "RIVERTON — The council voted to keep the ferry.": ("RIVERTON", "", ""),  # the place alone, a long dash
    # A press release's, as the wire services that carry them write it; a date day first.
    "NEW YORK, Dec. 5, 2026 /PRNewswire/ -- The ferry line opened.": ("NEW YORK", "Dec. 5, 2026", "PRNewswire"),
    "OSLO, Norway, Dec. 5, 2026 /PRNewswire/ -- The ferry line opened.": ("OSLO, Norway", "Dec. 5, 2026", "PRNewswire"),
    "SAN FRANCISCO--(BUSINESS WIRE)--The ferry line opened.": ("SAN FRANCISCO", "", "BUSINESS WIRE"),
    "OSLO, Norway, Dec. 5, 2026 (GLOBE NEWSWIRE) -- The ferry line opened.": (
        "OSLO, Norway",
        "Dec. 5, 2026",
        "GLOBE NEWSWIRE",
    ),
    "LONDON, 5 December (Reuters) - Tea auction prices rose.": ("LONDON", "5 December", "Reuters"),
    "OSLO/STOCKHOLM (Reuters) - Tea auction prices rose.": ("OSLO/STOCKHOLM", "", "Reuters"),  # two places
    "ST. PAUL -- The tram network was extended.": ("ST. PAUL", "", ""),
    # An agency's website writes the place as a name.
    "Paris (AFP) – The bakers' guild crowned a new champion.": ("Paris", "", "AFP"),
    "Berlin (dpa) - A night train line reopened.": ("Berlin", "", "dpa"),
    "Rio de Janeiro (Reuters) - Samba schools began rehearsals.": ("Rio de Janeiro", "", "Reuters"),
    "Tokyo, Dec. 4 (Jiji Press)--The ferry line opened.": ("Tokyo", "Dec. 4", "Jiji Press"),
    "Madrid, 4 Dec (EFE).- The ferry line opened.": ("Madrid", "4 Dec", "EFE"),
    # South Asian papers and wires, with a colon; a date and agency with no place, as UPI writes it.
    "NEW DELHI: The ferry line opened.": ("NEW DELHI", "", ""),
    "ISLAMABAD, Dec 4 (APP): The ferry line opened.": ("ISLAMABAD", "Dec 4", "APP"),
    "Dec. 4 (UPI) -- The ferry line opened.": ("", "Dec. 4", "UPI"),
    "(CNN) — The ferry line opened.": ("", "", "CNN"),  # the agency alone
    "TOKYO, Dec. 1 Kyodo - The ferry line opened.": ("TOKYO", "Dec. 1", "Kyodo"),  # no mark around it
}


@pytest.mark.parametrize(("opening", "expected"), WIRE_DATELINES.items())
def test_datelines_of_the_common_wire_styles_are_parsed(opening: str, expected: tuple[str, str, str]) -> None:
    doc = clean_article(f"A headline about something else\n\n{opening}\n\nMore text.", doc_id="wire.txt")
    assert doc.dateline == Dateline(*expected)
    if not re.search(r"\d{4}", opening):
        assert not re.search(r"\d{4}", str(doc.dateline))  # no year the article does not print
    stated = DATELINE.sub("", opening)  # the sentence without its dateline, as evidence counts its words
    assert opening.endswith(stated) and stated.startswith(("The ", "Tea ", "A ", "Samba ", "Watchmakers "))
    # Evidence reads the sentence without it, though "Ore." ends a sentence to the splitter.
    passage = Passage("wire.txt", "Wire", f"{opening} It was a Monday.", 0.1, 0, len(opening), similarity=0.5)
    assert candidates([passage])[0].text == stated


def test_an_article_without_a_dateline_has_an_empty_one() -> None:
    for opening in (
        "The night ferry to the islands ran late again on Sunday.",
        "Portvale (a small harbour town) - the ferry ran late.",  # no agency, and the story in lower case
        "OSLO, May 4. The ferry ran late.",  # a date but no agency
        "US-BASED ferries ran late.",  # capitals joined to a word by a hyphen
        "FILE - Ferries wait in the harbour, Jan. 12, 2025. (AP Photo/Ana Lis, File)",  # a photo caption
        "ANALYSIS - The ferry ran late.",  # the kind of story, not a place
        "ANALYSIS — The ferry ran late.",  # with a long dash too
        "FILE — Ferries wait in the harbour.",
        "RIVERTON - The ferry ran late.",  # a place alone needs a long dash
        "Ferries (left) - and the old tug - lay in the harbour.",  # a caption's note, the story lower case
        "NOTE: The ferry runs late in winter.",  # a label before a colon
        "Settings (Advanced): The port can be changed.",  # a name takes no colon
        "(Updated) The ferry ran late.",  # a note in brackets, no dash
        "OSLO, May 4 Police - the ferry ran late.",  # the story in lower case
        "(ferries) — the old tug lay in the harbour.",
    ):
        doc = clean_article(f"Ferry delays\n\n{opening}", doc_id="ferry.txt")
        assert doc.dateline == Dateline() and str(doc.dateline) == ""


def test_a_transcripts_speakers_are_no_dateline() -> None:
    # "HOST:" reads as a paper's "NEW DELHI:", but a dateline opens one paragraph, not every other.
    transcript = "Episode 12: Ferries\n\nHOST: Welcome to the show.\n\nANA LIND: Thanks. The ferry runs twice a day."
    assert clean_article(transcript, doc_id="show.txt").dateline == Dateline()
    assert clean_article("Ferries\n\nNEW DELHI: The ferry line opened.", doc_id="f.txt").dateline.place == "NEW DELHI"


def test_chunk_offsets_point_into_the_original_file(seeded_rag: RAG) -> None:
    nodes = seeded_rag.store.nodes()
    originals = {p.name: p.read_text(encoding="utf-8") for p in SEEDS.iterdir()}
    for node in nodes:
        meta = node.metadata
        original = originals[meta["doc_id"]]
        span = original[meta["start"] : meta["end"]]
        first_line = node.text.split("\n")[0]
        assert span.startswith(first_line[:40]), meta["doc_id"]


def test_no_chunk_exceeds_the_embedding_models_limit(seeded_rag: RAG) -> None:
    from transformers import AutoTokenizer

    # The model's own tokenizer, special tokens included: not the counter the chunker used.
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("all-MiniLM-L6-v2"))
    limit = model_limit(seeded_rag.embedder)
    assert limit == 256
    nodes = seeded_rag.store.nodes()
    assert len(nodes) >= 10
    longest = max(len(tokenizer(embed_text(n.metadata["title"], n.text))["input_ids"]) for n in nodes)
    assert longest <= limit


def test_every_chunk_carries_its_metadata(seeded_rag: RAG) -> None:
    for node in seeded_rag.store.nodes():
        meta = node.metadata
        assert meta["doc_id"] in {p.name for p in SEEDS.iterdir()}
        assert meta["title"] and meta["source"].endswith(meta["doc_id"])
        assert 0 <= meta["start"] < meta["end"]
        assert "dateline" in meta


def test_unchanged_articles_are_not_embedded_again(tmp_path: Path, corpus: Path) -> None:
    rag = make_rag(tmp_path / ".rag", corpus)
    first = rag.ingest([corpus])
    assert len(first.added) == 5 and first.chunks_written == first.chunks_total > 0
    second = rag.ingest([corpus])
    assert second.chunks_written == 0 and len(second.unchanged) == 5
    assert second.chunks_total == first.chunks_total
    assert second.seconds < 1.0


def test_changed_article_replaces_its_chunks_and_removed_article_loses_them(tmp_path: Path, corpus: Path) -> None:
    rag = make_rag(tmp_path / ".rag", corpus)
    rag.ingest([corpus])
    changed = corpus / "003_4d11091f11b44f0d.txt"
    changed.write_text(
        changed.read_text(encoding="utf-8") + "\n\nA new paragraph about Zanzibar trade.\n", encoding="utf-8"
    )
    (corpus / "000_2668febe4f0e43ad.txt").unlink()
    report = rag.ingest([corpus])
    assert report.updated == ("003_4d11091f11b44f0d.txt",)
    assert report.removed == ("000_2668febe4f0e43ad.txt",)
    docs = rag.store.documents()
    assert "000_2668febe4f0e43ad.txt" not in docs
    assert len(docs["003_4d11091f11b44f0d.txt"].content_hashes) == 1  # no old version left behind
    assert rag.retrieve("Zanzibar trade", k=1)[0].doc_id == "003_4d11091f11b44f0d.txt"


def test_opening_the_store_with_another_model_says_how_to_rebuild(tmp_path: Path, corpus: Path) -> None:
    make_rag(tmp_path / ".rag", corpus).ingest([corpus])
    # The same weights under another name: the store cannot know they match, so it must refuse.
    other = make_rag(tmp_path / ".rag", corpus, embed_model=resolve_model_path("all-MiniLM-L6-v2"))
    with pytest.raises(StoreMismatch, match="rag ingest --rebuild"):
        other.ingest([corpus])
    rebuilt = other.ingest([corpus], rebuild=True)
    assert len(rebuilt.added) == 5


def test_bad_files_are_skipped_with_a_warning_and_nothing_is_lost(tmp_path: Path, corpus: Path) -> None:
    rag = make_rag(tmp_path / ".rag", corpus)
    before = rag.ingest([corpus]).chunks_total
    (corpus / "empty.txt").write_text("")
    (corpus / "binary.txt").write_bytes(b"\x00\x01\x02PNG\x00" * 50)
    (corpus / "latin1.txt").write_bytes(
        "Caf\xe9 talks in Sapporo on fisheries.\n\nThe ministers met.".encode("latin-1")
    )
    # UTF-8 with one stray byte keeps its own accents; only the stray byte is replaced.
    (corpus / "stray.txt").write_bytes("Naïve ferry talks in Sapporo.\n\nThe ministers met.".encode() + b"\xff")
    (corpus / "notes.docx").write_bytes(b"PK\x03\x04")
    report = rag.ingest([corpus])
    skipped = {Path(s.path).name: s.reason for s in report.skipped}
    assert "empty" in skipped["empty.txt"]
    assert "binary" in skipped["binary.txt"]
    assert "unsupported" in skipped["notes.docx"]
    assert sorted(report.added) == ["latin1.txt", "stray.txt"]  # neither article is lost
    titles = {doc.doc_id: doc.title for doc in rag.documents()}
    assert titles["latin1.txt"] == "Café talks in Sapporo on fisheries."  # no UTF-8: read as Windows-1252
    assert titles["stray.txt"] == "Naïve ferry talks in Sapporo."
    assert report.chunks_total > before
    assert len(report.unchanged) == 5


def test_a_pages_story_is_read_whatever_article_comes_first_and_an_faqs_every_entry_apart() -> None:
    teaser_first = (
        "<html><body><div class='top'><article><h2>Ferry fares rise</h2><p>Fares go up in May.</p></article></div>"
        "<main><article><h1>New pier opens in Portvale</h1><p>The new pier opened on Monday after two years of "
        "work.</p><p>It cost 4 million crowns and can berth three ferries.</p></article></main></body></html>"
    )
    assert html_to_text(teaser_first).split("\n") == [
        "New pier opens in Portvale",
        "The new pier opened on Monday after two years of work.",
        "It cost 4 million crowns and can berth three ferries.",
    ]
    entries = [("When do we meet?", "Every Tuesday at 7pm."), ("How much is membership?", "It costs 20 pounds a year.")]
    faq = "<html><body><h1>Club FAQ</h1>" + "".join(f"<article><h2>{q}</h2><p>{a}</p></article>" for q, a in entries)
    assert html_to_text(faq + "</body></html>").split("\n") == ["Club FAQ", *(line for e in entries for line in e)]
    # An FAQ's folded answers: the question a line, its answer another, not glued ("…bike?Riders…").
    folded = "".join(f"<details><summary>{q}</summary>{a}</details>" for q, a in entries)
    assert html_to_text(f"<html><body><h1>Club FAQ</h1>{folded}</body></html>").split("\n") == [
        "Club FAQ",
        *(line for e in entries for line in e),
    ]


def test_a_markdown_files_code_footnotes_and_html_read_as_it_shows_them(tmp_path: Path) -> None:
    readme = (
        "Heron\n=====\n\nInstall it with pip:\n\n```sh\npip install heron\nheron init\n```\n\n"
        "Heron was written by Mia Storm[^1] under the <b>MIT</b> licence.\n\n"
        "[^1]: Mia Storm also maintains the Egret app.\n[egret]: https://example.org/egret\n"
    )
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    doc = read_document(tmp_path / "README.md", "README.md", 10**7)
    lines = doc.text.split("\n\n")
    assert lines == [
        "Install it with pip:",
        "pip install heron",  # a command a line, not "pip install heron heron init"
        "heron init",
        "Heron was written by Mia Storm under the MIT licence.",
        "Mia Storm also maintains the Egret app.",  # a footnote's text is text; a link's address is not
    ], lines
    at = doc.text.index("MIT licence")
    assert readme[doc.original_offset(at) :].startswith("MIT</b> licence")


def test_a_hard_wrapped_files_sentences_are_whole_where_a_line_breaks_before_a_name() -> None:
    report = (
        "Harbour report\n\n"
        "The harbour master met the harbour staff and the town's new mayor, Ida\n"
        "Berg, on Monday to discuss the new pier, which will cost 4 million crowns\n"
        "and open in June. Work on the foundations starts in March, said the\n"
        "Portvale harbour office. The ferry company said that the island of\n"
        "Skarholm would get two more sailings a day from the summer timetable.\n\n"
        "Fares rise by 5 percent.\n"
    )
    rows = "Q1 2025 280,000 tonnes 71,000 passengers 4.1 million crowns\nQ2 2025 310,000 tonnes 84,000 passengers\n"
    text = clean_article(report + "\n" + rows, doc_id="report.txt").text
    assert "said the Portvale harbour office." in text and "the island of Skarholm would" in text, text
    assert text.endswith("\n\n".join(rows.split("\n")).strip()), text  # a table's rows are not wrapped prose
    # Lines that do not fill the file's width stay apart: a page's caption, then its story.
    page = "Ferry fares rise\nImage caption, The night ferry leaves Portvale\nA ticket will cost 4 crowns from May.\n"
    assert (
        clean_article(page, doc_id="fares.txt").text.split("\n\n")[0]
        == "Image caption, The night ferry leaves Portvale"
    )


def test_a_page_is_read_in_the_encoding_it_declares(tmp_path: Path) -> None:
    folder = tmp_path / "pages"
    folder.mkdir()
    page = '<html><head><meta charset="windows-1251"><title>x</title></head><body><h1>Паром в Ольхон</h1>'
    page += "<p>Паром ходит дважды в день с мая по октябрь.</p></body></html>"
    (folder / "ferry.html").write_bytes(page.encode("cp1251"))
    rag = make_rag(tmp_path / ".rag", folder)
    assert rag.ingest([folder]).added == ("ferry.html",)
    assert [doc.title for doc in rag.documents()] == ["Паром в Ольхон"]


def test_a_file_that_starts_with_its_text_keeps_its_first_paragraph(tmp_path: Path) -> None:
    text = (
        "The harbour trust handled 1.2 million tonnes of cargo in 2025, up from 1.05 million the year before. "
        "Most of the rise came from timber.\n\nPassenger numbers on the island ferry fell by 4 percent.\n"
    )
    rag = one_file_store(tmp_path, "cargo.txt", text)
    assert [doc.title for doc in rag.documents()] == ["cargo.txt"]  # no headline: the file's name
    answer = rag.ask("How much cargo did the harbour trust handle in 2025?")
    assert not answer.abstained and "1.2 million tonnes" in answer.text, answer.text


def test_a_plain_texts_underlines_and_rules_are_not_read_as_its_text() -> None:
    underlined = (
        "Parish news\n-----------\nThe church hall reopens on Sunday.\n\n* * *\n\nThe choir meets on Thursdays.\n"
    )
    doc = clean_article(underlined, doc_id="parish.txt")
    # The underline's last dash once joined it to the next line: "----------- The church hall …".
    assert doc.title == "Parish news"
    assert doc.text == "The church hall reopens on Sunday.\n\nThe choir meets on Thursdays.", doc.text


def test_an_email_saved_as_text_is_titled_by_its_subject_and_keeps_its_sender() -> None:
    mail = (
        "From: Ana Lis <ana.lis@harbour.example>\nTo: Harbour staff <staff@harbour.example>\n"
        "Date: Mon, 2 Nov 2026 09:14:00 +0100\nSubject: Pier closure next week\n\nHi all,\n\n"
        "The north pier will be closed from Tuesday while divers inspect the piles.\n"
    )
    doc = clean_article(mail, doc_id="mail.txt")
    assert doc.title == "Pier closure next week"
    assert doc.text.startswith("From: Ana Lis <ana.lis@harbour.example>\n\nTo: Harbour staff"), doc.text


def test_a_press_releases_release_note_is_not_its_title() -> None:
    release = (
        "FOR IMMEDIATE RELEASE\n\nHarbour museum opens a boatbuilding gallery\n\n"
        "KESTREL BAY, 2 June 2026 — The harbour museum will open a gallery of wooden boats on Saturday.\n"
    )
    doc = clean_article(release, doc_id="release.txt")
    assert doc.title == "Harbour museum opens a boatbuilding gallery"
    assert doc.text.startswith("KESTREL BAY, 2 June 2026 — The harbour museum"), doc.text
    embargoed = clean_article(f"Embargoed until 00:01 BST, 2 June 2026\n\n{release}", doc_id="release.txt")
    assert embargoed.title == doc.title and embargoed.text == doc.text


def test_a_file_notepad_saved_as_unicode_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    note = "Ferry fares rise\r\n\r\nA single ticket will cost 4 crowns from May, the harbour office said.\r\n"
    (folder / "fares.txt").write_bytes(note.encode("utf-16"))  # with its byte-order mark, as Notepad writes it
    rag = make_rag(tmp_path / ".rag", folder)
    assert rag.ingest([folder]).added == ("fares.txt",)
    answer = rag.ask("How much will a single ticket cost?")
    assert not answer.abstained and "4 crowns" in answer.text, answer.text


def test_a_file_that_became_unreadable_keeps_its_chunks(tmp_path: Path, corpus: Path) -> None:
    rag = make_rag(tmp_path / ".rag", corpus)
    rag.ingest([corpus])
    (corpus / "001_30c8c805c44e246e.txt").write_text("")
    report = rag.ingest([corpus])
    assert report.removed == ()
    assert "001_30c8c805c44e246e.txt" in rag.store.documents()


def test_missing_path_is_an_error(tmp_path: Path, corpus: Path) -> None:
    rag = make_rag(tmp_path / ".rag", corpus)
    with pytest.raises(BadInput, match="no such file"):
        rag.ingest([tmp_path / "nowhere"])


def run_cli(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess:
    """Run `python -m rag` with a store under `home` and no Ollama."""
    env = {**os.environ, "RAG_HOME": str(home), "RAG_OLLAMA_HOST": "http://127.0.0.1:9", "RAG_BACKEND": "embedded"}
    return subprocess.run(
        [sys.executable, "-m", "rag", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def test_cli_ingest_prints_a_summary_and_fails_cleanly_on_a_missing_path(tmp_path: Path, corpus: Path) -> None:
    done = run_cli("ingest", str(corpus), home=tmp_path / ".rag", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "5 added" in done.stdout and "chunks written" in done.stdout
    again = run_cli("ingest", str(corpus), home=tmp_path / ".rag", cwd=tmp_path)
    assert "5 unchanged" in again.stdout and "0 chunks written" in again.stdout
    missing = run_cli("ingest", str(tmp_path / "nope"), home=tmp_path / ".rag", cwd=tmp_path)
    assert missing.returncode == 2
    assert "Error: no such file or folder" in missing.stderr
    assert "Traceback" not in missing.stderr
    # A file it cannot read is named once, with the reason, after the progress bar.
    (corpus / "notes.docx").write_bytes(b"PK\x03\x04")
    skipping = run_cli("ingest", str(corpus), home=tmp_path / ".rag", cwd=tmp_path)
    assert skipping.returncode == 0 and "1 skipped" in skipping.stdout
    assert skipping.stderr.count("notes.docx") == 1 and "Warning: skipped" in skipping.stderr, skipping.stderr


def test_cli_info_reports_the_store_without_loading_the_language_model(tmp_path: Path, corpus: Path) -> None:
    run_cli("ingest", str(corpus), home=tmp_path / ".rag", cwd=tmp_path)
    done = run_cli("info", home=tmp_path / ".rag", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "documents: 5" in done.stdout and "embedded" in done.stdout


def test_cleaner_keeps_plain_articles_whole() -> None:
    doc = clean_article("Title line\n\nBody sentence one. Body sentence two.", doc_id="x.txt")
    assert doc.title == "Title line"
    assert doc.text == "Body sentence one. Body sentence two."
    assert json.dumps(str(doc.dateline)) == '""'


def write_pdf(path: Path, lines: list[str]) -> None:
    """A real one-page PDF with text, written by matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8.5, 11))
    for i, line in enumerate(lines):
        fig.text(0.05, 0.95 - i * 0.04, line, fontsize=10)
    fig.savefig(path, format="pdf")
    plt.close(fig)


def one_file_store(tmp_path: Path, name: str, text: str) -> RAG:
    """A store holding one file written with this text."""
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / name).write_text(text, encoding="utf-8")
    rag = make_rag(tmp_path / ".rag", folder)
    rag.ingest([folder])
    return rag


WIKI_PASTE = """Marsh harrier

The marsh harrier is a bird of prey of wetlands.[1] It is about 50 cm long, with a wingspan of 120 cm.[2][3] \
Most birds of the north winter in Africa,[4] a few in southern Spain.[citation needed]
"""


def test_a_wikis_reference_marks_are_dropped_so_its_sentences_end_where_they_do(tmp_path: Path) -> None:
    for name in ("harrier.txt", "harrier.md"):
        document = clean_article(WIKI_PASTE, doc_id=name, markdown=name.endswith(".md"))
        assert "[" not in document.text and "wetlands. It is about 50 cm long" in document.text
        for at, char in enumerate(document.text):
            assert char.isspace() or WIKI_PASTE[document.original_offset(at)] == char
    answer = one_file_store(tmp_path, "harrier.txt", WIKI_PASTE).ask("How long is the marsh harrier?")
    assert answer.evidence[0].text == "It is about 50 cm long, with a wingspan of 120 cm.", answer.evidence[0].text
    assert answer.text == "“It is about 50 cm long, with a wingspan of 120 cm.” [1]", answer.text


REPORT_PAGES = [
    ["Annual report of the harbour trust", "The harbour trust was founded in 1911 by four ﬁshing families."],
    ["The trust employs 58 people.", "The board approved a budget of 3.4 million crowns for dredging the"],
    ["inner basin, which will take place in the spring.", "Fees for pleasure boats rose by 6 percent."],
]


def test_a_pdfs_running_header_footer_and_page_numbers_are_not_read_as_its_text(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    folder = tmp_path / "report"
    folder.mkdir()
    with PdfPages(folder / "report.pdf") as pdf:
        for number, lines in enumerate(REPORT_PAGES, start=1):
            fig = plt.figure(figsize=(8.5, 11))
            fig.text(0.05, 0.97, "Harbour Trust - Annual Report 2023", fontsize=8)
            for i, line in enumerate(lines):
                fig.text(0.05, 0.9 - i * 0.04, line, fontsize=10)
            fig.text(0.45, 0.03, f"Page {number} of {len(REPORT_PAGES)}", fontsize=8)
            pdf.savefig(fig)
            plt.close(fig)
    document = read_document(folder / "report.pdf", "report.pdf", 10**6)
    assert document.title == "Annual report of the harbour trust"
    # Typeset ligatures are read as their letters, so "ﬁshing" is "fishing" to a question's words.
    assert "ﬁ" in REPORT_PAGES[0][1] and "four fishing families" in document.text
    # The sentence cut by the page break is whole again.
    assert document.text.split("\n\n") == [
        "The harbour trust was founded in 1911 by four fishing families.",
        "The trust employs 58 people.",
        "The board approved a budget of 3.4 million crowns for dredging the inner basin, "
        "which will take place in the spring.",
        "Fees for pleasure boats rose by 6 percent.",
    ]


def test_a_reports_contents_are_not_read_as_its_text_and_a_year_alone_is_no_page_number(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    lines = ["Harbour trust annual report", "2025", "1. Cargo .................... 2", "2. Finances . . . . . . . . 3"]
    write_pdf(path, [*lines, "Cargo", "The trust handled 1.2 million tonnes of cargo."])
    document = read_document(path, "report.pdf", 10**6)
    assert document.text.split("\n\n") == ["2025", "Cargo", "The trust handled 1.2 million tonnes of cargo."]


def test_what_a_browser_prints_on_a_page_saved_as_pdf_is_not_read_as_its_text(tmp_path: Path) -> None:
    # A web page saved as PDF: the browser prints the time and the page's title at the top of each
    # page, its address and the page count at the bottom. One page does not repeat them.
    path = tmp_path / "saved.pdf"
    lines = ["12/7/26, 6:42 AM Harbour trust history", "The harbour trust", "It was founded in 1911."]
    write_pdf(path, [*lines, *[""] * 18, "https://example.org/trust/history 1/1"])
    document = read_document(path, "saved.pdf", 10**6)
    assert document.title == "The harbour trust" and document.text == "It was founded in 1911.", document.text


HARBOUR_PAGE = """<html><head><title>Harbour news</title></head><body>
<h1>The harbour trust</h1>
<p>The <a href="/trust">harbour trust</a> was founded in 1911
by <em>four fishing families</em>.</p>
<ul><li>It owns the quays and the <b>old net loft</b>.</li></ul>
</body></html>"""


def test_a_pages_furniture_is_not_read_as_its_text() -> None:
    page = (
        '<body><div id="cookie-consent">We use cookies. <button>Accept all</button></div>'
        "<h1>Night ferry returns</h1>"
        '<div class="article-share"><a>Share on Facebook</a><a>Email</a></div>'
        '<div class="story-body commentary"><p>The night ferry to the islands runs again from May.</p>'
        "<aside><h3>Related stories</h3><a>Fares rise again</a></aside>"
        '<div class="related-links"><a>Why ferries are back</a></div>'
        "<p>Tickets go on sale in April.</p></div></body>"
    )
    assert html_to_text(page).splitlines() == [
        "Night ferry returns",
        "The night ferry to the islands runs again from May.",
        "Tickets go on sale in April.",
    ]


def test_an_encyclopedia_pages_menus_contents_references_and_footer_are_not_its_text() -> None:
    # A saved encyclopedia page: its site menu, list of contents, numbered references and footer
    # were read as sentences; "Harbour Board (1990). Annual Report." answered when the light was
    # demolished.
    page = (
        '<body><div id="mw-navigation"><a>Main page</a> <a>Random article</a></div>'
        '<div id="content"><h1>Skerrow Light</h1><p>The light was first lit in 1852 and automated in 1989.</p>'
        '<div id="toc"><h2>Contents</h2><ul><li>1 History</li></ul></div>'
        "<h2>History</h2><p>Its first keepers were two brothers from the island.</p>"
        '<ol class="references"><li>^ Harbour Board (1990). <i>Annual Report</i>.</li></ol></div>'
        '<div id="footer">This page was last edited on 3 May 2024.</div></body>'
    )
    assert html_to_text(page).splitlines() == [
        "Skerrow Light",
        "The light was first lit in 1852 and automated in 1989.",
        "History",
        "Its first keepers were two brothers from the island.",
    ]


def test_an_articles_own_header_is_read_and_the_sites_is_not() -> None:
    # A news page marks its headline and byline with the article's <header>, and its site's name and
    # menus with the page's: the first was dropped with the second, and the title read from <title>,
    # site name and all.
    page = (
        "<html><head><title>Ferry crews end strike | Harbour Courier</title></head><body>"
        "<header><a>Harbour Courier</a><nav><a>News</a><a>Sport</a></nav></header>"
        "<main><article><header><h1>Ferry crews end their strike</h1><p>By Ana Lis</p></header>"
        "<p>RIVERTON – The ferry crews ended a two-day strike on Wednesday after a pay deal.</p></article></main>"
        "<footer>© Harbour Courier</footer></body></html>"
    )
    assert html_to_text(page).splitlines() == [
        "Ferry crews end their strike",
        "By Ana Lis",
        "RIVERTON – The ferry crews ended a two-day strike on Wednesday after a pay deal.",
    ]
    # Without a headline in the text, the <title> is read without the site's name after it.
    untitled = page.replace("<h1>Ferry crews end their strike</h1>", "")
    assert html_to_text(untitled).splitlines()[0] == "Ferry crews end strike"


def test_a_pages_authors_in_its_linked_data_are_its_byline() -> None:
    # A news page may name its authors only in its schema.org data, in a script the reader drops.
    data = '{"@type": "NewsArticle", "author": [{"@type": "Person", "name": "Ana Lis"}, {"name": "Tom Hale"}]}'
    page = (
        f'<html><head><script type="application/ld+json">{data}</script></head><body>'
        "<h1>Ferry crews end their strike</h1><p>The ferry crews ended a two-day strike on Wednesday.</p></body></html>"
    )
    assert html_to_text(page).splitlines()[:2] == ["Ferry crews end their strike", "By Ana Lis and Tom Hale"]
    # Broken or absurdly nested data names no one, and the page is read all the same.
    for broken in ('{"author": ', "[" * 100_000):
        lines = html_to_text(page.replace(data, broken)).splitlines()
        assert lines == ["Ferry crews end their strike", "The ferry crews ended a two-day strike on Wednesday."]


def test_a_link_or_emphasis_inside_an_html_sentence_leaves_it_whole(tmp_path: Path) -> None:
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "trust.html").write_text(HARBOUR_PAGE, encoding="utf-8")
    (folder / "note.md").write_text("# Quay repairs\n\nThe north quay is repaired each spring.\n", encoding="utf-8")
    document = read_document(folder / "trust.html", "trust.html", 10**6)
    assert document.title == "The harbour trust"
    assert document.text.split("\n\n") == [
        "The harbour trust was founded in 1911 by four fishing families.",  # one line, as the page shows it
        "It owns the quays and the old net loft.",
    ]
    rag = make_rag(tmp_path / ".rag", folder)
    rag.ingest([folder])
    answer = rag.ask("When was the harbour trust founded?")
    assert answer.text == "1911 [1]." and answer.evidence[0].text == document.text.split("\n\n")[0]
    # A new way of reading one type of file reads those files again, and no other.
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(documents.READER_VERSIONS, ".html", "next")
        report = rag.ingest([folder])
    assert report.updated == ("trust.html",) and report.unchanged == ("note.md",)


FERRY_GUIDE = """# Using the ferry app

The **ferry app** shows departures from [Vesterby harbour](https://example.org/harbour) every *ten* minutes.

- Tickets cost `12 kroner` for adults.
- Children under [twelve](#kids) travel free.

Night ferries are listed in the [timetable][1] of the harbour office.

[1]: https://example.org/timetable
"""


WRAPPED = [
    "Harbour report 2025",
    "The harbour trust was founded in 1911 by four fishing",
    "families who wanted a breakwater of their own. It is run",
    "by an elected board of nine and owns the quays.",
]


def test_prose_wrapped_over_lines_is_read_as_whole_sentences_in_pdf_text_and_markdown(tmp_path: Path) -> None:
    folder = tmp_path / "wrapped"
    folder.mkdir()
    write_pdf(folder / "report.pdf", WRAPPED)
    (folder / "report.txt").write_text("\n".join(WRAPPED) + "\n", encoding="utf-8")
    (folder / "report.md").write_text("# " + "\n".join(WRAPPED) + "\n\n- First item\n- second item\n", encoding="utf-8")
    whole = " ".join(WRAPPED[1:])
    for name in ("report.pdf", "report.txt"):
        document = read_document(folder / name, name, 10**6)
        assert document.title == WRAPPED[0] and document.text == whole, name
    # In Markdown a heading or a list item starts anew, whatever its case.
    markdown = read_document(folder / "report.md", "report.md", 10**6)
    assert markdown.text.split("\n\n") == [whole, "First item", "second item"]
    # The sentence that runs over two lines is the evidence, its offsets spanning both in the file.
    rag = make_rag(tmp_path / ".rag", folder)
    rag.ingest([folder])
    answer = rag.ask("When was the harbour trust founded?", where="report.txt")
    sentence = "The harbour trust was founded in 1911 by four fishing families who wanted a breakwater of their own."
    assert answer.text == "1911 [1]." and answer.evidence[0].text == sentence
    original = (folder / "report.txt").read_text(encoding="utf-8")
    assert " ".join(original[answer.evidence[0].start : answer.evidence[0].end].split()) == sentence


def test_a_markdown_line_after_a_hard_break_or_opening_with_a_bold_label_is_a_line_of_its_own() -> None:
    # "**Date:** …" then "**Time:** …" were one paragraph, so the date was no field of its own.
    original = (
        "# Road closure on Mill Lane\n\n**Date:** Monday 3 May 2027\n**Time**: 8 a.m. to 6 p.m.\n\n"
        "The lane is closed for resurfacing,  \r\nand buses will stop on Quay Street\ninstead of the lane.\n\n"
        "Contact: Ada Park  \nPhone: 0800 555 0100\n"
    )
    document = clean_article(original, doc_id="closure.md", markdown=True)
    assert document.text.split("\n\n") == [
        "Date: Monday 3 May 2027",
        "Time: 8 a.m. to 6 p.m.",
        "The lane is closed for resurfacing, and buses will stop on Quay Street instead of the lane.",
        "Contact: Ada Park",  # a hard break: a line of its own
        "Phone: 0800 555 0100",
    ]


def test_a_word_the_layout_hyphenated_over_two_lines_is_read_whole() -> None:
    original = (
        "Harbour desk\n\nThe infor-\nmation desk opened on Monday, a well-\nknown spot.\n"
        "The information desk is small, a well-known fact.\nA rare hyphen-\nation stays as printed.\n"
    )
    document = clean_article(original, doc_id="desk.txt")
    assert document.text.split("\n\n") == [
        "The information desk opened on Monday, a well-known spot.",  # the file says "information" elsewhere
        "The information desk is small, a well-known fact.",
        "A rare hyphen-ation stays as printed.",  # a word the file never writes whole keeps its hyphen
    ]
    assert all(c.isspace() or original[document.original_offset(i)] == c for i, c in enumerate(document.text))


def test_a_dateline_that_ends_its_line_with_a_dash_is_joined_to_the_story_with_its_space() -> None:
    original = "Ship sinks near port\n\nLONDON (Reuters) -\nThe ship sank on Monday, a well-\nknown spokesman said.\n"
    document = clean_article(original, doc_id="ship.txt")
    assert document.text == "LONDON (Reuters) - The ship sank on Monday, a well-known spokesman said."
    assert (document.dateline.place, document.dateline.agency) == ("LONDON", "Reuters")


def test_markdown_lines_that_say_nothing_are_dropped_and_stray_stars_kept() -> None:
    original = "# Setup\n\n```sh\npip install tern\n```\n\n---\n\nA * B * C, snake_case and 2*3 stay.\n[x]: http://x\n"
    document = clean_article(original, doc_id="setup.md", markdown=True)
    assert document.text.split("\n\n") == ["pip install tern", "A * B * C, snake_case and 2*3 stay."]
    # The same file read as plain text keeps every line.
    assert "```sh" in clean_article(original, doc_id="setup.txt").text


def test_the_level_of_each_heading_a_file_marks_is_kept() -> None:
    notes = "Tern\n====\n\nIt logs tides.\n\nInstall\n-------\n\nRun pip.\n\n### On macOS\n\nUse brew.\n\n## Usage\n\nRun it.\n"
    document = clean_article(notes, doc_id="tern.md", markdown=True)
    assert document.title == "Tern"
    assert document.heading_levels == (("Install", 2), ("On macOS", 3), ("Usage", 2))
    # A list item, a table row or a paragraph above a rule is no heading; a rule after a blank line neither.
    assert clean_article("Intro\n\n- item one\n---\n\ntext\n\n---\n", doc_id="r.md", markdown=True).heading_levels == ()
    page = "<h1>Tern</h1><p>It logs tides.</p><h2>Install</h2><h3>On <em>macOS</em></h3><p>Use brew.</p>"
    assert read_html(page).heading_levels == (("Install", 2), ("On macOS", 3))
    # Plain text marks none: its headings' levels are guessed.
    assert clean_article(notes.replace("#", ""), doc_id="tern.txt").heading_levels == ()


def read_html(page: str) -> documents.Document:
    text, levels = documents.html_text(page)
    return clean_article(text, doc_id="tern.html", heading_levels=levels)


def test_a_static_sites_front_matter_gives_the_title_and_is_not_read_as_text() -> None:
    page = '---\ntitle: "Tide logger"\ndate: 2024-01-02\n---\n\nThe logger reads the tide every ten minutes.\n'
    document = clean_article(page, doc_id="logger.md", markdown=True)
    assert (document.title, document.text) == ("Tide logger", "The logger reads the tide every ten minutes.")
    toml = '+++\ntitle = "Tide logger"\n+++\n# Tide logger\n\nIt runs on batteries.\n'
    assert clean_article(toml, doc_id="logger.md", markdown=True).text == "It runs on batteries."
    # A file that opens with a rule and text is not taken for settings.
    ruled = clean_article("---\n\nTide logger\n\n---\n\nIt runs on batteries.\n", doc_id="r.md", markdown=True)
    assert (ruled.title, ruled.text) == ("Tide logger", "It runs on batteries.")


def test_markdown_is_read_as_the_text_it_shows_with_offsets_into_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "guide"
    folder.mkdir()
    (folder / "ferry.md").write_text(FERRY_GUIDE, encoding="utf-8")
    document = read_document(folder / "ferry.md", "ferry.md", 10**6)
    assert document.title == "Using the ferry app"
    assert document.text.split("\n\n") == [
        "The ferry app shows departures from Vesterby harbour every ten minutes.",
        "Tickets cost 12 kroner for adults.",
        "Children under twelve travel free.",
        "Night ferries are listed in the timetable of the harbour office.",  # its link defined nowhere else
    ]
    rag = make_rag(tmp_path / ".rag", folder)
    rag.ingest([folder])
    # The reference link's "[1]" is not quoted as if it were a citation, and the evidence's
    # offsets still point at the sentence, markup and all, in the file.
    answer = rag.ask("What lists the night ferries?")
    assert answer.text == "“Night ferries are listed in the timetable of the harbour office.” [1]", answer.text
    evidence = answer.evidence[0]
    assert (
        FERRY_GUIDE[evidence.start : evidence.end]
        == "Night ferries are listed in the [timetable][1] of the harbour office."
    )
    cost = rag.ask("How much do tickets cost for adults?")
    assert cost.text == "12 kroner [1]." and FERRY_GUIDE[cost.evidence[0].start : cost.evidence[0].end] == (
        "Tickets cost `12 kroner` for adults."
    )


TIDE_LOGGER = """# Configuring the tide logger

Settings live in a file beside the logger.

| Setting | **Default** | Meaning |
|---------|:-----------:|---------|
| `interval` | 10 | Minutes between two readings |
| `keep` | 90 | Days a reading is kept before it is deleted |

Readings are sent to the harbour office every night.
"""


def test_a_table_row_is_read_with_its_column_names_in_markdown_and_html_and_a_term_with_its_definition(
    tmp_path: Path,
) -> None:
    document = clean_article(TIDE_LOGGER, doc_id="logger.md", markdown=True)
    assert document.text.split("\n\n") == [
        "Settings live in a file beside the logger.",
        "Setting: interval; Default: 10; Meaning: Minutes between two readings",
        "Setting: keep; Default: 90; Meaning: Days a reading is kept before it is deleted",
        "Readings are sent to the harbour office every night.",
    ]
    # Every word is where the map says, a column's name in the header row; ": " and "; " stand at bars.
    for at, char in enumerate(document.text):
        found = TIDE_LOGGER[document.original_offset(at)]
        assert char.isspace() or found == char or (char in ":;" and found == "|"), (at, char, found)
    # Without the outer bars, and a page's table, read the same way.
    bare = clean_article("Logger\n\nSetting | Default\n--- | ---\n`keep` | 90\n", doc_id="b.md", markdown=True)
    assert bare.text == "Setting: keep; Default: 90"
    page = "<h1>Logger</h1><table><tr><th>Setting</th><th>Default</th></tr><tr><td>keep</td><td>90</td></tr></table>"
    assert html_to_text(page).splitlines() == ["Logger", "Setting: keep; Default: 90"]
    # A table whose rows are named by their first cell, under a title spanning it, reads each row by its name.
    facts = "<h1>Logger</h1><table><tr><th colspan=2>Logger</th></tr><tr><th>Weight</th><td>2 kg</td></tr></table>"
    assert html_to_text(facts).splitlines() == ["Logger", "Logger", "Weight: 2 kg"]
    # A layout table, whose cells hold paragraphs, is read as the paragraphs.
    layout = "<h1>Logger</h1><table><tr><td><p>It logs tides.</p><p>It runs on batteries.</p></td></tr></table>"
    assert html_to_text(layout).splitlines() == ["Logger", "It logs tides.", "It runs on batteries."]
    glossary = "<h1>Logger</h1><dl><dt>keep</dt><dd>Days a <b>reading</b> is kept.</dd></dl>"
    assert html_to_text(glossary).splitlines() == ["Logger", "keep: Days a reading is kept."]
    # An FAQ's question is not glued to its reply as a term to its definition: it stays a line.
    faq = "<h1>Logger</h1><dl><dt>Can it log rain?</dt><dd>Yes. Add the rain gauge.</dd></dl>"
    assert html_to_text(faq).splitlines() == ["Logger", "Can it log rain?", "Yes. Add the rain gauge."]
    # Asked in the column's words, the row answers, and its offsets span it in the file.
    rag = one_file_store(tmp_path, "logger.md", TIDE_LOGGER)
    answer = rag.ask("How many minutes are there between two readings by default?")
    evidence = answer.evidence[0]
    assert answer.text == "10 [1].", answer.text
    assert evidence.text == "Setting: interval; Default: 10; Meaning: Minutes between two readings"
    assert TIDE_LOGGER[evidence.start : evidence.end].endswith("Minutes between two readings")
    quoted = rag.ask("What is the default setting for keep?")
    assert quoted.text.startswith("“Setting: keep; Default: 90;") and quoted.text.endswith("[1]"), quoted.text


def test_markdown_html_and_pdf_articles_are_read(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "note.md").write_text("# Fisheries talks in Sapporo\n\nThe **fisheries** talks ended in Sapporo.\n")
    (folder / "page.html").write_text(
        "<html><head><title>Site</title><script>var tracking = 1;</script></head><body><nav>Home | All news</nav>"
        "<article><h1>Ferry link to Sakhalin</h1><p>A ferry link to Sakhalin reopened in May.</p></article></body></html>"
    )
    write_pdf(folder / "report.pdf", ["Hokkaido fishermen report", "Crab quotas near Kunashir were cut."])
    rag = make_rag(tmp_path / ".rag", folder)
    report = rag.ingest([folder])
    assert sorted(report.added) == ["note.md", "page.html", "report.pdf"], report.skipped
    docs = rag.store.documents()
    assert docs["note.md"].title == "Fisheries talks in Sapporo"
    assert docs["page.html"].title == "Ferry link to Sakhalin"
    assert rag.retrieve("crab quotas Kunashir", k=1)[0].doc_id == "report.pdf"
    assert all("tracking" not in n.text for n in rag.store.nodes())
