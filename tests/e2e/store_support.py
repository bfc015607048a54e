"""What the weight-store e2e tests share: reading the store as the page sees it, the
catalog's default model, and counting the chunk requests that reached the server."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

READY_OR_ERROR = "() => /^(Ready|Error)/.test(document.querySelector('[role=status]').textContent)"
CACHE = Path(os.environ.get("OFFGRID_CACHE", Path(__file__).resolve().parents[2] / ".cache"))

# Everything the weight store holds: chunk keys checked against their bytes, model records.
STORE = """async () => {
  const db = await new Promise((ok, err) => { const r = indexedDB.open('offgrid-weights'); r.onsuccess = () => ok(r.result); r.onerror = err; });
  const all = (store, what) => new Promise((ok) => { const r = db.transaction(store).objectStore(store)[what](); r.onsuccess = () => ok(r.result); });
  const keys = await all('chunks', 'getAllKeys');
  const blobs = await all('chunks', 'getAll');
  const hex = async (b) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', await b.arrayBuffer())), (x) => x.toString(16).padStart(2, '0')).join('');
  const intact = (await Promise.all(blobs.map(hex))).every((h, i) => h === keys[i]);
  const models = (await all('models', 'getAll')).map((m) => ({ id: m.id, version: m.version, complete: m.complete, sha256: m.sha256 }));
  db.close();
  return { chunks: keys, intact, models };
}"""


def _catalog(root: Path) -> dict:
    return json.loads((root / "models" / "catalog.json").read_text())


def _default(root: Path) -> dict:
    cat = _catalog(root)
    return next(m for m in cat["models"] if m["id"] == cat["default"])


def _chunk_index(request, model: dict) -> int:
    start = int(request.headers["range"].removeprefix("bytes=").split("-")[0])
    return start // model["chunk_size"]


class Chunks:
    """Counts the .gguf Range requests that got a good answer, by chunk index."""

    def __init__(self, page, model: dict) -> None:
        self.ok: Counter[int] = Counter()
        self.requested: Counter[int] = Counter()
        page.on("request", lambda r: self.requested.update([_chunk_index(r, model)]) if r.url.endswith(".gguf") else None)
        page.on("response", lambda r: self.ok.update([_chunk_index(r.request, model)])
                if r.url.endswith(".gguf") and r.status == 206 else None)


def _open(app) -> None:
    app.page.goto(app.base_url + "/" + app.query)
