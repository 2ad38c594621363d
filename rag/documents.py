"""Find, read and clean articles: files in, `Document`s out.

Scraped news pages carry boilerplate that LlamaIndex's readers keep: the "All news" link, the
photo caption printed twice (once with the credit glued on), "©" credit lines. This module drops
those lines, takes the headline as title and parses the dateline into place, date text and agency,
without ever adding a year the article does not state. The wire styles read are
"OSLO, May 4. /NTB/.", "LONDON (Reuters) -" and "PARIS, March 3, 2021 (AFP) –" (a hyphen,
en dash or em dash), a newspaper's "DENVER, Colo. — " and an agency website's "Paris (AFP) –";
any other opening leaves the dateline empty. The place must be in capitals, as wire services
print it ("RIO DE JANEIRO"), unless an agency in brackets follows it: a capitalised first word
of an ordinary sentence is not mistaken for one.
A Markdown file is read as the text it shows: heading marks, list bullets and quote marks at a
line's start, emphasis and code marks, and link targets go, and a link's reference definition is
no text at all, nor are code fences, rules and a table's separator row; "[1]" of a reference link would otherwise be quoted as if it were a citation.
A line wrapped by the file's width (a PDF's layout, a hard-wrapped text) goes on its paragraph,
so that a sentence is not cut at a line's end (`wrapped`).
The cleaned text keeps a map back to the original, so every chunk knows its character offsets.
Not handled: multi-column PDFs, pages that need JavaScript, text in images, nested Markdown markup
("[**a**](b)" keeps its "**") and a Markdown table's bars.
"""

from __future__ import annotations

import bisect
import codecs
import hashlib
import io
import itertools
import json
import logging
import os
import re
import stat
import unicodedata
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import BadInput

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf")
# Bump when cleaning or dateline parsing changes, so that every document is re-read (and its
# stored metadata rewritten) on the next ingest.
CLEANER_VERSION = "18"  # 2: chunks record where their lines start; 3: datelines in the (Agency) styles;
# 4: a wrapped line goes on its paragraph (`wrapped`); 5: a spaced dash that ends a line keeps its space;
# 6: "SALEM, Ore. (AP) —" datelines, a wire story's credit and rights lines and a wiki's reference marks dropped,
# a word hyphenated by the layout over two lines read whole; 7: a newspaper's "DENVER, Colo. -- " dateline,
# a bracketed credit line, a news page's own lines copied with it ("Skip to content", "4 min read"),
# an agency website's "Paris (AFP) –"; 8: a chunk records the headings over it, which an earlier chunk holds;
# 9: a newspaper's place alone before a long dash ("RIVERTON — "); 10: a press release's datelines
# ("/PRNewswire/ --", "(GLOBE NEWSWIRE) --", "--(BUSINESS WIRE)--"), a date written day first;
# 11: a line after a colon goes on its line ("Media contact:", then "Jane Roe"); 12: a heading the file
# marks is one however long (an FAQ's question), a byline may read "Interview by", "Author:"; 13: a line
# after a heading the file marks starts anew ("by Ann Lee" under an HTML page's <h1>), a dateline may
# name two places ("OSLO/BERGEN (Reuters) -"); 14: a transcript's speakers ("HOST:") are no dateline;
# 15: a file with no UTF-8 in it is read as Windows-1252, an HTML page in the encoding it declares;
# 16: a first paragraph that opens with the title's words is text, not a caption repeated; a line
# that fills a hard-wrapped file's width goes on the next (`wrap_width`); a first line that reads as a
# paragraph is text, not the title (`is_headline`); an e-mail's subject is its title; a table of contents'
# lines and a plain text's rules and underlines ("=====") are dropped; 17: a press release's "FOR
# IMMEDIATE RELEASE" is no title, a person's initial ("M. Duarte") ends no sentence; 18: a press
# release's region before its slashed agency ("OSLO, Norway, Dec. 3 /PRNewswire/"), an agency alone
# ("(CNN) —") are datelines
# Bump for one type's reader, so that only files of that type are read again.
# h2: a link or emphasis no longer breaks the line; m2: Markdown's markup is not part of the text;
# h3, m3: a table row names its columns; h3 also drops a page's furniture (`furniture`), m3 reads a
# static site's front matter as settings, its title the page's; p2: a PDF's running headers, footers
# and page numbers are dropped, ligatures read as letters; h4, m4: a heading's level is kept; p3: what a
# browser prints on a page saved as PDF is dropped; h5: a page's author named in its head is its byline;
# h6: a page's menus, footer, contents and references are furniture; an article's own <header> is kept,
# a <title> is read without its site's name; authors named in linked data are the byline; h7: of a
# page's <article> elements, the one holding most of their text, or all of them (`main_article`), and
# an FAQ's <details> and <summary> each a line of their own; m5: a code fence's lines are lines of
# their own, a footnote's text is kept and its marks and HTML tags dropped; p4: a year alone at a
# page's edge is no page number; h8: an FAQ's question in a <dt> is a line of its own; h9, m6: a run
# of short unmarked lines (a list's items) is no heading over the text after it, and h9 never joins
# an <li> to the line before; m6 also reads a line opening with a bold label ("**Date:**"), or after
# a hard break, as a line of its own.
READER_VERSIONS = {".html": "h9", ".htm": "h9", ".md": "m6", ".pdf": "p4"}

# Markdown's inline markup, each with the part that is text: a link's or image's words, emphasised
# or code words. markdown-it-py maps only blocks to source lines, not characters, and the offsets
# of each sentence in the file are kept, so the markup is taken out here (one level, not nested).
MD_INLINE = re.compile(
    # A footnote's mark ("[^1]", and "[^1]: " before its text) and an HTML tag show no words.
    r"(?:\[\^[^\]\s]+\](?::[ \t]*)?|</?[A-Za-z][\w-]*(?:\s[^<>\n]*)?/?>)(?P<unshown>)"
    r"|!?\[(?P<link>(?!\d{1,3}\])[^\]\n]*)\](?:\([^)\n]*\)|\[[^\]\n]*\])"  # "[2][3]" is two reference marks
    r"|(?P<mark>\*\*|__|`)(?P<marked>[^\n]+?)(?P=mark)"
    r"|(?<!\w)[*_](?P<em>[^\s*_](?:[^\n*_]*[^\s*_])?)[*_](?!\w)"
)
# A list item's mark where the text keeps it (plain text, PDF): "- ", "• ", "2. ", "b) ".
LIST_MARK = re.compile(r"(?:[-*•●▪◦‣∙·–]|\d{1,2}[.)]|[a-z][.)])\s+")
MD_LINE_START = re.compile(r"(?:#{1,6}\s+|>\s*|[-*+]\s+|\d{1,9}[.)]\s+)+")  # heading, quote, list marks
MD_LABEL = re.compile(r"(\*\*|__)[^*_\n]{1,40}?(?::\1|\1:)")  # "**Date:**", "**Date**:"
# A heading's level: "## Fees" is 2; a line underlined with "===" is 1, with "---" 2.
MD_HEADING = re.compile(r"(#{1,6})\s+\S")
MD_UNDERLINE = {"=": 1, "-": 2}
# Lines that say nothing: a link's definition ("[1]: https://...", not a footnote's "[^1]: …"), a
# code fence (`CODE_FENCE`: the lines between are read as written), a rule or heading underline, a
# table's header separator.
RULE_LINE = re.compile(r"(?:[-=_*~#]\s?){3,}")
CODE_FENCE = re.compile(r"\s{0,3}(`{3,}|~{3,})")
MD_NO_TEXT = re.compile(r"\[(?!\^)[^\]\n]+\]:\s*\S+.*|(?:`{3,}|~{3,}).*|[-*_=\s]{3,}|[|:\-\s]*-[|:\-\s]*\|[|:\-\s]*")

