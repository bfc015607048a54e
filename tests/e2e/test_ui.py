"""Issue 9, end to end: Markdown answers that no text can attack, the page's
Content-Security-Policy, the phone layout, the cold start and accessibility.
Real Chromium, real site, real engine and model; nothing is faked. Answers
that the model cannot be made to write are drawn through the view's real
render path (web/page/view.js -> web/page/markdown.js -> marked + DOMPurify)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xss_payloads import ALLOWED, PAYLOADS

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
GREEDY = {"temperature": 0, "seed": 1, "max_tokens": 48}

# Runs before any page script (through the DevTools protocol, so the CSP does
# not apply to it): records every CSP violation the page reports.
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) =>
  window.__violations.push({ directive: e.effectiveDirective, blocked: e.blockedURI }));
"""

# What a rendered message may contain; returns what it must not.
AUDIT = """([el, allowed]) => {
  const ok = new Set(allowed), bad = [];
  for (const n of el.querySelectorAll('*')) {
    if (!ok.has(n.tagName)) bad.push(n.tagName);
    for (const a of n.attributes) if (/^on|^style$|^src|^srcdoc$|^action$|^formaction$/i.test(a.name)) bad.push(`${n.tagName}@${a.name}`);
  }
  for (const a of el.querySelectorAll('a[href]')) {
    const href = a.getAttribute('href');
    if (!/^(https?:|mailto:)/i.test(href) || a.rel !== 'noopener noreferrer' || a.target !== '_blank') bad.push(`a[href=${href}]`);
  }
  return bad;
}"""

# Draw an answer through the view's own path, as the controller would.
SHOW_ANSWER = """async ([key, text]) => {
  const view = await import('/js/page/view.js');
  view.addMessage(key, 'assistant', text, true);
  return document.querySelector(`.msg[data-key="${key}"] .text`).textContent;
}"""

# Stream an answer through the view as the controller does: a few characters a token (appendMessage),
# a frame between tokens; returns the message as drawn once all of it is in, before it is ended.
STREAM_ANSWER = """async ([key, text]) => {
  const view = await import('/js/page/view.js');
  view.addMessage(key, 'assistant', '', false);
  for (let i = 0; i < text.length; i += 5) {
    view.appendMessage(key, text.slice(i, i + 5));
    await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  }
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  return document.querySelector(`.msg[data-key="${key}"] .text`).innerHTML;
}"""
END_ANSWER = """async ([key, text]) => {
  const view = await import('/js/page/view.js');
  view.updateMessage(key, text, true, '');
  return document.querySelector(`.msg[data-key="${key}"] .text`).innerHTML;
}"""

PHONE = {"width": 360, "height": 640}
DESKTOP = {"width": 1280, "height": 800}

LAYOUT_SAMPLE = """## Layout check
A long code line and a wide table must scroll inside themselves:

```python
print("a very long line of code that is much wider than any phone screen could ever show without scrolling sideways")
```

| column one | column two | column three | column four | column five |
|---|---|---|---|---|
| a fairly long cell | another long cell | yet another cell | more text here | the last cell |

- `inline code` and **bold** and a [safe link](https://example.com)
"""


def _outside(app) -> list[str]:
    return [u for u in app.requests if not (u.startswith(app.base_url + "/") or u.startswith(("blob:", "data:")))]


def _audit(page, selector: str) -> list[str]:
    return [bad for el in page.locator(selector).element_handles() for bad in page.evaluate(AUDIT, [el, sorted(ALLOWED)])]


def _axe(page, screen: str) -> list:
    """Serious and critical axe-core violations on the page as it is now."""
    if not page.evaluate("typeof window.axe === 'object'"):
        # page.add_script_tag would add an inline <script>, which the page's CSP
        # (rightly) refuses; evaluating the file goes through DevTools instead.
        page.evaluate(AXE.read_text() + "\n;0")
    found = page.evaluate("""async () => (await axe.run(document, { resultTypes: ['violations'] })).violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }))""")
    return [(screen, v) for v in found]


