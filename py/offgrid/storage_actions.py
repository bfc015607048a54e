"""The model-storage side of the controller: download progress (bytes,
percent, speed, time left), the storage view (cached models, use and quota)
and deleting a stored model.

A handler of the controller (controller.py), like ConversationHandler; the
weight store itself lives in the engine worker (web/engine/weight_store.js),
so the weights never pass through Python. This is the page's one progress
renderer: the page draws no progress of its own before Python is up (the
bridge keeps the engine's frames until the controller attaches).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import protocol as p
from .state import State

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


class StorageHandler:
    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        self._asked_persist = False

    def show(self) -> None:
        """Ask the engine for the storage view's contents (answered by StorageReport)."""
        self.ctl.send(p.GetStorage())

    def delete_model(self, model_id: str) -> None:
        if self.ctl.state in (State.GENERATING, State.LOADING):
            self.ctl.view.show_error("The engine is busy.", "Wait until the answer or the download has finished, then delete.")
            return
        self.ctl.send(p.DeleteModel(model_id=model_id))

    def on_LoadProgress(self, msg: p.LoadProgress) -> None:
        ctl = self.ctl
        if msg.phase == "download" and not self._asked_persist:
            # Weights are worth keeping: ask once, when a download starts, that the browser
            # not evict them under storage pressure (only a page can ask; workers cannot).
            self._asked_persist = True
            ctl.view.persist_storage()
        if ctl.state not in (State.BOOTING, State.LOADING):
            return  # a late frame of a download that already failed
        frac = msg.loaded / msg.total if msg.total else None
        name = ctl.models[msg.model_id].name if msg.model_id in ctl.models else "model"
        pct = f" {frac * 100:.0f}%" if frac is not None and msg.phase == "download" else ""
        ctl.view.set_progress(frac, progress_detail(msg))
        if ctl.state is State.LOADING:
            ctl.view.set_status(f"{_PHASES[msg.phase]} {name}{pct}…", "busy")

    def on_StorageReport(self, msg: p.StorageReport) -> None:
        model = self.ctl.model
        rows: list[dict[str, Any]] = []
        for m in msg.models:
            if m.complete:
                state = "stored" if m.current else "stored · a newer version is available"
            else:
                state = f"incomplete: {size(m.stored_bytes)} of {size(m.bytes)} (resumes on load)"
            rows.append({"model_id": m.model_id, "name": m.name, "version": m.version,
                         "size": size(m.stored_bytes), "state": state,
                         "loaded": bool(model and model.model_id == m.model_id)})
        summary = f"This site uses {size(msg.usage)}"
        if msg.quota:
            summary += f" of {size(msg.quota)} the browser allows ({msg.usage / msg.quota * 100:.0f}%)"
        summary += ". " + ("Storage is persistent: the browser will not evict it." if msg.persisted
                           else "Storage is not persistent: the browser may evict it when space runs low.")
        self.ctl.view.set_storage({"models": rows, "summary": summary})
