"""A copy of the built site with the engine's test hooks in it (for e2e tests and benchmarks).

The shipped site has no test hooks and no URL turns any on. A hooked copy hard-links
every file of dist/, adds tests/e2e/hooks/test_hooks.js with its config beside the
engine's modules, serves tests/e2e/hooks/worker_entry.js as js/engine/engine.worker.js
and rewrites the service worker's precache list for the files it changed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .pwa import write_service_worker

ROOT = Path(__file__).resolve().parents[2]
HOOKS_DIR = ROOT / "tests" / "e2e" / "hooks"
HOOKS = {"webgpu_refuse", "webgpu_lose_device", "no_jspi", "device_memory_gb", "quota_mb", "no_prompt_cache"}


def _write(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)  # a hard link to dist/: never write through it
    path.write_text(text)


def make_hooked_site(dist: Path, dest: Path, **hooks: object) -> Path:
    """`dest` as a copy of `dist` with `hooks` (names in HOOKS) switched on in its engine worker."""
    unknown = set(hooks) - HOOKS
    if unknown:
        raise ValueError(f"unknown test hooks {sorted(unknown)}; known: {sorted(HOOKS)}")
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(dist, dest, copy_function=os.link)
    engine = dest / "js" / "engine"
    _write(engine / "test_hooks.js", (HOOKS_DIR / "test_hooks.js").read_text())
    _write(engine / "test_hooks_config.js", f"export default {json.dumps(hooks)};\n")
    _write(engine / "engine.worker.js", (HOOKS_DIR / "worker_entry.js").read_text())
    (dest / "sw.js").unlink()
    write_service_worker(dest)
    return dest
