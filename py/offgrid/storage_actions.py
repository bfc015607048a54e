"""The model-storage side of the controller: download progress (bytes,
percent, speed, time left), the storage view (cached models, use and quota)
and deleting a stored model.

A mixin of Controller (controller.py), like ConversationActions; the weight
store itself lives in the engine worker (web/weight_store.js), so the weights
never pass through Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import protocol as p

if TYPE_CHECKING:
    from .controller import Controller

_PHASES = {"download": "Downloading", "verify": "Verifying", "store": "Storing",
           "read": "Reading from storage", "init": "Starting"}


def size(n: float) -> str:
    """Bytes for people: 512 kB, 98.4 MB, 12.3 GB."""
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e3:.0f} kB"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def progress_detail(msg: p.LoadProgress) -> str:
    """'12.3 MB / 98.4 MB · 3.2 MB/s · 27 s left' (speed and time once they are known)."""
    if not msg.total:
        return ""
    parts = [f"{size(msg.loaded)} / {size(msg.total)}"]
    if msg.phase == "download" and msg.rate > 0:
        parts.append(f"{size(msg.rate)}/s")
        parts.append(f"{duration((msg.total - msg.loaded) / msg.rate)} left")
    return " · ".join(parts)


class StorageActions:
    def show_storage(self: Controller) -> None:
        """Ask the engine for the storage view's contents (answered by StorageReport)."""
        self.send(p.GetStorage())

    def delete_model(self: Controller, model_id: str) -> None:
        if self.state.value in ("generating", "loading"):
            self.view.show_error("The engine is busy.", "Wait until the answer or the download has finished, then delete.")
            return
        self.send(p.DeleteModel(model_id=model_id))

    def _on_LoadProgress(self: Controller, msg: p.LoadProgress) -> None:
        if self.state.value not in ("booting", "loading"):
            return  # a late frame of a download that already failed (or a script's own load)
        frac = msg.loaded / msg.total if msg.total else None
        name = self.models[msg.model_id].name if msg.model_id in self.models else "model"
        pct = f" {frac * 100:.0f}%" if frac is not None and msg.phase == "download" else ""
        self.view.set_progress(frac, progress_detail(msg))
        if self.state.value == "loading":
            self.view.set_status(f"{_PHASES[msg.phase]} {name}{pct}…", "busy")

    def _on_StorageReport(self: Controller, msg: p.StorageReport) -> None:
        rows: list[dict[str, Any]] = []
        for m in msg.models:
            if m.complete:
                state = "stored" if m.current else "stored · a newer version is available"
            else:
                state = f"incomplete: {size(m.stored_bytes)} of {size(m.bytes)} (resumes on load)"
            rows.append({"model_id": m.model_id, "name": m.name, "version": m.version,
                         "size": size(m.stored_bytes), "state": state,
                         "loaded": bool(self.model and self.model.model_id == m.model_id)})
        summary = f"This site uses {size(msg.usage)}"
        if msg.quota:
            summary += f" of {size(msg.quota)} the browser allows ({msg.usage / msg.quota * 100:.0f}%)"
        summary += ". " + ("Storage is persistent: the browser will not evict it." if msg.persisted
                           else "Storage is not persistent: the browser may evict it when space runs low.")
        self.view.set_storage({"models": rows, "summary": summary})
