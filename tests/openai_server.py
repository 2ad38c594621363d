"""A real OpenAI-compatible server for the tests of the `openai` backend: llama-cpp-python's own
(`python -m llama_cpp.server`) serving the packaged SmolLM2 as `smollm2` on a loopback port.

Nothing here stands in for the server: it is the process a user would run. Its chat requests are
counted from uvicorn's access log, one `"POST /v1/chat/completions HTTP/1.1"` line per request,
written before the reply's first byte. Not handled: another server on the same log file.

Example::

    with LlamaCppServer() as server:
        rag = RAG(home=..., backend="openai", openai_base_url=server.url)
        ...
        assert server.chat_requests() == 1
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

import openai
from app_server import free_port

from bench.processes import stop, wait_until_up
from rag.generate import embedded_model_path
from rag.settings import Settings

MODEL_ALIAS = "smollm2"
CHAT_LINE = '"POST /v1/chat/completions HTTP/1.1"'
START_TIMEOUT = 60.0  # seconds; it loads the 135M model in two or three


class LlamaCppServer:
    """`python -m llama_cpp.server` on 127.0.0.1: started on entry, stopped on exit; `kill()` and
    `start()` again keep the port and the log, so counts run on across a restart."""

    def __init__(self, port: int | None = None, api_key: str | None = None) -> None:
        self.port = port or free_port()
        self.api_key = api_key
        self.log = Path(tempfile.mkstemp(prefix="llama_cpp_server_", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The base URL an OpenAI client takes (…/v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        model = embedded_model_path(Settings())
        args = ["--model", str(model), "--model_alias", MODEL_ALIAS, "--n_ctx", "4096"]
        args += ["--host", "127.0.0.1", "--port", str(self.port)]
        return [sys.executable, "-m", "llama_cpp.server", *args, *(["--api_key", self.api_key] if self.api_key else [])]

    def start(self) -> None:
        """Start the process and return once GET /v1/models answers."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        env["PYTHONUNBUFFERED"] = "1"  # each access line reaches the log as it is written
        with open(self.log, "a") as out:
            self.process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, env=env)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else None
        try:
            wait_until_up(
                f"{self.url}/models", self.process, self.log, START_TIMEOUT, name="llama_cpp.server", headers=headers
            )
        except BaseException:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL, as when the server crashes: no reply is finished, no socket closed politely."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not ended within 10 s."""
        if self.process is not None:
            stop(self.process, timeout=10)

    def client(self) -> openai.OpenAI:
        """The `openai` client on this server, with its key."""
        return openai.OpenAI(base_url=self.url, api_key=self.api_key or "unused", timeout=120, max_retries=0)

    def chat_requests(self) -> int:
        """How many chat completions the server was asked for, by its access log."""
        return self.log.read_text(errors="replace").count(CHAT_LINE)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
        self.log.unlink(missing_ok=True)
