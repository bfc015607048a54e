"""The chat controller: owns the conversations, the model lifecycle and the
generation state, and is the engine's one client: it talks to the engine only
through protocol frames, and scripts (window.offgrid) reach the engine through
it (`relay`).

Pure Python: `send` posts a frame (a JSON string) to the engine worker, `view`
is anything with the View methods (the browser adapter, or a recorder in
tests), and the Library persists conversations. Frames from the engine come in
through `on_frame`, and each goes to the part that asked for it: the answer to
one of the controller's requests to its handlers (answers.py: asking and
streaming; conversation_actions.py, storage_actions.py, backend_actions.py),
the answer to a script's request back to that script.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from dataclasses import asdict, replace
from typing import Any, Callable

from . import context
from . import protocol as p
from .answers import AnswerHandler
from .backend_actions import BackendHandler
from .conversation import Conversation
from .conversation_actions import ConversationHandler
from .library import Library, MemoryStorage
from .state import TAKES_QUESTIONS, TRANSITIONS, State
from .storage_actions import StorageHandler, size
from .view import View

__all__ = ["Controller", "State", "View"]

# A script's load, switch or unload becomes the controller's own: it shows the
# model's progress, its arrival, its failure.
_LIFECYCLE = frozenset({"LoadModel", "SwitchModel", "UnloadModel"})
_LOAD_EVENTS = frozenset({"LoadProgress", "ModelLoaded", "ModelUnloaded", "BackendFallback", "Diagnostics", "EngineError"})
# Whatever a script asked, these say the engine's model changed (a fallback reloads it during
# a generation, DeleteModel unloads the model in use): the controller takes them too. The
# answers to InspectModel and GetDiagnostics only describe; they stay the script's.
_MODEL_EVENTS = frozenset({"ModelLoaded", "ModelUnloaded", "BackendFallback", "Diagnostics"})
_DESCRIBE = frozenset({"InspectModel", "GetDiagnostics"})


def _takes(request: str, event: Any) -> bool:
    """Does the controller handle `event` (a type name), answering a script's `request`?"""
    if request in _LIFECYCLE:
        return event in _LOAD_EVENTS
    return request not in _DESCRIBE and event in _MODEL_EVENTS


