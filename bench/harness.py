"""Shared plumbing for benchmarks: the real built site on a local server, Debian
Chromium driven by Playwright, and results written as JSON plus a markdown
table. Benchmarks are not tests: nothing here asserts a speed.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "py"))
sys.path.insert(0, str(ROOT / "tests"))

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


@contextmanager
def app_page(dist: Path = ROOT / "dist", isolate: bool = True):
    """A fresh browser profile on the real app, waited until Ready; yields the page."""
    from conftest import LiveServer  # the same server the e2e tests use
    from playwright.sync_api import sync_playwright

    server = LiveServer(dist, isolate=isolate)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_context().new_page()
            page.set_default_timeout(300_000)
            page.goto(server.url + "/")
            page.wait_for_function("() => document.querySelector('[role=status]').textContent === 'Ready'")
            yield page
            browser.close()
    finally:
        server.close()


def call(page, type_: str, fields: dict | None = None) -> dict:
    """One protocol request through window.offgrid, with the client-side wall time in ms."""
    t0 = time.perf_counter()
    result = page.evaluate("([t, f]) => offgrid.call(t, f)", [type_, fields or {}])
    result["wall_ms"] = (time.perf_counter() - t0) * 1000
    return result


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def write(name: str, data: dict, table: str) -> Path:
    """bench/results/<date>-<name>.json, and the table printed for RESULTS.md."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    out = ROOT / "bench" / "results" / f"{stamp}-{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": machine(), **data}
    out.write_text(json.dumps(payload, indent=1))
    print(table)
    print(f"\nwritten {out.relative_to(ROOT)}")
    return out
