"""The chat controller: owns the conversations, the model lifecycle and the
generation state, and talks to the engine only through protocol frames.

Pure Python: `send` posts a frame (a JSON string) to the engine worker, `view`
is anything with the View methods (the browser adapter, or a recorder in
tests), and the Library persists conversations. Frames from the engine come in
through `on_frame`.

Sending a question goes: count the chosen window exactly (CountTokens on the
templated messages; the engine caches that prefix for the answer), slide the
window if the count is over the limit, then Chat.
"""

from __future__ import annotations

import enum
import itertools
import json
from dataclasses import asdict, replace
from typing import Any, Callable

from . import context
from . import protocol as p
from .conversation import Conversation
from .backend_actions import BackendActions
from .conversation_actions import NOTES, ConversationActions
from .library import Library, MemoryStorage
from .storage_actions import StorageActions, size
from .view import View


class State(enum.Enum):
    BOOTING = "booting"  # waiting for the engine's model list
    LOADING = "loading"  # a model is downloading or loading
    READY = "ready"  # a question can be sent
    GENERATING = "generating"  # counting the prompt, then streaming the answer
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


class Controller(ConversationActions, StorageActions, BackendActions):
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
        self._model_detail = ""  # the header's model line, before the last answer's speed
        self._self_test_id = ""  # request id of the person's self-test
        self._ids = (f"c{i}" for i in itertools.count(1))
        self._gen_id = ""  # request id of the running generation (or of its token count)
        self._load_id = ""  # request id of the running LoadModel/SwitchModel
        self._answer_key = -1  # turn index of the answer being generated
        self._window_start = 0  # first turn the model saw in the last request
        self._pending_chat: p.Chat | p.Continue | None = None  # waiting for its TokenCount
        self._pending_question = ""  # typed before the model was ready
        self._continuing = False  # the running generation extends an existing answer

    @property
    def conversation(self) -> Conversation:
        return self.library.current

    @property
    def sampling(self) -> p.Sampling:
        return self.conversation.settings.sampling

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
    def _prompt_limit(self) -> int:
        """Tokens the prompt may use: the context less the reply budget."""
        return context.prompt_limit(self.n_ctx, self.sampling.max_tokens)

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
        self._show_conversation()
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
        info = self.models[model_id]
        self.view.set_model(info.name, f"{info.quantization} · {size(info.bytes)}")
        self.view.set_status(f"Loading {info.name}…", "busy")
        request = p.SwitchModel if switching else p.LoadModel
        self._load_id = self.send(request(model_id=model_id, n_ctx=self.n_ctx_setting, backend=self.backend))
        self.library.save_app_settings(model_id=model_id)

    switch_model = load_model

    def unload(self) -> None:
        if self.state in (State.READY, State.FAILED):
            self.view.set_status("Unloading…", "busy")
            self.send(p.UnloadModel())

    # ------------------------------------------------------------ asking

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
        conv = self.conversation
        key = conv.add("user", text)
        self.view.add_message(key, "user", text, True)
        self._ask()
        return True

    def regenerate(self) -> bool:
        """Answer the last question again, replacing the last answer."""
        turns = self.conversation.turns
        if self.state is not State.READY or not turns:
            return False
        if turns[-1].role == "assistant":
            turns.pop()
        if not turns or turns[-1].role != "user":
            return False
        self._show_conversation()
        self._ask()
        return True

    def edit(self, key: int, text: str) -> bool:
        """Replace question `key`, drop everything after it, and answer it again."""
        turns = self.conversation.turns
        text = text.strip()
        if self.state is not State.READY or not text or not (0 <= key < len(turns)) or turns[key].role != "user":
            return False
        del turns[key + 1:]
        turns[key] = replace(turns[key], content=text, n_tokens=0)
        self._window_start = min(self._window_start, key)
        self._show_conversation()
        self._ask()
        return True

    def continue_answer(self) -> bool:
        """Extend the last answer if it was stopped, cut at the length limit or interrupted."""
        turns = self.conversation.turns
        if self.state is not State.READY or not turns or turns[-1].role != "assistant" or turns[-1].complete:
            return False
        if not turns[-1].content:
            return False
        self._answer_key = len(turns) - 1
        turns[-1].end_reason = ""
        self.view.update_message(self._answer_key, turns[-1].content, False, "")
        self._prepare(p.Continue(sampling=self.sampling))
        return True

    def stop(self) -> None:
        if self.state is State.GENERATING:
            self.view.set_status("Stopping…", "busy")
            if self._pending_chat is not None:
                self._pending_chat = None  # still counting: never send the Chat
                self._finish_answer("aborted")
            else:
                self.send(p.Stop(target=self._gen_id))

    def _ask(self) -> None:
        conv = self.conversation
        self._answer_key = conv.add("assistant", "", complete=False)
        self.view.add_message(self._answer_key, "assistant", "", False)
        self.library.save(conv)
        self._show_conversations()
        self._prepare(p.Chat(sampling=self.sampling))

    def _prepare(self, request: p.Chat | p.Continue) -> None:
        """Choose the window, then count it exactly before sending `request`."""
        self._continuing = isinstance(request, p.Continue)
        self._go(State.GENERATING)
        self.view.set_generating(True)
        self.view.set_can_continue(False)
        self.view.set_status("Thinking…", "busy")
        conv = self.conversation
        upto = self._answer_key if isinstance(request, p.Chat) else len(conv.turns)
        turns = conv.turns[:upto]
        limit = self._prompt_limit
        system = context.estimate(conv.system_prompt) + context.TEMPLATE_OVERHEAD
        start = context.choose_start([context.turn_cost(t) for t in turns], context.exchange_starts(turns),
                                     system, limit, self._window_start)
        if start is None:
            return self._too_long()
        self._count(request, start)

    def _count(self, request: p.Chat | p.Continue, start: int) -> None:
        self._window_start = start
        messages = self.conversation.to_messages(start)
        self._pending_chat = replace(request, messages=messages)
        self._gen_id = self.send(p.CountTokens(messages=messages))

    def _on_TokenCount(self, msg: p.TokenCount) -> None:
        if msg.id != self._gen_id or self._pending_chat is None:
            return
        request, self._pending_chat = self._pending_chat, None
        limit = self._prompt_limit
        if msg.n_tokens > limit:
            turns = self.conversation.turns
            later = context.next_start(context.exchange_starts(turns[: self._answer_key + 1]), self._window_start)
            if later is None or later > self._answer_key:
                return self._too_long(msg.n_tokens)
            return self._count(request, later)
        self.view.set_out_of_view(self._window_start)
        budget = min(self.sampling.max_tokens, self.n_ctx - msg.n_tokens)
        sampling = replace(request.sampling, max_tokens=max(1, budget))
        self._gen_id = self.send(replace(request, sampling=sampling))

    def _too_long(self, counted: int = 0) -> None:
        limit = self._prompt_limit
        size = f" ({counted} tokens)" if counted else ""
        self.view.show_error(
            f"This message is too long for the model's context{size}: at most {limit} tokens fit.",
            "Shorten it, or raise the context size in settings.",
        )
        self._finish_answer("error")

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
            remembered = self.library.app_settings.get("model_id", "")
            self.load_model(remembered if remembered in self.models else self.default_model)

    def _on_ModelLoaded(self, msg: p.ModelLoaded) -> None:
        self.model = msg
        if self.state is State.GENERATING:
            return  # an InspectModel answer; nothing changed
        self._go(State.READY)
        self.view.set_progress(None, "")
        quant = f"{msg.quantization} · " if msg.quantization else ""
        self._model_detail = f"{quant}{msg.backend} · {msg.threads} thread(s) · ctx {msg.n_ctx}"
        self.view.set_model(msg.name or msg.model_id, self._model_detail)
        self._show_models()
        self._show_can_continue()
        self._ready()
        if msg.notice:
            self.view.show_notice(msg.notice)
        self.show_storage()
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
        if not self._gen_id or msg.id != self._gen_id or self._answer_key < 0:
            return
        turn = self.conversation.turns[self._answer_key]
        turn.content += msg.text
        if self.state is State.GENERATING:
            self.view.set_status("Writing…", "busy")
        self.view.update_message(self._answer_key, turn.content, False, "")
        self.library.save(streaming=True)

    def _on_GenerateEnd(self, msg: p.GenerateEnd) -> None:
        if not self._gen_id or msg.id != self._gen_id:
            return
        turn = self.conversation.turns[self._answer_key]
        # Exact for an answer made in one go; a continued one falls back to an estimate.
        turn.n_tokens = msg.completion_tokens if not self._continuing else 0
        self._finish_answer(msg.reason)

    def _on_Speed(self, msg: p.Speed) -> None:
        self.last_speed = msg
        self._show_diagnostics()
        if self.model is not None and msg.decode_tps:
            # So that a slow fallback is visible where the person looks.
            self.view.set_model(self.model.name or self.model.model_id,
                                f"{self._model_detail} · last answer {msg.decode_tps:.1f} tok/s on {msg.backend}")

    def _on_Diagnostics(self, msg: p.Diagnostics) -> None:
        self.diagnostics = msg
        self._show_diagnostics()
        if msg.id and msg.id == self._self_test_id and self.state is State.READY:
            self._self_test_id = ""
            self._ready()

    def _on_EngineError(self, msg: p.EngineError) -> None:
        self.view.show_error(msg.message, msg.hint)
        if self.state is State.GENERATING and msg.id == self._gen_id:
            self._pending_chat = None
            self._finish_answer("error")
        elif self.state is State.LOADING and msg.id == self._load_id:
            if self.model is not None:  # a switch failed before the old model was unloaded
                self._go(State.READY)
                self.view.set_progress(None, "")
                self._show_models()
                self._ready()
            else:
                self._fail(msg.message, msg.hint)

    # ------------------------------------------------------------ helpers

    def _finish_answer(self, reason: str) -> None:
        turn = self.conversation.turns[self._answer_key]
        # Only a natural end is complete; a cut or stopped answer can be continued.
        turn.complete = reason == "stop"
        turn.end_reason = reason
        self.view.update_message(self._answer_key, turn.content, True, NOTES.get(turn.end_reason, ""))
        self.library.save()
        self._gen_id, self._answer_key = "", -1
        self._go(State.READY)
        self.view.set_generating(False)
        self._show_can_continue()
        self._show_conversations()
        self._ready()

    def _show_can_continue(self) -> None:
        turns = self.conversation.turns
        last = turns[-1] if turns else None
        self.view.set_can_continue(bool(last and last.role == "assistant" and not last.complete and last.content))

    def _ready(self) -> None:
        self.view.set_status("Ready", "ready")

    def _fail(self, message: str, hint: str) -> None:
        self._go(State.FAILED)
        self.view.set_progress(None, "")
        self.view.set_status(f"Error: {message}", "error")
        if hint:
            self.view.show_error(message, hint)

    def _show_models(self) -> None:
        current = self.model.model_id if self.model else ""
        self.view.set_models([asdict(m) for m in self.models.values()], current)

    def _show_diagnostics(self) -> None:
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
            "window_start": self._window_start,
            "turns": [asdict(t) for t in self.conversation.turns],
        }

    def snapshot_json(self) -> str:
        return json.dumps(self.snapshot())
