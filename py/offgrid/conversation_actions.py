"""The conversation side of the controller: new, open, rename, delete,
export, per-conversation settings, and drawing the current conversation.

A mixin of Controller (controller.py), split out to keep each file about one
thing; it uses the controller's library, view, state and model.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from . import protocol as p
from .backend_actions import BACKENDS

if TYPE_CHECKING:
    from .controller import Controller

NOTES = {"aborted": "Stopped", "length": "Cut at the length limit", "error": "Failed", "interrupted": "Interrupted"}


class ConversationActions:
    def _idle_or_refuse(self: Controller) -> bool:
        if self.state.value == "generating":
            self.view.show_error("An answer is still being written.", "Stop it first.")
            return False
        return True

    def new_conversation(self: Controller) -> None:
        if self._idle_or_refuse():
            self.library.new()
            self._window_start = 0
            self._show_conversation()

    def select_conversation(self: Controller, conv_id: str) -> None:
        if self._idle_or_refuse() and self.library.select(conv_id):
            self._window_start = 0
            self._show_conversation()

    def rename_conversation(self: Controller, conv_id: str, title: str) -> None:
        if self.library.rename(conv_id, title):
            self._show_conversations()

    def delete_conversation(self: Controller, conv_id: str) -> None:
        if conv_id == self.conversation.id and not self._idle_or_refuse():
            return
        self.library.delete(conv_id)
        self._show_conversation()

    def export_conversation(self: Controller, fmt: str) -> None:
        conv = self.conversation
        name = "".join(c if c.isalnum() else "-" for c in (conv.title or "conversation").lower()).strip("-")[:40]
        if fmt == "json":
            self.view.download(f"{name}.json", "application/json", json.dumps(conv.to_dict(), indent=1, ensure_ascii=False))
        else:
            self.view.download(f"{name}.md", "text/markdown", conv.to_markdown())

    def update_settings(self: Controller, raw: str) -> bool:
        """Settings from the panel (JSON): system prompt, sampling, context size."""
        try:
            data = json.loads(raw)
            sampling = p.decode(json.dumps({"type": "Complete", "v": p.PROTOCOL_VERSION,
                                            "sampling": {**asdict(self.sampling), **data.get("sampling", {})}})).sampling
            n_ctx = int(data.get("n_ctx", self.n_ctx_setting))
            backend = str(data.get("backend", self.backend))
            if backend not in BACKENDS:
                raise p.ProtocolError("bad_field", f"backend = {backend!r} is not auto, webgpu, wasm-mt or wasm-st", "backend")
            if not 128 <= n_ctx <= 131072:
                raise p.ProtocolError("bad_field", f"n_ctx = {n_ctx} is outside [128, 131072]", "n_ctx")
        except (ValueError, TypeError) as exc:
            self.view.show_error(f"Settings not saved: {exc}", "Fix the highlighted value and save again.")
            return False
        conv = self.conversation
        conv.settings.system_prompt = str(data.get("system_prompt", conv.settings.system_prompt))
        conv.settings.sampling = sampling
        self.library.save(conv)
        reload = n_ctx != self.n_ctx_setting or backend != self.backend
        self.library.save_app_settings(n_ctx=n_ctx, backend=backend)
        if reload and self.model and self.state.value == "ready":
            self.load_model(self.model.model_id)  # a new context size needs a new engine context
        self.view.set_settings({**asdict(conv.settings), "n_ctx": self.n_ctx_setting, "backend": self.backend})
        return True

    def _show_conversations(self: Controller) -> None:
        self.view.set_conversations(self.library.listing(), self.conversation.id)

    def _show_conversation(self: Controller) -> None:
        """Redraw the current conversation, its settings and the list."""
        conv = self.conversation
        self.view.clear_messages()
        for i, t in enumerate(conv.turns):
            self.view.add_message(i, t.role, t.content, t.complete or t.role == "user")
            if t.role == "assistant" and not t.complete:
                self.view.update_message(i, t.content, True, NOTES.get(t.end_reason, ""))
        self.view.set_out_of_view(min(self._window_start, len(conv.turns)))
        self._show_can_continue()
        self.view.set_settings({**asdict(conv.settings), "n_ctx": self.n_ctx_setting, "backend": self.backend})
        self._show_conversations()
