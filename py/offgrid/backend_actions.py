"""The backend side of the controller: the backend setting, a backend that
failed and was replaced (the worker falls back by itself), and the GPU-vs-CPU
self-test.

A handler of the controller (controller.py), like ConversationHandler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import protocol as p
from .state import State

if TYPE_CHECKING:
    from .controller import Controller

BACKENDS = ("auto", "webgpu", "wasm-mt", "wasm-st")


class BackendHandler:
    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        self.self_test_id = ""  # request id of the person's self-test

    @property
    def setting(self) -> str:
        """The backend setting: "auto" (the engine chooses), or one the person forced."""
        value = self.ctl.library.app_settings.get("backend", "auto")
        return value if value in BACKENDS else "auto"

    def on_BackendFallback(self, msg: p.BackendFallback) -> None:
        self.ctl.view.show_error(
            f"The {msg.from_backend} backend failed ({msg.reason}). Offgrid now runs on {msg.to_backend}.",
            "Your conversation is kept; answers may be slower.",
        )

    def on_SelfTestResult(self, msg: p.SelfTestResult) -> None:
        ctl = self.ctl
        ctl.last_self_test = msg
        ctl.show_diagnostics()
        if msg.error:
            if msg.id and msg.id == self.self_test_id:  # an automatic run that could not start stays quiet
                ctl.view.show_error(f"GPU self-test: {msg.error}", "")
        elif not msg.passed:
            ctl.view.show_error(
                f"GPU self-test failed: the GPU and the CPU agree on only {msg.agreement * 100:.0f}% of "
                f"{msg.n_tokens} tokens (needed {msg.threshold * 100:.0f}%).",
                "Offgrid prefers the CPU for this model on this device.",
            )

    def on_Diagnostics(self, msg: p.Diagnostics) -> None:
        # The worker reports fresh diagnostics when the person's self-test is done.
        if msg.id and msg.id == self.self_test_id and self.ctl.state is State.READY:
            self.self_test_id = ""
            self.ctl.ready()

    def run_self_test(self) -> None:
        """The diagnostics panel's self-test button: compare GPU and CPU decoding."""
        ctl = self.ctl
        if ctl.state is not State.READY:
            ctl.view.show_error("The self-test needs a loaded model and no answer being written.", "")
            return
        ctl.view.set_status("Running the GPU self-test…", "busy")
        self.self_test_id = ctl.send(p.SelfTest())
