"""Issue 6, end to end: install, airplane-mode start and the update flow, in
real Chromium with the real service worker, engine and model."""

from __future__ import annotations

import json
import struct


from offgrid_dev.pwa import write_service_worker

CONTROLLED = "() => navigator.serviceWorker.controller !== null"
READY_OR_ERROR = "() => /^(Ready|Error)/.test(document.querySelector('[role=status]').textContent)"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", data[:16]
    return struct.unpack(">II", data[16:24])


def _failures(page) -> list[str]:
    """Every request of the page (and its workers) that failed or got an HTTP error."""
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
    page.on("response", lambda r: failed.append(f"{r.url} HTTP {r.status}") if r.status >= 400 else None)
    return failed


def _install(open_app, context, url: str):
    """First visit: the model is stored and the service worker controls the page."""
    page = context.new_page()
    app = open_app(page, url)
    app.open()
    app.wait_ready()
    page.wait_for_function(CONTROLLED)
    page.evaluate("navigator.serviceWorker.ready")
    return app


def test_manifest_and_icons(page, server):
    page.goto(server.url + "/")
    href = page.eval_on_selector("link[rel=manifest]", "l => l.href")
    manifest = json.loads(page.request.get(href).text())
    for key in ("name", "short_name", "start_url", "scope", "theme_color", "background_color"):
        assert isinstance(manifest.get(key), str) and manifest[key], key
    assert manifest["display"] == "standalone"
    assert page.evaluate(f"new URL({json.dumps(manifest['start_url'])}, {json.dumps(href)}).href") == server.url + "/"
    icons = {(i["sizes"], i.get("purpose", "any")): i for i in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= icons.keys()
    for (sizes, _), icon in icons.items():
        res = page.request.get(page.evaluate(f"new URL({json.dumps(icon['src'])}, {json.dumps(href)}).href"))
        assert res.ok and res.headers["content-type"] == "image/png" == icon["type"]
        w, h = _png_size(res.body())
        assert f"{w}x{h}" == sizes
    apple = page.request.get(page.eval_on_selector("link[rel=apple-touch-icon]", "l => l.href"))
    assert apple.ok and _png_size(apple.body()) == (180, 180)


def test_airplane_mode_start_answers_and_says_when_no_model_is_stored(profile, server, open_app):
    context = profile()
    app = _install(open_app, context, server.url)
    page = app.page
    # Precached: the shell and the one engine build this browser runs, not all of them (issue 23).
    cached = page.evaluate("""async () => { const out = [];
      for (const name of await caches.keys()) for (const r of await (await caches.open(name)).keys()) out.push(new URL(r.url).pathname);
      return out; }""")
    wasm = sorted(u for u in cached if u.endswith(".wasm") and "pyodide" not in u)
    engine = page.evaluate("offgrid.call('InspectModel')")["engine"]
    assert wasm == [f"/engine/{engine}/wasm/wllama.wasm"], (engine, wasm)

    context.set_offline(True)
    failed = _failures(page)
    page.reload()
    app.wait_ready()
    assert page.evaluate(CONTROLLED)
    # Served from the service worker's cache with COOP/COEP: still isolated, so WASM threads work.
    assert page.evaluate("crossOriginIsolated") is True
    diag = page.evaluate("offgrid.call('GetDiagnostics')")
    assert diag["cross_origin_isolated"] is True and diag["backend"] in ("wasm-mt", "webgpu"), diag
    app.ask("What is the capital of France? Answer in one sentence.")
    page.wait_for_function("() => document.querySelectorAll('.msg.assistant').length === 1")
    app.wait_ready()
    assert app.answer_text().strip()
    assert failed == [], failed
    assert page.evaluate("fetch('models/catalog.json').then(r => r.ok)")
    # And the network really was off: a URL the service worker does not hold fails.
    assert page.evaluate("fetch('models/catalog.json?uncached=' + Date.now()).then(() => 'reached', () => 'offline')") == "offline"

    # Still offline, the stored weights gone: the app says so instead of hanging.
    page.goto(server.url + "/icon.svg")  # a precached page: the app and its engine stop
    assert page.evaluate("""() => new Promise((ok, err) => {
      const r = indexedDB.deleteDatabase('offgrid-weights');
      r.onsuccess = () => ok(true); r.onerror = () => err(r.error); r.onblocked = () => err(new Error('blocked'));
    })""")
    app.open()
    page.wait_for_function(READY_OR_ERROR, timeout=60_000)
    status = app.status.text_content()
    assert status.startswith("Error: You are offline") and "not stored on this device" in status, status
    alert = page.get_by_role("alert").text_content()
    assert "Connect to the internet once" in alert, alert


def test_an_engine_build_used_once_online_also_loads_offline(profile, server, open_app, dist):
    """Only the engine build this browser runs is precached; another one (forced in Settings)
    is cached when first used, so it loads offline from then on (issue 23)."""
    builds = {b["id"]: b for b in json.loads((dist / "engine" / "builds.json").read_text())["builds"]}
    other = "simd" if "simd" in builds else "stock"
    context = profile()
    app = _install(open_app, context, server.url)
    page = app.page
    page.reload()  # a second visit: the engine worker itself is now served by the service worker
    app.wait_ready()
    assert page.evaluate("offgrid.call('InspectModel')")["engine"] != other
    smol = page.evaluate("offgrid.call('InspectModel')")["model_id"]
    loaded = page.evaluate("(f) => offgrid.call('LoadModel', f)", {"model_id": smol, "engine": other, "backend": "wasm-mt"})
    assert loaded["type"] == "ModelLoaded" and loaded["engine"] == other, loaded

    context.set_offline(True)
    page.reload()
    app.wait_ready()
    loaded = page.evaluate("(f) => offgrid.call('LoadModel', f)", {"model_id": smol, "engine": other, "backend": "wasm-mt"})
    assert loaded["type"] == "ModelLoaded" and loaded["engine"] == other, loaded
    answer = page.evaluate("offgrid.call('Complete', {prompt: 'One, two,', sampling: {temperature: 0, max_tokens: 4}})")
    assert answer["type"] == "GenerateEnd" and answer["text"].strip(), answer


def test_a_new_build_is_offered_and_taken_only_on_reload(profile, site, artifacts, open_app):
    root, server = site
    context = profile(viewport={"width": 360, "height": 640}, device_scale_factor=2, is_mobile=True, has_touch=True)
    app = _install(open_app, context, server.url)
    page = app.page
    assert page.get_by_role("button", name="Reload to update").count() == 0

    # Deploy a new build in which one file changed.
    css = root / "app.css"
    old_css = css.read_text()
    new_css = old_css + "\n:root { --offgrid-build: 2; }\n"
    css.unlink()  # never write through to a hard link
    css.write_text(new_css)
    write_service_worker(root)

    page.evaluate("navigator.serviceWorker.getRegistration().then((r) => r.update())")  # what the app does hourly
    button = page.get_by_role("button", name="Reload to update")
    button.wait_for(timeout=60_000)
    # While the new build waits, this page still gets the files of its own build only.
    assert page.evaluate("fetch('app.css').then(r => r.text())") == old_css
    page.screenshot(path=str(artifacts / "pwa-update-phone.png"))

    button.click()
    page.wait_for_function("() => getComputedStyle(document.documentElement).getPropertyValue('--offgrid-build').trim() === '2'")
    app.wait_ready()
    assert page.evaluate(CONTROLLED)
    assert page.evaluate("fetch('app.css').then(r => r.text())") == new_css
    assert page.get_by_role("button", name="Reload to update").count() == 0
