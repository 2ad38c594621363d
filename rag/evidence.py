"""Evidence: the few sentences of the retrieved passages that answer the question, ranked.

Retrieval finds the right passage; a 135M model cannot then pick one fact out of five passages,
but it can copy a name out of one sentence. So this stage ranks every sentence of the passages
for the question and keeps the best few, each with its passage number (the `[n]` it will be
cited as) and its character offsets in the original file. LlamaIndex has sentence-window
retrieval and rerankers, but nothing that scores sentences for the kind of answer a question
wants, nor keeps offsets into the original file, so this module is ours.

A sentence's score mixes five signals, each in 0..1, with weights in `Weights`:
- meaning: cosine similarity of question and sentence (the embedder);
- words: the question's content words found in the sentence, weighted by how rare each is among
  the candidate sentences (the names and rare words that embeddings blur);
- context: the same for the sentence with the one before it (a pronoun's antecedent);
- rank: 1 / the rank of its passage;
- kind: whether it holds the kind of answer the question wants (a date for "when", a number for
  "how many", a span of time for "how many years", a name for "who", a place for "where"), one
  the question does not already give. Names are found by capital letters, so a two-word name
  counts more than one word, and a capitalised word that opens the sentence counts little.

For "who" questions, a sentence that leans on a pronoun ('"…," he said.') is widened to begin at
the sentence before it when that one names someone: the pair is one piece of evidence. So is a
short sentence that points back ("This is a lawless position."), whatever the question asks.

`speaks_to` says whether the best sentence answers at all: it must share a word with the question
besides its names, and mention the attribute the question names ("what is the population of …").
`asked_coverage` grades the same thing for the sentences kept: how many of the words the question
asks about (the rare ones counting most) the sentence has, or has a close word for. It is not part
of the score: mixed in, it promoted sentences that use the asked word in another sense ("How old is
…?" and "The old harbour bridge …"); the answer stage refuses a sentence that covers too little.

Not handled: answers spread over two sentences that are not neighbours; telling a person's name
from a place's; the kind of answer in questions not in English.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from rag.citations import SENTENCE_END
from rag.documents import DATELINE
from rag.retrieve import WORD, Passage, content_terms

Similarity = Callable[[list[str], list[str]], list[list[float]]]

MIN_SENTENCE_WORDS = 4  # shorter lines are headings, credits and datelines, not evidence
NAMES_SOMEONE = 0.6  # `name_strength` of a word that is surely a name, not a capitalised opener
MONTH = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
DATE = re.compile(
    rf"\b{MONTH}\.?\s+\d{{1,2}}\b|\b\d{{1,2}}\s+{MONTH}\b|\b(?:1[5-9]|20)\d\d\b|\b{MONTH}\b|"
    r"\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|yesterday|today)\b|"
    r"\b(?:1[5-9]|20)\d0s\b|\b\d{1,2}(?:st|nd|rd|th) century\b"
)
# A day, not only a year: what "on what date" and "which day" ask for.
DAY = re.compile(
    rf"\b{MONTH}\.?\s+\d{{1,2}}\b|\b\d{{1,2}}\s+{MONTH}\b|"
    r"\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|yesterday|today)\b"
)
# A time told by another event ("after a peace treaty was signed", "during the war"): an answer to
# "when" that holds no date.
EVENT_TIME = re.compile(r"\b(?:after|before|once|until|during|since|upon)\s+(?:the|a|an|its|their|his|her)\b", re.I)
YEAR = re.compile(r"\b(?:1[5-9]|20)\d\d\b")
# A span of time stated as such ("27 years", "two decades"): two dates are not yet an answer to
# "how many years", which needs arithmetic the small model cannot be trusted with.
DURATION = re.compile(
    r"\b(?:\d+|a|one|two|three|four|five|six|seven|eight|nine|ten|several|many|\w+ty(?:-\w+)?)\s+"
    r"(?:years?|months?|weeks?|days?|decades?|centuries|century)\b",
    re.IGNORECASE,
)
# A sentence that leans on the one before for who is speaking or acting.
PRONOUN = re.compile(r"\b(?:he|she|they|him|her|his|their)\b", re.IGNORECASE)
# A quotation whose speaker is named only in the sentence before: '"…," he said.'
PRONOUN_SPEAKER = re.compile(
    r"\b(?:he|she|they)\s+(?:said|says|added|told|noted|stressed|stated|explained|recalled)\b|"
    r"\b(?:said|says|added)\s+(?:he|she)\b",
    re.IGNORECASE,
)
# A sentence whose subject is a pronoun ("He also noted that …") names its speaker further back.
SUBJECT_PRONOUN = re.compile(r"^\W*(?:he|she|they)\b", re.IGNORECASE)
# A sentence that opens by pointing back at the one before, and is short enough to mean nothing alone.
CONTINUES = re.compile(r"^\W*(?:this|that|these|those|they|it)\s+(?!\w+ing\b)\w+", re.IGNORECASE)
SHORT_WORDS = 12
MAX_ANTECEDENT_HOPS = 2  # sentences further back that evidence may widen to, past the one before
CAPITALISED = re.compile(r"\b[A-Z][\w'’\-]*")
NUMBER_WORDS = "two three four five six seven eight nine ten eleven twelve dozen hundred thousand million billion"
# A count or amount; a year or a day of the month is not one ("How many bases?" is not "1960").
QUANTITY = re.compile(
    rf"\b(?!(?:1[5-9]|20)\d\d\b)\d[\d,.]*%?(?!\w)|\b(?:{'|'.join(NUMBER_WORDS.split())})\b", re.IGNORECASE
)
# How old something is: an age, or the year it dates from.
AGE = re.compile(rf"{QUANTITY.pattern}|{YEAR.pattern}", re.IGNORECASE)
# Runs of capitalised words: names of people, places, bodies and documents.
NAME = re.compile(r"\b[A-Z][\w'’\-]*(?:\s+(?:of|the|de|von|van|al|bin)?\s*[A-Z][\w'’\-]*)*")
# Which kind of answer a question asks for, from its wording.
AUXILIARY = r"(?:did|does|do|was|were|is|are|will|would|has|have|had|can|could|should|must)"
KINDS = (
    ("year", re.compile(r"\b(?:what|which) year\b", re.I)),
    ("day", re.compile(r"\b(?:what|which) (?:exact )?(?:date|day)\b|\bexact date\b", re.I)),
    # "when" asks only as a question word ("When did …", "Since when have …"), not in a clause
    # ("What did he call … when the problem is raised?").
    ("date", re.compile(rf"^\W*when\b|\bwhen\s+{AUXILIARY}\b|\bwhat (?:month|time)\b|\bwhich month\b", re.I)),
    ("duration", re.compile(r"\bhow (?:many|much) (?:years|months|weeks|days|decades|centuries)\b|\bhow long\b", re.I)),
    ("age", re.compile(r"\bhow old\b", re.I)),
    ("quantity", re.compile(r"\bhow (?:many|much|far(?! along))\b|\bwhat (?:number|percentage|share)\b", re.I)),
    ("name", re.compile(r"\bwho(?:m|se|'s)?\b", re.I)),
    ("place", re.compile(r"\bwhere\b|\b(?:what|which) (?:city|country|town|place|island|region)\b", re.I)),
    (
        "entity",
        re.compile(r"\bwhich\b|\bwhat (?:is|was|are|were) (?:the )?name\b|\bwhat \w+ (?:did|does|do|is|was)\b", re.I),
    ),
)


# Words a question uses for the kind of answer it wants, not for what it is about.
ANSWER_KIND_TERMS = content_terms("post position role job title office hold holds serve serves name named kind type")


@dataclass(frozen=True)
class Weights:
    """How much each signal counts; tuned on the dev half of eval/qa.jsonl (see eval/README.md)."""

    meaning: float = 1.0
    words: float = 1.0
    context: float = 0.3
    rank: float = 0.2
    kind: float = 0.5


@dataclass(frozen=True)
class Evidence:
    """One sentence that may answer the question; `passage` is its 1-based passage number."""

    text: str
    passage: int
    doc_id: str
    title: str
    start: int  # character offsets of the sentence in the original file
    end: int
    score: float
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
    before_start: int = -1  # where the sentence before it starts in the passage text, -1 when none

    def with_antecedent(self, text: str, start: int) -> Sentence:
        """This sentence widened to begin at `start`, where a sentence before it begins."""
        return Sentence(self.passage, start, self.end, text, "")


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


def candidates(passages: Sequence[Passage]) -> list[Sentence]:
    """Every sentence of the passages long enough to state a fact, each once (chunks overlap); a
    dateline ("MOSCOW, March 21. /TASS/.") is not one."""
    seen: set[str] = set()
    found = []
    for index, passage in enumerate(passages):
        before, before_start = "", -1
        for start, end in sentence_spans(passage.text):
            text = passage.text[start:end]
            stated = DATELINE.sub("", text)
            if len(stated.split()) >= MIN_SENTENCE_WORDS and text not in seen:
                seen.add(text)
                found.append(Sentence(index, start, end, text, before, before_start))
            before, before_start = text, start
    return found


def question_kind(question: str) -> str:
    """The kind of answer a question wants: year, day, date, duration, age, quantity, name, place, entity, or "" (any).

    The question word that comes first decides: "Which president was visiting when …" wants a
    name, not a date; at the same place the more specific kind wins ("what year" over "what")."""
    found = [
        (match.start(), order, kind)
        for order, (kind, pattern) in enumerate(KINDS)
        if (match := pattern.search(question))
    ]
    return min(found)[2] if found else ""


def kind_found(kind: str, sentence: str, question: str) -> float:
    """How surely the sentence holds an answer of that kind that the question does not already
    give: 1 when it does, 0 when it does not; names are graded (see `name_strength`)."""
    if not kind:
        return 0.5
    if kind in ("name", "place", "entity"):
        return max((name_strength(n, sentence) for n in NAME.findall(sentence) if is_new(n, question)), default=0.0)
    pattern = {"year": YEAR, "day": DAY, "date": DATE, "age": AGE, "quantity": QUANTITY, "duration": DURATION}[kind]
    if kind == "quantity":
        sentence = DAY.sub(" ", sentence)  # the 27 of "January 27" counts nothing
    if any(is_new(item, question) for item in pattern.findall(sentence)):
        return 1.0
    return 0.5 if kind == "date" and EVENT_TIME.search(sentence) else 0.0


def is_new(item: str, question: str) -> bool:
    """Whether the item has a word the question lacks: "Sergey Lavrov" does not answer "Who met Lavrov?"."""
    asked = set(re.findall(r"[\w'’\-]+", question.lower()))
    return not set(re.findall(r"[\w'’\-]+", item.lower())) <= asked


def name_strength(name: str, sentence: str) -> float:
    """1 for a name of two or more words ("Marta Solberg"), 0.6 for one word inside the sentence
    ("Portvale"), 0.3 for one word that opens it (it may be any word: "Residents", "Lavrov"), 0 for
    a common opener ("The", "However")."""
    if " " in name.strip():
        return 1.0
    opening = sentence.lstrip("\"“‘'([ ")
    if not opening.startswith(name):
        return 0.6
    return 0.0 if name.lower() in COMMON_OPENERS else 0.3


COMMON_OPENERS = frozenset(
    "the a an he she it they we i this that these those there however but and in on at according "
    "after before as his her their its when while if so also moreover during since until from with for by "
    "of under over between".split()
)


def rarity(term_sets: Sequence[set[str]]) -> dict[str, float]:
    """Inverse document frequency of each term over the candidate sentences' terms (BM25's form)."""
    counts: dict[str, int] = {}
    for terms in term_sets:
        for term in terms:
            counts[term] = counts.get(term, 0) + 1
    total = len(term_sets)
    return {term: idf(count, total) for term, count in counts.items()}


def idf(count: int, total: int) -> float:
    """BM25's inverse document frequency, floored above zero."""
    return max(math.log(1 + (total - count + 0.5) / (count + 0.5)), 0.05)


