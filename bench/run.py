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

SECTIONS = ("native", "browser", "cold", "controller", "quants")
MARK_START = "<!-- bench/run.py: generated section, replaced on each run -->"
MARK_END = "<!-- end of bench/run.py section -->"


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


# ------------------------------------------------------------------ report

def _m(s: dict | None, fmt: str = "{:.1f}") -> str:
    if not s:
        return "–"
    text = fmt.format(s["median"])
    if len(s["runs"]) > 1:
        text += f" ({fmt.format(s['min'])}–{fmt.format(s['max'])})"
    return text


def _ratio(b: dict | None, n: dict | None) -> float | None:
    return b["median"] / n["median"] if b and n and n["median"] else None


def pairs(data: dict) -> list[dict]:
    """Each browser figure with its native counterpart (same file, same threads)."""
    native = {(r["section"], r["model"], r["threads"]): r for r in data.get("native", [])}
    out = []
    for c in data.get("browser", {}).get("configs", []):
        n = native.get((c["section"], c["model"], c["threads"]))
        out.append({"b": c, "n": n, **{f"{k}_ratio": _ratio(c.get(k), n and n.get(k)) for k in ("prefill_tps", "decode_tps", "ttft_ms")}})
    return out


def _r(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def _native_flags(data: dict) -> str:
    """For the header: the CMAKE_ARGS native llama.cpp was built with, when the run recorded them."""
    args = (data.get("native_build_flags") or {}).get("cmake_args")
    if args is None:
        return ""
    return f" (built with `{' '.join(a.removeprefix('-D') for a in args)}`)" if args else " (llama.cpp's default build)"


def markdown(data: dict, png: str) -> str:
    a = data["args"]
    lines = [MARK_START, "", f"## Browser vs native llama.cpp — {data['date'][:10]}", "",
             f"`{data['command']}` — {data['machine']}; {data['browser_version']}; llama-cpp-python "
             f"{data['native_version']}{_native_flags(data)}. Repeats: {a['repeats']}; figures are medians (min–max). "
             f"Prompt {a['prefill']} tokens (raw document), {a['decode']} greedy decode tokens, TTFT of a short chat "
             f"question and its follow-up ({a['chat_tokens']}-token answers). KV cache: "
             f"{data.get('kv_cache', 'f16 (llama.cpp default) on both sides')}. Load during the run: {data['load_note']}.",
             *(["", f"**Incomplete run** ({data['incomplete']}): only what is below was measured.", ""] if "incomplete" in data else []),
             f"Raw data: `{data['json']}`. Ratios are browser / native (below 1: the browser is slower, "
             "except TTFT where above 1 is slower).", ""]
    main = [p for p in pairs(data) if p["b"]["section"] == "main"]
    if main or data.get("native"):
        lines += ["| model | threads | engine | backend | prefill tok/s browser | native | ratio | decode tok/s browser | native | ratio | TTFT ms browser | native | follow-up TTFT ms browser | native |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for p in main:
            b, n = p["b"], p["n"] or {}
            lines.append(f"| {b['model']} | {b['threads']} | {b['engine'] or 'auto'} | {b['loaded']['backend']} | "
                         f"{_m(b.get('prefill_tps'))} | {_m(n.get('prefill_tps'))} | {_r(p['prefill_tps_ratio'])} | "
                         f"{_m(b.get('decode_tps'))} | {_m(n.get('decode_tps'))} | {_r(p['decode_tps_ratio'])} | "
                         f"{_m(b.get('ttft_ms'), '{:.0f}')} | {_m(n.get('ttft_ms'), '{:.0f}')} | "
                         f"{_m(b.get('followup_ttft_ms'), '{:.0f}')} | {_m(n.get('followup_ttft_ms'), '{:.0f}')} |")
        paired = {(p["b"]["section"], p["b"]["model"], p["b"]["threads"]) for p in pairs(data)}
        if True:
            for n in data.get("native", []):
                if n["section"] == "main" and (n["section"], n["model"], n["threads"]) not in paired:
                    lines.append(f"| {n['model']} | {n['threads']} | – | native only | – | {_m(n.get('prefill_tps'))} | – | – | "
                                 f"{_m(n.get('decode_tps'))} | – | – | {_m(n.get('ttft_ms'), '{:.0f}')} | – | {_m(n.get('followup_ttft_ms'), '{:.0f}')} |")
        lines.append("")
    quants = [p for p in pairs(data) if p["b"]["section"] == "quants"]
    paired = {(p["b"]["model"], p["b"]["threads"]) for p in quants}
    quants += [{"b": {"model": n["model"], "threads": n["threads"], "isolated": True, "engine": "", "loaded": {"backend": "native only"}},
                "n": n, "prefill_tps_ratio": None, "decode_tps_ratio": None}
               for n in data.get("native", []) if n["section"] == "quants" and (n["model"], n["threads"]) not in paired]
    if quants:
        lines += [f"### Quantization formats (SmolLM2 re-quantized from the shipped Q4_1; prompt {a['quant_prefill']} tokens, "
                  f"{a['quant_decode']} decode tokens, repeats: {a['quant_repeats'] or a['repeats']})", "",
                  "| format | file MB | threads | page | engine | backend | prefill tok/s | native | ratio | decode tok/s | native | ratio |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for p in sorted(quants, key=lambda p: (p["b"]["model"], not p["b"]["isolated"], p["b"]["threads"], p["b"]["engine"])):
            b, n = p["b"], p["n"] or {}
            mb = f"{n['bytes'] / 1e6:.0f}" if n.get("bytes") else "–"
            lines.append(f"| {b['model']} | {mb} | {b['threads']} | {'isolated' if b['isolated'] else 'not isolated'} | "
                         f"{b['engine'] or 'auto'} | {b['loaded']['backend']} | {_m(b.get('prefill_tps'))} | {_m(n.get('prefill_tps'))} | "
                         f"{_r(p['prefill_tps_ratio'])} | {_m(b.get('decode_tps'))} | {_m(n.get('decode_tps'))} | {_r(p['decode_tps_ratio'])} |")
        lines.append("")
    br = data.get("browser", {})
    cold = br.get("cold_start")
    if cold:
        keys = ("first_paint", "engine_ready", "weights_ready", "pyodide_ready", "model_ready", "status_ready")
        lines += ["### Cold start (ms since navigation start)", "",
                  "| visit | " + " | ".join(k.replace("_", " ") for k in keys) + " |",
                  "|---|" + "---|" * len(keys),
                  "| first (download) | " + " | ".join(str(cold["first_visit"][k]) for k in keys) + " |",
                  "| cached (median of runs) | " + " | ".join(_m(cold["cached"][k], "{:.0f}") for k in keys) + " |",
                  "", "engine ready: the worker's Hello; weights ready: weights downloaded or read from IndexedDB, llama.cpp "
                  "starting; model ready: the first ModelLoaded; status ready: the status line reads Ready.", ""]
    ctl = br.get("controller")
    if ctl:
        lines += [f"### Controller cost (an answer of up to {a['answer_tokens']} tokens asked through the page)", "",
                  "| streamed tokens | main-thread ms per token (bridge + Python + view) | slowest token ms | long tasks | longest long task ms |",
                  "|---|---|---|---|---|",
                  f"| {_m(ctl['deltas'], '{:.0f}')} | {_m(ctl['ms_per_token'], '{:.2f}')} | {_m(ctl['delta_max_ms'], '{:.1f}')} | "
                  f"{_m(ctl['longtasks'], '{:.0f}')} | {_m(ctl['longest_ms'], '{:.0f}')} |", ""]
    mem = br.get("memory")
    if mem:
        sizes = {n["model"]: n["bytes"] for n in data.get("native", [])}
        lines += ["### Memory: peak RSS of Chromium's processes", "",
                  "| phase | all processes MB | largest process MB | model file MB | processes |", "|---|---|---|---|---|"]
        for phase, p in mem.items():
            label = phase.split(" ", 1)[-1]
            size = sizes.get(label)
            lines.append(f"| {phase} | {p['rss_total'] / 1e6:.0f} | {p['rss_largest_process'] / 1e6:.0f} | "
                         f"{f'{size / 1e6:.0f}' if size else '–'} | {p['processes']} |")
        lines += ["", "RSS summed over processes counts shared pages more than once; the largest process is the "
                  "renderer or the GPU/utility process that holds the wasm heap.", ""]
    if png:
        lines += [f"![browser/native ratios]({png})", ""]
    lines.append(MARK_END)
    return "\n".join(lines)


def chart(data: dict, out: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ps = [p for p in pairs(data) if p["prefill_tps_ratio"] is not None]
    if not ps:
        return False
    names = {"smollm2-135m-instruct-q4_1": "SmolLM2 Q4_1", "gemma3-270m-q4_k_m": "Gemma3 Q4_K_M"}
    labels = [f"{names.get(p['b']['model'], 'SmolLM2 ' + p['b']['model'])}".replace(" ", "\n", 1)
              + f"\n{p['b']['threads']}t {p['b']['engine'] or 'auto'}{'' if p['b']['isolated'] else ' no-iso'}" for p in ps]
    x = range(len(ps))
    w = 0.4
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(ps) + 2), 4.5))
    for bars in (ax.bar([i - w / 2 for i in x], [p["prefill_tps_ratio"] for p in ps], w, label="prefill tok/s"),
                 ax.bar([i + w / 2 for i in x], [p["decode_tps_ratio"] or 0 for p in ps], w, label="decode tok/s")):
        ax.bar_label(bars, fmt="%.2f", fontsize=6)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(list(x), labels, fontsize=7)
    ax.set_ylabel("browser / native (1 = native speed)")
    ax.set_title(f"Offgrid in Chromium vs native llama.cpp, {data['date'][:10]}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def update_results_md(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        text = head + section + rest.split(MARK_END, 1)[1]
    else:
        title, _, body = text.partition("\n")
        text = f"{title}\n\n{section}\n{body}"
    path.write_text(text)


def browser_version() -> str:
    import subprocess

    try:
        return subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return "chromium (version unknown)"


def load_note() -> str:
    load1, load5, _ = os.getloadavg()
    return f"load average {load1:.1f} (1 min) / {load5:.1f} (5 min) at the end, on {os.cpu_count()} cores"


def merge(paths: list[Path]) -> dict:
    """Several runs' JSON as one (the first's cold start, controller and header; every
    native and browser figure), e.g. a run split in parts to fit the machine's time."""
    runs = [json.loads(p.read_text()) for p in paths]
    data = runs[0]
    data.setdefault("native", [])
    data.setdefault("browser", {}).setdefault("configs", [])
    data["browser"].setdefault("memory", {})
    for extra in runs[1:]:
        data["native"] += extra.get("native", [])
        data["browser"]["configs"] += extra.get("browser", {}).get("configs", [])
        data["browser"]["memory"].update(extra.get("browser", {}).get("memory", {}))
        data["command"] += f"`, then `{extra['command']}"
        data["load_note"] += f"; second part: {extra['load_note']}"
        if "incomplete" in extra:
            data["incomplete"] = data.get("incomplete", "") + f" second part: {extra['incomplete']}"
    data["json"] = ", ".join(os.path.relpath(p, ROOT / "bench") for p in paths)
    return data


def render(paths: list[Path], results_md: str) -> None:
    """Re-make the tables and the chart from saved results (no measuring)."""
    data = merge(paths)
    png = paths[0].with_suffix(".png")
    has_png = chart(data, png)
    md = markdown(data, os.path.relpath(png, ROOT / "bench") if has_png else "")
    print(md)
    if results_md:
        update_results_md(Path(results_md), md)


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
