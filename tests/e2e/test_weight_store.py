"""Issue 4, end to end: the weight store in real Chromium with the real
server, engine and model. Faults are injected where they happen in life (a
dropped, failed or corrupted HTTP response, a deploy in the middle of a
download); the store, the engine and IndexedDB are the real ones. The checks
before a download (quota, memory) are in test_fit_before_download.py.

Each test has a fresh browser profile on disk (a persistent context: an
incognito one keeps IndexedDB in memory and never gives deleted bytes back)
and no service worker, so every chunk request reaches the network (the PWA
tests cover the service worker).
"""

from __future__ import annotations

import json

from offgrid_dev.site_variants import publish_next_version
from store_support import CACHE, READY_OR_ERROR, STORE, Chunks, _chunk_index, _default, _open


def test_an_interrupted_download_resumes_and_no_chunk_is_fetched_twice(fresh, server, dist):
    model = _default(dist)
    app = fresh(server.url)
    page = app.page
    chunks = Chunks(page, model)
    # The network drops after four chunks: every later chunk request fails.
    served: list[int] = []

    def drop_after_four(route):
        if len(served) < 4:
            served.append(_chunk_index(route.request, model))
            route.continue_()
        else:
            route.abort("internetdisconnected")

    page.route("**/*.gguf", drop_after_four)
    _open(app)
    page.wait_for_function(READY_OR_ERROR)
    status = app.status.text_content()
    assert status.startswith("Error:") and "offline" in status.lower(), status
    first = page.evaluate(STORE)
    assert first["intact"] and len(first["chunks"]) == 4, first
    assert [m["complete"] for m in first["models"]] == [False]
    stored_before = set(chunks.ok)
    assert len(stored_before) == 4

    # Back online, as after closing and reopening the tab: only the missing chunks come.
    page.unroute("**/*.gguf")
    chunks.ok.clear()
    page.reload()
    app.wait_ready()
    assert not stored_before & set(chunks.ok), f"refetched {stored_before & set(chunks.ok)}"
    assert stored_before | set(chunks.ok) == set(range(len(model["chunks"])))
    assert all(n == 1 for n in chunks.ok.values()), chunks.ok
    done = page.evaluate(STORE)
    assert done["intact"] and sorted(done["chunks"]) == sorted(set(model["chunks"]))
    assert done["models"] == [{"id": model["id"], "version": "1", "complete": True, "sha256": model["sha256"]}]
    app.ask("Say hello.")
    page.wait_for_function("() => document.querySelectorAll('.msg.assistant').length === 1")
    app.wait_ready()
    assert app.answer_text().strip()


def test_a_corrupted_chunk_is_rejected_and_fetched_again(fresh, server, dist):
    model = _default(dist)
    app = fresh(server.url)
    page = app.page
    chunks = Chunks(page, model)
    corrupted: list[int] = []

    def corrupt_chunk_3_once(route):
        if _chunk_index(route.request, model) == 3 and not corrupted:
            response = route.fetch()
            body = bytearray(response.body())
            body[1000] ^= 0xFF  # one flipped byte
            corrupted.append(3)
            route.fulfill(response=response, body=bytes(body))
        else:
            route.continue_()

    page.route("**/*.gguf", corrupt_chunk_3_once)
    _open(app)
    app.wait_ready()
    assert corrupted == [3]
    assert chunks.ok[3] == 2, chunks.ok  # the bad copy, then a good one
    assert all(chunks.ok[i] == 1 for i in range(len(model["chunks"])) if i != 3), chunks.ok
    store = page.evaluate(STORE)
    assert store["intact"] and sorted(store["chunks"]) == sorted(set(model["chunks"]))


def test_repeated_corruption_is_a_clear_error_and_never_reaches_the_engine(fresh, server, dist):
    model = _default(dist)
    app = fresh(server.url)
    page = app.page

    def always_corrupt_chunk_2(route):
        if _chunk_index(route.request, model) != 2:
            return route.continue_()
        response = route.fetch()
        body = bytearray(response.body())
        body[0] ^= 0xFF
        route.fulfill(response=response, body=bytes(body))

    page.route("**/*.gguf", always_corrupt_chunk_2)
    _open(app)
    page.wait_for_function(READY_OR_ERROR)
    status = app.status.text_content()
    assert status.startswith("Error: Could not download part 3") and "SHA-256" in status, status
    store = page.evaluate(STORE)
    assert store["intact"] and model["chunks"][2] not in store["chunks"]
    assert [m["complete"] for m in store["models"]] == [False]
    diag = page.evaluate("offgrid.call('GetDiagnostics')")
    assert page.evaluate("offgrid.state()")["model_id"] == "", diag


