"""The app icons as PNG, drawn at build time with the standard library only.

The drawing is static/icon.svg's: a teal rounded square with a white ring
whose right half is filled (◐). Each pixel's coverage comes from a signed
distance, so edges are anti-aliased without supersampling. A maskable icon
keeps the mark inside the central 80% "safe zone" and fills the whole square,
because launchers crop it to their own shape.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import struct
import zlib
from pathlib import Path

TEAL = (0x0F, 0x76, 0x6E)
WHITE = (0xFF, 0xFF, 0xFF)


def _coverage(distance: float) -> float:
    """Share of a pixel inside a shape, from the signed distance of its centre (px)."""
    return min(1.0, max(0.0, 0.5 - distance))


def _rounded_square(x: float, y: float, size: float, radius: float) -> float:
    half = size / 2
    qx, qy = abs(x - half) - (half - radius), abs(y - half) - (half - radius)
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - radius


def draw(size: int, maskable: bool = False) -> list[tuple[int, int, int, int]]:
    """RGBA pixels, row by row."""
    s = size / 64  # the SVG's units
    scale = 0.8 if maskable else 1.0  # keep the mark in the maskable safe zone
    c, r, stroke = size / 2, 17 * s * scale, 5 * s * scale
    corner = 0.0 if maskable else 14 * s
    pixels = []
    for j in range(size):
        y = j + 0.5
        for i in range(size):
            x = i + 0.5
            bg = _coverage(_rounded_square(x, y, size, corner))
            d = math.hypot(x - c, y - c)
            ring = _coverage(abs(d - r) - stroke / 2)
            half = _coverage(d - r) * _coverage(c - x)  # the filled right half
            mark = max(ring, half)
            rgb = tuple(round(t + (w - t) * mark) for t, w in zip(TEAL, WHITE))
            pixels.append((*rgb, round(255 * max(bg, mark * bg))))
    return pixels


def png(size: int, pixels: list[tuple[int, int, int, int]]) -> bytes:
    """An 8-bit RGBA PNG (IHDR, one IDAT, IEND)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\x00" + bytes(v for px in pixels[y * size:(y + 1) * size] for v in px) for y in range(size)
    )
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


# file name -> (size, maskable); the manifest lists the first three.
ICONS = {
    "icon-192.png": (192, False),
    "icon-512.png": (512, False),
    "icon-maskable-512.png": (512, True),
    "apple-touch-icon.png": (180, True),  # iOS rounds the corners itself and shows no transparency
}


def write_icons(out: Path, cache: Path) -> None:
    """Copy every icon into `out`, drawing them once per version of this file (drawing takes seconds)."""
    key = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    drawn = cache / "icons" / key
    out.mkdir(parents=True, exist_ok=True)
    for name, (size, maskable) in ICONS.items():
        if not (drawn / name).exists():
            drawn.mkdir(parents=True, exist_ok=True)
            (drawn / name).write_bytes(png(size, draw(size, maskable)))
        shutil.copyfile(drawn / name, out / name)
