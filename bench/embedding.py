"""Faster embedding backends, tried against the one in use: speed, and dense retrieval quality.

Variants: the current PyTorch fp32 model; PyTorch dynamic int8 (`torch.ao.quantization`, no new
dependency); ONNX Runtime fp32 and int8 (ONNX Runtime ships with chromadb, but exporting the model
needs the `onnx` package, and sentence-transformers' own `backend="onnx"` needs `optimum`, which
pins transformers below 5; those variants are skipped when `onnx` cannot be imported).
Quality is the rank of the gold article and of the chunk holding the gold `support` sentence in
dense search over the seed articles' chunks, for the answerable questions of `eval/qa.jsonl`
(follow-ups joined to their previous question, as the product does).
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.corpus import SEEDS, questions
from bench.measure import NO_OLLAMA

Encoder = Callable[[list[str]], np.ndarray]


def seed_chunks() -> tuple[list[str], list[str]]:
    """The exact texts the product embeds for the seed articles, and each one's doc_id."""
    from rag.chunking import chunk_document, embed_text
    from rag.documents import find_files, read_document
    from rag.embeddings import load_embedder, piece_counter
    from rag.settings import Settings

    settings = Settings(ollama_host=NO_OLLAMA)
    count = piece_counter(load_embedder(settings))
    texts, doc_ids = [], []
    for path, doc_id in find_files(SEEDS):
        doc = read_document(path, doc_id, settings.max_file_bytes)
        for chunk in chunk_document(doc, count, settings.chunk_tokens, settings.chunk_overlap):
            texts.append(embed_text(doc.title, chunk.text))
            doc_ids.append(doc_id)
    return texts, doc_ids


def torch_encoder(model: Any, batch: int) -> Encoder:
    """sentence-transformers' own encode, unit vectors."""
    return lambda texts: np.asarray(model.encode(texts, batch_size=batch, normalize_embeddings=True))


def torch_int8(model: Any) -> Any:
    """A copy of the model with every Linear layer quantised to int8 weights (dynamic activations)."""
    import torch

    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)


def onnx_encoders(model: Any, work: Path, batch: int) -> dict[str, Encoder]:
    """ONNX Runtime fp32 and int8 encoders of the model's transformer, with the same pooling."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32, int8 = work / "minilm.onnx", work / "minilm-int8.onnx"
    _export(model, fp32)
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 0  # all cores, as torch uses
    sessions = {
        name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for name, path in (("onnx_fp32", fp32), ("onnx_int8", int8))
    }
    return {name: _onnx_encode(session, model, batch) for name, session in sessions.items()}


def _export(model: Any, path: Path) -> None:
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    sample = model.tokenizer(["a sample", "another sample text"], padding=True, return_tensors="pt")
    torch.onnx.export(
        LastHidden(model[0].auto_model).eval(),
        tuple(sample[n] for n in names),
        str(path),
        input_names=names,
        output_names=["last_hidden_state"],
        dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
        opset_version=17,
        dynamo=False,
    )


def _onnx_encode(session: Any, model: Any, batch: int) -> Encoder:
    """Length-sorted batches, mean pooling and normalisation, as sentence-transformers does."""

    def encode(texts: list[str]) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), model.get_embedding_dimension()), dtype=np.float32)
        for start in range(0, len(texts), batch):
            picked = order[start : start + batch]
            tokens = model.tokenizer(
                [texts[i] for i in picked],
                padding=True,
                truncation=True,
                max_length=model.max_seq_length,
                return_tensors="np",
            )
            feeds = {k: tokens[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
            hidden = session.run(None, feeds)[0]
            mask = tokens["attention_mask"][..., None]
            pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1)
            out[picked] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out

    return encode


def quality(encode: Encoder, texts: list[str], doc_ids: list[str], rows: list[dict]) -> dict:
    """Dense search over the chunks: MRR of the first gold article, hit@5 and MRR of the gold sentence.

    With five seed articles, an article hit@5 is always 1; the chunk holding the `support`
    sentence is the finer test.
    """
    from rag.answer import joined_question

    asked = [joined_question(r["question"], r.get("history")) for r in rows]
    scores = encode(asked) @ encode(texts).T
    flat = [" ".join(t.split()) for t in texts]
    doc_rr, chunk_rr, chunk_hit = [], [], []
    for row, row_scores in zip(rows, scores):
        order = list(np.argsort(-row_scores))
        doc_rank = next((n for n, i in enumerate(order, 1) if doc_ids[i] in row["doc_ids"]), None)
        support = " ".join(row["support"].split())[:60]
        chunk_rank = next((n for n, i in enumerate(order, 1) if support and support in flat[i]), None)
        doc_rr.append(1 / doc_rank if doc_rank else 0.0)
        chunk_rr.append(1 / chunk_rank if chunk_rank else 0.0)
        chunk_hit.append(chunk_rank is not None and chunk_rank <= 5)
    return {
        "article_mrr": statistics.mean(doc_rr),
        "support_hit_at_5": statistics.mean(chunk_hit),
        "support_mrr": statistics.mean(chunk_rr),
        "questions": len(rows),
    }


def throughput(encoders: dict[str, Encoder], texts: list[str], rounds: int) -> dict[str, float]:
    """Best-of-rounds texts per second of each encoder, the encoders taking turns each round."""
    best: dict[str, float] = {}
    for encode in encoders.values():
        encode(texts[:8])  # warm-up
    for _ in range(rounds):
        for name, encode in encoders.items():
            started = time.perf_counter()
            encode(texts)
            best[name] = max(best.get(name, 0.0), len(texts) / (time.perf_counter() - started))
    return best


def run(work: Path, repeat: int, rounds: int) -> dict:
    """The embedding phase: every variant that can run here, its speed and its retrieval quality."""
    from rag.embeddings import load_embedder
    from rag.settings import Settings

    settings = Settings(ollama_host=NO_OLLAMA)
    model = load_embedder(settings)._model
    batch = settings.embed_batch_size
    texts, doc_ids = seed_chunks()
    encoders = {"torch_fp32": torch_encoder(model, batch), "torch_int8": torch_encoder(torch_int8(model), batch)}
    notes = {}
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)

        work.mkdir(parents=True, exist_ok=True)
        encoders.update(onnx_encoders(model, work, batch))
    except ImportError as exc:
        notes["onnx"] = f"skipped: {exc}; sentence-transformers' ONNX/OpenVINO backends need `optimum`"
    speed = throughput(encoders, texts * repeat, rounds)
    rows = [r for r in questions() if r["answerable"]]
    variants = {
        name: {"texts_per_s": speed[name], **quality(enc, texts, doc_ids, rows)} for name, enc in encoders.items()
    }
    base = variants["torch_fp32"]["texts_per_s"]
    for values in variants.values():
        values["speedup"] = values["texts_per_s"] / base
    return {"variants": variants, "texts": len(texts) * repeat, "batch_size": batch, "notes": notes}
