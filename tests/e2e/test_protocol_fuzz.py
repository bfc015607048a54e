"""Issue 23, end to end: a seeded fuzz of the engine protocol through the real page.

Hostile frames made from offgrid.protocol's request dataclasses (each field of each request
given values of the wrong type; missing and unknown fields; wrong `v`; unknown types; 1 MB
strings; deep nesting; non-objects and broken JSON; lone UTF-16 surrogates; a 9-prompt
ChatBatch; Stop for unknown ids; requests while a generation runs) go through
`offgrid.sendRaw` (as objects and as text) and, where they have a request type, through
`offgrid.request`. Each request with an id must get exactly one final event (one GenerateEnd
per prompt, nothing after) within a bound; no error may echo a huge input; the worker must
still answer afterwards. Python's protocol.decode says what each frame should get (the JS
validator refuses what it refuses, with the same code and field). Huge, deep and lone-surrogate
values are made in the page from tokens (`@HUGE`, `@DEEP:n`, `@LONE_HI`); the worker's frames
are watched with `offgridDebug.listen`.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import time
import typing

from offgrid import protocol as p

SEED = 23
HUGE, LONE = "@HUGE", "@LONE_HI"  # 1 MiB of "x"; half an emoji's surrogate pair (made in the page)
MIB = 1 << 20
GENERATING = {"Chat", "Complete", "Continue", "ChatBatch"}
# The event that answers each request (as web/page/offgrid_api.js's FINAL map).
FINAL = {"LoadModel": "ModelLoaded", "SwitchModel": "ModelLoaded", "UnloadModel": "ModelUnloaded", "InspectModel": "ModelLoaded",
         "ListModels": "ModelList", "GetDiagnostics": "Diagnostics", "CountTokens": "TokenCount", "GetStorage": "StorageReport",
         "SelfTest": "SelfTestResult"}
MODEL_CHANGING = {"LoadModel", "SwitchModel", "UnloadModel", "DeleteModel"}  # only refused ones are sent
BOUND_MS = {"refuse": 10_000, "answer": 30_000, "gen": 60_000, "silent": 300}
MAX_MESSAGE = 300

SMALL = {"temperature": 0, "seed": 1, "max_tokens": 3, "stop": ["\n\n"]}
HI = [{"role": "user", "content": "Hi"}]
BASE = {  # a valid frame's fields for each request type (the model-changing ones are never sent valid)
    "LoadModel": {}, "SwitchModel": {}, "UnloadModel": {}, "ListModels": {}, "InspectModel": {}, "GetDiagnostics": {}, "GetStorage": {},
    "Chat": {"messages": HI, "sampling": SMALL}, "ChatBatch": {"prompts": [HI], "sampling": SMALL}, "Complete": {"prompt": "One,", "sampling": SMALL},
    "Continue": {"messages": [*HI, {"role": "assistant", "content": "Hello"}], "sampling": SMALL}, "Stop": {"target": "nobody"},
    "CountTokens": {"text": "Hello", "messages": HI}, "DeleteModel": {"model_id": "no-such-model"}, "SelfTest": {"n_tokens": 1}}
assert set(BASE) == {c.__name__ for c in p.REQUESTS}, "a request type without a base frame: add it to BASE"
POOL = [None, True, 7, 2.5, "x", HUGE, LONE, [], ["x"], {}, {"k": 1}, "@DEEP:40"]

HARNESS = r"""() => {
  const LONE_HI = String.fromCharCode(0xD83D), HUGE = 'x'.repeat(1 << 20);
  const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
  const clean = (s) => String(s).replace(lone, (c) => '\\u' + c.charCodeAt(0).toString(16));
  const keyOf = (id) => (typeof id !== 'string' ? '' : id.length > 200 ? `#long${id.length}` : clean(id));
  const nest = (n, inner, wrap) => { let v = inner; for (let i = 0; i < n; i++) v = wrap(v); return v; };
  const token = (s) => (s === '@HUGE' ? HUGE : s.startsWith('@DEEP:') ? nest(+s.slice(6), [], (v) => [v])
    : s.startsWith('@DEEPOBJ:') ? nest(+s.slice(9), {}, (v) => ({ a: v })) : s.replaceAll('@LONE_HI', LONE_HI));
  const build = (v) => (typeof v === 'string' ? token(v) : Array.isArray(v) ? v.map(build)
    : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [build(k), build(x)])) : v);
  const buildRaw = (text) => text.replace(/"@HUGE"/g, () => JSON.stringify(HUGE))
    .replace(/"@DEEP:(\d+)"/g, (_, n) => '['.repeat(+n) + ']'.repeat(+n))
    .replace(/"@DEEPOBJ:(\d+)"/g, (_, n) => '{"a":'.repeat(+n) + '{}' + '}'.repeat(+n))
    .replace(/@OPEN:(\d+)/g, (_, n) => '['.repeat(+n)).replaceAll('@LONE_HI', LONE_HI);
  const compact = (f) => ({ type: f.type, key: keyOf(f.id), code: f.code, field: f.field === undefined ? undefined : clean(f.field).slice(0, 80),
    message: f.message === undefined ? undefined : clean(f.message.slice(0, 160)), mlen: f.message?.length ?? 0,
    hlen: f.hint?.length ?? 0, index: f.index, reason: f.reason, text: typeof f.text === 'string' ? clean(f.text.slice(0, 80)) : undefined,
    t: performance.now() });
  const fz = { log: [] };
  offgridDebug.listen((f) => fz.log.push(compact(f)));
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const has = (evs, type) => evs.some((e) => e.type === type);
  /** Is the request over: any answer to a refusal, an error or the answer, a refusal or the last GenerateEnd? (a Stop: never) */
  const done = (rule, evs) => (rule.kind === 'refuse' ? evs.length > 0 : rule.kind === 'answer' ? has(evs, 'EngineError') || has(evs, rule.answer)
    : rule.kind === 'gen' && (has(evs, 'GenerateStart') ? evs.filter((e) => e.type === 'GenerateEnd').length >= rule.n : has(evs, 'EngineError')));
  /** Send case `c`; returns a handle (or what make() threw). */
  const start = (c) => {
    const h = { c, from: fz.log.length, t0: performance.now() };
    if (c.mode === 'req') {
      let run;
      try { run = offgrid.request(c.type, build(JSON.parse(c.text))); } catch (e) { return { ...h, thrown: clean(e.message).slice(0, 300) }; }
      h.key = keyOf(run.id);
      h.api = (async () => { const evs = []; for await (const ev of run) evs.push(compact(ev)); return evs; })();
    } else {
      const payload = c.mode === 'raw' ? buildRaw(c.text) : build(JSON.parse(c.text)); // JSON.parse keeps a __proto__ key
      let parsed = null;
      try { parsed = typeof payload === 'string' ? JSON.parse(payload) : payload; } catch { /* the worker answers with id '' */ }
      h.key = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? keyOf(parsed.id) : '';
      h.api = offgrid.sendRaw(payload, c.bound).then((evs) => evs.map(compact));
    }
    return h;
  };
  const mine = (h) => fz.log.slice(h.from).filter((e) => e.key === h.key && e.type !== 'Log');
  /** Wait for the final event of a sent case (or its bound); returns what came. */
  const finish = async (h) => {
    if (h.thrown !== undefined) return { thrown: h.thrown };
    while (performance.now() - h.t0 < h.c.bound && !done(h.c.rule, mine(h))) await sleep(5);
    const ms = performance.now() - h.t0;
    await sleep(30);
    const api = h.c.mode === 'req' || h.c.rule.kind !== 'answer' && h.c.rule.kind !== 'gen'
      ? await Promise.race([h.api, sleep(2000).then(() => null)]) : undefined;
    return { key: h.key, ms, events: mine(h), api };
  };
  window.__fz = { log: fz.log, send: (c) => finish(start(c)), start, finish, mine, keyOf };
}"""

# While a generation runs (started through offgrid.request), send probes at once, then maybe Stop it.
BUSY = """async ({runner, probes, stop}) => {
  const run = __fz.start({mode: 'req', type: runner.type, text: runner.text, bound: 60000, rule: runner.rule});
  const t0 = performance.now();
  while (!__fz.mine(run).some((e) => e.type === 'GenerateStart') && performance.now() - t0 < 30000) await new Promise((r) => setTimeout(r, 5));
  const handles = probes.map(__fz.start);
  if (stop) __fz.start({mode: 'obj', text: JSON.stringify({type: 'Stop', id: 'fz-stop-runner', v: 1, target: run.key}), bound: 300, rule: {kind: 'silent'}});
  return { runner: await __fz.finish(run), probes: await Promise.all(handles.map(__fz.finish)) };
}"""


def materialize(v):
    """The value the page makes of a template (for Python's decode)."""
    if isinstance(v, str):
        if v == HUGE:
            return "x" * MIB
        if v.startswith("@DEEP:"):
            return json.loads("[" * int(v[6:]) + "]" * int(v[6:]))
        return v.replace(LONE, "\ud83d")
    if isinstance(v, list):
        return [materialize(x) for x in v]
    if isinstance(v, dict):
        return {materialize(k): materialize(x) for k, x in v.items()}
    return v


def clean(s: str) -> str:
    return re.sub(r"[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]", lambda m: f"\\u{ord(m[0]):x}", s)


def predict(wire) -> tuple:
    """What the engine should answer `wire` (a frame or JSON text): ("refuse", code, field),
    ("answer", event type), ("gen", number of prompts) or ("silent",) for a Stop."""
    try:
        msg = p.decode(wire)
    except p.ProtocolError as e:
        return ("refuse", e.code, clean(e.field))
    name = type(msg).__name__
    if msg.kind != "request":
        return ("refuse", "bad_message", "type")
    if name == "Continue" and (not msg.messages or msg.messages[-1].role != "assistant"):
        return ("refuse", "bad_field", "messages")
    if name == "ChatBatch" and not msg.prompts:
        return ("refuse", "bad_field", "prompts")
    if name == "DeleteModel":
        return ("refuse", "unknown_model", "model_id")
    if name == "Stop":
        return ("silent",)
    return ("gen", len(msg.prompts) if name == "ChatBatch" else 1) if name in GENERATING else ("answer", FINAL[name])


def slots(tp, path=()):
    """Every place a value goes in a request: ('sampling', 'top_k'), ('messages', 0, 'role'), ..."""
    if path:
        yield path, tp
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        for f in dataclasses.fields(tp):
            yield from slots(hints[f.name], (*path, f.name))
    elif typing.get_origin(tp) is list:
        yield from slots(typing.get_args(tp)[0], (*path, 0))


def put(frame: dict, path: tuple, value) -> dict:
    """A copy of `frame` with `value` at `path` (BASE has every list and object on the way)."""
    frame = at = json.loads(json.dumps(frame))
    for step in path[:-1]:
        at = at[step]
    at[path[-1]] = value
    return frame


def object_cases(rng: random.Random) -> list[tuple[str, dict]]:
    """(what, frame) for every request type: wrong types for each field, missing and unknown fields."""
    out = []
    for cls in p.REQUESTS:
        name = cls.__name__
        base = {"type": name, "v": 1, **BASE[name]}
        for path, tp in slots(cls):
            wrong = [v for v in POOL if predict(materialize(put(base, path, v)))[0] == "refuse"]
            picks = rng.sample(wrong, min(2, len(wrong)))
            if typing.get_origin(tp) is typing.Literal and HUGE not in picks:
                picks.append(HUGE)  # a 1 MB name where a name is expected must not come back in the error
            where = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path)
            out += [(f"{name}{where} = {v!r}", put(base, path, v)) for v in picks]
        out += [(f"{name} + unknown field", {**base, "wings": 2}), (f"{name} + a 1 MB field name", {**base, HUGE: 1}),
                (f"{name} + __proto__", {**base, "__proto__": {"v": 2}})]
    chat = {"type": "Chat", "v": 1, "sampling": SMALL}
    out += [
        ("Chat message without role", {**chat, "messages": [{"content": "Hi"}]}),
        ("Chat message without content", {**chat, "messages": [{"role": "user"}]}),
        ("Chat message with an unknown field", {**chat, "messages": [{**HI[0], "name": "Ada"}]}),
        ("sampling with an unknown field", {**chat, "messages": HI, "sampling": {**SMALL, "wings": 1}}),
        ("ChatBatch with an empty prompt object", {"type": "ChatBatch", "v": 1, "prompts": [[{}]], "sampling": SMALL}),
        ("ChatBatch with no prompts", {"type": "ChatBatch", "v": 1, "prompts": [], "sampling": SMALL}),
        ("Continue without messages", {"type": "Continue", "v": 1, "sampling": SMALL}),
        ("Continue ending with a user turn", {"type": "Continue", "v": 1, "messages": HI, "sampling": SMALL}),
        ("DeleteModel of a 1 MB id", {"type": "DeleteModel", "v": 1, "model_id": HUGE}),
        ("Stop of a 1 MB id", {"type": "Stop", "v": 1, "target": HUGE}),
        ("Stop of a lone surrogate id", {"type": "Stop", "v": 1, "target": "a" + LONE}),
        ("Stop of nothing, nothing running", {"type": "Stop", "v": 1, "target": ""}),
        ("ListModels with a 1 MB id", {"type": "ListModels", "v": 1, "id": HUGE}),
        ("ListModels without an id", {"type": "ListModels", "v": 1}),
        ("Complete without an id", {"type": "Complete", "v": 1, "prompt": "One,", "sampling": SMALL}),
        ("InspectModel with a lone surrogate id", {"type": "InspectModel", "v": 1, "id": "lone" + LONE}),
        ("Chat with a lone surrogate", {**chat, "messages": [{"role": "user", "content": "Half: " + LONE + ". Hi"}]}),
        ("CountTokens of a lone surrogate", {"type": "CountTokens", "v": 1, "text": LONE + "x" + LONE}),
        ("CountTokens of nothing", {"type": "CountTokens", "v": 1, "text": ""}),
        ("Complete of an empty prompt", {"type": "Complete", "v": 1, "prompt": "", "sampling": SMALL}),
        ("Chat of no messages", {**chat, "messages": []}),
        ("ChatBatch of 9 prompts", {"type": "ChatBatch", "v": 1, "prompts": [[{"role": "user", "content": f"Say {i}."}] for i in range(9)],
                                    "sampling": {**SMALL, "max_tokens": 2}}),
        ("edge sampling", {**chat, "messages": HI, "sampling": {"temperature": 2, "top_k": 0, "top_p": 0, "min_p": 1, "repeat_penalty": 0,
                                                                "seed": 2**31 - 1, "max_tokens": 2, "stop": ["", "\n"]}}),
    ]
    out += [(f"v = {v!r}", {"type": rng.choice(list(BASE)), "v": v}) for v in [0, 2, -1, "1", True, None, [1], {}, 1.5, HUGE, "@DEEP:40"]]
    types = ["Teleport", "", "chat", "Chat ", "__proto__", "constructor", "toString", HUGE, "Chat" + LONE, 5, None, [], {}, True]
    out += [(f"type = {t!r}", {"type": t, "v": 1}) for t in [*types, *(e.__name__ for e in p.EVENTS)]]
    return [*out, ("no v", {"type": "ListModels"}), ("no type", {"v": 1})]


