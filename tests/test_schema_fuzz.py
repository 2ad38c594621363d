"""The HTTP API fuzzed from its own schema: schemathesis reads the running app's /openapi.json and
sends every /v1 route valid and invalid requests (JSON and multipart bodies, odd path parameters,
other methods and content types), once to an app without a login and once to one that asks for it.

Every response must be one the schema documents for that route, with the documented body and
headers, and none may be a 500. With a login, each case is sent with it (and must conform), then
without it and with wrong ones (and must get a 401 in OpenAI's error shape). Two more fuzzers
reach what a schema-only fuzzer rarely does: questions the articles can answer, inside fuzzed
conversations and options, uploads with hostile names and bytes, and hostile paths to ingest.
Fuzzed ingests must write
nothing outside the app's `articles/uploads/`. The defects the fuzzing found are pinned by the
plain tests at the end. The module prints how many cases each route was sent.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from app_server import RunningApp, app_process
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

LOGIN = "ann:secret"
AUTH = {"Authorization": f"Bearer {LOGIN}"}
WRONG_LOGINS = [{}, {"Authorization": "Bearer ann:wrong"}, {"Authorization": "Basic !!!"}]
UPLOAD_LIMIT = 1500  # bytes: small, so that some fuzzed uploads are over it (413)
# A response is documented when these hold. `positive_data_acceptance` is left out on purpose: a
# body the schema allows can still be refused with a documented 400 (a blank question, a filter
# that matches no article, an upload of a type the app does not read).
DOCUMENTED = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# ... and for schemathesis's own cases, which know how they were made: invalid ones are refused,
# and another method is a 405 naming the methods the route takes.
CHECKS = [*DOCUMENTED, negative_data_rejection, unsupported_method, allow_header_conformance]
# Fuzzing-phase examples per route (the coverage phase adds its own): the module takes about 80 s
# on two cores, of a CI budget of three minutes.
HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
OPEN_FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=HEALTH)
LOGIN_FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=HEALTH)  # four requests a case
ANSWER_FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=HEALTH)
TIMEOUT = 120  # seconds for one request: an ingest of a fuzzed upload embeds it
CHAT, INGEST = "/v1/chat/completions", "/v1/ingest"

# Questions the seed articles answer, alone or with odd text around them.
ANSWERABLE = [
    "Who is Takeo Mori?",
    "Where did Lavrov and Kishida hold talks?",
    "Who did Igor Morgulov open consultations with?",
    "Which islands does Japan claim?",
    "When did the consultations start?",
]
# Any characters, with controls, citation markers and chat-template tokens among them.
ODD_PIECES = st.characters(codec="utf-8") | st.sampled_from(
    ["\x00", "\r\n", "[1]", "[99]", "<|im_start|>", "</s>", " "]
)
ODD_TEXT = st.lists(ODD_PIECES, max_size=80).map("".join)
QUESTIONS = st.one_of(
    st.sampled_from(ANSWERABLE),
    st.tuples(ODD_TEXT, st.sampled_from(ANSWERABLE), ODD_TEXT).map("".join),
    ODD_TEXT.filter(str.strip),
)
# Upload names that try to leave the uploads folder or confuse the checks, and any name at all.
HOSTILE_NAMES = [
    "../../escape.txt",
    "/etc/cron.d/escape.txt",
    "..\\..\\escape.md",
    "a/../../../escape.html",
    ".hidden.txt",
    "uploads/../../escape.txt",
    "x.txt\x00.pdf",
    "nul\x00.txt",
    "CON.txt",
    " .txt",
    "新闻.md",
    "a" * 300 + ".txt",
    "report.PDF",
    "....txt",
]
# Paths to ingest that lie outside the articles folder, or that no file system takes.
HOSTILE_PATHS = ["..", "../..", "/", "/etc/passwd", "~", "uploads/../../x", "nul\x00.txt", "a" * 300, "a/" * 2100, ""]
FILE_NAMES = st.one_of(st.sampled_from(HOSTILE_NAMES), ODD_TEXT.map(lambda s: s[:100] + ".txt"), st.text(max_size=40))
FILE_BYTES = st.one_of(
    st.text(max_size=2000).map(str.encode),
    st.binary(max_size=2000),
    st.binary(max_size=200).map(lambda b: b"%PDF-1.4\n" + b),
    st.sampled_from(ANSWERABLE).map(lambda q: f"Notes\n\nMOSCOW, May 2. /TASS/. {q} Nobody knows.\n".encode()),
)

open_schema = schemathesis.pytest.from_fixture("open_api_schema")
login_schema = schemathesis.pytest.from_fixture("login_api_schema")


@pytest.fixture(autouse=True)
def node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32 reads `item._nodeid`, which pytest 9.2 no longer has (the id lives in
    `_id`): give it one to read. Its subtests still report each route by its label."""
    request.node._nodeid = request.node.nodeid


