"""Chat with your articles: a local retrieval-augmented assistant whose answers cite their passages."""

from rag.answer import Answer
from rag.api import RAG
from rag.citations import Citation
from rag.errors import BackendUnavailable, BadInput, EmbeddingFailed, RagError, StoreError, StoreMismatch
from rag.ingest import IngestReport
from rag.retrieve import Passage
from rag.settings import Settings

__all__ = [
    "RAG",
    "Answer",
    "BackendUnavailable",
    "BadInput",
    "Citation",
    "EmbeddingFailed",
    "IngestReport",
    "Passage",
    "RagError",
    "Settings",
    "StoreError",
    "StoreMismatch",
]
