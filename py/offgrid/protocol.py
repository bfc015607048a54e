"""The typed protocol between the controller and the engine worker.

This module is the single source of truth: `build.py` generates
`web/protocol.gen.js` (constants, defaults and a validator) from the
dataclasses below, and a test fails when that file is stale.

A frame on the wire is a JSON object: ``{"type": <class name>, "id": <request
id>, "v": PROTOCOL_VERSION, ...fields}``. Events carry the id of the request
that caused them ("" for unsolicited events such as Hello).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Union

PROTOCOL_VERSION = 1

Role = Literal["system", "user", "assistant"]
Backend = Literal["auto", "webgpu", "wasm-mt", "wasm-st"]
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
    "load_failed",
    "inference_failed",
    "version_mismatch",  # worker and controller were built from different sources
    "internal",
]


def _range(lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    return {"min": lo, "max": hi}


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


# Requests (controller -> worker)


@dataclass(frozen=True)
class LoadModel(Message):
    """Load a catalog model (`model_id`), or a GGUF served by this origin (`url`)."""

    kind: ClassVar[str] = "request"
    model_id: str = ""
    url: str = ""
    n_ctx: int = field(default=2048, metadata=_range(128, 131072))
    n_threads: int = field(default=0, metadata=_range(0, 64))  # 0: choose for the device
    backend: Backend = "auto"


@dataclass(frozen=True)
class SwitchModel(LoadModel):
    """Unload the current model and load another; the controller keeps the conversation."""


@dataclass(frozen=True)
class UnloadModel(Message):
    kind: ClassVar[str] = "request"


@dataclass(frozen=True)
class ListModels(Message):
    kind: ClassVar[str] = "request"


@dataclass(frozen=True)
class Chat(Message):
    kind: ClassVar[str] = "request"
    messages: list[ChatMessage] = field(default_factory=list)
    sampling: Sampling = field(default_factory=Sampling)


@dataclass(frozen=True)
class ChatBatch(Message):
    """Several independent chats generated concurrently by the loaded model.

    Delta and GenerateEnd events carry the prompt's `index`."""

    kind: ClassVar[str] = "request"
    prompts: list[list[ChatMessage]] = field(default_factory=list)
    sampling: Sampling = field(default_factory=Sampling)


@dataclass(frozen=True)
class Continue(Message):
    """Resume an answer: `messages` ends with the partial assistant turn to extend."""

    kind: ClassVar[str] = "request"
    messages: list[ChatMessage] = field(default_factory=list)
    sampling: Sampling = field(default_factory=Sampling)


@dataclass(frozen=True)
class CountTokens(Message):
    """Count `text`'s tokens with the loaded model's own tokenizer (as a raw prompt)."""

    kind: ClassVar[str] = "request"
    text: str = ""


@dataclass(frozen=True)
class InspectModel(Message):
    """Answered by a ModelLoaded event describing the loaded model."""

    kind: ClassVar[str] = "request"


@dataclass(frozen=True)
class Complete(Message):
    kind: ClassVar[str] = "request"
    prompt: str = ""
    sampling: Sampling = field(default_factory=Sampling)


@dataclass(frozen=True)
class Stop(Message):
    """Abort the generation started by request `target` ("" = whatever runs)."""

    kind: ClassVar[str] = "request"
    target: str = ""


@dataclass(frozen=True)
class GetDiagnostics(Message):
    kind: ClassVar[str] = "request"


# Events (worker -> controller)


@dataclass(frozen=True)
class Hello(Message):
    """First frame of a worker: what it was built from and what it found."""

    kind: ClassVar[str] = "event"
    protocol_version: int = PROTOCOL_VERSION
    libllama_version: str = ""
    engine: str = ""


@dataclass(frozen=True)
class ModelInfo:
    model_id: str
    name: str
    file: str
    bytes: int
    sha256: str
    quantization: str
    license: str
    cached: bool = False


@dataclass(frozen=True)
class ModelList(Message):
    kind: ClassVar[str] = "event"
    models: list[ModelInfo] = field(default_factory=list)
    default_id: str = ""


