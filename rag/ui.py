"""HTML for the chat app: answers with clickable [n] footnotes, the sources panel, the documents list.

Every piece of text that comes from an article, a file name or the model goes through
`html.escape` and is shown as text, never as Markdown or HTML: an article holding `<script>`
shows those characters. The fragments hold no newlines, because Gradio's chatbot runs
Markdown over its messages and a blank line would end an HTML block halfway through.
Nothing here imports Gradio; rag/webapp.py does the wiring.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rag.answer import UNCERTAIN_NOTE
from rag.citations import MARKER, marker_numbers
from rag.generate import OLLAMA_HINT
from rag.safety import is_override_attempt

if TYPE_CHECKING:
    from rag.answer import Answer
    from rag.retrieve import Passage
    from rag.store import StoredDocument

# What the searches of rag/retrieve.py are called for a reader, and the key to the sources panel.
FOUND_BY_NAMES = {"dense": "meaning", "bm25": "words", "title": "its title, quoted in the question"}
SOURCES_KEY = (
    "Ranked by both searches together. Similarity: closeness in meaning to the question (cosine, up to 1). "
    "Found by meaning (embeddings), words (keyword search) or both."
)

# The example questions under the chat are made from the indexed articles' headlines, so they fit
# whatever folder is indexed; a "title" longer than this is a first line that is no headline.
EXAMPLE_QUESTION = 'What does the article "{title}" say?'
MAX_EXAMPLES = 4
MAX_EXAMPLE_TITLE = 100

# Icons drawn as SVG masks in the text's colour: a glyph such as "ⓘ" or "⚠" is missing from many
# system fonts (Debian's Chromium draws an empty box), and the page may load no web font.
ICON_INFO = (
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'><circle cx='8' cy='8' r='6.8' fill='none' "
    "stroke='black' stroke-width='1.6'/><rect x='7.2' y='7' width='1.6' height='5' rx='.5'/>"
    "<circle cx='8' cy='4.6' r='1'/></svg>"
)
ICON_WARNING = (
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'><path d='M8 1.6 15.2 14.4H.8Z' fill='none' "
    "stroke='black' stroke-width='1.5' stroke-linejoin='round'/><rect x='7.25' y='5.8' width='1.5' height='4.6' "
    "rx='.5'/><circle cx='8' cy='12.2' r='.9'/></svg>"
)


def svg_url(svg: str) -> str:
    """An SVG as a data: URL for CSS (percent-encoded where CSS or URLs would misread it)."""
    return "data:image/svg+xml," + svg.replace("%", "%25").replace("<", "%3C").replace(">", "%3E").replace("#", "%23")


# Styles for the fragments below; rag/webapp.py hands them to Gradio.
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
.rag-error { color: var(--error-text-color, #b91c1c); }
.rag-abstain::before, .rag-error::before, .rag-uncertain::before {
  content: ""; display: inline-block; width: 1em; height: 1em; margin-right: .35em; vertical-align: -.15em;
  background-color: currentColor; mask: var(--rag-icon) center / contain no-repeat;
  -webkit-mask: var(--rag-icon) center / contain no-repeat;
}
.rag-abstain::before, .rag-uncertain::before { --rag-icon: url("ICON_INFO"); }
.rag-uncertain { font-size: .85em; color: var(--body-text-color-subdued); margin: .2em 0; }
.rag-error::before { --rag-icon: url("ICON_WARNING"); }
.rag-evidence { margin-top: .5em; }
.rag-evidence-label { font-size: .8em; font-weight: 600; color: var(--body-text-color-subdued); }
.rag-quote { margin: .2em 0 .3em 0; padding: .2em .6em; border-left: 3px solid #f59e0b; font-size: .92em; }
.rag-streaming p:empty::after { content: "Searching the articles…"; color: var(--body-text-color-subdued); }
.rag-stopped::after { content: "Stopped."; font-style: italic; color: var(--body-text-color-subdued); }
.rag-byline { margin-top: .4em; color: var(--body-text-color-subdued); font-size: .8em; }
.rag-source { margin-bottom: .4em; }
.rag-source.rag-cited > summary { font-weight: 600; }
.rag-badge { font-size: .75em; padding: 0 .4em; border-radius: .6em; background: #dcfce7; color: #166534; }
#rag-chats .wrap { flex-direction: column; flex-wrap: nowrap; max-height: 520px; overflow-y: auto; }
.rag-table { width: 100%; border-collapse: collapse; border: none !important; font-size: .9em; }
.rag-table th, .rag-table td {
  text-align: left; vertical-align: top; padding: .2em .4em; border: none;
  border-bottom: 1px solid var(--border-color-primary);
}
""".replace("ICON_INFO", svg_url(ICON_INFO)).replace("ICON_WARNING", svg_url(ICON_WARNING))

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
    """The passage's title and dateline ("Title — Portvale, April 15 (Agency)"), escaped."""
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


def evidence_marks(answer: Answer) -> dict[int, list[str]]:
    """For each cited marker, the evidence sentence of its passage that the answer rests on (the best one)."""
    marks: dict[int, list[str]] = {}
    for item in answer.used_evidence:  # best first: the first sentence of a cited passage is the one shown
        marks.setdefault(item.passage, [item.text])
    return marks


def evidence_html(answer: Answer, marks: dict[int, list[str]], note_id: str) -> str:
    """The evidence block under an answer: each sentence quoted, with its marker and article title."""
    titles = {c.marker: c.passage.title for c in answer.citations}
    quotes = "".join(
        quote_html(marker, sentence, titles.get(marker, ""), note_id)
        for marker, sentences in sorted(marks.items())
        for sentence in sentences
    )
    return f'<div class="rag-evidence"><div class="rag-evidence-label">Evidence</div>{quotes}</div>' if quotes else ""


