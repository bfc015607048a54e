"""wllama itself, without the app, on the site's engine builds: one page per
configuration loads the model with extra loadModel options (KV cache type, flash
attention...) and times greedy completions (llama.cpp's own timings). Used to find
where decode time went (issue 11): compare with bench/engine_builds.py, which
measures the same through the app.

    python3 build.py
    flock /tmp/offgrid-cpu.lock python3 bench/wllama_probe/probe.py \\
      '[["simd", 1, 6, {}], ["simd", 1, 6, {"cache_type_k": "q8_0", "cache_type_v": "q8_0"}],
        ["simd", 1, 6, {"compat": true}]]' [runs] [tokens]

Each configuration is [build, threads, rep, options]: build is a folder of dist/engine
("stock" is dist/vendor/wllama), rep repeats a 43-token paragraph in the prompt (6: 256
tokens, 0: 3 tokens), options go to loadModel; "compat": true runs the build's compat
flavour (asyncify, wasm32) by hiding JSPI from the page. Results: printed, and
bench/results/<date>-wllama-probe.json.
"""

from __future__ import annotations

import functools
import http.server
import json
import statistics
import sys
import threading
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import ARGS, CHROMIUM, ROOT, write  # noqa: E402

HERE = Path(__file__).resolve().parent
MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"


class Files(http.server.SimpleHTTPRequestHandler):
    """dist/engine/<build>, the stock wllama as /stock, the model, and the probe page; isolated."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm", ".js": "text/javascript"}

    def translate_path(self, path: str) -> str:
        path = urllib.parse.urlparse(path).path
        dist = ROOT / "dist"
        if path == "/probe.html":
            return str(HERE / "probe.html")
        if path.startswith("/model/"):
            return str(dist / "models" / path.removeprefix("/model/"))
        if path.startswith("/stock/"):
            return str(dist / "vendor" / "wllama" / path.removeprefix("/stock/"))
        return str(dist / "engine" / path.lstrip("/"))

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args) -> None:
        pass


def main() -> None:
    from playwright.sync_api import sync_playwright

    configs = json.loads(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Files))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://localhost:{server.server_address[1]}/probe.html"
    results, rows = [], ["| build | threads | prompt tokens | options | prefill t/s | decode t/s (runs) |", "|---|---|---|---|---|---|"]
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for build, threads, rep, opts in configs:
                opts = dict(opts)
                compat = opts.pop("compat", False)
                rtt = opts.pop("rtt", False)  # also time wllama's per-token worker round trip
                ctx = browser.new_context()
                page = ctx.new_page()
                q = {"variant": build, "threads": threads, "model": f"/model/{MODEL}", "runs": runs, "n": n, "rep": rep,
                     "opts": json.dumps(opts), **({"compat": 1} if compat else {}), **({"rtt": 1} if rtt else {})}
                page.goto(f"{url}?{urllib.parse.urlencode(q)}")
                page.wait_for_function("window.__result !== null", timeout=900_000)
                r = page.evaluate("window.__result")
                if rtt:
                    print(page.inner_text("#log"), flush=True)
                ctx.close()
                label = build + (", compat flavour" if compat else "")
                if not r.get("ok"):
                    print(label, threads, rep, opts, "FAILED", r.get("error", "")[:300], flush=True)
                    continue
                pp = [x["timings"]["prompt_per_second"] for x in r["runs"]]
                dd = [x["timings"]["predicted_per_second"] for x in r["runs"]]
                results.append({"build": label, "threads": threads, "rep": rep, "options": opts, "runs": r["runs"]})
                rows.append(f"| {label} | {threads} | {r['runs'][0]['timings']['prompt_n']} | `{json.dumps(opts)}` "
                            f"| {statistics.median(pp):.1f} | {statistics.median(dd):.1f} ({', '.join(f'{x:.1f}' for x in dd)}) |")
                print(rows[-1], flush=True)
            browser.close()
    finally:
        server.shutdown()
    write("wllama-probe", {"model": MODEL, "configs": results}, "\n".join(rows))


if __name__ == "__main__":
    main()
