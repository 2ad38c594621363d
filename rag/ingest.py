"""Incremental ingest: read folders of articles, embed only what changed, keep the store in step.

LlamaIndex's `IngestionPipeline` can skip unchanged documents only with a docstore beside the
vector store; here the Chroma collection is the single source of truth (which also works when
Chroma is a server shared by several machines). An article is keyed by its path under the corpus
root and versioned by the hash of its bytes: unchanged ones are not embedded again, changed ones
get their new chunks written before the old ones are deleted (a crash never leaves an article
with no chunks), and articles gone from a folder lose their chunks. Chunks are written as they
are embedded, so a crash keeps the work done; every chunk records how many its article has, so
an article left half-written counts as changed next time, and the folders of an ingest that did
not finish stay listed in the lock file (`interrupted_roots`) for the app to finish when it starts.
Files that cannot be read are skipped with a warning and keep whatever the store already holds for them.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rag.chunking import Chunk, chunk_document, embed_text
from rag.documents import Document, Skipped, find_files, read_document
from rag.errors import BadInput, EmbeddingFailed, StoreError
from rag.lexical import LexicalIndex, index_path
from rag.settings import Settings
from rag.store import Store, StoredDocument

if TYPE_CHECKING:
    from llama_index.core.schema import TextNode

    from rag.embeddings import Embedder

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
EMBED_BATCH = 64


@dataclass(frozen=True)
class IngestReport:
    """What one ingest did, for the summary line and for tests."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    chunks_written: int = 0
    chunks_deleted: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    warnings: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        """One line a person reads at the end of an ingest."""
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{len(self.removed)} removed, {len(self.skipped)} skipped; {self.chunks_written} chunks written, "
            f"{self.chunks_total} in store; {self.seconds:.2f} s"
        )


@dataclass
class _Plan:
    new: list[Document] = field(default_factory=list)
    changed: list[Document] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[StoredDocument] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def read_corpus(roots: Sequence[Path], settings: Settings) -> tuple[dict[str, tuple[Document, str]], list[Skipped]]:
    """Every readable article under `roots` as {doc_id: (document, root)}, and the skipped files."""
    docs: dict[str, tuple[Document, str]] = {}
    skipped: list[Skipped] = []
    for root in roots:
        root_key = str(root.resolve())
        for path, doc_id in find_files(root):
            try:
                doc = read_document(path, doc_id, settings.max_file_bytes)
            except BadInput as exc:
                log.info("skipped %s: %s", path, exc)  # the report names it to the caller (the CLI prints it)
                skipped.append(Skipped(str(path), str(exc)))
                continue
            if doc_id in docs:
                log.warning("%s: another ingested folder has a file with the same name; the last one wins", path)
            docs[doc_id] = (doc, root_key)
    return docs, skipped


def plan(
    found: dict[str, tuple[Document, str]],
    skipped: list[Skipped],
    stored: dict[str, StoredDocument],
    roots: Sequence[str],
) -> _Plan:
    """Sort articles into new, changed, unchanged and removed against what the store holds."""
    result = _Plan(skipped=skipped)
    for doc_id, (doc, _) in found.items():
        have = stored.get(doc_id)
        if have is None:
            result.new.append(doc)
        elif have.content_hashes == {doc.content_hash} and have.complete:
            result.unchanged.append(doc_id)
        else:
            result.changed.append(doc)
    unreadable = {_doc_id_of(s.path, roots) for s in skipped}
    for doc_id, have in stored.items():
        if have.root in roots and doc_id not in found and doc_id not in unreadable:
            result.removed.append(have)
    return result


def _doc_id_of(path: str, roots: Sequence[str]) -> str:
    # Resolve the folder, not the file: the file may be a symlink loop, which resolve() raises on.
    resolved = Path(path).parent.resolve() / Path(path).name
    for root in roots:
        with contextlib.suppress(ValueError):
            return resolved.relative_to(root).as_posix()
    return Path(path).name


