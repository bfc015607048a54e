"""E2E fixtures: Debian's Chromium driven by pytest-playwright against the
real built site, real engine and real model. Nothing is mocked."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-results"
BOOT_TIMEOUT_MS = 180_000  # cold boot: Pyodide, the engine, a 98 MB model


def pytest_collection_modifyitems(items):
    # The hook sees the whole session's items: mark only this folder's.
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-unsafe-webgpu",
        ],
    }


@pytest.fixture
def context(browser_type, browser_type_launch_args, browser_context_args, tmp_path):
    """Each test's browser has a profile on disk, as most people's browsers have.
    Incognito windows (IndexedDB kept in memory) are covered by the tests that
    use `browser.new_context()`, e.g. test_weight_store's incognito test."""
    ctx = browser_type.launch_persistent_context(tmp_path / "profile", **browser_type_launch_args, **browser_context_args)
    yield ctx
    ctx.close()


@pytest.fixture
def profile(browser_type, browser_type_launch_args, tmp_path):
    """Open more browsers with profiles on disk: `profile(viewport=..., is_mobile=True)`."""
    contexts = []

    def make(**kwargs):
        contexts.append(browser_type.launch_persistent_context(
            tmp_path / f"profile-{len(contexts)}", **browser_type_launch_args, **kwargs))
        return contexts[-1]

    yield make
    for c in contexts:
        c.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


class App:
    """The page as a person uses it, through its accessible names."""

    def __init__(self, page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.requests: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))

    @property
    def status(self):
        return self.page.get_by_role("status")

    @property
    def box(self):
        return self.page.get_by_role("textbox", name="Message")

    @property
    def log(self):
        return self.page.get_by_role("log")

    def button(self, name: str):
        return self.page.get_by_role("button", name=name, exact=True)

    def open(self) -> None:
        self.page.goto(self.base_url + "/")

    def wait_ready(self, timeout_ms: int = BOOT_TIMEOUT_MS) -> float:
        t0 = time.monotonic()
        self.page.wait_for_function(
            "() => { const s = document.querySelector('[role=status]').textContent;"
            " if (s.startsWith('Error')) throw new Error(s); return s === 'Ready'; }",
            timeout=timeout_ms,
        )
        return time.monotonic() - t0

    def ask(self, question: str) -> None:
        self.box.fill(question)
        self.button("Send").click()

    def stop_if_running(self) -> None:
        """Press Stop if an answer is still being written. Checked and clicked in one
        step in the page: a fast engine can finish between a separate check and click."""
        self.page.evaluate("() => { const b = document.getElementById('stop'); if (!b.disabled) b.click(); }")

    def answer_text(self) -> str:
        return self.page.locator(".msg.assistant .text").last.text_content() or ""


@pytest.fixture
def app(page, server) -> App:
    page.set_default_timeout(BOOT_TIMEOUT_MS)
    return App(page, server.url)


@pytest.fixture
def open_app():
    """An App on a page of one's own context (offline, phone viewport, ...)."""

    def make(page, url: str) -> App:
        page.set_default_timeout(BOOT_TIMEOUT_MS)
        return App(page, url)

    return make


@pytest.fixture
def hooked(dist, tmp_path, serve_folder):
    """Serve a copy of the site whose engine worker has test hooks on: `hooked(no_jspi=True)`
    (offgrid_dev/site_variants.py; the shipped site has none, and no URL switches them on)."""
    from offgrid_dev.site_variants import make_hooked_site

    count = 0

    def make(isolate: bool = True, **hooks):
        nonlocal count
        count += 1
        return serve_folder(make_hooked_site(dist, tmp_path / f"hooked-{count}", **hooks), isolate=isolate)

    return make


@pytest.fixture
def site(dist, tmp_path, serve_folder):
    """A copy of the built site that a test may redeploy (weights hard-linked, not copied)."""
    root = tmp_path / "site"
    shutil.copytree(dist, root, ignore=shutil.ignore_patterns("*.gguf"))
    for gguf in (dist / "models").rglob("*.gguf"):  # models/<file> and models/<sha256 prefix>/<file>
        os.link(gguf, root / gguf.relative_to(dist))
    return root, serve_folder(root)


@pytest.fixture
def fresh(browser_type, browser_type_launch_args, open_app, tmp_path):
    """Open the app at a URL in a new browser profile on disk, without service workers
    (so every chunk request reaches the network): `fresh(server.url)`."""
    contexts = []

    def make(url: str, query: str = ""):
        context = browser_type.launch_persistent_context(
            tmp_path / f"profile-{len(contexts)}", **browser_type_launch_args, service_workers="block")
        contexts.append(context)
        page = context.pages[0] if context.pages else context.new_page()
        app = open_app(page, url)
        app.base_url = url
        app.query = query
        return app

    yield make
    for c in contexts:
        c.close()
