"""How the built-in backend answers: from the evidence sentences, never beyond them.

A 135M model cannot be trusted to write facts, so no model writes by default. A question that
asks only what one article it names says ('What does the article "..." say?', rag/scope.py) gets
that article's opening sentence. Any other answer is, in this order:
1. put together from two facts (rag/compose.py): the years between two events, or two names;
2. "The articles don't say" when the best sentence's fitted confidence is under the threshold,
   it lacks the kind of answer asked for (rag/evidence.py), or it says the opposite of what is
   asked ("the oldest bridge" for "the newest bridge": WordNet's antonyms, `Annotator.contrary`)
   unless asked yes or no, or, asked how many of a thing or how much something cost, it counts
   only other things (`counts_something_else`), or, asked for a measure ("how wide", "how old"),
   it states none in its units (`measures_something_else`);
3. the one name, date or number of the asked kind in the best sentence, found by spaCy's entity
   recogniser, when the sentence holds no other name or number it might be (`short_answer`,
   `rivals`), else that sentence quoted and cited.
With `RAG_SMALL_ANSWER=constrained` or `checked` the model reads only the best sentences and
writes a short reply, which stands only when what it asserts is copied from them
(`reply_from_evidence`); with `constrained` a grammar lets it write nothing else.

Not handled: an answer spread over more than two sentences, and answers the kind patterns do not
recognise (a reason, a manner) are quoted whole rather than cut short.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator, Sequence

from rag.answer import Answer, How, Piece, cited_first
from rag.citations import citations_for, copied_from, marker_for, model_abstained, split_sentences, with_markers
from rag.compose import named_text, reckoned_text, sub_questions, two_names, years_between
from rag.documents import parse_dateline
from rag.evidence import (
    KIND_LABELS,
    KIND_PATTERNS,
    MIN_SENTENCE_WORDS,
    NAME,
    YES_NO,
    Evidence,
    as_read,
    counts_something_else,
    holds_asked_kind,
    kind_found,
    measures_something_else,
    question_kind,
)
from rag.followup import Standalone, joined_question
from rag.retrieve import Passage
from rag.safety import sanitize
from rag.strategy import Strategy, Turn
from rag.text import Annotator, balanced, is_new

# The built-in model sees only the best evidence sentence and copies the words that answer; asked
# for a sentence, or allowed to abstain, it paraphrased more and copied less (eval/README.md).
EVIDENCE_SYSTEM_PROMPT = "Copy the words from the text that answer the question. Reply with those words only."

EVIDENCE_USER_PROMPT = """\
Text: {evidence}

