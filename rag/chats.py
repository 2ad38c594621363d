"""Saved chats: each person's past conversations, so that a reload or a restart loses nothing.

A chat is plain JSON: its id, its title (the first question), the messages as the chat shows
them, the plain-text history that follow-up questions are read with, and the sources panel of
its last answer. Without a login the list lives only in the person's browser (the app keeps it
in Gradio's `BrowserState`); with a login the app keeps it here, one file per user name under
`<home>/chats/`, so it follows the user to any browser and no user sees another's.

Saves are whole or not at all (a `kill -9` keeps the previous list), and one at a time across
processes too, so two apps on one home lose no chat.

Not handled: two tabs of one browser without a login each save their own copy of the list, so
the tab that saves last wins.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

Chat = dict  # {"id", "title", "messages", "history", "sources"}
MAX_CHATS = 50  # the oldest are forgotten: a browser's storage holds a few megabytes
TITLE_CHARS = 60


def new_id() -> str:
    """A fresh chat id."""
    return uuid.uuid4().hex[:16]


def title_for(question: str) -> str:
    """A chat's title: its first question, shortened."""
    question = " ".join(question.split())
    return question if len(question) <= TITLE_CHARS else question[: TITLE_CHARS - 1].rstrip() + "…"


def is_chat(value: object) -> bool:
    """Whether a stored value has a chat's shape (storage may hold an older or damaged list)."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("id"), str)
        and isinstance(value.get("title"), str)
        and isinstance(value.get("messages"), list)
        and isinstance(value.get("history"), list)
    )


def valid(chats: object) -> list[Chat]:
    """The chats of a stored list, skipping anything that is not one."""
    return [chat for chat in chats if is_chat(chat)] if isinstance(chats, list) else []


def find(chats: list[Chat], chat_id: str) -> Chat | None:
    """The chat with that id, or None."""
    return next((chat for chat in chats if chat["id"] == chat_id), None)


def with_chat(chats: list[Chat], chat: Chat) -> list[Chat]:
    """The list with `chat` first (replacing its older copy), the oldest beyond MAX_CHATS dropped."""
    return [chat, *(other for other in chats if other["id"] != chat["id"])][:MAX_CHATS]


def without(chats: list[Chat], chat_id: str) -> list[Chat]:
    """The list without the chat with that id."""
    return [chat for chat in chats if chat["id"] != chat_id]


def choices(chats: list[Chat]) -> list[tuple[str, str]]:
    """(title, id) of each chat, newest first, for the list the app shows."""
    return [(chat["title"], chat["id"]) for chat in chats]


def user_file_name(user: str) -> str:
    """A file name for a user's chats: readable, and distinct for distinct names (a hash decides)."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "_", user).strip("_")[:40] or "user"
    return f"{readable}-{hashlib.sha256(user.encode()).hexdigest()[:16]}.json"


class ChatFolder:
    """Chats kept on the server, one JSON file per user; only used when the app asks for a login."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()  # one read-change-write at a time, so no save is lost (with the folder lock)

    def path(self, user: str) -> Path:
        """The file holding a user's chats."""
        return self.folder / user_file_name(user)

    def load(self, user: str) -> list[Chat]:
        """A user's chats, newest first; none when the file is missing or unreadable."""
        try:
            return valid(json.loads(self.path(user).read_text(encoding="utf-8")))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("could not read the saved chats in %s: %s", self.path(user), exc)
            return []

    def update(self, user: str, change: Callable[[list[Chat]], list[Chat]]) -> list[Chat]:
        """Apply `change` to a user's chats and save the result; returns it."""
        with self._lock, self._folder_lock():
            chats = change(self.load(user))
            self._write(self.path(user), chats)
            return chats

    @contextlib.contextmanager
    def _folder_lock(self) -> Iterator[None]:
        """The folder locked against other processes (two apps on one home) for one read-change-write."""
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = os.open(self.folder, os.O_RDONLY)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the descriptor closes
            yield
        finally:
            os.close(handle)

    def _write(self, path: Path, chats: list[Chat]) -> None:
        """Write the file whole or not at all: a crash mid-write keeps the previous list."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".saving-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(chats, out, ensure_ascii=False)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def browser_key(home: Path) -> str:
    """The key the browser's copy of the chats is encrypted with, made once and kept in `home`.

    Gradio picks a new random key at every start by default, which would make every chat saved
    before a restart unreadable.
    """
    path = home / "browser-key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=home, prefix=".key-")  # mode 0600: this user only
        with os.fdopen(handle, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):  # another process made one first: theirs is used
            os.link(temporary, path)  # appears whole or not at all
        os.unlink(temporary)
    return path.read_text(encoding="ascii").strip()
