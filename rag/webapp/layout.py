"""The chat app's page: its components, created and returned by name, and which event calls which callback.

Saved chats on the left, the chat in the middle; sources, articles and settings on the right.
`layout()` returns every component a callback reads or changes as one `Components`, which the
callbacks (rag/webapp/callbacks.py) key their returned dicts by; an event's `outputs` list every
component its callback may change, in any order. Nothing here decides anything: what a click does
is the callbacks' business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from rag import ui
from rag.documents import SUPPORTED_SUFFIXES
from rag.engines import BACKEND_CHOICES, Engines
from rag.settings import Settings
from rag.webapp.callbacks import ChatApp
from rag.webapp.sessions import browser_secret

# The built-in model runs on the CPU and takes all its cores: one answer at a time, the others queue.
ANSWER_CONCURRENCY = 1
CHATS_STORAGE_KEY = "rag-chats"  # where the browser keeps its copy of the chats (localStorage)
# The page's own events stay out of the app's API page and gradio_client; only `/ask` is offered.
PRIVATE = {"api_visibility": "private"}


@dataclass(frozen=True)
class Components:
    """The page's components that callbacks read or change, by name."""

    status: gr.HTML
    main: gr.Row
    chat_list: gr.Radio
    delete: gr.Button
    chat: gr.Chatbot
    question: gr.Textbox
    send: gr.Button
    stop: gr.Button
    new: gr.Button
    scope: gr.Dropdown
    examples: gr.Dataset
    notice: gr.HTML
    sources: gr.HTML
    documents: gr.HTML
    upload: gr.File
    reindex: gr.Button
    doc_status: gr.HTML
    backend: gr.Radio
    model: gr.Dropdown
    top_k: gr.Slider
    temperature: gr.Slider
    history: gr.State  # the plain-text turns follow-up questions are read with
    pending: gr.State  # (question, when asked, chat id) from the click to the answer
    chat_id: gr.State
    saved: gr.State | gr.BrowserState  # the browser's copy of the chats


def build_app(engines: Engines, keep_chats_on_server: bool = False) -> gr.Blocks:
    """The Gradio app over the engines; with a login, chats are kept on the server per user."""
    secret = None if keep_chats_on_server else browser_secret(engines.settings.home)
    with gr.Blocks(title="Chat with the articles", analytics_enabled=False) as demo:
        c = layout(engines.settings, secret)
        wire(demo, c, ChatApp(engines, c, keep_chats_on_server))
    return demo


def layout(settings: Settings, secret: str | None) -> Components:
    """Create the page; `secret` is the key of the browser's copy of the chats, None when the server keeps them."""
    gr.Markdown("## Chat with the articles")
    ready = ui.notice_html("Getting the articles ready (the first start indexes them)…")
    status = gr.HTML(ready, elem_id="rag-status")
    with gr.Row(visible=False, elem_id="rag-main") as main:
        with gr.Column(scale=1, min_width=200):
            left = chats_column(on_server=secret is None)
        with gr.Column(scale=3):
            middle = chat_column()
        with gr.Column(scale=2):
            right = side_column(settings)
    return Components(
        status=status,
        main=main,
        **left,
        **middle,
        **right,
        history=gr.State([]),
        pending=gr.State(("", 0.0, "")),
        chat_id=gr.State(""),
        saved=browser_copy(secret),
    )


def chats_column(on_server: bool) -> dict[str, Any]:
    """The saved chats, newest first, and the button that deletes the open one."""
    where = "kept for your login on this server" if on_server else "kept in this browser only"
    return {
        "chat_list": gr.Radio([], label="Chats", info=where, elem_id="rag-chats"),
        "delete": gr.Button("Delete this chat", size="sm", variant="secondary", elem_id="rag-delete"),
    }


def chat_column() -> dict[str, Any]:
    """The conversation, the question box and its buttons, examples and the notice line."""
    parts: dict[str, Any] = {}
    parts["chat"] = gr.Chatbot(
        elem_id="rag-chat",
        height=580,
        latex_delimiters=[],
        feedback_options=None,
        buttons=[],  # "copy" would copy the message's HTML
        show_label=False,
        placeholder="Ask a question about the articles. Answers cite their passages as [1], [2]…",
    )
    with gr.Row():
        parts["question"] = gr.Textbox(
            placeholder="Ask about the articles…", show_label=False, scale=4, max_lines=4, elem_id="rag-question"
        )
        parts["send"] = gr.Button("Ask", variant="primary", scale=0, min_width=80, elem_id="rag-send")
        parts["stop"] = gr.Button("Stop", variant="stop", scale=0, min_width=80, elem_id="rag-stop")
        parts["new"] = gr.Button("New chat", scale=0, min_width=120, elem_id="rag-new")
    parts["scope"] = gr.Dropdown(
        [], multiselect=True, label="Ask only about these articles", info="Empty: every article.", elem_id="rag-scope"
    )
    # Filled on every page load and after an ingest from the articles indexed then (`article_views`).
    # Shown as HTML: Gradio cuts a text sample at 60 characters, and a question must show whole.
    parts["examples"] = gr.Dataset(components=["html"], samples=[], label="Try", visible=False, elem_id="rag-examples")
    parts["notice"] = gr.HTML(elem_id="rag-notice")
    return parts


