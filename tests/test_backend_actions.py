"""Issue 8 on CPython: the controller's side of backends: the backend setting,
fallback and self-test events shown to the person, tokens/s with the backend."""

from __future__ import annotations

import json

from offgrid import protocol as p
from test_controller import Harness, load, ask  # noqa: F401  (shared harness)


def test_backend_setting_is_sent_with_the_load_and_a_change_reloads():
    h = Harness()
    load(h)
    first = [m for m in h.sent() if isinstance(m, p.LoadModel)][0]
    assert first.backend == "auto"
    assert h.ctl.update_settings(json.dumps({"backend": "wasm-st"})) is True
    reload = h.last_sent()
    assert isinstance(reload, p.SwitchModel) and reload.backend == "wasm-st"
    assert h.view.last("set_settings")[0]["backend"] == "wasm-st"
    assert h.ctl.library.app_settings["backend"] == "wasm-st"


def test_an_unknown_backend_setting_is_refused():
    h = Harness()
    load(h)
    assert h.ctl.update_settings(json.dumps({"backend": "cuda"})) is False
    assert "backend" in h.view.last("show_error")[0]


def test_fallback_is_told_to_the_person_and_the_conversation_is_kept():
    h = Harness()
    load(h)
    chat = ask(h, "Hello?")
    h.feed(p.EngineError(id=chat.id, code="inference_failed", message="Generation failed: device lost"))
    h.feed(p.BackendFallback(id=chat.id, model_id="tiny", from_backend="webgpu", to_backend="wasm-mt", reason="device lost"))
    h.feed(p.ModelLoaded(id=chat.id, model_id="tiny", name="Tiny Model", backend="wasm-mt", threads=2, n_ctx=2048))
    message, hint = h.view.last("show_error")
    assert "webgpu backend failed (device lost)" in message and "now runs on wasm-mt" in message
    assert "conversation is kept" in hint
    assert "wasm-mt" in h.view.last("set_model")[1]
    assert h.ctl.state.value == "ready"
    assert [t.role for t in h.ctl.conversation.turns] == ["user", "assistant"]
    ask(h, "Again?")  # the conversation goes on


def test_speed_of_the_last_answer_is_shown_with_its_backend():
    h = Harness()
    load(h)
    h.feed(p.Speed(decode_tps=2.46, prefill_tps=10, ttft_ms=300, backend="webgpu"))
    assert "last answer 2.5 tok/s on webgpu" in h.view.last("set_model")[1]
    assert h.view.last("set_diagnostics")[0]["last_answer"]["backend"] == "webgpu"


def test_self_test_button_and_a_failed_result_warns():
    h = Harness()
    load(h)
    h.ctl.run_self_test()
    req = h.last_sent()
    assert isinstance(req, p.SelfTest)
    h.feed(p.SelfTestResult(id=req.id, model_id="tiny", n_tokens=8, agreement=0.25, threshold=0.75, passed=False,
                            gpu_text="xx", cpu_text="Paris"))
    assert "agree on only 25% of 8 tokens" in h.view.last("show_error")[0]
    assert h.view.last("set_diagnostics")[0]["self_test_result"]["agreement"] == 0.25
    h.feed(p.Diagnostics(id=req.id, backend="wasm-mt", self_test="FAILED: ..."))
    assert h.view.last("set_status") == ("Ready", "ready")


def test_a_passed_self_test_stays_quiet():
    h = Harness()
    load(h)
    errors = len(h.view.of("show_error"))
    h.feed(p.SelfTestResult(model_id="tiny", n_tokens=8, agreement=1.0, threshold=0.75, passed=True))
    assert len(h.view.of("show_error")) == errors
