"""protocol.py: frames survive encode/decode, and every bad frame is refused with
the ProtocolError code and field that the engine's EngineError will carry."""

from __future__ import annotations

import dataclasses
import json
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offgrid import protocol as p

V = p.PROTOCOL_VERSION


def frame(type_: str, **fields) -> str:
    """A raw frame as the other side would send it."""
    return json.dumps({"type": type_, "id": "r1", "v": V, **fields})


# ------------------------------------------------------------ round trips


@pytest.mark.parametrize("name", sorted(p.MESSAGE_TYPES))
def test_every_type_round_trips_with_defaults(name):
    cls = p.MESSAGE_TYPES[name]
    msg = cls(id="x7")
    raw = p.encode(msg)
    assert json.loads(raw)["type"] == name  # the wire name is the class name
    back = p.decode(raw)
    assert type(back) is cls and back == msg


def test_chat_with_messages_and_sampling_round_trips():
    msg = p.Chat(
        id="c1",
        messages=[p.ChatMessage("system", "Be brief."), p.ChatMessage("user", "Ünïcode ✓ \"quoted\"")],
        sampling=p.Sampling(temperature=1.3, top_k=5, top_p=0.5, seed=42, max_tokens=7, stop=["\n", "END"]),
    )
    back = p.decode(p.encode(msg))
    assert back == msg
    assert isinstance(back.messages[1], p.ChatMessage) and isinstance(back.sampling, p.Sampling)


def test_nested_lists_of_objects_round_trip():
    info = p.ModelInfo("m", "Model", "m.gguf", 123, "ab" * 32, "Q4_1", "MIT", cached=True)
    for msg in (
        p.ModelList(models=[info], default_id="m"),
        p.ChatBatch(prompts=[[p.ChatMessage("user", "a")], [p.ChatMessage("user", "b")]]),
    ):
        assert p.decode(p.encode(msg)) == msg


def test_decode_fills_defaults_and_accepts_bytes_and_dicts():
    assert p.decode(b'{"type":"Stop","v":1}') == p.Stop()  # id defaults to ""
    assert p.decode({"type": "Delta", "v": V, "id": "c1", "text": "hi"}) == p.Delta(id="c1", text="hi")
    # A float field takes a JSON integer (JS writes 1.0 as 1) and stores a float.
    speed = p.decode(frame("Speed", decode_tps=3))
    assert speed.decode_tps == 3.0 and isinstance(speed.decode_tps, float)


# ------------------------------------------------------------ refusals

