"""The real app in headless Debian Chromium, driven through the protocol
(window.offgrid) and, for the controller's cost, through the page as a person
uses it. Nothing is mocked; an init script only observes (timings, frames
handled on the main thread, long tasks)."""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from harness import ARGS, CHROMIUM

# Runs before any page script (through the DevTools protocol, so the CSP does not
# apply). It wraps the handler the bridge installs on the engine worker, so every
# frame's main-thread cost (JSON, listeners, the Python controller, the view
# updates it makes) is timed; records long tasks and when the status reads Ready.
OBSERVE = """
(() => {
  const b = window.__bench = { frames: 0, frameMs: 0, deltas: 0, deltaMs: 0, deltaMaxMs: 0, ends: 0,
    longtasks: [], readyAt: 0,
    reset() { Object.assign(b, { frames: 0, frameMs: 0, deltas: 0, deltaMs: 0, deltaMaxMs: 0 }); b.since = performance.now(); } };
  b.since = 0;
  let d = null;
  for (let o = Worker.prototype; o && !d; o = Object.getPrototypeOf(o)) d = Object.getOwnPropertyDescriptor(o, 'onmessage');
  Object.defineProperty(Worker.prototype, 'onmessage', {
    configurable: true,
    get() { return d.get.call(this); },
    set(fn) {
      d.set.call(this, typeof fn !== 'function' ? fn : function (e) {
        const t0 = performance.now();
        try { return fn.call(this, e); } finally {
          const dt = performance.now() - t0;
          b.frames += 1; b.frameMs += dt;
          const raw = typeof e.data === 'string' ? e.data : '';
          if (raw.includes('"type":"Delta"') || raw.includes('"type": "Delta"')) {
            b.deltas += 1; b.deltaMs += dt; b.deltaMaxMs = Math.max(b.deltaMaxMs, dt);
          }
          if (raw.includes('GenerateEnd')) b.ends += 1;
        }
      });
    },
  });
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) b.longtasks.push([e.startTime, e.duration]);
    }).observe({ type: 'longtask', buffered: true });
  } catch {}
  const watch = () => {
    const s = document.querySelector('[role=status]');
    if (!s) return false;
    new MutationObserver(() => {
      if (!b.readyAt && s.textContent === 'Ready') b.readyAt = performance.now();
    }).observe(s, { childList: true, characterData: true, subtree: true });
    return true;
  };
  if (!watch()) document.addEventListener('DOMContentLoaded', watch);
})();
"""
READY = ("() => { const s = document.querySelector('[role=status]')?.textContent ?? '';"
         " if (s.startsWith('Error')) throw new Error(s); return s === 'Ready'; }")


class Server:
    """The dev server (real create_app: COOP/COEP or not, CSP) on a free port, plus
    /bench-models/<file> for GGUF files that are not in the catalog (same origin)."""

    def __init__(self, dist: Path, isolate: bool, models_dir: Path | None) -> None:
        from conftest import _free_port
        from flask import abort, send_from_directory
        from offgrid_dev.server import create_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        app = create_app(dist, isolate=isolate)
        if models_dir is not None:
            def bench_model(name: str):
                if "/" in name or not (models_dir / name).is_file():
                    abort(404)
                return send_from_directory(models_dir, name, conditional=True, max_age=0)
            app.add_url_rule("/bench-models/<name>", "bench_model", bench_model)
        self.port = _free_port()
        self.url = f"http://localhost:{self.port}"
        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()


class MemWatch:
    """Samples the resident memory of the browser's processes (every Chromium
    process under this one) in the background; keeps the peak per phase."""

    def __init__(self, every_s: float = 0.2) -> None:
        import psutil

        self._psutil = psutil
        self.every_s = every_s
        self.phase = ""
        self.peaks: dict[str, dict] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> tuple[int, int, int]:
        total = largest = n = 0
        for p in self._psutil.Process(os.getpid()).children(recursive=True):
            try:
                if "chrom" not in p.name().lower():
                    continue
                rss = p.memory_info().rss
            except self._psutil.Error:
                continue
            total += rss
            largest = max(largest, rss)
            n += 1
        return total, largest, n

    def _run(self) -> None:
        while not self._stop.is_set():
            phase = self.phase
            if phase:
                total, largest, n = self._sample()
                peak = self.peaks.setdefault(phase, {"rss_total": 0, "rss_largest_process": 0, "processes": 0})
                if total > peak["rss_total"]:
                    peak.update(rss_total=total, processes=n)
                peak["rss_largest_process"] = max(peak["rss_largest_process"], largest)
            self._stop.wait(self.every_s)

    @contextmanager
    def during(self, phase: str):
        self.phase = phase
        try:
            yield
        finally:
            time.sleep(self.every_s)  # one more sample at the end of the phase
            self.phase = ""

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def call(page, type_: str, fields: dict | None = None) -> dict:
    from harness import call as _call

    result = _call(page, type_, fields)
    if result.get("type") == "EngineError":
        raise RuntimeError(f"{type_} {fields}: {result.get('code')}: {result.get('message')}")
    return result


