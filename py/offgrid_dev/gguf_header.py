"""Read the metadata key/values at the start of a GGUF file.

Only the header is parsed (not tensors), so this needs no numpy; the format is
documented in llama.cpp's ggml/docs/gguf.md.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

# GGUF value type ids -> struct format (scalars)
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9

# llama.cpp's llama_ftype values for the quantizations we ship or may ship.
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
              12: "Q3_K_M", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16"}


def _read(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize("<" + fmt)
    return struct.unpack("<" + fmt, f.read(size))[0]


def _string(f: BinaryIO) -> str:
    return f.read(_read(f, "Q")).decode("utf-8", "replace")


def _value(f: BinaryIO, vtype: int, keep_arrays: bool) -> Any:
    if vtype in _SCALARS:
        return _read(f, _SCALARS[vtype])
    if vtype == _STRING:
        return _string(f)
    if vtype == _ARRAY:
        item_type, count = _read(f, "I"), _read(f, "Q")
        items = [_value(f, item_type, keep_arrays) for _ in range(count)]
        return items if keep_arrays else len(items)  # vocabularies are long; keep the count
    raise ValueError(f"unknown GGUF value type {vtype}")


def read_metadata(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        version = _read(f, "I")
        _n_tensors, n_kv = _read(f, "Q"), _read(f, "Q")
        meta: dict[str, Any] = {"gguf.version": version}
        for _ in range(n_kv):
            key = _string(f)
            meta[key] = _value(f, _read(f, "I"), keep_arrays=False)
        return meta


def quantization(meta: dict[str, Any]) -> str:
    ftype = meta.get("general.file_type")
    return FILE_TYPES.get(ftype, f"ftype {ftype}") if ftype is not None else "unknown"


def _string_value_span(path: Path, key: str) -> tuple[int, int]:
    """Byte offset and length of the string value stored under `key`."""
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        _read(f, "I")
        _n_tensors, n_kv = _read(f, "Q"), _read(f, "Q")
        for _ in range(n_kv):
            name, vtype = _string(f), _read(f, "I")
            if name == key:
                if vtype != _STRING:
                    raise ValueError(f"{key} is not a string")
                length = _read(f, "Q")
                return f.tell(), length
            _value(f, vtype, keep_arrays=False)
    raise KeyError(key)


def with_string_value(src: Path, dest: Path, key: str, value: str) -> None:
    """Copy `src` to `dest` with the string metadata `key` set to `value`.

    The new value must have the old one's byte length: every tensor keeps its
    offset, so only the bytes of the header change (what a metadata-only model
    update looks like, and what the weight store's delta update relies on).
    """
    offset, length = _string_value_span(src, key)
    raw = value.encode()
    if len(raw) != length:
        raise ValueError(f"{key}: the new value has {len(raw)} bytes, the old one {length}")
    tmp = dest.with_suffix(".part")
    with src.open("rb") as fin, tmp.open("wb") as fout:
        while block := fin.read(1 << 20):
            fout.write(block)
        fout.seek(offset)
        fout.write(raw)
    tmp.rename(dest)