# Raw text only: not JSON, not an object, or nested deeper than any parser's stack. (what, text, expected or None)
DEEP = 100_000
RAW = [
    *((what, text, None) for what, text in [
        ("empty text", ""), ("an open brace", "{"), ("single quotes", "{'type': 'Chat'}"), ("NaN", "NaN"), ("a NUL", "\u0000"),
        ("a trailing comma", '{"type":"ListModels","v":1,"id":"fz-comma",}'), ("cut short", '{"type":"ListModels","v":1,"id":"fz-cut"'),
        ("a BOM", '\ufeff{"type":"ListModels","v":1}'), ("a lone surrogate outside a string", "{" + LONE + "}"), ("1 MB of [", f"@OPEN:{MIB}"),
        ("null", "null"), ("true", "true"), ("a number", "1"), ("1e999", "1e999"), ("a string", '"Chat"'), ("a 1 MB string", '"@HUGE"'),
        ("an array of a frame", '[{"type":"ListModels","v":1,"id":"fz-arr"}]')]),
    ("NaN in a field", '{"type":"Complete","v":1,"id":"fz-nan","sampling":{"temperature":NaN}}', ("refuse", "bad_message", "")),
    ("1e400 in a float field", '{"type":"Complete","v":1,"id":"fz-inf","sampling":{"temperature":1e400}}', None),
    ("a duplicate type", '{"type":"ListModels","type":"Teleport","v":1,"id":"fz-dup"}', None),
    ("a duplicate id", '{"type":"ListModels","v":1,"id":"fz-dupid","id":5}', None),
    ("whitespace around", ' \n\t{"type":"ListModels","v":1,"id":"fz-ws"} \n', None),
    *((f"{DEEP} nested arrays as {where}", text.replace("DEEP", f'"@DEEP:{DEEP}"'), ("refuse", None, None)) for where, text in [
        ("the frame", "DEEP"), ("type", '{"type":DEEP,"v":1,"id":"fz-d1"}'), ("v", '{"type":"Chat","v":DEEP,"id":"fz-d2"}'),
        ("an enum", '{"type":"LoadModel","v":1,"id":"fz-d3","backend":DEEP}'), ("a string field", '{"type":"Complete","v":1,"id":"fz-d4","prompt":DEEP}'),
        ("an unknown field", '{"type":"ListModels","v":1,"id":"fz-d5","wings":DEEP}'), ("the id", '{"type":"ListModels","v":1,"id":DEEP}')]),
    (f"{DEEP} nested objects", f'{{"type":"ListModels","v":1,"id":"fz-d6","wings":"@DEEPOBJ:{DEEP}"}}', ("refuse", None, None)),
    ("3000 nested arrays as an enum", '{"type":"LoadModel","v":1,"id":"fz-d7","backend":"@DEEP:3000"}', ("refuse", "bad_message", "")),
]