def quote_html(marker: int, sentence: str, title: str, note_id: str) -> str:
    """One evidence sentence in quotes, then a link to its footnote and its article's title."""
    link = f'<a class="rag-cite" href="#{note_id}-{marker}">[{marker}]</a>'
    return (
        f'<blockquote class="rag-quote" data-marker="{marker}">“<span class="rag-quote-text">{text_html(sentence)}'
        f'</span>” <span class="rag-meta">— {link} {text_html(title)}</span></blockquote>'
    )


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
    """A finished answer: its text with linked markers, its evidence and footnotes; or a plain abstention."""
    if answer.abstained:
        body = f'<p class="rag-abstain">{text_html(answer.text)}</p>'
    else:
        note_id = f"rag-fn-{uuid.uuid4().hex[:10]}"
        notes = "".join(footnote(note_id, c.marker, c.passage, marks.get(c.marker, [])) for c in answer.citations)
        doubt = f'<p class="rag-uncertain">{text_html(UNCERTAIN_NOTE)}</p>' if answer.uncertain else ""
        body = (
            f"<p>{linked_text(answer.text, note_id)}</p>{doubt}{evidence_html(answer, marks, note_id)}"
            f'<div class="rag-footnotes">{notes}</div>'
        )
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
    """Who answered: the model that wrote it, or where it was taken from; nothing generated for a refusal."""
    from rag.answer import How

    if answer.backend == "none":
        return "No model was asked: the question was answered from the retrieval step alone."
    if answer.how == How.QUOTE:
        return "Quoted from the best evidence sentence (the built-in model is too small to rephrase it reliably)"
    if answer.how == How.OPENING:
        return "Quoted from the opening of the article the question names; no model wrote it"
    if answer.how == How.BYLINE and answer.quotes_its_evidence:
        return "Quoted from the byline of the article the question asks about; no model wrote it"
    if answer.how == How.BYLINE:  # a wire story's, which has none
        return (
            "Taken from the dateline of the article the question asks about, which names no writer; no model wrote it"
        )
    if answer.how == How.ABSTAIN and answer.backend == "embedded":  # it abstains before its model runs
        return "No sentence of the passages scores as an answer; no model was asked"
    if answer.how in (How.SHORT, How.RECKON, How.NAMES):
        return "Taken from the evidence sentences, which are shown with it; no model wrote it"
    server = {"ollama": "Ollama · ", "openai": "OpenAI-compatible server · "}.get(answer.backend, "")
    return f"Answered by {server}{answer.model}"


def found_label(passage: Passage) -> str:
    """Which searches found a passage, in a reader's words."""
    names = [FOUND_BY_NAMES[name] for name in passage.found_by if name in FOUND_BY_NAMES]
    return f"found by {' and '.join(names)}" if names else ""


def source_html(number: int, passage: Passage, cited: bool, marks: Sequence[str]) -> str:
    """One retrieved passage in the sources panel: its rank, how close in meaning, what found it; collapsed."""
    facts = [f"rank {number}"]
    if passage.similarity is not None:
        facts.append(f"similarity {passage.similarity:.2f}")
    facts.append(found_label(passage))
    badge = ' <span class="rag-badge">cited</span>' if cited else ""
    return (
        f'<details class="rag-source{" rag-cited" if cited else ""}" data-number="{number}">'
        f'<summary>[{number}] {source_label(passage)}{badge} <span class="rag-meta">'
        f"{' · '.join(fact for fact in facts if fact)}</span></summary>"
        f'<div class="rag-meta">{text_html(passage.doc_id)}</div>'
        f'<div class="rag-passage">{highlighted(passage.text, marks)}</div></details>'
    )


def sources_html(answer: Answer | None, marks: dict[int, list[str]] | None = None) -> str:
    """The passages retrieved for the last question, best first, cited ones marked."""
    if answer is None or not answer.passages:
        return '<p class="rag-meta">The passages found for your question will show here.</p>'
    cited = {c.marker for c in answer.citations}
    marks = marks or {}
    items = "".join(source_html(n, p, n in cited, marks.get(n, [])) for n, p in enumerate(answer.passages, start=1))
    return f'<div class="rag-sources"><p class="rag-meta">{SOURCES_KEY}</p>{items}</div>'


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


def example_questions(documents: Sequence[StoredDocument], limit: int = MAX_EXAMPLES) -> list[str]:
    """Up to `limit` questions about the stored articles, one per distinct headline, in the order
    given; none for articles whose title is only their file name, a whole paragraph, or reads as
    an order the app would refuse."""
    questions: list[str] = []
    for doc in documents:
        title = " ".join(doc.title.split()).rstrip(".!?:;")
        question = EXAMPLE_QUESTION.format(title=title)
        usable = title and doc.title != doc.doc_id and len(title) <= MAX_EXAMPLE_TITLE
        if usable and question not in questions and not is_override_attempt(question):
            questions.append(question)
        if len(questions) == limit:
            break
    return questions


def example_samples(questions: Sequence[str]) -> list[list[str]]:
    """The example questions as the app's examples show them: one escaped HTML sample each."""
    return [[text_html(q)] for q in questions]


def sample_question(sample: Sequence[str] | None) -> str:
    """The question of a clicked example sample (`example_samples`), as plain text."""
    return html.unescape(sample[0]) if sample else ""


def hint(answer: Answer) -> str:
    """The line under the chat: the built-in model's hint about Ollama, or the backend's notice."""
    if answer.backend == "embedded":
        return answer.notice or OLLAMA_HINT
    return answer.notice


def notice_html(text: str) -> str:
    """A one-line note under the chat (which model answered, hints)."""
    return f'<p class="rag-meta">{text_html(text)}</p>' if text else ""