@dataclass(frozen=True)
class LoadProgress(Message):
    kind: ClassVar[str] = "event"
    model_id: str = ""
    phase: LoadPhase = "download"
    loaded: int = 0  # bytes
    total: int = 0  # bytes
    from_cache: bool = False


@dataclass(frozen=True)
class ModelLoaded(Message):
    kind: ClassVar[str] = "event"
    model_id: str = ""
    name: str = ""
    architecture: str = ""
    parameters: str = ""  # the size label, e.g. "135M"
    quantization: str = ""
    bytes: int = 0
    n_ctx: int = 0
    n_ctx_train: int = 0
    n_vocab: int = 0
    n_layer: int = 0
    n_embd: int = 0
    chat_template: str = ""
    backend: str = ""
    threads: int = 0
    load_ms: float = 0.0
    from_cache: bool = False


@dataclass(frozen=True)
class ModelUnloaded(Message):
    kind: ClassVar[str] = "event"
    model_id: str = ""


@dataclass(frozen=True)
class GenerateStart(Message):
    kind: ClassVar[str] = "event"


@dataclass(frozen=True)
class Delta(Message):
    """New text of an answer; `n_tokens` counts the tokens generated so far."""

    kind: ClassVar[str] = "event"
    text: str = ""
    n_tokens: int = 0
    index: int = 0  # which prompt of a ChatBatch


@dataclass(frozen=True)
class GenerateEnd(Message):
    kind: ClassVar[str] = "event"
    reason: EndReason = "stop"
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    index: int = 0  # which prompt of a ChatBatch


@dataclass(frozen=True)
class TokenCount(Message):
    kind: ClassVar[str] = "event"
    n_tokens: int = 0


@dataclass(frozen=True)
class Speed(Message):
    kind: ClassVar[str] = "event"
    prefill_tps: float = 0.0  # prompt tokens per second
    decode_tps: float = 0.0  # generated tokens per second
    ttft_ms: float = 0.0  # request sent to first Delta, measured in the worker
    backend: str = ""


@dataclass(frozen=True)
class Log(Message):
    kind: ClassVar[str] = "event"
    level: LogLevel = "info"
    message: str = ""


@dataclass(frozen=True)
class Diagnostics(Message):
    kind: ClassVar[str] = "event"
    backend: str = ""
    backend_reason: str = ""
    threads: int = 0
    cross_origin_isolated: bool = False
    hardware_concurrency: int = 0
    webgpu_adapter: str = ""
    webgpu_features: list[str] = field(default_factory=list)
    jspi: bool = False
    memory64: bool = False
    compat: bool = False
    device_memory_gb: float = 0.0
    user_agent: str = ""
    libllama_version: str = ""


@dataclass(frozen=True)
class EngineError(Message):
    kind: ClassVar[str] = "event"
    code: ErrorCode = "internal"
    message: str = ""
    hint: str = ""
    field: str = ""  # the offending field, for bad_field


REQUESTS: tuple[type[Message], ...] = (
    LoadModel,
    SwitchModel,
    UnloadModel,
    ListModels,
    InspectModel,
    Chat,
    ChatBatch,
    Complete,
    Continue,
    Stop,
    CountTokens,
    GetDiagnostics,
)
EVENTS: tuple[type[Message], ...] = (
    Hello,
    ModelList,
    LoadProgress,
    ModelLoaded,
    ModelUnloaded,
    GenerateStart,
    Delta,
    GenerateEnd,
    TokenCount,
    Speed,
    Log,
    Diagnostics,
    EngineError,
)
MESSAGE_TYPES: dict[str, type[Message]] = {c.__name__: c for c in REQUESTS + EVENTS}


# ------------------------------------------------------------------ decoding


class ProtocolError(ValueError):
    """A frame that cannot be decoded. Carries what an EngineError needs."""

    def __init__(self, code: ErrorCode, message: str, field: str = "") -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.field = field