# A static site's front matter: YAML between "---" lines or TOML between "+++" lines, first in the
# file, and the page title it may set.
FRONT_MATTER = re.compile(
    r"\A\ufeff?(?P<fence>---|\+\+\+)[ \t]*\r?\n(?P<settings>[\w-]+[ \t]*[:=].*?)^(?P=fence)[ \t]*$", re.S | re.M
)
FRONT_TITLE = re.compile(r"^title[ \t]*[:=][ \t]*(\S.*?)[ \t]*$", re.M)
# A wiki's or journal's reference mark after a stop, comma, quote or another mark: "[12]", "[b]",
# "[note 3]", "[citation needed]" (a bracket after a letter, "a[1]", is left as code or a formula).
REFERENCE_MARK = re.compile(
    r"(?<=[.,;:!?\"'”’)\]])\[(?:\d{1,3}|[a-z]|note \d{1,3}|[a-z ]{0,20}needed)\]|\[citation needed\]"
)
# A table's header rule ("|---|:--:|"), and a bar between two cells (not an escaped "\\|").
TABLE_RULE = re.compile(r"\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?")
TABLE_BAR = re.compile(r"(?<!\\)\|")
CELL_JOIN, NAME_JOIN = "; ", ": "  # a table row read as a line: "Setting: retries; Default: 3"

_PLACE = r"(?P<place>[A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ .'/\-]{1,40}?)"  # "OSLO/BERGEN": a story from two places
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
# "March 3", "Dec. 5, 2026", and day first: "5 December", "5 Dec 2026".
_DATE = rf"(?:{_MONTH}\s+\d{{1,2}}(?:,\s*\d{{4}})?|\d{{1,2}}\s+{_MONTH}(?:,?\s*\d{{4}})?)"
# "OSLO, May 4. /NTB/." (the opening slash is sometimes lost): a date is required.
# A press release's "NEW YORK, Dec. 5, 2026 /PRNewswire/ --" is the same, its dash after, with the
# state or country after the city too: "OSLO, Norway, Dec. 5, 2026 /PRNewswire/ --".
_REGION = r"[A-Z][A-Za-z.]{1,15}(?: [A-Z][A-Za-z.]{1,15})?"  # "Ore.", "Ukraine", "New Jersey"
_SLASHED = (
    rf"(?:,\s+(?P<slash_region>{_REGION}))?"
    rf",\s+(?P<date>{_DATE})(?:\s*\.?\s*/?\s*(?P<agency>[A-Za-z][A-Za-z\-]{{1,20}})\s*/\s*\.?(?:\s*[-–—]{{1,2}}(?=\s))?"
    # Kyodo writes its name with no mark at all: "TOKYO, Dec. 1 Kyodo - Japan will …".
    rf"|\s+(?P<plain_agency>[A-Z][A-Za-z\-]{{1,20}})\s+[-–—]{{1,2}}(?=\s+[A-Z\"“‘']))"
)
# "LONDON (Reuters) -", "PARIS, March 3 (AFP) –", "NEW YORK, May 1, 2020 (Associated Press) —", and
# with the state or country after the city, as the AP writes it: "SALEM, Ore. (AP) —", "KYIV, Ukraine (AP) —",
# or both: "OSLO, Norway, Dec. 5, 2026 (GLOBE NEWSWIRE) --"; "SAN FRANCISCO--(BUSINESS WIRE)--".
# A newspaper's own story names no agency, but then a state or date follows the place: "DENVER,
# Colo. -- ", "BOSTON, March 3 - " (the dash spaced); or the place stands alone before a long dash
# (`_BARE_PLACE`).
# What parts the agency from the story: a dash or two ("(AP) —", "(Kyodo)--"), Spanish wires' ".-"
# ("(EFE).-"), South Asian ones' colon after a place in capitals ("ISLAMABAD, Dec 4 (APP):"); a
# place written as a name takes no colon ("Settings (Advanced): Choose a port" is none).
_AFTER_AGENCY = r"(?:\.?[-–—]{1,2}|:)"
_BRACKETED = (
    rf"(?:,\s+(?P<region>{_REGION}))?(?:,\s+(?P<wire_date>{_DATE})\.?)?"
    rf"(?:\s*\(\s*(?P<wire_agency>[A-Za-z][A-Za-z.&' \-]{{0,30}}?)\s*\)\s*{_AFTER_AGENCY}"
    rf"|(?(wire_date)|(?(region)|(?!)))\s+[-–—]{{1,2}}(?=\s))"
)
# An agency's website writes the place as a name, not in capitals: "Paris (AFP) –", "Berlin (dpa) -".
# Then the agency must be a name or a short word, and the story must start after the dash with a
# capital, so that "Portvale (a small harbour town) - the ferry" is none.
_NAMED_PLACE = (
    r"(?P<named_place>[A-Z][a-zà-ÿ'’\-]+(?: (?:(?:de|da|do|del|la|le|van|von|am|upon) )?[A-Z][a-zà-ÿ'’\-]+){0,2})"
)
_NAMED_AGENCY = (
    rf"(?:,\s+(?P<named_date>{_DATE})\.?)?"
    rf"\s*\(\s*(?P<named_agency>[A-Z][A-Za-z.&' \-]{{0,30}}?|[a-z]{{2,4}})\s*\)\s*\.?[-–—]{{1,2}}(?=\s*[A-Z\"“‘'])"
)
# A newspaper's place alone, in capitals, before a long dash: "RIVERTON — ", "NORTHFIELD -- ", or
# before a colon, as Indian papers write it: "NEW DELHI: ". A hyphen is not enough ("FILE - " opens
# an AP photo caption), and the words newsrooms and manuals put first to label a text are no place.
_LABELS = (
    "FILE|ANALYSIS|EXCLUSIVE|UPDATE|UPDATED|BREAKING|OPINION|EDITORIAL|COMMENTARY|CORRECTION|WATCH|LIVE|NOTE|WARNING"
    "|NB|PS|TIP|TIPS|HINT|IMPORTANT|CAUTION|DANGER|NOTICE|ATTENTION|REMINDER|DISCLAIMER|SUMMARY|BACKGROUND|ABSTRACT"
    "|FAQ|TODO|FIXME|EDIT|EXAMPLE|NOTES"
)
_BARE_PLACE = (
    rf"(?P<bare_place>(?!(?:{_LABELS})\b)[A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ.'\-]{{1,25}}(?: [A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ.'\-]{{1,25}}){{0,2}})"
    r"(?:\s+(?:—|–|--)|:)(?=\s+[A-Z\"“‘'])"
)
# Matches a dateline at the start of a paragraph (rag/evidence.py also strips it off sentences).
# A date and agency with no place, as UPI writes it: "Dec. 4 (UPI) -- ", or the agency alone, as
# CNN does: "(CNN) — ", the story then starting with a capital.
_UNPLACED = (
    rf"(?:(?P<unplaced_date>{_DATE})\s*)?\(\s*(?P<unplaced_agency>[A-Z][A-Za-z.&' \-]{{0,30}}?)\s*\)\s*[-–—]{{1,2}}"
    r"(?(unplaced_date)(?=\s)|(?=\s+[A-Z\"“‘']))"
)
AGENCY_GROUPS = ("agency", "plain_agency", "wire_agency", "named_agency", "unplaced_agency")
DATELINE = re.compile(
    rf"^(?:{_PLACE}(?:{_SLASHED}|{_BRACKETED})|{_NAMED_PLACE}{_NAMED_AGENCY}|{_BARE_PLACE}|{_UNPLACED})\s*"
)
# A story's byline, on a line of its own among its first lines: "By Dana Whitfield", "BY JOHN
# SMITH, Associated Press", "By Ana Lis and Tom Hale, Harbour Courier — 14 March 2026", "Interview
# by Ana Lis", "Author: Ana Lis". The name is two capitalised words or more, so that "By car, the
# trip takes an hour" is none, and goes on only after a mark, a word that names more ("and", "in")
# or a date, so that "By Christmas Day the roads were clear" is none.
BYLINE = re.compile(
    r"^(?:(?:(?:Written|Story|Text|Words|Interview|Interviewed|Reported|Reporting|Posted)\s+)?(?:[Bb]y|BY)|Authors?:)"
    r"\s+[A-Z][\w.'’\-]*(?:\s+[A-Z][\w.'’\-]*)+(?:(?:\s*[,|—–\-(]|\s+(?:and|&|in|for|at|of|with)\s|\s+(?=\d))[^\n]{0,120})?$"
)
BYLINE_LINES = 3  # the lines of a story's text, after its title, where its byline is looked for