# (raw frame, code, field): one case per kind of refusal.
CHAT_MSG = {"role": "user", "content": "hi"}
REFUSALS = [
    ("{not json", "bad_message", ""),
    (b"\xff\xfe", "bad_message", ""),  # not UTF-8
    ("[1, 2]", "bad_message", ""),
    ('"Chat"', "bad_message", ""),
    ("null", "bad_message", ""),
    (json.dumps({"type": "Nope", "v": V}), "bad_message", "type"),
    (json.dumps({"type": 3, "v": V}), "bad_message", "type"),
    (json.dumps({"v": V}), "bad_message", "type"),
    (json.dumps({"type": "Chat", "v": V + 1}), "version_mismatch", "v"),
    (json.dumps({"type": "Chat"}), "version_mismatch", "v"),
    (json.dumps({"type": "Chat", "v": "1"}), "version_mismatch", "v"),
    (json.dumps({"type": "Chat", "v": V, "id": 5}), "bad_field", "id"),
    (frame("Chat", colour="red"), "bad_field", "colour"),
    (frame("Chat", sampling={"temprature": 1}), "bad_field", "sampling.temprature"),
    (frame("Chat", messages=[{**CHAT_MSG, "name": "x"}]), "bad_field", "messages[0].name"),
    (frame("Chat", sampling={"temperature": "hot"}), "bad_field", "sampling.temperature"),
    (frame("Chat", sampling={"temperature": 5.0}), "bad_field", "sampling.temperature"),
    (frame("Chat", sampling={"top_p": -0.1}), "bad_field", "sampling.top_p"),
    (frame("Chat", sampling={"max_tokens": 0}), "bad_field", "sampling.max_tokens"),
    (frame("Chat", sampling={"stop": ["a", 1]}), "bad_field", "sampling.stop[1]"),
    (frame("Chat", sampling=[]), "bad_field", "sampling"),
    (frame("Chat", messages={"role": "user"}), "bad_field", "messages"),
    (frame("Chat", messages=[CHAT_MSG, {"role": "robot", "content": "x"}]), "bad_field", "messages[1].role"),
    (frame("Chat", messages=[{"role": "robot", "content": "x"}]), "bad_field", "messages[0].role"),
    (frame("Chat", messages=[{"role": "user"}]), "bad_field", "messages[0].content"),
    (frame("Chat", messages=["hi"]), "bad_field", "messages[0]"),
    (frame("LoadModel", n_ctx=1.5), "bad_field", "n_ctx"),
    (frame("LoadModel", n_ctx=64), "bad_field", "n_ctx"),
    (frame("LoadModel", n_threads=True), "bad_field", "n_threads"),  # bool is not an int
    (frame("LoadModel", backend="cuda"), "bad_field", "backend"),
    (frame("LoadProgress", from_cache=1), "bad_field", "from_cache"),
    (frame("Speed", decode_tps=False), "bad_field", "decode_tps"),
    (frame("CountTokens", text=None), "bad_field", "text"),
    (frame("ModelList", models=[{"model_id": "m"}]), "bad_field", "models[0].name"),
    # NaN and Infinity are not JSON: refused as JS's JSON.parse refuses them (the engine's reader).
    ('{"type":"Speed","v":1,"decode_tps":NaN}', "bad_message", ""),
    ('{"type":"Speed","v":1,"ttft_ms":Infinity}', "bad_message", ""),
    ('{"type":"Chat","v":1,"sampling":{"top_p":-Infinity}}', "bad_message", ""),
    # Deeper than MAX_DEPTH: refused unread, before the type is looked at.
    ('{"type":"Chat","v":1,"zeta":' + "[" * 40 + "]" * 40 + "}", "bad_message", ""),
]


@pytest.mark.parametrize(("raw", "code", "field"), REFUSALS)
def test_decode_refuses(raw, code, field):
    with pytest.raises(p.ProtocolError) as info:
        p.decode(raw)
    assert (info.value.code, info.value.field) == (code, field)
    assert str(info.value)  # a message a person can read
    assert info.value.code in typing.get_args(p.ErrorCode)


def test_range_bounds_are_inclusive():
    # The edges themselves are valid: only values past them are refused.
    s = p.decode(frame("Chat", sampling={"temperature": 0, "top_p": 1.0, "max_tokens": 1, "seed": -1})).sampling
    assert (s.temperature, s.top_p, s.max_tokens, s.seed) == (0.0, 1.0, 1, -1)
    with pytest.raises(p.ProtocolError):
        p.decode(frame("Chat", sampling={"seed": -2}))


def test_first_of_several_unknown_fields_is_named_in_frame_order():
    # The JS validator walks the keys in the frame's order; so does Python.
    with pytest.raises(p.ProtocolError) as info:
        p.decode(frame("Stop", zeta=1, alpha=2))
    assert info.value.field == "zeta"


def test_integral_floats_are_integers_as_in_json():
    # JSON (and JS) cannot tell 2048.0 from 2048.
    assert p.decode(frame("LoadModel", n_ctx=2048.0)).n_ctx == 2048
    assert p.decode('{"type": "ListModels", "v": 1.0}').v == p.PROTOCOL_VERSION


def test_bool_is_not_a_version():
    with pytest.raises(p.ProtocolError) as info:
        p.decode('{"type": "ListModels", "v": true}')
    assert info.value.code == "version_mismatch"


# decode raises nothing but ProtocolError, even for pathological input.
def test_huge_integer_in_float_field_is_a_protocol_error():
    with pytest.raises(p.ProtocolError):
        p.decode('{"type":"Speed","v":1,"decode_tps":' + "9" * 400 + "}")


