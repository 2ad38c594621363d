"""Faster embedding backends, tried against the one in use: speed, and dense retrieval quality.

Variants: sentence-transformers on PyTorch fp32 (the raw library); PyTorch dynamic int8
(`torch.ao.quantization`); the product's ONNX Runtime embedder (`rag/onnx_embedding.py`, fp32,
the default since it was measured here) and its export quantised to int8 weights.
sentence-transformers' own ONNX and OpenVINO backends cannot be installed beside transformers 5
(`optimum-onnx` pins transformers below 4.58; `optimum-intel` pulls torchvision and a CUDA torch).
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


def seed_chunks(work: Path) -> tuple[list[str], list[str]]:
    """The exact texts the product embeds for the seed articles, and each one's doc_id."""
    from rag.chunking import chunk_document, embed_text
    from rag.documents import find_files, read_document
    from rag.embeddings import load_embedder, piece_counter
    from rag.settings import Settings

    settings = Settings(home=work / "home", ollama_host=NO_OLLAMA)
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


def onnx_encoders(work: Path, batch: int) -> dict[str, Encoder]:
    """The product's ONNX embedder (fp32), and the same export quantised to int8 weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from rag.embeddings import load_embedder, resolve_model_path
    from rag.onnx_embedding import OnnxEmbedding, onnx_file, session
    from rag.settings import Settings

    settings = Settings(home=work / "home", model_cache=work / "models", embed_batch_size=batch)
    fp32 = load_embedder(settings)
    if not isinstance(fp32, OnnxEmbedding):
        raise RuntimeError("the ONNX export failed; see the log")
    folder = Path(resolve_model_path(settings.embed_model))
    int8_file = work / "minilm-int8.onnx"
    quantize_dynamic(str(onnx_file(folder, settings.models_path)), str(int8_file), weight_type=QuantType.QInt8)
    int8 = OnnxEmbedding(
        session(int8_file),
        folder / "tokenizer.json",
        embed_batch_size=batch,
        max_length=fp32.max_length,
        dimension=fp32.dimension,
    )
    return {"onnx_fp32": length_sorted(fp32), "onnx_int8": length_sorted(int8)}


def length_sorted(embedder: Any) -> Encoder:
    """Texts embedded longest first, as sentence-transformers' encode and our ingest both order them."""

    def encode(texts: list[str]) -> np.ndarray:
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        vectors = embedder.get_text_embedding_batch([texts[i] for i in order])
        out = np.zeros((len(texts), len(vectors[0])), dtype=np.float32)
        out[order] = np.asarray(vectors, dtype=np.float32)
        return out

    return encode


def quality(encode: Encoder, texts: list[str], doc_ids: list[str], rows: list[dict]) -> dict:
    """Dense search over the chunks: MRR of the first gold article, hit@5 and MRR of the gold sentence.

    With five seed articles, an article hit@5 is always 1; the chunk holding the `support`
    sentence is the finer test.
    """
    from rag.followup import joined_question

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
    from rag.embeddings import load_torch, resolve_model_path
    from rag.settings import Settings

    settings = Settings(home=work / "home", ollama_host=NO_OLLAMA)
    model = load_torch(resolve_model_path(settings.embed_model), settings)._model
    batch = settings.embed_batch_size
    texts, doc_ids = seed_chunks(work)
    encoders = {"torch_fp32": torch_encoder(model, batch), "torch_int8": torch_encoder(torch_int8(model), batch)}
    notes = {"openvino": "not tried: optimum-intel pulls torchvision, which brings a CUDA build of torch"}
    work.mkdir(parents=True, exist_ok=True)
    encoders.update(onnx_encoders(work, batch))
    speed = throughput(encoders, texts * repeat, rounds)
    rows = [r for r in questions() if r["answerable"]]
    variants = {
        name: {"texts_per_s": speed[name], **quality(enc, texts, doc_ids, rows)} for name, enc in encoders.items()
    }
    base = variants["torch_fp32"]["texts_per_s"]
    for values in variants.values():
        values["speedup"] = values["texts_per_s"] / base
    return {"variants": variants, "texts": len(texts) * repeat, "batch_size": batch, "notes": notes}