Question: {question}
Answer:"""

# How a small model opens a reply without saying anything: "The answer is:".
LEAD_IN = re.compile(r"^(?:the )?answer(?: is)?\s*:\s*", re.IGNORECASE)


class Extractive(Strategy):
    """The built-in backend's answers: composed, short, quoted, or the model's reply copied from the evidence."""

    def standalone(self, question: str, history: Sequence[dict] | None, usage: dict[str, int]) -> Standalone:
        """A follow-up joined to the question before it: a 135M model rewrites questions badly, and
        the joined words retrieve well."""
        return joined_question(question, history)

    def answer(self, turn: Turn) -> Generator[Piece, None, Answer]:
        """The answer comes whole: the model's reply is shown only once checked against the evidence."""
        answer = self.opening(turn) if turn.whole_article else self.composed(turn)
        if answer is None and not self.answers_from(turn.evidence, turn.standalone.asking):
            answer = self.abstain(turn)  # nothing in the passages scores as an answer: no generation
        if answer is None:
            answer = self.from_evidence(turn, "".join(self.model_reply(turn)))
        yield Piece(answer.text)
        return answer

    def opening(self, turn: Turn) -> Answer:
        """What a named article says: its opening sentence quoted (rag/scope.py), or who wrote an
        article: its byline quoted; an article with no sentence long enough to state anything says
        nothing."""
        if not turn.evidence:
            return self.abstain(turn)
        first = turn.evidence[0]
        agency = parse_dateline(first.text).agency if turn.whole_article == "byline" else ""
        # A dateline, not a byline: the story names no writer, only the agency that sent it.
        text = f"The story has no byline; its dateline credits {agency} [{first.passage}]." if agency else quote(first)
        citations = citations_for(text, turn.passages)
        how = How.BYLINE if turn.whole_article == "byline" else How.OPENING
        return turn.answer(self.backend, text=text, how=how, citations=citations, evidence=turn.evidence)

    def answers_from(self, evidence: list[Evidence], question: str) -> bool:
        """Whether the best sentence is an answer at all: its confidence reaches the threshold, it
        holds the kind of answer asked for, it does not say the opposite of what is asked (unless
        asked yes or no, when the opposite is the answer: "remained open" to "was it closed?"), and,
        asked how many of a thing or how much something cost, it does not count only other things,
        and, asked for a measure, it states one."""
        return (
            bool(evidence)
            and evidence[0].confidence >= self.threshold
            and holds_asked_kind(evidence[0].signals)
            and (YES_NO.match(question) is not None or not self.tools.annotator.contrary(question, evidence[0].text))
            and not counts_something_else(question, evidence[0].text, self.tools.annotator, self.tools.similarity)
            and not measures_something_else(question, evidence[0].text)
        )

    @property
    def threshold(self) -> float:
        """The best sentence's confidence below which there is no answer (the fitted one unless set)."""
        given = self.tools.settings.min_evidence
        return self.tools.scorer.threshold if given is None else given

    def composed(self, turn: Turn) -> Answer | None:
        """The answer put together from two facts; None when the question asks neither or a fact is
        not found. Each ask is also searched on its own (in the turn's scope), its passages added
        after the question's: the two facts are often in different articles."""
        asking, passages = turn.standalone.asking, turn.passages
        for ask in sub_questions(asking):
            have = {p.chunk_id for p in passages}
            found = self.tools.search(ask, turn.k, turn.doc_ids).passages
            passages = passages + [p for p in found if p.chunk_id not in have]
        facts = (asking, passages, self.tools.similarity, self.tools.scorer, self.threshold)
        if years := years_between(*facts):
            text, used, how = reckoned_text(*years), [d.evidence for d in years if d.evidence], How.RECKON
        elif names := two_names(*facts):
            text, used, how = named_text(*names), [n.evidence for n in names], How.NAMES
        else:
            return None
        used = sorted(used, key=lambda e: e.score, reverse=True)  # best first, as everywhere
        evidence = used + [e for e in turn.evidence if e not in used]
        citations = citations_for(text, passages)
        return turn.answer(self.backend, text=text, how=how, citations=citations, passages=passages, evidence=evidence)

    def model_reply(self, turn: Turn) -> Iterator[str]:
        """The model's reply from the evidence it is shown; none in the default mode (`quote`)."""
        mode = self.tools.settings.small_answer
        if mode == "quote":
            return iter(())
        shown = self.shown(turn.evidence)
        grammar = (span_grammar(evidence_text(shown)) or None) if mode == "constrained" else None
        messages = self.messages(turn.standalone.text, turn.passages, turn.evidence)
        return self.backend.stream(messages, turn.temperature, grammar=grammar, usage=turn.usage)

    def messages(self, question: str, passages: Sequence[Passage], evidence: Sequence[Evidence]) -> list:
        """The question and only the best evidence sentences."""
        return evidence_messages(question, self.shown(evidence))

    def shown(self, evidence: Sequence[Evidence]) -> list[Evidence]:
        """The evidence sentences the model reads and an answer is taken from."""
        return list(evidence[: self.tools.settings.evidence_shown])

    def from_evidence(self, turn: Turn, raw: str) -> Answer:
        """The model's reply kept when it only copies from the evidence it was shown, else the short
        answer or the best evidence quoted; the evidence of the cited passages comes first."""
        shown, question = self.shown(turn.evidence), turn.standalone.text
        text, how = reply_from_evidence(raw, question, shown, turn.kind)
        dropped = [raw] if how != How.MODEL and raw.strip() else []
        if how == How.QUOTE and self.tools.settings.short_answers:
            short = short_answer(shown[0], question, turn.kind, self.tools.annotator)
            text, how = (short, How.SHORT) if short else (text, how)
        citations = citations_for(text, turn.passages)
        return turn.answer(
            self.backend,
            text=text,
            how=how,
            citations=citations,
            evidence=cited_first(turn.evidence, citations),
            dropped=dropped,
            # Between the abstention threshold and `sure`, an answer is shown with a note of doubt.
            uncertain=shown[0].confidence < self.tools.scorer.sure,
        )


def evidence_messages(question: str, evidence: Sequence[Evidence]) -> list:
    """Messages for the small model: the question and only the evidence sentences."""
    from llama_index.core.llms import ChatMessage

    user = EVIDENCE_USER_PROMPT.format(evidence=evidence_text(evidence), question=sanitize(question))
    return [ChatMessage(role="system", content=EVIDENCE_SYSTEM_PROMPT), ChatMessage(role="user", content=user)]


def ended(sentence: str) -> str:
    """A sentence with a full stop when it has no closing punctuation: a photo caption or headline
    joined to the next sentence would read as one run-on sentence, and a small model copies it."""
    return sentence if sentence.rstrip()[-1:] in '.!?"”’)]:' else sentence.rstrip() + "."