def test_csp_is_sent_and_enforced_and_the_chat_works_under_it(app):
    app.page.add_init_script(WATCH)
    response = app.page.goto(app.base_url + "/")
    header = response.headers["content-security-policy"]
    meta = app.page.locator('meta[http-equiv="Content-Security-Policy"]').get_attribute("content")
    assert header == meta + "; frame-ancestors 'none'"
    for directive in ("script-src 'self' 'wasm-unsafe-eval'", "connect-src 'self'", "worker-src 'self' blob:",
                      "object-src 'none'", "base-uri 'none'", "style-src 'self'"):
        assert directive in meta
    assert "unsafe-inline" not in header and "'unsafe-eval'" not in header
    app.wait_ready()

    # The whole flow runs under the policy: Pyodide, the engine worker (its own
    # header), wllama's blob: workers and a streamed answer, with no violation.
    assert app.page.evaluate("crossOriginIsolated")
    app.ask("Write a Markdown list of three fruits.")
    app.page.wait_for_function("() => document.querySelectorAll('.msg.assistant').length === 1")
    app.wait_ready()
    assert app.answer_text().strip()
    assert app.page.evaluate("window.__violations") == []

    # An inline script injected into the page is refused and reported; so is eval.
    app.page.evaluate("""() => { const s = document.createElement('script');
      s.textContent = 'window.__xss = 1'; document.body.append(s); }""")
    app.page.wait_for_function("() => window.__violations.length > 0", timeout=5000)
    assert {"directive": "script-src-elem", "blocked": "inline"} in app.page.evaluate("window.__violations")
    # A string timer is eval by another name (DevTools' own evaluate is exempt, the page is not).
    app.page.evaluate("setTimeout('window.__xss = 2', 0)")
    app.page.wait_for_function("() => window.__violations.some((v) => v.blocked === 'eval')", timeout=5000)
    assert app.page.evaluate("window.__xss") is None
    assert _outside(app) == []


def test_payloads_rendered_as_answers_stay_inert(app):
    app.page.add_init_script(WATCH)
    app.open()
    app.wait_ready()
    app.requests.clear()
    for i, payload in enumerate(PAYLOADS):
        app.page.evaluate(SHOW_ANSWER, [1000 + i, payload])
    app.page.wait_for_timeout(500)  # time for any handler, load or fetch to fire
    assert app.page.locator(".msg.assistant").count() == len(PAYLOADS)
    assert _audit(app.page, ".msg.assistant .text") == []
    assert app.page.evaluate("window.__xss") is None
    # The sanitiser did the work: the CSP never had to block anything, and no request was made.
    assert app.page.evaluate("window.__violations") == []
    assert app.requests == []
    # Markup is shown as text to read, images as their alt text.
    assert "<script>window.__xss=1</script>" in app.page.locator('.msg[data-key="1000"]').text_content()
    assert app.page.locator('.msg[data-key="1010"] .img-alt').text_content() == "[image: tracker]"
    # A safe link keeps its target and opens without an opener.
    app.page.evaluate(SHOW_ANSWER, [1100, "[safe](https://example.com) and <mailto:a@example.com>"])
    assert _audit(app.page, '.msg[data-key="1100"] .text') == []
    assert app.page.locator('.msg[data-key="1030"] a').count() == 0  # raw HTML is text, not a link
    link = app.page.locator('.msg[data-key="1100"] a').first
    assert link.get_attribute("href") == "https://example.com"
    assert link.get_attribute("rel") == "noopener noreferrer" and link.get_attribute("target") == "_blank"


def test_payloads_streamed_as_answers_stay_inert_and_end_as_rendered_whole(app):
    # While an answer streams, its finished blocks are rendered once and its open tail again each
    # frame (MarkdownStream): the same sanitiser, and with all the text in, the same markup as the
    # whole answer rendered at once, which is what the ended answer shows.
    app.page.add_init_script(WATCH)
    app.open()
    app.wait_ready()
    app.requests.clear()
    for i, text in enumerate([*PAYLOADS, LAYOUT_SAMPLE]):
        key = 3000 + i
        streamed = app.page.evaluate(STREAM_ANSWER, [key, text])
        assert _audit(app.page, f'.msg[data-key="{key}"] .text') == [], text
        whole = app.page.evaluate(END_ANSWER, [key, text])
        assert streamed == whole, text
        assert _audit(app.page, f'.msg[data-key="{key}"] .text') == [], text
    app.page.wait_for_timeout(500)
    assert app.page.evaluate("window.__xss") is None
    assert app.page.evaluate("window.__violations") == []
    assert app.requests == []