def to_nodes(doc: Document, chunks: Sequence[Chunk], root: str) -> list[TextNode]:
    """LlamaIndex nodes carrying the metadata every passage shows: title, dateline, offsets."""
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

    meta_keys = [
        "doc_id",
        "title",
        "dateline",
        "place",
        "date",
        "agency",
        "source",
        "root",
        "doc_hash",
        "chunk_index",
        "chunk_count",
        "start",
        "end",
        "lines",
        "headings",
        "after_heading",
        "heading_levels",
    ]
    nodes = []
    for chunk in chunks:
        metadata = {
            "doc_id": doc.doc_id,
            "title": doc.title,
            "dateline": str(doc.dateline),
            "place": doc.dateline.place,
            "date": doc.dateline.date,
            "agency": doc.dateline.agency,
            "source": doc.source,
            "root": root,
            "doc_hash": doc.content_hash,
            "chunk_index": chunk.index,
            "chunk_count": len(chunks),
            "start": chunk.start,
            "end": chunk.end,
            "lines": json.dumps(chunk.lines, separators=(",", ":")),  # Chroma keeps only flat values
            "headings": "\n".join(chunk.headings),
            "after_heading": chunk.after_heading,
            "heading_levels": json.dumps(chunk.heading_levels, separators=(",", ":")),
        }
        nodes.append(
            TextNode(
                id_=chunk.chunk_id,
                text=chunk.text,
                metadata=metadata,
                # Only the title joins the text that is embedded and BM25-indexed.
                excluded_embed_metadata_keys=[k for k in meta_keys if k != "title"],
                excluded_llm_metadata_keys=meta_keys,
                # LlamaIndex stores the source document's id as `doc_id` in Chroma's flat metadata.
                relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc.doc_id)},
            )
        )
    return nodes


def _batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def write_nodes(
    nodes: list[TextNode], store: Store, lexical: LexicalIndex, embedder: Embedder, progress: Progress | None
) -> None:
    """Embed and store nodes a batch at a time, in Chroma then in the lexical index, so that a crash
    keeps the batches already written (and the next catch-up indexes a batch Chroma got alone).

    A batch is written in a second thread while the model embeds the next one: Chroma's and
    SQLite's writes release the GIL, so the model, not the writes, sets the pace.
    """
    # Longest first, as sentence-transformers orders what it is given at once: a batch is padded to
    # its longest chunk, so batches of like lengths waste the least model work.
    nodes = sorted(nodes, key=lambda n: len(n.metadata["title"]) + len(n.text), reverse=True)
    done, pending = 0, None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer") as writer:
        for batch in _batches(nodes, EMBED_BATCH):
            texts = [embed_text(n.metadata["title"], n.text) for n in batch]  # made once: embedded and indexed
            try:
                for node, vector in zip(batch, embedder.get_text_embedding_batch(texts)):
                    node.embedding = vector
            except Exception as exc:  # out of memory, a broken model file, a custom model raising: say so plainly
                done += _written(pending, done, len(nodes), progress)
                raise EmbeddingFailed(
                    f"the embedding model failed after {done} of {len(nodes)} new chunks were stored ({exc}); "
                    "nothing stored was lost: run the ingest again to finish"
                ) from exc
            done += _written(pending, done, len(nodes), progress)
            pending = writer.submit(_write_batch, batch, texts, store, lexical)
        _written(pending, done, len(nodes), progress)


def _write_batch(batch: Sequence[TextNode], texts: list[str], store: Store, lexical: LexicalIndex) -> int:
    """One embedded batch into Chroma, then into the lexical index; the number of chunks written."""
    store.upsert(batch)
    lexical.add((n.node_id, n.metadata["doc_id"], text) for n, text in zip(batch, texts))
    return len(batch)


def _written(pending: Future | None, done: int, total: int, progress: Progress | None) -> int:
    """Wait for the batch being written (its errors are raised here) and report progress."""
    if pending is None:
        return 0
    count = pending.result()
    if progress:
        progress(done + count, total, "embedding")
    return count


LOCK_FILE = "ingest.lock"  # in `home`: held by the one writer, and naming the roots not yet ingested


