"""The answer as it streams (answers.py) on CPython: each token's text goes to
the view alone, and the whole answer is joined only when something reads it."""

from __future__ import annotations

import json

from offgrid import protocol as p
from offgrid.library import SAVE_INTERVAL, Library, MemoryStorage
from test_controller import Harness, ask, load


def test_a_streaming_answer_is_saved_with_its_text_so_far_every_interval():
    class Clock:
        t = 1000.0

        def __call__(self) -> float:
            return self.t

    clock, store = Clock(), MemoryStorage()
    h = Harness()
    h.ctl.library = Library(store, clock=clock)
    load(h)
    chat = ask(h, "hi")
    saved = lambda: [t["content"] for t in json.loads(store.dump())["conversations"][0]["turns"]]  # noqa: E731
    h.feed(p.Delta(id=chat.id, text="One"))
    assert saved() == ["hi", ""]  # saved when asked; not again within the interval
    clock.t += SAVE_INTERVAL
    h.feed(p.Delta(id=chat.id, text=" two"))
    assert saved() == ["hi", "One two"]
    h.feed(p.Delta(id=chat.id, text=" three"))
    h.feed(p.GenerateEnd(id=chat.id, reason="stop"))
    assert saved() == ["hi", "One two three"]
    assert h.view.last("update_message") == (1, "One two three", True, "")  # the end sets it whole


def test_a_conversation_redrawn_mid_answer_keeps_the_answer_streaming():
    # Deleting another conversation redraws this one while the answer is written.
    h = Harness()
    load(h)
    other = h.ctl.conversation.id
    h.ctl.new_conversation()
    chat = ask(h, "hi")
    h.feed(p.Delta(id=chat.id, text="Hel"))
    h.ctl.delete_conversation(other)
    assert h.view.last("add_message") == (1, "assistant", "Hel", False)  # drawn with its text so far
    assert (1, "Hel", True, "") not in h.view.of("update_message")  # and not ended
    h.feed(p.Delta(id=chat.id, text="lo"))
    assert h.view.last("append_message") == (1, "lo")
    h.feed(p.GenerateEnd(id=chat.id, reason="stop"))
    assert h.view.last("update_message") == (1, "Hello", True, "")
