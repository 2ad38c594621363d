"""The HTTP API, as programs use it: the real `openai` client and raw HTTP against `python app.py`.

The app is a real process on a free loopback port with the real embedded model; answers use
temperature 0, so the same question gets the same text. A second app asks for a login. The
rules for addresses other than loopback are unit-tested (`check_request`): the servers stay on
127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from app_server import ANSWER_WAIT_MS, MODEL_WRITES, RunningApp, app_process, ask
from app_server import chromium as chromium  # a fixture: the browser shared with tests/test_app.py
from playwright.sync_api import Browser as PlaywrightBrowser

from rag.access import authorized, check_request
from rag.errors import Unauthorized
from rag.evidence import Scorer

QUESTION = "Where did Lavrov and Kishida hold talks?"
UPLOAD_LIMIT = 5000  # bytes; small, so that the test of a refused upload sends little
QUEUE = 2  # questions that may wait for the model, so that eight at once overflow it


@pytest.fixture(scope="module")
def api_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """`python app.py` serving the chat and the API, with a short line of waiting questions. Its
    built-in model writes (`MODEL_WRITES`): answers then take seconds, so that the line fills, and
    spend tokens, so that `usage` is counted. tests/test_app.py drives the default mode."""
    settings = {"RAG_API_QUEUE": str(QUEUE), "RAG_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)}
    with app_process(tmp_path_factory.mktemp("api"), small_answer=MODEL_WRITES, **settings) as running:
        yield running


@pytest.fixture(scope="module")
def client(api_app: RunningApp) -> openai.OpenAI:
    """The openai SDK pointed at the app; no key is needed on loopback."""
    return openai.OpenAI(base_url=api_app.url + "v1", api_key="unused", timeout=300, max_retries=0)


def completion(client: openai.OpenAI, question: str, **options: object) -> openai.types.chat.ChatCompletion:
    """One answer at temperature 0."""
    messages = [{"role": "user", "content": question}]
    return client.chat.completions.create(model="embedded", messages=messages, temperature=0, **options)


# -- the openai client -----------------------------------------------------------------------


@pytest.mark.slow
def test_openai_client_gets_an_answer_with_its_citations_and_evidence(client: openai.OpenAI) -> None:
    reply = completion(client, QUESTION)
    text = reply.choices[0].message.content
    assert reply.object == "chat.completion" and reply.model == "embedded"
    assert reply.choices[0].finish_reason == "stop" and "[1]" in text
    extra = reply.model_extra
    assert extra["abstained"] is False and extra["how"] in ("model", "quote")
    cited = extra["citations"][0]
    assert set(cited) >= {"marker", "doc_id", "title", "dateline", "text", "start", "end"}
    assert cited["doc_id"].startswith("002_") and cited["dateline"].startswith("Tokyo")
    assert cited["end"] - cited["start"] >= len(cited["text"]) // 2  # offsets span the passage in the file
    assert any("Iikura" in e["text"] or "Tokyo" in e["text"] for e in extra["evidence"])
    assert extra["evidence"][0]["cited"] is True  # the sentence it rests on
    assert extra["uncertain"] is (extra["evidence"][0]["confidence"] < Scorer.load().sure)
    # The app's model writes under a grammar here, so tokens were spent: llama.cpp's own count.
    used = reply.usage
    assert used.prompt_tokens > 20 and 0 < used.completion_tokens <= 80  # RAG_MAX_NEW_TOKENS
    assert used.total_tokens == used.prompt_tokens + used.completion_tokens


@pytest.mark.slow
def test_streamed_completion_assembles_to_the_same_text(client: openai.OpenAI) -> None:
    whole = completion(client, QUESTION).choices[0].message.content
    chunks = list(completion(client, QUESTION, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole
    # The built-in backend's answer is checked before it is shown, so it streams as one piece.
    assert [bool(c.choices[0].delta.content) for c in chunks] == [False, True, False]
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and last.model_extra["citations"]
    assert last.model_extra["answer"] == whole and last.model_extra["answered_by"]["backend"] == "embedded"
    assert last.usage.completion_tokens == completion(client, QUESTION).usage.completion_tokens > 0


@pytest.mark.slow
def test_the_api_and_the_apps_ask_give_the_same_answer_fields(api_app: RunningApp) -> None:
    from gradio_client import Client

    body = {"model": "embedded", "temperature": 0, "messages": [{"role": "user", "content": QUESTION}]}
    reply = httpx.post(api_app.url + "v1/chat/completions", json=body, timeout=300).json()
    through_gradio = Client(api_app.url, verbose=False).predict(QUESTION, temperature=0, api_name="/ask")
    # One serialiser (`rag.answer.answer_json`): OpenAI's envelope around the very same fields.
    assert {key: reply[key] for key in through_gradio} == through_gradio
    assert through_gradio["answer"] == reply["choices"][0]["message"]["content"]
    assert set(reply) - set(through_gradio) == {"id", "object", "created", "model", "choices"}


@pytest.mark.slow
def test_a_follow_up_is_read_with_the_earlier_messages(client: openai.OpenAI) -> None:
    messages = [
        {"role": "system", "content": "You are helpful."},  # ignored: the prompts are the app's own
        {"role": "user", "content": "Who did Igor Morgulov open consultations with?"},
        {"role": "assistant", "content": "Takeo Mori [1]."},
        {"role": "user", "content": [{"type": "text", "text": "What post does he hold?"}]},
    ]
    reply = client.chat.completions.create(model="embedded", messages=messages, temperature=0)
    assert reply.model_extra["passages"][0]["doc_id"].startswith("003_")  # Morgulov's article first


@pytest.mark.slow
def test_an_abstention_is_a_normal_reply_with_a_flag(client: openai.OpenAI) -> None:
    reply = completion(client, "How do I bake sourdough bread?")
    assert "don't cover" in reply.choices[0].message.content
    assert reply.model_extra["abstained"] is True and reply.model_extra["citations"] == []
    assert reply.usage.total_tokens == 0  # refused before any model ran


def test_models_lists_the_built_in_model_and_an_unknown_one_is_404(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["embedded"]  # no Ollama answers here
    assert client.models.retrieve("embedded").id == "embedded"
    with pytest.raises(openai.NotFoundError, match="choose one of: embedded") as caught:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    assert caught.value.body["type"] == "invalid_request_error"


def test_bad_questions_are_400_in_openai_shape(client: openai.OpenAI) -> None:
    for messages, reason in [
        ([{"role": "user", "content": "   "}], "question is empty"),
        ([{"role": "user", "content": "why " * 1000}], "limit is 2,000"),
        ([{"role": "assistant", "content": "Hello"}], "question is empty"),
        ([{"role": "wizard", "content": "Hi"}], "messages.0.role"),
    ]:
        with pytest.raises(openai.BadRequestError, match=reason):
            client.chat.completions.create(model="embedded", messages=messages)
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model="embedded", messages=[{"role": "user", "content": "Hi"}], temperature=9)


# -- raw HTTP --------------------------------------------------------------------------------


def test_malformed_json_and_wrong_types_are_400(api_app: RunningApp) -> None:
    url = api_app.url + "v1/chat/completions"
    for body, reason in [
        ('{"model": "embedded", "messages": [', "not valid JSON"),
        ('{"model": "embedded", "messages": "hi"}', "valid list"),
        ('{"model": 7, "messages": [{"role": "user", "content": "hi"}]}', "model"),
        ('{"model": "embedded", "stream": "yes", "messages": [{"role": "user", "content": "hi"}]}', "stream"),
    ]:
        response = httpx.post(url, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert reason in error["message"] and error["type"] == "invalid_request_error"
        assert "Traceback" not in response.text


def test_wrong_content_type_is_415_and_unknown_routes_404(api_app: RunningApp) -> None:
    body = json.dumps({"model": "embedded", "messages": [{"role": "user", "content": "hi"}]})
    response = httpx.post(api_app.url + "v1/chat/completions", content=body, headers={"content-type": "text/plain"})
    assert response.status_code == 415 and "application/json" in response.json()["error"]["message"]
    missing = httpx.get(api_app.url + "v1/embeddings")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert httpx.get(api_app.url + "docs").status_code == 200
    assert "/v1/chat/completions" in httpx.get(api_app.url + "openapi.json").json()["paths"]


@pytest.mark.slow
def test_server_sent_events_follow_openai_line_by_line(api_app: RunningApp) -> None:
    body = {"model": "embedded", "stream": True, "temperature": 0, "messages": [{"role": "user", "content": QUESTION}]}
    with httpx.stream("POST", api_app.url + "v1/chat/completions", json=body, timeout=300) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        lines = list(response.iter_lines())
    events = [line for line in lines if line]
    assert all(line.startswith(("data: ", ": ")) for line in events), events
    assert all(lines[i + 1] == "" for i, line in enumerate(lines) if line)  # every event ends with a blank line
    data = [line.removeprefix("data: ") for line in events if line.startswith("data: ")]
    assert data[-1] == "[DONE]" and data.count("[DONE]") == 1
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert [c["choices"][0]["finish_reason"] for c in chunks].count("stop") == 1 and chunks[-1]["citations"]


def test_retrieve_returns_passages_with_scores(api_app: RunningApp) -> None:
    response = httpx.post(api_app.url + "v1/retrieve", json={"question": "Takeo Mori", "k": 3}, timeout=120)
    passages = response.json()["passages"]
    assert response.status_code == 200 and len(passages) == 3
    assert passages[0]["doc_id"].startswith("003_") and passages[0]["score"] > passages[-1]["score"]
    assert {"similarity", "dateline", "found_by", "start", "end"} <= set(passages[0])
    assert httpx.post(api_app.url + "v1/retrieve", json={"question": "x", "k": "3"}).status_code == 400


def test_an_upload_is_checked_stored_ingested_and_listed(api_app: RunningApp) -> None:
    note = b"Fisheries notes\n\nMOSCOW, May 2. /TASS/. The fisheries talks on the Kurils ended without a deal.\n"
    files = [("files", ("fisheries (draft).txt", note, "text/plain"))]
    response = httpx.post(api_app.url + "v1/ingest", files=files, timeout=300)
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == ["uploads/fisheries_draft.txt"] and response.json()["added"]
    assert (api_app.corpus / "uploads" / "fisheries_draft.txt").read_bytes() == note
    listed = httpx.get(api_app.url + "v1/documents").json()["documents"]
    assert "Fisheries notes" in {d["title"] for d in listed}
    for name, data, status, reason in [
        ("big.txt", b"x" * (UPLOAD_LIMIT + 1), 413, "limit is 5,000"),
        ("tool.exe", b"MZ", 400, "only .txt"),
        ("fake.pdf", b"hello", 400, "not a PDF"),
    ]:
        refused = httpx.post(api_app.url + "v1/ingest", files=[("files", (name, data))])
        assert refused.status_code == status and reason in refused.json()["error"]["message"], refused.text
    assert not (api_app.corpus / "uploads" / "big.txt").exists()
    # A part without a file name is refused with the rest, not dropped while the others are stored.
    mixed = [("files", ("kept.txt", b"Some notes on the talks.")), ("files", ("", b"0"))]
    refused = httpx.post(api_app.url + "v1/ingest", files=mixed)
    assert refused.status_code == 400 and "file with a name" in refused.json()["error"]["message"], refused.text
    assert not (api_app.corpus / "uploads" / "kept.txt").exists()


def test_ingest_by_path_accepts_only_the_articles_folder(api_app: RunningApp) -> None:
    paths = {"paths": [next(api_app.corpus.glob("00*")).name]}
    httpx.post(api_app.url + "v1/ingest", json=paths, timeout=300)
    again = httpx.post(api_app.url + "v1/ingest", json=paths, timeout=300)
    assert again.status_code == 200 and again.json()["added"] == []  # nothing changed: nothing embedded
    assert again.json()["unchanged"]
    for paths in (["../../etc/passwd"], ["/etc"], ["no-such-file.txt"]):
        refused = httpx.post(api_app.url + "v1/ingest", json={"paths": paths})
        assert refused.status_code == 400, refused.text
    assert (
        httpx.post(api_app.url + "v1/ingest", content=b"paths", headers={"content-type": "text/csv"}).status_code == 415
    )


def test_filters_limit_what_is_retrieved_and_a_filter_matching_nothing_is_400(api_app: RunningApp) -> None:
    url = api_app.url + "v1/retrieve"
    scoped = httpx.post(url, json={"question": "Iikura guest house", "filters": {"doc_ids": ["003_*"]}}, timeout=120)
    assert scoped.status_code == 200 and {p["doc_id"][:4] for p in scoped.json()["passages"]} == {"003_"}
    for filters, reason in [
        ({"title": "sourdough"}, "No article matches the filter"),
        ({"doc_ids": "003_*"}, "filters.doc_ids"),
        ({"author": "TASS"}, "filters.author"),
    ]:
        refused = httpx.post(url, json={"question": "Who is Takeo Mori?", "filters": filters})
        assert refused.status_code == 400 and reason in refused.json()["error"]["message"], refused.text


@pytest.mark.slow
def test_a_chat_completion_about_an_article_outside_the_filter_says_so(client: openai.OpenAI) -> None:
    reply = completion(client, "Who is Takeo Mori?", extra_body={"filters": {"dateline": "Tokyo"}})
    assert reply.model_extra["abstained"] is True and "chosen articles" in reply.choices[0].message.content
    assert {p["doc_id"][:4] for p in reply.model_extra["passages"]} == {"002_"}


@pytest.mark.slow
def test_the_app_asks_only_about_the_articles_chosen(api_app: RunningApp, chromium: PlaywrightBrowser) -> None:
    page = chromium.new_page()
    page.goto(api_app.url)
    page.locator("#rag-question textarea").wait_for(timeout=ANSWER_WAIT_MS)
    choose = page.locator("#rag-scope input")
    choose.click()
    page.get_by_role("option", name="002_5c202a017dd63dc4.txt").click()
    page.keyboard.press("Escape")
    refused = ask(page, "Who is Takeo Mori?")
    assert "chosen articles" in refused.inner_text()
    page.locator("#rag-scope .token-remove").first.click()  # every article again
    answered = ask(page, "Who is Takeo Mori?")
    assert "chosen articles" not in answered.inner_text() and answered.locator("a.rag-cite").count() >= 1
    page.close()


# -- at once ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_eight_api_clients_and_a_browser_chat_at_once(api_app: RunningApp, chromium: PlaywrightBrowser) -> None:
    page = chromium.new_page()
    page.goto(api_app.url)
    page.locator("#rag-question textarea").wait_for(timeout=ANSWER_WAIT_MS)
    questions = ["Which islands does Japan claim?", "Who is Takeo Mori?", QUESTION, "What did Lavrov say?"] * 2
    body = {"model": "embedded", "temperature": 0}
    start = threading.Barrier(len(questions))

    def post(question: str) -> httpx.Response:
        start.wait()
        payload = {**body, "messages": [{"role": "user", "content": question}]}
        return httpx.post(api_app.url + "v1/chat/completions", json=payload, timeout=600)

    with ThreadPoolExecutor(len(questions)) as pool:
        replies = [pool.submit(post, q) for q in questions]
        chat = ask(page, "Who did Igor Morgulov open consultations with?")  # while the API is busy
        statuses = [r.result().status_code for r in replies]
    assert chat.locator(".rag-byline").count() == 1  # the chat got its answer
    assert sorted(set(statuses)) == [200, 429], statuses  # every request answered or told to come back
    for reply in (r.result() for r in replies):
        if reply.status_code == 429:
            assert reply.headers["retry-after"].isdigit() and reply.json()["error"]["type"] == "rate_limit_error"
        else:
            assert reply.json()["choices"][0]["message"]["content"]
    page.close()


# -- a login ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def login_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """An app that asks for a login."""
    with app_process(tmp_path_factory.mktemp("login-api"), RAG_AUTH="ann:secret") as running:
        yield running


def test_with_a_login_the_api_wants_it_as_a_bearer_token_or_basic(login_api: RunningApp) -> None:
    base = login_api.url + "v1"
    refused = openai.OpenAI(base_url=base, api_key="ann:wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="login is needed"):
        refused.models.list()
    assert httpx.get(base + "/documents").status_code == 401
    malformed = httpx.post(base + "/chat/completions", content=b"{", headers={"content-type": "application/json"})
    assert malformed.status_code == 401  # the login is checked before the body is read
    allowed = openai.OpenAI(base_url=base, api_key="ann:secret", max_retries=0)
    assert [m.id for m in allowed.models.list()] == ["embedded"]
    assert httpx.get(base + "/documents", auth=("ann", "secret")).status_code == 200


def test_login_rules_for_requests() -> None:
    login = ("ann", "secret")
    basic = "Basic " + base64.b64encode(b"ann:secret").decode()
    assert authorized("Bearer ann:secret", login) and authorized(basic, login)
    for header in (None, "", "Bearer ann:secre", "Bearer secret", "Basic !!!", "Token ann:secret", basic + "x"):
        assert not authorized(header, login), header
    check_request("127.0.0.1", None, None)  # loopback without a login: as the app
    check_request("::1", None, None)
    check_request("192.168.1.5", "Bearer ann:secret", login)  # anyone with the login
    with pytest.raises(Unauthorized, match="only on this machine"):
        check_request("192.168.1.5", None, None)  # a relayed request from elsewhere, without a login
    with pytest.raises(Unauthorized, match="login is needed"):
        check_request("127.0.0.1", None, login)


def test_upload_limit_is_the_setting(tmp_path: Path) -> None:
    from rag.errors import TooLarge
    from rag.uploads import store_upload_data

    with pytest.raises(TooLarge):
        store_upload_data("a.txt", b"x" * 11, tmp_path, 10)
    assert store_upload_data("a.txt", b"x" * 10, tmp_path, 10).read_bytes() == b"x" * 10
