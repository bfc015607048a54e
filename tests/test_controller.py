"""controller.py on CPython: the chat flow driven by engine events, checked
through the frames it sends and the calls it makes on a recording view."""

from __future__ import annotations

import dataclasses

import pytest

from offgrid import protocol as p
from offgrid.controller import Controller, State, View

TINY = p.ModelInfo("tiny", "Tiny Model", "tiny.gguf", 50_000_000, "0" * 64, "Q4_1", "Apache-2.0")
VIEW_METHODS = {n for n in vars(View) if not n.startswith("_")}


class RecordingView:
    """Records every View call as (method, args); refuses methods View lacks."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []

    def __getattr__(self, name):
        if name not in VIEW_METHODS:
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, args))

    def of(self, name: str) -> list[tuple]:
        return [args for n, args in self.calls if n == name]

    def last(self, name: str) -> tuple:
        calls = self.of(name)
        assert calls, f"view.{name} was never called"
        return calls[-1]


class Harness:
    def __init__(self) -> None:
        self.frames: list[str] = []
        self.view = RecordingView()
        self.ctl = Controller(self.frames.append, self.view)

    def feed(self, msg: p.Message) -> None:
        self.ctl.on_frame(p.encode(msg))

    def sent(self) -> list[p.Message]:
        return [p.decode(f) for f in self.frames]  # decoding also proves they are valid frames

    def last_sent(self) -> p.Message:
        return self.sent()[-1]


@pytest.fixture
def h() -> Harness:
    return Harness()


def boot(h: Harness) -> None:
    h.ctl.start()
    h.feed(p.ModelList(models=[TINY], default_id="tiny"))


def load(h: Harness) -> None:
    boot(h)
    h.feed(p.ModelLoaded(id=h.last_sent().id, model_id="tiny", name="Tiny Model", n_ctx=2048))


def ask(h: Harness, text: str, n_tokens: int = 20) -> p.Chat:
    """Submit, answer the exact count the controller asks for, return the Chat it then sends."""
    assert h.ctl.submit(text) is True
    count = h.last_sent()
    assert isinstance(count, p.CountTokens) and count.messages[-1] == p.ChatMessage("user", text.strip())
    h.feed(p.TokenCount(id=count.id, n_tokens=n_tokens))
    chat = h.last_sent()
    assert isinstance(chat, p.Chat)
    assert chat.messages == count.messages  # the counted window is the one sent
    return chat


# ------------------------------------------------------------ boot and load


def test_start_asks_for_models_and_diagnostics(h):
    h.ctl.start()
    sent = h.sent()
    assert [type(m) for m in sent] == [p.ListModels, p.GetDiagnostics]
    assert len({m.id for m in sent}) == 2 and all(m.id for m in sent)  # fresh ids
    assert h.view.last("set_status")[1] == "busy"
    assert h.ctl.state is State.BOOTING


def test_model_list_with_default_loads_it(h):
    boot(h)
    req = h.last_sent()
    assert isinstance(req, p.LoadModel) and not isinstance(req, p.SwitchModel)
    assert req.model_id == "tiny"
    assert h.ctl.state is State.LOADING
    assert h.view.last("set_models")[0] == [dataclasses.asdict(TINY)]
    assert h.view.last("set_model")[0] == "Tiny Model"


def test_model_list_without_default_waits(h):
    h.ctl.start()
    h.feed(p.ModelList(models=[TINY]))
    assert len(h.frames) == 2 and h.ctl.state is State.BOOTING


def test_load_progress_shows_fraction_and_percent(h):
    boot(h)
    h.feed(p.LoadProgress(model_id="tiny", phase="download", loaded=25_000_000, total=50_000_000))
    assert h.view.last("set_progress") == (0.5, "25.0 MB / 50.0 MB")
    text, state = h.view.last("set_status")
    assert "Downloading Tiny Model" in text and "50%" in text and state == "busy"
    h.feed(p.LoadProgress(model_id="tiny", phase="init"))  # no total: indeterminate
    assert h.view.last("set_progress") == (None, "")
    assert "%" not in h.view.last("set_status")[0]


def test_model_loaded_makes_it_ready(h):
    load(h)
    assert h.ctl.state is State.READY
    assert h.view.last("set_status") == ("Ready", "ready")
    assert h.view.last("set_progress") == (None, "")
    assert h.view.last("set_models")[1] == "tiny"  # marked as the current model


# ------------------------------------------------------------ chatting


def test_blank_submit_is_refused_silently(h):
    load(h)
    before_frames, before_calls = len(h.frames), len(h.view.calls)
    assert h.ctl.submit("  \n\t") is False
    assert len(h.frames) == before_frames and len(h.view.calls) == before_calls


def test_submit_sends_chat_with_system_prompt_and_question(h):
    load(h)
    chat = ask(h, "  What is 2+2?  ")
    assert chat.messages == [
        p.ChatMessage("system", h.ctl.conversation.system_prompt),
        p.ChatMessage("user", "What is 2+2?"),  # stripped
    ]
    assert chat.sampling == h.ctl.sampling
    assert h.ctl.state is State.GENERATING and h.ctl.answers.gen_id == chat.id
    assert h.view.of("add_message")[-2:] == [(0, "user", "What is 2+2?", True), (1, "assistant", "", False)]
    assert h.view.last("set_generating") == (True,)


def test_deltas_of_the_chat_stream_into_the_answer(h):
    load(h)
    chat = ask(h, "hi")
    h.feed(p.Delta(id=chat.id, text="Hel", n_tokens=1))
    h.feed(p.Delta(id="someone-else", text="XXX"))  # another request's answer: not ours
    h.feed(p.Delta(id=chat.id, text="lo", n_tokens=2))
    # Each token sends the view its own text only, never the answer so far.
    assert h.view.of("append_message") == [(1, "Hel"), (1, "lo")]
    assert h.view.of("update_message") == []
    assert [a for a in h.view.of("set_status") if a[0] == "Writing…"] == [("Writing…", "busy")]  # said once
    assert h.ctl.conversation.turns[1].content == "Hello"
    assert h.ctl.snapshot()["turns"][1]["content"] == "Hello"


def test_finished_answer_is_complete(h):
    load(h)
    chat = ask(h, "hi")
    h.feed(p.Delta(id=chat.id, text="Hello"))
    h.feed(p.GenerateEnd(id=chat.id, reason="stop", text="Hello"))
    turn = h.ctl.conversation.turns[1]
    assert turn.complete and turn.end_reason == "stop"
    assert h.view.last("update_message") == (1, "Hello", True, "")
    assert h.view.last("set_can_continue") == (False,)
    assert h.ctl.state is State.READY


def test_stop_sends_stop_for_the_chat_and_marks_answer_stopped(h):
    load(h)
    chat = ask(h, "hi")
    h.feed(p.Delta(id=chat.id, text="Par"))
    h.ctl.stop()
    stop = h.last_sent()
    assert isinstance(stop, p.Stop) and stop.target == chat.id and stop.id != chat.id
    h.feed(p.GenerateEnd(id=chat.id, reason="aborted"))
    turn = h.ctl.conversation.turns[1]
    assert not turn.complete and turn.end_reason == "aborted"
    assert h.view.last("update_message") == (1, "Par", True, "Stopped")
    assert h.ctl.state is State.READY and h.view.last("set_generating") == (False,)
    assert h.view.last("set_can_continue") == (True,)  # a stopped answer can be continued
    n = len(h.frames)
    h.ctl.stop()  # nothing runs now: nothing to stop
    assert len(h.frames) == n


def test_submit_while_generating_is_refused(h):
    load(h)
    ask(h, "first")
    n = len(h.frames)
    assert h.ctl.submit("second") is False
    assert len(h.frames) == n and h.view.of("show_error")
    assert [t.content for t in h.ctl.conversation.turns] == ["first", ""]


def test_question_asked_while_loading_is_held_by_the_view_and_sent_when_ready(h):
    # One queue: the view holds a question while the controller does not take questions
    # (web/page/view.js, also before Python is up) and sends it when set_accepting(True) says so.
    boot(h)
    load_id = h.last_sent().id
    assert h.view.of("set_accepting") == []  # booting: the view's default, not taking questions
    n = len(h.frames)
    assert h.ctl.submit("early question") is False  # not taken: the view keeps it
    assert len(h.frames) == n and h.ctl.conversation.turns == [] and not h.view.of("show_error")
    h.feed(p.ModelLoaded(id=load_id, model_id="tiny", name="Tiny Model"))
    assert h.view.of("set_accepting") == [(True,)]
    assert h.ctl.submit("early question") is True  # what the view does now
    count = h.last_sent()
    assert isinstance(count, p.CountTokens) and count.messages[-1] == p.ChatMessage("user", "early question")
    assert h.ctl.state is State.GENERATING


def test_next_chat_carries_the_history(h):
    load(h)
    first = ask(h, "Name a colour.")
    h.feed(p.Delta(id=first.id, text="Blue."))
    h.feed(p.GenerateEnd(id=first.id))
    second = ask(h, "Another?")
    assert [(m.role, m.content) for m in second.messages[1:]] == [
        ("user", "Name a colour."),
        ("assistant", "Blue."),
        ("user", "Another?"),
    ]
    assert second.id != first.id


# ------------------------------------------------------------ errors


def test_engine_error_while_loading_fails(h):
    boot(h)
    h.feed(p.EngineError(id=h.last_sent().id, code="download_failed", message="network down", hint="retry"))
    assert h.ctl.state is State.FAILED
    assert h.view.last("set_status") == ("Error: network down", "error")
    assert h.view.last("show_error") == ("network down", "retry")


def test_engine_error_for_running_chat_ends_it(h):
    load(h)
    chat = ask(h, "hi")
    h.feed(p.EngineError(id="other", code="busy", message="not yours"))
    assert h.ctl.state is State.GENERATING  # another request's error leaves the chat alone
    h.feed(p.Delta(id=chat.id, text="Half"))
    h.feed(p.EngineError(id=chat.id, code="inference_failed", message="boom"))
    turn = h.ctl.conversation.turns[1]
    assert not turn.complete and turn.end_reason == "error"
    assert h.view.last("update_message") == (1, "Half", True, "Failed")
    assert h.ctl.state is State.READY and h.view.last("set_status") == ("Ready", "ready")
    ask(h, "again")  # the chat goes on


def test_hello_with_other_protocol_version_fails(h):
    h.feed(p.Hello(protocol_version=p.PROTOCOL_VERSION))
    assert h.ctl.state is State.BOOTING and not h.view.calls  # same version: nothing to say
    h.feed(p.Hello(protocol_version=p.PROTOCOL_VERSION + 1))
    assert h.ctl.state is State.FAILED
    text, state = h.view.last("set_status")
    assert state == "error" and text.startswith("Error:") and str(p.PROTOCOL_VERSION + 1) in text


def test_hello_with_other_protocol_version_tells_to_rebuild(h):
    h.feed(p.Hello(protocol_version=p.PROTOCOL_VERSION + 1))
    shown = [a[0] for a in h.view.of("set_status")] + [" ".join(a) for a in h.view.of("show_error")]
    assert any("build.py" in s for s in shown)


@pytest.mark.parametrize("raw", ["{oops", '{"type":"Delta","v":1,"n_tokens":"x"}', '{"type":"Delta","v":99}'])
def test_malformed_frame_is_reported_not_raised(h, raw):
    load(h)
    h.ctl.on_frame(raw)
    message, hint = h.view.last("show_error")
    assert message.startswith("Bad frame from the engine") and hint
    assert h.ctl.state is State.READY


def test_stray_generate_end_without_generation_is_ignored(h):
    # e.g. an answer to a frame posted with no id through window.offgrid.raw
    load(h)
    h.feed(p.GenerateEnd(id="", reason="aborted"))
    assert h.ctl.state is State.READY and h.ctl.conversation.turns == []


# ------------------------------------------------------------ context window (issue 5)


def small_context(h: Harness) -> None:
    """n_ctx 512 with max_tokens 128: the prompt may use 512 - 128 = 384 tokens."""
    h.ctl.library.app_settings["n_ctx"] = 512
    h.ctl.conversation.settings.sampling = dataclasses.replace(h.ctl.sampling, max_tokens=128)


def finish(h: Harness, chat: p.Chat, text: str) -> None:
    h.feed(p.Delta(id=chat.id, text=text))
    h.feed(p.GenerateEnd(id=chat.id, reason="stop", text=text, completion_tokens=len(text) // 4 + 1))


def test_answer_budget_fits_what_the_exact_count_leaves():
    h = Harness()
    load(h)
    small_context(h)
    chat = ask(h, "hi", n_tokens=300)
    # 512 - 300 = 212 tokens are left, but max_tokens (128) is smaller.
    assert chat.sampling.max_tokens == 128
    finish(h, chat, "Hello!")
    chat = ask(h, "more", n_tokens=384)
    assert chat.sampling.max_tokens == 128  # 384 + 128 = 512: exactly full, never over


def test_an_exact_count_over_the_limit_slides_the_window_and_marks_old_turns():
    h = Harness()
    load(h)
    small_context(h)
    for i in range(3):
        chat = ask(h, f"question {i}")
        finish(h, chat, "answer " * 10)
    assert h.ctl.submit("question 3")
    count = h.last_sent()
    assert count.messages[1] == p.ChatMessage("user", "question 0")  # estimates said it all fits
    h.feed(p.TokenCount(id=count.id, n_tokens=400))  # but the exact count is over 384
    recount = h.last_sent()
    assert isinstance(recount, p.CountTokens)
    assert recount.messages[0].role == "system"  # the system prompt is always kept
    assert recount.messages[1] == p.ChatMessage("user", "question 1")  # the oldest exchange went
    h.feed(p.TokenCount(id=recount.id, n_tokens=300))
    chat = h.last_sent()
    assert isinstance(chat, p.Chat) and chat.messages == recount.messages
    assert h.view.last("set_out_of_view") == (2,)  # turns 0 and 1 are outside the model's view


def test_a_question_too_long_for_the_context_gets_a_clear_error():
    h = Harness()
    load(h)
    small_context(h)
    assert h.ctl.submit("x " * 2000)  # ~1334 estimated tokens > 384
    message, hint = h.view.last("show_error")
    assert "too long" in message and "384 tokens" in message and "context size" in hint
    assert not any(isinstance(m, (p.Chat, p.CountTokens)) for m in h.sent())
    assert h.ctl.state is State.READY
    assert h.ctl.conversation.turns[-1].end_reason == "error"


def test_regenerate_replaces_the_last_answer():
    h = Harness()
    load(h)
    chat = ask(h, "Name a colour")
    finish(h, chat, "Blue.")
    assert h.ctl.regenerate()
    count = h.last_sent()
    assert isinstance(count, p.CountTokens) and count.messages[-1] == p.ChatMessage("user", "Name a colour")
    assert [t.role for t in h.ctl.conversation.turns] == ["user", "assistant"]
    assert h.ctl.conversation.turns[-1].content == ""


def test_edit_a_past_question_drops_what_followed():
    h = Harness()
    load(h)
    for q in ("first", "second"):
        finish(h, ask(h, q), "ok")
    assert h.ctl.edit(0, "first, edited")
    count = h.last_sent()
    assert [m.content for m in count.messages[1:]] == ["first, edited"]
    assert len(h.ctl.conversation.turns) == 2
    assert not h.ctl.edit(1, "an answer is not a question")  # refused: generating, and not a user turn


def test_switching_conversations_redraws_and_keeps_both():
    h = Harness()
    load(h)
    finish(h, ask(h, "in the first"), "ok")
    first = h.ctl.conversation.id
    h.ctl.new_conversation()
    assert h.ctl.conversation.turns == [] and h.view.last("clear_messages") == ()
    finish(h, ask(h, "in the second"), "ok")
    h.ctl.select_conversation(first)
    assert h.ctl.conversation.turns[0].content == "in the first"
    items, current = h.view.last("set_conversations")
    assert current == first and {i["title"] for i in items} == {"in the first", "in the second"}
