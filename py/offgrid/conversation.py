"""A conversation: the ordered turns of one chat."""

from __future__ import annotations

from dataclasses import dataclass, field

from .protocol import ChatMessage, Role


@dataclass
class Turn:
    role: Role
    content: str
    # False while an answer streams, and for an answer that was stopped or failed.
    complete: bool = True
    end_reason: str = ""


@dataclass
class Conversation:
    system_prompt: str = "You are a helpful assistant."
    turns: list[Turn] = field(default_factory=list)

    def add(self, role: Role, content: str, complete: bool = True) -> int:
        """Append a turn and return its index, which the view uses as the message key."""
        self.turns.append(Turn(role, content, complete))
        return len(self.turns) - 1

    def to_messages(self) -> list[ChatMessage]:
        """The prompt messages: system prompt, then every turn with text.

        An empty assistant placeholder (the answer being generated) is left out.
        """
        out = [ChatMessage("system", self.system_prompt)] if self.system_prompt else []
        out += [ChatMessage(t.role, t.content) for t in self.turns if t.content or t.role == "user"]
        return out
