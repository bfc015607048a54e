"""The storage side of the controller (storage_actions.py) on CPython: progress
with speed and time left, the storage view, deleting, and a context the engine
made smaller to fit memory."""

from __future__ import annotations

from offgrid import protocol as p
from offgrid.storage_actions import duration, progress_detail, size

from test_controller import Harness, boot, load  # noqa: F401  (the recorder and its helpers)


def test_progress_says_bytes_speed_and_time_left():
    msg = p.LoadProgress(model_id="tiny", phase="download", loaded=12_300_000, total=98_400_000, rate=3_200_000)
    assert progress_detail(msg) == "12.3 MB / 98.4 MB · 3.2 MB/s · 27 s left"
    assert progress_detail(p.LoadProgress(phase="download", loaded=0, total=98_400_000)) == "0 kB / 98.4 MB"
    assert progress_detail(p.LoadProgress(phase="read", loaded=5, total=0)) == ""
    assert [duration(s) for s in (0.2, 59, 61, 3725)] == ["1 s", "59 s", "1 min 01 s", "1 h 02 min"]
    assert [size(n) for n in (512, 98_362_432, 2.5e9)] == ["1 kB", "98.4 MB", "2.5 GB"]


def test_download_progress_reaches_the_status_and_the_bar():
    h = Harness()
    boot(h)
    h.feed(p.LoadProgress(id=h.sent()[-1].id, model_id="tiny", phase="download", loaded=25_000_000, total=50_000_000, rate=5_000_000))
    assert h.view.last("set_progress") == (0.5, "25.0 MB / 50.0 MB · 5.0 MB/s · 5 s left")
    assert h.view.last("set_status") == ("Downloading Tiny Model 50%…", "busy")


def test_the_storage_view_shows_models_use_quota_and_updates():
    h = Harness()
    load(h)
    assert isinstance(h.last_sent(), p.GetStorage)  # refreshed after every load
    h.feed(p.StorageReport(models=[
        p.StoredModel("tiny", "Tiny Model", "2", 50_000_000, 50_000_000, True, True),
        p.StoredModel("big", "Big Model", "1", 250_000_000, 100_000_000, False, True),
        p.StoredModel("old", "Old Model", "1", 10_000_000, 10_000_000, True, False),
    ], usage=160_000_000, quota=1_600_000_000, persisted=False))
    data = h.view.last("set_storage")[0]
    assert [(r["name"], r["version"], r["size"], r["state"], r["loaded"]) for r in data["models"]] == [
        ("Tiny Model", "2", "50.0 MB", "stored", True),
        ("Big Model", "1", "100.0 MB", "incomplete: 100.0 MB of 250.0 MB (resumes on load)", False),
        ("Old Model", "1", "10.0 MB", "stored · a newer version is available", False),
    ]
    assert data["summary"] == ("This site uses 160.0 MB of 1.6 GB the browser allows (10%). "
                               "Storage is not persistent: the browser may evict it when space runs low.")


def test_delete_is_a_request_and_refused_while_busy():
    h = Harness()
    load(h)
    h.ctl.delete_model("tiny")
    assert h.last_sent() == p.DeleteModel(id=h.last_sent().id, model_id="tiny")
    h.ctl.submit("hello")  # now counting/generating
    before = len(h.frames)
    h.ctl.delete_model("tiny")
    assert len(h.frames) == before
    assert h.view.last("show_error")[0] == "The engine is busy."


def test_a_context_made_smaller_to_fit_memory_is_said_and_used_for_the_window():
    h = Harness()
    boot(h)
    h.ctl.library.save_app_settings(n_ctx=65536)
    notice = "Context reduced from 65536 to 8192 tokens to fit memory."
    h.feed(p.ModelLoaded(id=h.sent()[-1].id, model_id="tiny", name="Tiny Model", n_ctx=8192, notice=notice))
    assert h.view.last("show_notice") == (notice,)
    assert h.ctl.n_ctx == 8192 and h.ctl.n_ctx_setting == 65536


def test_progress_after_a_failed_download_does_not_bring_the_bar_back():
    h = Harness()
    boot(h)
    load_id = h.sent()[-1].id
    h.feed(p.EngineError(id=load_id, code="download_failed", message="HTTP 500"))
    calls = len(h.view.of("set_progress"))
    h.feed(p.LoadProgress(id=load_id, model_id="tiny", phase="download", loaded=1, total=2))
    assert len(h.view.of("set_progress")) == calls
