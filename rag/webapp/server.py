"""Starting the chat app: its command line, the one server that carries the chat and the HTTP API, a quick stop.

`main()` is what `python app.py`, `rag serve` and `make run` start: the chat (rag/webapp/layout.py)
mounted on the HTTP API's FastAPI app (rag/httpapi.py), one server on one port, never a share
link. One RAG object is built at start and answers every message; rag/engines.py holds it (and
those for other models) and the turns each model takes. Logins and listening addresses are
checked by rag/access.py. The page sends no analytics and needs no CDN or web font.

Before it serves, the app finishes an ingest that a crash cut short (rag/ingest.py keeps their
folders in the lock file). Two apps, or an app and `rag` commands, may share one RAG_HOME, as any
processes may: writers to the store take turns, readers catch up with their next question, and a
user's saved chats are changed under a file lock (rag/chats.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

import gradio as gr
from pydantic import ValidationError

from rag import ui
from rag.access import credentials
from rag.api import RAG
from rag.engines import Engines
from rag.errors import RagError
from rag.quiet import quiet_libraries
from rag.settings import Settings
from rag.webapp.layout import build_app

log = logging.getLogger(__name__)

# System fonts only: Gradio's defaults may point at web fonts, and the page must not need the network.
THEME_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Arial", "sans-serif"]
THEME_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
QUEUE_SIZE = 64  # events waiting in Gradio's queue; more are turned away
SHUTDOWN_GRACE_S = 5


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
    quiet_libraries()
    engines = Engines(RAG(settings))
    finish_interrupted_ingest(engines.rag)
    launch(server_app(engines, login), settings)


def finish_interrupted_ingest(rag: RAG) -> None:
    """Before serving: the folders of an ingest that was killed or failed part-way are ingested
    again, so that none of their articles stays half-written (nothing when another process is
    ingesting them now)."""
    from rag.ingest import interrupted_roots

    roots = [root for root in interrupted_roots(rag.settings) if root.exists()]
    if not roots:
        return
    log.warning("an ingest of %s did not finish; finishing it", ", ".join(map(str, roots)))
    try:
        rag.ingest(roots)
    except RagError as exc:  # the app still serves what is stored; the next ingest tries again
        log.warning("could not finish the interrupted ingest: %s", exc)


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


def launch(app: Any, settings: Settings) -> None:
    """Serve the chat and the API on the settings' address (never a share link)."""
    import uvicorn

    url = f"http://{settings.host}:{settings.port}"
    log.info("the chat is at %s/, the API at %s/v1 (its documentation at %s/docs)", url, url, url)
    # A stop (Ctrl+C, SIGTERM) waits at most a few seconds for open connections: a browser tab or
    # a client's event stream stays open, and uvicorn would otherwise wait for it forever. It then
    # cancels them, and logs each as "Exception in ASGI application" with a trace: not a failure.
    logging.getLogger("uvicorn.error").addFilter(not_a_cancelled_stream)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )


def not_a_cancelled_stream(record: logging.LogRecord) -> bool:
    """False for uvicorn's record of a stream that a stop cancelled, so the log shows no trace for it."""
    return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))
