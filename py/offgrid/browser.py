"""The one module that knows about JavaScript: it wires the controller to the
page's bridge (frames to and from the engine worker), view (the DOM),
conversation store (IndexedDB) and scripting API (window.offgrid, whose
requests the controller relays).

Only plain values cross the boundary (strings, numbers, JSON text), so no
proxy outlives a call except the two created in `start`.
"""

from __future__ import annotations

import json
from typing import Any

from pyodide.ffi import create_proxy  # type: ignore[import-not-found]

from .controller import Controller
from .library import Library


class JsView:
    """Adapts the controller's View calls to web/view.js."""

    def __init__(self, js_view: Any) -> None:
        self._js = js_view
        self._append = js_view.appendMessage  # called once per streamed token: looked up once

    def set_status(self, text: str, state: str) -> None:
        self._js.setStatus(text, state)

    def set_progress(self, fraction: float | None, detail: str) -> None:
        self._js.setProgress(-1 if fraction is None else fraction, detail)

    def add_message(self, key: int, role: str, text: str, complete: bool) -> None:
        self._js.addMessage(key, role, text, complete)

    def update_message(self, key: int, text: str, complete: bool, note: str) -> None:
        self._js.updateMessage(key, text, complete, note)

    def append_message(self, key: int, text: str) -> None:
        self._append(key, text)

    def clear_messages(self) -> None:
        self._js.clearMessages()

    def set_out_of_view(self, first_key: int) -> None:
        self._js.setOutOfView(first_key)

    def set_generating(self, on: bool) -> None:
        self._js.setGenerating(on)

    def set_accepting(self, on: bool) -> None:
        self._js.setAccepting(on)

    def set_model(self, name: str, detail: str) -> None:
        self._js.setModel(name, detail)

    def set_models(self, models: list[dict[str, Any]], current: str) -> None:
        self._js.setModels(json.dumps(models), current)

    def set_can_continue(self, on: bool) -> None:
        self._js.setCanContinue(on)

    def set_conversations(self, items: list[dict[str, Any]], current: str) -> None:
        self._js.setConversations(json.dumps(items), current)

    def set_settings(self, settings: dict[str, Any]) -> None:
        self._js.setSettings(json.dumps(settings))

    def set_diagnostics(self, data: dict[str, Any]) -> None:
        self._js.setDiagnostics(json.dumps(data))

    def show_error(self, message: str, hint: str) -> None:
        self._js.showError(message, hint)

    def show_notice(self, text: str) -> None:
        self._js.showNotice(text)

    def set_storage(self, data: dict[str, Any]) -> None:
        self._js.setStorage(json.dumps(data))

    def download(self, filename: str, mime: str, text: str) -> None:
        self._js.download(filename, mime, text)

    def persist_storage(self) -> None:
        self._js.persistStorage()


class JsStorage:
    """Adapts the Library's Storage calls to web/conversation_store.js (fire and forget)."""

    def __init__(self, js_store: Any) -> None:
        self._js = js_store

    def save_conversation(self, conv_id: str, data: str) -> None:
        self._js.save(conv_id, data)

    def delete_conversation(self, conv_id: str) -> None:
        self._js.remove(conv_id)

    def save_settings(self, data: str) -> None:
        self._js.saveSettings(data)


def start(bridge: Any, js_view: Any, js_store: Any, initial: str, scripts: Any) -> Controller:
    """Called once by web/page/main.js after Pyodide has loaded this package.

    `initial` is the conversation store's content, read while Pyodide booted;
    `scripts.deliver` takes the events that answer window.offgrid's requests.
    """
    library = Library(JsStorage(js_store), initial)
    controller = Controller(send=bridge.send, view=JsView(js_view), library=library)
    controller.attach_script(scripts.deliver)
    bridge.attach(create_proxy(controller.on_frame))
    # One proxy for the controller's lifetime; the view calls its action methods.
    js_view.bind(create_proxy(controller))
    controller.start()
    return controller
