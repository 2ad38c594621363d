"""`python -m bench.phase NAME WORK_DIR 'JSON_ARGS'`: run one phase in its own process, print its JSON.

Each phase runs in a child process so that its peak memory is its own and one phase's loaded
models or caches cannot speed up or slow down the next.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from pathlib import Path

PHASES = ("ingest", "retrieval", "generation", "openai_generation", "answering", "embedding")


def main(argv: list[str]) -> None:
    """Dispatch to the phase named in argv[0] with keyword arguments from argv[2]."""
    name, work, kwargs = argv[0], Path(argv[1]), json.loads(argv[2])
    if name not in PHASES:
        raise SystemExit(f"unknown phase '{name}'; choose one of: {', '.join(PHASES)}")
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("chromadb", "bm25s", "sentence_transformers", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    result = importlib.import_module(f"bench.{name}").run(work, **kwargs)
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
