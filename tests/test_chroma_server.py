"""Chroma as a server: `RAG_CHROMA_URL` sends ingest, retrieval and answers to a real `chroma run`.

A server is how the store is shared past one machine: each "machine" here is a RAG object or a
`rag` process with a home folder of its own, all talking to one server on 127.0.0.1.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SEEDS, make_rag
from test_hardening import Tally, assert_consistent, free_port, process_env, stored_ids, tally_fixture, write_articles

import rag.ingest
from bench.processes import stop, wait_until_up
from rag import RAG, StoreError, StoreMismatch
from rag.settings import Settings
from rag.store import Store

CHROMA = Path(sys.executable).parent / "chroma"
TALKS = "Where did Lavrov and Kishida hold talks?"

tally = tally_fixture("chroma server")


class ChromaServer:
    """`chroma run` on 127.0.0.1 at a free port, storing in `path`; it can be stopped and started again."""

    def __init__(self, path: Path) -> None:
        self.path, self.port = path, free_port()
        self.log = path.parent / f"chroma-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """Where clients reach it."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> ChromaServer:
        """Start the server and return once it answers its heartbeat."""
        command = [str(CHROMA), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.log, "a") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        heartbeat = f"{self.url}/api/v2/heartbeat"
        wait_until_up(heartbeat, self.process, self.log, timeout, name="chroma run", request_timeout=1)
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 20 s) and wait until it is gone."""
        if self.process is not None:
            stop(self.process, timeout=20)

    def crash(self) -> None:
        """SIGKILL the server, as a crash would, and wait until it is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """One Chroma server for the module; each test uses a collection of its own."""
    if not CHROMA.exists():
        pytest.fail(f"{CHROMA} is missing: chromadb ships the `chroma` command")
    server = ChromaServer(tmp_path_factory.mktemp("chroma") / "data").start()
    yield server
    server.stop()


@pytest.fixture
def collection() -> str:
    """A collection name no other test uses."""
    return f"test{uuid.uuid4().hex[:12]}"


def test_ingest_retrieve_and_ask_go_through_the_chroma_server(
    chroma_server: ChromaServer, collection: str, tmp_path: Path
) -> None:
    import chromadb

    home = tmp_path / ".rag"
    rag_ = make_rag(
        home, SEEDS, chroma_url=chroma_server.url, collection=collection, backend="embedded", max_new_tokens=48
    )
    report = rag_.ingest([SEEDS])
    assert len(report.added) == 5 and report.chunks_total > 0
    assert not (home / "chroma").exists()  # nothing was stored locally
    server_side = chromadb.HttpClient(host="127.0.0.1", port=chroma_server.port).get_collection(collection)
    assert server_side.count() == report.chunks_total
    assert rag_.info()["store"] == chroma_server.url
    assert "002_5c202a017dd63dc4.txt" in [p.doc_id for p in rag_.retrieve("What happened at the Iikura guest house?")]
    answer = rag_.ask(TALKS)
    assert not answer.abstained and answer.backend == "embedded"
    assert {c.passage.chunk_id for c in answer.citations} <= {p.chunk_id for p in answer.passages}
    assert rag_.ingest([SEEDS]).chunks_written == 0  # the server remembers what it holds


def two_machines(server: ChromaServer, collection: str, tmp_path: Path) -> tuple[tuple[RAG, Path], ...]:
    """Two "machines" on one Chroma server: each a RAG with its own home and copy of the seeds."""
    machines = []
    for name in ("a", "b"):
        corpus = tmp_path / name / "articles"
        shutil.copytree(SEEDS, corpus)
        rag = make_rag(tmp_path / name / ".rag", corpus, chroma_url=server.url, collection=collection)
        machines.append((rag, corpus))
    return tuple(machines)


