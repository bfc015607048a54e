"""Frames on the wire: encode, decode (validating against the dataclasses in
protocol.py) and the schema that `python3 build.py protocol` writes into
web/shared/protocol.gen.js."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from typing import Any, Literal, Union

from . import protocol as _p
from .protocol import MAX_DEPTH, PROTOCOL_VERSION, ErrorCode, Message



class ProtocolError(ValueError):
    """A frame that cannot be decoded. Carries what an EngineError needs."""

    def __init__(self, code: ErrorCode, message: str, field: str = "") -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.field = field



ECHO = 64  # characters of a sender's name (a type, a field) an error repeats; a 1 MB name is not echoed


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json takes NaN and Infinity; JSON (and JS) do not


def loads(raw: str | bytes) -> Any:
    """JSON as JSON.parse reads it (no NaN or Infinity), or ValueError."""
    return json.loads(raw, parse_constant=_no_constant)


def depth(value: Any) -> int:
    """How deep `value` nests objects and lists (1 for a flat one), counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d)
            if d <= MAX_DEPTH:
                stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def shown(value: Any) -> str:
    """A sender's value as an error repeats it: its repr, cut at ECHO characters."""
    return str(clip(repr(value)))


def clip(name: object) -> object:
    """`name` as an error may repeat it: strings past ECHO code points cut, with an ellipsis."""
    return name[: ECHO - 1] + "…" if isinstance(name, str) and len(name) > ECHO else name


def encode(msg: Message) -> str:
    body = {"type": type(msg).__name__, **dataclasses.asdict(msg)}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def decode(raw: str | bytes | dict[str, Any]) -> Message:
    """Parse and validate one frame; raise ProtocolError naming what is wrong."""
    if isinstance(raw, dict):
        obj: Any = raw
    else:
        try:
            obj = loads(raw)
        except (ValueError, TypeError, RecursionError) as exc:
            raise ProtocolError("bad_message", f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_message", "a frame must be a JSON object")
    if depth(obj) > MAX_DEPTH:
        raise ProtocolError("bad_message", f"the frame nests deeper than {MAX_DEPTH} levels")
    type_name = obj.get("type")
    cls = _p.MESSAGE_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise ProtocolError("bad_message", f"unknown message type {clip(type_name)!r}", "type")
    version = obj.get("v")
    # JSON has one number type: 1.0 is 1 (as in JS), but true is not.
    if isinstance(version, bool) or version != PROTOCOL_VERSION:
        raise ProtocolError(
            "version_mismatch",
            f"protocol version {shown(version)}, expected {PROTOCOL_VERSION}",
            "v",
        )
    if not isinstance(obj.get("id", ""), str):
        raise ProtocolError("bad_field", "id must be a string", "id")
    fields = {k: v for k, v in obj.items() if k != "type"}
    if "v" in fields:
        fields["v"] = PROTOCOL_VERSION
    return _build(cls, fields, "")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A dataclass's field types, resolved once: resolving them on every frame was most of a
    streamed token's decode time in Pyodide."""
    return typing.get_type_hints(cls)


def _build(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise ProtocolError("bad_field", f"{path or cls.__name__} must be an object", path)
    hints = _hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    # The first unknown key in the frame's own order, as the JS validator reports it.
    name = next((k for k in data if k not in known), None)
    if name is not None:
        where = _join(path, str(name))
        raise ProtocolError("bad_field", f"unknown field {clip(where)!r}", clip(where))
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
            raise ProtocolError("bad_field", f"{where} = {shown(value)} is outside [{lo}, {hi}]", where)
        kwargs[name] = value
    return cls(**kwargs)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            allowed = ", ".join(map(repr, typing.get_args(tp)))
            raise ProtocolError("bad_field", f"{where} = {shown(value)}; expected one of {allowed}", where)
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
#
# The schema is plain data for web/shared/protocol.gen.js. A field is
# {"t": type, "default": value, "min": lo, "max": hi}; a field without "default" is
# required, one without "min"/"max" has no range. A type is "bool", "int", "float",
# "str", the name of a Literal alias of protocol.py (an enum: "Backend") or of a
# dataclass in OBJECTS ("Sampling"), or one of those followed by "[]" (a list).

_PRIMITIVES = {bool: "bool", int: "int", float: "float", str: "str"}


def _enums() -> dict[Any, str]:
    """Each Literal alias that protocol.py defines (Role, Backend, ...), by its value."""
    return {v: k for k, v in vars(_p).items() if typing.get_origin(v) is Literal}


def _type_name(tp: Any, enums: dict[Any, str]) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        if tp not in enums:
            raise TypeError(f"name the Literal {tp!r} in protocol.py (the schema refers to enums by name)")
        return enums[tp]
    if origin is list:
        return _type_name(typing.get_args(tp)[0], enums) + "[]"
    if dataclasses.is_dataclass(tp):
        if tp not in _p.OBJECTS:
            raise TypeError(f"add {tp.__name__} to protocol.OBJECTS")
        return tp.__name__
    return _PRIMITIVES[tp]


def _default_of(f: dataclasses.Field[Any]) -> Any:
    """The field's default as JSON; a dataclass default lists only what differs from its
    own defaults (the validator fills in the rest), so `Sampling()` is {}."""
    if f.default is not dataclasses.MISSING:
        return f.default
    value = f.default_factory()  # type: ignore[misc]
    if dataclasses.is_dataclass(value):
        own = dataclasses.asdict(type(value)())
        return {k: v for k, v in dataclasses.asdict(value).items() if own[k] != v}
    return value


def _describe(cls: type, enums: dict[Any, str]) -> dict[str, Any]:
    hints = _hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        spec: dict[str, Any] = {"t": _type_name(hints[f.name], enums)}
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            spec["default"] = _default_of(f)
        if f.metadata:
            spec["min"], spec["max"] = f.metadata.get("min"), f.metadata.get("max")
        out[f.name] = spec
    return out


def schema() -> dict[str, Any]:
    """Every type as plain data, in declaration order (errors name the same field on
    both sides); web/shared/protocol.gen.js is this, written as JS."""
    enums = _enums()
    names = set(enums.values()) | {c.__name__ for c in _p.OBJECTS} | set(_PRIMITIVES.values())
    if len(names) != len(enums) + len(_p.OBJECTS) + len(_PRIMITIVES):
        raise TypeError("an enum, an object and a primitive type share a name")
    return {
        "version": PROTOCOL_VERSION,
        "max_depth": MAX_DEPTH,
        "requests": [c.__name__ for c in _p.REQUESTS],
        "events": [c.__name__ for c in _p.EVENTS],
        "enums": {name: list(typing.get_args(tp)) for tp, name in enums.items()},
        "objects": {c.__name__: _describe(c, enums) for c in _p.OBJECTS},
        "messages": {name: _describe(cls, enums) for name, cls in _p.MESSAGE_TYPES.items()},
    }
