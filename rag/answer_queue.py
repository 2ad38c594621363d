"""One answer at a time per model, and a bounded line of questions waiting for it.

The built-in model takes every core and llama.cpp is not thread-safe, so the chat and the HTTP
API take turns on each model. Gradio's queue only orders the chat's own events; this line is
shared by every caller in the process. An API request that finds the line full is refused at once
(`Busy`, HTTP 429) instead of waiting without end; the chat, which Gradio's queue already bounds,
waits its turn without a limit.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from rag.errors import Busy

RETRY_AFTER_SECONDS = 10  # about two answers of the built-in model on a small machine


@dataclass
class _Line:
    """The turn of one model and how many wait for it."""

    turn: threading.Lock = field(default_factory=threading.Lock)
    waiting: int = 0


class AnswerQueue:
    """Per-model turns; at most `size` callers wait for a model while it answers."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lines: dict[str, _Line] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def turn(self, model: str, bounded: bool = True) -> Iterator[None]:
        """Hold `model` for one answer; `Busy` when bounded and the line is full."""
        line = self._join(model, bounded)
        try:
            line.turn.acquire()  # a plain Lock: a streamed answer may finish on another thread
        finally:
            with self._lock:
                line.waiting -= 1
        try:
            yield
        finally:
            line.turn.release()

    def _join(self, model: str, bounded: bool) -> _Line:
        """Take a place in the model's line, or refuse when it is full."""
        with self._lock:
            line = self._lines.setdefault(model, _Line())
            busy = line.turn.locked() or line.waiting > 0
            if bounded and busy and line.waiting >= self.size:
                raise Busy(f"{line.waiting} questions are already waiting for {model}; try again in a few seconds")
            line.waiting += 1
            return line
