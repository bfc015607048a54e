"""The chat controller: owns the conversation, the model lifecycle and the
generation state, and talks to the engine only through protocol frames.

Pure Python: `send` posts a frame (a JSON string) to the engine worker, and
`view` is anything with the `View` methods (the browser adapter, or a recorder
in tests). Frames from the engine come in through `on_frame`.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import asdict, replace
from typing import Any, Callable, Protocol

from . import protocol as p
from .conversation import Conversation


class State(enum.Enum):
    BOOTING = "booting"  # waiting for the engine's model list
    LOADING = "loading"  # a model is downloading or loading
    READY = "ready"  # a question can be sent
    GENERATING = "generating"
    FAILED = "failed"  # no model could be loaded; the error says why


# Which request each state accepts. Update `_TRANSITIONS` when a state is added.
_TRANSITIONS: dict[State, set[State]] = {
    State.BOOTING: {State.LOADING, State.FAILED},
    State.LOADING: {State.READY, State.FAILED},
    State.READY: {State.GENERATING, State.LOADING},
    State.GENERATING: {State.READY, State.FAILED},
    State.FAILED: {State.LOADING},
}


class View(Protocol):
    def set_status(self, text: str, state: str) -> None: ...
    def set_progress(self, fraction: float | None, detail: str) -> None: ...
    def add_message(self, key: int, role: str, text: str, complete: bool) -> None: ...
    def update_message(self, key: int, text: str, complete: bool, note: str) -> None: ...
    def set_generating(self, on: bool) -> None: ...
    def set_model(self, name: str, detail: str) -> None: ...
    def set_diagnostics(self, data: dict[str, Any]) -> None: ...
    def show_error(self, message: str, hint: str) -> None: ...


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


class Controller:
    def __init__(self, send: Callable[[str], None], view: View) -> None:
        self._send_raw = send
        self.view = view
        self.state = State.BOOTING
        self.conversation = Conversation()
        self.models: dict[str, p.ModelInfo] = {}
        self.default_model = ""
        self.model: p.ModelLoaded | None = None
        self.diagnostics: p.Diagnostics | None = None
        self.last_speed: p.Speed | None = None
        # Small models ramble when hot; a low temperature keeps answers on topic.
        self.sampling = p.Sampling(temperature=0.2)
        self._ids = (f"c{i}" for i in itertools.count(1))
        self._gen_id = ""  # request id of the running generation
        self._answer_key = -1  # turn index of the answer being generated
        self._pending_question = ""  # typed before the model was ready

    # ------------------------------------------------------------ outgoing

    def send(self, msg: p.Message) -> str:
        """Send a request, giving it a fresh id; returns that id."""
        msg_id = next(self._ids)
        self._send_raw(p.encode(replace(msg, id=msg_id)))
        return msg_id

    def _go(self, state: State) -> None:
        if state is not self.state and state not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"controller cannot go from {self.state.value} to {state.value}")
        self.state = state

    def start(self) -> None:
        self.view.set_status("Starting the engine…", "busy")
        self.send(p.ListModels())
        self.send(p.GetDiagnostics())

    def load_model(self, model_id: str) -> None:
        if model_id not in self.models:
            self.view.show_error(f"Unknown model {model_id!r}", "Pick a model from the list.")
            return
        self._go(State.LOADING)
        info = self.models[model_id]
        self.view.set_model(info.name, f"{info.quantization} · {_mb(info.bytes)}")
        self.view.set_status(f"Loading {info.name}…", "busy")
        self.send(p.LoadModel(model_id=model_id))

    def submit(self, text: str) -> bool:
        """A question from the person. Returns False when it was not accepted."""
        text = text.strip()
        if not text:
            return False
        if self.state is State.GENERATING:
            self.view.show_error("An answer is still being written.", "Wait for it, or press Stop.")
            return False
        if self.state is not State.READY:
            # Cold start: keep the question and send it as soon as the model is ready.
            self._pending_question = text
            self.view.set_status("Your question will be sent when the model is ready…", "busy")
            return True
        self.conversation.add("user", text)
        self.view.add_message(len(self.conversation.turns) - 1, "user", text, True)
        self._answer_key = self.conversation.add("assistant", "", complete=False)
        self.view.add_message(self._answer_key, "assistant", "", False)
        self._go(State.GENERATING)
        self.view.set_generating(True)
        self.view.set_status("Thinking…", "busy")
        self._gen_id = self.send(
            p.Chat(messages=self.conversation.to_messages(), sampling=self.sampling)
        )
        return True

    def stop(self) -> None:
        if self.state is State.GENERATING:
            self.view.set_status("Stopping…", "busy")
            self.send(p.Stop(target=self._gen_id))

    # ------------------------------------------------------------ incoming

    def on_frame(self, raw: str) -> None:
        try:
            msg = p.decode(raw)
        except p.ProtocolError as exc:
            # A frame we cannot read is a bug in one side; say so, keep the chat.
            self.view.show_error(f"Bad frame from the engine: {exc}", "Rebuild the app.")
            return
        handler = getattr(self, f"_on_{type(msg).__name__}", None)
        if handler is not None:
            handler(msg)

    def _on_Hello(self, msg: p.Hello) -> None:
        if msg.protocol_version != p.PROTOCOL_VERSION:
            self._fail(
                f"Engine speaks protocol {msg.protocol_version}, controller {p.PROTOCOL_VERSION}.",
                "The worker and the controller come from different builds: run `python3 build.py`.",
            )

    def _on_ModelList(self, msg: p.ModelList) -> None:
        self.models = {m.model_id: m for m in msg.models}
        self.default_model = msg.default_id
        if self.state is State.BOOTING and self.default_model:
            self.load_model(self.default_model)

    def _on_LoadProgress(self, msg: p.LoadProgress) -> None:
        frac = msg.loaded / msg.total if msg.total else None
        verb = {
            "download": "Downloading",
            "verify": "Verifying",
            "store": "Storing",
            "read": "Reading from storage",
            "init": "Starting",
        }[msg.phase]
        name = self.models[msg.model_id].name if msg.model_id in self.models else "model"
        detail = f"{_mb(msg.loaded)} / {_mb(msg.total)}" if msg.total else ""
        pct = f" {frac * 100:.0f}%" if frac is not None and msg.phase == "download" else ""
        self.view.set_progress(frac, detail)
        if self.state is State.LOADING:
            self.view.set_status(f"{verb} {name}{pct}…", "busy")

    def _on_ModelLoaded(self, msg: p.ModelLoaded) -> None:
        self.model = msg
        self._go(State.READY)
        self.view.set_progress(None, "")
        info = self.models.get(msg.model_id)
        name = info.name if info else msg.model_id
        quant = f"{info.quantization} · " if info else ""
        self.view.set_model(name, f"{quant}{msg.backend} · {msg.threads} thread(s) · ctx {msg.n_ctx}")
        self._ready()
        if self._pending_question:
            question, self._pending_question = self._pending_question, ""
            self.submit(question)

    def _on_ModelUnloaded(self, msg: p.ModelUnloaded) -> None:
        self.model = None

    def _on_Delta(self, msg: p.Delta) -> None:
        if msg.id != self._gen_id or self._answer_key < 0:
            return
        turn = self.conversation.turns[self._answer_key]
        turn.content += msg.text
        if self.state is State.GENERATING:
            self.view.set_status("Writing…", "busy")
        self.view.update_message(self._answer_key, turn.content, False, "")

    def _on_GenerateEnd(self, msg: p.GenerateEnd) -> None:
        if msg.id != self._gen_id:
            return
        turn = self.conversation.turns[self._answer_key]
        turn.complete = msg.reason in ("stop", "length")
        turn.end_reason = msg.reason
        note = {"aborted": "Stopped", "length": "Cut at the length limit", "error": "Failed"}.get(
            msg.reason, ""
        )
        self.view.update_message(self._answer_key, turn.content, True, note)
        self._end_generation()

    def _on_Speed(self, msg: p.Speed) -> None:
        self.last_speed = msg
        self._show_diagnostics()

    def _on_Diagnostics(self, msg: p.Diagnostics) -> None:
        self.diagnostics = msg
        self._show_diagnostics()

    def _on_EngineError(self, msg: p.EngineError) -> None:
        self.view.show_error(msg.message, msg.hint)
        if self.state is State.GENERATING and msg.id == self._gen_id:
            turn = self.conversation.turns[self._answer_key]
            turn.complete, turn.end_reason = False, "error"
            self.view.update_message(self._answer_key, turn.content, True, "Failed")
            self._end_generation()
        elif self.state is State.LOADING:
            self._fail(msg.message, msg.hint)

    # ------------------------------------------------------------ helpers

    def _end_generation(self) -> None:
        self._gen_id, self._answer_key = "", -1
        self._go(State.READY)
        self.view.set_generating(False)
        self._ready()

    def _ready(self) -> None:
        self.view.set_status("Ready", "ready")

    def _fail(self, message: str, hint: str) -> None:
        self._go(State.FAILED)
        self.view.set_progress(None, "")
        self.view.set_status(f"Error: {message}", "error")

    def _show_diagnostics(self) -> None:
        data: dict[str, Any] = asdict(self.diagnostics) if self.diagnostics else {}
        if self.last_speed:
            data["last_answer"] = asdict(self.last_speed)
        self.view.set_diagnostics(data)

