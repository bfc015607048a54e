"""Issue 11 end to end: the engine build chosen in real Chromium is the one that runs,
every build answers when forced, 2 threads answer, and our SIMD builds' greedy answers
(JSPI with 32-bit memory or Memory64, and the compat flavour for browsers without JSPI)
match native llama.cpp built from the same source (llama-cpp-python 0.3.36 vendors the
llama.cpp our wasm is compiled from)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offgrid_dev.native_ref import describe

SMOL = "smollm2-135m-instruct-q4_1"
MODEL_FILE = Path(__file__).resolve().parents[2] / ".cache" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
N_CTX = 2048
PROMPT = "Once upon a time, in a small village by the sea,"  # for answers that need not match native
# Pure argmax on both sides: no repetition penalty, no truncation that could differ.
GREEDY = {"temperature": 0, "seed": 1, "repeat_penalty": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0}


def call(app, type_: str, fields: dict | None = None) -> dict:
    return app.page.evaluate("([t, f]) => offgrid.call(t, f)", [type_, fields or {}])


def builds(dist: Path) -> dict:
    return json.loads((dist / "engine" / "builds.json").read_text())


def _simd_or_fail(dist: Path) -> None:
    """The site has the simd build and its compat flavour, or this machine cannot build them."""
    simd = next((b for b in builds(dist)["builds"] if b["id"] == "simd"), None)
    if simd is None or simd["compat"] is None:
        from offgrid_dev import engine_build

        why = engine_build._why_no_toolchain()
        if why:
            pytest.skip(f"no SIMD engine here: {why}")
        pytest.fail("the site lacks the simd build or its compat flavour although this machine can build them")


def load(app, **fields) -> dict:
    loaded = call(app, "LoadModel", {"model_id": SMOL, "n_ctx": N_CTX, **fields})
    assert loaded["type"] == "ModelLoaded", loaded
    return loaded


def test_the_detected_build_is_the_one_loaded(app, dist):
    _simd_or_fail(dist)
    app.open()
    app.wait_ready()
    # Chromium validates SIMD128 and relaxed SIMD: the relaxed build when the site has it, else simd.
    features = app.page.evaluate("""() => [
        WebAssembly.validate(new Uint8Array([0,97,115,109,1,0,0,0,1,5,1,96,0,1,123,3,2,1,0,10,10,1,8,0,65,0,253,15,253,98,11])),
        WebAssembly.validate(new Uint8Array([0,97,115,109,1,0,0,0,1,5,1,96,0,1,123,3,2,1,0,10,15,1,13,0,65,1,253,15,65,2,253,15,253,128,2,11]))]""")
    assert features == [True, True]
    ids = [b["id"] for b in builds(dist)["builds"]]
    want = "relaxed" if "relaxed" in ids else "simd"
    loaded = load(app, backend="wasm-mt")
    assert loaded["engine"] == want
    diag = call(app, "GetDiagnostics")
    if want == "simd":
        assert diag["engine"] == "simd (llama.cpp WASM SIMD kernels)"
    else:
        assert diag["engine"].startswith("relaxed (llama.cpp WASM SIMD kernels")
    # The diagnostics panel says so too.
    app.page.wait_for_function(
        "(want) => document.getElementById('diagnostics-body').textContent.includes(want + ' (llama.cpp WASM SIMD kernels')",
        arg=want)
    # The browser fetched that build's wasm, not the stock one.
    assert any(u.endswith(f"/engine/{want}/wasm/wllama.wasm") for u in app.requests)
    assert not any(u.endswith("/vendor/wllama/wasm/wllama.wasm") for u in app.requests)


def test_forcing_each_build_answers_and_an_unknown_one_is_refused(app, dist):
    app.open()
    app.wait_ready()
    ids = [b["id"] for b in builds(dist)["builds"]]
    answers = {}
    for engine in ids:
        loaded = load(app, backend="wasm-mt", engine=engine)
        assert loaded["engine"] == engine
        diag = call(app, "GetDiagnostics")
        if engine == "stock":
            assert diag["engine"] == "stock engine (no SIMD kernels)"
            assert "WASM_Q4_1_F32" not in diag["weight_buffers"], diag["weight_buffers"]
        else:
            assert diag["engine"].startswith(f"{engine} (llama.cpp WASM SIMD kernels")
            # llama.cpp put SmolLM2's q4_1 matrices into our repacked buffer (about 76 MiB).
            assert "WASM_Q4_1_F32 " in diag["weight_buffers"], diag["weight_buffers"]
        assert " MiB" in diag["weight_buffers"], diag
        done = call(app, "Complete", {"prompt": PROMPT, "sampling": {**GREEDY, "max_tokens": 16}})
        assert done["type"] == "GenerateEnd" and done["text"].strip(), done
        answers[engine] = done["text"]
    assert "stock" in answers
    refused = call(app, "LoadModel", {"model_id": SMOL, "engine": "no-such-build"})
    assert refused["type"] == "EngineError" and refused["code"] == "bad_field" and refused["field"] == "engine"
    assert "no-such-build" in refused["message"] and "stock" in refused["hint"]
    # Refused before anything was unloaded: the last build still answers.
    assert call(app, "InspectModel")["engine"] == ids[-1]


def test_two_threads_answer(app, dist):
    _simd_or_fail(dist)
    app.open()
    app.wait_ready()
    loaded = load(app, backend="wasm-mt", n_threads=2, engine="simd")
    assert loaded["threads"] == 2 and loaded["engine"] == "simd"
    app.page.set_default_timeout(120_000)  # a pthread start-up hang would stop here
    done = call(app, "Complete", {"prompt": PROMPT, "sampling": {**GREEDY, "max_tokens": 32}})
    assert done["type"] == "GenerateEnd" and done["completion_tokens"] == 32


def test_the_cpu_kv_cache_is_q8_0_and_another_type_can_be_asked_for(app, dist):
    """On the CPU the KV cache is q8_0 (web/engine/backend.js says why); LoadModel.kv_cache overrides it."""
    app.open()
    app.wait_ready()
    loaded = load(app, backend="wasm-st")
    assert loaded["kv_cache"] == "q8_0", loaded
    assert call(app, "GetDiagnostics")["kv_cache"] == "q8_0"
    app.page.wait_for_function("() => document.getElementById('diagnostics-body').textContent.includes('KV cacheq8_0')")
    loaded = load(app, backend="wasm-st", kv_cache="f16")
    assert loaded["kv_cache"] == "f16", loaded
    done = call(app, "Complete", {"prompt": PROMPT, "sampling": {**GREEDY, "max_tokens": 16}})
    assert done["type"] == "GenerateEnd" and done["completion_tokens"] == 16, done
    refused = call(app, "LoadModel", {"model_id": SMOL, "kv_cache": "q4_0"})
    assert refused["type"] == "EngineError" and refused["code"] == "bad_field" and refused["field"] == "kv_cache", refused


class Native:
    """Native llama.cpp (llama-cpp-python 0.3.36, the llama.cpp our wasm is built from) on the same
    model file, n_ctx, KV cache type and raw prompt, 1 thread, pure argmax."""

    def __init__(self) -> None:
        import llama_cpp  # the test extra pins llama-cpp-python==0.3.36, built natively

        assert llama_cpp.__version__ == "0.3.36"
        # The app's CPU KV cache is q8_0 (web/engine/backend.js), which needs flash attention: the same here.
        self.llm = llama_cpp.Llama(model_path=str(MODEL_FILE), n_ctx=N_CTX, n_threads=1, seed=1, verbose=False,
                                   logits_all=True, flash_attn=True, type_k=llama_cpp.GGML_TYPE_Q8_0,
                                   type_v=llama_cpp.GGML_TYPE_Q8_0)
        self.prompt = self.llm.tokenize(MATCH_PROMPT.encode())  # BOS as the model asks, like llama-server
        # How this reference was built (CMAKE_ARGS, llama.cpp's system info): in every failure message.
        self.build = describe()

    def greedy(self, n_tokens: int) -> list[int]:
        ids = []
        self.llm.reset()
        for tok in self.llm.generate(self.prompt, temp=0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
            assert tok != self.llm.token_eos(), "the reference answer must not stop before n_tokens"
            ids.append(tok)
            if len(ids) == n_tokens:
                return ids
        raise AssertionError("unreachable")

    def gaps(self, ids: list[int]) -> list[float]:
        """For each answer token, how far its logit is below the best one (0 = native's argmax),
        with the answer itself as context (teacher forcing)."""
        self.llm.reset()
        self.llm.eval(self.prompt + ids)
        n = len(self.prompt)
        return [float(max(self.llm.scores[n - 1 + i]) - self.llm.scores[n - 1 + i][t]) for i, t in enumerate(ids)]

    def top2_margins(self, ids: list[int]) -> list[float]:
        """Best minus second-best logit at each answer position (teacher forcing)."""
        self.llm.reset()
        self.llm.eval(self.prompt + ids)
        n = len(self.prompt)
        return [float(a - b) for a, b in (sorted(self.llm.scores[n - 1 + i])[-1:-3:-1] for i in range(len(ids)))]

    def text(self, ids: list[int]) -> str:
        return self.llm.detokenize(ids).decode()


# SmolLM2-135M has near-ties everywhere: with the q8_0 KV cache, none of 12 plain prompts tried
# kept the best and second-best logit 0.1 apart for 32 greedy tokens (the best: 0.095; this one 0.047).
MATCH_PROMPT = "The first law of thermodynamics states that"
NEAR_TIE = 0.25  # logits; native llama.cpp itself flips at a 0.1 gap between batched and one-token evaluation


def test_simd_greedy_answers_match_native_llama_cpp(app, dist, hooked):
    """Token for token where it can be expected. Native llama.cpp runs x86 AVX2 kernels and ours
    WASM SIMD128: both quantize activations to Q8_1 (rounding to nearest) for the Q4_1 dot
    products, but sum in a different order, so logits differ slightly and a greedy choice
    flips where two logits nearly tie. The "first 32 tokens identical" rule did not hold for
    SmolLM2-135M even on a prompt whose native top-2 margin was >= 0.11 for 32 tokens (f16 KV
    cache; simd differed at about token 17, 2026-11-28), and with the q8_0 KV cache no such
    prompt was found (see MATCH_PROMPT). So: either the 64 tokens are identical, or every
    token of our answer is native's argmax or within NEAR_TIE of native's best logit, with our
    answer as the context (teacher forcing): the same model computing the same function."""
    _simd_or_fail(dist)
    native = Native()
    ids = native.greedy(64)
    # Native llama.cpp's own one-token-at-a-time answer, checked by one batched evaluation, is
    # already off by rounding (0.013 at one late position): the same effect, smaller.
    print("native reference:", native.build)
    assert max(native.gaps(ids)) <= NEAR_TIE, native.build
    print("native top-2 margin, first 32 tokens:", round(min(native.top2_margins(ids)[:32]), 3))
    text = native.text(ids)
    prefix = native.text(ids[:32])
    app.open()
    app.wait_ready()
    report = {}
    texts = {}

    def check(label: str) -> None:
        done = call(app, "Complete", {"prompt": MATCH_PROMPT, "sampling": {**GREEDY, "max_tokens": 64}})
        assert done["type"] == "GenerateEnd" and done["completion_tokens"] == 64, done
        texts[label] = done["text"]
        assert done["prompt_tokens"] == len(native.prompt), native.build
        if done["text"] == text:
            report[label] = "identical"
            return
        ours = native.llm.tokenize(done["text"].encode(), add_bos=False, special=False)
        assert native.text(ours) == done["text"]
        gaps = native.gaps(ours)
        first = next(i for i, (a, b) in enumerate(zip(ours, ids)) if a != b)
        report[label] = (f"first {first} tokens identical; {first_prefix_ok(done['text'], prefix)} 32; "
                         f"largest gap to native's best logit {max(gaps):.3f} "
                         f"at {[(i, native.text([t]), round(g, 3)) for i, (t, g) in enumerate(zip(ours, gaps)) if g > 0]}")
        print(label, report[label], flush=True)
        assert max(gaps) <= NEAR_TIE, (label, report[label], native.build)

    for build in [b["id"] for b in builds(dist)["builds"] if b["simd_kernels"]]:
        load(app, backend="wasm-st", engine=build)
        check(build)
    # Without JSPI (Safari) the simd build runs its compat flavour: asyncify, wasm32.
    app.page.goto("about:blank")
    app.page.goto(hooked(no_jspi=True).url + "/")
    app.wait_ready()
    loaded = load(app, backend="wasm-st")
    assert loaded["engine"] == "simd", loaded
    assert call(app, "GetDiagnostics")["engine"] == "simd (llama.cpp WASM SIMD kernels), compat flavour (asyncify, wasm32)"
    assert any(u.endswith("/engine/simd/compat/wllama.wasm") for u in app.requests)
    check("simd, compat flavour")
    print("greedy 64 tokens vs native llama.cpp:", report)
    # Relaxed SIMD is used only for exact integer dot products (wasm_dot_kernels.c), and 32-bit
    # or 64-bit memory changes no arithmetic: every SIMD build, its compat flavour included, must
    # compute what the simd build computes, token for token.
    assert {"simd", "relaxed", "simd64", "simd, compat flavour"} <= texts.keys(), texts.keys()
    assert all(text == texts["simd"] for text in texts.values()), texts


def first_prefix_ok(text: str, prefix: str) -> str:
    return "agrees on" if text.startswith(prefix) else "differs within"