def test_chunks_in_flight_when_one_fails_are_kept_and_not_fetched_again(fresh, server, dist):
    """Issue 23: when one chunk failed its tries, the download gave up while others were
    still in flight, and the next LoadModel fetched those again."""
    model = _default(dist)
    app = fresh(server.url)
    page = app.page
    chunks = Chunks(page, model)

    def chunk_0_fails(route):
        if _chunk_index(route.request, model) == 0:
            return route.fulfill(status=503, body="busy")
        route.continue_()

    page.route("**/*.gguf", chunk_0_fails)
    _open(app)
    page.wait_for_function(READY_OR_ERROR)
    status = app.status.text_content()
    assert status.startswith("Error: Could not download part 1") and "503" in status, status
    # The error came once every chunk in flight had settled: what was fetched is stored.
    stored = set(page.evaluate(STORE)["chunks"])
    assert stored == {model["chunks"][i] for i in chunks.ok}, (sorted(chunks.ok), len(stored))
    page.unroute("**/*.gguf")
    again = page.evaluate("offgrid.call('LoadModel', {model_id: %s})" % json.dumps(model["id"]))
    assert again["type"] == "ModelLoaded", again
    assert chunks.ok and all(n == 1 for n in chunks.ok.values()), f"fetched twice: {chunks.ok}"
    assert set(chunks.ok) == set(range(len(model["chunks"])))


def test_a_new_model_version_fetches_only_the_changed_chunks(fresh, site, artifacts):
    root, server = site
    v1 = _default(root)
    app = fresh(server.url)
    page = app.page
    _open(app)
    app.wait_ready()
    assert page.evaluate(STORE)["models"][0]["version"] == "1"

    v2 = publish_next_version(root, CACHE)  # version 2: one GGUF header value changed
    changed = [i for i, (a, b) in enumerate(zip(v1["chunks"], v2["chunks"])) if a != b]
    assert changed == [0] and v2["sha256"] != v1["sha256"]
    chunks = Chunks(page, v2)
    page.reload()
    app.wait_ready()
    assert sum(chunks.ok.values()) == len(changed) and set(chunks.ok) == set(changed), chunks.ok
    store = page.evaluate(STORE)
    assert store["models"] == [{"id": v2["id"], "version": "2", "complete": True, "sha256": v2["sha256"]}]
    # The old version's own chunk is gone; every chunk left belongs to version 2.
    assert store["intact"] and sorted(store["chunks"]) == sorted(set(v2["chunks"]))
    report = page.evaluate("offgrid.call('GetStorage')")
    assert [(m["model_id"], m["version"], m["complete"], m["current"]) for m in report["models"]] == [(v2["id"], "2", True, True)]
    assert page.evaluate("offgrid.call('InspectModel')")["name"]
    app.ask("Say hello.")
    page.wait_for_function("() => document.querySelectorAll('.msg.assistant').length === 1")
    app.wait_ready()
    assert app.answer_text().strip()


def test_a_download_resumed_after_a_deploy_says_to_reload_instead_of_failing_hashes(fresh, site):
    """Issue 23: weights were served at one URL for every version, so a page of the older
    build resuming a download got the new bytes, failed the hash three times and said
    "Could not download". Each version now has its own path; the old one answers 404."""
    root, server = site
    v1 = _default(root)
    app = fresh(server.url)
    page = app.page
    served: list[int] = []

    def stop_after_two(route):
        if len(served) < 2:
            served.append(_chunk_index(route.request, v1))
            return route.continue_()
        route.abort("internetdisconnected")

    page.route("**/*.gguf", stop_after_two)
    _open(app)
    page.wait_for_function(READY_OR_ERROR)
    assert app.status.text_content().startswith("Error:")
    # A deploy: version 2 goes up, version 1's file goes away (a fresh dist/ has only its own).
    publish_next_version(root, CACHE)
    (root / "models" / v1["path"]).unlink()
    page.unroute("**/*.gguf")
    chunks = Chunks(page, v1)
    again = page.evaluate("offgrid.call('LoadModel', {model_id: %s})" % json.dumps(v1["id"]))
    assert again["type"] == "EngineError" and again["code"] == "download_failed", again
    assert "no longer on the server" in again["message"] and "Reload the page" in again["hint"], again
    assert not chunks.ok, chunks.ok  # nothing of another version was fetched
    # A reload takes the new build's catalog and finishes with version 2.
    page.reload()
    app.wait_ready()
    assert page.evaluate(STORE)["models"][0]["version"] == "2"