@pytest.fixture(scope="module")
def tried(request: pytest.FixtureRequest) -> Iterator[Counter]:
    """Cases sent, by app and route; printed when the module is done."""
    counts, failed_before = Counter(), request.session.testsfailed
    yield counts
    apps = ("open", "login")
    routes = sorted({route for _, route in counts})
    lines = [f"  {route:28}" + "".join(f"{counts[app, route]:7}" for app in apps) for route in routes]
    sums = "".join(f"{sum(n for (a, _), n in counts.items() if a == app):7}" for app in apps)
    verdict = "" if request.session.testsfailed == failed_before else "  (SOME CHECKS FAILED)"
    table = [f"[schema fuzz] cases per route{verdict}:", f"  {'':28}{'open':>7}{'login':>7}", *lines]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n" + "\n".join([*table, f"  {'all routes':28}{sums}"]))


@pytest.fixture(scope="module")
def files_before() -> dict[str, dict[str, tuple[int, int]]]:
    """What each app's folder held when it started (`folder_files`), by the app's URL."""
    return {}


def folder_files(root: Path) -> dict[str, tuple[int, int]]:
    """Each file under an app's folder but its store and log, with its size and modification time."""
    files = (p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] not in (".rag", "app.log"))
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in files}


@pytest.fixture(scope="module")
def open_app(tmp_path_factory: pytest.TempPathFactory, files_before: dict) -> Iterator[RunningApp]:
    """`python app.py` on loopback without a login, answering in its default mode (~0.1 s)."""
    root = tmp_path_factory.mktemp("fuzz-open")
    with app_process(root, RAG_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT)) as running:
        files_before[running.url] = folder_files(root)
        yield running


@pytest.fixture(scope="module")
def login_app(tmp_path_factory: pytest.TempPathFactory, files_before: dict) -> Iterator[RunningApp]:
    """The same app asking for the login `ann:secret`."""
    root = tmp_path_factory.mktemp("fuzz-login")
    with app_process(root, RAG_AUTH=LOGIN, RAG_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT)) as running:
        files_before[running.url] = folder_files(root)
        yield running


@pytest.fixture(scope="module")
def open_api_schema(open_app: RunningApp) -> schemathesis.BaseSchema:
    """The open app's schema, as any client reads it."""
    return schemathesis.openapi.from_url(open_app.url + "openapi.json")


@pytest.fixture(scope="module")
def login_api_schema(login_app: RunningApp) -> schemathesis.BaseSchema:
    """The login app's schema (/openapi.json is outside /v1: it needs no login)."""
    return schemathesis.openapi.from_url(login_app.url + "openapi.json")


def name_the_model(case: schemathesis.Case) -> None:
    """A fuzzed model name is a 404 before the rest of the body is read: a string `model` becomes
    the built-in one, so that the messages, filters and options are what gets fuzzed."""
    if case.operation.path == CHAT and isinstance(case.body, dict) and isinstance(case.body.get("model"), str):
        case.body["model"] = "embedded"


def stays_in_the_uploads_folder(app: RunningApp, path: str, response: httpx.Response) -> None:
    """An ingest that took files says it stored them under `<corpus>/uploads/`, and they are there."""
    if path == INGEST and response.status_code == 200:
        uploads = (app.corpus / "uploads").resolve()
        for name in response.json()["stored"]:
            stored = (app.corpus / name).resolve()
            assert name.startswith("uploads/") and stored.is_relative_to(uploads) and stored.is_file(), name


# -- schemathesis, from the schema alone -----------------------------------------------------


@pytest.mark.slow
@open_schema.parametrize()
@OPEN_FUZZ
def test_without_a_login_every_response_is_documented(
    case: schemathesis.Case, open_app: RunningApp, tried: Counter
) -> None:
    tried["open", case.operation.label] += 1
    name_the_model(case)
    response = case.call_and_validate(checks=CHECKS, timeout=TIMEOUT)
    stays_in_the_uploads_folder(open_app, case.operation.path, response)


