"""The lexical index changes with the store: by this process, by another process, through a Chroma
server for another machine, after a crash; and it searches inside a set of articles when asked."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
from conftest import SEEDS, make_rag
from test_chroma_server import ChromaServer, chroma_server, collection, two_machines  # noqa: F401 - fixtures
from test_hardening import ingest_in_background, stored_ids, wait_for_change, write_articles
from test_ingest import run_cli

from rag import RAG
from rag.lexical import LexicalIndex, _top

NEW_ARTICLE = "Envoy visits the Kurils\n\nThe Zorvathian envoy Quellimar Ostrava met the Kuril delegation in Tokyo.\n"
TERM = "Quellimar"  # in no seed article


def lexical_docs(rag: RAG, question: str) -> list[str]:
    """doc_ids of the passages this process retrieves for a question by its words (BM25)."""
    return [p.doc_id for p in rag.retrieve(question, k=3) if "bm25" in p.found_by]


def other_process_docs(home: Path, cwd: Path, question: str) -> list[str]:
    """doc_ids a fresh `rag retrieve` process finds by words for a question."""
    done = run_cli("retrieve", "--json", "-k", "3", question, home=home, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return [p["doc_id"] for p in json.loads(done.stdout)["passages"] if "bm25" in p["found_by"]]


def test_an_ingested_article_is_found_by_its_words_at_once_here_and_by_another_process_and_gone_when_removed(
    tmp_path: Path, corpus: Path
) -> None:
    home = tmp_path / ".rag"
    rag = make_rag(home, corpus)
    rag.ingest([corpus])
    assert lexical_docs(rag, TERM) == []
    (corpus / "envoy.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    rag.ingest([corpus])
    assert lexical_docs(rag, TERM) == ["envoy.txt"]
    assert other_process_docs(home, tmp_path, TERM) == ["envoy.txt"]
    (corpus / "envoy.txt").unlink()
    assert rag.ingest([corpus]).removed == ("envoy.txt",)
    assert lexical_docs(rag, TERM) == []
    assert other_process_docs(home, tmp_path, TERM) == []
    assert rag.retriever.index.difference(rag.store) == (set(), set())


def test_a_running_reader_sees_another_processes_ingest_by_its_words(tmp_path: Path, corpus: Path) -> None:
    home = tmp_path / ".rag"
    reader = make_rag(home, corpus)
    reader.ingest([corpus])
    assert reader.retrieve("Iikura guest house")  # running, with its view of the index loaded
    (corpus / "envoy.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    assert run_cli("ingest", str(corpus), home=home, cwd=tmp_path).returncode == 0
    assert lexical_docs(reader, TERM) == ["envoy.txt"]
    (corpus / "envoy.txt").unlink()
    assert run_cli("ingest", str(corpus), home=home, cwd=tmp_path).returncode == 0
    assert lexical_docs(reader, TERM) == []


def test_another_machine_on_a_chroma_server_catches_up_with_only_what_changed(
    chroma_server: ChromaServer,  # noqa: F811 - the fixture
    collection: str,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    (a, corpus_a), (b, _) = two_machines(chroma_server, collection, tmp_path)
    a.ingest([corpus_a])
    assert b.retrieve("Iikura guest house") and lexical_docs(b, TERM) == []  # b's own index, from the server
    (corpus_a / "envoy.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    written = a.ingest([corpus_a]).chunks_written
    assert b.retriever.index.catch_up(b.store) == (written, 0)  # only the new article's chunks
    assert lexical_docs(b, TERM) == ["envoy.txt"]
    (corpus_a / "envoy.txt").unlink()
    a.ingest([corpus_a])
    assert lexical_docs(b, TERM) == [] and lexical_docs(a, TERM) == []
    assert b.retriever.index.difference(b.store) == (set(), set())


@pytest.mark.slow
def test_kill_9_during_ingest_then_ingest_leaves_the_lexical_index_and_chroma_with_the_same_ids(
    tmp_path: Path,
) -> None:
    corpus, home = tmp_path / "generated", tmp_path / ".rag"
    write_articles(corpus, 20)
    rag = make_rag(home, corpus)
    rag.ingest([corpus])
    write_articles(corpus, 100, start=20, version=1)  # several batches to write
    marker = home / "store.version"
    before = marker.read_text()
    process = ingest_in_background(home, corpus, tmp_path)
    try:
        wait_for_change(marker, before, process)  # a batch is on its way into Chroma
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert run_cli("ingest", str(corpus), home=home, cwd=tmp_path).returncode == 0
    check = run_cli("info", "--check", home=home, cwd=tmp_path)
    assert check.returncode == 0 and "holds exactly the store's chunk ids" in check.stdout, check.stdout
    assert set(stored_ids(rag)) == rag.retriever.index.ids()


def test_info_check_finds_chunks_chroma_holds_and_the_lexical_index_lacks(tmp_path: Path, corpus: Path) -> None:
    home = tmp_path / ".rag"
    rag = make_rag(home, corpus)
    rag.ingest([corpus])
    assert run_cli("info", "--check", home=home, cwd=tmp_path).returncode == 0
    (corpus / "envoy.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    rag.ingest([corpus])
    rag.retriever.index.remove(rag.store.documents()["envoy.txt"].chunk_ids)  # as a crash between the writes
    check = run_cli("info", "--check", home=home, cwd=tmp_path)
    assert check.returncode == 1 and "1 chunks missing, 0 extra" in check.stdout, check.stdout
    assert run_cli("ingest", str(corpus), home=home, cwd=tmp_path).returncode == 0  # repairs it
    assert run_cli("info", "--check", home=home, cwd=tmp_path).returncode == 0


def test_search_restricted_to_some_articles_ranks_only_their_chunks(seeded_rag: RAG) -> None:
    index, talks = seeded_rag.retriever.index, "Where did Lavrov and Kishida hold talks?"
    doc_of = {cid: doc.doc_id for doc in seeded_rag.store.documents().values() for cid in doc.chunk_ids}
    everywhere = index.search(talks, 20)
    assert len({doc_of[cid] for cid, _ in everywhere}) > 2
    scope = {"000_2668febe4f0e43ad.txt", "003_4d11091f11b44f0d.txt"}
    inside = index.search(talks, 3, doc_ids=scope)
    assert len(inside) == 3 and {doc_of[cid] for cid, _ in inside} <= scope
    assert inside == [hit for hit in everywhere if doc_of[hit[0]] in scope][:3]  # same scores, same order
    assert index.search("Takeo Mori", 5, doc_ids={"002_5c202a017dd63dc4.txt"}) == []  # he is only in 003
    assert index.search(talks, 5, doc_ids=set()) == []


def test_compaction_keeps_every_result_and_score(tmp_path: Path) -> None:
    index = LexicalIndex(tmp_path / "index.sqlite3")
    texts = [p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))]
    index.add((f"chunk-{n}", f"doc-{n}", text) for n, text in enumerate(texts))
    index.remove(["chunk-1"])
    questions = ["Where did Lavrov and Kishida hold talks?", "Takeo Mori", "Article 107 of the UN Charter"]
    as_delta = [index.search(q, 3) for q in questions]
    assert index.compact(force=True)
    as_base = [index.search(q, 3) for q in questions]
    fresh = [LexicalIndex(index.path).search(q, 3) for q in questions]  # a new reader
    for hits in (as_base, fresh):  # the base scores rows as the delta did (float32 there)
        assert [[cid for cid, _ in h] for h in hits] == [[cid for cid, _ in h] for h in as_delta]
        assert [s for h in hits for _, s in h] == pytest.approx([s for h in as_delta for _, s in h], rel=1e-5)
    assert all(h and all(cid != "chunk-1" for cid, _ in h) for h in as_delta)


def test_scores_follow_the_average_length_when_longer_chunks_are_added(tmp_path: Path) -> None:
    # Each base row's length norm is kept between searches; it must change with the average.
    index = LexicalIndex(tmp_path / "index.sqlite3")
    texts = [p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))]
    question = "Where did Lavrov and Kishida hold talks?"
    index.add((f"chunk-{n}", f"doc-{n}", text[:400]) for n, text in enumerate(texts))
    assert index.compact(force=True)
    before = index.search(question, 3)
    index.add((f"long-{n}", f"long-{n}", text * 3) for n, text in enumerate(texts))  # the delta
    after = index.search(question, 3)
    index.compact(force=True)
    rebuilt = LexicalIndex(index.path).search(question, 3)
    assert [cid for cid, _ in after] == [cid for cid, _ in rebuilt]
    assert [s for _, s in after] == pytest.approx([s for _, s in rebuilt], rel=1e-5)
    assert [s for _, s in after] != pytest.approx([s for _, s in before], rel=1e-3)


def test_the_best_rows_are_those_numpy_selection_finds_with_or_without_equal_scores() -> None:
    # `_top` sorts only the rows above a sample's floor; the ranking must be argpartition's exactly.
    rng = np.random.default_rng(7)
    for trial in range(200):
        scores = rng.random(int(rng.integers(1, 30_000)), dtype=np.float32) * 10
        scores[rng.random(len(scores)) < rng.random()] = 0  # rows holding none of the terms
        if trial % 3 == 0:
            scores = np.round(scores, 1)  # many equal scores
        k = int(rng.integers(1, 40))
        ranked = [(int(i), float(scores[i])) for i in _top(scores, k) if scores[i] > 0]
        expected = [(int(i), float(scores[i])) for i in np.argpartition(-scores, min(k, len(scores)) - 1)[:k]]
        assert sorted(ranked, key=lambda r: -r[1]) == sorted([r for r in expected if r[1] > 0], key=lambda r: -r[1])
