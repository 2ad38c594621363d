"""The embedder: ONNX Runtime by default, with the same vectors as sentence-transformers on PyTorch."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rag import RAG
from rag.embeddings import (
    EmbeddingCache,
    llama_index_embedding,
    load_embedder,
    model_limit,
    piece_counter,
    resolve_model_path,
)
from rag.onnx_embedding import OnnxEmbedding, onnx_file, session
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TEXTS = [
    "Where did Lavrov and Kishida hold talks?",
    "TOKYO, April 15. /TASS/. Japan's position on signing a peace treaty with Russia has not changed.",
    "Ünïcödé, emoji 🗾 and 日本語 all go through the same word pieces.",
    # Longer than the model reads: both must cut it at 256 pieces the same way.
    (ROOT / "seeds" / "000_2668febe4f0e43ad.txt").read_text(encoding="utf-8"),
]


def settings_for(cache: Path, **overrides: object) -> Settings:
    return Settings(home=cache.parent / ".rag", model_cache=cache, **overrides)


def test_onnx_embedder_gives_the_vectors_sentence_transformers_gives(tmp_path: Path) -> None:
    cache = tmp_path / "models"
    onnx = load_embedder(settings_for(cache))
    torch = load_embedder(settings_for(cache, embed_backend="torch"))
    assert isinstance(onnx, OnnxEmbedding) and not isinstance(torch, OnnxEmbedding)
    assert len(list(cache.glob("*.onnx"))) == 1  # exported into the configured folder
    ours, theirs = np.array(onnx.get_text_embedding_batch(TEXTS)), np.array(torch.get_text_embedding_batch(TEXTS))
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    assert np.abs(ours - theirs).max() < 1e-5
    query = "Who is Takeo Mori?"
    assert np.abs(np.array(onnx.get_query_embedding(query)) - torch.get_query_embedding(query)).max() < 1e-5
    assert model_limit(onnx) == model_limit(torch) == 256
    assert [piece_counter(onnx)(t) for t in TEXTS] == [piece_counter(torch)(t) for t in TEXTS]


def test_llama_index_gets_the_onnx_embedders_vectors(tmp_path: Path) -> None:
    from llama_index.core.base.embeddings.base import BaseEmbedding

    onnx = load_embedder(settings_for(tmp_path / "models", embed_batch_size=2))
    wrapped = llama_index_embedding(onnx)
    assert isinstance(wrapped, BaseEmbedding) and wrapped.embed_batch_size == 2
    assert wrapped.get_text_embedding_batch(TEXTS) == onnx.get_text_embedding_batch(TEXTS)
    assert wrapped.get_query_embedding(TEXTS[0]) == onnx.get_query_embedding(TEXTS[0])
    torch = load_embedder(settings_for(tmp_path / "models", embed_backend="torch"))
    assert llama_index_embedding(torch) is torch  # already LlamaIndex's


HEAVY = ("llama_cpp", "llama_index.core", "torch")


def in_new_process(rag: RAG, call: str, shown: str) -> list[str]:
    """What a new process prints of `shown` after `found = RAG(<rag's store>).<call>`, then the
    heavy modules it imported."""
    script = (
        f"import sys; from rag import RAG; found = RAG(home={str(rag.settings.home)!r}, backend='embedded').{call}; "
        f"print({shown}, sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_a_new_process_retrieves_without_importing_llama_index_or_torch(seeded_rag: RAG) -> None:
    # LlamaIndex's package import alone took about 1.2 s of a 3 s start (bench/README.md).
    printed = in_new_process(seeded_rag, "retrieve('Where did Lavrov and Kishida hold talks?')", "len(found)")
    assert printed[-2:] == [str(seeded_rag.settings.top_k), "[]"], printed  # the default passages, found


def test_a_quoted_answer_in_a_new_process_loads_neither_llama_cpp_nor_torch(seeded_rag: RAG) -> None:
    # Loading llama.cpp and the GGUF file took 3.5 s of a fresh `rag ask`; a quote never generates.
    printed = in_new_process(
        seeded_rag, "ask('Where did Lavrov and Kishida hold talks?')", "found.how, 'Iikura' in found.text"
    )
    assert printed[-3:] == ["quote", "True", "[]"], printed


def test_export_is_made_once_and_then_reused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "models"
    with caplog.at_level(logging.INFO, logger="rag.embeddings"):
        load_embedder(settings_for(cache))
        exported = next(cache.glob("*.onnx"))
        stamp = exported.stat().st_mtime_ns
        again = load_embedder(settings_for(cache))
    assert isinstance(again, OnnxEmbedding)
    assert exported.stat().st_mtime_ns == stamp
    assert sum("exporting the embedding model" in r.message for r in caplog.records) == 1


def test_damaged_export_falls_back_to_pytorch_and_is_made_again(tmp_path: Path) -> None:
    cache = tmp_path / "models"
    load_embedder(settings_for(cache))
    exported = next(cache.glob("*.onnx"))
    exported.write_bytes(b"not an onnx file")
    fallback = load_embedder(settings_for(cache))
    assert not isinstance(fallback, OnnxEmbedding)  # still embeds, with PyTorch
    assert len(fallback.get_query_embedding("Kuril Islands")) == 384
    assert not exported.exists()
    assert isinstance(load_embedder(settings_for(cache)), OnnxEmbedding)


def test_export_that_cannot_be_written_falls_back_to_pytorch(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache folder cannot be made inside a file")
    embedder = load_embedder(settings_for(blocker / "models"))
    assert not isinstance(embedder, OnnxEmbedding)
    assert len(embedder.get_query_embedding("Kuril Islands")) == 384


def test_a_store_built_with_pytorch_answers_onnx_queries(tmp_path: Path, corpus: Path) -> None:
    home, cache = tmp_path / ".rag", tmp_path / "models"
    RAG(home=home, corpus=corpus, model_cache=cache, embed_backend="torch").ingest([corpus])
    rag = RAG(home=home, corpus=corpus, model_cache=cache)
    assert rag.ingest([corpus]).chunks_written == 0  # same model, same store: nothing to embed again
    assert isinstance(rag.embedder, OnnxEmbedding)
    assert rag.retrieve("Iikura guest house", k=3)[0].doc_id == "002_5c202a017dd63dc4.txt"


def test_the_default_model_resolves_to_the_packaged_folder() -> None:
    folder = Path(resolve_model_path("all-MiniLM-L6-v2"))
    assert (folder / "tokenizer.json").is_file() and (folder / "model.safetensors").is_file()


def test_a_model_the_onnx_path_cannot_reproduce_runs_on_pytorch(tmp_path: Path) -> None:
    import json
    import shutil

    # The packaged model with CLS pooling instead of mean pooling: another model as far as we know.
    folder = tmp_path / "cls-model"
    shutil.copytree(resolve_model_path("all-MiniLM-L6-v2"), folder)
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config))
    embedder = load_embedder(settings_for(tmp_path / "models", embed_model=str(folder)))
    assert not isinstance(embedder, OnnxEmbedding)
    assert not (tmp_path / "models").exists()  # nothing exported
    mean = load_embedder(settings_for(tmp_path / "models"))
    assert np.abs(np.array(embedder.get_query_embedding("Kuril")) - mean.get_query_embedding("Kuril")).max() > 1e-3


def test_a_second_store_reuses_the_export_in_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("RAG_MODEL_CACHE")  # the session's shared folder: here the default is under test
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    first, second = Settings(home=tmp_path / "one" / ".rag"), Settings(home=tmp_path / "two" / ".rag")
    assert first.models_path == second.models_path == tmp_path / "user-cache" / "rag-articles" / "models"
    with caplog.at_level(logging.INFO, logger="rag.embeddings"):
        assert isinstance(load_embedder(first), OnnxEmbedding)
        (exported,) = first.models_path.glob("*.onnx")
        inode = exported.stat().st_ino
        assert isinstance(load_embedder(second), OnnxEmbedding)
    assert sum("exporting the embedding model" in r.message for r in caplog.records) == 1
    assert exported.stat().st_ino == inode  # not written again
    assert not (tmp_path / "one" / ".rag" / "models").exists() and not (tmp_path / "two" / ".rag" / "models").exists()


def test_the_model_cache_setting_overrides_the_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_MODEL_CACHE", str(tmp_path / "mine"))
    assert Settings().models_path == tmp_path / "mine"
    assert Settings(model_cache=tmp_path / "other").models_path == tmp_path / "other"


def test_the_export_is_named_for_the_model_files_content(tmp_path: Path) -> None:
    import shutil

    packaged = Path(resolve_model_path("all-MiniLM-L6-v2"))
    copy = tmp_path / "model"
    shutil.copytree(packaged, copy)
    cache = tmp_path / "models"
    assert onnx_file(copy, cache) == onnx_file(packaged, cache)  # the same model, wherever it is installed
    (copy / "config.json").write_text((copy / "config.json").read_text() + "\n")
    assert onnx_file(copy, cache) != onnx_file(packaged, cache)  # a changed file is another model


def test_processes_exporting_at_once_never_show_half_a_file(tmp_path: Path) -> None:
    folder, target = resolve_model_path("all-MiniLM-L6-v2"), tmp_path / "models" / "model.onnx"
    export = f"from pathlib import Path; from rag.onnx_embedding import export_onnx; export_onnx(Path({folder!r}), Path({str(target)!r}))"
    exporters = [subprocess.Popen([sys.executable, "-c", export], stderr=subprocess.PIPE) for _ in range(2)]
    while any(p.poll() is None for p in exporters):
        if target.is_file():  # the first one done: the other is still writing beside it
            session(target)  # raises on a partly written file
        time.sleep(0.05)
    assert [p.wait() for p in exporters] == [0, 0], [p.stderr.read() for p in exporters]
    assert [p.name for p in target.parent.iterdir()] == ["model.onnx"]  # no temporary files left
    assert len(OnnxEmbedding(session(target), Path(folder) / "tokenizer.json").encode(["Kuril Islands"])[0]) == 384


class Counted:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: object) -> None:
        self.inner, self.embedded = inner, []
        self.dimension = 384
        self.count_pieces = inner.count_pieces  # type: ignore[attr-defined]

    def get_text_embedding_batch(self, texts: list[str]) -> list[list[float]]:
        self.embedded += texts
        return self.inner.get_text_embedding_batch(texts)  # type: ignore[attr-defined]


def test_the_embedding_cache_embeds_each_text_once_and_keeps_the_latest(tmp_path: Path) -> None:
    real = load_embedder(settings_for(tmp_path / "models"))
    counted = Counted(real)
    cache = EmbeddingCache(counted, size=3)  # type: ignore[arg-type]
    first = cache.vectors([*TEXTS[:3], TEXTS[0]])
    assert counted.embedded == TEXTS[:3]  # a repeat in one call is embedded once
    assert np.allclose(first, np.array(real.get_text_embedding_batch([*TEXTS[:3], TEXTS[0]])), atol=1e-5)
    again = cache.vectors([TEXTS[2], TEXTS[0]])
    assert counted.embedded == TEXTS[:3] and np.array_equal(again, first[[2, 0]])  # nothing embedded again
    cache.vectors([TEXTS[3]])  # a fourth text: the one used longest ago (TEXTS[1]) goes
    assert len(cache) == 3
    cache.vectors([TEXTS[0], TEXTS[1]])
    assert counted.embedded == [*TEXTS[:3], TEXTS[3], TEXTS[1]]
    assert cache.vectors([]).shape == (0, 384)


def test_a_question_asked_again_embeds_nothing_and_gets_the_same_answer(seeded_rag: RAG) -> None:
    rag = RAG(seeded_rag.settings, backend="embedded")
    question = "Which treaty did Japan and the United States sign in 1960?"
    first = rag.ask(question)
    kept = len(rag.embedding_cache)
    assert kept > 10  # the question and the passages' sentences
    counted = Counted(rag.embedder)
    rag.embedding_cache.embedder = counted  # type: ignore[assignment]
    second = rag.ask(question)
    assert counted.embedded == [] and len(rag.embedding_cache) == kept
    assert second.text == first.text and second.evidence == first.evidence
    off = RAG(seeded_rag.settings, backend="embedded", embedding_cache_texts=0)
    assert off.ask(question).text == first.text and len(off.embedding_cache) == 0
