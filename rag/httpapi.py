"""The HTTP API: OpenAI's chat completions and model list, plus retrieve, documents and ingest.

It is served by the same process as the chat (rag/webapp.py mounts the Gradio app beside it),
with the same login rules (rag/access.py), the same upload checks (rag/uploads.py), and the same
turns on each model (rag/answer_queue.py). FastAPI validates the bodies and draws /docs; errors
leave in OpenAI's shape with their HTTP status and one sentence, never a trace. The schema at
/openapi.json documents every status a route sends, with its body (rag/openai_format.py), and no
other: tests/test_schema_fuzz.py fuzzes the running app from it.

A streamed reply sends each piece as the backend writes it. The citation check runs once the
reply is whole and may drop sentences that streamed; the last chunk carries the checked answer.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from rag import openai_format as oa
from rag.access import check_request
from rag.answer import answer_json, text_then_answer
from rag.answer_queue import RETRY_AFTER_SECONDS
from rag.api import RAG
from rag.engines import Engines
from rag.errors import (
    BackendUnavailable,
    BadInput,
    Busy,
    NotFound,
    RagError,
    StoreError,
    TooLarge,
    Unauthorized,
    sentence,
)
from rag.ingest import IngestReport
from rag.uploads import corpus_paths, store_upload_data

log = logging.getLogger(__name__)

API_PREFIX = "/v1"
MAX_UPLOAD_FILES = 10  # files in one /v1/ingest request


class UnsupportedMedia(BadInput):
    """A body that is not of the content type the route reads."""


class WrongMethod(BadInput):
    """A route asked with a method it does not take; `allowed` are those it takes."""

    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__(message)
        self.allowed = allowed


# (error class, HTTP status, OpenAI error type, code), most specific first.
STATUSES: list[tuple[type[RagError], int, str, str | None]] = [
    (Unauthorized, 401, "authentication_error", "invalid_api_key"),
    (NotFound, 404, "invalid_request_error", "not_found"),
    (TooLarge, 413, "invalid_request_error", "too_large"),
    (UnsupportedMedia, 415, "invalid_request_error", "unsupported_media_type"),
    (WrongMethod, 405, "invalid_request_error", "method_not_allowed"),
    (BadInput, 400, "invalid_request_error", "invalid_value"),
    (Busy, 429, "rate_limit_error", "queue_full"),
    (BackendUnavailable, 503, "server_error", "backend_unavailable"),
    (StoreError, 503, "server_error", "store_unavailable"),
    (RagError, 500, "server_error", None),
]
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="rag", Basic realm="rag"'}


def error_status(exc: RagError) -> tuple[int, dict]:
    """The HTTP status of a named error and OpenAI's error body for it."""
    _, status, kind, code = next(row for row in STATUSES if isinstance(exc, row[0]))
    return status, oa.error(sentence(exc), kind, code)


def error_response(exc: RagError) -> JSONResponse:
    """A named error as OpenAI's error body with its status (and Retry-After, a login challenge or Allow)."""
    status, body = error_status(exc)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 429 else CHALLENGE if status == 401 else None
    if isinstance(exc, WrongMethod):
        headers = {"Allow": ", ".join(exc.allowed)}
    return JSONResponse(body, status_code=status, headers=headers)


# What each error status means on the routes that document it; the body is always `oa.ErrorBody`.
ERROR_MEANINGS = {
    400: "Bad input: malformed JSON, a wrong type, an empty or over-long question, a filter that matches "
    "no article, a path outside the articles folder, or an upload that is refused",
    401: "No login: RAG_AUTH is set and the request does not carry it (or, without RAG_AUTH, the request "
    "was relayed from another machine)",
    404: "No such model",
    413: "An upload over RAG_MAX_UPLOAD_BYTES",
    415: "A body of another content type than the route reads",
    429: "The model's line is full; come back after Retry-After seconds",
    503: "The backend or the store is unavailable",
}
ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"description": "The logins taken.", "required": True, "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds.", "required": True, "schema": {"type": "integer", "minimum": 0}}},
}


