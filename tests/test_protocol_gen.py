"""web/shared/protocol.gen.js: generated from protocol.py, never stale, and its JS
validate() refuses the same frames as Python's decode, with the same code and field."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from offgrid import protocol as p
from offgrid_dev import gen_protocol

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "web" / "shared" / "protocol.gen.js"


def test_generated_js_is_up_to_date():
    expected = gen_protocol.render()
    actual = GENERATED.read_text(encoding="utf-8") if GENERATED.exists() else "<missing>"
    # A plain bool assert: a 700-line diff of the schema would hide the advice.
    assert actual == expected, "web/shared/protocol.gen.js is stale: run `python3 build.py`"


def test_generated_js_names_every_type_and_error_code():
    text = gen_protocol.render()
    assert f"export const PROTOCOL_VERSION = {p.PROTOCOL_VERSION};" in text
    for name in p.MESSAGE_TYPES:
        assert f"  {name}: {json.dumps(name)}," in text
    assert json.dumps(list(p.schema()["error_codes"])) in text


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
        p.decode(json.dumps(value))
    except p.ProtocolError as exc:
        return {"ok": False, "code": exc.code, "field": exc.field}
    return {"ok": True}


@pytest.fixture(scope="module")
def js_validate(tmp_path_factory):
    """Runs the generated validate() in node over a list of frames; returns the verdicts."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH")
    tmp = tmp_path_factory.mktemp("protocol_js")
    # Copied to .mjs: package.json has no "type": "module", so node would read .js as CommonJS.
    module = tmp / "protocol.gen.mjs"
    module.write_text(GENERATED.read_text(encoding="utf-8"), encoding="utf-8")
    script = tmp / "check.mjs"
    script.write_text(
        f"import {{ validate }} from {json.dumps(module.as_uri())};\n"
        "import { readFileSync } from 'node:fs';\n"
        "const frames = JSON.parse(readFileSync(0, 'utf8'));\n"
        "const out = frames.map((f) => { const r = validate(f);\n"
        "  return r.ok ? { ok: true, msg: r.msg } : { ok: false, code: r.code, field: r.field, message: r.message }; });\n"
        "process.stdout.write(JSON.stringify(out));\n",
        encoding="utf-8",
    )

    def run(frames: list) -> list[dict]:
        done = subprocess.run(
            [node, str(script)], input=json.dumps(frames), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return run


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
    (result,) = js_validate([{"type": "Chat", "id": "c1", "v": 1, "sampling": {"temperature": 1.5}}])
    assert result["ok"]
    py = json.loads(p.encode(p.decode(json.dumps({"type": "Chat", "id": "c1", "v": 1, "sampling": {"temperature": 1.5}}))))
    assert result["msg"] == py


@pytest.mark.parametrize("frame", EDGE_CASES)
def test_edge_cases_agree(js_validate, frame):
    (js,) = js_validate([frame])
    py = python_verdict(frame)
    assert {k: js.get(k) for k in py} == py
