"""All conversations, the current one, and their persistence.

`Storage` is implemented by the browser adapter on IndexedDB (web/
conversation_store.js) and by an in-memory dict in tests. Writes are fire and
forget: IndexedDB keeps them in order. A streaming answer is saved at most
every SAVE_INTERVAL seconds, so a closed tab loses at most that much of it.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from typing import Any, Callable, Protocol

from .conversation import Conversation, Settings

SAVE_INTERVAL = 0.5  # seconds between saves of a streaming answer


class Storage(Protocol):
    def save_conversation(self, conv_id: str, data: str) -> None: ...
    def delete_conversation(self, conv_id: str) -> None: ...
    def save_settings(self, data: str) -> None: ...


class MemoryStorage:
    """Storage in a dict: for tests, and when the browser refuses IndexedDB."""

    def __init__(self) -> None:
        self.conversations: dict[str, str] = {}
        self.settings = "{}"

    def save_conversation(self, conv_id: str, data: str) -> None:
        self.conversations[conv_id] = data

    def delete_conversation(self, conv_id: str) -> None:
        self.conversations.pop(conv_id, None)

    def save_settings(self, data: str) -> None:
        self.settings = data

    def dump(self) -> str:
        """What a reload would read back."""
        convs = [json.loads(v) for v in self.conversations.values()]
        return json.dumps({"conversations": convs, "settings": json.loads(self.settings)})


class Library:
    def __init__(self, storage: Storage, initial: str = "", clock: Callable[[], float] = time.time) -> None:
        """`initial` is what the store held at start: {"conversations": [...], "settings": {...}}."""
        self.storage = storage
        self.clock = clock
        data: dict[str, Any] = json.loads(initial) if initial else {}
        self.conversations: dict[str, Conversation] = {}
        for raw in data.get("conversations", []):
            conv = Conversation.from_dict(raw)
            _mark_interrupted(conv)
            self.conversations[conv.id] = conv
        self.app_settings: dict[str, Any] = data.get("settings", {}) or {}
        self._last_save: dict[str, float] = {}
        latest = self.listing()
        self.current = self.conversations[latest[0]["id"]] if latest else self.new()

    def new(self) -> Conversation:
        """A new, empty conversation with the current one's settings. Saved once it has a turn."""
        now = self.clock()
        current = getattr(self, "current", None)
        settings = copy.deepcopy(current.settings) if current else Settings()
        conv = Conversation(id=uuid.uuid4().hex[:12], created=now, updated=now, settings=settings)
        self.conversations[conv.id] = conv
        self.current = conv
        return conv

    def select(self, conv_id: str) -> Conversation | None:
        conv = self.conversations.get(conv_id)
        if conv is not None:
            self.current = conv
        return conv

    def rename(self, conv_id: str, title: str) -> bool:
        conv = self.conversations.get(conv_id)
        title = " ".join(title.split())
        if conv is None or not title:
            return False
        conv.title = title
        self.save(conv)
        return True

    def delete(self, conv_id: str) -> None:
        if self.conversations.pop(conv_id, None) is None:
            return
        self.storage.delete_conversation(conv_id)
        if self.current.id == conv_id:
            latest = self.listing()
            self.current = self.conversations[latest[0]["id"]] if latest else self.new()

    def save_due(self, conv: Conversation | None = None) -> bool:
        """Would a streaming save write now (SAVE_INTERVAL seconds since the last)?"""
        conv = conv or self.current
        return self.clock() - self._last_save.get(conv.id, 0.0) >= SAVE_INTERVAL

    def save(self, conv: Conversation | None = None, streaming: bool = False) -> None:
        """Write a conversation; while streaming, at most every SAVE_INTERVAL seconds."""
        conv = conv or self.current
        if streaming and not self.save_due(conv):
            return
        now = self.clock()
        if not conv.turns:
            return  # an empty new chat is not worth a row
        conv.updated = now
        self._last_save[conv.id] = now
        self.storage.save_conversation(conv.id, conv.to_json())

    def save_app_settings(self, **changes: Any) -> None:
        self.app_settings.update(changes)
        self.storage.save_settings(json.dumps(self.app_settings))

    def listing(self) -> list[dict[str, Any]]:
        """Conversations with at least one turn, newest first (plus the current one)."""
        shown = [c for c in self.conversations.values() if c.turns or c is getattr(self, "current", None)]
        shown.sort(key=lambda c: c.updated, reverse=True)
        return [{"id": c.id, "title": c.title or "New chat", "updated": c.updated, "turns": len(c.turns)} for c in shown]


def _mark_interrupted(conv: Conversation) -> None:
    """An answer that was streaming when the tab closed: keep it, say it is incomplete."""
    for turn in conv.turns:
        if turn.role == "assistant" and not turn.complete and not turn.end_reason:
            turn.end_reason = "interrupted"
