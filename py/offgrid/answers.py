"""Asking and answering: a question from the person, the exact count of the
window that goes with it, the streamed answer, Stop, Continue, regenerate and
edit.

A handler of the controller (controller.py): it keeps the running generation's
bookkeeping and uses the controller's state, view, library and send.

Sending a question goes: count the chosen window exactly (CountTokens on the
templated messages; the engine caches that prefix for the answer), slide the
window if the count is over the limit, then Chat.

A streamed token costs the same however long the answer is: its text is kept
as one more piece and only that piece goes to the view (`append_message`). The
pieces are joined into the turn when something reads the whole answer: a save
(at most every SAVE_INTERVAL seconds), the end of the answer, or `fold` (the
controller's `conversation` calls it).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from . import context
from . import protocol as p
from .conversation import Turn
from .conversation_actions import NOTES
from .state import State

if TYPE_CHECKING:
    from .controller import Controller


class AnswerHandler:
    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        self.gen_id = ""  # request id of the running generation (or of its token count)
        self.key = -1  # turn index of the answer being generated
        self.pending: p.Chat | p.Continue | None = None  # waiting for its TokenCount
        self.continuing = False  # the running generation extends an existing answer
        self._turn: Turn | None = None  # the answer being generated
        self._pieces: list[str] = []  # its text: turn.content, then the deltas not folded in yet
        self._writing = False  # the status says so already (once per answer)

    # ------------------------------------------------------------ the person's actions

    def submit(self, text: str) -> bool:
        """A question from the person. Returns False when it was not taken."""
        ctl = self.ctl
        text = text.strip()
        if not text:
            return False
        if ctl.state is State.GENERATING:
            ctl.view.show_error("An answer is still being written.", "Wait for it, or press Stop.")
            return False
        if ctl.state is not State.READY:
            return False  # no model yet: the view holds the question (set_accepting tells it when to send)
        key = ctl.conversation.add("user", text)
        ctl.view.add_message(key, "user", text, True)
        self._ask()
        return True

    def regenerate(self) -> bool:
        """Answer the last question again, replacing the last answer."""
        ctl = self.ctl
        turns = ctl.conversation.turns
        if ctl.state is not State.READY or not turns:
            return False
        if turns[-1].role == "assistant":
            turns.pop()
        if not turns or turns[-1].role != "user":
            return False
        ctl.conversations.show()
        self._ask()
        return True

    def edit(self, key: int, text: str) -> bool:
        """Replace question `key`, drop everything after it, and answer it again."""
        ctl = self.ctl
        turns = ctl.conversation.turns
        text = text.strip()
        if ctl.state is not State.READY or not text or not (0 <= key < len(turns)) or turns[key].role != "user":
            return False
        del turns[key + 1:]
        turns[key] = replace(turns[key], content=text, n_tokens=0)
        ctl.window_start = min(ctl.window_start, key)
        ctl.conversations.show()
        self._ask()
        return True

    def continue_answer(self) -> bool:
        """Extend the last answer if it was stopped, cut at the length limit or interrupted."""
        ctl = self.ctl
        turns = ctl.conversation.turns
        if ctl.state is not State.READY or not turns or turns[-1].role != "assistant" or turns[-1].complete:
            return False
        if not turns[-1].content:
            return False
        self.key, self._turn = len(turns) - 1, turns[-1]
        turns[-1].end_reason = ""
        ctl.view.update_message(self.key, turns[-1].content, False, "")
        self._prepare(p.Continue(sampling=ctl.sampling))
        return True

    def stop(self) -> None:
        ctl = self.ctl
        if ctl.state is State.GENERATING:
            ctl.view.set_status("Stopping…", "busy")
            self._writing = True  # deltas still on their way must not say "Writing…" again
            if self.pending is not None:
                self.pending = None  # still counting: never send the Chat
                self.finish("aborted")
            else:
                ctl.send(p.Stop(target=self.gen_id))

    # ------------------------------------------------------------ asking

    def _ask(self) -> None:
        ctl = self.ctl
        conv = ctl.conversation
        self.key = conv.add("assistant", "", complete=False)
        self._turn = conv.turns[self.key]
        ctl.view.add_message(self.key, "assistant", "", False)
        ctl.library.save(conv)
        ctl.conversations.show_list()
        self._prepare(p.Chat(sampling=ctl.sampling))

    def _prepare(self, request: p.Chat | p.Continue) -> None:
        """Choose the window, then count it exactly before sending `request`."""
        ctl = self.ctl
        self.continuing = isinstance(request, p.Continue)
        self._pieces = [self._turn.content] if self._turn else []
        self._writing = False
        ctl.go(State.GENERATING)
        ctl.view.set_generating(True)
        ctl.view.set_can_continue(False)
        ctl.view.set_status("Thinking…", "busy")
        conv = ctl.conversation
        upto = self.key if isinstance(request, p.Chat) else len(conv.turns)
        turns = conv.turns[:upto]
        system = context.estimate(conv.system_prompt) + context.TEMPLATE_OVERHEAD
        start = context.choose_start([context.turn_cost(t) for t in turns], context.exchange_starts(turns),
                                     system, ctl.prompt_limit, ctl.window_start)
        if start is None:
            return self._too_long()
        self._count(request, start)

    def _count(self, request: p.Chat | p.Continue, start: int) -> None:
        ctl = self.ctl
        ctl.window_start = start
        messages = ctl.conversation.to_messages(start)
        self.pending = replace(request, messages=messages)
        self.gen_id = ctl.send(p.CountTokens(messages=messages))

    def on_TokenCount(self, msg: p.TokenCount) -> None:
        ctl = self.ctl
        if msg.id != self.gen_id or self.pending is None:
            return
        request, self.pending = self.pending, None
        if msg.n_tokens > ctl.prompt_limit:
            turns = ctl.conversation.turns
            later = context.next_start(context.exchange_starts(turns[: self.key + 1]), ctl.window_start)
            if later is None or later > self.key:
                return self._too_long(msg.n_tokens)
            return self._count(request, later)
        ctl.view.set_out_of_view(ctl.window_start)
        budget = min(ctl.sampling.max_tokens, ctl.n_ctx - msg.n_tokens)
        sampling = replace(request.sampling, max_tokens=max(1, budget))
        self.gen_id = ctl.send(replace(request, sampling=sampling))

    def _too_long(self, counted: int = 0) -> None:
        limit = self.ctl.prompt_limit
        size = f" ({counted} tokens)" if counted else ""
        self.ctl.view.show_error(
            f"This message is too long for the model's context{size}: at most {limit} tokens fit.",
            "Shorten it, or raise the context size in settings.",
        )
        self.finish("error")

    # ------------------------------------------------------------ the answer

    def on_Delta(self, msg: p.Delta) -> None:
        if not self.gen_id or msg.id != self.gen_id or self._turn is None:
            return
        ctl = self.ctl
        self._pieces.append(msg.text)
        if not self._writing:
            self._writing = True
            ctl.view.set_status("Writing…", "busy")
        ctl.view.append_message(self.key, msg.text)
        if ctl.library.save_due():
            self.fold()
            ctl.library.save(streaming=True)

    def fold(self) -> None:
        """Join the answer's pieces into its turn (O(answer); nothing to do when none came)."""
        if self._turn is not None and len(self._pieces) > 1:
            self._turn.content = "".join(self._pieces)
            self._pieces = [self._turn.content]

    def on_GenerateEnd(self, msg: p.GenerateEnd) -> None:
        if not self.gen_id or msg.id != self.gen_id or self._turn is None:
            return
        # Exact for an answer made in one go; a continued one falls back to an estimate.
        self._turn.n_tokens = msg.completion_tokens if not self.continuing else 0
        self.finish(msg.reason)

    def on_EngineError(self, msg: p.EngineError) -> None:
        if self.ctl.state is State.GENERATING and msg.id == self.gen_id:
            self.pending = None
            self.finish("error")

    def finish(self, reason: str) -> None:
        ctl = self.ctl
        self.fold()
        turn = self._turn
        assert turn is not None
        # Only a natural end is complete; a cut or stopped answer can be continued.
        turn.complete = reason == "stop"
        turn.end_reason = reason
        ctl.view.update_message(self.key, turn.content, True, NOTES.get(turn.end_reason, ""))
        ctl.library.save()
        self.gen_id, self.key, self._turn, self._pieces = "", -1, None, []
        ctl.go(State.READY)
        ctl.view.set_generating(False)
        ctl.show_can_continue()
        ctl.conversations.show_list()
        ctl.ready()
