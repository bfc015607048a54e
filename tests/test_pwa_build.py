"""The build's install and offline parts: manifest, icons, the precache list."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

from offgrid_dev import icons, pwa


def _entries(dist: Path) -> dict[str, dict[str, str]]:
    """The precache list as dist/sw.js carries it."""
    text = (dist / "sw.js").read_text()
    assert pwa.PLACEHOLDER not in text
    start = text.index('[{"url":')
    entries, _ = json.JSONDecoder().raw_decode(text[start:])
    return {e["url"]: e for e in entries}


def test_precache_covers_every_runtime_file_but_the_weights(dist):
    urls = _entries(dist)
    for must in ("index.html", "app.css", "manifest.webmanifest", "js/page/main.js", "js/engine/engine.worker.js", "js/page/pwa.js",
                 "vendor/wllama/index.js", "vendor/wllama/wasm/wllama.wasm",
                 "vendor/wllama-compat/wllama.js", "vendor/wllama-compat/wllama.wasm",
                 "vendor/pyodide/pyodide.mjs", "vendor/pyodide/pyodide.asm.wasm", "vendor/pyodide/python_stdlib.zip",
                 "vendor/pyodide/pyodide-lock.json", "vendor/idb/index.js",
                 "vendor/workbox-window/workbox-window.prod.mjs", "models/catalog.json", "icons/icon-512.png"):
        assert must in urls, must
    lock = json.loads((dist / "vendor" / "pyodide" / "pyodide-lock.json").read_text())
    assert "vendor/pyodide/" + lock["packages"]["offgrid"]["file_name"] in urls
    assert not [u for u in urls if u.endswith(".gguf") or u == "sw.js"]
    on_disk = {p.relative_to(dist).as_posix() for p in dist.rglob("*") if p.is_file()}
    assert set(urls) == {u for u in on_disk if not u.endswith(".gguf")} - {"sw.js"}


def test_a_changed_file_changes_exactly_its_revision(dist, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(dist, site, ignore=shutil.ignore_patterns("*.gguf", "*.wasm", "*.zip"))
    before = {e["url"]: e for e in pwa.precache_manifest(site)}
    (site / "app.css").write_text((site / "app.css").read_text() + "\n/* changed */\n")
    after = {e["url"]: e for e in pwa.precache_manifest(site)}
    changed = {u for u in before if before[u] != after[u]}
    assert changed == {"app.css"}


def test_manifest_names_icons_that_exist_as_pngs_of_their_size(dist):
    manifest = json.loads((dist / "manifest.webmanifest").read_text())
    assert manifest["display"] == "standalone" and manifest["start_url"] == manifest["scope"] == "./"
    assert {i["purpose"] for i in manifest["icons"]} == {"any", "maskable"}
    for icon in manifest["icons"]:
        data = (dist / icon["src"]).read_bytes()
        w, h = struct.unpack(">II", data[16:24])
        assert f"{w}x{h}" == icon["sizes"]
    html = (dist / "index.html").read_text()
    assert 'rel="manifest" href="manifest.webmanifest"' in html and 'href="icons/apple-touch-icon.png"' in html


def test_png_writer_round_trips():
    pixels = icons.draw(16)
    data = icons.png(16, pixels)
    idat = data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8]
    raw = zlib.decompress(idat)
    assert len(raw) == 16 * (1 + 16 * 4)
    assert raw[1:5] == bytes(pixels[0])  # row 0, filter byte then the first RGBA pixel
    # The corner of the rounded square is transparent, the centre white.
    assert pixels[0][3] == 0 and pixels[8 * 16 + 8][:3] == (255, 255, 255)


def _precache_for(dist: Path, features: dict) -> list[str]:
    """web/sw/engine_files.js's choice, in node, for the built site and a browser's features."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    script = f"""
      import {{ precacheFor }} from {json.dumps((root / 'web' / 'sw' / 'engine_files.js').as_uri())};
      const [entries, builds, features] = JSON.parse(process.argv[1]);
      console.log(JSON.stringify(precacheFor(entries, builds, features).map((e) => e.url)));"""
    arg = json.dumps([list(_entries(dist).values()), json.loads((dist / "engine" / "builds.json").read_text()), features])
    out = subprocess.run(["node", "--input-type=module", "-e", script, arg], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_the_service_worker_precaches_only_the_engine_build_this_browser_runs(dist):
    """Issue 23: the first visit stored every engine build (about 74 MB) to run one."""
    builds = json.loads((dist / "engine" / "builds.json").read_text())
    assert json.dumps(builds, separators=(",", ":")) in (dist / "sw.js").read_text()
    heavy = {f for b in builds["builds"] for f in [b["wasm"], *([b["compat"]["worker"], b["compat"]["wasm"]] if b["compat"] else [])]}
    everything = set(_entries(dist))
    chromium = _precache_for(dist, {"simd128": True, "relaxed_simd": True, "jspi": True, "memory64": True})
    safari = _precache_for(dist, {"simd128": True, "relaxed_simd": False, "jspi": False, "memory64": False})
    ids = {b["id"] for b in builds["builds"]}
    want_chromium = {"engine/relaxed/wasm/wllama.wasm"} if "relaxed" in ids else {"vendor/wllama/wasm/wllama.wasm"}
    assert set(chromium) & heavy == want_chromium
    simd = next((b for b in builds["builds"] if b["id"] == "simd"), None)
    want_safari = {simd["compat"]["worker"], simd["compat"]["wasm"]} if simd else {"vendor/wllama-compat/wllama.js", "vendor/wllama-compat/wllama.wasm"}
    assert set(safari) & heavy == want_safari
    # Everything else of the shell is there in both.
    assert set(chromium) - heavy == set(safari) - heavy == everything - heavy
    kept = sum((dist / u).stat().st_size for u in set(chromium) & heavy)
    total = sum((dist / u).stat().st_size for u in heavy)
    print(f"engine wasm precached for Chromium: {kept / 1e6:.1f} MB of {total / 1e6:.1f} MB")
    assert kept < total / 3