def test_payloads_typed_as_questions_stay_plain_text(app):
    app.page.add_init_script(WATCH)
    app.open()
    app.wait_ready()
    app.requests.clear()
    for i, payload in enumerate(PAYLOADS):
        app.ask(payload)
        app.page.wait_for_function(f"() => document.querySelectorAll('.msg.user').length === {i + 1}")
        # No need for whole answers: stop each once it has begun (it still renders as Markdown).
        app.page.wait_for_function("() => document.querySelector('.msg.assistant:last-child .text')?.textContent"
                                   " || document.querySelector('[role=status]').textContent === 'Ready'")
        app.stop_if_running()
        app.wait_ready()
    users = app.page.locator(".msg.user .text")
    assert users.all_text_contents() == PAYLOADS
    assert app.page.evaluate("[...document.querySelectorAll('.msg.user .text')].every((t) => t.childElementCount === 0)")
    assert _audit(app.page, ".msg.assistant .text") == []
    app.page.wait_for_timeout(300)
    assert app.page.evaluate("window.__xss") is None
    assert app.page.evaluate("window.__violations") == []
    assert _outside(app) == []


def test_the_model_echoing_payloads_is_shown_inert(app):
    app.page.add_init_script(WATCH)
    app.open()
    app.wait_ready()
    echoed = []
    for payload in ('<img src=x onerror="window.__xss=1">', '<iframe src="javascript:window.__xss=1"></iframe>',
                    "<script>window.__xss=1</script>"):
        done = app.page.evaluate("([q, s]) => offgrid.call('Chat', { messages: [{ role: 'user', content: q }], sampling: s })",
                                 [f"Repeat exactly: {payload}", GREEDY])
        assert done["type"] == "GenerateEnd", done
        echoed.append((payload, done["text"]))
    few_shot = "Input: hello world\nOutput: hello world\nInput: <b>hi</b>\nOutput: <b>hi</b>\nInput: [click](javascript:window.__xss=1)\nOutput:"
    done = app.page.evaluate("(p) => offgrid.call('Complete', { prompt: p, sampling: { temperature: 0, seed: 1, max_tokens: 24, stop: ['\\n'] } })", few_shot)
    echoed.append(("[click](javascript:window.__xss=1)", done["text"]))
    # The model really wrote attacker markup (greedy, so this is stable for one model).
    assert sum(p in text for p, text in echoed) >= 2, echoed
    for i, (payload, text) in enumerate(echoed):
        shown = app.page.evaluate(SHOW_ANSWER, [2000 + i, text])
        if payload in text and not payload.startswith("["):
            assert payload in shown  # the markup is on screen as text
    app.page.wait_for_timeout(500)
    assert _audit(app.page, ".msg.assistant .text") == []
    assert app.page.evaluate("window.__xss") is None and app.page.evaluate("window.__violations") == []
    assert _outside(app) == []


