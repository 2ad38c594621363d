"""The chat app: Gradio's layout and callbacks wired to the `rag.RAG` API, and nothing else.

Questions go to `RAG.stream()`, articles to `RAG.ingest()` (uploads checked by rag/uploads.py),
logins and listening addresses to rag/access.py, saved chats to rag/chats.py; the HTML comes
from rag/ui.py. One RAG object is built at start and answers every message; rag/engines.py holds
it (and those for other models) and the turns each model takes. `main()` is what `python app.py`,
`rag serve` and `make run` start: the chat mounted on the HTTP API's FastAPI app
(rag/httpapi.py), one server on one port. It sends no analytics and the chat needs no CDN.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

# Before Gradio is imported: no telemetry and no version check (the app must work offline).
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import gradio as gr
from pydantic import ValidationError

from rag import chats, ui
from rag.access import credentials
from rag.answer import Answer
from rag.api import RAG
from rag.documents import SUPPORTED_SUFFIXES
from rag.engines import BACKEND_CHOICES, Engines, model_name
from rag.errors import BadInput, RagError
from rag.generate import ollama_models
from rag.settings import Settings
from rag.store import StoredDocument
from rag.uploads import store_upload

log = logging.getLogger(__name__)

# System fonts only: Gradio's defaults may point at web fonts, and the page must not need the network.
THEME_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Arial", "sans-serif"]
THEME_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
# The built-in model runs on the CPU and takes all its cores: one answer at a time, the others queue.
ANSWER_CONCURRENCY = 1
QUEUE_SIZE = 64
# Gradio spots a callback that reports progress by this default and passes a fresh tracker per call.
PROGRESS = gr.Progress()
CHATS_STORAGE_KEY = "rag-chats"  # where the browser keeps its copy of the chats (localStorage)


def sentence(exc: Exception) -> str:
    """An error message as one sentence for a person."""
    text = str(exc).strip() or type(exc).__name__
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def progress_reporter(progress: gr.Progress) -> Callable[[int, int, str], None]:
    """The ingest progress callback, drawn as Gradio's progress bar."""

    def report(done: int, total: int, stage: str) -> None:
        progress((done, total), desc=f"{stage.capitalize()} the articles", unit="chunks")

    return report


def assistant(html: str) -> dict:
    """A chat message from the app."""
    return {"role": "assistant", "content": html}


def message_text(message: dict) -> str:
    """A chat message's text; Gradio hands messages back with content as a list of parts."""
    content = message.get("content", "")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def plain_messages(chat: list[dict]) -> list[dict]:
    """The chat's messages as {role, content} with text content, the form a saved chat keeps."""
    return [{"role": m.get("role", "assistant"), "content": message_text(m)} for m in chat]


def stream_reply(
    engine: RAG, question: str, history: list[dict], k: int, temperature: float, scope: list[str] | None = None
) -> Iterator[Any]:
    """Yield the growing text as HTML while the answer streams, then the final `Answer`; `scope` limits the articles."""
    pieces: list[str] = []
    for event in engine.stream(question, history=history, k=k, temperature=temperature, where=scope or None):
        if isinstance(event, Answer):
            yield event
            return
        pieces.append(event)
        yield ui.streaming_html("".join(pieces))
    raise RuntimeError("the answer stream ended without an answer")


def chat_record(chat_id: str, chat: list[dict], history: list[dict], sources: str) -> chats.Chat:
    """A chat as it is saved: titled by its first question, with what reopening it shows."""
    title = chats.title_for(history[0]["content"])
    return {"id": chat_id, "title": title, "messages": plain_messages(chat), "history": history, "sources": sources}


def chat_list(saved: list[chats.Chat], current: str = "") -> Any:
    """The list of saved chats, the open one selected."""
    return gr.update(choices=chats.choices(saved), value=current if chats.find(saved, current) else None)


def only_chat(chat: list[dict]) -> tuple:
    """Outputs of `respond` that change the chat and leave everything else as it is."""
    return chat, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()


