"""The Chroma store: embedded (PersistentClient under `home`) or a server (`RAG_CHROMA_URL`).

LlamaIndex defines how a node is stored (its metadata helpers); dense queries go to Chroma
directly (`ChromaVectorStore` counts the collection, a scan, before every query). This module
adds what LlamaIndex lacks for incremental ingest: a manifest of which article versions are
stored, idempotent upserts by content-derived ids, and a record of the embedding model that built
the collection, so that opening it with another model stops instead of mixing vector spaces.
Embedded Chroma is not meant for several processes (chroma-core/chroma#3792): writes are safe,
but a process's vector index only takes in other processes' writes when it writes itself, so a
reader that sees the store changed makes an empty write first (`catch_up`). Every write moves a
change token (`version`: a file beside an embedded store, the collection's metadata on a server)
before and after, which tells the lexical index (rag/lexical.py) when to compare chunk ids.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from rag.chunking import embed_text
from rag.errors import StoreError, StoreMismatch
from rag.settings import Settings

if TYPE_CHECKING:
    from llama_index.core.schema import TextNode

log = logging.getLogger(__name__)

PAGE = 5000  # Chroma caps how many records one get() returns
# A scoped dense search (`Store.nearest_among`) goes the way expected to cost least, by these costs
# in microseconds, measured at 100k chunks on two cores: scoring a chunk's stored vector here,
# one candidate of an unfiltered search, and Chroma's own id filter (slow when it passes few).
COST_SCORE_HERE_US = 30.0
COST_WIDE_US = 7.0
COST_ID_FILTER_US = (15_000.0, 8_000_000.0)  # a + b / chunks in the scope
WIDE_MARGIN = 2  # an unfiltered search asks for this many times what the scope's share would hold
WRITABLE_HOME = "set RAG_HOME to a folder you can write, or RAG_CHROMA_URL to a Chroma server"
NO_SUCH_ID = "rag:none"  # deleted to make embedded Chroma apply other processes' writes
CHANGED_KEY = "rag_changed"  # collection metadata: a server store's change token


@dataclass(frozen=True)
class StoredDocument:
    """What the store holds of one article: its version, where it came from, its chunk ids."""

    doc_id: str
    content_hashes: frozenset[str]
    root: str
    title: str
    dateline: str
    chunk_ids: tuple[str, ...]
    complete: bool = True  # one version, with every chunk it had when written


@dataclass(frozen=True)
class StoredChunk:
    """One chunk as stored: its id, its text and its node's metadata (what a passage is made from)."""

    chunk_id: str
    text: str
    metadata: dict[str, Any]


def _server_address(url: str) -> tuple[str, int, bool]:
    """Host, port and TLS flag of `http(s)://host:port`; StoreError for anything else."""
    parsed = urlparse(url)
    try:
        port = parsed.port or 8000
    except ValueError as exc:
        raise StoreError(f"RAG_CHROMA_URL has a bad port: '{url}'") from exc
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise StoreError(f"RAG_CHROMA_URL must look like http://host:port, not '{url}'")
    return parsed.hostname, port, parsed.scheme == "https"


def _client(settings: Settings) -> Any:
    """Chroma's client for the store: a server's, or an embedded one (opened under `_one_opener`)."""
    import chromadb
    from chromadb.config import Settings as ChromaConfig

    config = ChromaConfig(anonymized_telemetry=False)
    try:
        if settings.chroma_url:
            host, port, ssl = _server_address(settings.chroma_url)
            return chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=config)
        # The folder is known to be writable: `_one_opener`, which holds the lock around this, made it.
        return chromadb.PersistentClient(path=str(settings.chroma_path), settings=config)
    except StoreError:
        raise
    except Exception as exc:  # chromadb raises ValueError, OSError or its own types here
        if not settings.chroma_url:
            # Chroma keeps a process's client for a path even when opening it failed half-way, and
            # every later open got that broken one ("no attribute 'bindings'"): forget it, so that
            # the next question opens the store afresh.
            chromadb.api.shared_system_client.SharedSystemClient.clear_system_cache()
        where = settings.chroma_url or settings.chroma_path
        raise StoreError(f"cannot open the store at {where}: {exc}") from exc


@contextlib.contextmanager
def _failures(action: str) -> Iterator[None]:
    """Chroma's errors (its own types, httpx's, sqlite's) as one StoreError naming what failed."""
    try:
        yield
    except Exception as exc:
        raise StoreError(f"{action} failed: {exc}") from exc


