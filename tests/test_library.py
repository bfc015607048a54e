"""Conversations and their persistence (py/offgrid/library.py) with an in-memory store."""

from __future__ import annotations

import json

from offgrid.conversation import Conversation
from offgrid.library import SAVE_INTERVAL, Library, MemoryStorage


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_conversation_survives_a_reload():
    store, clock = MemoryStorage(), Clock()
    lib = Library(store, clock=clock)
    conv = lib.current
    conv.add("user", "What is the tallest mountain on Earth, and how tall is it?")
    conv.add("assistant", "Mount Everest, 8,849 m.")
    lib.save()
    lib.rename(conv.id, "  Mountains  ")
    again = Library(MemoryStorage(), store.dump(), clock=clock)
    assert again.current.id == conv.id
    assert again.current.title == "Mountains"
    assert [(t.role, t.content) for t in again.current.turns] == [(t.role, t.content) for t in conv.turns]


def test_title_comes_from_the_first_question():
    conv = Conversation(id="x")
    conv.add("user", "Explain   the difference between a list and a tuple in Python, with examples please")
    assert conv.title.startswith("Explain the difference between")
    assert len(conv.title) <= 48 and conv.title.endswith("…")


def test_streaming_saves_are_throttled_but_never_lost_beyond_the_interval():
    store, clock = MemoryStorage(), Clock()
    lib = Library(store, clock=clock)
    lib.current.add("user", "hi")
    turn = lib.current.turns[lib.current.add("assistant", "", complete=False)]
    saved = []
    store.save_conversation = lambda cid, data: saved.append(json.loads(data))
    for i in range(10):  # ten deltas within 0.1 s: one save
        turn.content += f"w{i} "
        clock.t += 0.01
        lib.save(streaming=True)
    assert len(saved) == 1
    clock.t += SAVE_INTERVAL
    lib.save(streaming=True)
    assert saved[-1]["turns"][1]["content"] == turn.content  # at most SAVE_INTERVAL behind


def test_an_answer_cut_by_a_closed_tab_comes_back_marked_interrupted():
    store = MemoryStorage()
    lib = Library(store)
    lib.current.add("user", "Tell me a story")
    lib.current.add("assistant", "Once upon a", complete=False)  # streaming when the tab closed
    lib.save()
    again = Library(MemoryStorage(), store.dump())
    last = again.current.turns[-1]
    assert (last.content, last.complete, last.end_reason) == ("Once upon a", False, "interrupted")


def test_new_select_delete_and_listing():
    store, clock = MemoryStorage(), Clock()
    lib = Library(store, clock=clock)
    first = lib.current
    first.add("user", "first")
    lib.save()
    clock.t += 5
    second = lib.new()
    assert lib.current is second and second.settings is not first.settings
    second.add("user", "second")
    lib.save()
    assert [c["title"] for c in lib.listing()] == ["second", "first"]  # newest first
    assert lib.select(first.id) is first
    lib.delete(first.id)
    assert first.id not in store.conversations
    assert lib.current is second
    lib.delete(second.id)
    assert lib.current.turns == [] and lib.listing()[0]["title"] == "New chat"


def test_markdown_export_marks_incomplete_answers():
    conv = Conversation(id="x")
    conv.add("user", "Count to three")
    conv.add("assistant", "one, two", complete=False)
    conv.turns[-1].end_reason = "aborted"
    md = conv.to_markdown()
    assert md.startswith("# Count to three")
    assert "**You:**" in md and "**Assistant:** *(incomplete: aborted)*" in md and "one, two" in md
    assert Conversation.from_dict(json.loads(conv.to_json())) == conv
