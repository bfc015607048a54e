"""Install and offline: the web app manifest, the icons and the service worker.

The service worker (web/sw/sw.js) is bundled with the pinned Workbox modules
by esbuild, then its `self.__WB_MANIFEST` is replaced with every file of the
built site (but the model weights) and a hash of its content. The hash is the
revision: a new build changes the service worker's bytes exactly when some
file changed, and the browser then fetches exactly the files whose hash moved.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

from .icons import ICONS, write_icons

ROOT = Path(__file__).resolve().parents[2]
SW_SOURCE = ROOT / "web" / "sw" / "sw.js"
SW_NAME = "sw.js"
MANIFEST_NAME = "manifest.webmanifest"
PLACEHOLDER = "self.__WB_MANIFEST"
BUILDS_PLACEHOLDER = "self.__OFFGRID_BUILDS"  # dist/engine/builds.json: which build's wasm to precache

MANIFEST = {
    "id": "./",
    "name": "Offgrid — private chat",
    "short_name": "Offgrid",
    "description": "Private AI chat that runs entirely in your browser, offline too.",
    "start_url": "./",
    "scope": "./",
    "display": "standalone",
    "orientation": "any",
    "theme_color": "#0f766e",
    "background_color": "#f7f7f5",
    "icons": [
        {"src": "icons/icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
        {"src": "icons/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
        {"src": "icons/icon-maskable-512.png", "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
    ],
}


def precached(dist: Path) -> list[Path]:
    """Every file the app may need at run time, whatever the backend: all of dist/ but
    the weights (IndexedDB keeps those), source maps and the service worker itself."""
    skip_suffixes = {".gguf", ".map"}
    return sorted(
        p for p in dist.rglob("*")
        if p.is_file() and p.suffix not in skip_suffixes and p.relative_to(dist).as_posix() != SW_NAME
    )


def precache_manifest(dist: Path) -> list[dict[str, str]]:
    """Workbox precache entries: URL relative to the service worker, revision and SRI integrity.

    The integrity check makes a file that changed on the server while the worker
    was installing fail the install, instead of being cached under the old revision.
    """
    entries = []
    for path in precached(dist):
        data = path.read_bytes()
        entries.append({
            "url": path.relative_to(dist).as_posix(),
            "revision": hashlib.sha256(data).hexdigest()[:16],
            "integrity": "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode(),
        })
    return entries


def bundle_service_worker() -> str:
    """web/sw/sw.js with its Workbox imports, as one classic script (Safari and Firefox
    support module service workers only recently)."""
    esbuild = ROOT / "node_modules" / ".bin" / "esbuild"
    out = subprocess.run(
        [str(esbuild), str(SW_SOURCE), "--bundle", "--format=iife", "--minify", "--target=es2020",
         "--define:process.env.NODE_ENV=\"production\"", "--log-level=warning"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    for placeholder in (PLACEHOLDER, BUILDS_PLACEHOLDER):
        if out.count(placeholder) != 1:
            raise SystemExit(f"expected {placeholder} once in the bundled service worker")
    return out


def write_service_worker(dist: Path, bundle: str | None = None) -> list[dict[str, str]]:
    """(Re)write dist/sw.js with the list of what is in `dist` now (it precaches the shell and
    the one engine build the browser runs: web/sw/engine_files.js)."""
    entries = precache_manifest(dist)
    builds = json.loads((dist / "engine" / "builds.json").read_text())
    text = (bundle or bundle_service_worker()).replace(PLACEHOLDER, json.dumps(entries, separators=(",", ":")))
    text = text.replace(BUILDS_PLACEHOLDER, json.dumps(builds, separators=(",", ":")))
    (dist / SW_NAME).write_text(text)
    return entries


def assemble_pwa(dist: Path, cache: Path) -> list[dict[str, str]]:
    """Icons and manifest first, so that the service worker precaches them too."""
    write_icons(dist / "icons", cache)
    assert {i["src"].split("/")[-1] for i in MANIFEST["icons"]} <= ICONS.keys()
    (dist / MANIFEST_NAME).write_text(json.dumps(MANIFEST, indent=1, ensure_ascii=False))
    return write_service_worker(dist)