class Browser:
    """Debian Chromium, headless, with the observer script in every context."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)

    def new_context(self):
        ctx = self.browser.new_context()
        ctx.add_init_script(OBSERVE)
        return ctx

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()


def visit(page, url: str, timeout_ms: int = 300_000) -> dict:
    """Open the app and wait for Ready; the boot's timings (ms since navigation start)."""
    page.set_default_timeout(timeout_ms)
    t0 = time.perf_counter()
    page.goto(url + "/")
    page.wait_for_function(READY)
    wall = (time.perf_counter() - t0) * 1000
    page.wait_for_function("() => window.__bench.readyAt > 0")
    marks = page.evaluate("() => window.offgridTimings()")
    paint = page.evaluate("() => Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, Math.round(p.startTime)]))")
    ready = page.evaluate("() => Math.round(window.__bench.readyAt)")
    return {"first_paint": paint.get("first-paint", paint.get("first-contentful-paint", 0)),
            "first_contentful_paint": paint.get("first-contentful-paint", 0),
            "pyodide_ready": marks.get("pyodide-ready", 0), "engine_ready": marks.get("engine-ready", 0),
            "weights_ready": marks.get("weights-ready", 0), "model_ready": marks.get("model-ready", 0),
            "status_ready": ready, "wall_ms": wall}


def load(page, model: dict, threads: int, engine: str, backend: str = "auto", n_ctx: int = 2048) -> dict:
    """Unload whatever is loaded, then load `model` ({model_id} or {url}) as asked."""
    call(page, "UnloadModel")
    loaded = call(page, "LoadModel", {**model, "n_threads": threads, "engine": engine, "backend": backend, "n_ctx": n_ctx})
    return {k: loaded.get(k) for k in ("backend", "engine", "threads", "kv_cache", "load_ms", "quantization", "bytes", "model_id")}


def _speed(end: dict) -> dict:
    speed = next((e for e in end["events"] if e["type"] == "Speed"), None)
    if speed is None:
        raise RuntimeError(f"no Speed event: {end}")
    return speed


def throughput(page, prompt: str, n_decode: int) -> dict:
    """A raw prompt (prefill), then up to `n_decode` greedy tokens (decode)."""
    end = call(page, "Complete", {"prompt": prompt, "sampling": {"temperature": 0, "seed": 1, "max_tokens": n_decode}})
    speed = _speed(end)
    return {"prompt_tokens": end["prompt_tokens"] - end["cached_tokens"], "prefill_tps": speed["prefill_tps"],
            "decode_tokens": end["completion_tokens"], "decode_tps": speed["decode_tps"]}


_runs = 0


def ttft(page, chat_tokens: int) -> dict:
    """First question in a new chat, then a follow-up (prompt cache reused, as the app does)."""
    from native import chat_messages

    global _runs
    _runs += 1
    nonce = f"Question {_runs}."  # a new chat: nothing of it in the engine's prompt cache
    sampling = {"temperature": 0, "seed": 1, "max_tokens": chat_tokens}
    first = call(page, "Chat", {"messages": chat_messages(nonce=nonce), "sampling": sampling})
    follow = call(page, "Chat", {"messages": chat_messages(first["text"], nonce=nonce), "sampling": sampling})
    return {"ttft_ms": _speed(first)["ttft_ms"], "followup_ttft_ms": _speed(follow)["ttft_ms"],
            "ttft_wall_ms": first["wall_ms"], "followup_cached_tokens": follow["cached_tokens"]}


LONG_ANSWER = "Write a long story about a dragon who learns to bake bread, in many paragraphs."


def controller_cost(page, n_tokens: int) -> dict:
    """One answer asked through the page (the Python controller streams it into the
    view): main-thread time per token for the worker's frames, and long tasks."""
    page.evaluate("""(n) => {
      const f = document.getElementById('settings');
      f.elements.temperature.value = 0; f.elements.seed.value = 1; f.elements.max_tokens.value = n;
      f.requestSubmit();
      document.getElementById('new-chat').click();  // each answer in a chat of its own
    }""", n_tokens)
    ends = page.evaluate("() => window.__bench.ends")
    page.evaluate("() => window.__bench.reset()")
    t0 = time.perf_counter()
    page.get_by_role("textbox", name="Message").fill(LONG_ANSWER)
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_function("(n) => window.__bench.ends > n", arg=ends)
    page.wait_for_function(READY)
    wall = (time.perf_counter() - t0) * 1000
    b = page.evaluate("""() => { const b = window.__bench;
      const lt = b.longtasks.filter(([s]) => s >= b.since).map(([, d]) => d);
      return { frames: b.frames, frame_ms: b.frameMs, deltas: b.deltas, delta_ms: b.deltaMs, delta_max_ms: b.deltaMaxMs,
               longtasks: lt.length, longest_ms: lt.length ? Math.max(...lt) : 0, longtask_ms: lt.reduce((a, x) => a + x, 0) }; }""")
    b["ms_per_token"] = b["delta_ms"] / b["deltas"] if b["deltas"] else 0.0
    b["answer_wall_ms"] = wall
    return b