def find_byline(text: str) -> tuple[int, int] | None:
    """Where the byline is in a story's text (the start and end of its line), or None."""
    at = 0
    for line in text.split("\n")[: BYLINE_LINES * 2]:  # paragraphs are parted by a blank line
        if BYLINE.match(line.strip()) and len(line.split()) <= 16:
            return at, at + len(line)
        at += len(line) + 1
    return None


# A news page's own lines, as a copy of the page into a text file keeps them: its links to the
# site ("Skip to content"), its buttons ("Share", "Save", "Listen to this article") and the
# headings of its link lists ("Related topics", "More on this story"). The first was the title.
BOILERPLATE_LINES = {
    "all news",
    "all news ›",
    "read more",
    "advertisement",
    "our standards: the thomson reuters trust principles.",
    "skip to content",
    "skip to main content",
    "share",
    "save",
    "share this article",
    "listen to this article",
    "related topics",
    "related",
    "more on this story",
    "explore more on these topics",
    "reuse this content",
}
# "4 min read", "Image source, Getty Images", "Sign up to our daily newsletter": a page's reading
# time, a photo's credit, a form's heading; a press release's "FOR IMMEDIATE RELEASE" or "Embargoed
# until 10:00 GMT", which, on its first line, was taken for the release's headline.
PAGE_NOTE = re.compile(
    r"\d{1,3} min(?:ute)?s? read|image source, .{1,60}|sign up (?:to|for) .{0,40}newsletters?\.?"
    r"|for immediate release|(?:press|news|media) release|embargoed(?: until| till)? .{1,40}",
    re.I,
)
# A table of contents' line, its dot leaders running to a page number: "2. Cargo ........ 3". It
# states nothing, and read as a heading it put the entries after it under the wrong section.
CONTENTS_LINE = re.compile(r"\S.*?\s*(?:\.\s?){4,}\s*\d{1,4}|\S.*?\s*…{2,}\s*\d{1,4}")
# A wire story's credit and rights lines: "© 2024 AFP", "Copyright 2024 The Associated Press. All
# rights reserved.", "(Reporting by Ana Lis in Kyiv; Editing by Tom Hale)", bracketed or not (names and places only, so
# "Reporting by the council showed delays" stays). They are about the story, not in it.
RIGHTS = re.compile(r"©|\(c\) |copyright (?:©|\(c\)|\d{4})", re.I)
_CREDIT_WORD = (
    r"(?:[Aa]dditional )?(?:[Rr]eporting|[Ww]riting|[Ee]diting) by|and|in|[A-Z][\w.'’-]*|[;,]"
    r"|de|van|von|der|den|da|di|du|del|la|le"  # the small words of names: "Pieter de Vries"
)
CREDIT = re.compile(
    rf"\(?(?:[Aa]dditional )?(?:[Rr]eporting|[Ww]riting|[Ee]diting) by (?:\s*(?:{_CREDIT_WORD}))+\s*\.?\s*\)?\.?"
)
# A PDF's typeset ligatures ("ﬁ" for "fi", "ﬂ", "ﬀ", …) as their letters, and its soft hyphens dropped:
# "ﬁnancial" matched no "financial" in a question's words. The offsets of a PDF index its extracted
# text, so the text may change length here.
PDF_GLYPHS = {code: unicodedata.normalize("NFKC", chr(code)) for code in range(0xFB00, 0xFB07)} | {0xAD: None}
# Lines at each end of a PDF page where running headers, footers and page numbers are looked for.
PAGE_EDGE = 2
# A year alone on a line is none: a title's last word, wrapped ("Annual Report", then "2025").
PAGE_NUMBER = re.compile(r"(?i)(?!(?:19|20)\d\d$)(?:page\s*)?[-–—(\[]?\s*\d{1,4}\s*[-–—)\]]?(?:\s*(?:of|/)\s*\d{1,4})?")
# What a browser prints on every page of a web page saved as PDF, found on a page of its own too:
# the time it was printed with the page's title ("12/7/26, 6:42 AM Ferry timetable"), and its
# address with the page count ("https://example.org/ferry 1/3").
BROWSER_PRINT = re.compile(
    r"(?i)\d{1,2}/\d{1,2}/\d{2,4},?\s+\d{1,2}:\d{2}(?:\s*[ap]m)?(?:\s.*)?"
    r"|(?:https?|file)://\S+(?:\s+\d{1,4}\s*(?:/|of)\s*\d{1,4})?"
)
# Above this share of undecodable characters a file is not text in any encoding worth reading.
MAX_UNDECODABLE = 0.25
# pypdf's caps on how far one stream may unpack (75 MB each), lowered to the file limit when it is lower.
PDF_STREAM_LIMITS = (
    "zlib_maximum_output_length",
    "lzw_maximum_output_length",
    "run_length_maximum_output_length",
    "brotli_maximum_output_length",
    "array_based_stream_maximum_output_length",
)


@dataclass(frozen=True)
class Dateline:
    """Place, date text and agency from an article's dateline; empty strings when absent."""

    place: str = ""
    date: str = ""
    agency: str = ""

    def __str__(self) -> str:
        parts = [p for p in (self.place.title(), self.date) if p]
        return ", ".join(parts) + (f" ({self.agency})" if self.agency else "")

    @staticmethod
    def agency_in(stored: str) -> str:
        """The agency of a dateline as `str` writes it, as the store keeps it: "Vientiane, Dec. 4 (Xinhua)"."""
        found = STORED_AGENCY.search(stored)
        return found[1] if found else ""


STORED_AGENCY = re.compile(r"\(([^()]+)\)$")  # the agency at the end of a stored dateline


@dataclass(frozen=True)
class Document:
    """One cleaned article: `text` is what gets chunked; offsets map back into `original`."""

    doc_id: str
    title: str
    text: str
    original: str
    source: str
    dateline: Dateline
    content_hash: str
    # (start in text, start in original) of each kept line, in order.
    segments: tuple[tuple[int, int], ...] = field(repr=False, default=())
    # The level of each heading its file marks (Markdown's "##", HTML's <h2>: 2), by the heading's
    # line as it reads in `text`; a plain text file marks none, and its levels are guessed
    # (`rag.text.heading_below`).
    heading_levels: tuple[tuple[str, int], ...] = ()

    def original_offset(self, clean_offset: int) -> int:
        """Character offset in `original` of a character offset in the cleaned `text`."""
        if not self.segments:
            return clean_offset
        starts = [s[0] for s in self.segments]
        i = max(bisect.bisect_right(starts, clean_offset) - 1, 0)
        clean_start, orig_start = self.segments[i]
        return orig_start + (clean_offset - clean_start)