def build_cases() -> list[dict]:
    """Every send of the run, in a seeded order: {what, mode ('obj', 'raw' or 'req'), text, expect}."""
    rng = random.Random(SEED)
    sends = []
    for n, (what, frame) in enumerate(object_cases(rng)):
        if "id" not in frame and "without an id" not in what:
            frame = {**frame, "id": f"fz{n}"}
        wire, type_ = materialize(frame), frame.get("type")
        expect = predict(wire)
        request = isinstance(type_, str) and type_ in BASE
        if request and type_ in MODEL_CHANGING and expect[0] != "refuse":
            raise AssertionError(f"the generator made a valid {type_}: {what}")
        if expect[0] in ("gen", "answer") and (len(json.dumps(wire)) > 10_000 or wire.get("sampling", SMALL)["max_tokens"] > 8):
            continue  # long prompts and long answers would only make the run slow
        sends.append({"what": what, "mode": "raw" if n % 2 else "obj", "text": json.dumps(frame), "expect": expect})
        if request and type(wire.get("v")) is int and wire["v"] == 1 and isinstance(wire.get("id", ""), str):  # request() sets type, id, v
            rest = {k: v for k, v in frame.items() if k not in ("type", "id", "v")}
            sends.append({"what": what, "mode": "req", "type": type_, "text": json.dumps(rest),
                          "expect": predict(materialize({"type": type_, "v": 1, "id": "api", **rest}))})
    for what, text, expect in RAW:
        wire = text.replace(LONE, "\ud83d").replace('"@HUGE"', json.dumps("x" * MIB)).replace(f"@OPEN:{MIB}", "[" * MIB)
        sends.append({"what": what, "mode": "raw", "text": text, "expect": expect or predict(wire)})
    rng.shuffle(sends)
    return sends



