"""The chat app: Gradio wired to the `rag.RAG` API, and nothing else.

`python app.py` (or `rag serve`, or `make run`) serves it at http://127.0.0.1:7860. Questions go to
`RAG.stream()`, articles to `RAG.ingest()`; the HTML comes from `rag/ui.py`. One RAG object is
built at start and answers every message. The app binds the loopback address unless told
otherwise, and then only with a password; it sends no analytics and needs no CDN.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import ipaddress
import itertools
import logging
import os
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

# Before Gradio is imported: no telemetry and no version check (the app must work offline).
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import gradio as gr
from pydantic import ValidationError

from rag import RAG, Answer, BadInput, RagError, Settings, ui
from rag.documents import SUPPORTED_SUFFIXES
from rag.generate import ollama_models

log = logging.getLogger("app")

BACKEND_CHOICES = ("auto", "embedded", "ollama")
UPLOAD_FOLDER = "uploads"  # uploads land in <corpus>/uploads/, apart from the articles already there
EXAMPLES = [
    "Where did Lavrov and Kishida hold talks?",
    "Who did Igor Morgulov open consultations with?",
    "What did the Soviet memorandum of January 27, 1960 say about the islands?",
    "Which islands does Japan claim?",
]
# System fonts only: Gradio's defaults may point at web fonts, and the page must not need the network.
THEME_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Arial", "sans-serif"]
THEME_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
# The built-in model runs on the CPU and takes all its cores: one answer at a time, the others queue.
ANSWER_CONCURRENCY = 1
QUEUE_SIZE = 64
# Gradio spots a callback that reports progress by this default and passes a fresh tracker per call.
PROGRESS = gr.Progress()


# -- exposure: where the app listens and who may use it ---------------------------------------


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable only from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    """`user:password` as a pair, None when unset; BadInput when malformed."""
    if not auth:
        return None
    user, _, password = auth.partition(":")
    if not user or not password:
        raise BadInput("the login must look like user:password (RAG_AUTH or --auth)")
    return user, password


def credentials(settings: Settings) -> tuple[str, str] | None:
    """The login the app asks for; refuses a non-loopback address without one."""
    login = parse_auth(settings.auth)
    if login is None and not is_loopback(settings.host):
        raise BadInput(
            f"refusing to listen on {settings.host} without a login: anyone who can reach it could read the "
            "articles and run the model. Set RAG_AUTH=user:password or pass --auth user:password, "
            "or listen on 127.0.0.1"
        )
    return login


# -- uploads: checked, renamed and written inside the corpus folder only ------------------------


def safe_name(name: str) -> str:
    """A file name safe to write: no folders, no leading dot, only letters, digits, `.`, `_`, `-`."""
    base = unicodedata.normalize("NFKC", name.replace("\\", "/").rsplit("/", 1)[-1])
    stem, suffix = os.path.splitext(base)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:80] or "upload"
    return stem + suffix.lower()


def check_upload(name: str, data: bytes, max_bytes: int) -> None:
    """Refuse a file that is too big, of a type we do not read, or whose bytes do not match its type."""
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise BadInput(f"{name}: only {', '.join(SUPPORTED_SUFFIXES)} files can be added")
    if len(data) > max_bytes:
        raise BadInput(f"{name} is {len(data):,} bytes; the limit is {max_bytes:,}")
    if suffix == ".pdf" and not data.startswith(b"%PDF-"):
        raise BadInput(f"{name} is not a PDF file")
    if suffix != ".pdf" and b"\x00" in data[:8192]:
        raise BadInput(f"{name} looks binary, not text")


def store_upload(source: Path, corpus: Path, max_bytes: int) -> Path:
    """Copy an uploaded file into `<corpus>/uploads/` under a safe, unused name; return where it went."""
    if source.stat().st_size > max_bytes:  # before reading: a huge file is refused without loading it
        raise BadInput(f"{source.name} is {source.stat().st_size:,} bytes; the limit is {max_bytes:,}")
    data = source.read_bytes()
    name = safe_name(source.name)
    check_upload(name, data, max_bytes)
    folder = (corpus / UPLOAD_FOLDER).resolve()
    if not folder.is_relative_to(corpus.resolve()):
        raise BadInput(f"the uploads folder {folder} is outside the corpus folder")
    folder.mkdir(parents=True, exist_ok=True)
    stem, suffix = os.path.splitext(name)
    for n in range(1, 1000):
        target = folder / (name if n == 1 else f"{stem}-{n}{suffix}")
        if target.is_file() and not target.is_symlink() and target.read_bytes() == data:
            return target  # the same file again: nothing to write
        try:
            with open(target, "xb") as handle:  # "x": never follow or replace what is there
                handle.write(data)
            return target
        except FileExistsError:
            continue
    raise BadInput(f"too many uploads named {name}")


# -- callbacks ------------------------------------------------------------------------------


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


def stream_reply(engine: RAG, question: str, history: list[dict], k: int, temperature: float) -> Iterator[Any]:
    """Yield the growing text as HTML while the answer streams, then the final `Answer`."""
    pieces: list[str] = []
    for event in engine.stream(question, history=history, k=k, temperature=temperature):
        if isinstance(event, Answer):
            yield event
            return
        pieces.append(event)
        yield ui.streaming_html("".join(pieces))
    raise RuntimeError("the answer stream ended without an answer")


class ChatApp:
    """The app's callbacks around one RAG object; `blocks()` lays them out and wires them to events.

    Stop and New chat do not use Gradio's `cancels`: cancelling a generator mid-step lets that step's
    output reach the page after the cancel, and the page then waits on the answer forever. Instead
    they note the time of the click for the browser session, and the streaming answer looks at the
    note after every piece and ends itself cleanly (which also releases the model at once).
    """

    def __init__(self, rag: RAG) -> None:
        self.rag = rag
        self.settings = rag.settings
        # A backend and model other than the configured ones get their own RAG on the same store, built
        # once and kept (a few at most): it loads its own embedder and model, which costs memory but
        # needs nothing from the API; after an ingest they are dropped so none keeps a stale index.
        self.others = functools.lru_cache(maxsize=4)(
            lambda backend, model: RAG(rag.settings, backend=backend, ollama_model=model)
        )
        self.interrupts: dict[str, tuple[float, str]] = {}  # session -> (when, "stop" or "new")

    def pick(self, backend: str, model: str) -> RAG:
        """The RAG that answers with the backend and model chosen in Settings."""
        if backend not in BACKEND_CHOICES:
            raise BadInput(f"unknown backend '{backend}'; choose one of: {', '.join(BACKEND_CHOICES)}")
        model = (model or "").strip() or self.settings.ollama_model
        if backend == "embedded":
            model = self.settings.ollama_model  # the name plays no part
        if (backend, model) == (self.settings.backend, self.settings.ollama_model):
            return self.rag
        return self.others(backend, model)

    # -- chat ------------------------------------------------------------------------------------

    def take_question(self, question: str, chat: list[dict]) -> tuple[Any, list[dict], tuple[str, float]]:
        """Show the question at once and lock the box until the answer ends."""
        question = (question or "").strip()
        if not question:
            return gr.update(value=""), chat, ("", 0.0)
        turn = {"role": "user", "content": ui.user_html(question)}
        return gr.update(value="", interactive=False), [*chat, turn], (question, time.monotonic())

    def interrupt(self, kind: str, session: str) -> None:
        """Note a Stop or New chat click for the session."""
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
        """The click ("stop" or "new") the session made since the question was asked, else ""."""
        when, kind = self.interrupts.get(request.session_hash, (0.0, ""))
        return kind if when > asked_at else ""

    def respond(
        self,
        pending: tuple[str, float],
        chat: list[dict],
        history: list[dict],
        backend: str,
        model: str,
        top_k: float,
        temperature: float,
        request: gr.Request,
    ) -> Iterator[tuple]:
        """Stream the answer into the chat; then show its footnotes, sources and backend."""
        question, asked_at = pending
        if not question:
            return
        chat = [*chat, assistant(ui.streaming_html(""))]
        try:
            engine = self.pick(backend, model)
            events = stream_reply(engine, question, history, int(top_k), float(temperature))
            with contextlib.closing(events):  # closing the stream releases the model at once
                yield from self.relay(events, engine, chat, history, lambda: self.interrupted(request, asked_at))
        except RagError as exc:
            chat[-1] = assistant(ui.error_html(sentence(exc)))
            yield only_chat(chat)
        except Exception as exc:  # a bug must not take the chat down; the trace goes to the log
            log.exception("answering %r failed", question)
            chat[-1] = assistant(ui.error_html(f"Something went wrong ({type(exc).__name__}); see the app's log."))
            yield only_chat(chat)

    def relay(
        self, events: Iterator[Any], engine: RAG, chat: list[dict], history: list[dict], interrupted: Callable[[], str]
    ) -> Iterator[tuple]:
        """Show each streamed piece until the answer is finished or the user clicks Stop or New chat."""
        for event in itertools.chain([chat[-1]["content"]], events):  # the placeholder first
            kind = interrupted()
            if kind:
                yield self.stopped(chat, kind)
                return
            if isinstance(event, Answer):
                yield self.finish(engine, event, chat, history)
                return
            chat[-1] = assistant(event)
            yield only_chat(chat)

    def finish(self, engine: RAG, answer: Answer, chat: list[dict], history: list[dict]) -> tuple:
        """The finished answer with its footnotes; the turn joins the history."""
        marks = ui.evidence(answer, engine.similarities) if answer.citations else {}
        chat[-1] = assistant(ui.answer_html(answer, marks, ui.byline(answer)))
        turns = [{"role": "user", "content": answer.question}, {"role": "assistant", "content": answer.text}]
        return chat, [*history, *turns], ui.sources_html(answer, marks), ui.notice_html(ui.hint(answer))

    def stopped(self, chat: list[dict], kind: str) -> tuple:
        """The chat after Stop (the partial answer, marked) or New chat (empty)."""
        if kind == "new":
            return self.new_chat()
        chat[-1] = assistant(message_text(chat[-1]).replace("rag-streaming", "rag-stopped"))
        return only_chat(chat)

    def new_chat(self) -> tuple:
        """An empty chat, history, sources panel and notice."""
        return [], [], ui.sources_html(None), ""

    # -- articles --------------------------------------------------------------------------------

    def prepare(self, progress: gr.Progress = PROGRESS) -> tuple:
        """Every page load: ingest the default corpus if the store is empty (first run), then show the chat."""
        progress(0, desc="Opening the store and the embedding model")
        try:
            report = self.rag.ensure_corpus(progress=progress_reporter(progress))
            status = ui.notice_html(f"First run: {report.summary()}") if report else ""
            documents = ui.documents_html(self.rag.documents())
        except RagError as exc:
            status, documents = ui.error_html(sentence(exc)), ui.documents_html([])
        models = ollama_models(self.settings.ollama_host, timeout=1.0) or []
        choices = list(dict.fromkeys([self.settings.ollama_model, *models]))
        return status, gr.update(visible=True), documents, gr.update(choices=choices)

    def ingest(self, progress: gr.Progress) -> str:
        """Bring the store in step with the corpus folder; a one-line report."""
        try:
            report = self.rag.ingest([self.settings.corpus], progress=progress_reporter(progress))
        except RagError as exc:
            return ui.notice_html(sentence(exc))
        finally:
            self.others.cache_clear()
        skipped = "".join(f" Skipped {warning}." for warning in report.warnings)
        return ui.notice_html(report.summary() + skipped)

    def add_files(self, files: list[str] | None, progress: gr.Progress = PROGRESS) -> tuple[str, str, None]:
        """Store the uploaded files in the corpus folder and ingest them."""
        saved, problems = [], []
        for name in files or []:
            try:
                saved.append(store_upload(Path(name), self.settings.corpus, self.settings.max_upload_bytes))
            except (BadInput, OSError) as exc:
                problems.append(sentence(exc))
        status = self.ingest(progress) if saved else ""
        note = ui.notice_html(" ".join(problems)) if problems else ""
        return note + status, ui.documents_html(self.rag.documents()), None

    def reindex(self, progress: gr.Progress = PROGRESS) -> tuple[str, str]:
        """Re-read the corpus folder: new, changed and removed files."""
        status = self.ingest(progress)
        return status, ui.documents_html(self.rag.documents())

    # -- for scripts -----------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        history: list[dict] | None = None,
        top_k: int | None = None,
        temperature: float | None = None,
        backend: str | None = None,
        model: str | None = None,
    ) -> dict:
        """Answer a question from the articles: {answer, abstained, backend, model, citations, passages}."""
        engine_choice = (backend or self.settings.backend, model or self.settings.ollama_model)
        temperature = self.settings.temperature if temperature is None else temperature
        try:
            answer = self.pick(*engine_choice).ask(question, history=history, k=top_k, temperature=temperature)
        except RagError as exc:
            raise gr.Error(sentence(exc)) from exc
        return answer.to_dict()

    # -- layout and events -----------------------------------------------------------------------

    def blocks(self) -> gr.Blocks:
        """The page: chat on the left; sources, articles and settings on the right."""
        with gr.Blocks(title="Chat with the articles", analytics_enabled=False) as demo:
            parts = self.layout()
            self.wire(demo, parts)
        return demo

    def layout(self) -> SimpleNamespace:
        """Create the components; returns them by name."""
        settings, c = self.settings, SimpleNamespace()
        gr.Markdown("## Chat with the articles")
        c.status = gr.HTML(
            ui.notice_html("Getting the articles ready (the first start indexes them)…"), elem_id="rag-status"
        )
        with gr.Row(visible=False, elem_id="rag-main") as c.main:
            with gr.Column(scale=3):
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
                        placeholder="Ask about the articles…",
                        show_label=False,
                        scale=4,
                        max_lines=4,
                        elem_id="rag-question",
                    )
                    c.send = gr.Button("Ask", variant="primary", scale=0, min_width=80, elem_id="rag-send")
                    c.stop = gr.Button("Stop", variant="stop", scale=0, min_width=80, elem_id="rag-stop")
                    c.new = gr.Button("New chat", scale=0, min_width=120, elem_id="rag-new")
                gr.Examples(EXAMPLES, inputs=[c.question], label="Try")
                c.notice = gr.HTML(elem_id="rag-notice")
            with gr.Column(scale=2):
                with gr.Accordion("Sources for the last question", open=True):
                    c.sources = gr.HTML(ui.sources_html(None), elem_id="rag-sources")
                with gr.Accordion("Articles", open=False, elem_id="rag-articles"):
                    c.documents = gr.HTML(elem_id="rag-documents")
                    c.upload = gr.File(
                        label=f"Add articles ({', '.join(SUPPORTED_SUFFIXES)}; "
                        f"up to {settings.max_upload_bytes:,} bytes each)",
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
        c.history = gr.State([])
        c.pending = gr.State(("", 0.0))
        return c

    def wire(self, demo: gr.Blocks, c: SimpleNamespace) -> None:
        """Connect the components' events to the callbacks."""
        private: dict[str, Any] = {"api_visibility": "private"}
        demo.load(self.prepare, None, [c.status, c.main, c.documents, c.model], concurrency_id="store", **private)
        asked = gr.on(
            [c.question.submit, c.send.click],
            self.take_question,
            [c.question, c.chat],
            [c.question, c.chat, c.pending],
            queue=False,
            **private,
        )
        answered = asked.then(
            self.respond,
            [c.pending, c.chat, c.history, c.backend, c.model, c.top_k, c.temperature],
            [c.chat, c.history, c.sources, c.notice],
            concurrency_limit=ANSWER_CONCURRENCY,
            concurrency_id="model",
            **private,
        )
        answered.then(lambda: gr.update(interactive=True), None, c.question, queue=False, **private)
        c.stop.click(self.stop, None, None, queue=False, **private)
        cleared = gr.on([c.new.click, c.chat.clear], self.clear, queue=False, **private)
        cleared.then(self.new_chat, None, [c.chat, c.history, c.sources, c.notice], queue=False, **private)
        c.upload.upload(
            self.add_files, c.upload, [c.doc_status, c.documents, c.upload], concurrency_id="store", **private
        )
        c.reindex.click(self.reindex, None, [c.doc_status, c.documents], concurrency_id="store", **private)
        gr.api(self.ask, api_name="ask", concurrency_limit=ANSWER_CONCURRENCY, concurrency_id="model")


