"""Servers the benches and the tests start as child processes: wait until one answers HTTP, then stop it.

One copy of the poll and the terminate-then-kill that bench/soak.py, bench/openai_generation.py
and the tests' app and llama.cpp servers (tests/app_server.py, tests/openai_server.py) share.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

POLL_S = 0.2  # between attempts: a refused connection costs nothing, and a start is seen sooner


def wait_until_up(
    url: str,
    process: subprocess.Popen,
    log: Path,
    timeout: float = 120,
    *,
    name: str = "the app",
    headers: dict[str, str] | None = None,
    request_timeout: float = 2,
) -> None:
    """Return once GET `url` answers 200. A start that fails raises RuntimeError naming `name`, with
    the tail of the log the process writes, so the cause is in the message rather than lost."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(url, headers=headers, timeout=request_timeout).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(POLL_S)
    raise RuntimeError(f"{name} did not answer within {timeout} s:\n{_tail(log)}")


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, so the server shuts down cleanly, then SIGKILL if it has not ended within `timeout`
    seconds, so that no child outlives its run; nothing if it has ended."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:]
