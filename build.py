#!/usr/bin/env python3
"""Offgrid's one entry point for developers.

    python3 build.py          assemble the site into dist/ (from pinned npm and PyPI packages)
    python3 build.py serve    install what is missing, build, and serve on http://localhost:8000
    python3 build.py test     install what tests need (Debian chromium too), build, run every test
    python3 build.py protocol regenerate web/shared/protocol.gen.js after a change to py/offgrid/protocol.py
                              (the other commands check it and stop while it is stale)

Downloads go to .cache/ and are reused: a second build makes no network request.
Only the standard library is needed to start; the rest is installed on demand.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DIST = Path(os.environ.get("OFFGRID_DIST", ROOT / "dist"))
CACHE = Path(os.environ.get("OFFGRID_CACHE", ROOT / ".cache"))
sys.path.insert(0, str(ROOT / "py"))


def _pip_install(extra: str, probes: list[str]) -> None:
    """Install the project's Python dependencies unless they import already."""
    if all(importlib.util.find_spec(name) for name in probes):
        return
    print(f"installing Python packages ({extra or 'runtime'})", flush=True)
    target = f".[{extra}]" if extra else "."
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", target], cwd=ROOT, check=True)


def _apt(why: str, packages: list[str]) -> None:
    """Install Debian packages the tests need, or say how to."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(f"{why}: run `sudo apt-get install -y {' '.join(packages)}` first.")
    print(f"installing {', '.join(packages)} ({why})", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
                   check=True, env=env, stdout=subprocess.DEVNULL)


def _chromium() -> None:
    """Debian's chromium, which the e2e tests drive (never `playwright install`)."""
    if not Path("/usr/bin/chromium").exists():
        _apt("the e2e tests drive Debian's chromium", ["chromium", "fonts-dejavu-core"])


def _webgpu_tools() -> None:
    """gcc for tests/webgpu_lavapipe/setup.sh (the e2e WebGPU tests build two small shims with it)."""
    if not (shutil.which("gcc") and Path("/usr/include/stdio.h").exists()):
        _apt("the WebGPU e2e tests build two shims", ["gcc", "libc6-dev"])


def build(allow_stale_protocol: bool = False) -> None:
    from offgrid_dev.site import assemble

    assemble(DIST, CACHE, allow_stale_protocol=allow_stale_protocol)


def protocol() -> None:
    """Write web/shared/protocol.gen.js from py/offgrid/protocol.py."""
    from offgrid_dev.site import PROTOCOL_JS, write_protocol_js

    changed = write_protocol_js()
    print(f"{os.path.relpath(PROTOCOL_JS, ROOT)}: {'regenerated' if changed else 'already up to date'}")


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "build"
    if cmd == "build":
        build()
    elif cmd == "serve":
        _pip_install("", ["flask"])
        build()
        from offgrid_dev.server import main as serve

        serve(["--root", str(DIST), *argv[1:]])
    elif cmd == "test":
        _chromium()
        _webgpu_tools()
        # Native llama.cpp, the reference tests and bench compare against: built for this CPU without
        # GGML_NATIVE, whose -march=native brings in ggml's AMX backend (it segfaults in our VMs);
        # rebuilt when its recorded flags differ. Before the extras, so pip finds the pin satisfied.
        from offgrid_dev.native_ref import ensure as native_reference

        native_reference()
        # bench: tests/e2e/test_bench.py runs the benchmark harness (psutil, matplotlib) on a tiny prompt.
        _pip_install("test,bench", ["flask", "pytest", "playwright", "pytest_playwright", "hypothesis", "llama_cpp",
                                    "psutil", "matplotlib"])
        # A stale generated protocol module does not stop the tests: test_protocol_gen.py fails and says so.
        build(allow_stale_protocol=True)
        return subprocess.run([sys.executable, "-m", "pytest", *argv[1:]], cwd=ROOT).returncode
    elif cmd == "protocol":
        protocol()
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
