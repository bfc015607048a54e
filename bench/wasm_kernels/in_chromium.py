"""Run emscripten single-file benchmarks in headless Chromium and print what they print."""
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium")
    for js in sys.argv[1:]:
        page = browser.new_page()
        done = []  # bench.c prints the q8_0 "offgrid" line last
        page.on("console", lambda m: (print("chromium:", m.text), "q8_0 x q8_0 offgrid" in m.text and done.append(1)))
        page.set_content("<html><body></body></html>")
        page.add_script_tag(content=Path(js).read_text())
        while not done:
            page.wait_for_timeout(200)
        page.close()
    browser.close()
