"""The browser app side by side with native llama.cpp, in one run (issue 7).

    flock /tmp/offgrid-cpu.lock python3 bench/run.py            # everything, 3 repeats
    python3 bench/run.py --repeats 1 --prefill 32 --decode 8 --only native,browser   # a quick look

Sections (--only picks some; all by default):
  native      llama-cpp-python (native llama.cpp built for this CPU): prefill tok/s of a --prefill-token
              prompt, decode tok/s over --decode greedy tokens, TTFT of a short chat and its follow-up
  browser     the same through the real app (window.offgrid, greedy), per model, thread count and engine
  cold        first paint, Pyodide, engine, weights, model, status Ready: first and cached visit
  controller  main-thread ms per streamed token (bridge + Python controller + view) and long tasks
              during a --answer-tokens answer asked through the page
  memory      peak RSS of Chromium's processes while loading and generating (always, with browser)
  quants      SmolLM2 re-quantized (Q4_0, Q4_1, Q8_0, Q4_K_M) natively, loaded by URL: 1 and 2 threads on
              the isolated page, 1 thread on a page without COOP/COEP (single-thread WASM)
Engine builds: --engines a,b (default: every id in dist/engine/builds.json, else "" = the app's choice).

Writes <out>/<date>.json and <date>.png (browser/native ratios) and replaces the generated section of
bench/RESULTS.md (--results-md '' to leave it alone). Benchmarks are not tests: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, machine, summary  # noqa: E402
from report import browser_version, chart, load_note, markdown, pairs, render, update_results_md  # noqa: E402

SECTIONS = ("native", "browser", "cold", "controller", "quants")


def cache_dir() -> Path:
    return Path(os.environ.get("OFFGRID_CACHE", ROOT / ".cache"))


def catalog_models() -> dict[str, Path]:
    from offgrid_dev.models import MODELS

    return {m.id: cache_dir() / "models" / m.file for m in MODELS}


def engine_ids(dist: Path) -> list[str]:
    """Every engine build id the site ships (dist/engine/builds.json), else [""] (auto)."""
    path = dist / "engine" / "builds.json"
    if not path.exists():
        return [""]
    data = json.loads(path.read_text())
    if isinstance(data, dict) and "builds" in data:
        data = data["builds"]
    if isinstance(data, dict):
        ids = list(data)
    else:
        ids = [b if isinstance(b, str) else b.get("id", "") for b in data]
    return [i for i in ids if i] or [""]


def stats(rows: list[dict], keys: tuple[str, ...]) -> dict:
    return {k: summary([r[k] for r in rows]) for k in keys if rows and k in rows[0]}


THROUGHPUT = ("prefill_tps", "decode_tps", "prompt_tokens", "decode_tokens")
CHAT = ("ttft_ms", "followup_ttft_ms")


def run_native(a, models: dict[str, Path], prompts: dict[str, list[str]], quant_files: dict[str, Path],
               out: list[dict]) -> None:
    """Fills `out` as it goes (an interrupted run keeps what it measured)."""
    from native import measure

    jobs = [("main", m, models[m], prompts[m]) for m in a.models]
    jobs += [("quants", q, f, prompts["quant"]) for q, f in quant_files.items()]
    for section, label, path, ps in jobs:
        for t in a.threads:
            n_decode = a.decode if section == "main" else a.quant_decode
            t0 = time.perf_counter()
            rows = measure(path, t, ps, n_decode, a.chat_tokens)
            print(f"native {label} threads={t}: " + ", ".join(f"{r['prefill_tps']:.0f}/{r['decode_tps']:.1f} tok/s" for r in rows)
                  + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
            out.append({"section": section, "model": label, "file": path.name, "bytes": path.stat().st_size,
                        "threads": t, "runs": rows, **stats(rows, THROUGHPUT + CHAT)})


def run_browser(a, prompts: dict[str, list[str]], quant_files: dict[str, Path], result: dict) -> None:
    """Fills `result` as it goes (an interrupted run keeps what it measured)."""
    import browser as b

    result.update({"configs": [], "memory": {}, "cold_start": {}, "controller": {}})
    mem = b.MemWatch()
    result["memory"] = mem.peaks
    quant_dir = next(iter(quant_files.values())).parent if quant_files else None
    try:
        for isolate in (True, False):
            if not isolate and not quant_files:
                break
            server = b.Server(a.dist, isolate, quant_dir)
            br = b.Browser()
            try:
                ctx = br.new_context()
                page = ctx.new_page()
                with mem.during("boot, first visit" if isolate else "boot, page not isolated"):
                    first = b.visit(page, server.url)
                if isolate and "cold" in a.sections:
                    page.close()
                    cached = []
                    for _ in range(a.repeats):
                        page = ctx.new_page()
                        cached.append(b.visit(page, server.url))
                        page.close()
                    page = ctx.new_page()
                    with mem.during("boot, cached visit"):
                        cached.append(b.visit(page, server.url))
                    result["cold_start"] = {"first_visit": first, "cached_visit": cached[-1],
                                            "cached_runs": cached,
                                            "cached": {k: summary([c[k] for c in cached]) for k in cached[0]}}
                    print(f"cold start: first {first}\n            cached {cached[-1]}", flush=True)
                if isolate and "controller" in a.sections:
                    runs = []
                    for _ in range(a.repeats):
                        with mem.during("generate, page"):
                            runs.append(b.controller_cost(page, a.answer_tokens))
                    result["controller"] = {"runs": runs, **{k: summary([r[k] for r in runs]) for k in
                                            ("ms_per_token", "deltas", "longtasks", "longest_ms", "delta_max_ms")}}
                    print(f"controller: {runs[-1]}", flush=True)
                configs = []
                if isolate and "browser" in a.sections:
                    configs += [("main", m, {"model_id": m}, t, prompts[m], a.decode) for m in a.models for t in a.threads]
                if "quants" in a.sections:
                    threads = a.threads if isolate else [1]
                    configs += [("quants", q, {"url": f"/bench-models/{f.name}"}, t, prompts["quant"], a.quant_decode)
                                for q, f in quant_files.items() for t in threads]
                for section, label, model, t, ps, n_decode in configs:
                    for engine in a.engines:
                        t0 = time.perf_counter()
                        with mem.during(f"load {label}"):
                            loaded = b.load(page, model, t, engine)
                        rows = []
                        for prompt in ps:
                            with mem.during(f"generate {label}"):
                                row = b.throughput(page, prompt, n_decode)
                                if section == "main":
                                    row.update(b.ttft(page, a.chat_tokens))
                            rows.append(row)
                        print(f"browser {label} threads={t} engine={engine or 'auto'} isolated={isolate} "
                              f"{loaded['backend']}: " + ", ".join(f"{r['prefill_tps']:.0f}/{r['decode_tps']:.1f} tok/s" for r in rows)
                              + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
                        result["configs"].append({
                            "section": section, "model": label, "threads": t, "engine": engine, "isolated": isolate,
                            "loaded": loaded, "runs": rows, **stats(rows, THROUGHPUT + CHAT)})
                ctx.close()
            finally:
                br.close()
                server.close()
    finally:
        mem.close()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ids = list(catalog_models())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--prefill", type=int, default=512, help="prompt tokens for prefill")
    ap.add_argument("--decode", type=int, default=128, help="greedy tokens for decode")
    ap.add_argument("--chat-tokens", type=int, default=16, help="answer length of the TTFT chats")
    ap.add_argument("--answer-tokens", type=int, default=256, help="answer length for the controller's cost")
    ap.add_argument("--quant-prefill", type=int, default=512)
    ap.add_argument("--quant-decode", type=int, default=128)
    ap.add_argument("--quant-repeats", type=int, default=0, help="repeats of the quants section (default: --repeats)")
    ap.add_argument("--models", default=",".join(ids), help=f"catalog ids ({', '.join(ids)})")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--engines", default=None, help="engine build ids (default: dist/engine/builds.json, else auto)")
    ap.add_argument("--quants", default="Q4_0,Q4_1,Q8_0,Q4_K_M")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"sections: {', '.join(SECTIONS)}")
    ap.add_argument("--dist", type=Path, default=Path(os.environ.get("OFFGRID_DIST", ROOT / "dist")))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--results-md", default=str(ROOT / "bench" / "RESULTS.md"), help="'' to leave it alone")
    ap.add_argument("--render", nargs="+", type=Path, help="only re-make tables and chart from these results JSON files")
    ap.add_argument("--name", default="", help="suffix of the output files: <date>-<name>.json")
    ap.add_argument("--load-note", default="", help="what else ran on the machine meanwhile")
    a = ap.parse_args(argv)
    if a.render:
        render(a.render, a.results_md)
        return {}
    a.models = [m for m in a.models.split(",") if m]
    a.threads = [int(t) for t in a.threads.split(",")]
    a.engines = a.engines.split(",") if a.engines is not None else engine_ids(a.dist)
    a.sections = set(a.only.split(","))
    a.quants = [q for q in a.quants.split(",") if q] if "quants" in a.sections else []
    if not (a.dist / "models" / "catalog.json").exists():
        sys.exit(f"{a.dist} has no built site: run `python3 build.py` first")
    import llama_cpp
    from native import build_flags as native_build_flags
    from native import make_prompt, quantize

    t_start = time.perf_counter()
    models = catalog_models()
    prompts = {m: [make_prompt(models[m], a.prefill, r) for r in range(a.repeats)] for m in a.models}
    quant_files: dict[str, Path] = {}
    if a.quants:
        smol = models["smollm2-135m-instruct-q4_1"]
        qdir = ROOT / "bench" / "work"
        qdir.mkdir(parents=True, exist_ok=True)
        for q in a.quants:
            if q == "Q4_1":  # the shipped file as it is
                link = qdir / smol.name
                if not link.exists():
                    link.symlink_to(smol.resolve())
                quant_files[q] = link
            else:
                quant_files[q] = quantize(smol, q, qdir)
        prompts["quant"] = [make_prompt(smol, a.quant_prefill, r) for r in range(a.quant_repeats or a.repeats)]
    data: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
                  "command": "python3 bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                  "browser_version": browser_version(), "native_version": llama_cpp.__version__,
                  "native_build_flags": native_build_flags(),
                  "args": {k: (sorted(v) if isinstance(v, set) else str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}}
    try:
        if "native" in a.sections:
            run_native(a, models, prompts, quant_files, data.setdefault("native", []))
        if a.sections & {"browser", "cold", "controller", "quants"}:
            run_browser(a, prompts, quant_files, data.setdefault("browser", {}))
    except (KeyboardInterrupt, Exception) as exc:  # keep and report what was measured
        data["incomplete"] = f"stopped early: {type(exc).__name__}: {exc}"[:500]
        print(data["incomplete"], file=sys.stderr, flush=True)
    data["pairs"] = [{"model": p["b"]["model"], "section": p["b"]["section"], "threads": p["b"]["threads"],
                      "engine": p["b"]["engine"], "isolated": p["b"]["isolated"],
                      **{k: v for k, v in p.items() if k.endswith("_ratio")}} for p in pairs(data)]
    data["seconds"] = time.perf_counter() - t_start
    data["load_note"] = "; ".join(x for x in (a.load_note, load_note()) if x)
    from native import KV_CACHE

    data["kv_cache"] = f"{KV_CACHE} on both sides (the app's CPU default; native with flash attention, as the app)"
    stamp = data["date"][:10] + (f"-{a.name}" if a.name else "")
    a.out.mkdir(parents=True, exist_ok=True)
    out_json = a.out / f"{stamp}.json"
    png = a.out / f"{stamp}.png"
    data["json"] = os.path.relpath(out_json, ROOT / "bench")
    has_png = chart(data, png)
    out_json.write_text(json.dumps(data, indent=1))
    md = markdown(data, os.path.relpath(png, ROOT / "bench") if has_png else "")
    print(md)
    if a.results_md:
        update_results_md(Path(a.results_md), md)
    print(f"\nwritten {out_json}" + (f", {png}" if has_png else "") + f" in {data['seconds']:.0f} s")
    if "incomplete" in data:
        sys.exit(1)
    return data


if __name__ == "__main__":
    main()