@pytest.mark.slow
@login_schema.parametrize()
@LOGIN_FUZZ
def test_with_a_login_every_response_is_documented_and_without_it_401(
    case: schemathesis.Case, login_app: RunningApp, tried: Counter
) -> None:
    tried["login", case.operation.label] += 1
    name_the_model(case)
    response = case.call_and_validate(headers=AUTH, checks=CHECKS, timeout=TIMEOUT)
    stays_in_the_uploads_folder(login_app, case.operation.path, response)
    for headers in WRONG_LOGINS:
        refused = case.call(headers=headers, timeout=TIMEOUT)
        assert refused.status_code == 401, (headers, refused.text)
        assert refused.json()["error"]["type"] == "authentication_error"
        case.validate_response(refused, checks=DOCUMENTED)


# -- what the schema alone rarely reaches -----------------------------------------------------


@pytest.mark.slow
@ANSWER_FUZZ
@given(data=st.data())
def test_fuzzed_conversations_with_a_real_question_get_documented_answers(
    data: st.DataObject, open_api_schema: schemathesis.BaseSchema, tried: Counter
) -> None:
    case = data.draw(open_api_schema[CHAT]["POST"].as_strategy())  # any body the schema allows ...
    case.body["model"] = "embedded"  # ... asking the built-in model a question last
    case.body["messages"] = [*case.body["messages"], {"role": "user", "content": data.draw(QUESTIONS)}]
    if data.draw(st.booleans()):
        case.body.pop("filters", None)  # fuzzed filters mostly match no article (a 400)
    tried["open", case.operation.label] += 1
    case.call_and_validate(checks=DOCUMENTED, timeout=TIMEOUT)


@pytest.mark.slow
@ANSWER_FUZZ
@given(files=st.lists(st.tuples(FILE_NAMES, FILE_BYTES), min_size=1, max_size=3))
def test_fuzzed_uploads_are_documented_and_stored_only_in_the_uploads_folder(
    files: list[tuple[str, bytes]], open_app: RunningApp, open_api_schema: schemathesis.BaseSchema, tried: Counter
) -> None:
    ingest = open_api_schema[INGEST]["POST"]
    tried["open", ingest.label] += 1
    parts = [("files", (name, data)) for name, data in files]
    response = httpx.post(open_app.url + INGEST.lstrip("/"), files=parts, timeout=TIMEOUT)
    response.request.read()  # schemathesis reads the request's body to report it
    ingest.Case(media_type="multipart/form-data").validate_response(response, checks=DOCUMENTED)
    stays_in_the_uploads_folder(open_app, INGEST, response)
    if response.status_code == 200:  # every file was stored, as sent (the same file twice is stored once)
        stored = response.json()["stored"]
        assert {(open_app.corpus / name).read_bytes() for name in stored} == {data for _, data in files}
        assert len(stored) <= len(files)


@pytest.mark.slow
@ANSWER_FUZZ
@given(paths=st.lists(st.one_of(st.sampled_from(HOSTILE_PATHS), ODD_TEXT, st.text()), min_size=1, max_size=3))
def test_fuzzed_ingest_paths_are_documented_and_only_read_inside_the_articles_folder(
    paths: list[str], open_app: RunningApp, open_api_schema: schemathesis.BaseSchema, tried: Counter
) -> None:
    ingest = open_api_schema[INGEST]["POST"]
    tried["open", ingest.label] += 1
    case = ingest.Case(body={"paths": paths}, media_type="application/json")
    response = case.call_and_validate(checks=DOCUMENTED, timeout=TIMEOUT)
    if response.status_code == 200:  # only what lies inside the articles folder is taken
        root = open_app.corpus.resolve()
        assert all((root / path).resolve().is_relative_to(root) for path in paths), paths


@pytest.mark.slow
@pytest.mark.parametrize("app_name", ["open_app", "login_app"])
def test_fuzzed_ingests_wrote_nothing_outside_the_uploads_folder(
    app_name: str, request: pytest.FixtureRequest, files_before: dict
) -> None:
    app: RunningApp = request.getfixturevalue(app_name)
    root = app.corpus.parent
    assert {p.name for p in root.iterdir()} == {"articles", ".rag", "app.log"}
    before, now = files_before[app.url], folder_files(root)
    changed = {name for name in before.keys() | now.keys() if before.get(name) != now.get(name)}
    assert {name for name in changed if not name.startswith("articles/uploads/")} == set()


# -- the defects found, pinned ---------------------------------------------------------------


