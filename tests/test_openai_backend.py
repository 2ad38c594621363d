"""The `openai` backend, against a real OpenAI-compatible server: llama-cpp-python's own, serving
the packaged SmolLM2 as `smollm2` (tests/openai_server.py).

SmolLM2-135M is weak: it quotes a sentence of the passages with a marker, or the check turns its
reply into an abstention. So the tests assert what holds either way (who answered, that the
citations point at retrieved passages, that it streamed) and count the server's chat requests
from its access log. Most questions are the same one, so the server reuses the prompt it has
read (llama.cpp keeps the last prompt's prefix): on two cores, reading it takes most of an answer.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from app_server import ANSWER_WAIT_MS, RunningApp, app_process, ask
from app_server import chromium as chromium  # a fixture: the browser shared with tests/test_app.py
from conftest import NO_OLLAMA, SEEDS, make_rag
from openai_server import MODEL_ALIAS, LlamaCppServer
from playwright.sync_api import Browser as PlaywrightBrowser
from test_app import open_accordion, open_page

from rag import RAG, Answer, BackendUnavailable
from rag.answer import ABSTAIN_TEXT, NOT_COVERED, How, Piece
from rag.followup import condense_messages
from rag.generate import openai_messages

TALKS = "Where did Lavrov and Kishida hold talks?"
TALKS_ARTICLE = "002_5c202a017dd63dc4.txt"
MAX_NEW_TOKENS = 80  # as the app's tests: one or two sentences, and a quick suite
TOP_K = 3  # passages: a prompt of ~800 tokens, which the server reads in seconds on two busy cores
NO_SERVER = "http://127.0.0.1:9/v1"  # nothing listens there


@pytest.fixture(scope="module")
def server() -> Iterator[LlamaCppServer]:
    """One llama_cpp.server for the module, without a key."""
    with LlamaCppServer() as running:
        yield running


@pytest.fixture(scope="module")
def store_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the seeds, shared by the tests of this module."""
    home = tmp_path_factory.mktemp("openai") / ".rag"
    make_rag(home, SEEDS).ingest([SEEDS])
    return home


def served_rag(store_home: Path, server: LlamaCppServer, **overrides: object) -> RAG:
    """A RAG on the seeded store whose backend is that server."""
    overrides.setdefault("backend", "openai")
    settings = {"openai_base_url": server.url, "max_new_tokens": MAX_NEW_TOKENS, "top_k": TOP_K}
    return make_rag(store_home, SEEDS, **settings, **overrides)


def assert_cites_retrieved_passages(answer: Answer) -> None:
    """An answer the model wrote cites, with markers in its text, passages it was given; or it abstains."""
    assert answer.how in (How.MODEL, How.ABSTAIN), answer
    if answer.how == How.ABSTAIN:
        assert answer.text == ABSTAIN_TEXT and not answer.citations
        return
    assert answer.citations, answer.text
    for cited in answer.citations:
        assert f"[{cited.marker}]" in answer.text
        assert answer.passages[cited.marker - 1].chunk_id == cited.passage.chunk_id


# -- the Python API --------------------------------------------------------------------------


@pytest.mark.slow
def test_question_streams_token_by_token_from_the_server_with_checked_citations(
    store_home: Path, server: LlamaCppServer
) -> None:
    before = server.chat_requests()
    events = list(served_rag(store_home, server).stream(TALKS, temperature=0))
    answer = events[-1]
    assert isinstance(answer, Answer) and all(isinstance(e, Piece) for e in events[:-1])
    assert len(events) > 5, events  # the reply arrived token by token, not as one piece
    assert answer.backend == "openai" and answer.model == MODEL_ALIAS and not answer.notice
    assert server.chat_requests() == before + 1
    assert answer.passages[0].doc_id == TALKS_ARTICLE  # the server read the Tokyo article first
    assert_cites_retrieved_passages(answer)


@pytest.mark.slow
def test_auto_answers_with_the_server_when_ollama_is_absent(store_home: Path, server: LlamaCppServer) -> None:
    answer = served_rag(store_home, server, backend="auto").ask(TALKS, temperature=0)
    assert answer.backend == "openai" and answer.model == MODEL_ALIAS
    assert not answer.notice  # nothing fell back: no "using the built-in model"
    assert_cites_retrieved_passages(answer)


