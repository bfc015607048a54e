"""The chat controller: owns the conversation, the model lifecycle and the
generation state, and talks to the engine only through protocol frames.

Pure Python: `send` posts a frame (a JSON string) to the engine worker, and
`view` is anything with the `View` methods (the browser adapter, or a recorder
in tests). Frames from the engine come in through `on_frame`.
"""

from __future__ import annotations

import enum
import itertools
import json
from dataclasses import asdict, replace
from typing import Any, Callable, Protocol

from . import protocol as p
from .conversation import Conversation


class State(enum.Enum):
    BOOTING = "booting"  # waiting for the engine's model list
    LOADING = "loading"  # a model is downloading or loading
    READY = "ready"  # a question can be sent
    GENERATING = "generating"
    IDLE = "idle"  # no model loaded (after Unload)
    FAILED = "failed"  # no model could be loaded; the error says why


# Where each state may go. Update it whenever a state is added.
# READY is reachable from every state but GENERATING's own, because a script
# (window.offgrid) may load a model behind the controller's back.
_TRANSITIONS: dict[State, set[State]] = {
    State.BOOTING: {State.LOADING, State.READY, State.FAILED},
    State.LOADING: {State.READY, State.FAILED, State.IDLE},
    State.READY: {State.GENERATING, State.LOADING, State.IDLE, State.FAILED},
    State.GENERATING: {State.READY, State.FAILED},
    State.IDLE: {State.LOADING, State.READY, State.FAILED},
    State.FAILED: {State.LOADING, State.READY, State.IDLE},
}


class View(Protocol):
    def set_status(self, text: str, state: str) -> None: ...
    def set_progress(self, fraction: float | None, detail: str) -> None: ...
    def add_message(self, key: int, role: str, text: str, complete: bool) -> None: ...
    def update_message(self, key: int, text: str, complete: bool, note: str) -> None: ...
    def set_generating(self, on: bool) -> None: ...
    def set_model(self, name: str, detail: str) -> None: ...
    def set_models(self, models: list[dict[str, Any]], current: str) -> None: ...
    def set_can_continue(self, on: bool) -> None: ...
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
        self._load_id = ""  # request id of the running LoadModel/SwitchModel
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
        """Load a model, or switch to it; the conversation is kept either way."""
        if model_id not in self.models:
            self.view.show_error(f"Unknown model {model_id!r}", "Pick a model from the list.")
            return
        if self.state is State.GENERATING:
            self.view.show_error("An answer is still being written.", "Stop it before switching models.")
            return
        switching = self.model is not None
        self._go(State.LOADING)
        self.view.set_can_continue(False)
        info = self.models[model_id]
        self.view.set_model(info.name, f"{info.quantization} · {_mb(info.bytes)}")
        self.view.set_status(f"Loading {info.name}…", "busy")
        request = p.SwitchModel if switching else p.LoadModel
        self._load_id = self.send(request(model_id=model_id))

    switch_model = load_model

    def unload(self) -> None:
        if self.state in (State.READY, State.FAILED):
            self.view.set_status("Unloading…", "busy")
            self.send(p.UnloadModel())

    def continue_answer(self) -> bool:
        """Extend the last answer if it was stopped or cut at the length limit."""
        turns = self.conversation.turns
        if self.state is not State.READY or not turns or turns[-1].role != "assistant" or turns[-1].complete:
            return False
        if not turns[-1].content:
            return False
        self._answer_key = len(turns) - 1
        self._start_generation(p.Continue(messages=self.conversation.to_messages(), sampling=self.sampling))
        self.view.update_message(self._answer_key, turns[-1].content, False, "")
        return True

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
        self._start_generation(p.Chat(messages=self.conversation.to_messages(), sampling=self.sampling))
        return True

    def _start_generation(self, request: p.Chat | p.Continue) -> None:
        self._go(State.GENERATING)
        self.conversation.turns[self._answer_key].complete = False
        self.view.set_generating(True)
        self.view.set_can_continue(False)
        self.view.set_status("Thinking…", "busy")
        self._gen_id = self.send(request)

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
        self._show_models()
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
        if self.state is State.GENERATING:
            return  # an InspectModel answer; nothing changed
        self._go(State.READY)
        self.view.set_progress(None, "")
        quant = f"{msg.quantization} · " if msg.quantization else ""
        self.view.set_model(msg.name or msg.model_id, f"{quant}{msg.backend} · {msg.threads} thread(s) · ctx {msg.n_ctx}")
        self._show_models()
        self._ready()
        if self._pending_question:
            question, self._pending_question = self._pending_question, ""
            self.submit(question)

    def _on_ModelUnloaded(self, msg: p.ModelUnloaded) -> None:
        self.model = None
        if self.state in (State.READY, State.FAILED):
            self._go(State.IDLE)
            self.view.set_model("No model loaded", "")
            self.view.set_status("No model loaded: pick one to chat", "idle")
            self._show_models()

    def _on_Delta(self, msg: p.Delta) -> None:
        if msg.id != self._gen_id or self._answer_key < 0:
            return
        turn = self.conversation.turns[self._answer_key]
        turn.content += msg.text
        if self.state is State.GENERATING:
            self.view.set_status("Writing…", "busy")
        self.view.update_message(self._answer_key, turn.content, False, "")

    def _on_GenerateEnd(self, msg: p.GenerateEnd) -> None:
        if not self._gen_id or msg.id != self._gen_id:
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
        elif self.state is State.LOADING and msg.id == self._load_id:
            if self.model is not None:  # a switch failed before the old model was unloaded
                self._go(State.READY)
                self.view.set_progress(None, "")
                self._show_models()
                self._ready()
            else:
                self._fail(msg.message, msg.hint)

    # ------------------------------------------------------------ helpers

    def _end_generation(self) -> None:
        self._gen_id, self._answer_key = "", -1
        self._go(State.READY)
        self.view.set_generating(False)
        last = self.conversation.turns[-1]
        self.view.set_can_continue(last.role == "assistant" and not last.complete and bool(last.content))
        self._ready()

    def _show_models(self) -> None:
        current = self.model.model_id if self.model else ""
        self.view.set_models([asdict(m) for m in self.models.values()], current)

    def snapshot(self) -> dict[str, Any]:
        """Plain data for window.offgrid.state()."""
        return {
            "state": self.state.value,
            "model_id": self.model.model_id if self.model else "",
            "turns": [asdict(t) for t in self.conversation.turns],
        }

    def snapshot_json(self) -> str:
        return json.dumps(self.snapshot())

    def _ready(self) -> None:
        self.view.set_status("Ready", "ready")

    def _fail(self, message: str, hint: str) -> None:
        self._go(State.FAILED)
        self.view.set_progress(None, "")
        self.view.set_status(f"Error: {message}", "error")
        if hint:
            self.view.show_error(message, hint)

    def _show_diagnostics(self) -> None:
        data: dict[str, Any] = asdict(self.diagnostics) if self.diagnostics else {}
        if self.last_speed:
            data["last_answer"] = asdict(self.last_speed)
        self.view.set_diagnostics(data)