def replies(ok: type[BaseModel], *errors: int) -> dict[int | str, dict[str, Any]]:
    """The responses a route documents: its 200 body, and OpenAI's error body for each status it
    sends (401 on every route: the login is checked before anything else)."""
    documented: dict[int | str, dict[str, Any]] = {200: {"model": ok, "description": ok.__doc__ or ""}}
    for status in sorted({401, *errors}):
        documented[status] = {"model": oa.ErrorBody, "description": ERROR_MEANINGS[status]}
        documented[status] |= {"headers": ERROR_HEADERS[status]} if status in ERROR_HEADERS else {}
    return documented


class LoginRequired:
    """ASGI middleware: every /v1 request passes the login rules before its body is even read."""

    def __init__(self, app: ASGIApp, login: tuple[str, str] | None) -> None:
        self.app = app
        self.login = login

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIX):
            headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
            client = (scope.get("client") or ("", 0))[0]
            try:
                check_request(client, headers.get("authorization"), self.login)
            except Unauthorized as exc:
                await error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_api(engines: Engines, login: tuple[str, str] | None) -> FastAPI:
    """The API application; the chat is mounted on it afterwards (`gr.mount_gradio_app`)."""
    app = FastAPI(
        title="Chat with your articles",
        description="OpenAI-compatible chat completions whose answers cite the articles, and the articles themselves.",
        version="1",
        redoc_url=None,
    )
    router = APIRouter(prefix=API_PREFIX)
    add_chat_routes(router, engines)
    add_article_routes(router, engines)
    app.include_router(router)
    app.add_route(API_PREFIX + "/{path:path}", NoSuchRoute(router), include_in_schema=False)
    app.add_middleware(LoginRequired, login=login)
    add_error_handlers(app)
    document_truly(app)
    return app


class NoSuchRoute:
    """ASGI app for anything else under /v1, by any method (a function endpoint would take only
    those listed; the chat's mount would answer the rest): a route's path asked with another
    method is a 405 naming the methods it takes, any other a 404."""

    def __init__(self, router: APIRouter) -> None:
        self.routes = [route for route in router.routes if isinstance(route, APIRoute)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        allowed = sorted({m for route in self.routes if route.path_regex.match(path) for m in route.methods})
        if allowed:
            raise WrongMethod(f"{path} takes {' or '.join(allowed)}, not {method}", allowed)
        raise NotFound(f"there is no {path}; see /docs for the routes")


# -- chat ------------------------------------------------------------------------------------


def add_chat_routes(router: APIRouter, engines: Engines) -> None:
    """POST /v1/chat/completions, GET /v1/models and /v1/models/{name}."""

    @router.post(
        "/chat/completions",
        summary="Answer the last user message from the articles, with citations",
        response_model=None,
        responses=replies(oa.ChatCompletion, 400, 404, 415, 429, 503),
        openapi_extra={"responses": {"200": {"content": {"text/event-stream": {"itemSchema": STREAM_EVENT}}}}},
    )
    def chat_completions(body: oa.ChatRequest) -> Any:
        question, history = body.question_and_history()
        engine = engines.by_name(body.model)
        question = engine.check_question(question)  # bad input never waits in the line
        engine.scope_ids(oa.where(body.filters))  # nor does a filter that matches nothing
        if body.stream:
            events = sse_events(engines, engine, body, question, history)
            first = next(events)  # the turn and the first piece: errors so far still get their status
            headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            return StreamingResponse(itertools.chain([first], events), media_type="text/event-stream", headers=headers)
        with engines.queue.turn(body.model):
            answer = engine.ask(
                question, history, k=body.top_k, temperature=body.temperature, where=oa.where(body.filters)
            )
        return oa.completion(answer, body.model)

    @router.get(
        "/models", summary="The models that can answer now", response_model=None, responses=replies(oa.ModelList)
    )
    def models() -> dict:
        return {"object": "list", "data": [oa.model_entry(name) for name in engines.model_names()]}

    @router.get("/models/{name:path}", summary="One model", response_model=None, responses=replies(oa.ModelEntry, 404))
    def model(name: str) -> dict:
        engines.by_name(name)
        return oa.model_entry(name)


def sse_events(engines: Engines, engine: RAG, body: oa.ChatRequest, question: str, history: list) -> Iterator[str]:
    """The reply as server-sent events in OpenAI's chunk format, ending with `data: [DONE]`: each
    piece as the backend writes it, then a last chunk with the answer's fields. A model's reply is
    checked only once it is whole, so the last chunk's `answer` can be shorter than what streamed."""
    cid = oa.completion_id()
    with engines.queue.turn(body.model):
        events = engine.stream(
            question, history, k=body.top_k, temperature=body.temperature, where=oa.where(body.filters)
        )
        with contextlib.closing(events):
            first = next(events)  # raises before anything is sent
            yield sse(oa.chunk(cid, body.model, {"role": "assistant", "content": ""}))
            try:
                pieces = itertools.chain([first], events)
                answer = yield from text_then_answer(
                    pieces, lambda text: sse(oa.chunk(cid, body.model, {"content": text}))
                )
            except RagError as exc:  # after the headers: the error goes in the stream, as OpenAI does
                yield sse(error_status(exc)[1])
                yield "data: [DONE]\n\n"
                return
    # The answer's fields and token counts ride on the last chunk (OpenAI sends `usage` there too).
    yield sse(oa.chunk(cid, body.model, {}, "stop", answer_json(answer)))
    yield "data: [DONE]\n\n"


def sse(payload: dict) -> str:
    """One server-sent event carrying JSON."""
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


# A streamed reply's events: chunks, the last one with the answer's fields (or an error that came
# after the headers), then `[DONE]`. `document_truly` adds these models to the schema's components.
STREAMED = (oa.ChatCompletionChunk, oa.LastChunk, oa.ErrorBody)
COMPONENT = "#/components/schemas/{model}"
STREAM_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "anyOf": [
                {"const": "[DONE]"},
                {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {"anyOf": [{"$ref": COMPONENT.format(model=m.__name__)} for m in STREAMED]},
                },
            ]
        }
    },
}


