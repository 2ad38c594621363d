"""The Chroma store: embedded (PersistentClient under `home`) or a server (`RAG_CHROMA_URL`).

LlamaIndex's `ChromaVectorStore` answers dense queries and defines how a node is stored; this
module adds what it lacks for incremental ingest: a manifest of which article versions are
stored, idempotent upserts by content-derived ids, and a record of the embedding model that built
the collection, so that opening it with another model stops instead of mixing vector spaces.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.errors import StoreError, StoreMismatch
from rag.settings import Settings

if TYPE_CHECKING:
    from llama_index.core.schema import TextNode

log = logging.getLogger(__name__)

PAGE = 5000  # Chroma caps how many records one get() returns


@dataclass(frozen=True)
class StoredDocument:
    """What the store holds of one article: its version, where it came from, its chunk ids."""

    doc_id: str
    content_hashes: frozenset[str]
    root: str
    title: str
    dateline: str
    chunk_ids: tuple[str, ...]


def _client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaConfig

    config = ChromaConfig(anonymized_telemetry=False)
    try:
        if settings.chroma_url:
            from urllib.parse import urlparse

            url = urlparse(settings.chroma_url)
            return chromadb.HttpClient(
                host=url.hostname or "127.0.0.1",
                port=url.port or 8000,
                ssl=url.scheme == "https",
                settings=config,
            )
        settings.chroma_path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_path), settings=config)
    except Exception as exc:  # chromadb raises ValueError, OSError or its own types here
        where = settings.chroma_url or settings.chroma_path
        raise StoreError(f"cannot open the store at {where}: {exc}") from exc


class Store:
    """One Chroma collection of article chunks, tagged with the model that embedded them."""

    def __init__(self, client: Any, collection: Any, embed_model: str, dimension: int) -> None:
        from llama_index.vector_stores.chroma import ChromaVectorStore

        self.client = client
        self.collection = collection
        self.embed_model = embed_model
        self.dimension = dimension
        self.vector_store = ChromaVectorStore(chroma_collection=collection)

    @classmethod
    def open(cls, settings: Settings, dimension: int, rebuild: bool = False) -> Store:
        """Open (or create) the collection; refuse one built by a different embedding model."""
        client = _client(settings)
        if rebuild:
            _drop(client, settings.collection)
        meta = {"embed_model": settings.embed_model, "embed_dim": dimension, "hnsw:space": "cosine"}
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
        return cls(client, collection, settings.embed_model, dimension)

    def count(self) -> int:
        """Number of chunks stored."""
        return int(self.collection.count())

    def _records(self, include: list[str]) -> Iterator[tuple[str, dict, str | None]]:
        total = self.count()
        for offset in range(0, total, PAGE):
            got = self.collection.get(include=include, limit=PAGE, offset=offset)
            docs = got.get("documents") or [None] * len(got["ids"])
            yield from zip(got["ids"], got["metadatas"], docs)

    def documents(self) -> dict[str, StoredDocument]:
        """Every stored article, keyed by doc_id, from chunk metadata alone (no vectors read)."""
        groups: dict[str, list[tuple[str, dict]]] = defaultdict(list)
        for chunk_id, meta, _ in self._records(["metadatas"]):
            groups[meta.get("doc_id", "")].append((chunk_id, meta))
        stored = {}
        for doc_id, items in groups.items():
            first = items[0][1]
            stored[doc_id] = StoredDocument(
                doc_id=doc_id,
                content_hashes=frozenset(m.get("doc_hash", "") for _, m in items),
                root=first.get("root", ""),
                title=first.get("title", ""),
                dateline=first.get("dateline", ""),
                chunk_ids=tuple(cid for cid, _ in items),
            )
        return stored

    def upsert(self, nodes: Sequence[TextNode]) -> None:
        """Write nodes with their embeddings; writing the same ids twice changes nothing."""
        from llama_index.core.vector_stores.utils import node_to_metadata_dict

        if not nodes:
            return
        try:
            self.collection.upsert(
                ids=[n.node_id for n in nodes],
                embeddings=[n.get_embedding() for n in nodes],
                metadatas=[node_to_metadata_dict(n, remove_text=True, flat_metadata=True) for n in nodes],
                documents=[n.get_content() for n in nodes],
            )
        except Exception as exc:
            raise StoreError(f"writing to the store failed: {exc}") from exc

    def delete(self, chunk_ids: Sequence[str]) -> None:
        """Remove chunks by id."""
        for start in range(0, len(chunk_ids), PAGE):
            try:
                self.collection.delete(ids=list(chunk_ids[start : start + PAGE]))
            except Exception as exc:
                raise StoreError(f"deleting from the store failed: {exc}") from exc

    def nodes(self) -> list[TextNode]:
        """Every chunk as a LlamaIndex node (text and metadata, no vectors), for BM25."""
        from llama_index.core.vector_stores.utils import metadata_dict_to_node

        nodes = []
        for chunk_id, meta, text in self._records(["metadatas", "documents"]):
            node = metadata_dict_to_node(meta, text=text)
            node.id_ = chunk_id
            nodes.append(node)
        return nodes

    def query(self, embedding: list[float], k: int) -> list[tuple[TextNode, float]]:
        """The k nearest chunks with their cosine similarity."""
        from llama_index.core.vector_stores.types import VectorStoreQuery

        k = min(k, self.count())
        if k == 0:
            return []
        result = self.vector_store.query(VectorStoreQuery(query_embedding=embedding, similarity_top_k=k))
        # ChromaVectorStore reports exp(-distance); with cosine space, distance = 1 - cosine.
        return [(node, 1.0 + math.log(sim)) for node, sim in zip(result.nodes, result.similarities)]


def _drop(client: Any, name: str) -> None:
    try:
        client.delete_collection(name)
    except Exception as exc:  # a missing collection is fine to "drop"
        log.info("no collection %s to drop: %s", name, exc)