def only_chat(chat: list[dict]) -> tuple:
    """Outputs of `respond` that change the chat and leave history, sources and notice as they are."""
    return chat, gr.skip(), gr.skip(), gr.skip()


def build_app(rag: RAG) -> gr.Blocks:
    """The Gradio app for one RAG object."""
    return ChatApp(rag).blocks()


# -- start ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; unset ones fall back to the settings (RAG_*, GRADIO_SERVER_*)."""
    parser = argparse.ArgumentParser(prog="app.py", description="Chat with your articles in the browser.")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1; others need --auth)")
    parser.add_argument("--port", type=int, help="port to listen on (default 7860)")
    parser.add_argument("--auth", help="user:password that the app asks for")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Start the app; exits with a one-line message when the settings are unusable."""
    args = parse_args(argv)
    try:
        settings = Settings(**{key: value for key, value in vars(args).items() if value is not None})
        login = credentials(settings)
    except (RagError, ValidationError) as exc:
        sys.exit(f"Error: {exc}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "chromadb", "bm25s", "sentence_transformers", "transformers", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    demo = build_app(RAG(settings))
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1).launch(
        server_name=settings.host,
        server_port=settings.port,
        auth=login,
        share=False,
        max_file_size=settings.max_upload_bytes,
        theme=gr.themes.Default(font=THEME_FONTS, font_mono=THEME_MONO),
        css=ui.CSS,
        js=ui.JS,
        ssr_mode=False,
        mcp_server=False,
    )


if __name__ == "__main__":
    main()
