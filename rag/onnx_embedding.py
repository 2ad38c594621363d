"""All-MiniLM-L6-v2 run by ONNX Runtime: the default embedder, 1.6x faster than PyTorch here.

sentence-transformers has `backend="onnx"`, but it needs `optimum`, whose releases pin
transformers below 5; so the export, the tokenisation (`tokenizers`, the model's own
tokenizer.json) and the mean pooling and normalisation are done here, for the plain
transformer + mean pooling + normalise stack only (`rag.embeddings.onnx_ready` checks that).
The vectors match sentence-transformers' to 1e-6, so a store does not care which built it.
The export needs torch and takes a few seconds; it is made once per user and cached
(`Settings.models_path`), under a name that is a hash of the model's files.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import time
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.quiet import quiet_transformers

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding

# Bump when the export below changes, so that cached ONNX files are made again.
EXPORT_VERSION = "1"
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# An export takes seconds; a temporary file this old was left by a process that died exporting.
STALE_PARTIAL_SECONDS = 3600


class OnnxEmbedding:
    """A mean-pooled, normalised sentence embedder on an ONNX Runtime session.

    A plain class with the methods our stages call, not a LlamaIndex `BaseEmbedding`: importing
    any `llama_index.core` module runs that package's `__init__`, about 1.2 s of a fresh reader's
    3 s start, and retrieval needs nothing else from it. `as_llama_index()` gives LlamaIndex code
    (an index that takes an `embed_model`) a real `BaseEmbedding` over this one.
    """

    def __init__(
        self,
        session: Any,
        tokenizer_file: Path,
        model_name: str = "unknown",
        embed_batch_size: int = 10,
        max_length: int = 256,
        dimension: int = 384,
    ) -> None:
        from tokenizers import Tokenizer

        self.model_name = model_name
        self.embed_batch_size = embed_batch_size
        self.max_length = max_length
        self.dimension = dimension
        self._session = session
        self._tokenizer_file = tokenizer_file
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        # The file's own settings (128 pieces, fixed padding) are not the model's: sentence-transformers
        # reads up to max_seq_length pieces and pads each batch to its longest text.
        pad = self._tokenizer.padding or {}
        self._tokenizer.enable_truncation(self.max_length)
        self._tokenizer.enable_padding(pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"))

    @functools.cached_property
    def _counter(self) -> Any:
        """A second tokenizer that neither truncates nor pads, made when first needed (chunking only):
        loading one takes 50 ms of a fresh reader's start."""
        from tokenizers import Tokenizer

        counter = Tokenizer.from_file(str(self._tokenizer_file))
        counter.no_truncation()
        counter.no_padding()
        return counter

    def count_pieces(self, text: str) -> list[int]:
        """Word-piece ids of a text, without special tokens and without truncation."""
        return self._counter.encode(text, add_special_tokens=False).ids

    def encode(self, texts: list[str]) -> list[list[float]]:
        """Unit vectors for one batch of texts: mean of the token vectors under the attention mask."""
        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        hidden = self._session.run(None, feeds)[0]
        mask = feeds["attention_mask"][..., None].astype(hidden.dtype)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.tolist()

    def get_query_embedding(self, query: str) -> list[float]:
        """The vector of a question (the model embeds questions and texts alike)."""
        return self.encode([query])[0]

    def get_text_embedding(self, text: str) -> list[float]:
        """The vector of one text."""
        return self.encode([text])[0]

    def get_text_embedding_batch(self, texts: list[str], **_: Any) -> list[list[float]]:
        """Vectors of many texts, `embed_batch_size` at a time (as LlamaIndex's embedders batch)."""
        size = max(self.embed_batch_size, 1)
        return [vector for i in range(0, len(texts), size) for vector in self.encode(texts[i : i + size])]

    def as_llama_index(self) -> BaseEmbedding:
        """This embedder as a LlamaIndex `BaseEmbedding`, for LlamaIndex code that takes an embed model."""
        return _llama_index_class()(self)


@functools.cache
def _llama_index_class() -> type[BaseEmbedding]:
    """LlamaIndex's `BaseEmbedding` over an `OnnxEmbedding`, defined on first use (its import is slow)."""
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from pydantic import PrivateAttr

    class LlamaIndexOnnxEmbedding(BaseEmbedding):
        _inner: OnnxEmbedding = PrivateAttr()

        def __init__(self, inner: OnnxEmbedding) -> None:
            super().__init__(model_name=inner.model_name, embed_batch_size=inner.embed_batch_size)
            self._inner = inner

        @classmethod
        def class_name(cls) -> str:
            return "OnnxEmbedding"

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._inner.encode([query])[0]

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._inner.encode([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._inner.encode(texts)

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    return LlamaIndexOnnxEmbedding


def onnx_file(folder: Path, cache: Path) -> Path:
    """Where the export of the model in `folder` is cached, named for the content of the model's files.

    Content rather than path or mtime: every store, project and virtualenv with the same model shares
    one export, while a changed file or another model gets its own. Hashing the 90 MB takes ~50 ms.
    """
    digest = hashlib.sha256(EXPORT_VERSION.encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with path.open("rb") as handle:
            content = hashlib.file_digest(handle, "sha256").hexdigest()
        digest.update(f"\0{path.relative_to(folder).as_posix()}\0{content}".encode())
    return cache / f"{folder.name}-{digest.hexdigest()[:16]}.onnx"


def export_onnx(folder: Path, target: Path) -> None:
    """Export the model's transformer (its last hidden state) to ONNX at `target`.

    Written under a temporary name and renamed, so processes exporting at once never read half a file.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    quiet_transformers()
    model = SentenceTransformer(str(folder), device="cpu")

    class LastHidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = model.tokenizer(["a sample", "another sample text"], padding=True, return_tensors="pt")
    partial = _partial_file(target)
    try:
        with warnings.catch_warnings():  # the exporter's deprecation and tracing notes are not ours to act on
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHidden(model[0].auto_model).eval(),
                tuple(sample[name] for name in ONNX_INPUTS),
                str(partial),
                input_names=list(ONNX_INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*ONNX_INPUTS, "last_hidden_state"]},
                opset_version=17,
                dynamo=False,
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _partial_file(target: Path) -> Path:
    """A name no other export uses, beside `target`; first drops the files of exports killed midway."""
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}."
    for stale in target.parent.glob(f"{prefix}*.tmp"):
        with contextlib.suppress(OSError):  # another process may be removing it too
            if time.time() - stale.stat().st_mtime > STALE_PARTIAL_SECONDS:
                stale.unlink()
    # Named, not made: the exporter creates it with the usual permissions (mkstemp's are owner-only).
    return target.with_name(f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")


def session(path: Path) -> Any:
    """An ONNX Runtime session on the CPU, logging errors only, whose threads sleep between runs."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    # By default the intra-op threads spin after each operator, waiting for more work: on two cores
    # that spinning takes the CPU from the lexical search running beside a question's embedding
    # and from other processes. Without it, at a load average of 2 to 3 from other work, hybrid
    # retrieval at 100k chunks took 23 ms at p50 against 34, a question's embedding 9 ms against
    # 15; on a quieter machine the p95 still drops, and ingest's batches of 32 take as long as before.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
