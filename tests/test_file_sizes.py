"""No source file over 400 lines: small files with one job each. Generated files
(web/shared/protocol.gen.js) and documents are not counted."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 400
SOURCE = {".py", ".js", ".mjs", ".sh", ".c", ".cpp", ".h", ".html", ".css"}
GENERATED = {"web/shared/protocol.gen.js"}


def test_no_source_file_is_over_400_lines():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    sizes = {
        name: len((ROOT / name).read_text(errors="replace").splitlines())
        for name in tracked
        if Path(name).suffix in SOURCE and name not in GENERATED and (ROOT / name).is_file()
    }
    assert sizes, "no source files found"
    over = {name: n for name, n in sizes.items() if n > LIMIT}
    assert not over, f"over {LIMIT} lines (split them by job): {over}"