def short(send: dict) -> str:
    body = f"offgrid.request({send['type']!r}, {send['text']})" if send["mode"] == "req" else send["text"]
    return f"[{send['mode']}] {send['what']}: {body[:160]}"


def problems(expect: tuple, events: list[dict]) -> list[str]:
    """What is wrong with the events (Log left out) that answered one request."""
    kinds = [e["type"] for e in events]
    out = [f"an error of {e['mlen']} characters (hint {e['hlen']}): {e['message'][:100]!r}"
           for e in events if e["type"] == "EngineError" and max(e["mlen"], e["hlen"]) > MAX_MESSAGE]
    if expect[0] == "refuse":
        if kinds != ["EngineError"]:
            out.append(f"expected exactly one EngineError, got {kinds}")
        elif expect[1] and (events[0]["code"], events[0]["field"]) != expect[1:]:
            out.append(f"expected {expect[1]} on {expect[2]!r}, got {events[0]['code']} on {events[0]['field']!r}: {events[0]['message']!r}")
    elif expect[0] == "answer":
        if [k for k in kinds if k in ("EngineError", expect[1])] != [expect[1]]:
            out.append(f"expected one {expect[1]}, got {kinds} {[e.get('message') for e in events if e['type'] == 'EngineError']}")
    elif expect[0] == "gen":
        ends = [i for i, k in enumerate(kinds) if k == "GenerateEnd"]
        if not kinds or kinds[0] != "GenerateStart":
            out.append(f"expected GenerateStart first, got {kinds[:6]} {[e.get('message') for e in events if e['type'] == 'EngineError']}")
        elif sorted(events[i]["index"] for i in ends) != list(range(expect[1])):
            out.append(f"expected one GenerateEnd for each of {expect[1]} prompts, got indices {[events[i]['index'] for i in ends]}")
        elif ends[-1] != len(kinds) - 1:
            out.append(f"events after the last GenerateEnd: {kinds[ends[-1] + 1:]}")
    elif events:
        out.append(f"expected no answer, got {kinds}")
    return out


