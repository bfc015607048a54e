"""Main-thread cost of one streamed token, through the real page (issue 22).

    flock /tmp/offgrid-cpu.lock python3 bench/token_cost.py                       # ~64 and ~2,000 tokens, 3 repeats
    flock /tmp/offgrid-cpu.lock python3 bench/token_cost.py --dist /tmp/other/dist --label before

An answer is asked as a person asks it (the message box, Send; greedy, a new
chat each time) and Chromium's own CPU counters for the page's main thread
(the DevTools protocol's Performance.getMetrics: TaskDuration, ScriptDuration,
LayoutDuration, RecalcStyleDuration) are read before the question and after
the answer; their growth divided by the answer's tokens is the cost of a token
on the main thread: the engine worker's frame crossing over, the Python
controller, the view, Markdown, style, layout and everything else the page
did meanwhile. Nothing observes the frames (no listener, no polling faster
than twice a second), and the question is typed before the counters are read
and sent with a plain click, so the page runs as it does for a person.

Writes bench/results/<date>-token-cost[-<label>].json and prints a markdown
table. Benchmarks are not tests: nothing here asserts.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ARGS, CHROMIUM, ROOT, write  # noqa: E402

COUNTERS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
# Greedy SmolLM2 writes a short story for the first and goes on for thousands of tokens on the second.
PROMPTS = {
    "short": "Write a short story about a dragon who learns to bake bread.",
    "long": "Write a very long story about a dragon who learns to bake bread, in many paragraphs, "
            "at least 3000 words. Do not stop early.",
}
READY = "() => document.querySelector('[role=status]')?.textContent === 'Ready'"


def metrics(cdp) -> dict[str, float]:
    got = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {k: got.get(k, 0.0) for k in COUNTERS}


def set_settings(page, max_tokens: int, n_ctx: int) -> None:
    """Greedy, `max_tokens`, a context that holds it; waits for Ready (a new context reloads the model)."""
    page.evaluate("""([n, ctx]) => {
      const f = document.getElementById('settings');
      f.elements.temperature.value = 0; f.elements.seed.value = 1; f.elements.max_tokens.value = n;
      f.elements.n_ctx.value = ctx;
      f.requestSubmit();
    }""", [max_tokens, n_ctx])
    page.wait_for_timeout(300)
    page.wait_for_function(READY, polling=500)


def answer(page, cdp, prompt: str) -> dict:
    """Ask `prompt` in a new chat; the counters' growth over the answer, per token."""
    page.evaluate("() => document.getElementById('new-chat').click()")
    page.get_by_role("textbox", name="Message").fill(prompt)
    page.wait_for_timeout(500)  # let the page settle: the counters should see the answer only
    before, t0 = metrics(cdp), time.perf_counter()
    # A plain click (no actionability checks): the controller says "Thinking…" before it returns.
    page.evaluate("() => document.getElementById('send').click()")
    page.wait_for_function(READY, polling=500)
    after, wall = metrics(cdp), time.perf_counter() - t0
    turn = page.evaluate("() => offgrid.state().turns.at(-1)")
    detail = page.evaluate("() => document.getElementById('model-detail').textContent")
    tokens = turn["n_tokens"]
    row = {"tokens": tokens, "chars": len(turn["content"]), "end_reason": turn["end_reason"], "wall_s": wall,
           "decode_tps": float(detail.split("last answer ")[1].split(" ")[0]) if "last answer " in detail else 0.0}
    for k in COUNTERS:
        row[f"{k}_ms_per_token"] = (after[k] - before[k]) * 1000 / tokens if tokens else 0.0
        row[f"{k}_ms"] = (after[k] - before[k]) * 1000
    return row


def run(dist: Path, sizes: list[int], repeats: int, n_ctx: int) -> list[dict]:
    from conftest import LiveServer  # the server the e2e tests use
    from playwright.sync_api import sync_playwright

    server = LiveServer(dist)
    rows: list[dict] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(600_000)
            page.goto(server.url + "/")
            page.wait_for_function(READY, polling=500)
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            for size in sizes:
                set_settings(page, size, n_ctx)
                prompt = PROMPTS["short" if size <= 256 else "long"]
                for i in range(repeats):
                    row = {"target_tokens": size, "repeat": i, **answer(page, cdp, prompt)}
                    print(f"  {size}: {row['tokens']} tokens, {row['TaskDuration_ms_per_token']:.2f} ms/token "
                          f"(script {row['ScriptDuration_ms_per_token']:.2f}, layout {row['LayoutDuration_ms_per_token']:.2f})",
                          flush=True)
                    rows.append(row)
            browser.close()
    finally:
        server.close()
    return rows