# -- articles --------------------------------------------------------------------------------


def add_article_routes(router: APIRouter, engines: Engines) -> None:
    """POST /v1/retrieve, GET /v1/documents, POST /v1/ingest."""

    @router.post(
        "/retrieve",
        summary="The passages retrieved for a question, with their scores",
        response_model=None,
        responses=replies(oa.RetrieveReply, 400, 415, 503),
    )
    def retrieve(body: oa.RetrieveRequest) -> dict:
        passages = engines.rag.retrieve(body.question, k=body.k, where=oa.where(body.filters))
        return {"passages": [p.to_dict() for p in passages]}

    @router.get(
        "/documents", summary="The articles in the store", response_model=None, responses=replies(oa.DocumentList, 503)
    )
    def documents() -> dict:
        listed = [
            {"doc_id": d.doc_id, "title": d.title, "dateline": d.dateline, "chunks": len(d.chunk_ids)}
            for d in engines.rag.documents()
        ]
        return {"documents": listed}

    @router.post(
        "/ingest",
        summary="Re-read the articles folder, after checking the paths named, or add uploaded files",
        response_model=None,
        responses=replies(oa.IngestReply, 400, 413, 415, 503),
        openapi_extra={"requestBody": INGEST_BODY},
    )
    async def ingest(request: Request) -> dict:
        corpus = engines.settings.corpus
        kind = content_type(request)
        if kind == "application/json":
            paths = ingest_paths(await request.body())
            await run_in_threadpool(corpus_paths, paths, corpus)
            stored: list[Path] = []
        elif kind == "multipart/form-data":
            stored = await store_files(request, corpus, engines.settings.max_upload_bytes)
        else:
            raise UnsupportedMedia('send JSON ({"paths": [...]}) or multipart/form-data files')
        report = await run_in_threadpool(engines.ingest, [corpus])
        return report_json(report, [p.relative_to(corpus.resolve()).as_posix() for p in stored])


INGEST_BODY = {
    "content": {
        "application/json": {"schema": oa.IngestRequest.model_json_schema()},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
            }
        },
    }
}


