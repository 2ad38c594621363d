"""Uploads: a file someone sends is checked, renamed and written inside the corpus folder only.

Ingest (rag/ingest.py) then reads it like any other article. The checks are the same for every
way a file arrives (the app's upload box, the HTTP API's /v1/ingest): a supported type whose
bytes match it, under the size limit, and a name that cannot reach outside `<corpus>/uploads/`
(folders, `..`, NUL and other characters become `_`, and long names are cut). A file appears
there whole or not at all, so an ingest never reads half an upload.
Paths the API is asked to ingest must lie inside the corpus folder.
"""

from __future__ import annotations

import os
import re
import unicodedata
import uuid
from pathlib import Path

from rag.documents import SUPPORTED_SUFFIXES
from rag.errors import BadInput, StoreError, TooLarge

UPLOAD_FOLDER = "uploads"  # uploads land in <corpus>/uploads/, apart from the articles already there


def safe_name(name: str) -> str:
    """A file name safe to write: no folders, no leading dot, only letters, digits, `.`, `_`, `-`."""
    base = unicodedata.normalize("NFKC", name.replace("\\", "/").rsplit("/", 1)[-1])
    stem, suffix = os.path.splitext(base)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:80] or "upload"
    return stem + suffix.lower()


def check_upload(name: str, data: bytes, max_bytes: int) -> None:
    """Refuse a file that is too big, of a type we do not read, or whose bytes do not match its type."""
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise BadInput(f"{name}: only {', '.join(SUPPORTED_SUFFIXES)} files can be added")
    if len(data) > max_bytes:
        raise TooLarge(f"{name} is {len(data):,} bytes; the limit is {max_bytes:,}")
    if suffix == ".pdf" and not data.startswith(b"%PDF-"):
        raise BadInput(f"{name} is not a PDF file")
    if suffix != ".pdf" and b"\x00" in data[:8192]:
        raise BadInput(f"{name} looks binary, not text")


def store_upload(source: Path, corpus: Path, max_bytes: int) -> Path:
    """Copy an uploaded file into `<corpus>/uploads/` under a safe, unused name; return where it went."""
    if source.stat().st_size > max_bytes:  # before reading: a huge file is refused without loading it
        raise TooLarge(f"{source.name} is {source.stat().st_size:,} bytes; the limit is {max_bytes:,}")
    return store_upload_data(source.name, source.read_bytes(), corpus, max_bytes)


def store_upload_data(name: str, data: bytes, corpus: Path, max_bytes: int) -> Path:
    """Write an upload's bytes into `<corpus>/uploads/` under a safe, unused name; return where they went."""
    name = safe_name(name)
    check_upload(name, data, max_bytes)
    folder = upload_folder(corpus)
    stem, suffix = os.path.splitext(name)
    for n in range(1, 1000):
        target = folder / (name if n == 1 else f"{stem}-{n}{suffix}")
        if target.is_file() and not target.is_symlink() and target.read_bytes() == data:
            return target  # the same file again: nothing to write
        try:
            write_new(target, data)
            return target
        except FileExistsError:
            continue
        except OSError as exc:  # a full disk, a file size limit
            raise StoreError(f"cannot store the upload {name} in {folder}: {exc.strerror or exc}") from exc
    raise BadInput(f"too many uploads named {name}")


def write_new(target: Path, data: bytes) -> None:
    """Write a file that appears whole or not at all and never replaces (or follows) what is there;
    FileExistsError when the name is taken. A crash or a full disk part-way leaves at most a
    hidden temporary file, which ingest does not read."""
    temporary = target.with_name(f".uploading-{uuid.uuid4().hex}")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.link(temporary, target)  # fails when the name is taken, whatever it names
    finally:
        temporary.unlink(missing_ok=True)


def corpus_paths(paths: list[str], corpus: Path) -> list[Path]:
    """Paths named by a caller (relative to the corpus, or absolute) that exist inside the corpus folder."""
    root = corpus.resolve()
    found = []
    for name in paths:
        try:
            path = (root / name).resolve()  # an absolute `name` replaces root; `..` and links are resolved
            inside = path.is_relative_to(root)
            exists = inside and path.exists()
        except (OSError, ValueError) as exc:  # a NUL byte, or a name longer than the file system takes
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise BadInput(f"{name[:80]!r} cannot be a path here ({reason.lower()})") from exc
        if not inside:
            raise BadInput(f"{name} is outside the articles folder {root}")
        if not exists:
            raise BadInput(f"no such file or folder in the articles folder: {name}")
        found.append(path)
    return found


def upload_folder(corpus: Path) -> Path:
    """`<corpus>/uploads/`, created; refused when a link points it outside the corpus."""
    folder = (corpus / UPLOAD_FOLDER).resolve()
    if not folder.is_relative_to(corpus.resolve()):
        raise BadInput(f"the uploads folder {folder} is outside the corpus folder")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
