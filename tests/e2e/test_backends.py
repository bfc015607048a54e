"""Issue 8, end to end: which backend the app picks, why, and what happens when
it fails. Real Chromium, real engine, real model.

The WebGPU tests run on lavapipe (tests/webgpu_lavapipe/: a CPU-emulated Vulkan
device with shader-f16, slow: ~2 tokens/s), so they keep answers very short.
The forced failures use the engine's test hooks (tests/e2e/hooks/test_hooks.js, in a
hooked copy of the site: the shipped one has none): each makes a real failure happen
inside the real engine worker (a refused adapter, a destroyed GPUDevice, a
realm without JSPI); nothing is faked.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
BOOT_TIMEOUT_MS = 180_000

LAVAPIPE = Path(__file__).resolve().parents[1] / "webgpu_lavapipe"
WEBGPU_BOOT_MS = 420_000  # lavapipe: load on the GPU, then the automatic self-test (a second, CPU engine)
BASE_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--enable-unsafe-webgpu"]


def builds(dist: Path) -> dict:
    return json.loads((dist / "engine" / "builds.json").read_text())


def call(app, type_: str, fields: dict | None = None) -> dict:
    return app.page.evaluate("([t, f]) => offgrid.call(t, f)", [type_, fields or {}])


@pytest.fixture(scope="session")
def lavapipe_env() -> dict[str, str]:
    """The browser-only environment that gives Chromium a WebGPU adapter with shader-f16."""
    out = subprocess.run(["sh", str(LAVAPIPE / "setup.sh"), os.environ.get("OFFGRID_WEBGPU_DIR", "/tmp/offgrid-webgpu")],
                         check=True, capture_output=True, text=True)
    env_sh = out.stdout.strip().splitlines()[-1]
    return dict(line.strip().split("=", 1) for line in open(env_sh) if "=" in line and not line.startswith("#"))


@pytest.fixture
def launch(playwright, open_app, server, tmp_path):
    """A browser of its own: `launch(lavapipe_env)` -> an App on a fresh page of it,
    with a profile on disk (see `context` in conftest.py for why not incognito)."""
    browsers = []

    def start(env: dict[str, str] | None = None):
        args = BASE_ARGS + (["--use-angle=vulkan"] if env else [])
        context = playwright.chromium.launch_persistent_context(
            tmp_path / f"profile-{len(browsers)}", executable_path=CHROMIUM, args=args, env={**os.environ, **(env or {})})
        browsers.append(context)
        return open_app(context.pages[0] if context.pages else context.new_page(), server.url)

    yield start
    for b in browsers:
        b.close()


def short_answers(app, max_tokens: int) -> None:
    """Keep answers short (the software GPU is slow): the Max tokens setting."""
    if app.page.locator("details:has(#settings)").get_attribute("open") is None:
        app.page.get_by_text("Settings", exact=True).click()
    app.page.get_by_label("Max tokens").fill(str(max_tokens))
    app.button("Save settings").click()


def ask_and_wait(app, question: str, n_answers: int, timeout_ms: int = BOOT_TIMEOUT_MS) -> str:
    app.ask(question)
    app.page.wait_for_function(f"() => document.querySelectorAll('.msg.assistant').length === {n_answers}")
    app.wait_ready(timeout_ms)
    return app.answer_text()


def diagnostics_text(app) -> str:
    return app.page.locator("#diagnostics-body").text_content() or ""


def test_lavapipe_webgpu_offloads_all_layers_answers_and_self_tests(launch, lavapipe_env, server, artifacts):
    app = launch(lavapipe_env)
    app.open()
    app.wait_ready(WEBGPU_BOOT_MS)
    diag = call(app, "GetDiagnostics")
    assert diag["backend"] == "webgpu", diag
    assert diag["shader_f16"] and diag["webgpu_fallback"] is True  # lavapipe poses as a fallback adapter
    assert diag["max_storage_buffer_binding_size"] > 0 and diag["max_buffer_size"] > 0
    done, total = diag["gpu_layers"].split("/")
    assert done == total and int(total) > 0, diag["gpu_layers"]  # llama.cpp offloaded every layer
    # The automatic self-test ran on first use of WebGPU with this model.
    assert diag["self_test"].startswith("passed"), diag["self_test"]
    # The build running the model is the one with WebGPU, though the self-test started a CPU engine
    # on another build meanwhile; and the GPU keeps an f16 KV cache.
    assert diag["engine"] == "stock engine (no SIMD kernels)" and diag["kv_cache"] == "f16", diag

    app.page.get_by_text("Model & diagnostics").click()
    shown = diagnostics_text(app)
    for label in ("WebGPU adapter", "shader-f16", "subgroups", "Max buffer size", "Fallback (software) adapter",
                  "JSPI", "Memory64", "Cross-origin isolated", "Browser", "Platform", "Layers on the GPU", "GPU self-test"):
        assert label in shown, (label, shown)

    short_answers(app, 6)
    answer = ask_and_wait(app, "What is the capital of France?", 1, WEBGPU_BOOT_MS)
    assert answer.strip()
    assert "tok/s on webgpu" in (app.page.locator("#model-detail").text_content() or "")

    # The self-test button: GPU and CPU greedy decoding compared, agreement shown.
    app.page.evaluate("() => { window.selfTests = []; offgridDebug.listen((f) => {"
                      " if (f.type === 'SelfTestResult') window.selfTests.push(f); }); }")
    app.button("Run GPU self-test").click()
    app.page.wait_for_function("() => window.selfTests.length === 1", timeout=WEBGPU_BOOT_MS)
    clicked = app.page.evaluate("window.selfTests[0]")
    assert not clicked["error"] and clicked["n_tokens"] > 0, clicked
    app.wait_ready(WEBGPU_BOOT_MS)
    assert f"{clicked['agreement'] * 100:.0f}% of {clicked['n_tokens']}" in diagnostics_text(app)
    app.page.locator("details:has(#diagnostics-body)").screenshot(path=str(artifacts / "backends-webgpu-diagnostics.png"))
    result = call(app, "SelfTest", {"n_tokens": 4})
    assert result["type"] == "SelfTestResult" and not result["error"], result
    assert 0.0 <= result["agreement"] <= 1.0 and result["passed"] == (result["agreement"] >= result["threshold"])
    assert result["gpu_text"] and result["cpu_text"] and result["gpu_layers"] == diag["gpu_layers"]


def test_refused_webgpu_adapter_falls_back_to_wasm_and_says_so(launch, lavapipe_env, hooked):
    app = launch(lavapipe_env)
    app.page.goto(hooked(webgpu_refuse=True).url + "/")
    app.wait_ready(WEBGPU_BOOT_MS)
    diag = call(app, "GetDiagnostics")
    assert diag["shader_f16"]  # the page's probe saw a usable adapter; the engine's was refused
    assert diag["backend"] == "wasm-mt", diag
    assert diag["fallbacks"] and diag["fallbacks"][0].startswith("webgpu:"), diag["fallbacks"]
    assert "webgpu failed" in diag["backend_reason"]
    error = app.page.locator("#error-text").text_content() or ""
    assert "webgpu backend failed" in error and "now runs on wasm-mt" in error, error
    short_answers(app, 12)
    assert ask_and_wait(app, "Name a colour.", 1).strip()
    assert "tok/s on wasm-mt" in (app.page.locator("#model-detail").text_content() or "")


def test_lost_gpu_device_during_an_answer_falls_back_and_the_conversation_continues(launch, lavapipe_env, hooked):
    app = launch(lavapipe_env)
    app.page.goto(hooked(webgpu_lose_device=True).url + "/")
    app.wait_ready(WEBGPU_BOOT_MS)
    assert call(app, "GetDiagnostics")["backend"] == "webgpu"
    short_answers(app, 6)
    app.ask("My name is Ada. Say hello.")
    # The device is destroyed as the answer starts: the worker reloads the model on the CPU by itself.
    app.page.wait_for_function("() => document.querySelector('#error-text').textContent.includes('now runs on')",
                               timeout=WEBGPU_BOOT_MS)
    # ...and reports the model loaded again on the CPU.
    app.page.wait_for_function("() => /wasm-(mt|st)/.test(document.querySelector('#model-detail').textContent)",
                               timeout=WEBGPU_BOOT_MS)
    app.wait_ready(WEBGPU_BOOT_MS)
    error = app.page.locator("#error-text").text_content() or ""
    assert "webgpu backend failed" in error, error
    diag = call(app, "GetDiagnostics")
    assert diag["backend"] in ("wasm-mt", "wasm-st") and diag["fallbacks"], diag
    answer = ask_and_wait(app, "What is my name?", 2)
    assert answer.strip()
    state = app.page.evaluate("offgrid.state()")
    assert [t["role"] for t in state["turns"]] == ["user", "assistant", "user", "assistant"]
    assert state["turns"][0]["content"].startswith("My name is Ada")


def test_swiftshader_without_f16_picks_wasm_and_says_why(app):
    app.open()
    app.wait_ready()
    diag = call(app, "GetDiagnostics")
    assert diag["backend"] == "wasm-mt", diag
    assert not diag["shader_f16"]
    assert "lacks shader-f16" in diag["backend_reason"] or "no WebGPU adapter" in diag["backend_reason"], diag
    app.page.get_by_text("Model & diagnostics").click()
    assert diag["backend_reason"] in diagnostics_text(app)


def test_without_isolation_headers_it_runs_single_thread(open_app, page, dist, serve_folder):
    site = serve_folder(dist, isolate=False)
    app = open_app(page, site.url)
    app.open()
    app.wait_ready()
    diag = call(app, "GetDiagnostics")
    assert diag["cross_origin_isolated"] is False
    assert diag["backend"] == "wasm-st" and diag["threads"] == 1, diag
    assert "not cross-origin isolated" in diag["backend_reason"]
    short_answers(app, 16)
    assert ask_and_wait(app, "Name a fruit.", 1).strip()


def test_without_jspi_it_uses_the_local_compat_build_and_answers(open_app, page, hooked, dist):
    server = hooked(no_jspi=True)
    app = open_app(page, server.url)
    wasm = []
    page.context.on("request", lambda r: wasm.append(r.url) if r.url.endswith(".wasm") else None)
    page.goto(server.url + "/")
    app.wait_ready()
    diag = call(app, "GetDiagnostics")
    assert diag["jspi"] is False and diag["compat"] is True, diag
    assert "compat build" in diag["backend_reason"]
    short_answers(app, 16)
    assert ask_and_wait(app, "Name a fruit.", 1).strip()
    # The SIMD build's compat flavour where the site has one (issue 11), else wllama-compat's.
    simd = next((b for b in builds(dist)["builds"] if b["id"] == "simd"), None)
    where = "/engine/simd/compat/" if simd and simd["compat"] else "/vendor/wllama-compat/"
    compat = [u for u in wasm if where in u]
    assert compat and all(u.startswith(server.url) for u in compat), wasm
