"""The weight store's checks before a download, end to end in real Chromium: a quota
too small (refused with numbers, or enforced mid-download by DevTools'
Storage.overrideQuotaForOrigin) and a device with too little memory (refused, or
its context made smaller). The store, the engine and IndexedDB are the real ones;
the device's memory and the quota the app sees come from the engine's test hooks
(a hooked copy of the site)."""

from __future__ import annotations

import json

from store_support import READY_OR_ERROR, STORE, Chunks, _default, _open


def _quota(page, origin: str, size: int | None) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Storage.overrideQuotaForOrigin", {"origin": origin, **({"quotaSize": size} if size is not None else {})})


def test_a_model_that_does_not_fit_the_quota_is_refused_before_downloading(fresh, hooked, dist):
    model = _default(dist)
    # A browser that grants 40 MB (Chromium enforces DevTools' quota override but
    # estimate() does not report it, so the quota the app sees is injected by a test hook).
    app = fresh(hooked(quota_mb=40).url)
    page = app.page
    chunks = Chunks(page, model)
    _open(app)
    page.wait_for_function(READY_OR_ERROR)
    status = app.status.text_content()
    assert status.startswith(f"Error: Not enough storage for {model['name']}: it needs 98 MB more"), status
    assert "quota is free" in status
    alert = page.get_by_role("alert").text_content()
    assert "free space" in alert.lower(), alert
    assert not chunks.requested, "nothing may be downloaded that cannot be stored"
    store = page.evaluate(STORE)
    assert store["chunks"] == [] and store["models"] == []


def test_running_out_of_quota_mid_download_keeps_the_store_consistent(fresh, server, dist):
    model = _default(dist)
    app = fresh(server.url)
    page = app.page
    page.goto(server.url + "/icon.svg")  # same origin, before the app starts
    # Chromium enforces this quota (estimate() does not report it, so the check before
    # downloading passes): a few chunks fit, then IndexedDB refuses the next one.
    _quota(page, server.url, 30_000_000)
    chunks = Chunks(page, model)
    _open(app)
    page.wait_for_function(READY_OR_ERROR)
    status = app.status.text_content()
    assert status.startswith(f"Error: The browser ran out of storage space after storing part of {model['name']}"), status
    assert "resume" in page.get_by_role("alert").text_content()
    store = page.evaluate(STORE)
    assert store["intact"] and 1 <= len(store["chunks"]) < len(model["chunks"]), store
    assert [m["complete"] for m in store["models"]] == [False]

    # Space again: the download resumes from the stored chunks and completes.
    _quota(page, server.url, None)
    stored_before = {model["chunks"].index(h) for h in store["chunks"]}
    chunks.ok.clear()
    page.reload()
    app.wait_ready()
    assert not stored_before & set(chunks.ok)
    assert sorted(page.evaluate(STORE)["chunks"]) == sorted(set(model["chunks"]))


def test_a_device_without_enough_memory_is_told_why_before_any_download(fresh, hooked, dist):
    model = _default(dist)
    app = fresh(hooked(device_memory_gb=0.25).url)
    page = app.page
    chunks = Chunks(page, model)
    _open(app)
    page.wait_for_function(READY_OR_ERROR)
    status = app.status.text_content()
    assert status.startswith(f"Error: {model['name']} does not fit in memory here"), status
    # The weights as they would be in the engine's memory: our SIMD builds repack q4_1 (x1.2).
    simd = [b for b in json.loads((dist / "engine" / "builds.json").read_text())["builds"] if b["simd_kernels"]]
    growth = simd[0].get("weight_growth", {}).get(model["quantization"], 1) if simd else 1
    assert "0.25 GB" in status and f"weights {round(model['bytes'] * growth / 1e6)} MB" in status, status
    assert "smaller model" in page.get_by_role("alert").text_content()
    assert not chunks.requested


def test_a_context_too_big_for_memory_is_made_smaller_and_said(fresh, hooked, dist, artifacts):
    app = fresh(hooked(device_memory_gb=1).url)
    page = app.page
    _open(app)
    app.wait_ready()
    page.get_by_text("Settings", exact=True).click()
    page.get_by_label("Context size").fill("65536")
    page.get_by_role("button", name="Save settings").click()
    alert = page.get_by_role("alert")
    alert.get_by_text("Context reduced from 65536 to").wait_for()
    app.wait_ready()
    notice = alert.text_content()
    loaded = page.evaluate("offgrid.call('InspectModel')")
    assert 2048 <= loaded["n_ctx"] < 65536, loaded
    assert f"Context reduced from 65536 to {loaded['n_ctx']} tokens to fit memory" in notice, notice
    assert "about half of this device's 1 GB of memory" in notice
    assert f"ctx {loaded['n_ctx']}" in page.locator("#model-detail").text_content()
    page.screenshot(path=str(artifacts / "context-reduced-desktop.png"))
    # The smaller context is the one the conversation window is planned for: it still answers.
    app.ask("Say hello.")
    page.wait_for_function("() => document.querySelectorAll('.msg.assistant').length === 1")
    app.wait_ready()
    assert app.answer_text().strip()