def test_question_typed_during_cold_start_is_sent_when_ready(browser, server, artifacts):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, color_scheme="dark")
    page = context.new_page()
    page.set_default_timeout(180_000)
    held = []
    # Hold Python's runtime back until the question is in, so it is typed before Python is up.
    page.route("**/vendor/pyodide/pyodide.asm.wasm", lambda route: held.append(route))
    page.goto(server.url + "/")
    page.wait_for_function("() => document.getElementById('progress-detail').textContent.includes('MB')"
                           " || document.querySelector('[role=status]').textContent.includes('Python')")
    box = page.get_by_role("textbox", name="Message")
    box.fill("Name one planet.")
    page.get_by_role("button", name="Send", exact=True).press("Enter")
    queued = page.locator("#queued")
    assert queued.is_visible() and "Name one planet." in queued.text_content() and "ready" in queued.text_content()
    assert page.locator(".msg").count() == 0 and box.input_value() == ""
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "ui-booting-phone-dark.png"))
    assert held, "Pyodide's runtime was never requested"
    held[0].continue_()
    page.wait_for_function("() => document.querySelectorAll('.msg.assistant').length === 1")
    page.wait_for_function("() => document.querySelector('[role=status]').textContent === 'Ready'")
    assert page.locator(".msg.user .text").text_content() == "Name one planet."
    assert page.locator(".msg.assistant .text").text_content().strip()
    assert not queued.is_visible()
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screens_are_accessible_and_fit_a_phone(browser, server, artifacts, scheme, open_app):
    context = browser.new_context(viewport=DESKTOP, color_scheme=scheme)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = context.new_page()
    page.set_default_timeout(180_000)
    held = []
    page.route("**/vendor/pyodide/pyodide.asm.wasm", lambda route: held.append(route))
    page.goto(server.url + "/")
    page.wait_for_function("() => document.querySelector('[role=status]').textContent.includes('Python')")
    found = _axe(page, "booting")
    held[0].continue_()
    ready = "() => document.querySelector('[role=status]').textContent === 'Ready'"
    page.wait_for_function(ready)
    found += _axe(page, "ready")

    # Keyboard: Tab reaches the message box, Send and the diagnostics panel, with a visible outline.
    page.locator("body").focus()
    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("[document.activeElement.id || document.activeElement.tagName, getComputedStyle(document.activeElement).outlineStyle]"))
    ids = [r[0] for r in reached]
    assert {"message", "send", "SUMMARY"} <= set(ids), ids
    assert all(style != "none" for name, style in reached if name in ("message", "send", "SUMMARY")), reached

    box = page.get_by_role("textbox", name="Message")
    box.fill("Write a short Markdown answer: a heading, a list of three fruits, and a small Python code block.")
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_function("() => document.querySelectorAll('.msg.assistant').length === 1")
    page.wait_for_function(ready)
    assert page.locator(".msg.assistant .text > *").count() >= 1
    found += _axe(page, "answer")
    page.screenshot(path=str(artifacts / f"ui-desktop-{scheme}.png"))

    # A real error: a second question while an answer is still being written.
    box.fill("Write a very long story about a lighthouse keeper, at least 20 paragraphs.")
    box.press("Enter")
    page.wait_for_function("() => document.querySelector('[role=status]').textContent !== 'Ready'")
    box.fill("Another question")
    box.press("Enter")
    assert page.get_by_role("alert").is_visible()
    found += _axe(page, "error")
    open_app(page, server.url).stop_if_running()
    page.wait_for_function(ready)

    page.get_by_text("Model & diagnostics").click()
    page.wait_for_function("() => document.getElementById('diagnostics-body').children.length > 0")
    found += _axe(page, "diagnostics")
    page.get_by_text("Model & diagnostics").click()
    page.get_by_role("button", name="Dismiss error").click()
    box.fill("")

    # Phone: a long code line and a wide table scroll inside themselves, never the page.
    page.set_viewport_size(PHONE)
    page.evaluate(SHOW_ANSWER, [3000, LAYOUT_SAMPLE])
    page.locator('.msg[data-key="3000"] button.copy').click()
    assert page.evaluate("navigator.clipboard.readText()").startswith('print("a very long line')
    found += _axe(page, "phone")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.evaluate("[...document.querySelectorAll('.msg')].every((m) => m.getBoundingClientRect().right <= innerWidth)")
    assert page.evaluate("document.querySelector('.msg[data-key=\"3000\"] .code-scroll').scrollWidth > 360")
    small = page.evaluate("""[...document.querySelectorAll('button, select, textarea, summary')]
      .filter((e) => e.offsetParent && e.getBoundingClientRect().height < 44).map((e) => e.id || e.className || e.tagName)""")
    assert small == [], f"touch targets under 44px: {small}"
    # The message box sits inside the dynamic viewport (it follows the on-screen keyboard).
    assert page.evaluate("document.getElementById('message').getBoundingClientRect().bottom <= innerHeight")
    page.locator(".log").evaluate("(el) => { el.scrollTop = el.scrollHeight; }")
    page.screenshot(path=str(artifacts / f"ui-phone-{scheme}.png"))
    # The diagnostics panel on the phone: its longest row (the engine build's name) wraps, never scrolls the page.
    page.get_by_text("Model & diagnostics").click()
    page.wait_for_function("() => document.getElementById('diagnostics-body').textContent.includes('WASM SIMD kernels')")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.evaluate("document.getElementById('diagnostics-body').getBoundingClientRect().right <= innerWidth")
    page.screenshot(path=str(artifacts / f"ui-phone-diagnostics-{scheme}.png"), full_page=True)
    page.get_by_text("Model & diagnostics").click()
    assert found == [], found
    context.close()