def test_deeply_nested_json_is_a_protocol_error():
    with pytest.raises(p.ProtocolError):
        p.decode("[" * 100_000)


# ------------------------------------------------------------ properties

# Integers are bounded: unbounded ones hit the OverflowError bug above.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def decode_or_protocol_error(raw):
    try:
        return p.decode(raw)
    except p.ProtocolError as exc:
        assert exc.code in typing.get_args(p.ErrorCode)
        return None


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_arbitrary_text_only_raises_protocol_error(text):
    decode_or_protocol_error(text)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_arbitrary_json_only_raises_protocol_error(value):
    decode_or_protocol_error(json.dumps(value))
    if isinstance(value, dict):
        decode_or_protocol_error(value)


# Values that look like the real field types, so mutations reach deep checks.
near_values = json_values | st.fixed_dictionaries(
    {}, optional={"role": st.sampled_from(["user", "robot", 1]), "content": json_scalars, "temperature": json_scalars}
) | st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "system"]), "content": st.text(max_size=5)}), max_size=2)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_frames_of_real_types_only_raise_protocol_error(data):
    name = data.draw(st.sampled_from(sorted(p.MESSAGE_TYPES)))
    cls = p.MESSAGE_TYPES[name]
    names = [f.name for f in dataclasses.fields(cls) if f.name != "v"]
    keys = st.sampled_from(names) | st.text(max_size=6).filter(lambda k: k not in ("type", "v"))
    extra = data.draw(st.dictionaries(keys, near_values, max_size=4))
    obj = {"type": name, "v": V, **extra}
    msg = decode_or_protocol_error(json.dumps(obj))
    if msg is not None:  # accepted frames are well-formed: right class, stable round trip
        assert type(msg) is cls
        assert p.decode(p.encode(msg)) == msg


ROLES = typing.get_args(p.Role)
chat_messages = st.builds(p.ChatMessage, role=st.sampled_from(ROLES), content=st.text(max_size=40))
samplings = st.builds(
    p.Sampling,
    temperature=st.floats(0.0, 2.0),
    top_k=st.integers(0, 1000),
    top_p=st.floats(0.0, 1.0),
    min_p=st.floats(0.0, 1.0),
    repeat_penalty=st.floats(0.0, 4.0),
    seed=st.integers(-1, 2**31 - 1),
    max_tokens=st.integers(1, 32768),
    stop=st.lists(st.text(max_size=5), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(st.builds(p.Chat, id=st.text(max_size=10), messages=st.lists(chat_messages, max_size=5), sampling=samplings))
def test_valid_chats_always_round_trip(chat):
    raw = p.encode(chat)
    back = p.decode(raw)
    assert back == chat
    assert p.encode(back) == raw


def test_every_message_type_is_its_own_dataclass():
    """A class that lost its @dataclass decorator would silently have no fields of its own."""
    import dataclasses

    for cls in (*p.MESSAGE_TYPES.values(), *p.OBJECTS):
        assert "__dataclass_fields__" in vars(cls) and "__dataclass_params__" in vars(cls), cls.__name__
        own = {k for k, v in vars(cls).get("__annotations__", {}).items() if not str(v).startswith("ClassVar")}
        assert own <= {f.name for f in dataclasses.fields(cls)}, cls.__name__


def test_a_huge_name_is_not_echoed_back_whole():
    """Issue 23: a 1 MB unknown type name (or field name) came back whole in the error."""
    import json as _json

    from offgrid.codec import ProtocolError, decode

    huge = "X" * 1_000_000
    for frame, field in (({"type": huge, "v": V}, "type"),
                         ({"type": "Stop", "v": V, huge: 1}, "X" * 63 + "…")):
        try:
            decode(_json.dumps(frame))
        except ProtocolError as err:
            assert len(str(err)) < 200 and err.field == field, (str(err)[:100], err.field[:100])
        else:
            raise AssertionError("accepted")