def side_column(settings: Settings) -> dict[str, Any]:
    """Sources for the last question, the articles (list, upload, re-index) and the answer settings."""
    parts: dict[str, Any] = {}
    with gr.Accordion("Sources for the last question", open=True):
        parts["sources"] = gr.HTML(ui.sources_html(None), elem_id="rag-sources")
    with gr.Accordion("Articles", open=False, elem_id="rag-articles"):
        parts["documents"] = gr.HTML(elem_id="rag-documents")
        parts["upload"] = gr.File(
            label=f"Add articles ({', '.join(SUPPORTED_SUFFIXES)}; up to {settings.max_upload_bytes:,} bytes each)",
            file_count="multiple",
            file_types=list(SUPPORTED_SUFFIXES),
            elem_id="rag-upload",
        )
        parts["reindex"] = gr.Button("Re-index the articles folder", size="sm", elem_id="rag-reindex")
        parts["doc_status"] = gr.HTML(elem_id="rag-doc-status")
    with gr.Accordion("Settings", open=False, elem_id="rag-settings"):
        parts |= settings_controls(settings)
    return parts


def settings_controls(settings: Settings) -> dict[str, Any]:
    """The backend, the Ollama model, how many passages and the temperature, set from the settings."""
    return {
        "backend": gr.Radio(
            list(BACKEND_CHOICES),
            value=settings.backend,
            label="Backend",
            info="auto: Ollama when it runs, then the OpenAI-compatible server when one is set (RAG_OPENAI_BASE_URL), "
            "else the built-in SmolLM2-135M (small and often wrong).",
            elem_id="rag-backend",
        ),
        "model": gr.Dropdown(
            [settings.ollama_model],
            value=settings.ollama_model,
            allow_custom_value=True,
            label="Ollama model",
            elem_id="rag-model",
        ),
        "top_k": gr.Slider(1, 20, value=settings.top_k, step=1, label="Passages (top k)"),
        "temperature": gr.Slider(0, 2, value=settings.temperature, step=0.05, label="Temperature"),
    }


def browser_copy(secret: str | None) -> gr.State | gr.BrowserState:
    """Where the browser keeps the chats: its storage, or (with chats on the server) nowhere."""
    if secret is None:
        return gr.State([])  # stays empty: the callbacks read and write the server's copy
    return gr.BrowserState([], storage_key=CHATS_STORAGE_KEY, secret=secret)


def wire(demo: gr.Blocks, c: Components, app: ChatApp) -> None:
    """Connect the components' events to the callbacks."""
    articles = [c.documents, c.scope, c.examples]  # what `ChatApp.article_views` fills
    loaded = [c.status, c.main, c.model, c.chat_list, *articles]
    demo.load(app.prepare, c.saved, loaded, concurrency_id="store", **PRIVATE)
    wire_chat(c, app)
    page = [c.chat, c.history, c.sources, c.notice, c.chat_id]
    c.chat_list.input(app.reopen, [c.chat_list, c.saved], page, queue=False, **PRIVATE)
    c.delete.click(app.delete, [c.chat_id, c.saved], [*page, c.saved, c.chat_list], queue=False, **PRIVATE)
    c.upload.upload(app.add_files, c.upload, [c.doc_status, c.upload, *articles], concurrency_id="store", **PRIVATE)
    c.reindex.click(app.reindex, None, [c.doc_status, *articles], concurrency_id="store", **PRIVATE)
    c.examples.click(app.pick_example, c.examples, c.question, queue=False, **PRIVATE)
    gr.api(app.ask, api_name="ask", concurrency_limit=ANSWER_CONCURRENCY, concurrency_id="model")


def wire_chat(c: Components, app: ChatApp) -> None:
    """Asking (the box locks, the answer streams, the box opens again), Stop and New chat."""
    asked = gr.on(
        [c.question.submit, c.send.click],
        app.take_question,
        [c.question, c.chat, c.chat_id],
        [c.question, c.chat, c.pending, c.chat_id],
        queue=False,
        **PRIVATE,
    )
    answered = asked.then(
        app.respond,
        [c.pending, c.chat, c.history, c.saved, c.backend, c.model, c.top_k, c.temperature, c.scope],
        [c.chat, c.history, c.sources, c.notice, c.saved, c.chat_list],
        concurrency_limit=ANSWER_CONCURRENCY,
        concurrency_id="model",
        **PRIVATE,
    )
    answered.then(app.unlock, None, c.question, queue=False, **PRIVATE)
    c.stop.click(app.stop, None, None, queue=False, **PRIVATE)
    cleared = gr.on([c.new.click, c.chat.clear], app.clear, queue=False, **PRIVATE)
    page = [c.chat, c.history, c.sources, c.notice, c.chat_id, c.chat_list]
    cleared.then(app.new_chat, None, page, queue=False, **PRIVATE)