def check(send: dict, res: dict) -> list[str]:
    expect = send["expect"]
    if "thrown" in res:  # make() refused it in the page: it must name the field (any, for a too-deep frame)
        ok = expect[0] == "refuse" and (expect[2] or expect[1] == "bad_message") and (expect[2] or ":") in res["thrown"]
        return [] if ok else [f"make() threw {res['thrown']!r}, expected {expect}"]
    api, events, bound_s = res["api"], res["events"], BOUND_MS[expect[0]] / 1000
    if not events and expect[0] != "silent":
        return [f"no answer at all within {bound_s:.0f} s"]
    out = problems(expect, events)
    if res["ms"] > BOUND_MS[expect[0]] and expect[0] != "silent":
        out.append(f"no final event within {bound_s:.0f} s")
    final = next((e for e in events if e["type"] in ("EngineError", expect[1])), None) if expect[0] == "answer" else (events or [None])[-1]
    if send["mode"] == "req" and final and (not api or (api[-1]["type"], api[-1].get("code")) != (final["type"], final.get("code"))):
        out.append(f"offgrid.request did not end with the final event {final['type']}: {[e['type'] for e in api or []]}")
    if send["mode"] != "req" and expect[0] == "refuse" and not any(e["type"] == "EngineError" for e in api or []):
        out.append(f"offgrid.sendRaw did not get the EngineError that the worker posted: {events[0]['message']!r}")
    return out


