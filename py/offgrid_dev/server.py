"""The dev server: serves the built site and nothing else.

Static files only, from one folder. It sends COOP/COEP so the page is
cross-origin isolated (WASM threads need SharedArrayBuffer), the right types
for .wasm/.mjs/.gguf/.webmanifest, honours HTTP Range (the weight store
downloads models in chunks), lists no directories and refuses any path
outside the folder.
"""

from __future__ import annotations

import argparse
import mimetypes
from pathlib import Path

from flask import Flask, abort, send_from_directory
from werkzeug.security import safe_join

TYPES = {
    ".wasm": "application/wasm",
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".gguf": "application/octet-stream",
    ".webmanifest": "application/manifest+json",
    ".whl": "application/zip",
    ".json": "application/json",
}
ISOLATION = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
# What the page may load and run. Everything comes from this origin; WebAssembly
# needs 'wasm-unsafe-eval' (not 'unsafe-eval'); wllama starts its workers from
# blob: URLs. static/index.html carries the same policy in a <meta> (minus
# frame-ancestors, which only a header can set); tests check they agree.
CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self' blob:",
    "connect-src 'self'",
    "img-src 'self'",
    "style-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-src 'none'",
])
HEADER_CSP = CSP + "; frame-ancestors 'none'"


def create_app(root: Path, isolate: bool = True) -> Flask:
    """`isolate=False` drops COOP/COEP, to test the single-thread path."""
    root = Path(root).resolve()
    app = Flask(__name__, static_folder=None)
    for ext, mime in TYPES.items():
        mimetypes.add_type(mime, ext)

    @app.get("/", defaults={"path": "index.html"})
    @app.get("/<path:path>")
    def serve(path: str):
        full = safe_join(str(root), path)
        if full is None or not Path(full).is_file():
            abort(404)  # also for directories: no listings
        # conditional=True gives ETag/Last-Modified and 206 answers to Range requests.
        resp = send_from_directory(root, path, conditional=True, max_age=0)
        ext = Path(path).suffix
        if ext in TYPES:
            resp.headers["Content-Type"] = TYPES[ext]
        return resp

    @app.after_request
    def headers(resp):
        if isolate:
            resp.headers.update(ISOLATION)
        resp.headers["Accept-Ranges"] = "bytes"
        resp.headers["Content-Security-Policy"] = HEADER_CSP
        return resp

    return app


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Serve the built Offgrid site.")
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[2] / "dist"))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--no-isolation", action="store_true", help="omit COOP/COEP (single-thread WASM)")
    args = ap.parse_args(argv)
    app = create_app(Path(args.root), isolate=not args.no_isolation)
    print(f"Offgrid: http://localhost:{args.port}  (serving {args.root})", flush=True)
    app.run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
