"""The conversation side of the controller: new, open, rename, delete,
export, per-conversation settings, and drawing the current conversation.

A handler of the controller (controller.py), split out to keep each file
about one thing; it uses the controller's library, view, state and model.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from . import protocol as p
from .backend_actions import BACKENDS
from .state import State

if TYPE_CHECKING:
    from .controller import Controller

NOTES = {"aborted": "Stopped", "length": "Cut at the length limit", "error": "Failed", "interrupted": "Interrupted"}


class ConversationHandler:
    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl

    def _idle_or_refuse(self) -> bool:
        if self.ctl.state is State.GENERATING:
            self.ctl.view.show_error("An answer is still being written.", "Stop it first.")
            return False
        return True

    def new(self) -> None:
        if self._idle_or_refuse():
            self.ctl.library.new()
            self.ctl.window_start = 0
            self.show()

    def select(self, conv_id: str) -> None:
        if self._idle_or_refuse() and self.ctl.library.select(conv_id):
            self.ctl.window_start = 0
            self.show()

    def rename(self, conv_id: str, title: str) -> None:
        self.ctl.answers.fold()  # the library saves it: with the answer as far as it has come
        if self.ctl.library.rename(conv_id, title):
            self.show_list()

    def delete(self, conv_id: str) -> None:
        if conv_id == self.ctl.conversation.id and not self._idle_or_refuse():
            return
        self.ctl.library.delete(conv_id)
        self.show()

    def export(self, fmt: str) -> None:
        conv = self.ctl.conversation
        name = "".join(c if c.isalnum() else "-" for c in (conv.title or "conversation").lower()).strip("-")[:40]
        if fmt == "json":
            self.ctl.view.download(f"{name}.json", "application/json", json.dumps(conv.to_dict(), indent=1, ensure_ascii=False))
        else:
            self.ctl.view.download(f"{name}.md", "text/markdown", conv.to_markdown())

    def update_settings(self, raw: str) -> bool:
        """Settings from the panel (JSON): system prompt, sampling, context size."""
        ctl = self.ctl
        try:
            data = json.loads(raw)
            sampling = p.decode(json.dumps({"type": "Complete", "v": p.PROTOCOL_VERSION,
                                            "sampling": {**asdict(ctl.sampling), **data.get("sampling", {})}})).sampling
            n_ctx = int(data.get("n_ctx", ctl.n_ctx_setting))
            backend = str(data.get("backend", ctl.backends.setting))
            if backend not in BACKENDS:
                raise p.ProtocolError("bad_field", f"backend = {backend!r} is not auto, webgpu, wasm-mt or wasm-st", "backend")
            if not 128 <= n_ctx <= 131072:
                raise p.ProtocolError("bad_field", f"n_ctx = {n_ctx} is outside [128, 131072]", "n_ctx")
        except (ValueError, TypeError) as exc:
            ctl.view.show_error(f"Settings not saved: {exc}", "Fix the highlighted value and save again.")
            return False
        conv = ctl.conversation
        conv.settings.system_prompt = str(data.get("system_prompt", conv.settings.system_prompt))
        conv.settings.sampling = sampling
        ctl.library.save(conv)
        reload = n_ctx != ctl.n_ctx_setting or backend != ctl.backends.setting
        ctl.library.save_app_settings(n_ctx=n_ctx, backend=backend)
        if reload and ctl.model and ctl.state is State.READY:
            ctl.load_model(ctl.model.model_id)  # a new context size needs a new engine context
        self._show_settings()
        return True

    def show_list(self) -> None:
        self.ctl.view.set_conversations(self.ctl.library.listing(), self.ctl.conversation.id)

    def show(self) -> None:
        """Redraw the current conversation, its settings and the list."""
        ctl = self.ctl
        conv = ctl.conversation
        ctl.view.clear_messages()
        for i, t in enumerate(conv.turns):
            ctl.view.add_message(i, t.role, t.content, t.complete or t.role == "user")
            if t.role == "assistant" and not t.complete and i != ctl.answers.key:
                ctl.view.update_message(i, t.content, True, NOTES.get(t.end_reason, ""))
        ctl.view.set_out_of_view(min(ctl.window_start, len(conv.turns)))
        ctl.show_can_continue()
        self._show_settings()
        self.show_list()

    def _show_settings(self) -> None:
        settings = self.ctl.conversation.settings
        self.ctl.view.set_settings({**asdict(settings), "n_ctx": self.ctl.n_ctx_setting, "backend": self.ctl.backends.setting})