def encode(msg: Message) -> str:
    body = {"type": type(msg).__name__, **dataclasses.asdict(msg)}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def decode(raw: str | bytes | dict[str, Any]) -> Message:
    """Parse and validate one frame; raise ProtocolError naming what is wrong."""
    if isinstance(raw, dict):
        obj: Any = raw
    else:
        try:
            obj = json.loads(raw)
        except (ValueError, TypeError, RecursionError) as exc:
            raise ProtocolError("bad_message", f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_message", "a frame must be a JSON object")
    type_name = obj.get("type")
    cls = MESSAGE_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise ProtocolError("bad_message", f"unknown message type {type_name!r}", "type")
    version = obj.get("v")
    # JSON has one number type: 1.0 is 1 (as in JS), but true is not.
    if isinstance(version, bool) or version != PROTOCOL_VERSION:
        raise ProtocolError(
            "version_mismatch",
            f"protocol version {version!r}, expected {PROTOCOL_VERSION}",
            "v",
        )
    if not isinstance(obj.get("id", ""), str):
        raise ProtocolError("bad_field", "id must be a string", "id")
    fields = {k: v for k, v in obj.items() if k != "type"}
    if "v" in fields:
        fields["v"] = PROTOCOL_VERSION
    return _build(cls, fields, "")


def _build(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise ProtocolError("bad_field", f"{path or cls.__name__} must be an object", path)
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    # The first unknown key in the frame's own order, as the JS validator reports it.
    name = next((k for k in data if k not in known), None)
    if name is not None:
        where = _join(path, str(name))
        raise ProtocolError("bad_field", f"unknown field {where!r}", where)
    kwargs = {}
    for name, f in known.items():
        where = _join(path, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ProtocolError("bad_field", f"missing field {where!r}", where)
            continue
        value = _convert(hints[name], data[name], where)
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if lo is not None and value < lo or hi is not None and value > hi:
            raise ProtocolError("bad_field", f"{where} = {value!r} is outside [{lo}, {hi}]", where)
        kwargs[name] = value
    return cls(**kwargs)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            allowed = ", ".join(map(repr, typing.get_args(tp)))
            raise ProtocolError("bad_field", f"{where} = {value!r}; expected one of {allowed}", where)
        return value
    if origin in (Union, types.UnionType):
        raise TypeError("unions are not part of the protocol")  # keep the schema simple
    if origin is list:
        if not isinstance(value, list):
            raise ProtocolError("bad_field", f"{where} must be a list", where)
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ProtocolError("bad_field", f"{where} must be true or false", where)
        return value
    if tp is int:
        # 2048.0 is an integer to JSON and to JS, so it is one here too.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtocolError("bad_field", f"{where} must be an integer", where)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProtocolError("bad_field", f"{where} must be a finite number", where)
        try:
            number = float(value)
        except OverflowError:  # an int too large for a double
            number = math.inf
        if not math.isfinite(number):
            raise ProtocolError("bad_field", f"{where} must be a finite number", where)
        return number
    if tp is str:
        if not isinstance(value, str):
            raise ProtocolError("bad_field", f"{where} must be a string", where)
        return value
    raise TypeError(f"unsupported protocol type {tp!r}")


# ------------------------------------------------------------------- schema


def _kind_of(tp: Any) -> dict[str, Any]:
    """Describe a field type as plain data, for the generated JS validator."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return {"t": "enum", "values": list(typing.get_args(tp))}
    if origin is list:
        return {"t": "list", "item": _kind_of(typing.get_args(tp)[0])}
    if dataclasses.is_dataclass(tp):
        return {"t": "object", "name": tp.__name__}
    return {"t": {bool: "bool", int: "int", float: "float", str: "str"}[tp]}


def _default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return None


def _describe(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        spec = _kind_of(hints[f.name])
        spec["required"] = (
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        spec["default"] = _default_of(f)
        if f.metadata:
            spec["min"], spec["max"] = f.metadata.get("min"), f.metadata.get("max")
        out[f.name] = spec
    return out


def schema() -> dict[str, Any]:
    """Every type as plain data; the generated JS module embeds this."""
    return {
        "version": PROTOCOL_VERSION,
        "requests": [c.__name__ for c in REQUESTS],
        "events": [c.__name__ for c in EVENTS],
        "messages": {name: _describe(cls) for name, cls in MESSAGE_TYPES.items()},
        "objects": {c.__name__: _describe(c) for c in (ChatMessage, Sampling, ModelInfo)},
        "error_codes": list(typing.get_args(ErrorCode)),
    }
