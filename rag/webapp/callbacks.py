"""The chat app's callbacks: what a question, a click, an upload or a page load does, through the API.

Questions go to `RAG.stream()`, whose events are read in one place (`ChatApp.relay`); articles go
to `RAG.ingest()` (uploads checked by rag/uploads.py), saved chats to rag/chats.py, and the HTML
comes from rag/ui.py. Each callback returns a dict keyed by the components it changes (the
`Components` that rag/webapp/layout.py builds); Gradio leaves the event's other outputs as they
are, so adding an output cannot shift the others. Nothing here places a component or knows where
one sits on the page.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from rag import chats, ui
from rag.answer import Answer, Event, answer_json, text_then_answer
from rag.engines import Engines, model_name
from rag.errors import RagError, sentence
from rag.generate import ollama_models
from rag.store import StoredDocument
from rag.uploads import store_upload
from rag.webapp.sessions import Interrupts, SavedChats, chat_record, message_text

if TYPE_CHECKING:
    from rag.webapp.layout import Components

log = logging.getLogger(__name__)

# Gradio spots a callback that reports progress by this default and passes a fresh tracker per call.
PROGRESS = gr.Progress()


def progress_reporter(progress: gr.Progress) -> Callable[[int, int, str], None]:
    """The ingest progress callback, drawn as Gradio's progress bar."""

    def report(done: int, total: int, stage: str) -> None:
        progress((done, total), desc=f"{stage.capitalize()} the articles", unit="chunks")

    return report


def assistant(html: str) -> dict:
    """A chat message from the app."""
    return {"role": "assistant", "content": html}


def chat_list(saved: list[chats.Chat], current: str = "") -> Any:
    """The list of saved chats, the open one selected."""
    return gr.update(choices=chats.choices(saved), value=current if chats.find(saved, current) else None)


