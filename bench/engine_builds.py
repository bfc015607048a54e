"""Prefill and decode speed of every engine build the site carries (and the simd
build's compat flavour), with each KV cache type, beside native llama.cpp
(llama-cpp-python 0.3.36: the same llama.cpp source) with the same cache, at 1 and
2 threads (issue 11).

    flock /tmp/offgrid-cpu.lock python3 bench/engine_builds.py [--runs 3] [--kv f16,q8_0]

The app path: window.offgrid LoadModel(engine=<build>, n_threads, kv_cache) then Chat
with a ~256-token question, greedy, 128 tokens at most, prompt cache off; the numbers
are llama.cpp server's own timings (the Speed event). The page is a copy of the site
with the test hook no_prompt_cache (offgrid_dev/site_variants.py), so every answer
evaluates its whole prompt. The compat flavour (asyncify, wasm32) runs on a copy whose
engine worker also has no JSPI (the no_jspi hook), as in Safari. Native: the same chat prompt through llama_cpp, timings from
llama_perf_context.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from harness import ROOT, app_page, call, summary, write
from offgrid_dev.site_variants import make_hooked_site
from native import KV_TYPES, build_flags

MODEL = "smollm2-135m-instruct-q4_1"
MODEL_FILE = ROOT / ".cache" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
N_CTX = 2048
DIST = ROOT / "dist"
QUESTION = ("Here are some notes about the history of computing. " * 24) + "Summarise them in detail."
SAMPLING = {"temperature": 0, "seed": 1, "max_tokens": 128, "repeat_penalty": 1.0}


def app_runs(page, build: str, threads: int, runs: int, kv: str) -> dict:
    loaded = call(page, "LoadModel", {"model_id": MODEL, "n_ctx": N_CTX, "n_threads": threads,
                                      "backend": "wasm-mt" if threads > 1 else "wasm-st", "engine": build,
                                      "kv_cache": kv})
    assert loaded["type"] == "ModelLoaded" and loaded["engine"] == build and loaded["kv_cache"] == kv, loaded
    messages = [{"role": "user", "content": QUESTION}]
    call(page, "Chat", {"messages": messages, "sampling": {**SAMPLING, "max_tokens": 8}})
    prefill, decode, tokens = [], [], []
    for _ in range(runs):
        end = call(page, "Chat", {"messages": messages, "sampling": SAMPLING})
        speed = next(e for e in end["events"] if e["type"] == "Speed")
        prefill.append(round(speed["prefill_tps"], 1))
        decode.append(round(speed["decode_tps"], 1))
        tokens.append([end["prompt_tokens"], end["completion_tokens"]])
    return {"prefill_tps": summary(prefill), "decode_tps": summary(decode), "tokens": tokens,
            "threads": loaded["threads"], "kv_cache": kv}


def native_runs(threads: int, runs: int, kv: str) -> dict:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(MODEL_FILE), n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads,
                          verbose=False, flash_attn=True, type_k=KV_TYPES[kv], type_v=KV_TYPES[kv])
    messages = [{"role": "user", "content": QUESTION}]
    prefill, decode, tokens = [], [], []
    for i in range(runs + 1):
        llm.reset()
        llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
        out = llm.create_chat_completion(messages, temperature=0, max_tokens=128, repeat_penalty=1.0, seed=1)
        perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
        if i == 0:
            continue  # warm-up
        prefill.append(round(perf.n_p_eval / perf.t_p_eval_ms * 1000, 1))
        decode.append(round(perf.n_eval / perf.t_eval_ms * 1000, 1))
        tokens.append([out["usage"]["prompt_tokens"], out["usage"]["completion_tokens"]])
    return {"prefill_tps": summary(prefill), "decode_tps": summary(decode), "tokens": tokens, "threads": threads,
            "kv_cache": kv}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--kv", default="f16,q8_0", help="KV cache types")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    kvs = args.kv.split(",")
    doc = json.loads((DIST / "engine" / "builds.json").read_text())
    results = []

    def measure(page, engine: str, label: str) -> None:
        for kv in kvs:
            for t in threads:
                results.append({"engine": label, **app_runs(page, engine, t, args.runs, kv)})
                r = results[-1]
                print(label, kv, t, r["prefill_tps"]["median"], r["decode_tps"]["median"], flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        with app_page(make_hooked_site(DIST, Path(tmp) / "site", no_prompt_cache=True)) as page:
            for build in doc["builds"]:
                measure(page, build["id"], build["id"])
        if any(b["id"] == "simd" and b["compat"] for b in doc["builds"]):
            with app_page(make_hooked_site(DIST, Path(tmp) / "no-jspi", no_prompt_cache=True, no_jspi=True)) as page:
                measure(page, "simd", "simd, compat flavour")
    for kv in kvs:
        for t in threads:
            results.append({"engine": "native llama.cpp", **native_runs(t, args.runs, kv)})
    native = {(r["threads"], r["kv_cache"]): r for r in results if r["engine"] == "native llama.cpp"}
    rows = ["| engine | KV cache | threads | prefill t/s (median) | decode t/s (median) | prefill ÷ native | decode ÷ native "
            "| prompt, answer tokens |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        n = native[(r["threads"], r["kv_cache"])]
        rows.append(f"| {r['engine']} | {r['kv_cache']} | {r['threads']} | {r['prefill_tps']['median']} "
                    f"| {r['decode_tps']['median']} | {r['prefill_tps']['median'] / n['prefill_tps']['median']:.2f} "
                    f"| {r['decode_tps']['median'] / n['decode_tps']['median']:.2f} | {r['tokens'][0][0]}, {r['tokens'][0][1]} |")
    write("engine-builds", {"model": MODEL, "n_ctx": N_CTX, "runs": args.runs, "native_build_flags": build_flags(),
                            "results": results}, "\n".join(rows))


if __name__ == "__main__":
    main()