@contextlib.contextmanager
def write_lock(settings: Settings, roots: Sequence[str] = ()) -> Iterator[None]:
    """One writer at a time on this machine; chunk ids make concurrent writers harmless anyway.

    The lock file also lists the roots of ingests that have begun and not finished: this one's
    while it runs, and any that a `kill -9` or a failure left part-way, until an ingest of the
    same roots finishes (`interrupted_roots` reads them; the app finishes them when it starts).
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    try:
        handle = open(settings.home / LOCK_FILE, "a+")  # noqa: SIM115 - held for the block
    except OSError as exc:
        raise StoreError(f"cannot write in {settings.home}: {exc.strerror}; check the folder's permissions") from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            unfinished = _unfinished(handle)
            _record_unfinished(handle, [*unfinished, *(r for r in roots if r not in unfinished)])
            yield
            # Roots that are gone have nothing left to finish.
            _record_unfinished(handle, [r for r in unfinished if r not in roots and Path(r).exists()])
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def interrupted_roots(settings: Settings) -> list[Path]:
    """The roots of ingests that were killed or failed part-way; none while an ingest runs (it may be
    one of them, still going)."""
    try:
        handle = open(settings.home / LOCK_FILE)  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return []
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return []
        return [Path(root) for root in _unfinished(handle)]


def _unfinished(handle: IO[str]) -> list[str]:
    """The roots the lock file lists (none in a lock file written before it listed them)."""
    handle.seek(0)
    try:
        roots = json.loads(handle.read() or "[]")
    except ValueError:
        return []
    return [r for r in roots if isinstance(r, str)] if isinstance(roots, list) else []


def _record_unfinished(handle: IO[str], roots: list[str]) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(roots))
    handle.flush()


def ingest(
    paths: Sequence[Path],
    store: Store,
    embedder: Embedder,
    count_pieces: Callable[[str], list[int]],
    settings: Settings,
    progress: Progress | None = None,
    lexical: LexicalIndex | None = None,
) -> IngestReport:
    """Bring the store and the lexical index in step with the articles under `paths`, embedding only what changed."""
    started = time.perf_counter()
    lexical = lexical or LexicalIndex(index_path(settings))
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise BadInput(f"no such file or folder: {', '.join(missing)}")
    roots = [str(p.resolve()) for p in paths]
    found, skipped = read_corpus(paths, settings)
    with write_lock(settings, roots):
        # Repairs what a killed ingest left unindexed: its first write moved the store's change
        # token, and any other gap shows in the counts. Comparing every chunk id on each ingest
        # instead took most of the 1.8 s that adding one article cost at 100k chunks (bench).
        lexical.catch_up(store, force=lexical.count() != store.count())
        stored = store.documents(roots, list(found))  # only what this ingest compares against
        work = plan(found, skipped, stored, roots)
        nodes = []
        # The splitter counts a sentence again for each chunk it overlaps into: count it once.
        count = functools.lru_cache(maxsize=8192)(count_pieces)
        for doc in work.new + work.changed:
            chunks = chunk_document(doc, count, settings.chunk_tokens, settings.chunk_overlap)
            nodes.extend(to_nodes(doc, chunks, found[doc.doc_id][1]))
        write_nodes(nodes, store, lexical, embedder, progress)
        stale = _stale_chunk_ids(work, stored, {n.node_id for n in nodes})
        store.delete(stale)
        lexical.remove(stale)
        lexical.compact()  # only once the delta outgrows a tenth of the base
        total = store.count()
        if store.marker is not None and (nodes or stale):
            # Embedded: every writer on this machine holds the lock, so no write went by unindexed.
            lexical.set_meta("synced", store.version())
    return IngestReport(
        added=tuple(d.doc_id for d in work.new),
        updated=tuple(d.doc_id for d in work.changed),
        unchanged=tuple(work.unchanged),
        removed=tuple(d.doc_id for d in work.removed),
        skipped=tuple(work.skipped),
        chunks_written=len(nodes),
        chunks_deleted=len(stale),
        chunks_total=total,
        seconds=time.perf_counter() - started,
        warnings=tuple(f"{s.path}: {s.reason}" for s in work.skipped),
    )


def _stale_chunk_ids(work: _Plan, stored: dict[str, StoredDocument], written: set[str]) -> list[str]:
    """Old versions' chunks of changed articles, and every chunk of removed ones."""
    stale = [cid for d in work.changed for cid in stored[d.doc_id].chunk_ids if cid not in written]
    return stale + [cid for d in work.removed for cid in d.chunk_ids]
