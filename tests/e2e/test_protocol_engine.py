"""Issue 3, end to end: the typed protocol against the real worker and engine,
driven through window.offgrid and through the screen."""

from __future__ import annotations

import json

SMOL = "smollm2-135m-instruct-q4_1"
GEMMA = "gemma3-270m-q4_k_m"
GREEDY = {"temperature": 0, "seed": 1}


def call(app, type_: str, fields: dict | None = None) -> dict:
    """Send a request through window.offgrid; returns its final event with `events` attached."""
    return app.page.evaluate("([t, f]) => offgrid.call(t, f)", [type_, fields or {}])


def test_load_chat_switch_complete_switch_back_and_continue(app):
    app.open()
    app.wait_ready()
    app.ask("My name is Ada. What is two plus two?")
    app.page.wait_for_function("() => document.querySelectorAll('.msg.assistant').length === 1")
    app.wait_ready()

    # Switch to Gemma from the model picker; the conversation stays on screen.
    app.page.get_by_text("Model & diagnostics").click()
    app.page.get_by_label("Model", exact=True).select_option(GEMMA)
    app.wait_ready()
    assert "Gemma 3 270M" in app.page.locator("#model-name").text_content()
    inspected = call(app, "InspectModel")
    assert inspected["type"] == "ModelLoaded" and inspected["model_id"] == GEMMA
    assert inspected["architecture"] == "gemma3" and inspected["quantization"] == "Q4_K_M"
    assert inspected["n_vocab"] == 262144 and inspected["n_layer"] > 0

    done = call(app, "Complete", {"prompt": "The capital of France is", "sampling": {**GREEDY, "max_tokens": 12}})
    assert done["type"] == "GenerateEnd" and done["reason"] in ("stop", "length")
    assert done["text"].strip()
    assert [e["type"] for e in done["events"]][0] == "GenerateStart"

    # Back to SmolLM2, and the same conversation goes on.
    app.page.get_by_label("Model", exact=True).select_option(SMOL)
    app.wait_ready()
    assert call(app, "InspectModel")["model_id"] == SMOL
    app.ask("What is my name?")
    app.page.wait_for_function("() => document.querySelectorAll('.msg.assistant').length === 2")
    app.wait_ready()
    state = app.page.evaluate("offgrid.state()")
    assert [t["role"] for t in state["turns"]] == ["user", "assistant", "user", "assistant"]
    assert state["turns"][0]["content"].startswith("My name is Ada")
    assert all(t["content"].strip() for t in state["turns"])


def test_chat_batch_returns_one_answer_per_prompt(app):
    app.open()
    app.wait_ready()
    prompts = [[{"role": "user", "content": q}] for q in ("Name a fruit.", "Name a country.", "Name a colour.")]
    done = call(app, "ChatBatch", {"prompts": prompts, "sampling": {**GREEDY, "max_tokens": 24}})
    ends = [e for e in done["events"] if e["type"] == "GenerateEnd"]
    assert sorted(e["index"] for e in ends) == [0, 1, 2]
    assert all(e["text"].strip() and e["reason"] in ("stop", "length") for e in ends)
    # The deltas of each prompt add up to its answer.
    for end in ends:
        pieces = "".join(e["text"] for e in done["events"] if e["type"] == "Delta" and e["index"] == end["index"])
        assert pieces == end["text"]


def test_count_tokens_agrees_with_the_prompt_llama_cpp_evaluates(app):
    app.open()
    app.wait_ready()
    texts = ["Hello", "The quick brown fox jumps over the lazy dog.", "Ünïcödé and emoji 🦊 — tokens!", "word " * 50]
    counts = []
    for text in texts:
        counted = call(app, "CountTokens", {"text": text})
        assert counted["type"] == "TokenCount", counted
        evaluated = call(app, "Complete", {"prompt": text, "sampling": {**GREEDY, "max_tokens": 1}})
        assert counted["n_tokens"] == evaluated["prompt_tokens"] > 0, text
        counts.append(counted["n_tokens"])
    assert counts[3] >= 50  # fifty words are at least fifty tokens


def test_stop_then_continue_extends_the_same_answer(app):
    app.open()
    app.wait_ready()
    app.ask("Count from 1 to 200, separated by commas.")
    app.page.wait_for_function("() => (document.querySelector('.msg.assistant:last-child .text')?.textContent ?? '').length > 20")
    app.button("Stop").click()
    app.wait_ready(10_000)
    # The raw answer, as the controller holds it (the screen shows it rendered as Markdown).
    raw = "offgrid.state().turns.at(-1).content"
    stopped = app.page.evaluate(raw)
    app.button("Continue").click()
    app.page.wait_for_function("() => document.querySelector('[role=status]').textContent !== 'Ready'")
    app.wait_ready()
    longer = app.page.evaluate(raw)
    assert longer.startswith(stopped) and len(longer) > len(stopped), (stopped, longer)
    assert app.page.locator(".msg.assistant").count() == 1  # the same answer grew


