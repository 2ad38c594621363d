"""Library chatter goes to the log, not the screen: the progress bars and debug notes of transformers and bm25s.

transformers draws a "Loading weights" bar whenever it loads a model (the ONNX export, the PyTorch
embedder) and logs through a stderr handler of its own; bm25s sets its logger to DEBUG at import,
so its "Building index from IDs objects" passes any handler an application configures. Neither
offers "log it, don't draw it", so after importing them we make each bar one INFO log line and
bm25s' notes INFO records, both under the application's logging configuration: hidden by default
(the Python API, `rag ask`), shown by `rag -v` and in the app's log. This changes process-wide
library state, as any such setting does; our own ingest bar (rag/cli.py) is not affected.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def quiet_transformers() -> None:
    """Make transformers log through the application's handlers and turn its bars into log lines."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # also huggingface_hub's
    transformers_logging.set_tqdm_hook(_bar_as_log_line)
    transformers_logging.disable_default_handler()
    transformers_logging.enable_propagation()


def _bar_as_log_line(factory: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """One INFO line for a bar transformers would draw; `factory` is its silent bar, bars being off."""
    items = args[0] if args else kwargs.get("iterable")
    total = kwargs.get("total") or (len(items) if hasattr(items, "__len__") else "?")
    log.info("transformers: %s (%s)", kwargs.get("desc") or "working", total)
    return factory(*args, **kwargs)


class _NotesAsInfo(logging.Filter):
    """bm25s' DEBUG notes as INFO records naming bm25s, kept only when the root logger's level lets INFO through."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.msg = f"bm25s: {record.msg}"  # the note alone ("Building index from IDs objects") names no library
        # bm25s' own DEBUG level would let every record through, whatever the application set.
        return record.levelno >= logging.getLogger().getEffectiveLevel()


def quiet_bm25s() -> None:
    """Keep bm25s' notes off the screen unless the application logs at INFO (call after importing it)."""
    logger = logging.getLogger("bm25s")
    if not any(isinstance(f, _NotesAsInfo) for f in logger.filters):
        logger.addFilter(_NotesAsInfo())
