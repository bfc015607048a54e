"""Scripts (window.offgrid) reach the engine through the controller: every
frame goes to whoever asked for it. A script gets the events of its own
requests, the controller none of them unless they change the model (a load,
switch or unload it relays as its own, a fallback, a deleted model in use)."""

from __future__ import annotations

import json

from offgrid import protocol as p
from offgrid.controller import State
from test_controller import TINY, Harness, ask, boot, load  # noqa: F401  (the recorder and its helpers)


class Script:
    """The page's window.offgrid: sends through the controller, collects what comes back."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.got: list[dict] = []
        h.ctl.attach_script(lambda raw: self.got.append(json.loads(raw)))

    def send(self, msg: p.Message) -> str:
        self.h.ctl.relay(p.encode(msg))
        return msg.id

    def types(self) -> list[str]:
        return [e["type"] for e in self.got]


def test_a_scripts_chat_streams_to_the_script_and_not_to_the_screen():
    h = Harness()
    load(h)
    s = Script(h)
    calls = len(h.view.calls)
    s.send(p.Chat(id="api1", messages=[p.ChatMessage("user", "hi")]))
    assert h.frames[-1] == p.encode(p.Chat(id="api1", messages=[p.ChatMessage("user", "hi")]))  # sent as it was
    for ev in (p.GenerateStart(id="api1"), p.Delta(id="api1", text="Hel"), p.Delta(id="api1", text="lo"),
               p.GenerateEnd(id="api1", text="Hello"), p.Speed(id="api1", decode_tps=9.0)):
        h.feed(ev)
    assert s.types() == ["GenerateStart", "Delta", "Delta", "GenerateEnd", "Speed"]
    assert len(h.view.calls) == calls  # the screen did not move
    assert h.ctl.state is State.READY and h.ctl.conversation.turns == [] and h.ctl.last_speed is None


def test_the_controllers_own_events_do_not_reach_the_script():
    h = Harness()
    s = Script(h)
    boot(h)
    h.feed(p.ModelLoaded(id=h.last_sent().id, model_id="tiny", name="Tiny Model", n_ctx=2048))
    chat = ask(h, "hi")
    h.feed(p.Delta(id=chat.id, text="Hi"))
    assert s.got == []


def test_an_inspect_answer_describes_the_model_and_changes_nothing():
    h = Harness()
    load(h)
    s = Script(h)
    calls = len(h.view.calls)
    s.send(p.InspectModel(id="api2"))
    h.feed(p.ModelLoaded(id="api2", model_id="tiny", name="Tiny Model", n_ctx=2048, backend="wasm-mt"))
    assert s.types() == ["ModelLoaded"]
    assert len(h.view.calls) == calls and h.ctl.model.backend == ""  # still the model the controller loaded


def test_a_scripts_load_becomes_the_controllers_own():
    h = Harness()
    load(h)
    s = Script(h)
    s.send(p.UnloadModel(id="api3"))
    h.feed(p.ModelUnloaded(id="api3", model_id="tiny"))
    assert h.ctl.state is State.IDLE and h.ctl.snapshot()["model_id"] == ""
    assert h.view.last("set_accepting") == (False,)
    s.send(p.LoadModel(id="api4", model_id="tiny"))
    assert h.ctl.state is State.LOADING and h.view.last("set_status") == ("Loading Tiny Model…", "busy")
    h.feed(p.LoadProgress(id="api4", model_id="tiny", phase="download", loaded=1, total=2))
    assert h.view.last("set_progress") == (0.5, "0 kB / 0 kB")
    h.feed(p.ModelLoaded(id="api4", model_id="tiny", name="Tiny Model", n_ctx=2048))
    assert h.ctl.state is State.READY and h.view.last("set_status") == ("Ready", "ready")
    assert h.view.last("set_accepting") == (True,)
    assert s.types() == ["ModelUnloaded", "LoadProgress", "ModelLoaded"]  # the script got its answers too
    ask(h, "and now?")  # the person chats on the model the script loaded


def test_a_scripts_failed_switch_keeps_the_model_and_says_so():
    h = Harness()
    load(h)
    s = Script(h)
    s.send(p.LoadModel(id="api5", model_id="no-such-model"))
    assert h.view.last("set_model")[0] == "no-such-model"
    h.feed(p.EngineError(id="api5", code="unknown_model", message="No model no-such-model", field="model_id"))
    assert h.ctl.state is State.READY and h.view.last("set_model")[0] == "Tiny Model"
    assert h.view.last("show_error")[0] == "No model no-such-model"
    assert s.types() == ["EngineError"]


def test_a_malformed_frame_goes_out_as_it_is_and_its_error_comes_back_to_the_script_only():
    h = Harness()
    load(h)
    s = Script(h)
    errors = len(h.view.of("show_error"))
    h.ctl.relay('{"type": "Chat", "id": "b3", "v": 1, "sampling": {"temperature": 9}}')
    h.ctl.relay("not json at all")
    assert h.frames[-2:] == ['{"type": "Chat", "id": "b3", "v": 1, "sampling": {"temperature": 9}}', "not json at all"]
    h.feed(p.EngineError(id="b3", code="bad_field", message="too hot", field="sampling.temperature"))
    h.feed(p.EngineError(id="", code="bad_message", message="not JSON"))
    assert [(e["id"], e["code"]) for e in s.got] == [("b3", "bad_field"), ("", "bad_message")]
    assert len(h.view.of("show_error")) == errors and h.ctl.state is State.READY
    h.feed(p.Hello(protocol_version=p.PROTOCOL_VERSION + 1))  # unsolicited: still the controller's
    assert h.ctl.state is State.FAILED


def test_a_fallback_during_a_scripts_answer_moves_the_controllers_model_too():
    h = Harness()
    load(h)
    s = Script(h)
    s.send(p.Complete(id="api6", prompt="Once"))
    h.feed(p.EngineError(id="api6", code="inference_failed", message="device lost"))
    h.ctl.release("api6")  # the script's request ended with its error
    h.feed(p.BackendFallback(id="api6", model_id="tiny", from_backend="webgpu", to_backend="wasm-mt", reason="lost"))
    h.feed(p.ModelLoaded(id="api6", model_id="tiny", name="Tiny Model", backend="wasm-mt", threads=2, n_ctx=2048))
    assert "now runs on wasm-mt" in h.view.last("show_error")[0]
    assert h.ctl.model.backend == "wasm-mt" and "wasm-mt" in h.view.last("set_model")[1]
    assert s.types() == ["EngineError"]  # released: nothing more went to the script


def test_answers_nobody_waits_for_are_dropped():
    h = Harness()
    load(h)
    s = Script(h)
    s.send(p.CountTokens(id="api7", text="hello"))
    h.ctl.release("api7")
    calls = len(h.view.calls)
    h.feed(p.TokenCount(id="api7", n_tokens=1))
    h.feed(p.StorageReport(id="someone", usage=1))
    h.feed(p.Delta(id="c999", text="not a request of the controller's"))
    assert s.got == [] and len(h.view.calls) == calls