# A line of a file: where it starts, its text, and (offset in text, offset in the line) where they part.
Line = tuple[int, str, tuple[tuple[int, int], ...]]


@dataclass(frozen=True)
class Skipped:
    """A file that was not ingested, and why, in words a person can act on."""

    path: str
    reason: str


def find_files(root: Path) -> Iterator[tuple[Path, str]]:
    """Yield (file, doc_id) under `root` (or `root` itself), doc_id relative to it, sorted."""
    if not root.exists() and not root.is_symlink():
        raise BadInput(f"{root}: no such file or folder")
    if not root.is_dir():  # a file, or a pipe or broken link that read_document will explain
        yield root, root.name
        return
    # os.walk without following links: a symlink loop cannot trap us.
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if not name.startswith("."):
                path = Path(folder) / name
                yield path, path.relative_to(root).as_posix()


def read_document(path: Path, doc_id: str, max_bytes: int) -> Document:
    """Read and clean one file; raises BadInput with a reason when it cannot be used."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise BadInput(f"unsupported file type '{suffix or path.name}' (use {', '.join(SUPPORTED_SUFFIXES)})")
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # opening a pipe would wait for a writer forever
            raise BadInput("not a regular file (a pipe, socket or device)")
        if info.st_size > max_bytes:
            raise BadInput(f"file is {info.st_size:,} bytes, over the {max_bytes:,}-byte limit")
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # the file may grow after stat()
    except OSError as exc:
        raise BadInput(f"cannot read file: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise BadInput(f"file is over the {max_bytes:,}-byte limit")
    if not data.strip():
        raise BadInput("file is empty")
    original, levels = _extract_text(path, suffix, data, max_bytes)  # a PDF's text is held to the same limit
    if not original.strip():
        raise BadInput("no text could be extracted")
    version = CLEANER_VERSION + READER_VERSIONS.get(suffix, "")
    content_hash = hashlib.sha256(data + version.encode()).hexdigest()
    return clean_article(
        original,
        doc_id=doc_id,
        source=str(path),
        content_hash=content_hash,
        markdown=suffix == ".md",
        heading_levels=levels,
    )


def _extract_text(path: Path, suffix: str, data: bytes, max_chars: int) -> tuple[str, dict[str, int]]:
    """Raw text of a file, by type: pypdf for PDF, at most `max_chars` of it, and the levels of an
    HTML page's headings (`html_text`). Text, Markdown and HTML are decoded here rather than by a
    reader, to warn about undecodable bytes and keep offsets exact."""
    if suffix == ".pdf":
        return _read_pdf(data, max_chars), {}
    # Windows' Notepad saves "Unicode" as UTF-16 with its byte-order mark: half its bytes are NUL.
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if b"\x00" in data[:8192] and not utf16:
        raise BadInput("file looks binary (NUL bytes), not text")
    if utf16:
        text = data.decode("utf-16", errors="replace")
    else:
        text = _decode(data, path, declared_charset(data) if suffix in (".html", ".htm") else None)
    if text.count("\ufffd") > MAX_UNDECODABLE * len(text):
        raise BadInput("file is not text: over a quarter of its bytes are not UTF-8")
    if suffix in (".html", ".htm"):
        return html_text(text)
    return text.replace("\r\n", "\n").replace("\r", "\n"), {}


# A page's own word on its encoding: <meta charset="windows-1251">, or the older
# <meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">.
META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:\-]{2,40})", re.IGNORECASE)


def declared_charset(data: bytes) -> str | None:
    """The encoding an HTML page declares in its first kilobytes, when Python knows it; else None."""
    found = META_CHARSET.search(data[:4096])
    if not found:
        return None
    try:
        return codecs.lookup(found[1].decode("ascii")).name
    except LookupError:
        return None


def _decode(data: bytes, path: Path, declared: str | None = None) -> str:
    """UTF-8 text, or the encoding an HTML page declares when it is not UTF-8. A file with no UTF-8
    sequence at all but a few bytes past ASCII is read as Windows-1252 (which Latin-1 text is too:
    "Caf\\xe9"), the encoding of most older Western files and the one browsers assume for a page
    that names none; in a UTF-8 file, undecodable bytes become U+FFFD. Either way with a warning
    rather than a lost file."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        first = exc.start
    if declared and declared != "utf-8":
        try:
            return data.decode(declared)
        except UnicodeDecodeError:
            log.warning("%s: not in the %s it declares", path, declared)
    replaced = data.decode("utf-8", errors="replace")
    # Western text in a legacy encoding is mostly ASCII; bytes that are mostly past it are no text.
    legacy = sum(byte > 127 for byte in data) <= MAX_UNDECODABLE * len(data)
    if legacy and not any(ord(char) > 127 and char != "\ufffd" for char in replaced):
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:  # one of the five bytes Windows-1252 leaves undefined
            pass
        else:
            log.warning("%s: not UTF-8, read as Windows-1252 (Latin-1)", path)
            return text
    log.warning("%s: bytes that are not UTF-8 (first at byte %d) were replaced", path, first)
    return replaced


def _read_pdf(data: bytes, max_chars: int) -> str:
    """The pages' text joined by newlines, as LlamaIndex's `PDFReader` joins it, read here page by
    page: PDFReader extracts every page before returning (a PDF of a few kilobytes can unpack to
    gigabytes of text) and tries a failing file three times. The text, and every stream pypdf
    unpacks, stop at the file limit."""
    import pypdf
    from pypdf.errors import LimitReachedError

    config = pypdf.get_configuration()
    limits = {key: min(getattr(config, key), max_chars) for key in PDF_STREAM_LIMITS}
    pages, size = [], 0
    try:
        with pypdf.apply_configuration(**limits):
            for number, page in enumerate(pypdf.PdfReader(io.BytesIO(data)).pages, start=1):
                pages.append(page.extract_text())
                size += len(pages[-1]) + 1
                if size > max_chars:
                    raise BadInput(f"the PDF's text runs over the {max_chars:,}-character limit by page {number}")
    except BadInput:
        raise
    except LimitReachedError as exc:
        raise BadInput(f"the PDF unpacks to more than the {max_chars:,}-byte limit allows ({exc})") from exc
    except Exception as exc:  # pypdf raises many unrelated types for a damaged file
        raise BadInput(f"cannot read PDF: {exc}") from exc
    return "\n".join(without_page_furniture([page.translate(PDF_GLYPHS) for page in pages]))


def without_page_furniture(pages: Sequence[str]) -> list[str]:
    """The pages without their running headers and footers, nor their page numbers: lines at a
    page's top or bottom (`PAGE_EDGE` lines each) that recur at the edges of half the pages or
    more (digits aside: "Report 2023 · page 4"), or that are only a page number or what a browser
    prints on each page (`BROWSER_PRINT`), which a one-page file does not repeat. Left in, they
    were read as sentences of the text (a footer "Page 2 of 9" quoted as an answer) and cut a
    sentence that runs over a page break in two; without them, `wrapped` joins it again."""
    split = [[line.strip() for line in page.splitlines() if line.strip()] for page in pages]
    edges = [{*lines[:PAGE_EDGE], *lines[-PAGE_EDGE:]} for lines in split]
    counts = Counter(shape for edge in edges for shape in {page_line_shape(line) for line in edge})
    recurring = {shape for shape, count in counts.items() if count >= 2 and count * 2 >= len(pages)}
    kept = []
    for lines, edge in zip(split, edges):
        dropped = {
            line
            for line in edge
            if PAGE_NUMBER.fullmatch(line) or BROWSER_PRINT.fullmatch(line) or page_line_shape(line) in recurring
        }
        kept.append("\n".join(line for line in lines if line not in dropped))
    return kept


