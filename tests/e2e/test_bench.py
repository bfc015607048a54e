"""The benchmark harness still works: bench/run.py on a tiny prompt, one model,
one thread count, one repeat, native and browser side. Not the benchmark
itself (that is `python3 bench/run.py`, never run in CI)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_harness_measures_native_and_browser(dist, tmp_path):
    cmd = [sys.executable, str(ROOT / "bench" / "run.py"), "--repeats", "1", "--prefill", "24", "--decode", "4",
           "--chat-tokens", "4", "--models", "smollm2-135m-instruct-q4_1", "--threads", "1", "--engines", "",
           "--only", "native,browser", "--dist", str(dist), "--out", str(tmp_path), "--results-md", ""]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (out,) = tmp_path.glob("*.json")
    data = json.loads(out.read_text())
    (native,) = data["native"]
    (browser,) = data["browser"]["configs"]
    for side in (native, browser):
        run = side["runs"][0]
        assert run["prompt_tokens"] >= 16  # the ~24-token prompt was evaluated, not taken from a cache
        assert run["prefill_tps"] > 0 and run["decode_tps"] > 0
        assert run["ttft_ms"] > 0 and run["followup_ttft_ms"] > 0
    assert browser["loaded"]["threads"] == 1
    assert browser["runs"][0]["followup_cached_tokens"] > 0  # the follow-up reused the first question's prompt
    (pair,) = data["pairs"]
    assert 0 < pair["prefill_tps_ratio"] < 10 and 0 < pair["decode_tps_ratio"] < 10
    # Memory was sampled from the real browser processes while it loaded and generated.
    peaks = data["browser"]["memory"]
    assert peaks["load smollm2-135m-instruct-q4_1"]["rss_total"] > 50e6
    assert (tmp_path / out.name.replace(".json", ".png")).stat().st_size > 1000
    assert "| smollm2-135m-instruct-q4_1 | 1 |" in done.stdout  # the markdown table row
