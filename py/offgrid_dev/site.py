"""Assemble the static site in dist/ from the repo and pinned packages."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

from . import engine_build, engine_site, gen_protocol, models
from .pwa import assemble_pwa
from .wheel import build_wheel

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"
MICROPIP = models.Wheel("micropip==0.11.1", "768de165adb8e66906039d8fec4127a57f522dfdf8e6fbff877a4616941ecfd3")
PYODIDE_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip")


def npm_ci(log=print) -> None:
    """`npm ci` unless node_modules already matches package-lock.json (no request then)."""
    lock = (ROOT / "package-lock.json").read_bytes()
    stamp = NODE_MODULES / ".offgrid-lock-sha256"
    want = hashlib.sha256(lock).hexdigest()
    if stamp.exists() and stamp.read_text() == want:
        return
    log("  npm ci")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT, check=True)
    stamp.write_text(want)


PROTOCOL_JS = ROOT / "web" / "shared" / "protocol.gen.js"


def protocol_js_problem(target: Path | None = None) -> str:
    """'' when `target` (web/shared/protocol.gen.js) holds what py/offgrid/protocol.py
    generates; else one line saying that it is stale or missing and what to run."""
    target = target or PROTOCOL_JS
    if target.exists() and target.read_text(encoding="utf-8") == gen_protocol.render():
        return ""
    try:
        name = target.relative_to(ROOT).as_posix()
    except ValueError:
        name = str(target)
    state = "is stale (it does not match py/offgrid/protocol.py)" if target.exists() else "is missing"
    return f"{name} {state}: run `python3 build.py protocol` to regenerate it"


def check_protocol_js(target: Path | None = None) -> None:
    """Stop the build (SystemExit, one line) while the generated protocol module is stale."""
    problem = protocol_js_problem(target)
    if problem:
        raise SystemExit(problem)


def write_protocol_js(target: Path | None = None) -> bool:
    """Regenerate web/shared/protocol.gen.js (`python3 build.py protocol`); True when it changed."""
    target = target or PROTOCOL_JS
    text = gen_protocol.render()
    if target.exists() and target.read_text(encoding="utf-8") == text:
        return False
    target.write_text(text, encoding="utf-8")
    return True


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _pyodide(dist: Path, cache: Path, log=print) -> None:
    """Pyodide's core files, micropip, the controller wheel and a lock that lists them.

    The lock shipped with pyodide 314.0.7 pins a micropip hash that PyPI's
    micropip-0.11.1 wheel does not have; we record the hash of the wheel we
    ship (itself checked against MICROPIP.sha256), so integrity checks stay on.
    """
    src = NODE_MODULES / "pyodide"
    out = dist / "vendor" / "pyodide"
    for name in PYODIDE_FILES:
        _copy(src / name, out / name)
    micropip = models.fetch_wheel(MICROPIP, cache / "pypi", log)
    _copy(micropip, out / micropip.name)
    wheel = build_wheel(ROOT / "py" / "offgrid", out)

    lock = json.loads((src / "pyodide-lock.json").read_text())
    lock["packages"]["micropip"]["sha256"] = models.file_sha256(out / micropip.name)
    lock["packages"]["micropip"]["file_name"] = micropip.name
    from offgrid import __version__

    lock["packages"]["offgrid"] = {
        "name": "offgrid", "version": __version__, "file_name": wheel.name, "install_dir": "site",
        "sha256": models.file_sha256(wheel), "package_type": "package", "imports": ["offgrid"],
        "depends": [], "unvendored_tests": False, "tool": {},
    }
    (out / "pyodide-lock.json").write_text(json.dumps(lock, indent=1))


def _wllama(dist: Path) -> None:
    w = NODE_MODULES / "@wllama" / "wllama" / "esm"
    out = dist / "vendor" / "wllama"
    _copy(w / "index.js", out / "index.js")
    _copy(w / "wasm" / "wllama.wasm", out / "wasm" / "wllama.wasm")
    # The Safari/no-JSPI build, served locally (wllama would fetch it from a CDN).
    c = NODE_MODULES / "@wllama" / "wllama-compat" / "wasm"
    for name in ("wllama.js", "wllama.wasm"):
        _copy(c / name, dist / "vendor" / "wllama-compat" / name)
    for path in (NODE_MODULES / "idb" / "build").glob("*.js"):
        _copy(path, dist / "vendor" / "idb" / path.name)
    # The page's side of the service worker: registration and the update prompt.
    _copy(NODE_MODULES / "workbox-window" / "build" / "workbox-window.prod.mjs",
          dist / "vendor" / "workbox-window" / "workbox-window.prod.mjs")


def _markdown(dist: Path) -> None:
    """Markdown for answers: marked parses, DOMPurify sanitises (ES modules, no CDN)."""
    _copy(NODE_MODULES / "marked" / "lib" / "marked.esm.js", dist / "vendor" / "marked" / "marked.esm.js")
    _copy(NODE_MODULES / "dompurify" / "dist" / "purify.es.mjs", dist / "vendor" / "dompurify" / "purify.es.mjs")


def _engine_info() -> dict:
    """What the worker must report in its handshake, read from the wllama bundle."""
    bundle = (NODE_MODULES / "@wllama" / "wllama" / "esm" / "index.js").read_text()
    match = re.search(r'LIBLLAMA_VERSION = "([^"]+)"', bundle)
    if not match:
        raise SystemExit("cannot find LIBLLAMA_VERSION in @wllama/wllama's bundle")
    return {"libllama_version": match.group(1), "wllama": engine_build.wllama_version()}


def assemble(dist: Path, cache: Path, log=print, *, allow_stale_protocol: bool = False) -> dict:
    """Build the site into `dist`. A stale web/shared/protocol.gen.js stops it before anything
    is done, unless `allow_stale_protocol` (`build.py test`: the build goes on with a warning,
    and tests/test_protocol_gen.py fails, saying what to run)."""
    if allow_stale_protocol:
        if problem := protocol_js_problem():
            log(f"WARNING: {problem}")
    else:
        check_protocol_js()
    log("assembling the site")
    npm_ci(log)
    dist.mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "static").rglob("*"):
        if path.is_file():
            _copy(path, dist / path.relative_to(ROOT / "static"))
    # web/<where it runs>/*.js -> js/<where it runs>/ (the service worker is bundled by pwa.py).
    for where in ("page", "engine", "shared"):
        for path in (ROOT / "web" / where).glob("*.js"):
            _copy(path, dist / "js" / where / path.name)
    _wllama(dist)
    _markdown(dist)
    log("  engine builds")
    engines = engine_site.assemble(dist, cache, log)
    log(f"  engines: {', '.join(b['id'] for b in engines['builds'])} (CPU default: {engines['default_cpu']})")
    _pyodide(dist, cache, log)
    log("  models")
    catalog = models.build_catalog(cache, dist / "models", log, engine=_engine_info())
    log("  service worker")
    entries = assemble_pwa(dist, cache)
    log(f"  precache: {len(entries)} files")
    log(f"site ready in {dist}")
    return catalog