class ChatApp:
    """The app's callbacks around one RAG object; `blocks()` lays them out and wires them to events.

    Stop, New chat and opening another chat do not use Gradio's `cancels`: cancelling a generator
    mid-step lets that step's output reach the page after the cancel, and the page then waits on the
    answer forever. Instead they note the time of the click for the browser session, and the
    streaming answer looks at the note after every piece and ends itself cleanly (which also
    releases the model at once).

    Chats are saved when an answer is finished: in the browser (`BrowserState`), or, when the app
    asks for a login, on the server under the user's name (`chats.ChatFolder`), and then nowhere else.
    """

    def __init__(self, engines: Engines, keep_chats_on_server: bool = False) -> None:
        self.engines = engines
        self.rag = engines.rag
        self.settings = engines.settings
        self.interrupts: dict[str, tuple[float, str]] = {}  # session -> (when, "stop", "new" or "switch")
        self.folder = chats.ChatFolder(self.settings.home / "chats") if keep_chats_on_server else None

    # -- chat ------------------------------------------------------------------------------------

    def take_question(self, question: str, chat: list[dict], chat_id: str) -> tuple:
        """Show the question at once and lock the box until the answer ends; a new chat gets its id."""
        question = (question or "").strip()
        if not question:
            return gr.update(value=""), chat, ("", 0.0, chat_id), chat_id
        chat_id = chat_id or chats.new_id()
        turn = {"role": "user", "content": ui.user_html(question)}
        return gr.update(value="", interactive=False), [*chat, turn], (question, time.monotonic(), chat_id), chat_id

    def interrupt(self, kind: str, session: str) -> None:
        """Note a Stop, New chat or opened chat for the session."""
        self.interrupts.pop(session, None)
        self.interrupts[session] = (time.monotonic(), kind)
        while len(self.interrupts) > 1000:  # forget the oldest sessions
            self.interrupts.pop(next(iter(self.interrupts)))

    def stop(self, request: gr.Request) -> None:
        """Stop: the streaming answer ends where it is."""
        self.interrupt("stop", request.session_hash)

    def clear(self, request: gr.Request) -> None:
        """New chat: a streaming answer ends and the chat empties."""
        self.interrupt("new", request.session_hash)

    def interrupted(self, request: gr.Request, asked_at: float) -> str:
        """The click ("stop", "new" or "switch") the session made since the question was asked, else ""."""
        when, kind = self.interrupts.get(request.session_hash, (0.0, ""))
        return kind if when > asked_at else ""

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
    ) -> Iterator[tuple]:
        """Stream the answer into the chat; then show its footnotes, sources and backend, and save the chat."""
        question, asked_at, chat_id = pending
        if not question:
            return
        chat = [*chat, assistant(ui.streaming_html(""))]
        try:
            engine = self.engines.pick(backend, model)
            events = stream_reply(engine, question, history, int(top_k), float(temperature), scope)
            # Closing the stream releases the model at once; the chat waits its turn behind API requests.
            with self.engines.queue.turn(model_name(engine), bounded=False), contextlib.closing(events):
                answer = yield from self.relay(events, chat, lambda: self.interrupted(request, asked_at))
            if answer is not None:
                yield self.finish(answer, chat, history, chat_id, saved, request)
        except RagError as exc:
            chat[-1] = assistant(ui.error_html(sentence(exc)))
            yield only_chat(chat)
        except Exception as exc:  # a bug must not take the chat down; the trace goes to the log
            log.exception("answering %r failed", question)
            chat[-1] = assistant(ui.error_html(f"Something went wrong ({type(exc).__name__}); see the app's log."))
            yield only_chat(chat)

    def relay(self, events: Iterator[Any], chat: list[dict], interrupted: Callable[[], str]) -> Iterator[tuple]:
        """Show each streamed piece; return the finished `Answer`, or None when the user clicked away."""
        for event in itertools.chain([chat[-1]["content"]], events):  # the placeholder first
            kind = interrupted()
            if kind:
                yield self.stopped(chat, kind)
                return None
            if isinstance(event, Answer):
                return event
            chat[-1] = assistant(event)
            yield only_chat(chat)
        return None

    def finish(
        self, answer: Answer, chat: list[dict], history: list[dict], chat_id: str, saved: list | None, request: Any
    ) -> tuple:
        """The finished answer with its evidence and footnotes; the turn joins the history and the chat is saved."""
        marks = ui.evidence_marks(answer)
        chat[-1] = assistant(ui.answer_html(answer, marks, ui.byline(answer)))
        turns = [{"role": "user", "content": answer.question}, {"role": "assistant", "content": answer.text}]
        history = [*history, *turns]
        sources, notice = ui.sources_html(answer, marks), ui.hint(answer)
        record = chat_record(chat_id, chat, history, sources)
        try:
            kept, stored = self.change_chats(saved, request, lambda old: chats.with_chat(old, record))
        except OSError as exc:
            log.warning("could not save the chat: %s", exc)
            note = ui.notice_html(f"This chat could not be saved ({exc.strerror or exc}).")
            return chat, history, sources, note, gr.skip(), gr.skip()
        return chat, history, sources, ui.notice_html(notice), stored, chat_list(kept, chat_id)

    def stopped(self, chat: list[dict], kind: str) -> tuple:
        """The chat after Stop (the partial answer, marked), New chat (empty) or opening another (as shown)."""
        if kind == "new":  # shown again last, in case a piece sent before the click arrives after it
            return [], [], ui.sources_html(None), "", gr.skip(), gr.skip()
        if kind != "stop":
            return only_chat(gr.skip())
        chat[-1] = assistant(message_text(chat[-1]).replace("rag-streaming", "rag-stopped"))
        return only_chat(chat)

    def new_chat(self) -> tuple:
        """An empty chat, history, sources panel and notice, no chat open in the list."""
        return [], [], ui.sources_html(None), "", "", gr.update(value=None)

    # -- saved chats -----------------------------------------------------------------------------

    def user(self, request: Any) -> str | None:
        """The logged-in user whose chats the server keeps, or None when they live in the browser."""
        return request.username if self.folder is not None and request.username else None

    def saved_chats(self, saved: list | None, request: Any) -> list[chats.Chat]:
        """The person's chats: from the server for a logged-in user, else the browser's copy."""
        user = self.user(request)
        return self.folder.load(user) if user and self.folder else chats.valid(saved)

    def change_chats(self, saved: list | None, request: Any, change: Callable[[list], list]) -> tuple[list, Any]:
        """Apply `change` to the person's chats: (the chats now, the value for the browser's copy)."""
        user = self.user(request)
        if user and self.folder:
            return self.folder.update(user, change), gr.skip()  # the browser keeps nothing
        kept = change(chats.valid(saved))
        return kept, kept

    def reopen(self, chat_id: str, saved: list | None, request: gr.Request) -> tuple:
        """Open a saved chat: its messages, the history follow-ups are read with, its last sources."""
        chat = chats.find(self.saved_chats(saved, request), chat_id or "")
        if chat is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        self.interrupt("switch", request.session_hash)  # an answer streaming into the old chat ends
        sources = chat.get("sources") or ui.sources_html(None)
        return chat["messages"], chat["history"], sources, "", chat["id"]

    def delete(self, chat_id: str, saved: list | None, request: gr.Request) -> tuple:
        """Delete the open chat and empty the page, as New chat does."""
        try:
            kept, stored = self.change_chats(saved, request, lambda old: chats.without(old, chat_id or ""))
        except OSError as exc:
            log.warning("could not delete the chat: %s", exc)
            note = ui.notice_html(f"The chat could not be deleted ({exc.strerror or exc}).")
            return gr.skip(), gr.skip(), gr.skip(), note, gr.skip(), gr.skip(), gr.skip()
        self.interrupt("new", request.session_hash)
        chat, history, sources, notice, _, _ = self.new_chat()
        return chat, history, sources, notice, "", stored, chat_list(kept)

    # -- articles --------------------------------------------------------------------------------

    def prepare(self, saved: list | None, request: gr.Request, progress: gr.Progress = PROGRESS) -> tuple:
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
        listed = chat_list(self.saved_chats(saved, request))
        return status, gr.update(visible=True), gr.update(choices=choices), listed, *self.article_views(docs)

    def ingest(self, progress: gr.Progress) -> str:
        """Bring the store in step with the corpus folder; a one-line report."""
        try:
            report = self.engines.ingest([self.settings.corpus], progress=progress_reporter(progress))
        except RagError as exc:
            return ui.notice_html(sentence(exc))
        skipped = "".join(f" Skipped {warning}." for warning in report.warnings)
        return ui.notice_html(report.summary() + skipped)

    def add_files(self, files: list[str] | None, progress: gr.Progress = PROGRESS) -> tuple:
        """Store the uploaded files in the corpus folder and ingest them."""
        saved, problems = [], []
        for name in files or []:
            try:
                saved.append(store_upload(Path(name), self.settings.corpus, self.settings.max_upload_bytes))
            except (BadInput, OSError) as exc:
                problems.append(sentence(exc))
        status = self.ingest(progress) if saved else ""
        note = ui.notice_html(" ".join(problems)) if problems else ""
        return note + status, None, *self.article_views(self.stored())

    def reindex(self, progress: gr.Progress = PROGRESS) -> tuple:
        """Re-read the corpus folder: new, changed and removed files."""
        status = self.ingest(progress)
        return status, *self.article_views(self.stored())

    def stored(self) -> list[StoredDocument]:
        """The stored articles; none (and a warning in the log) when the store cannot be read."""
        try:
            return self.rag.documents()
        except RagError as exc:
            log.warning("could not list the stored articles: %s", exc)
            return []

    def article_views(self, docs: list[StoredDocument]) -> tuple[str, Any, Any]:
        """What shows the indexed articles, from one read of the store: their list, the choices a
        question can be limited to (by title and doc_id, which titles may share), and example
        questions about them (none shown when there are no articles)."""
        scope = gr.update(choices=[(f"{d.title} ({d.doc_id})", d.doc_id) for d in docs])
        questions = ui.example_questions(docs)
        examples = gr.Dataset(samples=ui.example_samples(questions), visible=bool(questions))
        return ui.documents_html(docs), scope, examples

    @staticmethod
    def pick_example(sample: list[str] | None) -> str:
        """A clicked example question, put in the question box."""
        return ui.sample_question(sample)

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
        title, as `RAG.ask(where=...)`): {answer, abstained, backend, model, citations, passages}."""
        engine_choice = (backend or self.settings.backend, model or self.settings.ollama_model)
        temperature = self.settings.temperature if temperature is None else temperature
        try:
            engine = self.engines.pick(*engine_choice)
            with self.engines.queue.turn(model_name(engine), bounded=False):
                answer = engine.ask(question, history=history, k=top_k, temperature=temperature, where=filters)
        except RagError as exc:
            raise gr.Error(sentence(exc)) from exc
        return answer.to_dict()

    # -- layout and events -----------------------------------------------------------------------

    def blocks(self) -> gr.Blocks:
        """The page: saved chats on the left, the chat in the middle; sources, articles and settings on the right."""
        with gr.Blocks(title="Chat with the articles", analytics_enabled=False) as demo:
            parts = self.layout()
            self.wire(demo, parts)
        return demo

    def layout(self) -> SimpleNamespace:
        """Create the components; returns them by name."""
        c = SimpleNamespace()
        gr.Markdown("## Chat with the articles")
        c.status = gr.HTML(
            ui.notice_html("Getting the articles ready (the first start indexes them)…"), elem_id="rag-status"
        )
        with gr.Row(visible=False, elem_id="rag-main") as c.main:
            with gr.Column(scale=1, min_width=200):
                self.chats_column(c)
            with gr.Column(scale=3):
                self.chat_column(c)
            with gr.Column(scale=2):
                self.side_column(c)
        c.history = gr.State([])
        c.pending = gr.State(("", 0.0, ""))
        c.chat_id = gr.State("")
        c.saved = self.browser_copy()
        return c

    def chats_column(self, c: SimpleNamespace) -> None:
        """The saved chats, newest first, and the button that deletes the open one."""
        where = "kept for your login on this server" if self.folder else "kept in this browser only"
        c.chat_list = gr.Radio([], label="Chats", info=where, elem_id="rag-chats")
        c.delete = gr.Button("Delete this chat", size="sm", variant="secondary", elem_id="rag-delete")

    def chat_column(self, c: SimpleNamespace) -> None:
        """The conversation, the question box and its buttons, examples and the notice line."""
        c.chat = gr.Chatbot(
            elem_id="rag-chat",
            height=580,
            latex_delimiters=[],
            feedback_options=None,
            buttons=[],  # "copy" would copy the message's HTML
            show_label=False,
            placeholder="Ask a question about the articles. Answers cite their passages as [1], [2]…",
        )
        with gr.Row():
            c.question = gr.Textbox(
                placeholder="Ask about the articles…", show_label=False, scale=4, max_lines=4, elem_id="rag-question"
            )
            c.send = gr.Button("Ask", variant="primary", scale=0, min_width=80, elem_id="rag-send")
            c.stop = gr.Button("Stop", variant="stop", scale=0, min_width=80, elem_id="rag-stop")
            c.new = gr.Button("New chat", scale=0, min_width=120, elem_id="rag-new")
        c.scope = gr.Dropdown(
            [],
            multiselect=True,
            label="Ask only about these articles",
            info="Empty: every article.",
            elem_id="rag-scope",
        )
        # Filled on every page load and after an ingest from the articles indexed then (`article_views`).
        # Shown as HTML: Gradio cuts a text sample at 60 characters, and a question must show whole.
        c.examples = gr.Dataset(components=["html"], samples=[], label="Try", visible=False, elem_id="rag-examples")
        c.notice = gr.HTML(elem_id="rag-notice")

    def side_column(self, c: SimpleNamespace) -> None:
        """Sources for the last question, the articles (list, upload, re-index) and the answer settings."""
        settings = self.settings
        with gr.Accordion("Sources for the last question", open=True):
            c.sources = gr.HTML(ui.sources_html(None), elem_id="rag-sources")
        with gr.Accordion("Articles", open=False, elem_id="rag-articles"):
            c.documents = gr.HTML(elem_id="rag-documents")
            c.upload = gr.File(
                label=f"Add articles ({', '.join(SUPPORTED_SUFFIXES)}; up to {settings.max_upload_bytes:,} bytes each)",
                file_count="multiple",
                file_types=list(SUPPORTED_SUFFIXES),
                elem_id="rag-upload",
            )
            c.reindex = gr.Button("Re-index the articles folder", size="sm", elem_id="rag-reindex")
            c.doc_status = gr.HTML(elem_id="rag-doc-status")
        with gr.Accordion("Settings", open=False, elem_id="rag-settings"):
            c.backend = gr.Radio(
                list(BACKEND_CHOICES),
                value=settings.backend,
                label="Backend",
                info="auto: Ollama when it runs, else the built-in SmolLM2-135M (small and often wrong).",
                elem_id="rag-backend",
            )
            c.model = gr.Dropdown(
                [settings.ollama_model],
                value=settings.ollama_model,
                allow_custom_value=True,
                label="Ollama model",
                elem_id="rag-model",
            )
            c.top_k = gr.Slider(1, 20, value=settings.top_k, step=1, label="Passages (top k)")
            c.temperature = gr.Slider(0, 2, value=settings.temperature, step=0.05, label="Temperature")

    def browser_copy(self) -> gr.State | gr.BrowserState:
        """Where the browser keeps the chats: its storage, or (with chats on the server) nowhere."""
        if self.folder is not None:
            return gr.State([])  # stays empty: the handlers read and write the server's copy
        return gr.BrowserState([], storage_key=CHATS_STORAGE_KEY, secret=self.browser_secret())

    def browser_secret(self) -> str:
        """The key of the browser's copy of the chats, kept across restarts (a fresh one if home is read-only)."""
        try:
            return chats.browser_key(self.settings.home)
        except OSError as exc:
            log.warning("chats saved in the browser will not survive a restart: %s", exc)
            return secrets.token_hex(32)

    def wire(self, demo: gr.Blocks, c: SimpleNamespace) -> None:
        """Connect the components' events to the callbacks."""
        private: dict[str, Any] = {"api_visibility": "private"}
        articles = [c.documents, c.scope, c.examples]  # what `article_views` fills
        loaded = [c.status, c.main, c.model, c.chat_list, *articles]
        demo.load(self.prepare, c.saved, loaded, concurrency_id="store", **private)
        self.wire_chat(c, private)
        page = [c.chat, c.history, c.sources, c.notice, c.chat_id]
        c.chat_list.input(self.reopen, [c.chat_list, c.saved], page, queue=False, **private)
        c.delete.click(self.delete, [c.chat_id, c.saved], [*page, c.saved, c.chat_list], queue=False, **private)
        c.upload.upload(
            self.add_files, c.upload, [c.doc_status, c.upload, *articles], concurrency_id="store", **private
        )
        c.reindex.click(self.reindex, None, [c.doc_status, *articles], concurrency_id="store", **private)
        c.examples.click(self.pick_example, c.examples, c.question, queue=False, **private)
        gr.api(self.ask, api_name="ask", concurrency_limit=ANSWER_CONCURRENCY, concurrency_id="model")

    def wire_chat(self, c: SimpleNamespace, private: dict[str, Any]) -> None:
        """Asking (the box locks, the answer streams, the box opens again), Stop and New chat."""
        asked = gr.on(
            [c.question.submit, c.send.click],
            self.take_question,
            [c.question, c.chat, c.chat_id],
            [c.question, c.chat, c.pending, c.chat_id],
            queue=False,
            **private,
        )
        answered = asked.then(
            self.respond,
            [c.pending, c.chat, c.history, c.saved, c.backend, c.model, c.top_k, c.temperature, c.scope],
            [c.chat, c.history, c.sources, c.notice, c.saved, c.chat_list],
            concurrency_limit=ANSWER_CONCURRENCY,
            concurrency_id="model",
            **private,
        )
        answered.then(lambda: gr.update(interactive=True), None, c.question, queue=False, **private)
        c.stop.click(self.stop, None, None, queue=False, **private)
        cleared = gr.on([c.new.click, c.chat.clear], self.clear, queue=False, **private)
        outputs = [c.chat, c.history, c.sources, c.notice, c.chat_id, c.chat_list]
        cleared.then(self.new_chat, None, outputs, queue=False, **private)


