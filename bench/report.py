"""bench/run.py's report: the markdown tables and the chart of browser/native ratios,
made from a run's JSON (or several runs merged), and the generated section of RESULTS.md."""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness import ROOT

MARK_START = "<!-- bench/run.py: generated section, replaced on each run -->"
MARK_END = "<!-- end of bench/run.py section -->"


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