class Controller:
    def __init__(self, send: Callable[[str], None], view: View, library: Library | None = None) -> None:
        self._send_raw = send
        self.view = view
        self.library = library or Library(MemoryStorage())
        self.state = State.BOOTING
        self.models: dict[str, p.ModelInfo] = {}
        self.default_model = ""
        self.model: p.ModelLoaded | None = None
        self.diagnostics: p.Diagnostics | None = None
        self.last_speed: p.Speed | None = None
        self.last_self_test: p.SelfTestResult | None = None
        self.window_start = 0  # first turn the model saw in the last request
        self._model_detail = ""  # the header's model line, before the last answer's speed
        self._counter = itertools.count(1)
        self._sent = 0  # requests sent: this controller's ids are c1 .. c<_sent>
        self._load_id = ""  # request id of the running LoadModel/SwitchModel (the controller's or a script's)
        self._scripts: dict[str, str] = {}  # request id -> type, of a script's requests that wait for events
        self._script_sink: Callable[[str], None] | None = None
        self.answers = AnswerHandler(self)
        self.conversations = ConversationHandler(self)
        self.storage = StorageHandler(self)
        self.backends = BackendHandler(self)
        # Event type -> the handlers' on_<Type> methods, the controller's first.
        self._routes: dict[str, list[Callable[[Any], None]]] = defaultdict(list)
        for part in (self, self.answers, self.storage, self.backends):
            for name in dir(type(part)):
                if name.startswith("on_") and name[3:] in p.MESSAGE_TYPES:
                    self._routes[name[3:]].append(getattr(part, name))

    @property
    def conversation(self) -> Conversation:
        """The current conversation, with the answer being written brought up to date."""
        self.answers.fold()
        return self.library.current

    @property
    def sampling(self) -> p.Sampling:
        return self.library.current.settings.sampling

    @property
    def n_ctx_setting(self) -> int:
        """The context the person asked for (Settings)."""
        return int(self.library.app_settings.get("n_ctx", 2048))

    @property
    def n_ctx(self) -> int:
        """The context the window is planned for: the loaded one, which the engine may have made smaller to fit memory."""
        loaded = self.model.n_ctx if self.model else 0
        return min(self.n_ctx_setting, loaded) if loaded else self.n_ctx_setting

    @property
    def prompt_limit(self) -> int:
        """Tokens the prompt may use: the context less the reply budget."""
        return context.prompt_limit(self.n_ctx, self.sampling.max_tokens)

    # ------------------------------------------------------------ the person's actions (the view calls these)

    def submit(self, text: str) -> bool:
        return self.answers.submit(text)

    def regenerate(self) -> bool:
        return self.answers.regenerate()

    def edit(self, key: int, text: str) -> bool:
        return self.answers.edit(key, text)

    def continue_answer(self) -> bool:
        return self.answers.continue_answer()

    def stop(self) -> None:
        self.answers.stop()

    def new_conversation(self) -> None:
        self.conversations.new()

    def select_conversation(self, conv_id: str) -> None:
        self.conversations.select(conv_id)

    def rename_conversation(self, conv_id: str, title: str) -> None:
        self.conversations.rename(conv_id, title)

    def delete_conversation(self, conv_id: str) -> None:
        self.conversations.delete(conv_id)

    def export_conversation(self, fmt: str) -> None:
        self.conversations.export(fmt)

    def update_settings(self, raw: str) -> bool:
        return self.conversations.update_settings(raw)

    def show_storage(self) -> None:
        self.storage.show()

    def delete_model(self, model_id: str) -> None:
        self.storage.delete_model(model_id)

    def run_self_test(self) -> None:
        self.backends.run_self_test()

    def load_model(self, model_id: str) -> None:
        """Load a model, or switch to it; the conversation is kept either way."""
        if model_id not in self.models:
            self.view.show_error(f"Unknown model {model_id!r}", "Pick a model from the list.")
            return
        if self.state is State.GENERATING:
            self.view.show_error("An answer is still being written.", "Stop it before switching models.")
            return
        request = p.SwitchModel if self.model is not None else p.LoadModel
        msg = request(model_id=model_id, n_ctx=self.n_ctx_setting, backend=self.backends.setting)
        self._loading(msg, self.send(msg))
        self.library.save_app_settings(model_id=model_id)

    switch_model = load_model

    def unload(self) -> None:
        if self.state in (State.READY, State.FAILED):
            self.view.set_status("Unloading…", "busy")
            self.send(p.UnloadModel())

    # ------------------------------------------------------------ outgoing

    def send(self, msg: p.Message) -> str:
        """Send a request, giving it a fresh id; returns that id."""
        self._sent = next(self._counter)
        msg_id = f"c{self._sent}"
        self._send_raw(p.encode(replace(msg, id=msg_id)))
        return msg_id

    def go(self, state: State) -> None:
        if state is not self.state and state not in TRANSITIONS[self.state]:
            raise RuntimeError(f"controller cannot go from {self.state.value} to {state.value}")
        before, self.state = self.state, state
        if (before in TAKES_QUESTIONS) != (state in TAKES_QUESTIONS):
            self.view.set_accepting(state in TAKES_QUESTIONS)

    def start(self) -> None:
        self.view.set_status("Starting the engine…", "busy")
        self.conversations.show()
        self.send(p.ListModels())
        self.send(p.GetDiagnostics())

    def _loading(self, msg: p.LoadModel, load_id: str) -> None:
        self.go(State.LOADING)
        info = self.models.get(msg.model_id)
        name = info.name if info else msg.model_id or msg.url.rsplit("/", 1)[-1] or "model"
        self.view.set_model(name, f"{info.quantization} · {size(info.bytes)}" if info else "")
        self.view.set_status(f"Loading {name}…", "busy")
        self._load_id = load_id

    # ------------------------------------------------------------ scripts (window.offgrid)

    def attach_script(self, sink: Callable[[str], None]) -> None:
        """Where the events answering a script's requests go (web/page/offgrid_api.js), as JSON text."""
        self._script_sink = sink

    def relay(self, raw: str) -> None:
        """Send a script's frame to the engine as it is (a malformed one too: the engine
        answers it). The events with its id go back to the script until `release`; a model
        it loads, switches or unloads becomes the controller's, as if the person had picked it."""
        try:
            msg: p.Message | None = p.decode(raw)
        except p.ProtocolError:
            msg = None
        if msg is None:  # the engine will answer with the id it finds, or ""
            try:
                obj = p.loads(raw)  # as the engine's JSON.parse reads it: no NaN
            except (ValueError, TypeError, RecursionError):
                obj = None
            found = obj.get("id") if isinstance(obj, dict) else ""
            self._scripts[found if isinstance(found, str) else ""] = ""
        else:
            self._scripts[msg.id] = type(msg).__name__
            if isinstance(msg, p.LoadModel) and self.state is not State.GENERATING:
                self._loading(msg, msg.id)
        self._send_raw(raw)

    def relay_unread(self, raw: str, msg_id: str) -> None:
        """A script's frame nested too deep to read here (Python's JSON parser runs out of
        stack in Pyodide before it does): the engine reads it and refuses it; its answer
        (with `msg_id`, which the page found) goes back to the script."""
        self._scripts[msg_id] = ""
        self._send_raw(raw)

    def release(self, msg_id: str) -> None:
        """The script waits for no more events of its request `msg_id`."""
        self._scripts.pop(msg_id, None)

    # ------------------------------------------------------------ incoming

    def on_frame(self, raw: str) -> None:
        try:
            obj: Any = p.loads(raw)
        except (ValueError, TypeError, RecursionError):
            obj = raw  # decode says what is wrong with it
        msg_id = obj.get("id", "") if isinstance(obj, dict) else ""
        kind = obj.get("type") if isinstance(obj, dict) else None
        request = self._scripts.get(msg_id) if isinstance(msg_id, str) else None
        if request is not None and self._script_sink is not None:
            self._script_sink(raw)
        if msg_id == "":
            if request is not None and kind == "EngineError":
                return  # the engine's answer to a script's frame without an id
        elif request is not None:
            if not _takes(request, kind):
                return
        elif isinstance(msg_id, str) and not self._mine(msg_id) and kind not in _MODEL_EVENTS:
            return  # the answer to a request that nobody waits for any more
        try:
            msg = p.decode(obj)
        except p.ProtocolError as exc:
            # A frame we cannot read is a bug in one side; say so, keep the chat.
            self.view.show_error(f"Bad frame from the engine: {exc}", "Rebuild the app.")
            return
        for handle in self._routes.get(type(msg).__name__, ()):
            handle(msg)

    def _mine(self, msg_id: str) -> bool:
        """Is `msg_id` one of the controller's own request ids?"""
        n = msg_id[1:]
        return msg_id[:1] == "c" and n.isascii() and n.isdigit() and 0 < int(n) <= self._sent

    def on_Hello(self, msg: p.Hello) -> None:
        if msg.protocol_version != p.PROTOCOL_VERSION:
            self.fail(
                f"Engine speaks protocol {msg.protocol_version}, controller {p.PROTOCOL_VERSION}.",
                "The worker and the controller come from different builds: run `python3 build.py`.",
            )

    def on_ModelList(self, msg: p.ModelList) -> None:
        self.models = {m.model_id: m for m in msg.models}
        self.default_model = msg.default_id
        self.show_models()
        if self.state is State.BOOTING and self.default_model:
            remembered = self.library.app_settings.get("model_id", "")
            self.load_model(remembered if remembered in self.models else self.default_model)

    def on_ModelLoaded(self, msg: p.ModelLoaded) -> None:
        self.model = msg
        if self.state is State.GENERATING:
            return  # a fallback reload mid-answer: the answer's end makes the controller ready
        self.go(State.READY)
        self.view.set_progress(None, "")
        quant = f"{msg.quantization} · " if msg.quantization else ""
        self._model_detail = f"{quant}{msg.backend} · {msg.threads} thread(s) · ctx {msg.n_ctx}"
        self.view.set_model(msg.name or msg.model_id, self._model_detail)
        self.show_models()
        self.show_can_continue()
        self.ready()
        if msg.notice:
            self.view.show_notice(msg.notice)
        self.storage.show()

    def on_ModelUnloaded(self, msg: p.ModelUnloaded) -> None:
        self.model = None
        if self.state in (State.READY, State.FAILED):
            self.go(State.IDLE)
            self.view.set_model("No model loaded", "")
            self.view.set_status("No model loaded: pick one to chat", "idle")
            self.show_models()

    def on_Speed(self, msg: p.Speed) -> None:
        self.last_speed = msg
        self.show_diagnostics()
        if self.model is not None and msg.decode_tps:
            # So that a slow fallback is visible where the person looks.
            self.view.set_model(self.model.name or self.model.model_id,
                                f"{self._model_detail} · last answer {msg.decode_tps:.1f} tok/s on {msg.backend}")

    def on_Diagnostics(self, msg: p.Diagnostics) -> None:
        self.diagnostics = msg
        self.show_diagnostics()

    def on_EngineError(self, msg: p.EngineError) -> None:
        self.view.show_error(msg.message, msg.hint)
        if self.state is State.LOADING and msg.id == self._load_id:
            if self.model is not None:  # a switch failed before the old model was unloaded
                self.go(State.READY)
                self.view.set_progress(None, "")
                self.view.set_model(self.model.name or self.model.model_id, self._model_detail)
                self.show_models()
                self.ready()
            else:
                self.fail(msg.message, msg.hint)

    # ------------------------------------------------------------ helpers (the handlers use them too)

    def show_can_continue(self) -> None:
        turns = self.conversation.turns
        last = turns[-1] if turns else None
        self.view.set_can_continue(bool(last and last.role == "assistant" and not last.complete and last.content))

    def ready(self) -> None:
        self.view.set_status("Ready", "ready")

    def fail(self, message: str, hint: str) -> None:
        self.go(State.FAILED)
        self.view.set_progress(None, "")
        self.view.set_status(f"Error: {message}", "error")
        if hint:
            self.view.show_error(message, hint)

    def show_models(self) -> None:
        current = self.model.model_id if self.model else ""
        self.view.set_models([asdict(m) for m in self.models.values()], current)

    def show_diagnostics(self) -> None:
        data: dict[str, Any] = asdict(self.diagnostics) if self.diagnostics else {}
        if self.last_speed:
            data["last_answer"] = asdict(self.last_speed)
        if self.last_self_test:
            data["self_test_result"] = asdict(self.last_self_test)
        self.view.set_diagnostics(data)

    def snapshot(self) -> dict[str, Any]:
        """Plain data for window.offgrid.state()."""
        return {
            "state": self.state.value,
            "model_id": self.model.model_id if self.model else "",
            "conversation_id": self.conversation.id,
            "window_start": self.window_start,
            "turns": [asdict(t) for t in self.conversation.turns],
        }

    def snapshot_json(self) -> str:
        return json.dumps(self.snapshot())