def test_a_second_machine_shares_the_store_and_embeds_nothing_again(
    chroma_server: ChromaServer, collection: str, tmp_path: Path
) -> None:
    (a, corpus_a), (b, corpus_b) = two_machines(chroma_server, collection, tmp_path)
    chunks = a.ingest([corpus_a]).chunks_total
    again = b.ingest([corpus_b])
    assert len(again.unchanged) == 5 and again.chunks_written == 0 and again.chunks_total == chunks
    assert b.retrieve(TALKS)
    (corpus_a / "zebra.txt").write_text(
        "Zebra migration\n\nThousands of zebras crossed the Mara river in Kenya, watched by tourists.\n"
    )
    a.ingest([corpus_a])
    top = b.retrieve("zebras crossing the Mara river", k=1)[0]  # b has been running all along
    assert top.doc_id == "zebra.txt" and top.similarity is not None
    assert b.ingest([corpus_b]).removed == ()  # b's folder lacks it, but b does not own it


def test_two_machines_ingesting_at_once_through_the_cli_write_each_chunk_once(
    tally: Tally, chroma_server: ChromaServer, collection: str, tmp_path: Path
) -> None:
    corpus = tmp_path / "articles"
    shutil.copytree(SEEDS, corpus)
    write_articles(corpus, 8)
    machines = []
    for name in ("one", "two"):
        env = process_env(tmp_path / name / ".rag", RAG_CHROMA_URL=chroma_server.url, RAG_COLLECTION=collection)
        command = [sys.executable, "-m", "rag", "ingest", str(corpus)]
        machines.append(
            subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        )
    outputs = [m.communicate(timeout=300) for m in machines]
    tally.fault()  # two writers with separate locks, racing on the same articles
    for machine, (out, err) in zip(machines, outputs):
        assert machine.returncode == 0, err.decode()[-3000:]
        assert b"chunks written" in out
    checker = make_rag(tmp_path / ".rag", corpus, chroma_url=chroma_server.url, collection=collection)
    assert_consistent(checker, corpus)
    assert len(checker.documents()) == 13


def test_unreachable_or_malformed_server_is_a_clear_store_error(
    tally: Tally, chroma_server: ChromaServer, tmp_path: Path
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    cases = {
        nobody: "Could not connect to a Chroma server",
        "localhost:8000": r"must look like http://host:port",
        "ftp://127.0.0.1:8000": r"must look like http://host:port",
        "http://127.0.0.1:99999": "bad port",
    }
    for url, message in cases.items():
        tally.fault()
        with pytest.raises(StoreError, match=message):
            Store.open(Settings(chroma_url=url, home=tmp_path / ".rag"), dimension=384)
    with pytest.raises(StoreError, match="Could not connect"):
        make_rag(tmp_path / ".rag", SEEDS, chroma_url=nobody).ingest([SEEDS])
    Store.open(Settings(chroma_url=chroma_server.url, collection="mismatch"), dimension=384)
    with pytest.raises(StoreMismatch, match="rebuild"):  # a collection built by another model is refused
        Store.open(Settings(chroma_url=chroma_server.url, collection="mismatch"), dimension=768)


@pytest.mark.slow
def test_server_crashing_mid_ingest_keeps_old_data_and_the_next_ingest_repairs(
    tally: Tally, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rag.ingest, "EMBED_BATCH", 2)  # several writes for six short articles
    server = ChromaServer(tmp_path / "data").start()
    try:
        corpus = tmp_path / "articles"
        write_articles(corpus, 6)
        rag_ = make_rag(tmp_path / ".rag", corpus, chroma_url=server.url)
        rag_.ingest([corpus])
        old_ids = set(stored_ids(rag_))
        write_articles(corpus, 6, version=1)

        def crash_after_first_write(done: int, total: int, stage: str) -> None:
            if done >= 2:
                server.crash()

        with pytest.raises(StoreError, match="writing to the store failed"):
            rag_.ingest([corpus], progress=crash_after_first_write)
        with pytest.raises(StoreError):  # while it is down, every use says so
            rag_.retrieve(TALKS)
        tally.fault(2)
        server.start()  # the same RAG object carries on once the server is back
        assert old_ids <= set(stored_ids(rag_))
        report = rag_.ingest([corpus])
        assert len(report.updated) + len(report.unchanged) == 6
        assert_consistent(rag_, corpus)
        assert not old_ids & set(stored_ids(rag_))
    finally:
        server.stop()
