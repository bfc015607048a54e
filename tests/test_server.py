"""The dev server serves the built site and nothing else (issue 2, point 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from offgrid_dev.server import create_app, main


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_text("<!doctype html><title>t</title>")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.wasm").write_bytes(b"\0asm" + bytes(60))
    (tmp_path / "m.mjs").write_text("export {}")
    (tmp_path / "w.gguf").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "manifest.webmanifest").write_text("{}")
    (tmp_path.parent / "secret.txt").write_text("outside the site")
    return tmp_path


@pytest.fixture
def client(site: Path):
    return create_app(site).test_client()


def test_index_and_isolation_headers(client):
    r = client.get("/")
    assert r.status_code == 200 and b"<title>t</title>" in r.data
    assert r.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert r.headers["Cross-Origin-Embedder-Policy"] == "require-corp"


@pytest.mark.parametrize(
    "path, mime",
    [("/sub/a.wasm", "application/wasm"), ("/m.mjs", "text/javascript"),
     ("/w.gguf", "application/octet-stream"), ("/manifest.webmanifest", "application/manifest+json")],
)
def test_content_types(client, path, mime):
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["Content-Type"].split(";")[0] == mime


def test_range_requests(client, site):
    data = (site / "w.gguf").read_bytes()
    r = client.get("/w.gguf", headers={"Range": "bytes=100-299"})
    assert r.status_code == 206
    assert r.data == data[100:300]
    assert r.headers["Content-Range"] == f"bytes 100-299/{len(data)}"
    assert r.headers["Accept-Ranges"] == "bytes"


def test_no_directory_listing(client):
    assert client.get("/sub/").status_code == 404
    assert client.get("/sub").status_code == 404


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/sub/../../secret.txt", "/..%2fsecret.txt"])
def test_path_traversal_refused(client, path):
    r = client.get(path)
    assert r.status_code == 404
    assert b"outside the site" not in r.data


def test_no_isolation_mode(site):
    r = create_app(site, isolate=False).test_client().get("/")
    assert "Cross-Origin-Embedder-Policy" not in r.headers


def test_binds_loopback_by_default(monkeypatch, site):
    seen = {}
    monkeypatch.setattr("flask.Flask.run", lambda self, host, port, **kw: seen.update(host=host, port=port))
    main(["--root", str(site)])
    assert seen == {"host": "127.0.0.1", "port": 8000}


def test_content_security_policy_header_matches_the_page(client):
    from offgrid_dev.server import CSP, HEADER_CSP

    r = client.get("/")
    assert r.headers["Content-Security-Policy"] == HEADER_CSP == CSP + "; frame-ancestors 'none'"
    assert "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP and "'wasm-unsafe-eval'" in CSP
    # Every response carries it (workers take their policy from their own response).
    assert client.get("/m.mjs").headers["Content-Security-Policy"] == HEADER_CSP
    # static/index.html repeats it as a <meta>, for static hosts that send no header.
    page = (Path(__file__).resolve().parents[1] / "static" / "index.html").read_text()
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
