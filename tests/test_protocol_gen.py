"""web/shared/protocol.js: its validate() refuses the same
frames as Python's decode, with the same code and field, and its make() fills defaults
and names the field it cannot fill."""

from __future__ import annotations

import copy
import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from offgrid import protocol as p

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "web" / "shared"
GENERATED = SHARED / "protocol.gen.js"



# ------------------------------------------------------------ JS in node


@pytest.fixture(scope="module")
def run_js(tmp_path_factory):
    """run_js(body, data) runs `body` as an ES module in node with `P` = web/shared/protocol.js
    and `data` = the JSON value given; the script prints its result with out(value)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH")
    tmp = tmp_path_factory.mktemp("protocol_js")
    # package.json has no "type": "module" at the root, so node needs one beside the copies.
    (tmp / "package.json").write_text('{"type": "module"}', encoding="utf-8")
    (tmp / "shared").mkdir()
    for name in ("protocol.js", "protocol.gen.js"):
        shutil.copyfile(SHARED / name, tmp / "shared" / name)
    (tmp / "page").mkdir()
    shutil.copyfile(ROOT / "web" / "page" / "panels.js", tmp / "page" / "panels.js")
    counter = 0

    def run(body: str, data=None):
        nonlocal counter
        counter += 1
        script = tmp / f"script{counter}.mjs"
        script.write_text(
            "import * as P from './shared/protocol.js';\n"
            "import { readFileSync } from 'node:fs';\n"
            "const data = JSON.parse(readFileSync(0, 'utf8'));\n"
            "const out = (v) => process.stdout.write(JSON.stringify(v));\n" + body,
            encoding="utf-8",
        )
        done = subprocess.run([node, str(script)], input=json.dumps(data), capture_output=True, text=True,
                              timeout=60, cwd=tmp)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return run


@pytest.fixture(scope="module")
def js_validate(run_js):
    """Runs validate() in node over a list of frames; returns the verdicts."""

    def run(frames: list) -> list[dict]:
        return run_js(
            "out(data.map((f) => { const r = P.validate(f);\n"
            "  return r.ok ? { ok: true, msg: r.msg } : { ok: false, code: r.code, field: r.field, message: r.message }; }));\n",
            frames,
        )

    return run


def test_protocol_js_exports_what_protocol_py_defines(run_js):
    got = run_js(
        "out({version: P.PROTOCOL_VERSION, T: P.T, requests: P.REQUESTS, events: P.EVENTS, enums: P.ENUMS,\n"
        "  roles: P.ROLES, backends: P.BACKENDS, kv: P.KV_CACHE_TYPES, codes: P.ERROR_CODES,\n"
        "  n_ctx: P.fieldRange('LoadModel', 'n_ctx'), temperature: P.fieldRange('Sampling', 'temperature'),\n"
        "  n_ctx_default: P.fieldDefault('LoadModel', 'n_ctx'), frozen: Object.isFrozen(P.BACKENDS) && Object.isFrozen(P.T)});\n"
    )
    assert got["version"] == p.PROTOCOL_VERSION
    assert got["T"] == {name: name for name in p.MESSAGE_TYPES}
    assert got["requests"] == [c.__name__ for c in p.REQUESTS] and got["events"] == [c.__name__ for c in p.EVENTS]
    assert got["enums"]["Backend"] == list(p.BACKENDS) == got["backends"]
    assert got["kv"] == list(p.KV_CACHE_TYPES) and got["roles"] == list(p.ROLES)
    assert got["codes"] == list(p.ERROR_CODES)
    assert (got["n_ctx"]["min"], got["n_ctx"]["max"]) == p.field_range(p.LoadModel, "n_ctx")
    assert (got["temperature"]["min"], got["temperature"]["max"]) == p.field_range(p.Sampling, "temperature")
    assert got["n_ctx_default"] == p.LoadModel().n_ctx
    assert got["frozen"]


def test_field_range_in_python():
    assert p.field_range(p.LoadModel, "n_ctx") == (128, 131072)
    with pytest.raises(KeyError):
        p.field_range(p.LoadModel, "model_id")  # no range
    with pytest.raises(KeyError):
        p.field_range(p.LoadModel, "nope")


# Frames (as JSON values) on which both validators must agree.
M = {"role": "user", "content": "hi"}
CASES = [
    {"type": "ListModels", "id": "a", "v": 1},
    {"type": "Chat", "id": "c1", "v": 1, "messages": [M], "sampling": {"temperature": 1.5, "stop": ["x"]}},
    {"type": "LoadModel", "id": "", "v": 1, "model_id": "m", "n_ctx": 4096, "backend": "webgpu"},
    {"type": "Speed", "id": "", "v": 1, "decode_tps": 12},
    [1, 2],
    "Chat",
    {"type": "Nope", "id": "", "v": 1},
    {"type": "Chat", "id": "", "v": 2},
    {"type": "Chat", "id": "", "v": "1"},
    {"type": "Chat", "id": 5, "v": 1},
    {"type": "Chat", "id": "", "v": 1, "colour": "red"},
    {"type": "Chat", "id": "", "v": 1, "sampling": {"temperature": "hot"}},
    {"type": "Chat", "id": "", "v": 1, "sampling": {"temperature": 5.0}},
    {"type": "Chat", "id": "", "v": 1, "sampling": {"top_p": -0.1}},
    {"type": "Chat", "id": "", "v": 1, "sampling": {"max_tokens": 0}},
    {"type": "Chat", "id": "", "v": 1, "messages": [{"role": "robot", "content": "x"}]},
    {"type": "Chat", "id": "", "v": 1, "messages": [{"role": "user"}]},
    {"type": "Chat", "id": "", "v": 1, "sampling": {"stop": ["a", 1]}},
    {"type": "LoadModel", "id": "", "v": 1, "n_ctx": 1.5},
    {"type": "LoadModel", "id": "", "v": 1, "n_threads": True},
    {"type": "LoadModel", "id": "", "v": 1, "backend": "cuda"},
    {"type": "LoadModel", "id": "", "v": 1, "kv_cache": "q4_0"},
    {"type": "ModelList", "id": "", "v": 1, "models": [{"model_id": "m", "name": "n", "file": "f", "bytes": 1,
                                                        "sha256": "s", "quantization": "q"}]},  # no license
]

# Frames on which the two once disagreed: JSON number semantics, nested "type"
# keys, and which field is named when several are wrong.
EDGE_CASES = [
    pytest.param({"type": "ListModels", "v": 1}, id="missing-id"),  # Python: ok, JS: bad_field id
    pytest.param({"type": "ListModels", "id": "", "v": True}, id="v-true"),  # Python: bad_field, JS: version_mismatch
    pytest.param({"type": "ListModels", "id": "", "v": 1.0}, id="v-float"),  # Python: bad_field, JS: ok
    pytest.param({"type": "LoadModel", "id": "", "v": 1, "n_ctx": 2048.0}, id="int-as-float"),  # JS: ok
    pytest.param({"type": "Chat", "id": "", "v": 1, "sampling": {"type": "x"}}, id="nested-type-key"),  # JS accepts
    pytest.param({"type": "Chat", "id": "", "v": 1, "messages": [{**M, "type": 1}]}, id="nested-type-in-list"),
    pytest.param({"type": "LoadModel", "id": "", "v": 1, "n_ctx": 1.5, "backend": "cuda"}, id="field-order"),
    pytest.param({"type": "Stop", "id": "", "v": 1, "zeta": 1, "alpha": 2}, id="unknown-field-order"),
    pytest.param({"type": "ModelList", "id": "", "v": 1, "models": [{"model_id": "m"}]}, id="missing-field-order"),
]


def python_verdict(value) -> dict:
    try:
        msg = p.decode(json.dumps(value))
    except p.ProtocolError as exc:
        return {"ok": False, "code": exc.code, "field": exc.field}
    return {"ok": True, "msg": json.loads(p.encode(msg))}


def test_js_validate_agrees_with_python_decode(js_validate):
    results = js_validate(CASES)
    assert len(results) == len(CASES)
    for frame, js in zip(CASES, results):
        py = python_verdict(frame)
        got = {k: js[k] for k in py}
        assert got == py, f"{json.dumps(frame)}: JS {js} vs Python {py}"
        if not js["ok"]:
            assert js["message"]  # a readable reason, like ProtocolError's
    # The cases cover both outcomes and several codes, or the check proves little.
    assert {r["ok"] for r in results} == {True, False}
    assert {r.get("code") for r in results} >= {"bad_message", "version_mismatch", "bad_field"}


def test_js_validate_fills_defaults_like_python(js_validate):
    frames = [
        {"type": "Chat", "id": "c1", "v": 1, "sampling": {"temperature": 1.5}},
        {"type": "Chat", "id": "c2", "v": 1},  # the whole Sampling from its defaults
        {"type": "ChatBatch", "id": "", "v": 1, "prompts": [[M], []]},
        {"type": "ModelList", "id": "", "v": 1, "models": [{"model_id": "m", "name": "n", "file": "f", "bytes": 1,
                                                            "sha256": "s", "quantization": "q", "license": "MIT"}]},
    ]
    for frame, js in zip(frames, js_validate(frames)):
        assert js["ok"] and js["msg"] == python_verdict(frame)["msg"], frame


@pytest.mark.parametrize("frame", EDGE_CASES)
def test_edge_cases_agree(js_validate, frame):
    (js,) = js_validate([frame])
    py = python_verdict(frame)
    assert {k: js.get(k) for k in py} == py


# Values a fuzzed field may take: every JSON kind, near the ranges, names of the enums.
POOL = [None, True, False, 0, 1, -1, 2, 127, 128, 131072, 131073, 64, 65, 2**31 - 1, 2**31, 0.5, 1.0, 2.5, -0.0,
        -0.1, 1e300, "", "x", "user", "robot", "auto", "webgpu", "wasm-st", "q8_0", "f16", "Chat", [], [1], ["a"],
        [{}], [[]], {}, {"a": 1}, dict(M), [dict(M)], [[dict(M)]], {"temperature": 0.1}]
KEYS = ["type", "id", "v", "zeta", "content", "role", "temperature", "stop", "n_ctx", "models", "messages"]


def _valid_frames() -> list[dict]:
    frames = [json.loads(p.encode(cls())) for cls in p.MESSAGE_TYPES.values()]
    frames += [
        {"type": "Chat", "id": "c", "v": 1, "messages": [dict(M), {"role": "assistant", "content": "yo"}],
         "sampling": {"temperature": 0.2, "stop": ["\n"]}},
        {"type": "ChatBatch", "id": "b", "v": 1, "prompts": [[dict(M)], [dict(M), dict(M)]]},
        json.loads(p.encode(p.ModelList(models=[p.ModelInfo("m", "n", "f", 1, "s", "q", "MIT")]))),
        json.loads(p.encode(p.StorageReport(models=[p.StoredModel("m", "n", "1", 2, 1, False, True)]))),
    ]
    return frames


def _containers(value, out):
    """Every dict and list inside `value` (itself included)."""
    if isinstance(value, (dict, list)):
        out.append(value)
        for v in value.values() if isinstance(value, dict) else value:
            _containers(v, out)
    return out


def _mutate(frame: dict, rng: random.Random) -> dict:
    frame = copy.deepcopy(frame)
    for _ in range(rng.randint(1, 3)):
        target = rng.choice(_containers(frame, []))
        action = rng.random()
        if isinstance(target, dict):
            if target and action < 0.55:
                target[rng.choice(list(target))] = copy.deepcopy(rng.choice(POOL))
            elif target and action < 0.8:
                del target[rng.choice(list(target))]
            else:
                target[rng.choice(KEYS)] = copy.deepcopy(rng.choice(POOL))
        elif target and action < 0.6:
            target[rng.randrange(len(target))] = copy.deepcopy(rng.choice(POOL))
        elif target and action < 0.8:
            del target[rng.randrange(len(target))]
        else:
            target.append(copy.deepcopy(rng.choice(POOL)))
    return frame


def test_fuzzed_frames_agree(js_validate):
    """Mutations of valid frames of every type: the same verdict, code and field on both
    sides, and the same message with its defaults where both accept it."""
    rng = random.Random(20240622)
    bases = _valid_frames()
    frames = bases + [_mutate(rng.choice(bases), rng) for _ in range(3000)]
    results = js_validate(frames)
    disagreements = []
    for frame, js in zip(frames, results):
        py = python_verdict(frame)
        if {k: js.get(k) for k in py} != py:
            disagreements.append(f"{json.dumps(frame)}: JS {js} vs Python {py}")
    assert not disagreements, f"{len(disagreements)} disagreements, e.g.\n" + "\n".join(disagreements[:5])
    verdicts = [python_verdict(f) for f in frames]
    assert sum(v["ok"] for v in verdicts) > 300 and sum(not v["ok"] for v in verdicts) > 1000
    assert len({v.get("field") for v in verdicts}) > 30  # many different fields refused, not one


# ------------------------------------------------------------ make()


def test_make_fills_every_types_defaults_like_python(run_js):
    made = run_js("out(Object.fromEntries(Object.values(P.T).map((t) => [t, P.make(t, {}, 'x1')])));")
    for name, cls in p.MESSAGE_TYPES.items():
        assert made[name] == json.loads(p.encode(cls(id="x1"))), name


def test_make_keeps_what_it_is_given(run_js, js_validate):
    fields = {"messages": [M], "sampling": {"temperature": 1.5, "stop": ["x"]}}
    made = run_js("out(P.make('Chat', data, 'c1'));", fields)
    assert made == python_verdict({"type": "Chat", "id": "c1", "v": 1, **fields})["msg"]
    # Wrong scalars are not make()'s to judge: they reach the validator, which names them.
    wrong = [("LoadModel", {"kv_cache": "q4_0"}, "kv_cache"), ("Chat", {"sampling": {"temperature": "hot"}}, "sampling.temperature"),
             ("LoadModel", {"n_ctx": 1}, "n_ctx"), ("Chat", {"messages": [{"role": "user"}]}, "messages[0].content"),
             ("Complete", {"wings": 2}, "wings")]
    frames = run_js("out(data.map(([t, f]) => P.make(t, f)));", [[t, f] for t, f, _ in wrong])
    for (name, _, field), frame, js in zip(wrong, frames, js_validate(frames)):
        assert js == {**js, "ok": False, "code": "bad_field", "field": field}, (name, js)
        assert python_verdict(frame) == {"ok": False, "code": "bad_field", "field": field}
    # undefined means "not given" (JSON drops it): the default.
    assert run_js("out(P.make('Chat', {sampling: undefined, messages: [{role: 'user', content: 'a'}]}).sampling);") \
        == json.loads(p.encode(p.Chat()))["sampling"]
    # Each frame gets its own copies of the defaults.
    assert run_js("const a = P.make('Chat'); a.sampling.stop.push('x'); a.messages.push(1); out(P.make('Chat'));") \
        == json.loads(p.encode(p.Chat()))


MAKE_ERRORS = [
    ("Chat", {"messages": "hello"}, "Chat.messages: expected a list of ChatMessage objects, got string", "messages"),
    ("Chat", {"sampling": {"stop": "x"}}, "Chat.sampling.stop: expected a list of strings, got string", "sampling.stop"),
    ("Chat", {"sampling": []}, "Chat.sampling: expected a Sampling object, got array", "sampling"),
    ("Chat", {"sampling": None}, "Chat.sampling: expected a Sampling object, got null", "sampling"),
    ("Complete", {"sampling": "greedy"}, "Complete.sampling: expected a Sampling object, got string", "sampling"),
    ("Chat", {"messages": ["hi"]}, "Chat.messages[0]: expected a ChatMessage object, got string", "messages[0]"),
    ("ChatBatch", {"prompts": [[M], "x"]}, "ChatBatch.prompts[1]: expected a list of ChatMessage objects, got string",
     "prompts[1]"),
    ("ChatBatch", {"prompts": M}, "ChatBatch.prompts: expected a list of lists of ChatMessage objects, got object",
     "prompts"),
    ("ModelList", {"models": [1]}, "ModelList.models[0]: expected a ModelInfo object, got number", "models[0]"),
    ("Diagnostics", {"fallbacks": "none"}, "Diagnostics.fallbacks: expected a list of strings, got string", "fallbacks"),
    ("Chat", "hello", "Chat: expected an object of fields, got string", ""),
    ("Chat", [M], "Chat: expected an object of fields, got array", ""),
]


@pytest.mark.parametrize(("type_", "fields", "message", "field"), MAKE_ERRORS, ids=[m[2].split(":")[0] for m in MAKE_ERRORS])
def test_make_names_the_field_it_cannot_fill(run_js, type_, fields, message, field):
    got = run_js(
        "try { out({made: P.make(data[0], data[1])}); }\n"
        "catch (e) { out({error: e.constructor.name, message: e.message, field: e.field, isError: e instanceof Error}); }\n",
        [type_, fields],
    )
    assert got == {"error": "TypeError", "message": message, "field": field, "isError": True}


def test_make_refuses_an_unknown_type(run_js):
    got = run_js("try { P.make('Nope'); out(null); } catch (e) { out(e.message); }")
    assert got == "unknown message type Nope"


# ------------------------------------------------------------ one owner per fact


def test_the_settings_form_takes_ranges_and_backends_from_the_protocol(run_js):
    """web/page/panels.js sets the form's min/max and backend options from protocol.js;
    static/index.html repeats none of them."""
    got = run_js(
        "const inputs = ['system_prompt', 'temperature', 'top_k', 'top_p', 'min_p', 'repeat_penalty', 'max_tokens', 'seed', 'n_ctx'];\n"
        "const form = { elements: Object.fromEntries(inputs.map((n) => [n, {}])), addEventListener() {} };\n"
        "form.elements.backend = { options: [], replaceChildren(...o) { this.options = o; } };\n"
        "globalThis.Option = class { constructor(text, value) { this.text = text; this.value = value; } };\n"
        "globalThis.document = { getElementById: (id) => (id === 'settings' ? form : {}) };\n"
        "await import('./page/panels.js');\n"
        "out({ ranges: Object.fromEntries(Object.entries(form.elements).filter(([, el]) => 'min' in el).map(([n, el]) => [n, [el.min, el.max]])),\n"
        "  backends: form.elements.backend.options.map((o) => [o.value, o.text]) });\n"
    )
    sampling = ["temperature", "top_k", "top_p", "min_p", "repeat_penalty", "max_tokens", "seed"]
    assert got["ranges"] == {**{n: list(p.field_range(p.Sampling, n)) for n in sampling},
                             "n_ctx": list(p.field_range(p.LoadModel, "n_ctx"))}
    assert [value for value, _ in got["backends"]] == list(p.BACKENDS)
    assert all(label != value for value, label in got["backends"])  # each has words, not just its name
    html = (ROOT / "static" / "index.html").read_text(encoding="utf-8")
    form = html[html.index('<form id="settings"'):html.index("</form>", html.index('<form id="settings"'))]
    assert not re.search(r"\b(min|max)=", form) and "<option" not in form
    for text in (html, (ROOT / "web" / "page" / "panels.js").read_text(encoding="utf-8")):
        assert str(p.field_range(p.LoadModel, "n_ctx")[1]) not in text
