"""Frames on the wire: encode, decode (validating against the dataclasses in
protocol.py) and the schema that build.py turns into web/protocol.gen.js."""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, Literal, Union

from . import protocol as _p
from .protocol import PROTOCOL_VERSION, ErrorCode, Message



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
    cls = _p.MESSAGE_TYPES.get(type_name) if isinstance(type_name, str) else None
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
        "requests": [c.__name__ for c in _p.REQUESTS],
        "events": [c.__name__ for c in _p.EVENTS],
        "messages": {name: _describe(cls) for name, cls in _p.MESSAGE_TYPES.items()},
        "objects": {c.__name__: _describe(c) for c in _p.OBJECTS},
        "error_codes": list(typing.get_args(ErrorCode)),
    }
