"""web/engine/build_select.js's choice of engine build, run in node (the same module the worker imports)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from offgrid_dev import engine_site

ROOT = Path(__file__).resolve().parents[1]
SIMD = {"id": "simd", "label": "simd (llama.cpp WASM SIMD kernels)", "module": "engine/simd/index.js",
        "wasm": "engine/simd/wasm/wllama.wasm", "compat": None, "webgpu": False, "simd_kernels": True,
        "requires": ["jspi", "simd128"], "memory": "wasm32", "max_memory": 4 * 2 ** 30}
RELAXED = {**SIMD, "id": "relaxed", "label": "relaxed (llama.cpp WASM SIMD kernels, relaxed-SIMD integer dot products)",
           "requires": ["jspi", "simd128", "relaxed_simd"]}
SIMD64 = {**SIMD, "id": "simd64", "label": "simd64 (llama.cpp WASM SIMD kernels, Memory64 for large models)",
          "requires": ["jspi", "memory64", "simd128"], "memory": "memory64", "max_memory": 16 * 2 ** 30}
ALL = {"builds": [engine_site.STOCK, SIMD, RELAXED, SIMD64], "default_cpu": "simd"}
# The simd build with its compat flavour (asyncify, wasm32), as the site ships it.
SIMD_COMPAT = {**SIMD, "compat": {"worker": "engine/simd/compat/wllama.js", "wasm": "engine/simd/compat/wllama.wasm"}}
WITH_COMPAT = {"builds": [engine_site.STOCK, SIMD_COMPAT], "default_cpu": "simd"}
CHROME = {"simd128": True, "relaxed_simd": True, "jspi": True, "memory64": True}
SAFARI = {"simd128": True, "relaxed_simd": False, "jspi": False, "memory64": False}


def select(cases: list) -> list:
    """selectBuild over (features, backend, builds, requested[, model bytes[, quantization]]) cases:
    the chosen id, or the error."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed (npm ci needs it too)")
    script = """
import { selectBuild, describe, detectFeatures } from %s;
const cases = JSON.parse(process.argv[1]);
const out = cases.map(([f, backend, builds, requested, bytes, quantization]) => {
  try { const s = selectBuild(f, backend, builds, requested, bytes ?? 0, quantization ?? ''); return {id: s.build.id, reason: s.reason, says: describe(s.build, f)}; }
  catch (e) { return {error: e.code, field: e.field, message: e.message, hint: e.hint}; }
});
out.push(detectFeatures({jspi: true, memory64: true}));
console.log(JSON.stringify(out));
""" % json.dumps((ROOT / "web" / "engine" / "build_select.js").as_uri())
    r = subprocess.run([node, "--input-type=module", "-e", script, json.dumps(cases)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def test_the_choice_follows_backend_browser_and_request():
    only_stock = {"builds": [engine_site.STOCK], "default_cpu": "stock"}
    simd_only = {"builds": [engine_site.STOCK, SIMD], "default_cpu": "simd"}
    *got, features = select([
        [CHROME, "webgpu", ALL, ""],                       # WebGPU: the build with WebGPU
        [CHROME, "wasm-mt", ALL, ""],                      # CPU: relaxed where it validates
        [{**CHROME, "relaxed_simd": False}, "wasm-st", ALL, ""],  # else SIMD128
        [{**CHROME, "simd128": False, "relaxed_simd": False}, "wasm-mt", ALL, ""],  # else stock
        [SAFARI, "wasm-st", ALL, ""],                      # no JSPI/Memory64: stock's compat build
        [CHROME, "wasm-mt", only_stock, ""],               # a site built without the toolchain
        [CHROME, "wasm-mt", simd_only, ""],
        [CHROME, "wasm-mt", ALL, "stock"],                 # forced
        [CHROME, "wasm-st", ALL, "simd"],
        [CHROME, "wasm-mt", ALL, "nope"],                  # unknown id
        [CHROME, "webgpu", ALL, "simd"],                   # a CPU-only build on WebGPU
        [SAFARI, "wasm-st", ALL, "relaxed"],               # a build this browser cannot run
        [SAFARI, "wasm-st", WITH_COMPAT, ""],              # no JSPI/Memory64: simd's compat flavour
        [{**SAFARI, "simd128": False}, "wasm-st", WITH_COMPAT, ""],  # no SIMD at all: stock's compat
    ])
    assert [g.get("id", g.get("error")) for g in got] == [
        "stock", "relaxed", "simd", "stock", "stock", "stock", "simd", "stock", "simd",
        "bad_field", "bad_field", "bad_field", "simd", "stock"]
    assert got[2]["says"] == "simd (llama.cpp WASM SIMD kernels)"
    assert got[3]["says"] == "stock engine (no SIMD kernels)"
    assert "simd needs simd128" in got[3]["reason"]
    assert all(g["field"] == "engine" for g in got[9:12])
    assert got[12]["says"] == "simd (llama.cpp WASM SIMD kernels), compat flavour (asyncify, wasm32)"
    assert got[13]["says"] == "stock engine (no SIMD kernels), compat flavour (asyncify, wasm32)"
    assert got[4]["says"] == got[13]["says"]
    assert "nope" in got[9]["message"] and "stock, simd, relaxed, simd64" in got[9]["hint"]
    assert "WebGPU" in got[10]["message"]
    assert "jspi" in got[11]["message"] and "relaxed_simd" in got[11]["message"]
    # node's V8 validates SIMD128 (relaxed SIMD depends on its version and flags).
    assert features["simd128"] is True and isinstance(features["relaxed_simd"], bool)


def test_32_bit_builds_first_and_memory64_for_models_they_cannot_hold():
    gib = 2 ** 30
    *got, _ = select([
        [CHROME, "wasm-mt", ALL, "", 3 * gib],             # fits 32-bit memory: relaxed (wasm32)
        [{**CHROME, "relaxed_simd": False}, "wasm-st", ALL, "", gib],  # simd (wasm32) before simd64
        [{**CHROME, "memory64": False}, "wasm-st", ALL, "", gib],  # wasm32 builds need no Memory64
        [CHROME, "wasm-mt", ALL, "", 3 * gib + 1],         # too large for 32-bit memory: simd64
        [{**CHROME, "simd128": False, "relaxed_simd": False}, "wasm-st", ALL, "", 2 * gib],  # stock, without SIMD128
        [CHROME, "wasm-st", ALL, "relaxed", 4 * gib],      # forced, but it cannot hold the model
        [SAFARI, "wasm-st", {**WITH_COMPAT, "builds": [*WITH_COMPAT["builds"], SIMD64]}, "", 4 * gib],  # compat flavours are wasm32
        [SAFARI, "wasm-st", WITH_COMPAT, "", 2 * gib],
        [CHROME, "wasm-mt", ALL, "", 12 * gib],            # simd64's 16 GiB memory takes 3/4 of it
        [CHROME, "wasm-mt", ALL, "", 12 * gib + 1],        # more than any build here can hold
        [CHROME, "wasm-st", ALL, "stock", 5 * gib],        # stock's Memory64 stops at 4 GiB (upstream's)
    ])
    assert [g.get("id", g.get("error")) for g in got] == [
        "relaxed", "simd", "relaxed", "simd64", "stock", "bad_field", "out_of_memory", "simd",
        "simd64", "out_of_memory", "bad_field"]
    assert got[3]["says"] == "simd64 (llama.cpp WASM SIMD kernels, Memory64 for large models)"
    assert "relaxed needs room for this model (its 4 GiB memory holds models up to 3 GiB)" in got[3]["reason"]
    assert "relaxed" in got[5]["message"] and "3 GiB" in got[5]["message"] and got[5]["field"] == "engine"
    assert "4.0 GiB" in got[6]["message"] and "jspi and memory64" in got[6]["message"]
    assert got[7]["says"].endswith("compat flavour (asyncify, wasm32)")
    assert "12.0 GiB" in got[9]["message"] and "the largest engine memory here (16 GiB) holds models up to 12 GiB" in got[9]["message"]
    assert "its 4 GiB memory holds models up to 3 GiB" in got[10]["message"]


def test_weights_in_memory_grow_where_a_build_repacks_their_quantization():
    """Our builds repack q4_1 weights with f32 scales (24 bytes per 20): the memory budget counts
    the weights at that size on those builds, as the file on stock and for other formats."""
    node = shutil.which("node")
    assert node, "node is needed"
    ours = {**SIMD, "weight_growth": {"Q4_1": 1.2}}
    script = """
import { weightBytes } from %s;
const [ours, stock] = JSON.parse(process.argv[1]);
const m = (quantization) => ({ bytes: 100_000_000, quantization });
console.log(JSON.stringify([weightBytes(ours, m('Q4_1')), weightBytes(ours, m('Q4_K_M')), weightBytes(stock, m('Q4_1')),
  weightBytes(ours, { bytes: 5 })]));
""" % json.dumps((ROOT / "web" / "engine" / "build_select.js").as_uri())
    r = subprocess.run([node, "--input-type=module", "-e", script, json.dumps([ours, engine_site.STOCK])],
                       capture_output=True, text=True, check=True)
    assert json.loads(r.stdout) == [120_000_000, 100_000_000, 100_000_000, 5]


def test_a_build_that_repacks_a_models_weights_must_hold_them_as_repacked():
    """The 3/4-of-memory rule counts the weights as they lie in a build's memory: a 2.9 GiB q4_1
    file takes 3.5 GiB in our 32-bit builds, so it goes to simd64; other formats as the file."""
    gib = 2 ** 30
    grow = {"weight_growth": {"Q4_1": 1.2}}
    ours = {"builds": [engine_site.STOCK, {**SIMD, **grow}, {**RELAXED, **grow}, {**SIMD64, **grow}], "default_cpu": "simd"}
    *got, _ = select([
        [CHROME, "wasm-mt", ours, "", int(2.9 * gib), "Q4_K_M"],
        [CHROME, "wasm-mt", ours, "", int(2.9 * gib), "Q4_1"],
        [CHROME, "wasm-st", ours, "relaxed", int(2.9 * gib), "Q4_1"],
        [CHROME, "wasm-mt", ours, "", int(2.4 * gib), "Q4_1"],  # 2.9 GiB repacked: still 32-bit
        # No Memory64: stock's compat flavour keeps the file's layout, so it holds it; ours cannot.
        [{**CHROME, "memory64": False}, "wasm-st", ours, "", int(2.9 * gib), "Q4_1"],
    ])
    assert [g.get("id", g.get("error")) for g in got] == ["relaxed", "simd64", "bad_field", "relaxed", "stock"]
    repacked = "this one's weights take 3.5 GiB there, repacked"
    assert repacked in got[1]["reason"] and "relaxed needs room for this model" in got[1]["reason"]
    assert repacked in got[2]["message"] and "its 4 GiB memory holds models up to 3 GiB" in got[2]["message"]
    assert repacked in got[4]["reason"] and "simd64 needs memory64" in got[4]["reason"]
