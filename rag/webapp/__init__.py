"""The chat app: Gradio's page wired to the `rag.RAG` API, and nothing else.

Four parts: callbacks.py (what a question, a click, an upload or a page load does, through the
API), sessions.py (what the app remembers between events: Stop clicks and saved chats), layout.py
(the components, and which event calls which callback) and server.py (the command line, and the
one server that carries the chat and the HTTP API). `main()` is what `python app.py`, `rag serve`
and `make run` start. Importing the package imports Gradio, which takes seconds: the CLI does it
only for `rag serve`.
"""

import os

# Before Gradio is first imported: no telemetry and no version check (the app must work offline).
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

from rag.webapp.callbacks import ChatApp
from rag.webapp.layout import Components, build_app
from rag.webapp.server import launch, main, parser, server_app

__all__ = ["ChatApp", "Components", "build_app", "launch", "main", "parser", "server_app"]
