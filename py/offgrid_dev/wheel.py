"""Build the controller wheel (py/offgrid) for Pyodide, reproducibly.

A wheel is a zip with a dist-info folder; writing it by hand keeps the build
free of a build backend and makes the bytes depend only on the sources (fixed
timestamps, sorted entries), so the service worker's revision hashes only
change when the code does.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

from offgrid import __version__

NAME = "offgrid"
_EPOCH = (2020, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def build_wheel(src: Path, out_dir: Path) -> Path:
    """Write offgrid-<version>-py3-none-any.whl from `src` (the package dir)."""
    files: dict[str, bytes] = {}
    for path in sorted(src.rglob("*.py")):
        files[f"{NAME}/{path.relative_to(src).as_posix()}"] = path.read_bytes()
    info = f"{NAME}-{__version__}.dist-info"
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {__version__}\n"
        "Summary: Offgrid's chat controller (runs in Pyodide)\n"
    ).encode()
    files[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: offgrid build.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    ).encode()
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()

    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"{NAME}-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zi = zipfile.ZipInfo(name, _EPOCH)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            zf.writestr(zi, data)
    return wheel