def page_line_shape(line: str) -> str:
    """A line with its numbers and spacing made alike, to find a header or footer on every page."""
    return " ".join(re.sub(r"\d+", "#", line).lower().split())


# Elements that start a new line of text; any other element (a link, emphasis, a span) is part of
# the line around it.
HTML_BLOCKS = (
    "address article aside blockquote br caption center dd details dialog div dl dt fieldset figcaption figure "
    "footer h1 h2 h3 h4 h5 h6 header hgroup hr legend li main menu nav ol p pre section summary table tbody td "
    "tfoot th thead title tr ul"
).split()
# Words of the class or id names of a page's furniture (after Readability's `unlikelyCandidates`),
# and an encyclopedia page's list of contents and of references: "Northern Lighthouse Board (1990).
# Annual Report." was the answer to when a lighthouse was demolished.
PAGE_FURNITURE = set(
    "cookie cookies consent gdpr share sharing social newsletter subscribe related promo advert "
    "advertisement ad ads banner breadcrumb breadcrumbs comments sidebar editsection navbox noprint "
    "footer menu navigation toc pagination pager popup sponsor references reflist".split()
)
LAYOUT_BLOCKS = [tag for tag in HTML_BLOCKS if tag not in ("br", "td", "th", "tr", "tbody", "thead", "tfoot")]
BLOCK_BREAK = "\x1e"  # where a block element starts or ends, until the text is split into lines
ITEM_START = "\ue000"  # where a list's item starts (a private-use character: no page writes it)


def furniture(tag: Any, page_chars: int) -> bool:
    """Whether an element is a page's furniture by its class or id (a cookie notice, share buttons,
    related links), as Mozilla's Readability judges "unlikely candidates" by the same names: their
    words ("Share on Facebook", "Accept all cookies") were read as sentences of the article. An
    element holding a third of the page's text or more is the story, whatever its names."""
    names = set(re.findall(r"[a-z]+", " ".join([*(tag.get("class") or []), tag.get("id") or ""]).lower()))
    return bool(names & PAGE_FURNITURE) and len(tag.get_text()) * 3 < page_chars


def html_to_text(html: str) -> str:
    """Visible text of an HTML page, one block element a line, scripts and styles dropped (`html_text`)."""
    return html_text(html)[0]


def html_text(html: str) -> tuple[str, dict[str, int]]:
    """Visible text of an HTML page, one block element a line, scripts and styles dropped, and the
    level of each of its headings by its text (<h2> is 2; the first of two the same wins).

    LlamaIndex's `HTMLTagReader` returns the text of one tag type, and BeautifulSoup's
    `get_text("\n")` breaks a line at every tag, so that a link or an italic word inside a
    sentence cut it into fragments. Here only block elements break lines; inside one, the source's
    line breaks and runs of spaces are one space, except in `<pre>`, whose lines are kept.
    """
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    author = page_author(soup)  # before the scripts go: a page may name its author only in its linked data
    for tag in soup(["script", "style", "noscript", "nav", "footer", "header", "form", "template", "aside"]):
        # An article's own <header> holds its headline and byline; the site's holds its name and menus.
        if tag.name != "header" or not (tag.find("h1") or tag.find_parent(["article", "main"])):
            tag.decompose()
    page_chars = len(soup.get_text())
    for tag in soup.find_all(lambda tag: furniture(tag, page_chars)):
        tag.decompose()
    headline = soup.find("h1")
    title_text = " ".join(headline.get_text().split()) if headline else page_title(soup)
    levels: dict[str, int] = {}
    for heading in soup.find_all(["h1", "h2", "h3", "h4", "h5", "h6"]):
        levels.setdefault(" ".join(heading.get_text().split()), int(heading.name[1]))
    for table in soup.find_all("table"):
        rows = table.find_all("tr")
        head = rows[0].find_all(["th", "td"], recursive=False) if rows else []
        # Column names: a first row of two or more header cells (one spanning the table is its title).
        names = (
            [" ".join(c.get_text().split()) for c in head]
            if len(head) > 1 and all(c.name == "th" for c in head)
            else []
        )
        for row in rows[1 if names else 0 :]:
            found = row.find_all(["th", "td"], recursive=False)
            if any(cell.find(LAYOUT_BLOCKS) for cell in found):
                continue  # a layout table's cell holds paragraphs, not a value: it is read as they are
            cells = [" ".join(cell.get_text(" ").split()) for cell in found]
            if not names and len(found) > 1 and found[0].name == "th":  # a row named by its first cell
                line = f"{cells[0]}{NAME_JOIN}{table_row([], cells[1:])}"
            else:
                line = table_row(names, cells)
            row.clear()
            row.string = line
        if names and len(rows) > 1:
            rows[0].decompose()
    for term in soup.find_all("dt"):  # a glossary's term goes with its definition, as a row with its name
        definition = term.find_next_sibling(["dd", "dt"])
        # An FAQ's question stays a line of its own, as its <h3> would: "Who can apply?: Anyone over
        # 18." read as one sentence that repeats the question, it outranked the reply's other sentences.
        question = term.get_text().strip().endswith("?")
        if definition is not None and definition.name == "dd" and not question:
            definition.insert(0, " ".join(term.get_text().split()) + NAME_JOIN)
            term.decompose()
    for tag in soup.find_all("pre"):
        tag.string = tag.get_text().replace("\n", BLOCK_BREAK)
    for tag in soup.find_all("li"):
        tag.insert(0, ITEM_START)
    for tag in soup.find_all(HTML_BLOCKS):
        tag.insert_before(BLOCK_BREAK)
        tag.insert_after(BLOCK_BREAK)
    body = main_article(soup) or soup.body or soup
    text, item = "", False
    for part in body.get_text().split(BLOCK_BREAK):
        line = " ".join(part.split())
        item = item or line.startswith(ITEM_START)
        line = line.removeprefix(ITEM_START).strip()
        if line:
            # A list's item is a line of its own, however it opens: "a pinch of salt" would go on
            # the item before, as a line in lower case goes on a wrapped paragraph (`wrapped`).
            text += ("\n\n" if item and text else "\n" if text else "") + line
            item = False
    if title_text and not text.startswith(title_text):
        text = title_text + "\n" + text
    if author and find_byline(text.partition("\n")[2]) is None:  # shown under the title, as a printed byline is
        title_line, _, rest = text.partition("\n")
        text = f"{title_line}\nBy {author}\n{rest}" if rest else f"{title_line}\nBy {author}"
    return text, levels


def main_article(soup: Any) -> Any:
    """The page's <article> that holds most of the text of all its articles, or None. A teaser
    card's <article> may come before the story's, and an FAQ or a blog's front page puts each of
    its entries in one: reading the first article only lost the story, or all entries but one."""
    articles = [tag for tag in soup.find_all("article") if tag.find_parent("article") is None]
    if not articles:
        return None
    sizes = [len(tag.get_text(strip=True)) for tag in articles]
    largest = max(range(len(articles)), key=sizes.__getitem__)
    return articles[largest] if sizes[largest] * 3 >= sum(sizes) * 2 else None


