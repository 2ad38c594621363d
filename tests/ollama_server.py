"""Fake Ollama server for tests: a small local HTTP server speaking Ollama's protocol.

The real Ollama server cannot be installed on this machine, so the project's
Ollama backend is tested against this stand-in. It replaces *only the Ollama
server process*: the clients under test (the ``ollama`` Python package,
llama-index's ``Ollama`` LLM, or the project's own code) are the real ones and
talk real HTTP to it.

Implemented endpoints (same paths, fields, status codes and framing as Ollama):

* ``GET /`` and ``HEAD /``  -> 200 ``Ollama is running``
* ``GET /api/version``      -> ``{"version": "0.5.0"}``
* ``GET /api/tags``         -> the configured models
* ``POST /api/show``        -> model details (with ``model_info`` and a
  ``qwen2.context_length``), or 404 for an unknown model
* ``POST /api/chat``        -> a streamed (``application/x-ndjson``, chunked
  transfer encoding, one JSON object per line) or non-streamed answer
* ``POST /api/generate``    -> likewise, with ``response`` instead of ``message``

Anything else answers 404 ``404 page not found`` like Ollama does.

Every request is recorded in :attr:`OllamaServer.requests` (as
:class:`RecordedRequest`) *before* it is answered, so a test can assert what a
client sent. Failure modes for tests: ``die_after_chunks`` (the server drops the
connection mid-answer, as when Ollama crashes), ``error_after_chunks`` (an in-stream
``{"error": ...}`` line, as when its model runner fails) and ``delay_s`` (slow
generation).

Example::

    with OllamaServer(reply=lambda messages: "Answer [1].") as server:
        client = ollama.Client(host=server.url)
        ...
        assert server.requests_to("/api/chat")[0]["messages"][-1]["role"] == "user"
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Self

__all__ = [
    "DEFAULT_ERROR",
    "DEFAULT_MODEL",
    "DEFAULT_REPLY",
    "OllamaServer",
    "RecordedRequest",
    "ReplyFn",
]

DEFAULT_MODEL = "qwen2.5:7b-instruct"
DEFAULT_ERROR = "an error was encountered while running the model: unexpected EOF"
DEFAULT_REPLY = "The talks were held at the Iikura guest house in Tokyo [1]."
CONTEXT_LENGTH = 32768
MODIFIED_AT = "2026-01-01T00:00:00Z"

#: ``reply`` may be a fixed string or a function of the chat messages
#: (a list of ``{"role": ..., "content": ...}`` dicts exactly as the client sent them).
ReplyFn = Callable[[list[dict[str, Any]]], str]


class RecordedRequest(NamedTuple):
    """One request as the server received it."""

    method: str
    path: str
    #: Parsed JSON body (``None`` without a body; the raw text if it is not JSON).
    body: Any


class _ClientGone(Exception):
    """The client closed its side, or the server is stopping."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _canonical(name: str) -> str:
    """Ollama treats ``llama3`` as ``llama3:latest``."""
    return name if ":" in name else f"{name}:latest"


def _pieces(text: str, words_per_chunk: int) -> list[str]:
    """Split ``text`` into chunks of ``words_per_chunk`` words that join back to it.

    Each word keeps its leading whitespace, like Ollama's tokens (``" talks"``).
    """
    tokens = re.findall(r"\s*\S+|\s+$", text)
    n = max(1, words_per_chunk)
    return ["".join(tokens[i : i + n]) for i in range(0, len(tokens), n)]


def _digest(name: str) -> str:
    return "sha256:" + (name.encode().hex() * 64)[:64]


def _details() -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": "qwen2",
        "families": ["qwen2"],
        "parameter_size": "7B",
        "quantization_level": "Q4_K_M",
    }