def word_overlap(wanted: set[str], have: set[str], weight: dict[str, float], unseen: float) -> float:
    """Rarity-weighted share of the wanted terms that occur among a text's terms."""
    if not wanted:
        return 0.0
    total = sum(weight.get(t, unseen) for t in wanted)
    return sum(weight.get(t, unseen) for t in wanted & have) / total


def select(
    question: str,
    passages: Sequence[Passage],
    similarity: Similarity,
    count: int = 3,
    weights: Weights | None = None,
    kind: str | None = None,
) -> list[Evidence]:
    """The `count` best sentences of the passages for the question, best first; `kind` is the kind
    of answer wanted when the question's wording does not say it (see `question_kind`)."""
    weights = weights or Weights()
    kind = question_kind(question) if kind is None else kind
    sentences = [with_antecedent(s, passages, kind, question) for s in candidates(passages)]
    if not sentences:
        return []
    meaning = similarity([question], [s.text for s in sentences])[0]
    terms = [content_terms(s.text) for s in sentences]  # stemmed once, used by three signals
    weight = rarity(terms)
    unseen = idf(0, len(sentences))
    wanted = content_terms(question)
    norm = weight_sum(weights)
    scored = []
    for sentence, have, cosine in zip(sentences, terms, meaning):
        signals = {
            "meaning": max(float(cosine), 0.0),
            "words": word_overlap(wanted, have, weight, unseen),
            "context": word_overlap(wanted, have | content_terms(sentence.before), weight, unseen),
            "rank": 1.0 / (sentence.passage + 1),
            "kind": kind_found(kind, sentence.text, question),
        }
        total = sum(getattr(weights, name) * value for name, value in signals.items())
        scored.append((total / norm, sentence, signals))
    scored.sort(key=lambda item: item[0], reverse=True)
    best = scored[:count]
    asked = asked_coverage(question, [s.text for _, s, _ in best], similarity, weight, unseen)
    return [as_evidence(s, score, signals | {"asked": a}, passages) for (score, s, signals), a in zip(best, asked)]


