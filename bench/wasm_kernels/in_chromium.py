"""Run emscripten single-file benchmarks in headless Chromium and print what they print."""
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium")
    for js in sys.argv[1:]:
        page = browser.new_page()
        done = []
        page.on("console", lambda m: (print("chromium:", m.text), done.append(1) if "q8_0 x q8_0 offgrid" in m.text
                                       or ("q8_0 x q8_0 upstream" in m.text and "simd." in js) else None))
        page.set_content("<html><body></body></html>")
        page.add_script_tag(content=Path(js).read_text())
        page.wait_for_function("() => true")
        page.wait_for_timeout(100)
        while not done:
            page.wait_for_timeout(200)
        page.close()
    browser.close()
