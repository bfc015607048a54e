"""Shared fixtures: the built site and a live dev server for it."""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"


@pytest.fixture(scope="session")
def dist() -> Path:
    """The site as `python3 build.py` made it (the README's test command builds first)."""
    if not (DIST / "models" / "catalog.json").exists():
        from offgrid_dev.site import assemble

        assemble(DIST, ROOT / ".cache")
    return DIST


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The real Flask dev server in a thread, on a free loopback port."""

    def __init__(self, root: Path, isolate: bool = True) -> None:
        from offgrid_dev.server import create_app

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request is noise
        self.app = create_app(root, isolate=isolate)
        self.port = _free_port()
        self.url = f"http://localhost:{self.port}"
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()


@pytest.fixture(scope="session")
def server(dist: Path):
    s = LiveServer(dist)
    yield s
    s.close()


@pytest.fixture
def serve_folder():
    """Serve any folder (say a copy of dist/ that a test redeploys) for one test."""
    servers: list[LiveServer] = []

    def start(root: Path, isolate: bool = True) -> LiveServer:
        servers.append(LiveServer(root, isolate))
        return servers[-1]

    yield start
    for s in servers:
        s.close()
