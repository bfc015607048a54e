"""Issue 5, end to end: conversations that last, a sliding window over a small
context, and prompt-cache reuse, with the real engine and model."""

from __future__ import annotations

import time

COLLECT_FRAMES = """() => { window.__frames = []; offgridDebug.listen((f) => { if (f.type !== 'Delta') window.__frames.push(f); }); }"""


def settings(app, **values) -> None:
    """Fill the settings form by its labels and save."""
    panel = app.page.locator("details.panel", has_text="Settings")
    if not panel.evaluate("el => el.open"):
        panel.locator("summary").click()
    labels = {"n_ctx": "Context size", "max_tokens": "Max tokens", "temperature": "Temperature", "system_prompt": "System prompt"}
    for name, value in values.items():
        app.page.get_by_label(labels[name], exact=True).fill(str(value))
    app.button("Save settings").click()


def answers(app) -> int:
    return app.page.locator(".msg.assistant").count()


def ask_and_wait(app, question: str) -> str:
    before = answers(app)
    app.ask(question)
    app.page.wait_for_function(f"() => document.querySelectorAll('.msg.assistant').length > {before}")
    app.wait_ready()
    return app.answer_text()


def test_thirty_turns_past_a_512_token_context_keep_answering(app):
    app.open()
    app.wait_ready()
    app.page.evaluate(COLLECT_FRAMES)
    settings(app, n_ctx=512, max_tokens=24, temperature=0)
    app.page.wait_for_function("() => offgrid.state().state === 'ready' && (window.__frames.some((f) => f.type === 'ModelLoaded'))")
    app.wait_ready()
    assert app.page.evaluate("window.__frames.filter((f) => f.type === 'ModelLoaded').at(-1).n_ctx") == 512
    for i in range(30):
        text = ask_and_wait(app, f"Turn {i}: tell me one short fact about the number {i}.")
        assert text.strip(), f"turn {i} got no answer"
    frames = app.page.evaluate("window.__frames")
    errors = [f for f in frames if f["type"] == "EngineError"]
    assert errors == []
    ends = [f for f in frames if f["type"] == "GenerateEnd"]
    assert len(ends) == 30
    # The prompt plus its answer always fit the 512-token KV cache.
    assert all(e["prompt_tokens"] + e["completion_tokens"] <= 512 for e in ends), ends
    assert max(e["prompt_tokens"] for e in ends) > 200  # the window really filled up
    # Earlier turns are marked as outside the model's view; the newest are not.
    assert app.page.locator(".msg.out-of-view").count() > 0
    assert app.page.locator(".msg").last.evaluate("el => !el.classList.contains('out-of-view')")
    state = app.page.evaluate("offgrid.state()")
    assert state["window_start"] > 0 and len(state["turns"]) == 60


def test_conversations_titles_and_messages_survive_a_reload(app):
    app.open()
    app.wait_ready()
    settings(app, max_tokens=48)  # short answers: this test is about storage
    ask_and_wait(app, "What colour is the sky on a clear day?")
    first_answer = app.answer_text()
    app.button("Conversations").click()
    app.button("New chat").click()
    ask_and_wait(app, "Name a large animal.")
    app.page.once("dialog", lambda d: d.accept("Animals"))
    app.button("Conversations").click()
    app.button("Rename").click()
    app.page.wait_for_function("() => [...document.querySelectorAll('#conversations button')].some((b) => b.textContent === 'Animals')")

    app.page.reload()
    app.wait_ready()
    titles = app.page.locator("#conversations button.conv").all_text_contents()
    assert titles == ["Animals", "What colour is the sky on a clear day?"]
    # The newest conversation is open, with its messages.
    assert app.page.locator(".msg.user .text").first.text_content() == "Name a large animal."
    app.button("Conversations").click()
    app.page.get_by_role("button", name="What colour is the sky on a clear day?").click()
    assert app.page.locator(".msg.user .text").first.text_content() == "What colour is the sky on a clear day?"
    assert app.page.locator(".msg.assistant .text").first.text_content() == first_answer


def test_closing_the_page_mid_answer_keeps_the_partial_answer_marked_incomplete(app, page, server):
    app.open()
    app.wait_ready()
    app.ask("Write a very long story about a lighthouse keeper and a storm.")
    app.page.wait_for_function("() => (document.querySelector('.msg.assistant:last-child .text')?.textContent ?? '').length > 80")
    seen_a_second_before = app.answer_text()
    time.sleep(1.0)
    app.page.close()

    again = page.context.new_page()
    again.goto(server.url + "/")
    again.wait_for_function("() => document.querySelector('[role=status]').textContent === 'Ready'", timeout=180_000)
    last = again.locator(".msg.assistant").last
    saved = last.locator(".text").text_content()
    assert saved.startswith(seen_a_second_before[:40])
    assert len(saved) >= len(seen_a_second_before), "more than a second of the answer was lost"
    assert last.locator(".note").text_content() == "Interrupted"
    turn = again.evaluate("offgrid.state().turns.at(-1)")
    assert (turn["complete"], turn["end_reason"]) == (False, "interrupted")
    assert again.get_by_role("button", name="Continue", exact=True).is_visible()


def test_a_follow_up_only_evaluates_the_new_turn(app):
    app.open()
    app.wait_ready()
    settings(app, temperature=0, max_tokens=48)
    for q in ("Name three rivers in Europe.", "Which of them is the longest?", "Which countries does it flow through?"):
        ask_and_wait(app, q)
    app.page.evaluate(COLLECT_FRAMES)
    question = "Thank you. Now name one river in Africa."
    ask_and_wait(app, question)
    frames = app.page.evaluate("window.__frames")
    count = next(f for f in frames if f["type"] == "TokenCount")
    end = next(f for f in frames if f["type"] == "GenerateEnd")
    evaluated = count["n_tokens"] - count["cached_tokens"]
    # The history (over 100 tokens) came from the cache; only the new turn was evaluated:
    # the question (~10 tokens) plus the chat template's markers around it and the last answer's end.
    assert count["n_tokens"] > 100
    assert evaluated <= 40, count
    # ...and the answer itself reused everything the count evaluated.
    assert end["prompt_tokens"] == count["n_tokens"]
    assert end["prompt_tokens"] - end["cached_tokens"] <= 2, end
