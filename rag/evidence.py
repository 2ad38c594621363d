"""Evidence: the sentences of the retrieved passages that answer the question, scored by a fitted model.

Retrieval finds the right passage; the answer is usually one sentence of it. This stage describes
every sentence of the passages by signals that mean the same on any text, and a logistic model
fitted on labelled (question, sentence) pairs (`eval/fit.py`, weights in `rag/scorer.json`) turns
them into the probability that the sentence holds the answer. That probability ranks the
sentences. A second logistic model, fitted on the best sentence of each tuning question only,
reads the same signals and the ranker's logit as its `confidence`: the probability that the
sentence, taken as the answer, is right. It decides whether there is an answer at all
(`Scorer.threshold`): telling a right best sentence from a wrong one is not the task of ranking
every sentence, which most of the pairs (sentences nowhere near the answer) teach (eval/README.md).
LlamaIndex has sentence-window retrieval and rerankers, but nothing that scores sentences for
the kind of answer a question wants, nor keeps offsets into the original file, so this is ours.

The signals of a sentence, each in about 0..1 (`signals`):
- meaning: cosine similarity of question and sentence (the embedder), the best of the whole
  sentence and its clauses, and `meaning_gap`, how far it falls below the best sentence's;
- words: the question's content words in the sentence, weighted by rarity among the candidate
  sentences, and `words_gap`, how far below the best;
- missing: the rarity of the rarest question word that neither the sentence nor the one before
  has, over the rarest question word's (a question about something the text does not say often
  names the text's words but one);
  the words of the headings above a sentence, and of the question in the text it answers, count
  as its own in both ("What was fixed in 2.1?" of a list item under "Version 2.1" and "Fixed");
- kind: whether it holds the kind of answer the question asks for (a date for "when", a number
  for "how many", a name for "who") that the question does not already give;
- new: the share of the sentence's content words the question lacks (an answer adds something);
- rank and passage: 1 / its passage's rank, and the passage's dense similarity.

Not handled: answers spread over two sentences that are not neighbours; the kind of answer in
questions not in English.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.documents import CELL_JOIN, DATELINE, LIST_MARK, find_byline, find_dateline
from rag.retrieve import Passage
from rag.text import (
    ABBREVIATIONS,
    CLAUSE_NUMBER,
    WORD,
    Annotator,
    as_spelt,
    clause_windows,
    content_terms,
    heading_below,
    idf,
    is_field,
    is_new,
    rarity,
    section_level,
    sentence_spans,
    word_overlap,
)

Similarity = Callable[[list[str], list[str]], list[list[float]]]

SCORER = Path(__file__).with_name("scorer.json")
LOGIT = "logit"  # what the check calls the ranker's log-odds among the signals it reads
MIN_SENTENCE_WORDS = 4  # shorter lines are headings, credits and datelines, not evidence
MONTH = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
YEAR = re.compile(r"\b(?:1[0-9]|20)\d\d\b")
# A time counted from an era or back from now: "AD 14", "450 BC", "13,000 BP", "7500 yr ago".
ERA = re.compile(
    r"\b(?:AD|CE)\s+\d{1,4}\b|\b\d[\d,.]*\s*\(?(?:BP|BCE?|AD|CE)\b|\b\d[\d,.]*\s*(?:years?|yr)\s+(?:ago|BP)\b"
)
# A time of day ("5:30 am", "7 p.m.", "noon"): an answer to "when" and "what time".
TIME = re.compile(r"\b\d{1,2}(?::\d\d)?\s*(?i:[ap]m\b|[ap]\.m\.)|\b\d{1,2}:\d\d\b|\b(?i:noon|midnight)\b")
DATE = re.compile(
    rf"\b{MONTH}\.?\s+\d{{1,2}}\b|\b\d{{1,2}}\s+{MONTH}\b|{YEAR.pattern}|{ERA.pattern}|\b{MONTH}\b|{TIME.pattern}|"
    r"\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|yesterday|today)\b|"
    r"\b\d{3,4}s\b|\b\d{1,2}(?:st|nd|rd|th) (?i:century)\b"
)
# A day, not only a year: what "on what date" and "which day" ask for.
DAY = re.compile(
    rf"\b{MONTH}\.?\s+\d{{1,2}}\b|\b\d{{1,2}}\s+{MONTH}\b|"
    r"\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|yesterday|today)\b"
)
# A number spelled out, "one" left out (more often a pronoun than a count): "eleven", "forty-two".
SPELLED = (
    r"(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|(?:thir|four|fif|six|seven|eigh|nine)teen"
    r"|(?:twen|thir|for|fif|six|seven|eigh|nine)ty(?:-(?:one|two|three|four|five|six|seven|eight|nine))?"
    r"|dozens?|hundred|thousand|million|billion)"
)
# A span of time stated as such ("27 years", "two decades", "a ten-year lease").
DURATION = re.compile(
    rf"\b(?:\d+|a|one|{SPELLED}|several|many)(?:\s+|-)"
    r"(?:[a-z]+\s+)?(?:years?|months?|weeks?|days?|hours?|minutes?|decades?|centuries|century)\b",
    re.IGNORECASE,
)
# A rate, which spans no time: "120 euros a year", "three times a day", "$2 per hour".
RATE = re.compile(
    r"(?:\d[\d,.]*%?|\b(?:once|twice|thrice|times))(?:\s+[a-z]+){0,2}\s+(?:a|an|per|each|every)\s+"
    r"(?:year|month|week|day|hour|minute|decade|century)\b",
    re.IGNORECASE,
)
# A distance or size stated with its unit ("300 km", "12 feet", "a 6-kilometre spur"): the other
# answer to "how long".
LENGTH = re.compile(
    rf"(?:\b\d[\d,.]*(?:\s*|-)|\b(?:a|an|one|{SPELLED}|several|hundreds|thousands)(?:\s+|-))"
    r"(?:km|kilomet(?:re|er)s?|mi|miles?|m|met(?:re|er)s?|cm|mm|ft|feet|foot|yards?|inch(?:es)?)\b",
    re.IGNORECASE,
)
# How often a thing happens: a rate ("three times a day"), "every 20 seconds", "every Tuesday",
# "on Sundays", "twice", "weekly".
FREQUENCY = re.compile(
    rf"{RATE.pattern}|\bevery\s+(?:(?:\d+|{SPELLED})(?:\s*(?:to|or|-|–)\s*(?:\d+|{SPELLED}))?\s+|other\s+|few\s+)?"
    r"(?:seconds?|minutes?|hours?|days?|nights?|weeks?|months?|years?|decades?)\b"
    r"|\b(?:every|each)\s+(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|weekday|weekend|morning|"
    r"afternoon|evening)s?\b|\bon\s+(?:Mondays|Tuesdays|Wednesdays|Thursdays|Fridays|Saturdays|Sundays|weekdays|weekends)\b"
    r"|\b(?:once|twice|daily|nightly|weekly|fortnightly|monthly|yearly|annually|hourly)\b|\btimes\s+an?\b",
    re.IGNORECASE,
)
# When, counted from now or from an event: "within 14 days", "after three weeks", "in two years".
SOON = re.compile(rf"\b(?:within|after|in)\s+(?:the\s+next\s+)?(?:{DURATION.pattern})", re.IGNORECASE)
# When a span ends, another answer to "how long": "(to last) until Sunday", "through the end of June".
UNTIL = re.compile(rf"\b(?:until|till|through)\s+(?:the\s+(?:end|middle|start)\s+of\s+)?(?:{DATE.pattern})")
# A count or amount; a year is not one ("How many bases?" is not "1960").
QUANTITY = re.compile(
    rf"\b(?!(?:1[0-9]|20)\d\d\b)\d[\d,.]*%?(?!\w)|\b{SPELLED}\b"
    r"|\b(?:a|one|two|three|four)[\s-](?:half|third|quarter|fifth|tenth)s?\b",  # a share: "by a third"
    re.IGNORECASE,
)
HOW_MANY_TIMES, TIMES = re.compile(r"\bhow many times\b", re.I), re.compile(r"\b(?:twice|thrice)\b", re.I)
# Where a thing is kept on a computer or the web, the answer to "where" in a manual: a file's path
# ("~/.cache/app/log.txt", "C:\\Users", "%APPDATA%\\app") or an address ("https://example.org/faq").
LOCATION = re.compile(r"(?<![\w/])(?:~|\.{1,2})?/[\w.\-]+(?:/[\w.\-]*)+|\b[A-Z]:\\\S*|%\w+%\S*|\bhttps?://\S+")
# Runs of capitalised words: names of people, places, bodies and works.
NAME = re.compile(r"\b[A-Z][\w'’\-]*(?:\s+(?:of|the|de|von|van|al|bin)?\s*[A-Z][\w'’\-]*)*")
# Which kind of answer a question asks for, from its question words.
AUXILIARY = r"(?:did|does|do|was|were|is|are|will|would|has|have|had|can|could|should|must)"
ASKING = r"(?:what|which|who|whom|whose|where|how|why)"
KINDS = (
    ("year", re.compile(r"\b(?:what|which) year\b|\bin what year\b", re.I)),
    ("day", re.compile(r"\b(?:what|which) (?:exact )?(?:date|day)\b", re.I)),
    # A leading "when" asks for a date unless it opens a clause that another question word follows
    # ("When the bridge opened, who paid for it?").
    (
        "date",
        re.compile(
            rf"^\W*when\b(?!.*\b{ASKING}\b)|\bwhen\s+{AUXILIARY}\b|\bwhat (?:month|time|century|decade)\b", re.I
        ),
    ),
    ("duration", re.compile(r"\bhow (?:many|much) (?:years|months|weeks|days|hours|decades)\b", re.I)),
    ("length", re.compile(r"\bhow long\b", re.I)),  # a time or a distance
    ("frequency", re.compile(r"\bhow (?:often|frequently)\b", re.I)),
    (
        "quantity",
        re.compile(
            r"\bhow (?:many|much|far|old|big|large|high|tall|deep|wide|fast|quickly|heavy|hot|cold|warm|strong|steep|thick"
            r"|expensive)\b|\bwhat (?:number|percentage|share|proportion|fraction|amount)\b",
            re.I,
        ),
    ),
    ("name", re.compile(r"\bwho(?:m|se|'s)?\b", re.I)),
    ("place", re.compile(r"\bwhere\b|\b(?:what|which) (?:city|country|town|place|state|region)\b", re.I)),
    ("entity", re.compile(r"\bwhich\b|\bwhat (?:is|was|are|were) (?:the )?name\b", re.I)),
)
# The entity labels of spaCy's English pipeline that answer each kind of question (`question_kind`).
KIND_LABELS = {
    "name": ("PERSON", "ORG"),
    "place": ("GPE", "LOC", "FAC"),
    "year": ("DATE",),
    "day": ("DATE",),
    "date": ("DATE", "TIME"),
    "duration": ("DATE", "TIME"),
    "length": ("DATE", "TIME", "QUANTITY"),
    "quantity": ("CARDINAL", "QUANTITY", "MONEY", "PERCENT"),
}
KIND_PATTERNS = {
    "year": re.compile(f"{YEAR.pattern}|{ERA.pattern}"),
    "day": DAY,
    "date": re.compile(f"{DATE.pattern}|{SOON.pattern}"),
    "duration": DURATION,
    "length": re.compile(f"{DURATION.pattern}|{LENGTH.pattern}|{UNTIL.pattern}", re.IGNORECASE),
    "quantity": QUANTITY,
    "frequency": FREQUENCY,
}


@dataclass(frozen=True)
class Evidence:
    """One sentence that may answer the question; `passage` is its 1-based passage number."""

    text: str
    passage: int
    doc_id: str
    title: str
    start: int  # character offsets of the sentence in the original file
    end: int
    score: float  # the probability that it holds the answer, by which sentences are ranked (`Scorer`)
    confidence: float = 0.0  # the probability that it is right, taken as the answer (`Scorer.confidence`)
    signals: dict[str, float] = field(default_factory=dict)
    before: str = ""  # the sentence before it in the passage, for context

    def to_dict(self) -> dict:
        """The evidence as JSON shows it."""
        return asdict(self)


@dataclass(frozen=True)
class Sentence:
    """A candidate sentence: its passage (0-based), its span in the passage text, the one before."""

    passage: int
    start: int
    end: int
    text: str
    before: str
    headings: str = ""  # the headings above it, innermost last (`rag.text.heading_below`)
    asked: str = ""  # the question the text asks right before it, which it answers (an FAQ's)
    subject: str = ""  # what a field with no heading over it is of: the page's title (`candidates`)


@dataclass(frozen=True)
class Scorer:
    """Two logistic models over named signals: the ranker, the probability that a sentence holds
    the answer, and the check, the `confidence` that it is right taken as the answer (its signals
    and the ranker's logit). `threshold` is the best sentence's confidence below which the answer
    is an abstention, and `sure` the one below which an answer is marked uncertain; all chosen by
    `eval/fit.py`."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float
    sure: float
    check_features: tuple[str, ...] = ()  # the ranker's logit is LOGIT
    check_weights: tuple[float, ...] = ()
    check_bias: float = 0.0

    @classmethod
    def load(cls, path: Path = SCORER) -> Scorer:
        """The scorer that `eval/fit.py` wrote (one written before the check has none: its
        confidence is then the ranker's probability, as it was)."""
        data = json.loads(path.read_text(encoding="utf-8"))
        check = data.get("check", {"features": [], "weights": [], "bias": 0.0})
        return cls(
            tuple(data["features"]),
            tuple(data["weights"]),
            data["bias"],
            data["threshold"],
            data["sure"],
            tuple(check["features"]),
            tuple(check["weights"]),
            check["bias"],
        )

    def logit(self, signals: dict[str, float]) -> float:
        """The ranker's log-odds that a sentence with these signals holds the answer."""
        return self.bias + sum(w * signals[name] for name, w in zip(self.features, self.weights))

    def probability(self, signals: dict[str, float]) -> float:
        """The probability that a sentence with these signals holds the answer (ranks the sentences)."""
        return sigmoid(self.logit(signals))

    def confidence(self, signals: dict[str, float]) -> float:
        """The probability that a sentence with these signals is right, taken as the answer."""
        if not self.check_features:
            return self.probability(signals)
        read = {**signals, LOGIT: self.logit(signals)}
        return sigmoid(
            self.check_bias + sum(w * read[name] for name, w in zip(self.check_features, self.check_weights))
        )


def sigmoid(z: float) -> float:
    """The logistic function, bounded so that exp cannot overflow."""
    return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


# An interview's "Q:" and "A:" before what is asked and answered: not part of what is quoted.
INTERVIEW_LABEL = re.compile(r"[QA]:\s+")


def candidates(passages: Sequence[Passage]) -> list[Sentence]:
    """Every sentence of the passages long enough to state a fact, each once (chunks overlap). A
    dateline is not part of one: alone ("OSLO, May 4. /NTB/.") it is no sentence, and one that opens
    a sentence ("PARIS, March 3 (AFP) - The ...") is cut off, so that its place, date and agency are
    neither quoted as the answer nor taken for the name or date a question asks for; nor is an
    interview's "A:". A question in
    the text (an FAQ's heading, a rhetorical one) states nothing: it is not a candidate, but it is
    what the sentences under it (its heading's) or after it, to the end of the next paragraph (an
    interviewer's, and the reply), answer (`Sentence.asked`)."""
    seen: set[str] = set()
    found = []
    for index, passage in enumerate(passages):
        before, cut = "", 0  # `cut`: where a dateline ends, which may be past a sentence end ("Ore.")
        above = list(passage.headings)  # the headings over the sentence, outermost first
        heading_before, levels = passage.after_heading, dict(passage.heading_levels)
        spans, at = sentence_spans(passage.text), 0
        # The question the text last asked, and the paragraph breaks since: it is answered by the
        # rest of its paragraph and the next one (an interview's reply, which may open with a
        # sentence too short to be a candidate: "Winter. Ice on the paths is dangerous.").
        question, breaks, previous_end = "", 0, 0
        while at < len(spans):
            span_start, end = spans[at]
            breaks += "\n\n" in passage.text[previous_end:span_start]
            question, previous_end = question if breaks < 2 else "", end
            dateline = DATELINE.match(passage.text[span_start:])  # its ^ would not match at a `pos`
            cut = span_start + dateline.end() if dateline else cut
            start = max(span_start, cut)
            if label := INTERVIEW_LABEL.match(passage.text, start, end) or CLAUSE_NUMBER.match(
                passage.text, start, end
            ):
                start = label.end()
            text = passage.text[start:end]
            # A reply that opens too short to state anything ("Yes.", "Winter.") is read with the
            # sentence after it in its paragraph: the opener answers, the sentence says what of.
            replying = is_question(before) or (not before and bool(above) and is_question(above[-1]))
            short = len(text.split()) < MIN_SENTENCE_WORDS and at + 1 < len(spans)
            if replying and short and "\n" not in passage.text[end : spans[at + 1][0]]:
                end, at = spans[at + 1][1], at + 1
                text = passage.text[start:end]
            items = list_items(passage.text, spans[at + 1 :], levels) if text.endswith(":") else []
            if items:  # the list is what the sentence says: "Bring: a passport; a photo"
                text = f"{text} {'; '.join(item for item, _ in items)}"
                end, at = items[-1][1], at + len(items)
            field = is_field(passage.text, start, end)  # "Occupation: Glaciologist", short but a fact
            is_heading, under = (
                (False, above) if items else heading_below(passage.text, span_start, end, heading_before, above, levels)
            )
            # A heading the file marks as one (Markdown's "##", HTML's <h2>, or a section number:
            # "3. Parking on Quay Street", "2. What is in the box") names what the text under it
            # says, and says nothing of it. A short line marked by nothing may be a sentence that
            # lost its stop, or a news story's crosshead that states a claim: it stays.
            marked = is_heading and (under[-1] in levels or section_level(under[-1]) > 0)
            # A line with no stop that opens with a question word asks too, however long a heading it is.
            asking = is_question(text) or (heading_asks(text) and (is_heading or text[-1:] not in '.!"”’)'))
            if (states_a_fact(text) or field) and text not in seen and not asking and not marked:
                seen.add(text)
                innermost = above[-1] if above else ""
                asked = innermost if heading_asks(innermost) else question
                # A field with no heading over it states a fact of what the page is about: an
                # infobox's "Born: 12 May 1931, Ghent" is read under the page's title.
                subject = passage.title if not above and field else ""
                found.append(Sentence(index, start, end, text, before, " ".join(above) or subject, asked, subject))
            before = text
            if asking:
                question, breaks = text, 0
            if not items:  # a list's items are none of them headings
                heading_before, above = is_heading, under
            at += 1
    return found


def states_a_fact(text: str) -> bool:
    """Whether a sentence is long enough to state a fact: four words, or three and a full stop
    ("Turnout was 31%.", "Cooking: 40 minutes."), or two, one a number, and a full stop ("Serves
    4."), but not an abbreviation's ("Before the St.", where a passage was cut)."""
    words = text.split()
    return len(words) >= MIN_SENTENCE_WORDS or (
        text.endswith(".")
        and words[-1][:-1] not in ABBREVIATIONS
        and (len(words) == 3 or (len(words) == 2 and any(c.isdigit() for c in text)))
    )


MAX_LIST_ITEMS = 12
LIST_ITEM_WORDS = 15  # an unmarked line longer than this, or ending with a stop, is prose after the list


def list_items(text: str, spans: Sequence[tuple[int, int]], levels: Mapping[str, int]) -> list[tuple[str, int]]:
    """The items (their text, without the mark, and where each ends) of the list that the lines
    starting at `spans` hold, which a sentence ending with a colon leads into ("To apply, bring:"):
    whole lines, each with a list mark or, in a file that marks its headings (Markdown, HTML, which
    drop the marks of lists too), short and unstopped and no heading nor table row ("To install,
    run:" and a code block's line is one too). Alone, the sentence that leads
    in was quoted as the answer ("To apply, bring the following:") and its items were no candidates,
    too short to state a fact."""
    items = []
    for start, end in spans[:MAX_LIST_ITEMS]:
        line = text[start:end]
        whole = text.rfind("\n", 0, start) + 1 == start and text[end : end + 1] in ("\n", "")
        mark = LIST_MARK.match(line)
        unmarked = (
            bool(levels)
            and line not in levels
            and len(line.split()) <= LIST_ITEM_WORDS
            and line[-1:] not in ".!?:"
            and CELL_JOIN not in line  # a table's row, a fact of its own
        )
        if not whole or not (mark or unmarked):
            break
        items.append((line[mark.end() :] if mark else line, end))
    return items


# A heading that opens with a question word or "if" ("How to store the capsules", "What the
# tablets are for", "If you forget a dose") names what the text under it answers, as an FAQ's
# question does: quoted, it answered "How should they be stored?" with "How to store the capsules."
# Capitalised, at the line's start: a list's item in lower case, "- if you are allergic", states a case.
INDIRECT_QUESTION = re.compile(r"(?:What|How|Why|When|Where|Which|Who|Whom|Whose|If)\b")


def heading_asks(heading: str) -> bool:
    """Whether a heading asks what the text under it says: a question, or one put indirectly."""
    return is_question(heading) or INDIRECT_QUESTION.match(heading) is not None


def is_question(text: str) -> bool:
    """Whether a sentence or heading of the text asks, ending with "?" (before a closing quote)."""
    return text.rstrip(" \"'\u201d\u2019)]").endswith("?")


# "Who is Ada Lind?" names whom it asks about and wants what she is, not another name.
WHO_IS_NAMED = re.compile(rf"^\W*(?i:who(?:'s|\s+(?:is|was|are|were)))\s+{NAME.pattern}\W*$")


def question_kind(question: str) -> str:
    """The kind of answer a question wants: year, day, date, duration, quantity, name, place,
    entity, or "" (any). The question word that comes first decides; at one place the more
    specific kind wins ("what year" over "what")."""
    if WHO_IS_NAMED.match(question):
        return ""
    found = [(m.start(), order, kind) for order, (kind, pattern) in enumerate(KINDS) if (m := pattern.search(question))]
    return min(found)[2] if found else ""


# A question answered yes or no ("Was the airport closed?"): a sentence that says the opposite of
# what it asks ("The airport remained open") is its answer.
YES_NO = re.compile(rf"^\W*{AUXILIARY}\b", re.IGNORECASE)


# A follow-up that asks nothing of its own, only names what to ask it of: "And the last one?",
# "What about a monthly pass?" (not "Is it open on Sundays?", a question of its own).
ONLY_NAMES = re.compile(rf"^(?!.*\b(?:{ASKING}|when)\b)(?!\W*{AUXILIARY}\b)|^\W*(?:and )?(?:what|how) about\b", re.I)


def follow_up_kind(asking: str, previous: str) -> str:
    """The kind of answer a follow-up wants: its own, or the previous question's when it only names
    what to ask it of ("How much is a ticket?", then "And a monthly pass?" wants an amount)."""
    own = question_kind(asking)
    return question_kind(previous) if not own and previous and ONLY_NAMES.search(asking) else own


def kind_found(kind: str, sentence: str, question: str) -> float:
    """1 when the sentence holds an answer of that kind that the question does not already give,
    else 0; 0.5 when the question asks for no particular kind; a one-word name counts less."""
    if not kind:
        return 0.5
    if kind in ("name", "place", "entity"):
        # A one-word name that opens the sentence may be any capitalised word ("Residents").
        names = [(m.group(), m.start()) for m in NAME.finditer(sentence) if is_new(m.group(), question)]
        if kind == "place" and any(is_new(m.group(), question) for m in LOCATION.finditer(sentence)):
            return 1.0
        if kind == "entity" and chosen_among(sentence, question):
            return 1.0
        return max((1.0 if " " in n else 0.25 if at == 0 else 0.5 for n, at in names), default=0.0)
    found = any(is_new(item, question) for item in KIND_PATTERNS[kind].findall(as_read(kind, sentence)))
    # "How many times?" is answered by "renewed twice"; elsewhere "twice the estimate" counts nothing.
    times = kind == "quantity" and HOW_MANY_TIMES.search(question) is not None and TIMES.search(sentence) is not None
    return 1.0 if found or times else 0.0


# What a "which" question chooses among: "pier" in "Which pier should boats use?".
WHICH_NOUN = re.compile(r"\bwhich\s+([a-z][\w'’-]*)", re.IGNORECASE)


def chosen_among(sentence: str, question: str) -> bool:
    """Whether the sentence names one of what a "which" question chooses among by a word the
    question lacks: "the south pier" for "Which pier should boats use?", an answer with no name."""
    asked = WHICH_NOUN.search(question)
    noun = content_terms(asked[1]) if asked else set()
    return bool(noun) and any(
        content_terms(word) == noun and content_terms(before) and is_new(before, question)
        for before, word in itertools.pairwise(WORD.findall(sentence))
    )


def as_read(kind: str, sentence: str) -> str:
    """The sentence as the pattern of a kind reads it: for a count, without its days and times (the
    3 of "March 3" or of "3 pm" counts nothing); for a span of time, without its rates ("a year" of
    "120 euros a year" is no span)."""
    if kind == "quantity":
        return TIME.sub(" ", DAY.sub(" ", sentence))
    return RATE.sub(" ", sentence) if kind in ("duration", "length") else sentence


# What a "how many" question counts: "bridges" in "How many bridges are there?".
HOW_MANY = re.compile(r"\bhow many\s+([a-z][\w'’-]*)", re.IGNORECASE)
# People are counted under many names ("1,150 signatures", "9,000 cyclists", "300 residents").
PEOPLE = content_terms("people persons")
COUNTS = ("CARDINAL", "QUANTITY", "MONEY", "PERCENT")


# A "how much" that asks for a sum of money: "How much did the council pay?", "How much will it cost?";
# not "how much of" the cost, a share.
HOW_MUCH_MONEY = re.compile(
    r"\bhow much\b(?!\s+of\b)(?=.*\b(?:cost|costs|costing|pay|pays|paid|paying|spend|spends|spent|spending|price|priced|"
    r"worth|fees?|charge|charges|charged|budget|budgeted|invest|invested|earn|earns|earned|funding)\b)",
    re.IGNORECASE,
)
CURRENCY = re.compile(
    r"[$€£¥₽]|\b(?:dollars?|euros?|pounds?|yen|yuan|renminbi|roubles?|rubles?|crowns?|kron[ae]r|krona|francs?|"
    r"rupees?|pesos?|reais|USD|EUR|GBP|JPY|CNY|RUB)\b"
)
# A change or part stated as a share, which answers "how much did the price rise?" as a sum would.
SHARE = re.compile(r"%|\bper ?cent\b|\bhalf\b|\b(?:thirds?|quarters?|fifths?|tenths?)\b", re.IGNORECASE)


# The embedder's cosine at which two counted nouns name one thing: ships and vessels 0.62, staff and
# employees 0.72, against lorries and cars 0.43, workers and members 0.50, votes and seats 0.47.
SAME_THING = 0.55
# A word of a count that is not what it counts: "as many as 70", "about 9,000", "14 of its 25".
NUMBER_WORD = re.compile(rf"[\d,.]+|{SPELLED}|as|many|about|around|some|over|under|up|to|of|its|their|the", re.I)


def counts_something_else(
    question: str, sentence: str, annotator: Annotator, similarity: Similarity | None = None
) -> bool:
    """Whether a "how many" question's sentence counts only other things: every number in it names
    what it counts, and none is what is asked ("About 9,000 cyclists cross the bridges daily" does
    not say how many bridges there are), except people, who go by many names ("9,000 cyclists" is
    how many people cross them), and, with `similarity`, a thing under a name that means the same
    ("70 vessels" is how many ships). A bare number may count anything ("Three died"). Asked how
    much something cost, a sentence with no sum of money nor share counts other things ("about
    12,000 acres" is not what a fire cost; "4.5 percent" is how much a price rose)."""
    if HOW_MUCH_MONEY.search(question):  # the sentence is annotated only when a pattern asks (spaCy's time)
        return not (
            CURRENCY.search(sentence)
            or SHARE.search(sentence)
            or any(label == "MONEY" for _, label in annotator.entities(sentence))
        )
    asked = HOW_MANY.search(question)
    if asked is None:
        return False
    counted = content_terms(asked[1])
    if counted & PEOPLE:
        return False
    amounts = [
        text
        for text, label in annotator.entities(sentence)
        # a span of time counts its unit, though spaCy calls it a DATE or TIME: "three days" counts days
        if label in COUNTS or (label in ("DATE", "TIME") and DURATION.search(text))
    ]
    named = [text for text in amounts if len(text.split()) > 1 and not content_terms(text) & counted]
    if not amounts or len(named) < len(amounts):
        return False
    nouns = [" ".join(w for w in WORD.findall(text) if not NUMBER_WORD.fullmatch(w)) for text in named]
    if similarity is None or not all(nouns):
        return True
    return all(cosine < SAME_THING for cosine in similarity([asked[1]], nouns)[0])


# What a measure asked for is counted in: "How wide is the bay?" wants a length, not a count.
MASS = re.compile(r"\d[\d,.]*\s*(?:kg|kilo(?:gram)?s?|tonnes?|tons?|t|lbs?|pounds?|g|grams?)\b", re.IGNORECASE)
SPEED = re.compile(
    r"\d[\d,.]*\s*(?:km/h|kph|mph|knots?|m/s)|\b(?:per|a|an|each|every|/)\s*(?:second|minute|hour|day|week|month|year|"
    r"decade|century)\b",
    re.IGNORECASE,
)
TEMPERATURE = re.compile(r"\d\s*°|\bdegrees?\b", re.IGNORECASE)
# An age: "24 years old", "a 90-year-old", "aged 24", "Ana Lind, 24, won", or the year it began.
AGE = re.compile(
    rf"\b(?:\d[\d,.]*|a|one|{SPELLED})(?:\s+|-)(?:years?|months?|weeks?|days?|decades?|centur(?:y|ies))(?:\s+|-)old\b"
    rf"|\baged?\s+(?:\d|{SPELLED})|,\s*\d{{1,3}}\s*,|\(\s*\d{{1,3}}\s*\)|{YEAR.pattern}"
    # an age limit: "16 or older", "18 and over", "over 65s", "under-16s", "12+"
    rf"|\b(?:\d{{1,3}}|{SPELLED})\s+(?:or|and)\s+(?:older|over|above|under|younger)\b"
    r"|\b(?:over|under)[\s-]\d{1,3}s\b|\b\d{1,3}\+",
    re.IGNORECASE,
)
MEASURES = (
    (re.compile(r"\bhow (?:wide|high|tall|deep)\b", re.IGNORECASE), LENGTH),
    (re.compile(r"\bhow heavy\b", re.IGNORECASE), MASS),
    # A speed, or how soon a thing is done: "answers within one working day".
    (re.compile(r"\bhow (?:fast|quickly)\b", re.IGNORECASE), re.compile(f"{SPEED.pattern}|{SOON.pattern}", re.I)),
    (re.compile(r"\bhow (?:hot|cold|warm)\b", re.IGNORECASE), TEMPERATURE),
    (re.compile(r"\bhow old\b", re.IGNORECASE), AGE),
)


def measures_something_else(question: str, sentence: str) -> bool:
    """Whether a question for a measure ("how wide", "how heavy", "how fast", "how hot", "how old")
    has a sentence that states none in its units: "It has 40 piers" does not say how wide a bridge
    is, nor "with 18 kilometres to go" how old a rider is."""
    return any(asked.search(question) and not unit.search(sentence) for asked, unit in MEASURES)


def holds_asked_kind(signals: dict[str, float]) -> bool:
    """Whether a sentence may answer at all: a question that asks for a kind of answer (a date, a
    number, a name) is not answered from a sentence holding none, however close it is (on both
    tuning corpora this raised precision and abstention more than it cost answers: eval/README.md)."""
    return signals.get("kind", 0.5) > 0


def entity_kind(kind: str, sentence: str, question: str, annotator: Annotator) -> float:
    """`kind_found` read from spaCy's entities instead of patterns: 1 when the sentence holds an
    entity of the asked kind that the question does not give (measured against the patterns in
    eval/README.md; the patterns were kept as a signal, the entities cut short answers)."""
    labels = KIND_LABELS.get(kind)
    if not labels:
        return kind_found(kind, sentence, question)
    return float(any(label in labels and is_new(text, question) for text, label in annotator.entities(sentence)))


def missing_rarity(wanted: set[str], have: set[str], weight: dict[str, float], unseen: float) -> float:
    """The rarity of the rarest wanted term the text lacks, over the rarest wanted term's (0: none lacking)."""
    if not wanted:
        return 0.0
    rarest = max(weight.get(t, unseen) for t in wanted)
    return max((weight.get(t, unseen) for t in wanted - have), default=0.0) / rarest


def sentence_meaning(question: str, sentences: Sequence[Sentence], similarity: Similarity) -> list[float]:
    """Each sentence's cosine with the question, read as the best of the whole sentence, its
    clauses and its pairs of neighbouring clauses (`clause_windows`): a long sentence's other
    facts dilute its cosine with a question about one of them (eval/README.md). A sentence that
    answers a question the text asks (an FAQ's) is read with that question too: "Rides over the
    time are charged $3" means, under "What if I keep a bike too long?", what a reader asks. An
    infobox's field is read with the page's title: "Known for: ice-core dating" says nothing alone."""
    windows = [
        clause_windows(s.text) + [f"{context} {s.text}" for context in (s.asked, s.subject) if context]
        for s in sentences
    ]
    texts = list(dict.fromkeys(w for group in windows for w in group))
    cosine = dict(zip(texts, similarity([question], texts)[0]))
    return [max(max(float(cosine[w]) for w in group), 0.0) for group in windows]


def signals(
    question: str, sentences: Sequence[Sentence], passages: Sequence[Passage], similarity: Similarity, kind: str
) -> list[dict[str, float]]:
    """Every signal of every candidate sentence for the question (see the module's docstring)."""
    meaning = sentence_meaning(question, sentences, similarity)
    terms = [content_terms(s.text) for s in sentences]
    # The headings above a sentence and the question it answers (an FAQ's, an interviewer's) say
    # what it is about: their words count as its own. A passage's sentences share them.
    context = {key: content_terms(" ".join(key)) for key in {(s.headings, s.asked) for s in sentences}}
    headings = [context[(s.headings, s.asked)] for s in sentences]
    weight, unseen = rarity(terms), idf(0, len(sentences))
    wanted = as_spelt(content_terms(question), set().union(*terms, *context.values()))
    rows = [
        {
            "meaning": cosine,
            "words": word_overlap(wanted, have | above, weight, unseen),
            "missing": missing_rarity(wanted, have | above | content_terms(sentence.before), weight, unseen),
            "kind": kind_found(kind, sentence.text, question),
            "new": len(have - wanted) / len(have) if have else 0.0,
            "rank": 1.0 / (sentence.passage + 1),
            "passage": max(passages[sentence.passage].similarity or 0.0, 0.0),
        }
        for sentence, have, above, cosine in zip(sentences, terms, headings, meaning)
    ]
    best_meaning, best_words = max(meaning), max(r["words"] for r in rows)
    for row in rows:
        row["meaning_gap"] = row["meaning"] - best_meaning
        row["words_gap"] = row["words"] - best_words
    return rows


def select(
    question: str,
    passages: Sequence[Passage],
    similarity: Similarity,
    scorer: Scorer,
    count: int = 3,
    kind: str | None = None,
) -> list[Evidence]:
    """The `count` sentences of the passages most likely to answer the question, best first; `kind`
    is the kind of answer wanted when the question's wording does not say it (a follow-up's)."""
    kind = question_kind(question) if kind is None else kind
    sentences = candidates(passages)
    if not sentences:
        return []
    rows = signals(question, sentences, passages, similarity, kind)
    scored = sorted(
        ((scorer.probability(row), sentence, row) for sentence, row in zip(sentences, rows)),
        key=lambda item: item[0],
        reverse=True,
    )
    return [
        as_evidence(sentence, score, scorer.confidence(row), row, passages) for score, sentence, row in scored[:count]
    ]


def opening(passage: Passage, count: int = 3) -> list[Evidence]:
    """The first sentences of an article's first passage (passage 1 of the answer), in order: what
    the article says, when that is what a question asks (rag/scope.py). Score and confidence are 1:
    they are the article's own opening, not a guess at an answer."""
    return [as_evidence(sentence, 1.0, 1.0, {}, [passage]) for sentence in candidates([passage])[:count]]


def written_by(passage: Passage) -> list[Evidence]:
    """The byline of an article's first passage (passage 1 of the answer), as the evidence of who
    wrote it (rag/scope.py); a wire story with none: its dateline, which credits the agency
    ("HELENA, Mont. (AP) —"); none when the article has neither. Score and confidence are 1: it is
    the article's own line, not a guess at an answer."""
    found = find_byline(passage.text) or credit_line(passage.text)
    if found is None:
        return []
    start, end = found
    return [as_evidence(Sentence(0, start, end, passage.text[start:end], ""), 1.0, 1.0, {}, [passage])]


def credit_line(text: str) -> tuple[int, int] | None:
    """Where the dateline that opens a story's first paragraphs is ("HELENA, Mont. (AP) —"), when it
    credits an agency, or None."""
    found = find_dateline(text)
    return found[:2] if found and found[2].agency else None


def as_evidence(
    sentence: Sentence, score: float, confidence: float, signals: dict[str, float], passages: Sequence[Passage]
) -> Evidence:
    """A ranked sentence with its passage number and its offsets in the original file."""
    passage = passages[sentence.passage]
    return Evidence(
        text=sentence.text,
        passage=sentence.passage + 1,
        doc_id=passage.doc_id,
        title=passage.title,
        start=passage.original_offset(sentence.start),
        end=passage.original_offset(sentence.end - 1) + 1,
        score=round(score, 4),
        confidence=round(confidence, 4),
        signals={k: round(v, 4) for k, v in signals.items()},
        before=sentence.before,
    )
