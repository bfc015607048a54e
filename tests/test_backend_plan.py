"""web/engine/backend.js's plan() (which backend, in which order, and why), run by
node on the real module: the order of issue 8, never WebGPU without
shader-f16, fallback adapters with f16 accepted, models too big for the
adapter's buffer limits kept off the GPU."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parents[1] / "web" / "engine" / "backend.js"
GPU = {"vendor": "google", "architecture": "swiftshader", "adapter": "google swiftshader", "features": ["shader-f16"],
       "fallback": True, "shaderF16": True, "subgroups": True, "maxBufferSize": 2**31,
       "maxStorageBufferBindingSize": 128 * 2**20}
BASE = {"crossOriginIsolated": True, "hardwareConcurrency": 2, "jspi": True, "memory64": True, "webgpu": GPU,
        "webgpuError": ""}


def plan(probe: dict, preference: str = "auto", threads: int = 0, opts: dict | None = None) -> list[dict]:
    if not shutil.which("node"):
        pytest.skip("node is not installed (the build needs it too)")
    script = (f"import {{ plan }} from {json.dumps(BACKEND.as_uri())};"
              f"console.log(JSON.stringify(plan({json.dumps(probe)}, {json.dumps(preference)}, {threads}, {json.dumps(opts or {})})));")
    out = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def backends(choices: list[dict]) -> list[str]:
    return [c["backend"] for c in choices]


def test_fallback_adapter_with_f16_gets_webgpu_first_then_the_cpu():
    choices = plan(BASE, opts={"bytes": 98_000_000})
    assert backends(choices) == ["webgpu", "wasm-mt", "wasm-st"]
    assert choices[0]["gpuLayers"] > 0 and "shader-f16" in choices[0]["reason"]
    assert all(c["gpuLayers"] == 0 for c in choices[1:])


@pytest.mark.parametrize("preference", ["auto", "webgpu"])
def test_never_webgpu_without_shader_f16(preference):
    choices = plan({**BASE, "webgpu": {**GPU, "shaderF16": False, "features": []}}, preference)
    assert "webgpu" not in backends(choices)
    assert "lacks shader-f16" in choices[0]["reason"]


def test_a_model_beyond_the_buffer_limits_stays_on_the_cpu():
    choices = plan(BASE, opts={"bytes": 8_000_000_000})
    assert backends(choices) == ["wasm-mt", "wasm-st"]
    assert "maxStorageBufferBindingSize" in choices[0]["reason"]


def test_not_isolated_means_single_thread_and_says_why():
    choices = plan({**BASE, "webgpu": None, "webgpuError": "no adapter", "crossOriginIsolated": False})
    assert backends(choices) == ["wasm-st"] and choices[0]["threads"] == 1
    assert "not cross-origin isolated" in choices[0]["reason"]


def test_missing_jspi_or_memory64_selects_the_compat_build():
    for missing in ("jspi", "memory64"):
        choices = plan({**BASE, missing: False})
        assert all(c["compat"] for c in choices)
        assert "compat build" in choices[0]["reason"]


def test_a_failed_self_test_prefers_the_cpu_unless_webgpu_is_forced():
    assert backends(plan(BASE, opts={"avoidGpu": "self-test failed"}))[0] == "wasm-mt"
    assert backends(plan(BASE, "webgpu", opts={"avoidGpu": "self-test failed"}))[0] == "webgpu"


def test_user_override_single_thread():
    assert backends(plan(BASE, "wasm-st")) == ["wasm-st"]