def build_app(engines: Engines, keep_chats_on_server: bool = False) -> gr.Blocks:
    """The Gradio app over the engines; with a login, chats are kept on the server per user."""
    return ChatApp(engines, keep_chats_on_server).blocks()


# -- start ----------------------------------------------------------------------------------


def parser(prog: str = "app.py") -> argparse.ArgumentParser:
    """The app's command-line options (the same for `python app.py` and `rag serve`)."""
    options = argparse.ArgumentParser(prog=prog, description="Chat with your articles in the browser.")
    options.add_argument("--host", help="address to listen on (default 127.0.0.1; others need --auth)")
    options.add_argument("--port", type=int, help="port to listen on (default 7860)")
    options.add_argument("--auth", help="user:password that the app asks for")
    return options


def main(argv: list[str] | None = None, prog: str = "app.py") -> None:
    """Start the app; exits with a one-line message when the settings are unusable."""
    args = parser(prog).parse_args(argv)
    try:
        settings = Settings(**{key: value for key, value in vars(args).items() if value is not None})
        login = credentials(settings)
    except (RagError, ValidationError) as exc:
        sys.exit(f"Error: {exc}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "chromadb", "bm25s", "sentence_transformers", "transformers", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    engines = Engines(RAG(settings))
    launch(server_app(engines, login), settings)


def server_app(engines: Engines, login: tuple[str, str] | None) -> Any:
    """The HTTP API's FastAPI app with the chat mounted at `/`: queued, no web fonts, no MCP."""
    from rag.httpapi import create_api

    demo = build_app(engines, keep_chats_on_server=login is not None)
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    return gr.mount_gradio_app(
        create_api(engines, login),  # its /v1 routes and /docs come before the chat's catch-all mount
        demo,
        path="/",
        server_name=engines.settings.host,
        server_port=engines.settings.port,
        auth=login,
        max_file_size=engines.settings.max_upload_bytes,
        theme=gr.themes.Default(font=THEME_FONTS, font_mono=THEME_MONO),
        css=ui.CSS,
        js=ui.JS,
        ssr_mode=False,
        mcp_server=False,
    )


SHUTDOWN_GRACE_S = 5


def launch(app: Any, settings: Settings) -> None:
    """Serve the chat and the API on the settings' address (never a share link)."""
    import uvicorn

    url = f"http://{settings.host}:{settings.port}"
    log.info("the chat is at %s/, the API at %s/v1 (its documentation at %s/docs)", url, url, url)
    # A stop (Ctrl+C, SIGTERM) waits at most a few seconds for open connections: a browser tab or
    # a client's event stream stays open, and uvicorn would otherwise wait for it forever.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