class ChatApp:
    """The app's callbacks around the engines, changing the page's components `c`."""

    def __init__(self, engines: Engines, c: Components, keep_chats_on_server: bool = False) -> None:
        self.engines = engines
        self.rag = engines.rag
        self.settings = engines.settings
        self.c = c
        self.interrupts = Interrupts()
        self.saved_chats = SavedChats(chats.ChatFolder(self.settings.home / "chats") if keep_chats_on_server else None)

    # -- asking ----------------------------------------------------------------------------------
    def take_question(self, question: str, chat: list[dict], chat_id: str) -> dict:
        """Show the question at once and lock the box until the answer ends; a new chat gets its id."""
        c = self.c
        question = (question or "").strip()
        if not question:
            return {c.question: "", c.pending: ("", 0.0, chat_id)}
        chat_id = chat_id or chats.new_id()
        turn = {"role": "user", "content": ui.user_html(question)}
        pending = (question, time.monotonic(), chat_id)
        locked = gr.update(value="", interactive=False)
        return {c.question: locked, c.chat: [*chat, turn], c.pending: pending, c.chat_id: chat_id}

    def unlock(self) -> dict:
        """The question box opens again once the answer has ended, however it ended."""
        return {self.c.question: gr.update(interactive=True)}

    def stop(self, request: gr.Request) -> None:
        """Stop: the streaming answer ends where it is."""
        self.interrupts.note(request.session_hash, "stop")

    def clear(self, request: gr.Request) -> None:
        """New chat: a streaming answer ends and the chat empties."""
        self.interrupts.note(request.session_hash, "new")

    def respond(
        self,
        pending: tuple[str, float, str],
        chat: list[dict],
        history: list[dict],
        saved: list | None,
        backend: str,
        model: str,
        top_k: float,
        temperature: float,
        scope: list[str] | None,
        request: gr.Request,
    ) -> Iterator[dict]:
        """Stream the answer into the chat; then show its footnotes, sources and backend, and save the chat."""
        question, asked_at, chat_id = pending
        if not question:
            return
        chat = [*chat, assistant(ui.streaming_html(""))]
        try:
            engine = self.engines.pick(backend, model if backend != "openai" else "")  # the box lists Ollama's
            stream = engine.stream(
                question, history=history, k=int(top_k), temperature=float(temperature), where=scope or None
            )
            # Closing the stream releases the model at once; the chat waits its turn behind API requests.
            with self.engines.queue.turn(model_name(engine), bounded=False), contextlib.closing(stream):
                answer = yield from self.relay(stream, chat, request.session_hash, asked_at)
            if answer is not None:
                yield self.finish(answer, chat, history, chat_id, saved, request)
        except RagError as exc:
            chat[-1] = assistant(ui.error_html(sentence(exc)))
            yield {self.c.chat: chat}
        except Exception as exc:  # a bug must not take the chat down; the trace goes to the log
            log.exception("answering %r failed", question)
            chat[-1] = assistant(ui.error_html(f"Something went wrong ({type(exc).__name__}); see the app's log."))
            yield {self.c.chat: chat}

    def relay(
        self, stream: Iterator[Event], chat: list[dict], session: str, asked_at: float
    ) -> Generator[dict, None, Answer | None]:
        """Show the draft in the last message as `RAG.stream()` writes it (an empty one first); return
        the finished `Answer`, or None when the session clicked away. The only reader of the stream."""
        texts, draft = text_then_answer(stream), ""
        while not (kind := self.interrupts.since(session, asked_at)):
            chat[-1] = assistant(ui.streaming_html(draft))
            yield {self.c.chat: chat}
            try:
                draft += next(texts)
            except StopIteration as done:
                return done.value
        yield self.stopped(chat, kind)
        return None

    def finish(
        self, answer: Answer, chat: list[dict], history: list[dict], chat_id: str, saved: list | None, request: Any
    ) -> dict:
        """The finished answer with its evidence and footnotes; the turn joins the history and the chat is saved."""
        c = self.c
        marks = ui.evidence_marks(answer)
        chat[-1] = assistant(ui.answer_html(answer, marks, ui.byline(answer)))
        history = [*history, {"role": "user", "content": answer.question}, assistant(answer.text)]
        sources = ui.sources_html(answer, marks)
        shown = {c.chat: chat, c.history: history, c.sources: sources, c.notice: ui.notice_html(ui.hint(answer))}
        record = chat_record(chat_id, chat, history, sources)
        try:
            return shown | self.change_chats(saved, request, lambda old: chats.with_chat(old, record), chat_id)
        except OSError as exc:
            log.warning("could not save the chat: %s", exc)
            return shown | {c.notice: ui.notice_html(f"This chat could not be saved ({exc.strerror or exc}).")}

    def stopped(self, chat: list[dict], kind: str) -> dict:
        """The chat after Stop (the partial answer, marked), New chat (empty) or opening another (as shown)."""
        if kind == "new":  # emptied again last, in case a piece sent before the click arrives after it
            return self.empty_page()
        if kind != "stop":
            return gr.skip()  # the other chat shows already
        chat[-1] = assistant(message_text(chat[-1]).replace("rag-streaming", "rag-stopped"))
        return {self.c.chat: chat}

    def empty_page(self) -> dict:
        """An empty chat, history, sources panel and notice."""
        c = self.c
        return {c.chat: [], c.history: [], c.sources: ui.sources_html(None), c.notice: ""}

    def new_chat(self) -> dict:
        """New chat: the page empties and no chat is open in the list."""
        return self.empty_page() | {self.c.chat_id: "", self.c.chat_list: gr.update(value=None)}

    # -- saved chats -----------------------------------------------------------------------------
    def change_chats(self, saved: list | None, request: Any, change: Callable[[list], list], current: str = "") -> dict:
        """Apply `change` to the person's chats: the list shown (`current` selected) and, when the
        browser keeps the chats, its copy."""
        kept, in_browser = self.saved_chats.change(saved, request, change)
        shown = {self.c.chat_list: chat_list(kept, current)}
        return (shown | {self.c.saved: kept}) if in_browser else shown

    def reopen(self, chat_id: str, saved: list | None, request: gr.Request) -> dict:
        """Open a saved chat: its messages, the history follow-ups are read with, its last sources."""
        chat = chats.find(self.saved_chats.load(saved, request), chat_id or "")
        if chat is None:
            return gr.skip()
        self.interrupts.note(request.session_hash, "switch")  # an answer streaming into the old chat ends
        c = self.c
        sources = chat.get("sources") or ui.sources_html(None)
        shown = {c.chat: chat["messages"], c.history: chat["history"], c.sources: sources, c.notice: ""}
        return shown | {c.chat_id: chat["id"]}

    def delete(self, chat_id: str, saved: list | None, request: gr.Request) -> dict:
        """Delete the open chat and empty the page, as New chat does."""
        try:
            changed = self.change_chats(saved, request, lambda old: chats.without(old, chat_id or ""))
        except OSError as exc:
            log.warning("could not delete the chat: %s", exc)
            return {self.c.notice: ui.notice_html(f"The chat could not be deleted ({exc.strerror or exc}).")}
        self.interrupts.note(request.session_hash, "new")
        return self.empty_page() | {self.c.chat_id: ""} | changed

    # -- articles --------------------------------------------------------------------------------
    def prepare(self, saved: list | None, request: gr.Request, progress: gr.Progress = PROGRESS) -> dict:
        """Every page load: ingest the default corpus if the store is empty (first run), then show the chat."""
        progress(0, desc="Opening the store and the embedding model")
        try:
            report = self.rag.ensure_corpus(progress=progress_reporter(progress))
            status = ui.notice_html(f"First run: {report.summary()}") if report else ""
            docs = self.rag.documents()
        except RagError as exc:
            status, docs = ui.error_html(sentence(exc)), []
        models = ollama_models(self.settings.ollama_host, timeout=1.0) or []
        choices = list(dict.fromkeys([self.settings.ollama_model, *models]))
        c = self.c
        shown = {c.status: status, c.main: gr.update(visible=True), c.model: gr.update(choices=choices)}
        return shown | {c.chat_list: chat_list(self.saved_chats.load(saved, request))} | self.article_views(docs)

    def ingest(self, progress: gr.Progress) -> str:
        """Bring the store in step with the corpus folder; a one-line report."""
        try:
            report = self.engines.ingest([self.settings.corpus], progress=progress_reporter(progress))
        except RagError as exc:
            return ui.notice_html(sentence(exc))
        skipped = "".join(f" Skipped {warning}." for warning in report.warnings)
        return ui.notice_html(report.summary() + skipped)

    def add_files(self, files: list[str] | None, progress: gr.Progress = PROGRESS) -> dict:
        """Store the uploaded files in the corpus folder and ingest them; the upload box empties."""
        saved, problems = [], []
        for name in files or []:
            try:
                saved.append(store_upload(Path(name), self.settings.corpus, self.settings.max_upload_bytes))
            except (RagError, OSError) as exc:
                problems.append(sentence(exc))
        status = self.ingest(progress) if saved else ""
        note = ui.notice_html(" ".join(problems)) if problems else ""
        return {self.c.doc_status: note + status, self.c.upload: None} | self.article_views(self.stored())

    def reindex(self, progress: gr.Progress = PROGRESS) -> dict:
        """Re-read the corpus folder: new, changed and removed files."""
        return {self.c.doc_status: self.ingest(progress)} | self.article_views(self.stored())

    def stored(self) -> list[StoredDocument]:
        """The stored articles; none (and a warning in the log) when the store cannot be read."""
        try:
            return self.rag.documents()
        except RagError as exc:
            log.warning("could not list the stored articles: %s", exc)
            return []

    def article_views(self, docs: list[StoredDocument]) -> dict:
        """What shows the indexed articles, from one read of the store: their list, the choices a
        question can be limited to (by title and doc_id, which titles may share), and example
        questions about them (none shown when there are no articles)."""
        c = self.c
        scope = gr.update(choices=[(f"{d.title} ({d.doc_id})", d.doc_id) for d in docs])
        questions = ui.example_questions(docs)
        examples = gr.Dataset(samples=ui.example_samples(questions), visible=bool(questions))
        return {c.documents: ui.documents_html(docs), c.scope: scope, c.examples: examples}

    def pick_example(self, sample: list[str] | None) -> dict:
        """A clicked example question, put in the question box."""
        return {self.c.question: ui.sample_question(sample)}

    # -- for scripts -----------------------------------------------------------------------------
    def ask(
        self,
        question: str,
        history: list[dict] | None = None,
        top_k: int | None = None,
        temperature: float | None = None,
        backend: str | None = None,
        model: str | None = None,
        filters: dict | None = None,
    ) -> dict:
        """Answer a question from the articles (only those `filters` names: doc_ids or globs, dateline,
        title, as `RAG.ask(where=...)`), as JSON: the same as `rag ask --json` (`answer_json`)."""
        temperature = self.settings.temperature if temperature is None else temperature
        try:
            engine = self.engines.pick(backend or self.settings.backend, model or "")
            with self.engines.queue.turn(model_name(engine), bounded=False):
                answer = engine.ask(question, history=history, k=top_k, temperature=temperature, where=filters)
        except RagError as exc:
            raise gr.Error(sentence(exc)) from exc
        return answer_json(answer)