def rule(expect: tuple) -> dict:
    """How the page knows a request is over (see `done` in HARNESS)."""
    return {"kind": expect[0], "n": expect[1] if expect[0] == "gen" else 0, "answer": expect[1] if expect[0] == "answer" else ""}


BUSY_PROBES = [  # (type, fields, expected) sent while a generation runs
    *((t, BASE[t], ("refuse", "busy", "")) for t in ("Complete", "Chat", "Continue", "CountTokens", "SelfTest")),
    ("ChatBatch", {"prompts": [HI, HI], "sampling": SMALL}, ("refuse", "busy", "")), ("InspectModel", {}, ("answer", "ModelLoaded")),
    ("ListModels", {}, ("answer", "ModelList")), ("GetStorage", {}, ("answer", "StorageReport")), ("Stop", {"target": "nobody-else"}, ("silent",)),
    ("Chat", {"messages": HI, "sampling": {"top_k": "all"}}, ("refuse", "bad_field", "sampling.top_k"))]
RUNNERS = [  # (request, prompts, Stop it once the probes are sent)
    ({"type": "Complete", "text": json.dumps({"prompt": "Count: 1, 2, 3,", "sampling": {**SMALL, "max_tokens": 64}})}, 1, True),
    ({"type": "ChatBatch", "text": json.dumps({"prompts": [[{"role": "user", "content": f"Say {i}."}] for i in range(9)],
                                               "sampling": {**SMALL, "max_tokens": 2}})}, 9, False)]


