"""Write py/offgrid/protocol.py's schema as web/shared/protocol.gen.js: data only.

The validator and make() that read it are hand-written JS, web/shared/protocol.js.
`python3 build.py protocol` writes the file; `python3 build.py` stops while it is stale
(offgrid_dev.site.check_protocol_js) and tests/test_protocol_gen.py fails.
"""

from __future__ import annotations

import json
import re
from typing import Any

from offgrid import protocol

HEADER = """\
// GENERATED from py/offgrid/protocol.py by `python3 build.py protocol`. Do not edit: change the
// dataclasses and run that; `python3 build.py` stops while this file is stale.
// Data only: the validator and make() are in protocol.js. Import from there, never from here.
//
// A field is {t, default?, min?, max?}; a field without a default is required. Its type t is
// bool, int, float, str, a name in ENUMS or OBJECTS, or one of those followed by [] (a list).
"""

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def js(value: Any) -> str:
    """`value` as a JS literal: JSON, with bare keys where they are identifiers."""
    if isinstance(value, dict):
        items = (f"{k if _IDENTIFIER.fullmatch(k) else json.dumps(k)}: {js(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(js(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _table(name: str, doc: str, rows: dict[str, Any]) -> list[str]:
    """`export const name = {` with one row per entry (one line per type)."""
    return [f"/** {doc} */", f"export const {name} = {{", *(f"  {k}: {js(v)}," for k, v in rows.items()), "};", ""]


def render() -> str:
    s = protocol.schema()
    names = s["requests"] + s["events"]
    return "\n".join([
        HEADER,
        f"export const PROTOCOL_VERSION = {s['version']};",
        f"export const MAX_DEPTH = {s['max_depth']};",
        "",
        *_table("T", "Message type names, so call sites fail loudly on a typo.", {n: n for n in names}),
        f"export const REQUESTS = {js(s['requests'])};",
        f"export const EVENTS = {js(s['events'])};",
        "",
        *_table("ENUMS", "The protocol's named sets of strings (its Literal types).", s["enums"]),
        *_table("OBJECTS", "The objects that messages carry: field name -> field.", s["objects"]),
        *_table("MESSAGES", "Every request and event: field name -> field, in declaration order.", s["messages"]),
    ])
