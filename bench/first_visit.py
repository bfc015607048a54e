"""What a first visit stores in the service worker's precache, by browser (issue 23): the
whole site's runtime files (what was precached before) against the app shell plus the
one engine build the browser runs (web/sw/engine_files.js). Static: it reads dist/, so
it needs no browser; the e2e test test_pwa checks the real cache holds that one build.

    python3 bench/first_visit.py
"""

from __future__ import annotations

import json
import subprocess

from harness import ROOT, write
from offgrid_dev.pwa import precache_manifest

DIST = ROOT / "dist"
BROWSERS = {
    "Chromium (relaxed SIMD, JSPI, Memory64)": {"simd128": True, "relaxed_simd": True, "jspi": True, "memory64": True},
    "Safari-like (SIMD, no JSPI, no Memory64)": {"simd128": True, "relaxed_simd": False, "jspi": False, "memory64": False},
}
SCRIPT = """import { precacheFor } from %s;
const [entries, builds, features] = JSON.parse(process.argv[1]);
console.log(JSON.stringify(precacheFor(entries, builds, features).map((e) => e.url)));"""


def main() -> None:
    entries = precache_manifest(DIST)
    builds = json.loads((DIST / "engine" / "builds.json").read_text())
    size = {e["url"]: (DIST / e["url"]).stat().st_size for e in entries}
    script = SCRIPT % json.dumps((ROOT / "web" / "sw" / "engine_files.js").as_uri())
    rows = ["| browser | precached before (every build) | precached now | of which engine wasm |", "|---|---|---|---|"]
    results = {"before_bytes": sum(size.values()), "browsers": {}}
    for name, features in BROWSERS.items():
        out = subprocess.run(["node", "--input-type=module", "-e", script, json.dumps([entries, builds, features])],
                             capture_output=True, text=True, check=True).stdout
        urls = json.loads(out)
        wasm = sum(size[u] for u in urls if u.startswith(("engine/", "vendor/wllama")) and (u.endswith(".wasm") or "/compat/" in u))
        now = sum(size[u] for u in urls)
        results["browsers"][name] = {"bytes": now, "engine_bytes": wasm, "files": len(urls)}
        rows.append(f"| {name} | {results['before_bytes'] / 1e6:.1f} MB | {now / 1e6:.1f} MB | {wasm / 1e6:.1f} MB |")
    write("first-visit", results, "\n".join(rows))


if __name__ == "__main__":
    main()