# Words of a question that say nothing of what it asks, beyond QUESTION_STOPWORDS: pronouns, the
# pieces of contractions ("who's", "they'd") and spellings of question words.
NOT_ASKED = frozenset("he she him her his hers they them their it its s d ll re ve t whats wat according per".split())


def question_words(question: str) -> list[tuple[str, set[str]]]:
    """The question's content words as written (lower case) with their stems, less its names: the
    words of the capitalised words after its first ("Japan's" names "japan")."""
    names = {word for name in CAPITALISED.findall(question[1:]) for word in WORD.findall(name.lower())}
    found = []
    for word in dict.fromkeys(WORD.findall(question.lower())):
        terms = content_terms(word) if word not in names else set()
        if terms:
            found.append((word, terms))
    return found


def asked_words(question: str) -> list[str]:
    """The question's words that say what it asks about, as written: not its names, function words,
    pronouns, or words for the kind of answer or its place ("year", "name", "city")."""
    return [word for word, terms in question_words(question) if word not in NOT_ASKED and not terms & GENERIC_NOUNS]


def asked_coverage(
    question: str, texts: Sequence[str], similarity: Similarity, rare: dict[str, float], unseen: float
) -> list[float]:
    """For each text, how well it covers the words the question asks about (`asked_words`), each
    weighted by its rarity among the candidate sentences (`rare`, `unseen` for a word in none): 1
    when the text has the word (or a form of it, `alike`), else the embedder's similarity to the
    text's closest word. A sentence about the question's people that does not say what is asked
    ("When did Marta Solberg retire?") covers it poorly: the rare word is the one missing."""
    asked = asked_words(question)
    if not asked or not texts:
        return [1.0] * len(texts)
    words = [sorted(set(WORD.findall(text.lower()))) for text in texts]
    vocabulary = sorted(set().union(*words))
    where = {word: i for i, word in enumerate(vocabulary)}
    similar = similarity(asked, vocabulary)
    stems = [content_terms(word) for word in asked]  # stemmed once, for every text
    weights = [max(rare.get(term, unseen) for term in terms) for terms in stems]
    covered = []
    for text, own in zip(texts, words):
        have = content_terms(text)
        best = [
            1.0
            if any(alike(term, word) for term in terms for word in have)
            else max((similar[i][where[w]] for w in own), default=0.0)
            for i, terms in enumerate(stems)
        ]
        covered.append(round(sum(b * w for b, w in zip(best, weights)) / sum(weights), 4))
    return covered