@contextlib.contextmanager
def _one_opener(settings: Settings) -> Iterator[None]:
    """Hold this machine's lock on opening the embedded store. Chroma creates its tables and the
    collection when a store is first opened, and two processes doing it at once (two apps on one home
    asked their first question together) failed one time in ten to thirty ("table collections
    already exists", "database is locked"). A server store needs no lock."""
    if settings.chroma_url:
        yield
        return
    path = _writable_folder(settings.chroma_path)
    try:
        handle = open(path / "open.lock", "a")  # noqa: SIM115 - held for the block
    except OSError as exc:
        raise StoreError(f"cannot write in the store folder {path}: {exc.strerror or exc}; {WRITABLE_HOME}") from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the descriptor closes
        yield


def _writable_folder(path: Path) -> Path:
    """The store folder, made if missing, once it is known to be writable (Chroma writes on open)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the store folder {path}: {exc.strerror or exc}; {WRITABLE_HOME}") from exc
    if not os.access(path, os.W_OK):
        raise StoreError(f"the store folder {path} is read-only; {WRITABLE_HOME}")
    return path


@dataclass(eq=False)  # one store is one collection: compared by identity
class Store:
    """One Chroma collection of article chunks, tagged with the model that embedded them.

    `marker` (embedded stores only) is a file every write rewrites, so that other processes
    on this machine notice the change.
    """

    client: Any
    collection: Any
    embed_model: str
    dimension: int
    marker: Path | None = None
    _batch_size: int | None = field(default=None, init=False, repr=False)

    @classmethod
    def open(cls, settings: Settings, dimension: int, rebuild: bool = False) -> Store:
        """Open (or create) the collection; refuse one built by a different embedding model."""
        meta = {"embed_model": settings.embed_model, "embed_dim": dimension, "hnsw:space": "cosine"}
        with _one_opener(settings):
            client = _client(settings)
            if rebuild:
                _drop(client, settings.collection)
            try:
                collection = client.get_or_create_collection(settings.collection, metadata=meta)
            except Exception as exc:
                raise StoreError(f"cannot open collection '{settings.collection}': {exc}") from exc
        found = collection.metadata or {}
        if found.get("embed_model") != settings.embed_model or found.get("embed_dim") != dimension:
            raise StoreMismatch(
                f"the store was built with '{found.get('embed_model')}' ({found.get('embed_dim')} dimensions) "
                f"but the configured model is '{settings.embed_model}' ({dimension}); "
                "rebuild it with `rag ingest --rebuild` or set RAG_EMBED_MODEL back"
            )
        marker = None if settings.chroma_url else settings.home / "store.version"
        return cls(client, collection, settings.embed_model, dimension, marker)

    def count(self) -> int:
        """Number of chunks stored."""
        with _failures("reading the store"):
            return int(self.collection.count())

    def _records(
        self, include: list[str], chunk_ids: Sequence[str] | None = None, where: dict | None = None
    ) -> Iterator[tuple[str, dict, str | None]]:
        """Records in pages: those of `chunk_ids` (ids the store lacks are left out), else those
        matching `where`, else every one."""
        if chunk_ids is not None:
            pages = [{"ids": list(chunk_ids[i : i + PAGE])} for i in range(0, len(chunk_ids), PAGE)]
        else:
            pages = ({"where": where, "limit": PAGE, "offset": i} for i in range(0, self.count(), PAGE))
        for page in pages:
            with _failures("reading the store"):
                got = self.collection.get(include=include, **page)
            docs = got.get("documents") or [None] * len(got["ids"])
            yield from zip(got["ids"], got["metadatas"], docs)
            if where is not None and len(got["ids"]) < PAGE:
                break  # a filtered read ends with its first short page

    def ids(self) -> list[str]:
        """Every stored chunk id, read in pages (Chroma caps how many records one get() returns)."""
        ids: list[str] = []
        for offset in range(0, self.count(), PAGE):
            with _failures("reading the store"):
                ids += self.collection.get(include=[], limit=PAGE, offset=offset)["ids"]
        return ids

    def version(self) -> str:
        """A token that changes whenever the store is written, here, by another process or another machine.

        Not the chunk count: Chroma counts by scanning (10 ms at 100k chunks), on every question.
        """
        if self.marker is None:
            with _failures("reading the store"):
                metadata = self.client.get_collection(self.collection.name).metadata or {}
            return str(metadata.get(CHANGED_KEY, ""))
        with contextlib.suppress(OSError):
            return self.marker.read_text()
        return ""

    def identity(self) -> str:
        """The collection's id: it changes when the collection is dropped and made again."""
        return str(self.collection.id)

    def catch_up(self) -> None:
        """Make this process's copy of the embedded vector index take in other processes' writes."""
        if self.marker is None:
            return  # a Chroma server has one index for every client
        try:
            self.collection.delete(ids=[NO_SUCH_ID])
        except Exception as exc:  # a read-only store still answers, from what this process has
            log.warning("could not refresh the vector index from other processes' writes: %s", exc)

    def _changed(self) -> None:
        """Move the change token; called before and after every write, so that a reader that saw the
        token before a write landed always sees it move again, even when the writer is killed."""
        token = uuid.uuid4().hex
        if self.marker is None:
            metadata = {k: v for k, v in (self.collection.metadata or {}).items() if not k.startswith("hnsw:")}
            with _failures("writing to the store"):  # the token is part of the write; hnsw: keys are fixed
                self.collection.modify(metadata={**metadata, CHANGED_KEY: token})
            return
        try:
            self.marker.write_text(token)
        except OSError as exc:
            log.warning("could not record the store change in %s: %s", self.marker, exc)

    def documents(self, roots: Sequence[str] = (), doc_ids: Sequence[str] = ()) -> dict[str, StoredDocument]:
        """Stored articles keyed by doc_id, from chunk metadata alone (no vectors read): every one, or
        only those ingested from `roots` or named in `doc_ids` (what one ingest needs to compare)."""
        if len(doc_ids) > PAGE:
            roots, doc_ids = (), ()  # a filter that long costs more than reading everything
        clauses = [{key: {"$in": list(values)}} for key, values in (("root", roots), ("doc_id", doc_ids)) if values]
        where = None if not (roots or doc_ids) else clauses[0] if len(clauses) == 1 else {"$or": clauses}
        groups: dict[str, list[tuple[str, dict]]] = defaultdict(list)
        for chunk_id, meta, _ in self._records(["metadatas"], where=where):
            groups[meta.get("doc_id", "")].append((chunk_id, meta))
        stored = {}
        for doc_id, items in groups.items():
            first = items[0][1]
            hashes = frozenset(m.get("doc_hash", "") for _, m in items)
            expected = first.get("chunk_count")  # absent in stores written before it was recorded
            stored[doc_id] = StoredDocument(
                doc_id=doc_id,
                content_hashes=hashes,
                root=first.get("root", ""),
                title=first.get("title", ""),
                dateline=first.get("dateline", ""),
                chunk_ids=tuple(cid for cid, _ in items),
                complete=len(hashes) == 1 and expected in (None, len(items)),
            )
        return stored

    def batch_size(self) -> int:
        """Most records Chroma takes in one write (5461 embedded; a server says its own)."""
        if self._batch_size is None:
            with _failures("asking the store its batch size"):
                self._batch_size = min(int(self.client.get_max_batch_size()), PAGE)
        return self._batch_size

    def upsert(self, nodes: Sequence[TextNode]) -> None:
        """Write nodes with their embeddings; writing the same ids twice changes nothing."""
        from llama_index.core.vector_stores.utils import node_to_metadata_dict

        size = self.batch_size()
        if nodes:
            self._changed()
        for start in range(0, len(nodes), size):
            batch = nodes[start : start + size]
            with _failures("writing to the store"):
                self.collection.upsert(
                    ids=[n.node_id for n in batch],
                    embeddings=[n.get_embedding() for n in batch],
                    metadatas=[node_to_metadata_dict(n, remove_text=True, flat_metadata=True) for n in batch],
                    documents=[n.get_content() for n in batch],
                )
            self._changed()

    def delete(self, chunk_ids: Sequence[str]) -> None:
        """Remove chunks by id."""
        size = self.batch_size() if chunk_ids else PAGE
        if chunk_ids:
            self._changed()
        for start in range(0, len(chunk_ids), size):
            with _failures("deleting from the store"):
                self.collection.delete(ids=list(chunk_ids[start : start + size]))
            self._changed()

    def nodes(self, chunk_ids: Sequence[str] | None = None) -> list[TextNode]:
        """Chunks as LlamaIndex nodes (text and metadata, no vectors): those of `chunk_ids`, else every one."""
        from llama_index.core.vector_stores.utils import metadata_dict_to_node

        nodes = []
        for chunk_id, meta, text in self._records(["metadatas", "documents"], chunk_ids):
            node = metadata_dict_to_node(meta, text=text)
            node.id_ = chunk_id
            nodes.append(node)
        return nodes

    def chunks(self, chunk_ids: Sequence[str]) -> list[StoredChunk]:
        """The given chunks' texts and metadata (ids the store lacks are left out), without building
        LlamaIndex nodes: validating ten nodes cost 0.5 ms a question, a quarter of Chroma's read."""
        chunks = []
        for chunk_id, meta, text in self._records(["metadatas", "documents"], chunk_ids):
            node = json.loads(meta["_node_content"])  # as `metadata_dict_to_node` reads it
            chunks.append(StoredChunk(chunk_id, node.get("text", "") if text is None else text, node["metadata"]))
        return chunks

    def index_texts(self, chunk_ids: Sequence[str]) -> Iterator[tuple[str, str, str]]:
        """(chunk_id, doc_id, the text the lexical index reads) of the given chunks, read in pages."""
        for chunk_id, meta, text in self._records(["metadatas", "documents"], chunk_ids):
            yield chunk_id, str(meta.get("doc_id", "")), embed_text(str(meta.get("title", "")), text or "")

    def nearest(self, embedding: list[float], k: int) -> list[tuple[str, float]]:
        """Ids of the k nearest chunks with their cosine similarity (`nearest_among` inside a scope).

        Ids and distances alone: reading the hits' texts and metadata in the same query costs Chroma
        several times the search itself (2 ms against 12 ms at 100k chunks), so `chunks` reads them
        for the few that are kept. Not LlamaIndex's `ChromaVectorStore`: it counts the collection
        (a scan) before every query.
        """
        with _failures("searching the store"):
            got = self.collection.query(query_embeddings=[embedding], n_results=k, include=["distances"])
        # Cosine space: distance = 1 - cosine.
        return [(chunk_id, 1.0 - float(distance)) for chunk_id, distance in zip(got["ids"][0], got["distances"][0])]

    def nearest_among(
        self, embedding: list[float], k: int, chunk_ids: Sequence[str], total: int
    ) -> list[tuple[str, float]]:
        """The k nearest of `chunk_ids` (a scope's chunks, out of `total` in the store), by the cheapest exact way.

        Chroma's filtered HNSW search walks far through the graph when few chunks pass the filter:
        at 100k chunks it takes 90 ms for one article's 5 chunks and 60 ms for 5,000 chunks named
        by `doc_id`, against 2 ms unfiltered. So: a few hundred chunks are scored here from their
        stored vectors; a scope wide enough that an unfiltered search of a few times k/share
        candidates holds k of its chunks is searched that way and filtered afterwards (exact
        when k are found: nothing in the scope is nearer than the candidates); Chroma's own
        filter by ids when it is expected to cost less (15 to 30 ms at 100k)."""
        if not chunk_ids or k < 1:
            return []
        way, wide = scoped_search_way(len(chunk_ids), max(total, len(chunk_ids)), k)
        if way == "here":
            return self.vectors(chunk_ids).nearest(embedding, k)
        if way == "wide":
            inside = set(chunk_ids)
            hits = [hit for hit in self.nearest(embedding, wide) if hit[0] in inside]
            if len(hits) >= k:
                return hits[:k]
        with _failures("searching the store"):
            got = self.collection.query(
                query_embeddings=[embedding], n_results=k, include=["distances"], ids=list(chunk_ids)
            )
        return [(chunk_id, 1.0 - float(distance)) for chunk_id, distance in zip(got["ids"][0], got["distances"][0])]

    def vectors(self, chunk_ids: Sequence[str]) -> Vectors:
        """These chunks' stored vectors, unit length, in one matrix (for scoring a scope here)."""
        import numpy as np

        with _failures("reading from the store"):
            got = self.collection.get(ids=list(chunk_ids), include=["embeddings"])
        matrix = np.asarray(got["embeddings"], dtype=np.float32).reshape(len(got["ids"]), -1)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-12
        return Vectors(list(got["ids"]), matrix)