def _open_storage(page):
    page.get_by_text("Storage", exact=True).click()
    rows = page.get_by_role("list", name="Models stored on this device").get_by_role("listitem")
    rows.first.wait_for()
    return rows


def _usage(page) -> int:
    return page.evaluate("navigator.storage.estimate().then((e) => e.usage)")


def test_deleting_a_stored_model_gives_its_bytes_back(fresh, server, dist, artifacts):
    model = _default(dist)
    app = fresh(server.url)
    page = app.page
    served: list[int] = []

    def stop_after_four(route):
        served.append(1)
        route.continue_() if len(served) <= 4 else route.abort("internetdisconnected")

    page.route("**/*.gguf", stop_after_four)
    _open(app)
    page.wait_for_function(READY_OR_ERROR)
    rows = _open_storage(page)
    text = rows.first.text_content()
    assert f"{model['name']} v1 · 33.6 MB · incomplete: 33.6 MB of 98.4 MB (resumes on load)" in text, text
    summary = page.locator("#storage-summary").text_content()
    assert summary.startswith("This site uses ") and "the browser allows" in summary and "persistent" in summary, summary
    used_before = _usage(page)
    assert used_before >= 4 * model["chunk_size"]
    page.screenshot(path=str(artifacts / "storage-desktop.png"), full_page=True)

    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name=f"Delete {model['name']}").click()
    page.get_by_text("No model is stored on this device.").wait_for()
    assert page.evaluate(STORE) == {"chunks": [], "intact": True, "models": []}
    # The browser's own accounting: the chunks' bytes are given back.
    assert used_before - _usage(page) >= 4 * model["chunk_size"] * 0.95


def test_deleting_the_model_in_use_unloads_it_and_empties_the_store(fresh, server, dist, artifacts):
    model = _default(dist)
    app = fresh(server.url)
    page = app.page
    page.set_viewport_size({"width": 360, "height": 640})
    _open(app)
    app.wait_ready()
    rows = _open_storage(page)
    assert f"{model['name']} v1 · 98.4 MB · stored · in use" in rows.first.text_content()
    page.screenshot(path=str(artifacts / "storage-phone.png"), full_page=True)
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name=f"Delete {model['name']}").click()
    page.get_by_text("No model is stored on this device.").wait_for()
    assert page.evaluate(STORE) == {"chunks": [], "intact": True, "models": []}
    assert page.evaluate("offgrid.state()")["model_id"] == ""
    # (Chromium gives the bytes of a model that was in use back once the engine's
    # handles on them are garbage-collected; the test above checks the accounting.)
    listed = {m["model_id"]: m["cached"] for m in page.evaluate("offgrid.call('ListModels')")["models"]}
    assert listed[model["id"]] is False


def test_an_incognito_window_loads_the_stored_model_again_and_after_a_reload(browser, server, open_app):
    """Chromium keeps IndexedDB in memory in an incognito window; reading a stored
    model there used to break every later read in the page (NotReadableError)."""
    context = browser.new_context()  # incognito: no profile on disk
    try:
        app = open_app(context.new_page(), server.url)
        app.open()
        app.wait_ready()
        page = app.page
        model_id = page.evaluate("offgrid.state()")["model_id"]
        for n_ctx in (1024, 2048):  # a different context size: the engine really restarts
            page.evaluate("offgrid.call('UnloadModel')")
            loaded = page.evaluate("(n) => offgrid.call('LoadModel', {model_id: %r, n_ctx: n})" % model_id, n_ctx)
            assert loaded["type"] == "ModelLoaded", loaded
            assert loaded["from_cache"] is True, loaded
        page.reload()
        app.wait_ready()
        app.ask("Say hello.")
        page.wait_for_function("() => document.querySelector('[role=status]').textContent === 'Ready'"
                               " && document.querySelector('.msg.assistant .text')?.textContent.trim()")
        assert app.answer_text().strip()
    finally:
        context.close()