def table(rows: list[dict], label: str) -> str:
    out = [f"| {label or 'this tree'}: answer tokens (median) | main thread ms/token | script | layout | style | decode tok/s | answers |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for size in sorted({r["target_tokens"] for r in rows}):
        rs = [r for r in rows if r["target_tokens"] == size]
        med = lambda k: statistics.median(r[k] for r in rs)  # noqa: E731
        out.append(f"| {med('tokens'):.0f} (asked {size}) | {med('TaskDuration_ms_per_token'):.2f} | "
                   f"{med('ScriptDuration_ms_per_token'):.2f} | {med('LayoutDuration_ms_per_token'):.2f} | "
                   f"{med('RecalcStyleDuration_ms_per_token'):.2f} | {med('decode_tps'):.1f} | {len(rs)} |")
    return "\n".join(out)


def render(files: list[Path]) -> str:
    """One table for several saved runs, grouped by label (a trailing -r<N> is a round of the same label):
    medians over the rounds, and the marginal cost of a token (the long answer's cost less the short
    one's, per extra token: what a token costs once the answer's own start and end are left out)."""
    import json
    import re

    groups: dict[str, list[dict]] = {}
    for f in files:
        data = json.loads(f.read_text())
        groups.setdefault(re.sub(r"-r\d+$", "", data.get("label", "")), []).append(data)
    out = ["| build | answer tokens | main thread ms/token | script | layout | style | decode tok/s | answers |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    margins = []
    for label, runs in groups.items():
        rows = [r for d in runs for r in d["rows"]]
        sizes = sorted({r["target_tokens"] for r in rows})
        for size in sizes:
            rs = [r for r in rows if r["target_tokens"] == size]
            med = lambda k: statistics.median(r[k] for r in rs)  # noqa: E731
            lo_hi = lambda k: f"{min(r[k] for r in rs):.2f}–{max(r[k] for r in rs):.2f}"  # noqa: E731
            out.append(f"| {label} | {med('tokens'):.0f} | {med('TaskDuration_ms_per_token'):.2f} ({lo_hi('TaskDuration_ms_per_token')}) | "
                       f"{med('ScriptDuration_ms_per_token'):.2f} | {med('LayoutDuration_ms_per_token'):.2f} | "
                       f"{med('RecalcStyleDuration_ms_per_token'):.2f} | {med('decode_tps'):.1f} | {len(rs)} |")
        if len(sizes) >= 2:
            per_run = []
            for d in runs:
                by = {r["target_tokens"]: r for r in d["rows"]}
                small, large = by.get(sizes[0]), by.get(sizes[-1])
                if small and large and large["tokens"] > small["tokens"]:
                    per_run.append({k: (large[f"{k}_ms"] - small[f"{k}_ms"]) / (large["tokens"] - small["tokens"]) for k in COUNTERS})
            if per_run:
                med = lambda k: statistics.median(p[k] for p in per_run)  # noqa: E731
                margins.append(f"| {label} | {med('TaskDuration'):.2f} | {med('ScriptDuration'):.2f} | "
                               f"{med('LayoutDuration'):.2f} | {med('RecalcStyleDuration'):.2f} | {len(per_run)} |")
    if margins:
        out += ["", "| build | marginal ms per token (long answer less short, per extra token) | script | layout | style | rounds |",
                "| --- | --- | --- | --- | --- | --- |", *margins]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dist", type=Path, default=ROOT / "dist", help="the built site to measure")
    ap.add_argument("--label", default="", help="names the result file and the table (e.g. before, after)")
    ap.add_argument("--tokens", default="64,2000", help="answer lengths to ask for (max_tokens)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-ctx", type=int, default=4096, help="context size setting (must hold the longest answer)")
    ap.add_argument("--render", nargs="+", type=Path, help="print one table for these saved results and measure nothing")
    a = ap.parse_args()
    if a.render:
        print(render(a.render))
        return
    sizes = [int(x) for x in a.tokens.split(",")]
    rows = run(a.dist, sizes, a.repeats, a.n_ctx)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("Model name")), "")
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    name = "token-cost" + (f"-{a.label}" if a.label else "")
    write(name, {"label": a.label, "dist": str(a.dist), "cpu": model, "chromium": chromium,
                 "repeats": a.repeats, "n_ctx": a.n_ctx, "rows": rows}, table(rows, a.label))


if __name__ == "__main__":
    main()