# What separates a page's title from its site's name: "Ferry crews end strike | Harbour Courier".
TITLE_SEPARATOR = re.compile(r"\s+[|\-–—»/:]\s+")


def page_title(soup: Any) -> str:
    """A page's <title> without its site's name after the last separator, when what is left is three
    words or more, as Readability reads it: "Ferry crews end strike | Harbour Courier" gives "Ferry
    crews end strike"; "Skerrow Light - Wikipedia" stays whole, two words being too few to tell."""
    tag = soup.find("title")
    text = " ".join(tag.get_text().split()) if tag else ""
    separators = list(TITLE_SEPARATOR.finditer(text))
    head = text[: separators[-1].start()] if separators else text
    return head if len(head.split()) >= 3 else text


def page_author(soup: Any) -> str:
    """The author a page names in its head (`<meta name="author">`, the `article:author` of Open
    Graph when it is a name, not a link) or in its schema.org linked data (`"author": {"name": …}`):
    many news pages print no byline in the text, and "Who wrote it?" was refused."""
    named = [tag.get("content") or "" for tag in soup.find_all("meta", attrs={"name": ["author", "byl"]})]
    named += [tag.get("content") or "" for tag in soup.find_all("meta", attrs={"property": "article:author"})]
    for script in soup.find_all("script", attrs={"type": "application/ld+json"}):
        try:
            named.append(" and ".join(linked_authors(json.loads(script.get_text()))))
        except (ValueError, RecursionError):  # a page's broken (or absurdly nested) linked data says nothing
            continue
    for content in named:
        content = re.sub(r"^[Bb]y\s+", "", " ".join(content.split()))
        if content and "/" not in content and len(content.split()) <= 8:
            return content
    return ""


def linked_authors(data: Any) -> list[str]:
    """The names of the authors in schema.org linked data: an article's "author", a person or an
    organisation, one or a list, in the data itself or in its "@graph"."""
    items = data if isinstance(data, list) else [data]
    for item in items:
        if not isinstance(item, dict):
            continue
        author = item.get("author")
        people = author if isinstance(author, list) else [author] if author else []
        names = [p.get("name", "") if isinstance(p, dict) else p for p in people]
        names = [n for n in names if isinstance(n, str) and n.strip()]
        if names:
            return names
        if found := linked_authors(item.get("@graph", [])):
            return found
    return []


def clean_article(
    original: str,
    *,
    doc_id: str,
    source: str = "",
    content_hash: str = "",
    markdown: bool = False,
    heading_levels: Mapping[str, int] | None = None,
) -> Document:
    """Drop boilerplate lines, take the headline as title and parse the dateline; `markdown` reads
    the lines as the text Markdown shows, its headings' levels with them; `heading_levels` are those
    an HTML page marks (`html_text`)."""
    raw = list(_lines_with_offsets(original))
    marked = markdown_heading_levels(original, raw) if markdown else {}
    levels = dict(heading_levels or {})
    front = FRONT_MATTER.match(original) if markdown else None
    if front:  # a static site's page settings ("title: …", "date: …") are not its text
        raw = [(start, line) for start, line in raw if start >= front.end()]
    named = FRONT_TITLE.search(front["settings"]) if front else None
    rows = markdown_tables(raw) if markdown else {}
    code = fenced_lines(raw) if markdown else set()
    width = 0 if markdown else wrap_width(raw)
    headers = {start for start, row in rows.items() if row is None}  # each of their rows names the columns
    if markdown:
        raw = [(start, line) for start, line in raw if not MD_NO_TEXT.fullmatch(line) and start not in headers]
    else:  # a rule or a title's underline in plain text ("=====", "- - -") is no text either
        raw = [(start, line) for start, line in raw if not RULE_LINE.fullmatch(line.strip())]
    lines: list[Line] = []
    spelling: Counter[str] | None = None  # counted when a hyphen first ends a wrapped line
    for number, (start, line) in enumerate(raw):
        text, points = rows.get(start) or (markdown_line(line) if markdown and start not in code else (line, ((0, 0),)))
        text, points = without_reference_marks(text, points)
        if start in marked:
            levels.setdefault(text.strip(), marked[start])
        table = start in rows or (number and raw[number - 1][0] in rows)
        # A heading the file marks is whole: the line after it, in lower case ("by Ann Lee"), starts anew.
        after_heading = raw[number - 1][1].strip() in levels if number else False
        joined = not (table or after_heading or start in code)
        if number and joined and wrapped(original, raw[number - 1], (start, line), markdown, width):
            at, before, before_points = lines.pop()
            # "well-" and "known" make "well-known"; a spaced dash ("LONDON (Reuters) -") keeps its space.
            glue = "" if re.search(r"\w-$", before) else " "
            if not glue:
                spelling = spelling if spelling is not None else spellings(original)
                if hyphenated_by_layout(before, text, spelling):
                    before = before[:-1]  # "infor-" and "mation" make "information"
            moved = tuple((len(before) + len(glue) + a, start - at + b) for a, b in points)
            text, points = before + glue + text, before_points + moved
            start = at
        lines.append((start, text, points))
    kept = [item for item in lines if item[1] and not _is_boilerplate(item[1])]
    kept = _drop_repeated_captions(kept)
    title = ""
    subject = mail_subject(kept)
    if named:  # the page's title; its first line is text unless it says the same
        title = named[1].strip().strip("\"'")
        kept = kept[1:] if kept and kept[0][1].strip() == title else kept
    elif subject:  # an e-mail's: its sender, recipients and date stay as text
        title = subject
    elif kept and (is_headline(kept[0][1]) or len(kept) == 1):
        title = kept[0][1].strip().lstrip("#").strip()
        kept = kept[1:] or kept  # a one-line article keeps its line as text
    text_parts, segments, cursor = [], [], 0
    for start, line, points in kept:
        segments += [(cursor + at_text, start + at_line) for at_text, at_line in points]
        text_parts.append(line)
        cursor += len(line) + 2
    text, lines_kept = "\n\n".join(text_parts), set(text_parts)
    return Document(
        doc_id=doc_id,
        title=title or doc_id,
        text=text,
        original=original,
        source=source,
        dateline=parse_dateline(text),
        content_hash=content_hash or hashlib.sha256(original.encode()).hexdigest(),
        segments=tuple(segments),
        heading_levels=tuple((line, level) for line, level in levels.items() if line in lines_kept),
    )


def fenced_lines(raw: Sequence[tuple[int, str]]) -> set[int]:
    """Where the lines inside a Markdown code fence start: each is a line of its own, as written
    (joined as a paragraph's, "pip install heron" and "heron init" read as one command)."""
    inside, fence, found = False, "", set()
    for start, line in raw:
        mark = CODE_FENCE.match(line)
        if mark and (not inside or (mark[1][0] == fence[0] and len(mark[1]) >= len(fence))):
            inside, fence = not inside, mark[1]
        elif inside:
            found.add(start)
    return found


# An e-mail's header fields, as a mail program saves a message as text.
MAIL_FIELD = re.compile(r"(?i)(from|to|cc|bcc|date|sent|subject|reply-to):\s*(.*)")
MAIL_FIELDS = 8  # the lines an e-mail's header may take before its subject