def evidence_text(evidence: Sequence[Evidence]) -> str:
    """The evidence sentences as the small model reads them (and as its grammar lets it copy)."""
    return " ".join(ended(sanitize(" ".join(e.text.split()))) for e in evidence)


def reply_from_evidence(
    reply: str, question: str, evidence: Sequence[Evidence], kind: str | None = None
) -> tuple[str, How]:
    """The small model's reply checked against the evidence: (text, how). The reply stands, cited,
    when its names, numbers and content words are all in the evidence and it holds an answer of
    the kind asked for; otherwise the best evidence sentence is quoted. `kind` is the kind of
    answer wanted when not the question's own (see `question_kind`)."""
    sentences = [e.text for e in evidence]
    reply = LEAD_IN.sub("", " ".join(reply.split()))
    kind = question_kind(question) if kind is None else kind
    if not model_abstained(reply) and copied_from(reply, sentences, question) and kind_found(kind, reply, question):
        source = evidence[marker_for(reply, sentences)]
        return cite_each(ended(reply), source.passage), How.MODEL
    return quote(evidence[0]), How.QUOTE


def short_answer(evidence: Evidence, question: str, kind: str, annotator: Annotator) -> str:
    """The one entity of the asked kind in the sentence that the question does not already name,
    cited ("Ada Park [1]."); "" when the question asks for no such kind, or the sentence holds none
    or several (on the tuning sets, a choice among several was wrong one time in three), or
    another name or number the recogniser did not tag as of the kind (`rivals`).
    """
    labels = KIND_LABELS.get(kind, ())
    found = {text.strip(" ,;:") for text, label in annotator.entities(evidence.text) if label in labels}
    found = {text for text in found if balanced(text)}  # not a name cut out of code or a quote
    # The entity must also be of the kind itself: a year does not answer "on what date".
    new = [text for text in found if is_new(text, question) and kind_found(kind, text, question) > 0]
    if len(new) != 1 or rivals(new[0], evidence.text, question, kind):
        return ""
    return f"{new[0]} [{evidence.passage}]."


def rivals(chosen: str, sentence: str, question: str, kind: str) -> bool:
    """Whether the sentence holds another possible answer of the kind that the recogniser did not
    tag as one: a name the question does not give ("at Trusk" beside the tagged "near Kelvarn",
    asked where the lower of two dykes is), or another number. Then the choice is not sure, and the sentence is quoted instead
    (eval/README.md: on the tuning sets, most short answers with a rival were wrong)."""
    pattern = NAME if kind in ("name", "place", "entity") else KIND_PATTERNS.get(kind)
    if pattern is None:
        return False
    read = as_read(kind, sentence)
    for match in pattern.finditer(read):
        item = match.group().strip(" ,;:")
        if " " not in item and not read[: match.start()].strip(" \"'“‘(["):
            continue  # a capitalised first word, or a quote's, is no name ("Residents", "“This is…”")
        if item and is_new(item, question) and item not in chosen and chosen not in item:
            return True
    return False


def span_grammar(text: str) -> str:
    """A GBNF grammar whose only sentences are runs of consecutive words of `text`: the model
    chooses where the answer starts and ends, and cannot write a word the text does not hold."""
    words = text.split()
    if not words:
        return ""
    rules = [f"root ::= {' | '.join(f'w{i}' for i in range(len(words)))}"]
    for i, word in enumerate(words):
        more = f' (" " w{i + 1})?' if i + 1 < len(words) else ""
        rules.append(f"w{i} ::= {gbnf_literal(word)}{more}")
    return "\n".join(rules)


def gbnf_literal(word: str) -> str:
    """A word as a GBNF string literal (quotes and backslashes escaped)."""
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote(evidence: Evidence) -> str:
    """An evidence sentence quoted and cited: “…” [n]."""
    return cite_each(f"“{ended(' '.join(evidence.text.split()))}”", evidence.passage)


def cite_each(text: str, passage: int) -> str:
    """Every sentence of the text cited to the passage: a quote of two sentences needs two markers.
    A reply's opener too short to state anything alone ("Yes.") goes with the sentence after it."""
    cited, opener = [], ""
    for sentence in split_sentences(text):
        if len(sentence.split()) < MIN_SENTENCE_WORDS and not opener and sentence[-1:] in ".!?":
            opener = sentence
            continue
        cited.append(with_markers(f"{opener} {sentence}".strip(), [passage]))
        opener = ""
    return " ".join(cited + ([with_markers(opener, [passage])] if opener else []))