def content_type(request: Request) -> str:
    """The request's media type, lower-case, without parameters."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def ingest_paths(raw: bytes) -> list[str]:
    """The paths of a JSON ingest request; malformed JSON or wrong types are a 400."""
    try:
        return oa.IngestRequest.model_validate_json(raw or b"{}").paths
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc


async def store_files(request: Request, corpus: Path, max_bytes: int) -> list[Path]:
    """Check and store every uploaded file, refusing a body that cannot fit before reading it."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_UPLOAD_FILES * max_bytes + 65536:
        raise TooLarge(f"the upload is {int(length):,} bytes; each file may have {max_bytes:,}")
    form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=10)
    try:
        # Every part: `form.values()` holds only the last value of each name, so of files sent as
        # `files`, `files` … it stored the last one and dropped the others without a word.
        items = form.multi_items()
        files = [f for _, f in items if hasattr(f, "filename") and hasattr(f, "read")]
        if not files:
            raise BadInput("the upload holds no files")
        if len(files) < len(items):  # a part sent without a file name arrives as a plain field
            named = sorted({name for name, f in items if not hasattr(f, "read")})
            raise BadInput(f"every part of an upload must be a file with a name; {', '.join(named)} had none")
        stored = []
        for upload in files:
            data = await upload.read(max_bytes + 1)  # one byte over is enough to refuse it
            stored.append(
                await run_in_threadpool(store_upload_data, upload.filename or "upload", data, corpus, max_bytes)
            )
        return stored
    finally:
        await form.close()


def report_json(report: IngestReport, stored: list[str]) -> dict:
    """What an ingest did, and where uploaded files were stored."""
    return {
        "added": list(report.added),
        "updated": list(report.updated),
        "unchanged": list(report.unchanged),
        "removed": list(report.removed),
        "skipped": list(report.warnings),
        "stored": stored,
        "chunks_written": report.chunks_written,
        "chunks_total": report.chunks_total,
        "seconds": round(report.seconds, 3),
        "summary": report.summary(),
    }


# -- the schema ------------------------------------------------------------------------------


def document_truly(app: FastAPI) -> None:
    """Make the schema FastAPI draws say what the API does: no 422 (a body FastAPI refuses is a 400
    here, `add_error_handlers`), and the models of a stream's events (FastAPI draws those only for
    its own SSE routes) among the components."""
    draw = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = draw()
            for operation in (op for item in schema["paths"].values() for op in item.values()):
                operation["responses"].pop("422", None)
            components = schema["components"]["schemas"]
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            events = TypeAdapter(STREAMED[0] | STREAMED[1] | STREAMED[2])
            components |= events.json_schema(mode="serialization", ref_template=COMPONENT)["$defs"]
        return app.openapi_schema

    app.openapi = openapi


# -- errors ----------------------------------------------------------------------------------


def add_error_handlers(app: FastAPI) -> None:
    """Every failure as OpenAI's error body with the right status."""

    async def named(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc) if isinstance(exc, RagError) else unexpected(exc)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        if request.method == "POST" and content_type(request) not in ("application/json", "multipart/form-data"):
            return error_response(UnsupportedMedia("send the body as application/json"))
        return error_response(BadInput(validation_message(getattr(exc, "errors", list)())))

    async def http(request: Request, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status_code", 500)
        detail = str(getattr(exc, "detail", "")) or "the request failed"
        kind = "invalid_request_error" if status < 500 else "server_error"
        return JSONResponse(oa.error(sentence(Exception(detail)), kind, None), status_code=status)

    async def other(request: Request, exc: Exception) -> JSONResponse:
        return unexpected(exc)

    app.add_exception_handler(RagError, named)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(Exception, other)


def unexpected(exc: Exception) -> JSONResponse:
    """A bug: the trace goes to the log, the client gets one sentence."""
    log.error("the API failed", exc_info=exc)
    body = oa.error(f"Something went wrong ({type(exc).__name__}); see the server's log.", "server_error", None)
    return JSONResponse(body, status_code=500)


def validation_message(errors: list[dict]) -> str:
    """The first problem FastAPI found in a body, as a sentence naming the field."""
    if not errors:
        return "the request is malformed"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return f"the body is not valid JSON ({first.get('ctx', {}).get('error', 'decode error')})"
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    problem = first.get("msg", "Is invalid")
    return f"field {where}: {problem[:1].lower()}{problem[1:]}" if where else f"the body: {problem}"