def mail_subject(lines: Sequence[Line]) -> str:
    """The subject of a text that opens with an e-mail's header ("From: …", "Subject: …"), or "".
    Its first line, "From: Ana Lis <…>", was taken as the title and so lost as text: who sent it."""
    found = itertools.takewhile(bool, (MAIL_FIELD.fullmatch(line) for _, line, _ in lines[:MAIL_FIELDS]))
    named = {field[1].lower(): field[2].strip() for field in found}
    return named.get("subject", "") if "from" in named or "to" in named else ""


HEADLINE_WORDS = 25  # a first line longer than this is the text's first paragraph, not its title
SENTENCE_WORDS = 12  # and so is one this long that ends with a full stop


def is_headline(line: str) -> bool:
    """Whether a file's first line reads as its title. A file that starts with its text (notes, a
    pasted story) lost its first paragraph to the title, and with it the answers it held; such a
    file's title is its name."""
    words = len(line.split())
    return words <= HEADLINE_WORDS and not (line.rstrip().endswith(".") and words > SENTENCE_WORDS)


def markdown_heading_levels(original: str, raw: Sequence[tuple[int, str]]) -> dict[int, int]:
    """The level of each Markdown heading, by where its line starts: "## Fees" is 2, a line
    underlined with "===" 1 and with "---" 2 (the underline right below it, no blank line between)."""
    levels = {}
    for (start, line), (next_start, below) in zip(raw, [*raw[1:], (len(original), "")]):
        if heading := MD_HEADING.match(line):
            levels[start] = len(heading[1])
        elif (
            below[:1] in MD_UNDERLINE
            and len(below) >= 3
            and set(below) == {below[0]}
            and original.count("\n", start, next_start) == 1
            and not MD_LINE_START.match(line)
            and not line.startswith("|")
        ):
            levels[start] = MD_UNDERLINE[below[0]]
    return levels


def hyphenated_by_layout(before: str, after: str, spelling: Counter[str]) -> bool:
    """Whether the hyphen that ends a line was put there by the layout, splitting one word: the
    word whole ("information") is found elsewhere in the file and never with the hyphen. Otherwise
    it is kept ("well-known", or a word the file does not use again). `spelling` counts the file's
    words and hyphened pairs (`spellings`)."""
    head, tail = re.search(r"(\w+)-$", before), re.match(r"[a-z]+", after)
    if not head or not tail:
        return False
    return spelling[(head[1] + tail[0]).lower()] > 0 and spelling[f"{head[1]}-{tail[0]}".lower()] == 1


def spellings(original: str) -> Counter[str]:
    """How often a file writes each word, and each two words joined by a hyphen (over a line end too)."""
    found = Counter(re.findall(r"\w+", original.lower()))
    found.update(f"{a}-{b}" for a, b in re.findall(r"(\w+)-\s*(\w+)", original.lower()))
    return found


def wrapped(original: str, before: tuple[int, str], line: tuple[int, str], markdown: bool, width: int = 0) -> bool:
    """Whether a line goes on the paragraph of the line right before it, wrapped by the file's
    width (a PDF's layout, a hard-wrapped text or Markdown file) rather than starting anew: read
    as lines of their own, its sentences were cut in two. In Markdown, any line next to the one
    before is the same paragraph unless it opens a block (heading, list item, quote, table row);
    elsewhere one that starts in lower case, or follows a comma, hyphen or colon, goes on (a
    label on a line of its own names the line after it: "Media contact:", then "Jane Roe"), and so
    does any line after one that fills most of the file's `width` (`wrap_width`) without ending a
    sentence: "… to discuss the new pier with", then "Mayor Ida Berg on Monday."."""
    (before_start, before_text), (start, text) = before, line
    if original.count("\n", before_start + len(before_text), start) != 1:
        return False  # a blank line, or a line taken out, lies between
    if markdown:
        # A line opening with a bold label shows as a line of its own ("**Date:** Tuesday", then
        # "**Time:** 9 a.m."), and so does one after a hard break (two spaces at the line's end),
        # unless it goes on with the sentence.
        ends = before_start + len(before_text)
        hard = original[ends : ends + 3] in ("  \n", "  \r") and not goes_on(before_text, text)
        broken = hard or MD_LABEL.match(text)
        return not (broken or before_text.startswith(("#", "|")) or text.startswith("|") or MD_LINE_START.match(text))
    if LIST_MARK.match(text):
        return False  # a list's item: "Bring:", then "- a passport"
    filled = (
        bool(width)
        and len(before_text) >= WRAP_FILL * width
        and len(before_text.split()) >= WRAP_WORDS
        and not (tabular(before_text) or tabular(text))
    )
    return goes_on(before_text, text) or (filled and not before_text.rstrip().endswith(SENTENCE_CLOSE))


def goes_on(before_text: str, text: str) -> bool:
    """Whether a line goes on with the sentence of the line before: it starts in lower case, or
    that line ends with a comma, hyphen or colon."""
    return text[:1].islower() or before_text.endswith((",", "-", ":"))


WRAP_FILL = 0.75  # a line this full of the file's width, not ending a sentence, was wrapped
WRAP_WORDS = 6  # and has this many words (a short heading does not go on)
WRAP_MAX = 120  # a file whose lines run longer is not wrapped: each line is a paragraph
WRAPPED_LINES = 5  # and a wrapped file has at least this many full lines, and half its lines are full
SENTENCE_CLOSE = tuple('.!?;"”’)')


def tabular(line: str) -> bool:
    """Whether a line reads as a table's row rather than prose: columns spaced apart, or a third of
    its words or more numbers ("Q2 2025 310,000 84,000 4.6 million"). Rows that fill a file's width
    are not wrapped prose, and joined they were one long "sentence"."""
    words = line.split()
    numbers = sum(bool(re.fullmatch(r"[\d.,%$€£()+-]+", word)) for word in words)
    return bool(re.search(r"\S {3,}\S|\t", line)) or numbers * 3 >= len(words)


def wrap_width(raw: Sequence[tuple[int, str]]) -> int:
    """The width a hard-wrapped file or a PDF's layout wraps its lines at (nine lines in ten are no
    longer), or 0 for a file whose lines run longer, each a paragraph of its own, or whose lines
    do not mostly fill it (a page's buttons and captions copied with its story), or that has too
    few lines to tell."""
    lengths = sorted(len(line) for _, line in raw if line.strip())
    if len(lengths) < WRAPPED_LINES:
        return 0
    width = lengths[int(len(lengths) * 0.9)]
    full = sum(length >= WRAP_FILL * width for length in lengths)
    return width if width <= WRAP_MAX and full >= max(WRAPPED_LINES, len(lengths) / 2) else 0