def test_auto_uses_the_built_in_model_when_neither_answers_and_says_so(store_home: Path) -> None:
    answer = make_rag(store_home, SEEDS, openai_base_url=NO_SERVER).ask(TALKS)
    assert answer.backend == "embedded"
    assert "Ollama" in answer.notice and f"the server at {NO_SERVER} is not answering" in answer.notice
    assert "Iikura" in answer.text  # the built-in model's quote of the evidence


def test_off_topic_question_is_refused_before_the_server_is_asked(store_home: Path, server: LlamaCppServer) -> None:
    before = server.chat_requests()
    answer = served_rag(store_home, server).ask("How do I bake sourdough bread?")
    assert answer.abstained and answer.text == NOT_COVERED and not answer.citations
    assert server.chat_requests() == before


def test_unknown_model_is_a_clear_error_listing_the_servers_models(store_home: Path, server: LlamaCppServer) -> None:
    before = server.chat_requests()
    with pytest.raises(BackendUnavailable, match=f"no model 'nope'; set RAG_OPENAI_MODEL to one of: {MODEL_ALIAS}$"):
        served_rag(store_home, server, openai_model="nope").ask(TALKS)
    assert server.chat_requests() == before


# -- the command line ------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_ask_with_backend_openai_prints_the_servers_answer(
    store_home: Path, server: LlamaCppServer, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_", "OLLAMA_"))}
    env.update(
        RAG_HOME=str(store_home),
        RAG_CORPUS=str(SEEDS),
        RAG_OLLAMA_HOST=NO_OLLAMA,
        RAG_OPENAI_BASE_URL=server.url,
        RAG_MAX_NEW_TOKENS=str(MAX_NEW_TOKENS),
        RAG_TOP_K=str(TOP_K),
        RAG_MODEL_CACHE=os.environ["RAG_MODEL_CACHE"],  # the embedder the session already exported
    )
    before = server.chat_requests()
    done = subprocess.run(
        [sys.executable, "-m", "rag", "ask", "--backend", "openai", TALKS],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert server.chat_requests() == before + 1
    if done.stdout.startswith(ABSTAIN_TEXT):
        assert "Sources:" not in done.stdout
    else:
        text, sources = done.stdout.split("\nSources:\n")
        listed = re.findall(r"^  \[(\d+)\] .* — (\S+)$", sources, re.MULTILINE)
        assert listed and all(f"[{marker}]" in text for marker, _ in listed), done.stdout
        assert {doc_id for _, doc_id in listed} <= {p.name for p in SEEDS.iterdir()}
    assert "Traceback" not in done.stderr


# -- the app: its HTTP API and the chat ------------------------------------------------------


@pytest.fixture(scope="module")
def openai_app(tmp_path_factory: pytest.TempPathFactory, server: LlamaCppServer) -> Iterator[RunningApp]:
    """`python app.py` whose backend is the server (RAG_BACKEND=openai)."""
    settings = {
        "RAG_BACKEND": "openai",
        "RAG_OPENAI_BASE_URL": server.url,
        "RAG_TOP_K": str(TOP_K),
        "RAG_MODEL_CACHE": os.environ["RAG_MODEL_CACHE"],
    }
    with app_process(tmp_path_factory.mktemp("openai_app"), **settings) as running:
        yield running


@pytest.mark.slow
def test_the_api_lists_the_servers_model_and_answers_with_it(openai_app: RunningApp, server: LlamaCppServer) -> None:
    client = openai.OpenAI(base_url=openai_app.url + "v1", api_key="unused", timeout=300, max_retries=0)
    assert [m.id for m in client.models.list()] == ["embedded", f"openai/{MODEL_ALIAS}"]
    before = server.chat_requests()
    reply = client.chat.completions.create(
        model=f"openai/{MODEL_ALIAS}", messages=[{"role": "user", "content": TALKS}], temperature=0
    )
    extra = reply.model_extra
    assert reply.model == f"openai/{MODEL_ALIAS}"
    assert extra["answered_by"]["backend"] == "openai" and extra["answered_by"]["model"] == MODEL_ALIAS
    assert extra["how"] in ("model", "abstain") and server.chat_requests() == before + 1
    text = reply.choices[0].message.content
    assert all(f"[{c['marker']}]" in text for c in extra["citations"])


@pytest.mark.slow
def test_chat_answers_with_the_server_chosen_in_settings(
    openai_app: RunningApp, chromium: PlaywrightBrowser, server: LlamaCppServer
) -> None:
    page = open_page(chromium, openai_app.url)
    open_accordion(page, "rag-settings", "Settings")
    assert page.locator("#rag-backend input[value=openai]").is_checked()  # as RAG_BACKEND says
    page.locator("#rag-backend label", has_text="openai").click()
    before = server.chat_requests()
    answer = ask(page, TALKS)
    assert answer.locator(".rag-byline").inner_text(timeout=ANSWER_WAIT_MS) == (
        f"Answered by OpenAI-compatible server · {MODEL_ALIAS}"
    )
    assert server.chat_requests() == before + 1
    page.close()


# -- a follow-up: counted tokens ------------------------------------------------------------


@pytest.mark.slow
def test_follow_up_is_rewritten_by_the_server_and_its_tokens_counted(store_home: Path, server: LlamaCppServer) -> None:
    history = [
        {"role": "user", "content": TALKS},
        {"role": "assistant", "content": "At the Iikura guest house in Tokyo [1]."},
    ]
    question = "When did they meet there?"
    before = server.chat_requests()
    answer = served_rag(store_home, server).ask(question, history=history, temperature=0)
    assert answer.backend == "openai" and answer.how in (How.MODEL, How.ABSTAIN)
    assert server.chat_requests() == before + 2  # the rewrite, then the answer
    # llama_cpp.server counts tokens on a whole reply only (it sends none on a stream): the
    # rewrite's, as the server counts that same request.
    rewrite = server.client().chat.completions.create(
        model=MODEL_ALIAS,
        messages=openai_messages(condense_messages(question, history)),
        temperature=0.0,
        max_tokens=MAX_NEW_TOKENS,
    )
    assert answer.usage["prompt_tokens"] == rewrite.usage.prompt_tokens > 0
    assert answer.usage["completion_tokens"] > 0  # the rewrite's words (the stream's are not counted)
    assert answer.usage["total_tokens"] == answer.usage["prompt_tokens"] + answer.usage["completion_tokens"]


# -- failures --------------------------------------------------------------------------------


@pytest.mark.slow
def test_server_killed_mid_answer_is_a_clear_error_and_a_restart_answers(store_home: Path) -> None:
    with LlamaCppServer() as server:
        rag = served_rag(store_home, server)
        stream = rag.stream(TALKS, temperature=0)
        assert isinstance(next(stream), Piece)  # the server has read the prompt and is writing
        server.kill()
        killed = time.monotonic()
        with pytest.raises(BackendUnavailable) as caught:
            for _ in stream:
                pass
        assert time.monotonic() - killed < 5
        message = str(caught.value)
        assert f"the server at {server.url} stopped answering in the middle of its reply" in message
        assert "\n" not in message
        server.start()  # the same port
        answer = rag.ask(TALKS, temperature=0)
        assert answer.backend == "openai"
        assert_cites_retrieved_passages(answer)


@pytest.mark.slow
def test_wrong_api_key_is_a_401_naming_the_setting_and_the_right_key_answers(store_home: Path) -> None:
    with LlamaCppServer(api_key="right") as server:
        with pytest.raises(BackendUnavailable) as caught:
            served_rag(store_home, server, openai_api_key="wrong").ask(TALKS)
        assert "401" in str(caught.value) and "RAG_OPENAI_API_KEY" in str(caught.value)
        assert "wrong" not in str(caught.value)  # the key itself is not shown
        assert server.chat_requests() == 0  # refused at the model list, before any answer
        answer = served_rag(store_home, server, openai_api_key="right").ask(TALKS, temperature=0)
        assert answer.backend == "openai" and server.chat_requests() == 1
        assert_cites_retrieved_passages(answer)
