"""The JavaScript unit tests (tests/node/*.test.mjs, node's own test runner): the engine
handler driven with a fake engine. Node is required: a missing node fails, never skips."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_node_unit_tests_pass():
    node = shutil.which("node")
    assert node, "node is missing: the engine's unit tests need it (apt-get install nodejs)"
    files = sorted(str(p) for p in (ROOT / "tests" / "node").glob("*.test.mjs"))
    assert files, "no node tests found"
    run = subprocess.run([node, "--test", *files], cwd=ROOT, capture_output=True, text=True, timeout=300)
    summary = [line for line in run.stdout.splitlines() if line.startswith(("# pass", "# fail", "not ok"))]
    assert run.returncode == 0, "\n".join(summary) + "\n" + run.stdout[-4000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout and "# pass 0" not in run.stdout, summary