def markdown_line(line: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """A Markdown line as the text it shows, and (offset in that text, offset in the line) wherever
    the two part, starting with (0, where the text starts)."""
    lead = MD_LINE_START.match(line)
    return markdown_inline(line, lead.end() if lead else 0)


def markdown_inline(line: str, at: int = 0) -> tuple[str, tuple[tuple[int, int], ...]]:
    """`line[at:]` without its inline markup, with the points where text and line part (as above)."""
    text, points = "", [(0, at)]
    for match in MD_INLINE.finditer(line, at):
        words = next(name for name in ("unshown", "link", "marked", "em") if match.group(name) is not None)
        text += line[at : match.start()]
        points.append((len(text), match.start(words)))
        text += match.group(words)
        at = match.end()
        points.append((len(text), at))
    return text + line[at:], tuple(points)


def table_row(names: Sequence[str], cells: Sequence[str]) -> str:
    """A table row as a line that names its columns: "Setting: retries; Default: 3" (see
    `markdown_tables`)."""
    named = zip([*names, *[""] * (len(cells) - len(names))], cells)
    return CELL_JOIN.join(f"{name}{NAME_JOIN}{cell}" if name else cell for name, cell in named if cell)


def markdown_tables(lines: Sequence[tuple[int, str]]) -> dict[int, tuple[str, tuple[tuple[int, int], ...]] | None]:
    """Each body row of a Markdown table as a line that names its columns, by where the row starts;
    None for a header row, which each of its rows now carries.

    A row read as it stands ("| retries | 3 | How often ... |") lost its column names, which were
    the words a question asks with ("the default number of retries"), and quoted its bars. So each
    row reads "Setting: retries; Default: 3; Meaning: How often ...": every word at its place in
    the file (a header's in the header row), the ": " and "; " at the bars they replace.
    """
    found: dict[int, tuple[str, tuple[tuple[int, int], ...]] | None] = {}
    for number, (start, line) in enumerate(lines[:-2]):
        rule = lines[number + 1][1]
        if "|" not in line or "|" not in rule or not TABLE_RULE.fullmatch(rule) or start in found:
            continue
        header = table_cells(line)
        for row_start, row in itertools.takewhile(lambda item: "|" in item[1], lines[number + 2 :]):
            text, points = "", []
            for (name_at, name), (cell_at, cell), bar in zip(header, table_cells(row), table_bars(row)):
                if not cell:
                    continue
                if text:
                    points.append((len(text), bar))  # "; " stands where the bar before the cell was
                    text += CELL_JOIN
                if name:
                    shown, inner = markdown_inline(name)
                    points += [(len(text) + a, start - row_start + name_at + b) for a, b in inner]
                    text += shown
                    points.append((len(text), bar))
                    text += NAME_JOIN
                shown, inner = markdown_inline(cell)
                points += [(len(text) + a, cell_at + b) for a, b in inner]
                text += shown
            if text:
                found[row_start] = (text, tuple(points))
        if lines[number + 2][0] in found:  # the header row, when its first row was read
            found[start] = None
    return found


def table_cells(row: str) -> list[tuple[int, str]]:
    """A table row's cells, each stripped and with where it starts in the row."""
    cells, at = [], 0
    for piece in TABLE_BAR.split(row):
        text = piece.strip()
        cells.append((at + (piece.index(text) if text else 0), text))
        at += len(piece) + 1
    if row.lstrip().startswith("|"):
        cells = cells[1:]
    if row.rstrip().endswith("|") and not row.rstrip().endswith("\\|"):
        cells = cells[:-1]
    return cells


def table_bars(row: str) -> list[int]:
    """Where the bar before each cell is (for a first cell with no bar before it, the one after)."""
    bars = [m.start() for m in TABLE_BAR.finditer(row)]
    return bars if row.lstrip().startswith("|") else bars[:1] + bars


def without_reference_marks(text: str, points: Sequence[tuple[int, int]]) -> tuple[str, tuple[tuple[int, int], ...]]:
    """A line without the reference marks a wiki or journal page puts after a sentence or clause
    ("Asia.[1] It", "cm,[2][3]", "[citation needed]"), with its points (as in `markdown_line`)
    moved. Left in, a mark kept the sentence splitter from ending a sentence at "Asia." (it looks for
    a space after the stop), and a quoted sentence showed "[2][3]" as if citing passages 2 and 3."""
    marks = [m.span() for m in REFERENCE_MARK.finditer(text)]
    if not marks:
        return text, tuple(points)
    where, index = [], 0  # each character's offset in the line
    for at in range(len(text) + 1):
        while index + 1 < len(points) and points[index + 1][0] <= at:
            index += 1
        where.append(points[index][1] + at - points[index][0])
    kept, moved, dropped = "", [], {at for a, b in marks for at in range(a, b)}
    for at in [*range(len(text)), len(text)]:
        if at in dropped:
            continue
        if not moved or where[at] != moved[-1][1] + len(kept) - moved[-1][0]:
            moved.append((len(kept), where[at]))
        kept += text[at] if at < len(text) else ""
    return kept, tuple(moved)


def _lines_with_offsets(text: str) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their start offset, surrounding white space trimmed."""
    offset = 0
    for raw in text.splitlines(keepends=True):
        stripped = raw.strip()
        if stripped:
            yield offset + raw.index(stripped[0]), stripped
        offset += len(raw)


def _is_boilerplate(line: str) -> bool:
    return line.lower() in BOILERPLATE_LINES or bool(
        RIGHTS.match(line) or PAGE_NOTE.fullmatch(line) or CREDIT.fullmatch(line) or CONTENTS_LINE.fullmatch(line)
    )


CREDIT_CHARS = 80  # a photographer's credit and agency ("Ana Lis/Pool Photo via AP")


def _drop_repeated_captions(kept: list[Line]) -> list[Line]:
    """Of two neighbouring lines where one is the other with a credit glued on, keep the shorter.

    News pages print a photo caption twice, once with the photographer's credit glued on. A line
    that goes on in lower case or at length from the one before ("The Harbour Bridge is a steel
    arch…" under the title "The Harbour Bridge") is text, not a credit: it stays.
    """
    drop: set[int] = set()
    for i in range(len(kept) - 1):
        a, b = kept[i][1], kept[i + 1][1]
        short, long_ = (i, i + 1) if len(a) <= len(b) else (i + 1, i)
        more = kept[long_][1][len(kept[short][1]) :].strip()
        credit = len(more) <= CREDIT_CHARS and not more[:1].islower()
        if len(kept[short][1]) >= 20 and kept[long_][1].startswith(kept[short][1]) and credit:
            drop.add(long_)
    return [item for i, item in enumerate(kept) if i not in drop]


def parse_dateline(text: str) -> Dateline:
    """Place, date and agency of the first paragraph that opens with a dateline, in either style
    (slashed or bracketed agency); an empty `Dateline` when none of the first paragraphs has one."""
    found = find_dateline(text)
    return found[2] if found else Dateline()


def is_bare_label(match: re.Match[str] | None) -> bool:
    """Whether a dateline's match is a place alone before a colon ("NEW DELHI:"), which a
    speaker's name in a transcript looks like."""
    return bool(match and match["bare_place"] and match.group().rstrip().endswith(":"))


def find_dateline(text: str) -> tuple[int, int, Dateline] | None:
    """Where the dateline that opens one of the first paragraphs is (its start and end, without the
    space after it) and what it says, or None."""
    at, paragraphs = 0, text.split("\n\n")[:8]
    # A transcript opens paragraph after paragraph with a speaker's name and a colon ("HOST:", "ANA
    # LIND:"), as an Indian paper opens its one dateline ("NEW DELHI:"): more than one is speakers.
    matches = [DATELINE.match(paragraph) for paragraph in paragraphs]
    speakers = sum(map(is_bare_label, matches)) > 1
    for paragraph, match in zip(paragraphs, matches):
        if match and not (speakers and is_bare_label(match)):
            date = match["date"] or match["wire_date"] or match["named_date"] or match["unplaced_date"] or ""
            agency = next((match[name] for name in AGENCY_GROUPS if match[name]), "")
            # "SAN FRANCISCO--(BUSINESS WIRE)--" joins its place to the agency's dashes.
            place = (match["place"] or match["named_place"] or match["bare_place"] or "").strip(" -–—")
            region = match["region"] or match["slash_region"]
            place += f", {region}" if region else ""
            return at, at + len(match.group().rstrip()), Dateline(place, date.strip(), agency.strip())
        at += len(paragraph) + 2
    return None