def while_generating(app, failures: list[str], checked: dict) -> None:
    """Generations, counts and lifecycle jobs are `busy` (naming the running request) while a
    generation runs; queries answer at once; a Stop of another id changes nothing."""
    for runner, n, stop in RUNNERS:
        sends = [{"what": f"{type_} while {runner['type']} runs", "mode": "req" if i % 2 else "obj", "type": type_, "expect": expect,
                  "text": json.dumps(fields if i % 2 else {"type": type_, "v": 1, "id": f"fz-busy-{n}-{i}", **fields}),
                  "bound": BOUND_MS[expect[0]], "rule": rule(expect)} for i, (type_, fields, expect) in enumerate(BUSY_PROBES)]
        out = app.page.evaluate(BUSY, {"runner": {**runner, "rule": {"kind": "gen", "n": n}}, "probes": sends, "stop": stop})
        running = out["runner"]["key"]
        found = problems(("gen", n), out["runner"]["events"])
        failures += [f"the running {runner['type']} -> {m}" for m in found]
        if not found:
            checked[running] = ({"what": "the running request", "mode": "req", **runner}, ("gen", n))
        for send, res in zip(sends, out["probes"]):
            found = check(send, res)
            if send["expect"][1:2] == ("busy",) and not found and running not in res["events"][0]["message"]:
                found.append(f"the busy error does not name the running request {running}: {res['events'][0]['message']!r}")
            failures += [f"{short(send)}\n    -> {m}" for m in found]
            if not found:
                checked[res["key"]] = (send, send["expect"])


def test_hostile_frames_each_get_one_final_event_and_the_worker_still_answers(app):
    crashes: list[str] = []  # uncaught errors in the page, Pyodide's fatal errors among them
    app.page.on("pageerror", lambda e: crashes.append(str(e)[:200]))
    app.page.on("console", lambda m: crashes.append(m.text[:200]) if "fatal" in m.text else None)
    app.open()
    app.wait_ready()
    app.page.evaluate(HARNESS)
    sends, failures, checked = build_cases(), [], {}  # checked: request id -> (send, expected) of those that passed
    t0 = time.monotonic()
    for send in sends:
        before = len(crashes)
        res = app.page.evaluate("(c) => __fz.send(c)", {**send, "bound": BOUND_MS[send["expect"][0]], "rule": rule(send["expect"])})
        found = check(send, res) + [f"the page failed: {c}" for c in crashes[before:]]
        failures += [f"{short(send)}\n    -> {m}" for m in found]
        if res.get("key") and not found:
            checked[res["key"]] = (send, send["expect"])
    bulk_s = time.monotonic() - t0
    while_generating(app, failures, checked)

    # Late answers: on the whole log, each request that passed still has exactly one final event.
    app.page.wait_for_timeout(1000)
    log = app.page.evaluate("__fz.log")
    for key, (send, expect) in checked.items():
        events = [e for e in log if e["key"] == key and e["type"] != "Log"]
        failures += [f"{short(send)}\n    -> on the whole log: {m}" for m in problems(expect, events)]

    # The worker still answers, and the page shows no error.
    answer = app.page.evaluate("offgrid.call('Complete', {prompt: 'One, two,', sampling: {temperature: 0, max_tokens: 4}})")
    status = app.status.text_content()
    print(f"\n{len(sends)} hostile sends in {bulk_s:.0f} s, {2 * len(BUSY_PROBES) + 3} while generating; {len(log)} frames from the worker\n"
          + "\n".join(failures))
    assert answer["type"] == "GenerateEnd" and answer["text"].strip(), f"the worker no longer answers: {answer}"
    assert not status.startswith("Error"), f"the status line shows an error after the run: {status!r}"
    kinds: dict[str, list[str]] = {}  # the problems by their first words, for a short summary
    for failure in failures:
        kinds.setdefault(re.sub(r"\d+", "N", failure.split("-> ")[-1])[:30], []).append(failure)
    assert not failures, f"{len(failures)} problems (all printed above); one of each kind:\n" + "\n".join(f"{len(v)} x {v[0]}" for v in kinds.values())