BAD_FRAMES = [
    ("not json at all", "bad_message", ""),
    ({"type": "Teleport", "id": "b1", "v": 1}, "bad_message", "type"),
    ({"type": "Chat", "id": "b2", "v": 7}, "version_mismatch", "v"),
    ({"type": "Chat", "id": "b3", "v": 1, "sampling": {"temperature": 9}}, "bad_field", "sampling.temperature"),
    ({"type": "Chat", "id": "b4", "v": 1, "messages": [{"role": "robot", "content": "x"}]}, "bad_field", "messages[0].role"),
    ({"type": "Chat", "id": "b5", "v": 1, "messages": [{"role": "user"}]}, "bad_field", "messages[0].content"),
    ({"type": "LoadModel", "id": "b6", "v": 1, "n_ctx": "big"}, "bad_field", "n_ctx"),
    ({"type": "LoadModel", "id": "b7", "v": 1, "model_id": "no-such-model"}, "unknown_model", "model_id"),
    ({"type": "LoadModel", "id": "b8", "v": 1, "url": "https://example.com/x.gguf"}, "bad_field", "url"),
    ({"type": "Complete", "id": "b9", "v": 1, "wings": 2}, "bad_field", "wings"),
    ({"type": "GenerateEnd", "id": "b10", "v": 1}, "bad_message", "type"),
    ({"type": "Continue", "id": "b11", "v": 1, "messages": [{"role": "user", "content": "hi"}]}, "bad_field", "messages"),
]


def test_malformed_frames_get_clear_errors_and_the_session_stays_usable(app):
    app.open()
    app.wait_ready()
    for frame, code, field in BAD_FRAMES:
        events = app.page.evaluate("(f) => offgrid.sendRaw(f)", frame)
        errors = [e for e in events if e["type"] == "EngineError"]
        assert errors, f"no EngineError for {frame!r}"
        assert (errors[0]["code"], errors[0]["field"]) == (code, field), (frame, errors[0])
        assert errors[0]["message"]

    # A second generation while one runs is refused with `busy`, naming the running request.
    first = app.page.evaluate("""() => { const run = offgrid.request('Complete', {prompt: 'Once upon a time', sampling: {max_tokens: 64}});
        window.__first = (async () => { const evs = []; for await (const e of run) evs.push(e); return evs; })(); return run.id; }""")
    app.page.wait_for_timeout(300)
    busy = call(app, "Complete", {"prompt": "x"})
    assert busy["type"] == "EngineError" and busy["code"] == "busy" and first in busy["message"]
    first_events = app.page.evaluate("window.__first")
    assert first_events[-1]["type"] == "GenerateEnd"

    # With no model loaded, generation is refused with `no_model`; loading again works.
    assert call(app, "UnloadModel")["type"] == "ModelUnloaded"
    refused = call(app, "Chat", {"messages": [{"role": "user", "content": "hi"}]})
    assert (refused["type"], refused["code"]) == ("EngineError", "no_model")
    assert call(app, "LoadModel", {"model_id": SMOL})["type"] == "ModelLoaded"
    app.wait_ready()
    ok = call(app, "Chat", {"messages": [{"role": "user", "content": "Say hi."}], "sampling": {**GREEDY, "max_tokens": 16}})
    assert ok["type"] == "GenerateEnd" and ok["text"].strip()
    diag = call(app, "GetDiagnostics")
    assert diag["backend"] in ("wasm-mt", "wasm-st", "webgpu") and diag["backend_reason"]
    assert diag["cross_origin_isolated"] is True and diag["threads"] >= 1
    assert json.dumps(diag)  # plain data all the way


def test_hostile_requests_from_issue_23_end_cleanly(app):
    """A ChatBatch of more prompts than the engine has slots, a lone surrogate and a URL that
    is not a model: each ends with a clear answer, and the loaded model keeps working."""
    app.open()
    app.wait_ready()
    prompts = [[{"role": "user", "content": f"Say the number {i}."}] for i in range(7)]
    done = app.page.evaluate("""async (prompts) => {
      const ends = [];
      for await (const ev of offgrid.request('ChatBatch', {prompts, sampling: {temperature: 0, seed: 1, max_tokens: 6}}))
        if (ev.type === 'GenerateEnd') ends.push(ev);
      return ends;
    }""", prompts)
    assert sorted(e["index"] for e in done) == list(range(7)), done
    assert all(e["reason"] in ("stop", "length") for e in done), done

    # Made in the page: half of an emoji's surrogate pair, alone.
    lone = app.page.evaluate("""() => offgrid.call('Chat', {messages: [{role: 'user',
      content: 'Half an emoji: ' + String.fromCharCode(0xD83D) + '. Say hi.'}], sampling: {temperature: 0, seed: 1, max_tokens: 6}})""")
    assert lone["type"] == "GenerateEnd" and lone["reason"] in ("stop", "length"), lone

    before = call(app, "InspectModel")
    refused = call(app, "LoadModel", {"url": "/index.html"})
    assert refused["type"] == "EngineError" and refused["code"] == "bad_field" and refused["field"] == "url", refused
    assert "not a GGUF model file" in refused["message"]
    after = call(app, "InspectModel")
    assert after["model_id"] == before["model_id"] and after["n_vocab"] == before["n_vocab"] > 0
    answer = call(app, "Complete", {"prompt": "One, two,", "sampling": {**GREEDY, "max_tokens": 4}})
    assert answer["type"] == "GenerateEnd" and answer["text"].strip(), answer
