"""Scoped questions: which articles a question is about, resolved to doc_ids from the store's documents.

A `Scope` names articles by doc_id (exactly, or a glob such as `002_*.txt`), by text of their
dateline (a date such as "April 15" or a place such as "Portvale"), and by words of their title;
what it names is every article that matches all the criteria given. Retrieval then searches only
those articles' chunks, on both sides (rag/retrieve.py), so k passages still come from inside
the scope. Not handled: date ranges (a dateline holds no year, rag/documents.py) and words of
the article's body (that is what the question is for).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.documents import Dateline
from rag.errors import BadInput
from rag.text import WORD, content_terms

if TYPE_CHECKING:
    from rag.store import StoredDocument

FIELDS = ("doc_ids", "dateline", "title")
# A span of a question in straight or curly quotes, where a title it names would be.
QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”|‘([^’]+)’|(?<!\w)\'([^\']+)\'(?!\w)')
# Words that ask about an article as a whole once its title is taken out ("what is the story of
# ...", "summarise ..."); question and function words ("what", "say", "about") are left out anyway.
WHOLE_ARTICLE = content_terms(
    "article story report page document text piece post summary summarise summarize gist overview main key "
    "point points describe describes cover covers"
)
NOT_IN_SCOPE = "The chosen articles don't cover this: none of their passages is about it."
WHICH_ARTICLE = "Which article do you mean? Name it by its title in quotes, or choose it with a filter, and its byline says who wrote it."
# The words of a question for who wrote an article that name no article ("Who is the author?").
WRITER_WORDS = content_terms("wrote write writes written author authors writer writers byline")
# A question for who wrote an article ("Who wrote the story about the bridge?", "Who is the
# author?"), not for who wrote something the article tells of ("Who wrote the letter?").
# A report or text the story tells of may have its own authors: only "this report" is the article.
_GENRES = "articles?|story|stories|pieces?|posts?|columns?|interviews?|essays?|editorials?|explainers?|features?"
# Up to two words may tell the piece ("the AP story", "the Xinhua news story").
_PIECE = rf"(?:(?:the |this |that )?(?:[\w.'’-]+ ){{0,2}}(?:{_GENRES})|this (?:report|text|page))\b"
WHO_WROTE = re.compile(
    rf"\bwho\s+(?:wrote|writes|has written|authored|penned)\s+(?:this\b|{_PIECE})"
    rf"|\bwho\s+(?:is|was|are|were)\s+the\s+(?:author|writer|reporter)s?\b(?!\s+of\s+(?!{_PIECE}))"
    rf"|\b(?:author|writer)s?\s+of\s+{_PIECE}|\bwritten\s+by\s+whom\b|\bwhose\s+{_PIECE}",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Scope:
    """Articles by doc_id or glob, dateline text and title words; every criterion given must hold."""

    doc_ids: tuple[str, ...] = ()
    dateline: str = ""
    title: str = ""

    def __bool__(self) -> bool:
        """Whether the scope narrows anything (an empty one means every article)."""
        return bool(self.doc_ids or self.dateline.strip() or self.title.strip())

    def matches(self, doc: StoredDocument) -> bool:
        """Whether one stored article is inside the scope."""
        if self.doc_ids and not any(fnmatch.fnmatchcase(doc.doc_id, pattern) for pattern in self.doc_ids):
            return False
        if self.dateline.strip() and " ".join(self.dateline.lower().split()) not in " ".join(
            doc.dateline.lower().split()
        ):
            return False
        return words(self.title) <= words(doc.title)

    def resolve(self, documents: Iterable[StoredDocument]) -> frozenset[str]:
        """The doc_ids inside the scope; `BadInput` when no article matches (a typo must not look like "no answer")."""
        chosen = frozenset(doc.doc_id for doc in documents if self.matches(doc))
        if not chosen:
            raise BadInput(
                f"no article matches {self.describe()}; the app's Articles panel and GET /v1/documents list them"
            )
        return chosen

    def describe(self) -> str:
        """The scope in words, for messages."""
        parts = [f"doc_id {' or '.join(self.doc_ids)}"] if self.doc_ids else []
        parts += [f"dateline containing '{self.dateline}'"] if self.dateline.strip() else []
        parts += [f"title with '{self.title}'"] if self.title.strip() else []
        return "the filter (" + ", ".join(parts) + ")" if parts else "every article"


Where = Scope | Mapping[str, Any] | str | Iterable[str] | None  # what `RAG.ask(where=...)` takes


def words(text: str) -> set[str]:
    """Lower-case words of a text."""
    return set(WORD.findall(text.lower()))


def scope_of(where: Where) -> Scope:
    """A Scope from what callers pass as `where`: a Scope, a mapping of its fields, a doc_id glob or a list of them."""
    if where is None or isinstance(where, Scope):
        return where or Scope()
    if isinstance(where, str):
        return Scope(doc_ids=(where,))
    if not isinstance(where, Mapping):
        return Scope(doc_ids=tuple(_texts(list(where), "doc_ids")))
    unknown = set(where) - set(FIELDS)
    if unknown:
        raise BadInput(f"unknown filter {', '.join(sorted(unknown))}; filters are: {', '.join(FIELDS)}")
    ids = where.get("doc_ids") or ()
    return Scope(
        doc_ids=tuple(_texts([ids] if isinstance(ids, str) else list(ids), "doc_ids")),
        dateline=_text(where.get("dateline") or "", "dateline"),
        title=_text(where.get("title") or "", "title"),
    )


def _texts(values: list, name: str) -> list[str]:
    return [_text(v, name) for v in values]


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise BadInput(f"the filter {name} must be text, not {type(value).__name__}")
    return value.strip()


def named_articles(question: str, documents: Callable[[], Iterable[StoredDocument]]) -> tuple[frozenset[str], str]:
    """The doc_ids of the articles whose title the question quotes (case, spaces and a title's end
    mark aside), and the question without those titles (what it asks of them). `documents` is read
    only when something is quoted."""
    spans = {_folded_title(next(filter(None, m.groups()))): m.group() for m in QUOTED.finditer(question)}
    if not spans:
        return frozenset(), question
    named = {doc.doc_id: spans[title] for doc in documents() if (title := _folded_title(doc.title)) in spans}
    rest = question
    for quoted in set(named.values()):
        rest = rest.replace(quoted, " ")
    return frozenset(named), rest


def asks_what_it_says(rest: str) -> bool:
    """Whether a question that names an article, its title taken out, asks for nothing in particular:
    "What does the article ... say?", "What is ... about?", "Summarise ..."."""
    return content_terms(rest) <= WHOLE_ARTICLE


def asks_who_wrote(question: str) -> bool:
    """Whether a question asks who wrote an article: its byline answers (rag/evidence.py `written_by`)."""
    return bool(WHO_WROTE.search(question))


def credited_articles(question: str, documents: Iterable[StoredDocument]) -> list[str]:
    """The doc_ids of the articles whose dateline credits an agency the question names ("Who
    wrote the Xinhua story?", "the AP story"): a wire story often has no byline, and its agency is
    how a reader tells it from the others."""
    words = {word.lower() for word in WORD.findall(question)}
    return [
        doc.doc_id
        for doc in documents
        if (agency := Dateline.agency_in(doc.dateline)) and {w.lower() for w in WORD.findall(agency)} <= words
    ]


def names_no_article(question: str) -> bool:
    """Whether a question for who wrote an article says nothing of which ("Who is the author?")."""
    return content_terms(question) <= WHOLE_ARTICLE | WRITER_WORDS


def _folded_title(title: str) -> str:
    return " ".join(title.split()).rstrip(".!?:;").lower()