def with_antecedent(sentence: Sentence, passages: Sequence[Passage], kind: str, question: str) -> Sentence:
    """The sentence joined to the one before it when the question asks who, the sentence leans on a
    pronoun, and the one before names someone it may stand for: the sentence names no one new, or
    quotes a speaker only as "he said". A short sentence that opens by pointing back ("This is a
    lawless position.", "They tell us it was unfair.") is joined to the one before whatever the
    question asks: alone it says nothing, and the one before says what it is about."""
    if sentence.before_start >= 0 and CONTINUES.match(sentence.text) and len(sentence.text.split()) <= SHORT_WORDS:
        return sentence.with_antecedent(
            passages[sentence.passage].text[sentence.before_start : sentence.end], sentence.before_start
        )
    if kind != "name" or sentence.before_start < 0 or not PRONOUN.search(sentence.text):
        return sentence
    if kind_found(kind, sentence.before, question) < NAMES_SOMEONE:
        return sentence
    if kind_found(kind, sentence.text, question) >= NAMES_SOMEONE and not PRONOUN_SPEAKER.search(sentence.text):
        return sentence
    passage = passages[sentence.passage].text
    start = earliest_antecedent(passage, sentence.before_start)
    return sentence.with_antecedent(passage[start : sentence.end], start)


