"""The backend side of the controller: the backend setting, a backend that
failed and was replaced (the worker falls back by itself), and the GPU-vs-CPU
self-test.

A mixin of Controller (controller.py), like ConversationActions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import protocol as p

if TYPE_CHECKING:
    from .controller import Controller

BACKENDS = ("auto", "webgpu", "wasm-mt", "wasm-st")


class BackendActions:
    @property
    def backend(self: Controller) -> str:
        """The backend setting: "auto" (the engine chooses), or one the person forced."""
        value = self.library.app_settings.get("backend", "auto")
        return value if value in BACKENDS else "auto"

    def _on_BackendFallback(self: Controller, msg: p.BackendFallback) -> None:
        self.view.show_error(
            f"The {msg.from_backend} backend failed ({msg.reason}). Offgrid now runs on {msg.to_backend}.",
            "Your conversation is kept; answers may be slower.",
        )

    def _on_SelfTestResult(self: Controller, msg: p.SelfTestResult) -> None:
        self.last_self_test = msg
        self._show_diagnostics()
        if msg.error:
            if msg.id and msg.id == self._self_test_id:  # an automatic run that could not start stays quiet
                self.view.show_error(f"GPU self-test: {msg.error}", "")
        elif not msg.passed:
            self.view.show_error(
                f"GPU self-test failed: the GPU and the CPU agree on only {msg.agreement * 100:.0f}% of "
                f"{msg.n_tokens} tokens (needed {msg.threshold * 100:.0f}%).",
                "Offgrid prefers the CPU for this model on this device.",
            )

    def run_self_test(self: Controller) -> None:
        """The diagnostics panel's self-test button: compare GPU and CPU decoding."""
        if self.state.value != "ready":
            self.view.show_error("The self-test needs a loaded model and no answer being written.", "")
            return
        self.view.set_status("Running the GPU self-test…", "busy")
        self._self_test_id = self.send(p.SelfTest())

