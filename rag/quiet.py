"""Library chatter goes to the log, not the screen: transformers' progress bars and messages, and
the INFO lines of the libraries that log every request or batch.

transformers draws a "Loading weights" bar whenever it loads a model (the ONNX export, the PyTorch
embedder) and logs through a stderr handler of its own. It offers no "log it, don't draw it", so
after importing it we make each bar one INFO log line under the application's logging
configuration: hidden by default (the Python API, `rag ask`), shown by `rag -v` and in the app's
log. This changes process-wide library state, as any such setting does; our own ingest bar
(rag/cli.py) is not affected.

`quiet_libraries()` is for programs that log at INFO (the app, `rag -v`): httpx logs every request
and the store and model libraries their routine steps, and our own lines would drown in them.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

NOISY_LIBRARIES = ("httpx", "chromadb", "bm25s", "sentence_transformers", "transformers", "urllib3")


def quiet_libraries() -> None:
    """Keep the chattiest libraries to warnings and errors, whatever level the application logs at."""
    for name in NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


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
