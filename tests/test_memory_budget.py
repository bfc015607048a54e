"""web/engine/memory_budget.js against native llama.cpp (llama-cpp-python, the same
llama.cpp source as the browser engine): the estimate made before loading
must cover what llama.cpp really allocates (weights, KV cache, compute
buffers) without refusing models that fit. The JS module runs in Node."""

from __future__ import annotations

import json
from pathlib import Path
import re
import shutil
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[1]

MIB = 1024 * 1024
ALLOCATION = re.compile(r"(model|KV|compute) buffer size =\s+([\d.]+) MiB")

LOAD = """
import sys, llama_cpp
llama_cpp.Llama(sys.argv[1], n_ctx=int(sys.argv[2]), n_batch=512, n_threads=1, verbose=True)
"""


def native_bytes(path, n_ctx: int) -> int:
    """What llama.cpp reports it allocated for this model and context (its own log lines)."""
    pytest.importorskip("llama_cpp", reason="native llama.cpp comes with the test extra (python3 build.py test installs it)")
    out = subprocess.run([sys.executable, "-c", LOAD, str(path), str(n_ctx)], capture_output=True, text=True, check=True)
    sizes = [float(mib) for kind, mib in ALLOCATION.findall(out.stderr)]
    assert sizes, out.stderr[-2000:]
    return int(sum(sizes) * MIB)


def js(expr: str) -> object:
    node = shutil.which("node")
    assert node, "Node.js is needed (the build uses it for npm)"
    script = f"import * as b from {json.dumps((ROOT / 'web' / 'engine' / 'memory_budget.js').as_uri())}; console.log(JSON.stringify({expr}));"
    out = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize(("model_id", "n_ctx"), [
    ("smollm2-135m-instruct-q4_1", 2048),
    ("smollm2-135m-instruct-q4_1", 8192),
    ("smollm2-135m-instruct-q4_1", 32768),
    ("gemma3-270m-q4_k_m", 4096),
])
def test_the_estimate_covers_what_llama_cpp_allocates(dist, model_id, n_ctx):
    model = next(m for m in json.loads((dist / "models" / "catalog.json").read_text())["models"] if m["id"] == model_id)
    measured = native_bytes(dist / "models" / model["file"], n_ctx)
    need = js(f"b.estimate({json.dumps(model)}, {n_ctx})")
    # At least what llama.cpp takes; at most a third more than it plus the runtime's overhead.
    assert measured <= need["total"] <= measured * 4 / 3 + need["overhead"], (measured / MIB, {k: v / MIB for k, v in need.items()})


def test_a_context_is_halved_until_it_fits_and_a_hopeless_case_says_why(dist):
    model = next(m for m in json.loads((dist / "models" / "catalog.json").read_text())["models"] if m["id"] == "smollm2-135m-instruct-q4_1")
    m = json.dumps(model)
    fits = js(f"b.fitContext({m}, 2048, b.budget(8))")
    assert fits == {"nCtx": 2048, "notice": ""}
    shrunk = js(f"b.fitContext({m}, 65536, b.budget(1))")
    assert shrunk["nCtx"] in (4096, 8192, 16384), shrunk
    assert shrunk["notice"].startswith(f"Context reduced from 65536 to {shrunk['nCtx']} tokens to fit memory: 65536 tokens would need ")
    assert "about half of this device's 1 GB of memory" in shrunk["notice"]
    refused = js(f"b.fitContext({m}, 2048, b.budget(0.25))")
    assert refused["nCtx"] is None
    assert refused["reason"].startswith("SmolLM2 135M Instruct does not fit in memory here: even with a 256-token context it needs ")
    # No device figure (Safari, Firefox): only the engine's 4 GB memory limits.
    assert js("b.budget(0)") == {"bytes": 4 * 1024**3, "why": "the engine's 4 GiB WebAssembly memory"}
    assert js(f"b.fitContext({m}, 131072, b.budget(0))")["nCtx"] < 131072
    # A Memory64 build (simd64) grows to 16 GiB: the device's memory limits first, then that.
    assert js(f"b.budget(0, {16 * 1024**3})") == {"bytes": 16 * 1024**3, "why": "the engine's 16 GiB WebAssembly memory"}
    assert js(f"b.budget(8, {16 * 1024**3})")["why"] == "about half of this device's 8 GB of memory"
