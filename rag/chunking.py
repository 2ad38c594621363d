"""Split cleaned articles into sentence-aware, overlapping chunks that the embedder reads whole.

LlamaIndex's `SentenceSplitter` does the splitting, counting with the embedding model's own
word-piece tokenizer: all-MiniLM-L6-v2 stops reading at 256 pieces, so a longer chunk would be
cut silently. The title is embedded with every chunk, so its pieces count against the budget.
What the splitter lacks, and this module adds: each chunk's character offsets in the original file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from rag.documents import Document
from rag.text import headings_over

# [CLS] and [SEP] take two of the model's pieces, and the "title: ..." line a few more.
SPECIAL_PIECES = 2


@dataclass(frozen=True)
class Chunk:
    """A piece of one article, with where it sits in the original text."""

    chunk_id: str
    doc_id: str
    index: int
    text: str
    start: int
    end: int
    # (offset in `text`, offset in the original) where each of its lines starts: cleaning drops
    # lines between them, so one offset for the chunk cannot place a sentence inside it.
    lines: tuple[tuple[int, int], ...] = ()
    # The headings over its first line ("Version 2.1", "Fixed"), which an earlier chunk holds, and
    # whether one ends right before it (a heading it opens with goes inside that one).
    headings: tuple[str, ...] = ()
    after_heading: bool = False
    # The levels its file marks for those headings and the ones in its text (`Document.heading_levels`).
    heading_levels: tuple[tuple[str, int], ...] = ()


def embed_text(title: str, text: str) -> str:
    """The exact text that is embedded and indexed for a chunk: its article's title, then the chunk."""
    return f"title: {title}\n\n{text}"


def chunk_document(
    doc: Document, count_pieces: Callable[[str], list[int]], chunk_tokens: int, overlap: int
) -> list[Chunk]:
    """Sentence-aware chunks of `doc`, each within `chunk_tokens` pieces with its title."""
    from llama_index.core.node_parser import SentenceSplitter

    budget = chunk_tokens - SPECIAL_PIECES
    splitter = SentenceSplitter(chunk_size=budget, chunk_overlap=min(overlap, budget // 4), tokenizer=count_pieces)
    texts = splitter.split_text_metadata_aware(doc.text, embed_text(doc.title, ""))
    starts, cursor = [], 0
    for text in texts:
        starts.append(_locate(doc.text, text, cursor))
        cursor = starts[-1] + 1
    chunks, levels = [], dict(doc.heading_levels)
    for index, (text, start, (headings, after_heading)) in enumerate(
        zip(texts, starts, headings_over(doc.text, starts, levels))
    ):
        chunks.append(
            Chunk(
                chunk_id=chunk_id(doc.doc_id, doc.content_hash, index),
                doc_id=doc.doc_id,
                index=index,
                text=text,
                start=doc.original_offset(start),
                end=doc.original_offset(start + len(text) - 1) + 1,
                lines=line_map(doc, start, start + len(text)),
                headings=headings,
                after_heading=after_heading,
                heading_levels=tuple((h, n) for h, n in levels.items() if h in headings or h in text),
            )
        )
    return chunks


def line_map(doc: Document, start: int, end: int) -> tuple[tuple[int, int], ...]:
    """Where the lines of `doc.text[start:end]` start, in the chunk and in the original file."""
    pairs = [(0, doc.original_offset(start))]
    pairs += [(clean - start, original) for clean, original in doc.segments if start < clean < end]
    return tuple(pairs)


def chunk_id(doc_id: str, content_hash: str, index: int) -> str:
    """Derived from content, so that two writers of the same article write the same ids."""
    digest = hashlib.sha256(f"{doc_id}\0{content_hash}".encode()).hexdigest()[:16]
    return f"{digest}-{index}"


def _locate(text: str, chunk: str, cursor: int) -> int:
    """Start of `chunk` in `text`, searching from `cursor`; the splitter only trims white space."""
    found = text.find(chunk, cursor)
    if found < 0:
        found = text.find(chunk[:40], cursor)
    return found if found >= 0 else cursor
