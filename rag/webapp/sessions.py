"""What the chat app remembers from one event to the next: the clicks that end an answer, per browser
session, and each person's saved chats.

Stop, New chat and opening another chat do not use Gradio's `cancels`: cancelling a generator
mid-step lets that step's output reach the page after the cancel, and the page then waits on the
answer forever. Instead they note the time of the click for the session (`Interrupts`), and the
streaming answer looks at the note after every piece and ends itself cleanly (which also releases
the model at once).

Chats are saved when an answer is finished: with a login, on the server under the user's name
(`chats.ChatFolder`) and nowhere else; without one, in the person's browser (a Gradio
`BrowserState`, whose value the callbacks receive and send back). The record itself, and the rules
for a valid one, are rag/chats.py's. Not handled: the browser's copy is encrypted with a key kept
in the app's home folder, so a new home folder leaves the browser's old chats unreadable.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag import chats

log = logging.getLogger(__name__)


class Interrupts:
    """The last Stop, New chat or opened chat of each browser session, and when it came."""

    MAX_SESSIONS = 1000  # the oldest are forgotten

    def __init__(self) -> None:
        self.last: dict[str, tuple[float, str]] = {}  # session -> (when, "stop", "new" or "switch")

    def note(self, session: str, kind: str) -> None:
        """Note a click of the session: "stop", "new" or "switch"."""
        self.last.pop(session, None)  # to the end: the dict's order is the sessions' age
        self.last[session] = (time.monotonic(), kind)
        while len(self.last) > self.MAX_SESSIONS:
            self.last.pop(next(iter(self.last)))

    def since(self, session: str, asked_at: float) -> str:
        """The click the session made since `asked_at` (a `time.monotonic()`), else ""."""
        when, kind = self.last.get(session, (0.0, ""))
        return kind if when > asked_at else ""


def message_text(message: dict) -> str:
    """A chat message's text; Gradio hands messages back with content as a list of parts."""
    content = message.get("content", "")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def chat_record(chat_id: str, chat: list[dict], history: list[dict], sources: str) -> chats.Chat:
    """A chat as it is saved: titled by its first question, with what reopening it shows."""
    messages = [{"role": m.get("role", "assistant"), "content": message_text(m)} for m in chat]
    title = chats.title_for(history[0]["content"])
    return {"id": chat_id, "title": title, "messages": messages, "history": history, "sources": sources}


def browser_secret(home: Path) -> str:
    """The key of the browser's copy of the chats, kept across restarts (a fresh one if home is read-only)."""
    try:
        return chats.browser_key(home)
    except OSError as exc:
        log.warning("chats saved in the browser will not survive a restart: %s", exc)
        return secrets.token_hex(32)


class SavedChats:
    """A person's chats: in `folder` for a logged-in user, else the browser's copy; `folder` is None
    when the app asks for no login."""

    def __init__(self, folder: chats.ChatFolder | None) -> None:
        self.folder = folder

    def user(self, request: Any) -> str | None:
        """The logged-in user whose chats the server keeps, or None when they live in the browser."""
        return request.username if self.folder is not None and request.username else None

    def load(self, saved: list | None, request: Any) -> list[chats.Chat]:
        """The person's chats: from the server for a logged-in user, else the browser's copy `saved`."""
        user = self.user(request)
        return self.folder.load(user) if user and self.folder else chats.valid(saved)

    def change(self, saved: list | None, request: Any, change: Callable[[list], list]) -> tuple[list, bool]:
        """Apply `change` to the person's chats: the chats now, and whether the browser keeps them
        (its copy is then to be replaced by them)."""
        user = self.user(request)
        if user and self.folder:
            return self.folder.update(user, change), False
        return change(chats.valid(saved)), True