@dataclass(frozen=True)
class Vectors:
    """Some chunks' vectors (unit length), to find the nearest among them without Chroma."""

    chunk_ids: list[str]
    matrix: Any  # numpy float32, one row per chunk id

    def nearest(self, embedding: list[float], k: int) -> list[tuple[str, float]]:
        """The k chunks most similar to the embedding, with their cosine similarity."""
        import numpy as np

        if not self.chunk_ids:
            return []
        query = np.asarray(embedding, dtype=np.float32)
        similarity = self.matrix @ (query / (np.linalg.norm(query) + 1e-12))
        best = np.argsort(-similarity, kind="stable")[:k]
        return [(self.chunk_ids[i], float(similarity[i])) for i in best]


def scoped_search_way(chunks: int, total: int, k: int) -> tuple[str, int]:
    """How to search `chunks` of `total` for k nearest ("here", "wide" or "ids"), and how many
    candidates a wide search asks for: the way of least expected cost (see COST_*)."""
    wide = min(total, max(k, -(-WIDE_MARGIN * k * total // chunks)))
    a, b = COST_ID_FILTER_US
    costs = {"here": COST_SCORE_HERE_US * chunks, "wide": COST_WIDE_US * wide, "ids": a + b / chunks}
    return min(costs, key=costs.__getitem__), wide


def _drop(client: Any, name: str) -> None:
    try:
        client.delete_collection(name)
    except Exception as exc:  # a missing collection is fine to "drop"
        log.info("no collection %s to drop: %s", name, exc)