def earliest_antecedent(text: str, start: int) -> int:
    """Where the evidence should begin when the sentence at `start` opens with "He", "She" or "They":
    at the sentence before it, and so on, up to MAX_ANTECEDENT_HOPS sentences back."""
    starts = [span_start for span_start, _ in sentence_spans(text)]
    for _ in range(MAX_ANTECEDENT_HOPS):
        at = starts.index(start) if start in starts else 0
        if at == 0 or not SUBJECT_PRONOUN.match(text[start:]):
            break
        start = starts[at - 1]
    return start


def speaks_to(question: str, evidence: Evidence) -> bool:
    """Whether the sentence (with the one before it) shares a word with the question besides the
    question's names: one about the same people or places but not about what is asked does not
    answer it ("Who is the mayor of Tokyo?" and a sentence on talks in Tokyo). When the question
    names the thing it asks about ("what is the population of …", "how many rounds …"), the
    sentence must also mention that thing, or a word spelt nearly the same ("programme")."""
    have = content_terms(evidence.text) | content_terms(evidence.before)
    asked = asked_terms(question)
    if asked and not asked & have:
        return False
    focus = focus_terms(question)
    return not focus or any(alike(term, word) for term in focus for word in have)


# Where a question names what it asks about: "how many rounds", "what is the population of".
# Not "which …", "what …" or "who is the …": there users name the thing or the person's role in
# their own words ("which euro business club", "what doc", "who's the top diplomat") as often as
# in the articles' (eval/README.md).
FOCUS_OPENS = re.compile(
    r"\b(?:what|which)(?:'s|\s+(?:is|was|are|were))\s+(?:the\s+)?(?:name\s+of\s+(?:the\s+)?)?|"
    r"\b(?:how many|how much)\s+",
    re.IGNORECASE,
)
# Words that end the asked-about phrase: verbs, prepositions and question words.
FOCUS_ENDS = frozenset(
    "did does do was were is are will would has have had can could should must of in on at for to with "
    "between from by about that who whom which when where why how and or there".split()
)
# Nouns for the kind of answer, not for what it is about ("which city", "what year", "what kind").
GENERIC_NOUNS = (
    content_terms(
        "city country state nation town village place location region year date day week month time period "
        "era century decade name person man woman one thing number amount kind type sort part pair couple group"
    )
    | ANSWER_KIND_TERMS
)
FOCUS_WORDS = 3  # the asked-about phrase is at most this many words
POSSESSIVE = re.compile(r"(?:['’]s|['’])$")  # "Japan's", "islands'"


def focus_terms(question: str) -> set[str]:
    """The stemmed words naming what the question asks about, without names (capitalised words),
    words for the kind of answer, or verbs (a word ending in -ed or -ly ends the phrase)."""
    found: set[str] = set()
    for opening in FOCUS_OPENS.finditer(question):
        for word in re.findall(r"[\w'’\-]+", question[opening.end() :])[:FOCUS_WORDS]:
            bare = POSSESSIVE.sub("", word.lower())
            if bare in FOCUS_ENDS or bare.endswith(("ed", "ly")):
                break
            if word[:1].isupper() or bare in ("the", "a", "an"):
                continue
            found |= content_terms(bare)
    return found - GENERIC_NOUNS


def alike(term: str, word: str) -> bool:
    """Whether two stemmed words are the same word: equal, one a long prefix of the other
    ("programm", "program"), or one letter apart in a long word ("chanel", "channel")."""
    if term == word:
        return True
    if min(len(term), len(word)) >= 5 and (term.startswith(word) or word.startswith(term)):
        return True
    return min(len(term), len(word)) >= 5 and one_edit_apart(term, word)


def one_edit_apart(a: str, b: str) -> bool:
    """Whether one letter added, removed or changed turns `a` into `b`."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    for i in range(len(a)):
        if a[i] != b[i]:
            return a[i:] == b[i + 1 :] or a[i + 1 :] == b[i + 1 :]
    return True


def asked_terms(question: str) -> set[str]:
    """The stems of the question's content words less its names and the words for the kind of answer
    ("What post does … hold?" is answered by a title): broader than `asked_words`, for `speaks_to`."""
    return set().union(*(terms for _, terms in question_words(question))) - ANSWER_KIND_TERMS


def weight_sum(weights: Weights) -> float:
    """The sum of the weights, so that a score stays in 0..1."""
    return sum(asdict(weights).values()) or 1.0


def as_evidence(sentence: Sentence, score: float, signals: dict[str, float], passages: Sequence[Passage]) -> Evidence:
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
        signals={k: round(v, 4) for k, v in signals.items()},
        before=sentence.before,
    )