class _HTTPServer(ThreadingHTTPServer):
    """Threading server remembering its open connections so ``stop()`` can cut them."""

    daemon_threads = True
    block_on_close = False  # never join handler threads on close: stop() must be prompt

    def __init__(self, address: tuple[str, int], owner: OllamaServer) -> None:
        self.owner = owner
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def cut_all_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            # shutdown() (not close()) wakes a handler blocked on the socket with EOF or
            # EPIPE; the handler thread then closes it itself.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client (or stop()) cutting a connection is expected; real bugs still print.
        if self.owner._stopping.is_set() or isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked transfer encoding, as Ollama (Go net/http)
    server_version = "ollama-fake"
    server: _HTTPServer

    # -- plumbing ----------------------------------------------------------------------

    @property
    def owner(self) -> OllamaServer:
        return self.server.owner

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, *args: Any) -> None:
        pass  # keep test output clean

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = bytearray()
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()  # CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _send_json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json; charset=utf-8")

    def _send_error(self, status: int, message: str) -> None:
        self._send_json(status, {"error": message})

    def _not_found(self) -> None:
        self._send(404, b"404 page not found", "text/plain")

    def _write_chunk(self, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode() + b"\n"
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except OSError as exc:
            raise _ClientGone from exc

    def _die(self) -> None:
        """Drop the connection abruptly, mid-response, as a crashing Ollama would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()

    def _wait(self) -> None:
        """Sleep ``delay_s`` before a chunk; abort at once if the server is stopping."""
        delay = self.owner.delay_s
        if delay > 0 and self.owner._stopping.wait(delay):
            raise _ClientGone

    # -- dispatch ----------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.owner._record("HEAD", self.path, None)
        if self.path.split("?")[0] == "/":
            self._send(200, b"Ollama is running", "text/plain; charset=utf-8")
        else:
            self._not_found()

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        self.owner._record("GET", path, None)
        if path == "/":
            self._send(200, b"Ollama is running", "text/plain; charset=utf-8")
        elif path == "/api/version":
            self._send_json(200, {"version": self.owner.version})
        elif path == "/api/tags":
            self._send_json(200, {"models": [self._tag(m) for m in self.owner.models]})
        elif path == "/api/ps":
            self._send_json(200, {"models": []})
        else:
            self._not_found()

    def do_POST(self) -> None:
        path = self.path.split("?")[0]
        raw = self._read_body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            self.owner._record("POST", path, raw.decode("utf-8", "replace"))
            self._send_error(400, "invalid character in request body")
            return
        self.owner._record("POST", path, body)
        if path not in ("/api/show", "/api/chat", "/api/generate"):
            self._not_found()
            return
        if not isinstance(body, dict):
            self._send_error(400, "missing request body")
            return
        try:
            if path == "/api/show":
                self._show(body)
            else:
                self._generate(body, chat=path == "/api/chat")
        except _ClientGone:
            self.close_connection = True
            with self.owner._lock:
                self.owner.client_disconnects += 1

    # -- endpoints ---------------------------------------------------------------------

    def _tag(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "model": name,
            "modified_at": MODIFIED_AT,
            "size": 4683087332,
            "digest": _digest(name),
            "details": _details(),
        }

    def _show(self, body: dict[str, Any]) -> None:
        name = body.get("model") or body.get("name") or ""
        if not self.owner.has_model(name):
            self._send_error(404, f"model '{name}' not found")
            return
        self._send_json(
            200,
            {
                "license": "Apache License 2.0",
                "modelfile": f"FROM {name}\n",
                "parameters": 'stop "<|im_end|>"',
                "template": "{{ .Prompt }}",
                "details": _details(),
                "model_info": {
                    "general.architecture": "qwen2",
                    "general.parameter_count": 7615616512,
                    "qwen2.context_length": CONTEXT_LENGTH,
                    "qwen2.embedding_length": 3584,
                    "qwen2.block_count": 28,
                },
                "capabilities": ["completion", "tools"],
                "modified_at": MODIFIED_AT,
            },
        )

    def _generate(self, body: dict[str, Any], *, chat: bool) -> None:
        owner = self.owner
        model = body.get("model")
        if not model:
            self._send_error(400, "model is required")
            return
        if not owner.has_model(model):
            self._send_error(404, f'model "{model}" not found, try pulling it first')
            return
        stream = body.get("stream", True) is not False

        if chat:
            messages = body.get("messages") or []
        else:
            messages = []
            if body.get("system"):
                messages.append({"role": "system", "content": body["system"]})
            if body.get("prompt"):
                messages.append({"role": "user", "content": body["prompt"]})

        base: dict[str, Any] = {"model": model, "created_at": _now()}
        if not messages:  # Ollama answers an empty request by just loading the model
            final = {**base, "done_reason": "load", "done": True}
            final.update({"message": {"role": "assistant", "content": ""}} if chat else {"response": ""})
            self._send_json(200, final)
            return

        reply = owner.reply(messages) if callable(owner.reply) else owner.reply
        pieces = _pieces(reply, owner.chunk_words)
        prompt_words = sum(len(str(m.get("content") or "").split()) for m in messages)
        started = time.monotonic()

        def content(text: str) -> dict[str, Any]:
            return {"message": {"role": "assistant", "content": text}} if chat else {"response": text}

        def final(text: str) -> dict[str, Any]:
            total = max(1, int((time.monotonic() - started) * 1e9))
            out = {
                **base,
                "created_at": _now(),
                **content(text),
                "done": True,
                "done_reason": "stop",
            }
            if not chat:
                out["context"] = list(range(1, min(prompt_words + len(pieces), 64) + 1))
            out.update(
                total_duration=total,
                load_duration=1000,
                prompt_eval_count=prompt_words,
                prompt_eval_duration=max(1, total // 10),
                eval_count=len(pieces),
                eval_duration=max(1, total - total // 10),
            )
            return out

        die_after, error_after = owner.die_after_chunks, owner.error_after_chunks
        limits = [n for n in (die_after, error_after) if n is not None]
        n_sent = max(0, min([len(pieces), *limits]))
        dies = die_after is not None and (error_after is None or die_after <= error_after)
        if not stream:
            for _ in range(n_sent):
                self._wait()
            if dies:
                self._die()  # died while generating: no response at all
            elif error_after is not None:
                self._send_error(500, owner.error_message)
            else:
                self._send_json(200, final(reply))
            return

        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self.wfile.flush()
        except OSError as exc:
            raise _ClientGone from exc
        for piece in pieces[:n_sent]:
            self._wait()
            self._write_chunk({**base, "created_at": _now(), **content(piece), "done": False})
        if dies:
            self._die()  # no final "done": true message, no terminating chunk
            return
        if error_after is not None:
            self._write_chunk({"error": owner.error_message})  # then ends cleanly
        else:
            self._write_chunk(final(""))
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError as exc:
            raise _ClientGone from exc


class OllamaServer:
    """A fake Ollama server on 127.0.0.1, run in a daemon thread.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.

    Args:
        models: model names the server "has" (``/api/tags``); any other model gets
            Ollama's 404. A name without a tag also matches ``name:latest``.
        reply: the assistant's answer, or a function ``reply(messages) -> str`` of the
            chat messages (for ``/api/generate``: ``[{"role": "system", ...}?,
            {"role": "user", "content": prompt}]``).
        chunk_words: words per streamed chunk (leading whitespace kept with each word).
        die_after_chunks: if set, send that many content chunks (at most the whole
            reply) and then drop the connection without the final ``"done": true``
            message or the terminating HTTP chunk (Ollama dying mid-stream). ``0`` drops
            it right after the response headers. For ``"stream": false`` the connection
            is dropped with no response at all.
        error_after_chunks: if set, send that many content chunks, then an in-stream
            ``{"error": error_message}`` line, and end the response cleanly, as Ollama
            does when its model runner fails mid-generation (``"stream": false``:
            HTTP 500 ``{"error": ...}``).
        error_message: the error text for ``error_after_chunks``.
        delay_s: seconds to wait before each chunk (non-streamed answers wait the sum).
        port: port to bind; 0 (default) picks a free one.
        host: address to bind.
        version: what ``/api/version`` reports.

    Attributes:
        url: ``"http://127.0.0.1:PORT"`` (valid once started).
        port: the bound port (valid once started).
        requests: every request received, in order, as :class:`RecordedRequest`
            ``(method, path, body)``; appended under a lock before it is answered.
        client_disconnects: how many streamed answers were cut short because the client
            went away (or the server stopped).

    The constructor options are plain attributes read on each request, so a test may
    change them while the server runs.
    """

    def __init__(
        self,
        *,
        models: Sequence[str] | None = None,
        reply: str | ReplyFn = DEFAULT_REPLY,
        chunk_words: int = 1,
        die_after_chunks: int | None = None,
        error_after_chunks: int | None = None,
        error_message: str = DEFAULT_ERROR,
        delay_s: float = 0.0,
        port: int = 0,
        host: str = "127.0.0.1",
        version: str = "0.5.0",
    ) -> None:
        self.models: list[str] = list(models) if models is not None else [DEFAULT_MODEL]
        self.reply: str | ReplyFn = reply
        self.chunk_words = chunk_words
        self.die_after_chunks = die_after_chunks
        self.error_after_chunks = error_after_chunks
        self.error_message = error_message
        self.delay_s = delay_s
        self.version = version
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.client_disconnects = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError("OllamaServer already started")
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-ollama-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut every open connection, hanging ones too; idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping in delay_s
        httpd.shutdown()  # ends serve_forever within poll_interval
        httpd.cut_all_connections()  # unblocks handlers reading/writing a client socket
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for tests -------------------------------------------------------------

    def has_model(self, name: str) -> bool:
        wanted = _canonical(name)
        return any(_canonical(m) == wanted for m in self.models)

    def requests_to(self, path: str) -> list[Any]:
        """Bodies of the requests received on ``path`` (e.g. ``"/api/chat"``)."""
        with self._lock:
            return [r.body for r in self.requests if r.path == path]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def iter_requests(self) -> Iterator[RecordedRequest]:
        """A snapshot of :attr:`requests`, safe to iterate while the server runs."""
        with self._lock:
            snapshot = list(self.requests)
        return iter(snapshot)

    def _record(self, method: str, path: str, body: Any) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, body))