def test_a_path_no_file_system_takes_is_a_400_not_a_500(open_app: RunningApp) -> None:
    # Found while fuzzing ingest paths (now HOSTILE_PATHS): a NUL byte (ValueError) or a name over
    # NAME_MAX or PATH_MAX (OSError) was a 500, "Something went wrong (ValueError)".
    for path, reason in [
        ("nul\x00byte.txt", "embedded null byte"),
        ("a" * 5000, "file name too long"),
        ("a/" * 3000, "file name too long"),
    ]:
        response = httpx.post(open_app.url + "v1/ingest", json={"paths": [path]}, timeout=TIMEOUT)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_value" and reason in response.json()["error"]["message"]


def test_another_method_on_a_route_is_a_405_in_openai_shape(open_app: RunningApp) -> None:
    # Found by the fuzzer: PUT, DELETE, TRACE, QUERY … on a /v1 route fell through to the chat's
    # mount and got its `{"detail": "Not Found"}` 404; GET /v1/chat/completions said the route did not exist.
    for method, path, allowed in [
        ("PUT", "v1/models", "GET"),
        ("TRACE", "v1/documents", "GET"),
        ("DELETE", "v1/models/embedded", "GET"),
        ("QUERY", "v1/chat/completions", "POST"),
        ("GET", "v1/chat/completions", "POST"),
        ("GET", "v1/ingest", "POST"),
    ]:
        response = httpx.request(method, open_app.url + path)
        assert response.status_code == 405 and response.headers["allow"] == allowed, (method, path, response.text)
        assert response.json()["error"] == {
            "message": f"/{path} takes {allowed}, not {method}.",
            "type": "invalid_request_error",
            "param": None,
            "code": "method_not_allowed",
        }
    missing = httpx.request("PATCH", open_app.url + "v1/embeddings")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_every_file_of_an_upload_is_checked_and_stored(open_app: RunningApp) -> None:
    # Found by the fuzzer: of several files sent as `files` (the schema's array), only the last was
    # read (`form.values()` keeps one value per name); the others were dropped without a word.
    notes = [
        b"Harbour notes\n\nOSAKA, May 3. /TASS/. The harbour reopened.\n",
        b"Rail notes\n\nKOBE, May 4. The line reopened.\n",
    ]
    files = [("files", ("harbour.txt", notes[0])), ("files", ("rail.md", notes[1]))]
    response = httpx.post(open_app.url + "v1/ingest", files=files, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == ["uploads/harbour.txt", "uploads/rail.md"]
    assert [(open_app.corpus / "uploads" / name).read_bytes() for name in ("harbour.txt", "rail.md")] == notes
    refused = [("files", ("ok.txt", notes[0])), ("files", ("tool.exe", b"MZ"))]
    response = httpx.post(open_app.url + "v1/ingest", files=refused, timeout=TIMEOUT)
    assert response.status_code == 400 and "Tool.exe: only .txt" in response.json()["error"]["message"]


# The statuses each route documents: 200, those it refuses with, and 401 (the login) on every one.
STATUSES = {
    ("post", CHAT): {"200", "400", "401", "404", "415", "429", "503"},
    ("get", "/v1/models"): {"200", "401"},
    ("get", "/v1/models/{name}"): {"200", "401", "404"},
    ("post", "/v1/retrieve"): {"200", "400", "401", "415", "503"},
    ("get", "/v1/documents"): {"200", "401", "503"},
    ("post", INGEST): {"200", "400", "401", "413", "415", "503"},
}


def test_the_schema_documents_the_statuses_each_route_sends_and_no_422(open_app: RunningApp) -> None:
    # Found by the fuzzer: every route documented only 200 and FastAPI's 422, which the app never
    # sends (a body it refuses is a 400), and the 200 bodies as any object.
    schema = httpx.get(open_app.url + "openapi.json").json()
    operations = {(method, path): op for path, item in schema["paths"].items() for method, op in item.items()}
    assert {key: set(op["responses"]) for key, op in operations.items()} == STATUSES
    assert not {"HTTPValidationError", "ValidationError"} & set(schema["components"]["schemas"])
    for op in operations.values():
        for status, response in op["responses"].items():
            body = response["content"]["application/json"]["schema"]["$ref"]
            assert (body == "#/components/schemas/ErrorBody") is (status != "200"), (status, body)
    stream = operations["post", CHAT]["responses"]["200"]["content"]["text/event-stream"]["itemSchema"]
    assert json.dumps(stream).count("#/components/schemas/") == 3  # a chunk, the last chunk, an error
    assert operations["post", CHAT]["responses"]["429"]["headers"]["Retry-After"]["required"] is True
