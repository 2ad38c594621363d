"""HTML for the chat app: answers with clickable [n] footnotes, the sources panel, the documents list.

Every piece of text that comes from an article, a file name or the model goes through
`html.escape` and is shown as text, never as Markdown or HTML: an article holding `<script>`
shows those characters. The fragments hold no newlines, because Gradio's chatbot runs
Markdown over its messages and a blank line would end an HTML block halfway through.
Nothing here imports Gradio; `app.py` does the wiring.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rag.citations import MARKER, cited_numbers, marker_numbers, split_sentences, strip_markers
from rag.generate import OLLAMA_HINT

if TYPE_CHECKING:
    from rag.answer import Answer
    from rag.retrieve import Passage
    from rag.store import StoredDocument

Similarity = Callable[[list[str], list[str]], list[list[float]]]

# Styles for the fragments below; app.py hands them to Gradio.
CSS = """
.rag-answer p { margin: 0 0 .4em 0; }
.rag-cite { font-weight: 600; text-decoration: none; cursor: pointer; }
.rag-footnotes { margin-top: .5em; border-top: 1px solid var(--border-color-primary); padding-top: .3em; }
.rag-fn summary { cursor: pointer; font-size: .9em; }
.rag-fn .rag-passage, .rag-source .rag-passage {
  font-size: .9em; margin: .3em 0 .5em .8em; padding-left: .6em; border-left: 3px solid var(--border-color-primary);
  white-space: normal;
}
.rag-fn mark, .rag-source mark { background: #fde68a; color: #1f2937; }
.rag-fn.rag-flash > summary { background: #fde68a; color: #1f2937; }
.rag-meta { color: var(--body-text-color-subdued); font-size: .85em; }
.rag-abstain { font-style: italic; color: var(--body-text-color-subdued); }
.rag-abstain::before { content: "ⓘ "; font-style: normal; }
.rag-error { color: var(--error-text-color, #b91c1c); }
.rag-error::before { content: "⚠ "; }
.rag-streaming p:empty::after { content: "Searching the articles…"; color: var(--body-text-color-subdued); }
.rag-stopped::after { content: "Stopped."; font-style: italic; color: var(--body-text-color-subdued); }
.rag-byline { margin-top: .4em; color: var(--body-text-color-subdued); font-size: .8em; }
.rag-source { margin-bottom: .4em; }
.rag-source.rag-cited > summary { font-weight: 600; }
.rag-badge { font-size: .75em; padding: 0 .4em; border-radius: .6em; background: #dcfce7; color: #166534; }
.rag-table { width: 100%; border-collapse: collapse; border: none !important; font-size: .9em; }
.rag-table th, .rag-table td {
  text-align: left; vertical-align: top; padding: .2em .4em; border: none;
  border-bottom: 1px solid var(--border-color-primary);
}
"""

# Clicking a marker opens its footnote (the fragments cannot carry scripts; Gradio runs this once).
JS = """
() => {
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a.rag-cite");
    if (!link) return;
    event.preventDefault();
    const note = document.getElementById(link.getAttribute("href").slice(1));
    if (!note) return;
    note.open = true;
    note.scrollIntoView({block: "nearest"});
    note.classList.add("rag-flash");
    setTimeout(() => note.classList.remove("rag-flash"), 1200);
  });
}
"""


def text_html(text: str) -> str:
    """Text escaped for HTML, line breaks kept as <br>, with no newline left in the result."""
    return html.escape(text).replace("\r", "").replace("\n", "<br>")


def source_label(passage: Passage) -> str:
    """The passage's title and dateline ("Title — Tokyo, April 15 (TASS)"), escaped."""
    dateline = f" — {passage.dateline}" if passage.dateline else ""
    return text_html(passage.title + dateline)


def highlighted(text: str, sentences: Sequence[str]) -> str:
    """The passage escaped, with each of `sentences` found in it wrapped in <mark>."""
    spans = sorted({(i, i + len(s)) for s in sentences if s and (i := text.find(s)) >= 0})
    parts, cursor = [], 0
    for start, end in spans:
        if start < cursor:  # overlapping sentences: the first mark wins
            continue
        parts += [text_html(text[cursor:start]), f"<mark>{text_html(text[start:end])}</mark>"]
        cursor = end
    return "".join([*parts, text_html(text[cursor:])])


def evidence(answer: Answer, similarity: Similarity) -> dict[int, list[str]]:
    """For each marker, the sentences of its passage closest to the answer sentences that cite it.

    The API checks that a passage supports a sentence but does not say which of its sentences
    does; the app works that out once per answer, only to show it highlighted.
    """
    sentences = split_sentences(answer.text)
    found: dict[int, list[str]] = {}
    for citation in answer.citations:
        claims = [strip_markers(s) for s in sentences if citation.marker in cited_numbers(s)]
        candidates = split_sentences(citation.passage.text)
        if not claims or not candidates:
            continue
        rows = similarity(claims, candidates)
        found[citation.marker] = list(dict.fromkeys(candidates[max(range(len(r)), key=r.__getitem__)] for r in rows))
    return found


def linked_text(text: str, note_id: str) -> str:
    """Answer text escaped, each [n] marker a link that opens footnote n."""
    parts, cursor = [], 0
    for match in MARKER.finditer(text):
        parts.append(text_html(text[cursor : match.start()]))
        for n in marker_numbers(match[1]):
            parts.append(f'<a class="rag-cite" href="#{note_id}-{n}">[{n}]</a>')
        cursor = match.end()
    return "".join([*parts, text_html(text[cursor:])])


def footnote(note_id: str, marker: int, passage: Passage, marks: Sequence[str]) -> str:
    """One collapsible footnote: title and dateline, then the passage with the cited sentence marked."""
    return (
        f'<details class="rag-fn" id="{note_id}-{marker}"><summary>[{marker}] {source_label(passage)}</summary>'
        f'<div class="rag-passage">{highlighted(passage.text, marks)}</div>'
        f'<div class="rag-meta">{text_html(passage.doc_id)}</div></details>'
    )


def answer_html(answer: Answer, marks: dict[int, list[str]], byline: str) -> str:
    """A finished answer: its text with linked markers and its footnotes, or a plain abstention."""
    if answer.abstained:
        body = f'<p class="rag-abstain">{text_html(answer.text)}</p>'
    else:
        note_id = f"rag-fn-{uuid.uuid4().hex[:10]}"
        notes = "".join(footnote(note_id, c.marker, c.passage, marks.get(c.marker, [])) for c in answer.citations)
        body = f'<p>{linked_text(answer.text, note_id)}</p><div class="rag-footnotes">{notes}</div>'
    return f'<div class="rag-answer">{body}<div class="rag-byline">{text_html(byline)}</div></div>'


def streaming_html(text: str) -> str:
    """The answer while it is being generated: plain escaped text (the app swaps the class on Stop)."""
    return f'<div class="rag-answer rag-streaming"><p>{text_html(text)}</p></div>'


def user_html(text: str) -> str:
    """The user's question, as text."""
    return f'<div class="rag-question">{text_html(text)}</div>'


def error_html(message: str) -> str:
    """A failure shown in the chat, as one sentence."""
    return f'<div class="rag-answer"><p class="rag-error">{text_html(message)}</p></div>'


def byline(answer: Answer) -> str:
    """Who answered: the Ollama model or the built-in one; nothing generated for a refusal."""
    if answer.backend == "ollama":
        return f"Answered by Ollama · {answer.model}"
    if answer.backend == "embedded":
        return f"Answered by {answer.model}"
    return "No model was asked: the question was answered from the retrieval step alone."


def source_html(number: int, passage: Passage, cited: bool, marks: Sequence[str]) -> str:
    """One retrieved passage in the sources panel, with its scores, collapsed."""
    similarity = "—" if passage.similarity is None else f"{passage.similarity:.2f}"
    badge = ' <span class="rag-badge">cited</span>' if cited else ""
    return (
        f'<details class="rag-source{" rag-cited" if cited else ""}" data-number="{number}">'
        f'<summary>[{number}] {source_label(passage)}{badge} <span class="rag-meta">score {passage.score:.4f} · '
        f"similarity {similarity}</span></summary>"
        f'<div class="rag-meta">{text_html(passage.doc_id)}</div>'
        f'<div class="rag-passage">{highlighted(passage.text, marks)}</div></details>'
    )


def sources_html(answer: Answer | None, marks: dict[int, list[str]] | None = None) -> str:
    """The passages retrieved for the last question, cited ones marked."""
    if answer is None or not answer.passages:
        return '<p class="rag-meta">The passages found for your question will show here.</p>'
    cited = {c.marker for c in answer.citations}
    marks = marks or {}
    items = "".join(source_html(n, p, n in cited, marks.get(n, [])) for n, p in enumerate(answer.passages, start=1))
    return f'<div class="rag-sources"><p class="rag-meta">Score: rank fusion of meaning and keyword search; similarity: closeness in meaning (cosine).</p>{items}</div>'


def documents_html(documents: Sequence[StoredDocument]) -> str:
    """The ingested articles as a table: title (the file name on hover), dateline, chunk count."""
    if not documents:
        return '<p class="rag-meta">No articles yet.</p>'
    rows = "".join(
        f'<tr><td title="{html.escape(d.doc_id)}">{text_html(d.title)}</td><td>{text_html(d.dateline)}</td>'
        f"<td>{len(d.chunk_ids)}</td></tr>"
        for d in documents
    )
    head = "<tr><th>Title</th><th>Dateline</th><th>Chunks</th></tr>"
    return f'<table class="rag-table"><thead>{head}</thead><tbody>{rows}</tbody></table>'


def hint(answer: Answer) -> str:
    """The line under the chat: the built-in model's hint about Ollama, or the backend's notice."""
    if answer.backend == "embedded":
        return answer.notice or OLLAMA_HINT
    return answer.notice


def notice_html(text: str) -> str:
    """A one-line note under the chat (which model answered, hints)."""
    return f'<p class="rag-meta">{text_html(text)}</p>' if text else ""
