"""The protocol's vocabulary (see protocol.py): its version, the names and ranges its
fields take, the value types messages carry and the Message base."""

from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import fields as _fields
from typing import Any, ClassVar, Literal, get_args

PROTOCOL_VERSION = 1
# How deep a frame may nest (objects and lists); the deepest real one, a ChatBatch's message,
# is 4. Deeper frames are refused unread: parsers' stacks end somewhere (Pyodide's near 5,000).
MAX_DEPTH = 16

Role = Literal["system", "user", "assistant"]
Backend = Literal["auto", "webgpu", "wasm-mt", "wasm-st"]
# The KV cache's element type; "" = the backend's own (q8_0 on the CPU, f16 on WebGPU).
KvCache = Literal["", "f16", "q8_0", "f32"]
EndReason = Literal["stop", "length", "aborted", "error"]
LoadPhase = Literal["download", "verify", "store", "read", "init"]
LogLevel = Literal["debug", "info", "warn", "error"]
ErrorCode = Literal[
    "bad_message",  # not a frame: wrong JSON, unknown type, wrong version
    "bad_field",  # a field is missing, of the wrong type or out of range
    "no_model",  # the request needs a loaded model
    "unknown_model",  # the model id is not in the catalog
    "busy",  # a generation is running and this request cannot wait
    "download_failed",
    "integrity",  # a downloaded chunk did not match its SHA-256
    "storage_full",  # the browser's storage quota cannot hold the model
    "out_of_memory",  # the model (weights + KV cache + buffers) will not fit this device
    "load_failed",
    "inference_failed",
    "aborted",  # Stop ended a request that has no GenerateEnd to say so (CountTokens)
    "version_mismatch",  # worker and controller were built from different sources
    "internal",
]

# The names above as tuples, for code that checks or lists them (the same tuples are
# exported to JS by the generated module: ENUMS.Backend, ...).
ROLES: tuple[str, ...] = get_args(Role)
BACKENDS: tuple[str, ...] = get_args(Backend)
KV_CACHE_TYPES: tuple[str, ...] = get_args(KvCache)
ERROR_CODES: tuple[str, ...] = get_args(ErrorCode)


def _range(lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    return {"min": lo, "max": hi}


def field_range(cls: type, name: str) -> tuple[Any, Any]:
    """The (min, max) that the protocol allows for field `name` of `cls`,
    e.g. field_range(LoadModel, "n_ctx"); KeyError when the field has no range."""
    for f in _fields(cls):
        if f.name == name:
            if "min" not in f.metadata:
                raise KeyError(f"{cls.__name__}.{name} has no range")
            return f.metadata["min"], f.metadata["max"]
    raise KeyError(f"{cls.__name__} has no field {name!r}")


# ---------------------------------------------------------------- value types


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class Sampling:
    """Sampling settings; names follow llama.cpp's server."""

    temperature: float = field(default=0.7, metadata=_range(0.0, 2.0))
    top_k: int = field(default=40, metadata=_range(0, 1000))
    top_p: float = field(default=0.95, metadata=_range(0.0, 1.0))
    min_p: float = field(default=0.05, metadata=_range(0.0, 1.0))
    repeat_penalty: float = field(default=1.1, metadata=_range(0.0, 4.0))
    seed: int = field(default=-1, metadata=_range(-1, 2**31 - 1))
    max_tokens: int = field(default=512, metadata=_range(1, 32768))
    stop: list[str] = field(default_factory=list)


# ------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Message:
    """Base of every frame. `kind` tells requests from events."""

    kind: ClassVar[str] = ""
    id: str = ""
    v: int = PROTOCOL_VERSION
