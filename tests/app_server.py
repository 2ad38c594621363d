"""A real `python app.py` process for the tests that drive it, Chromium to drive it with, and a
chat question asked in the browser; shared by tests/test_app.py and tests/test_http_api.py.

The app runs the real embedded model on a temporary store and a temporary copy of the seed
articles, plus a probe article whose title and text hold `<script>`, HTML and Markdown (or on
articles a test writes itself).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import NO_OLLAMA, SEEDS
from playwright.sync_api import Browser as PlaywrightBrowser
from playwright.sync_api import Locator, Page, sync_playwright

from bench.processes import stop, wait_until_up

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
# The network is closed: nothing in Chromium may try to reach it.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROBE_TITLE = "<script>window.__probe=1</script><b>bold</b> Probe article about **Markdown**"
PROBE = (
    f"{PROBE_TITLE}\n\n"
    'PROBE, April 1. /TASS/. The probe article says that <img src=x onerror="window.__probe=2"> '
    "and **stars** and # hashes must show as plain text. The probe was written by the test team.\n"
)
# The built-in model writing (a run of the evidence's words) rather than the app's default, a
# short answer or quote: for the tests whose point is a reply in progress (Stop).
MODEL_WRITES = "constrained"
ANSWER_WAIT_MS = 180_000  # the built-in model answers in seconds; a busy CI machine gets slack


@dataclass(frozen=True)
class RunningApp:
    """An app process: where it answers, the corpus it reads, its home folder, its log."""

    url: str
    corpus: Path
    home: Path
    log: Path


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(home: Path, corpus: Path, port: int, small_answer: str | None = None) -> dict[str, str]:
    """The environment of the app process: ours, minus any settings of the developer's own;
    `small_answer` is how the built-in model answers (None: the app's default)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RAG_", "GRADIO_", "OLLAMA_", "OPENAI_")) and k not in ("HOST", "PORT")
    }
    env.update(
        RAG_HOME=str(home),
        RAG_CORPUS=str(corpus),
        RAG_BACKEND="embedded",
        RAG_OLLAMA_HOST=NO_OLLAMA,
        RAG_MAX_NEW_TOKENS="80",  # one or two sentences, as the prompt asks; keeps the suite quick
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
    )
    if small_answer is not None:
        env["RAG_SMALL_ANSWER"] = small_answer
    return env


@contextlib.contextmanager
def app_process(
    root: Path, articles: dict[str, str] | None = None, small_answer: str | None = None, **settings: str
) -> Iterator[RunningApp]:
    """`python app.py` on a free port with an empty store and the seeds plus the probe article, or
    only `articles` (file name: text) when given; `small_answer` as `app_env` takes it."""
    corpus = root / "articles"
    if articles is None:
        shutil.copytree(SEEDS, corpus)
        articles = {"probe.txt": PROBE}
    corpus.mkdir(exist_ok=True)
    for name, text in articles.items():
        (corpus / name).write_text(text, encoding="utf-8")
    home, log = root / ".rag", root / "app.log"
    with app_running(home, corpus, log, small_answer, **settings) as (_, url):
        yield RunningApp(url, corpus, home, log)


@contextlib.contextmanager
def app_running(
    home: Path, corpus: Path, log: Path, small_answer: str | None = None, *, stop_timeout: float = 15, **settings: str
) -> Iterator[tuple[subprocess.Popen, str]]:
    """`python app.py` on a free port on an existing home and corpus, its output appended to `log`:
    the process (for a test that kills it itself) and its URL. Stopped at the end unless it has ended,
    SIGKILLed if SIGTERM has not ended it within `stop_timeout` seconds."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with open(log, "a") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")],
            cwd=home.parent,
            env={**app_env(home, corpus, port, small_answer), **settings},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_up(url, process, log)
        yield process, url
    finally:
        stop(process, stop_timeout)


@pytest.fixture(scope="module")
def chromium() -> Iterator[PlaywrightBrowser]:
    """Debian's Chromium, driven by Playwright."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`make browser`)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def ask(page: Page, question: str) -> Locator:
    """Type a question, send it, wait for the finished answer and return its element."""
    answers = page.locator("#rag-chat .rag-answer")
    before = answers.count()
    page.locator("#rag-question textarea").fill(question)
    page.locator("#rag-question textarea").press("Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('#rag-chat .rag-answer').length > n"
        " && !document.querySelector('#rag-chat .rag-streaming')",
        arg=before,
        timeout=ANSWER_WAIT_MS,
    )
    return answers.nth(before)
