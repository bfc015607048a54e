"""A conversation: the ordered turns of one chat, its system prompt and its
settings, as plain data that round-trips through JSON (IndexedDB stores it)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .protocol import ChatMessage, Role, Sampling

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
TITLE_LENGTH = 48  # characters of the first question used as the title


@dataclass
class Turn:
    role: Role
    content: str
    # False while an answer streams, and for an answer that was stopped, cut or failed.
    complete: bool = True
    end_reason: str = ""
    # Exact token count of `content` with the model that last counted it (0: unknown).
    n_tokens: int = 0


@dataclass
class Settings:
    """Per-conversation settings, editable in the settings panel."""

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    # Small models ramble when hot; a low temperature keeps answers on topic.
    sampling: Sampling = field(default_factory=lambda: Sampling(temperature=0.2))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        known = {f.name for f in fields(Sampling)}
        sampling = Sampling(**{k: v for k, v in data.get("sampling", {}).items() if k in known})
        return cls(system_prompt=str(data.get("system_prompt", DEFAULT_SYSTEM_PROMPT)), sampling=sampling)


@dataclass
class Conversation:
    id: str = ""
    title: str = ""
    created: float = 0.0  # seconds since the epoch
    updated: float = 0.0
    settings: Settings = field(default_factory=Settings)
    turns: list[Turn] = field(default_factory=list)

    @property
    def system_prompt(self) -> str:
        return self.settings.system_prompt

    def add(self, role: Role, content: str, complete: bool = True) -> int:
        """Append a turn and return its index, which the view uses as the message key."""
        self.turns.append(Turn(role, content, complete))
        if role == "user" and not self.title:
            self.title = _title(content)
        return len(self.turns) - 1

    def to_messages(self, start: int = 0) -> list[ChatMessage]:
        """The prompt: system prompt, then the turns from `start` that have text.

        An empty assistant placeholder (the answer being generated) is left out.
        """
        out = [ChatMessage("system", self.system_prompt)] if self.system_prompt else []
        out += [ChatMessage(t.role, t.content) for t in self.turns[start:] if t.content or t.role == "user"]
        return out

    # ------------------------------------------------------------ storage

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversation:
        turn_fields = {f.name for f in fields(Turn)}
        return cls(
            id=str(data["id"]),
            title=str(data.get("title", "")),
            created=float(data.get("created", 0)),
            updated=float(data.get("updated", 0)),
            settings=Settings.from_dict(data.get("settings", {})),
            turns=[Turn(**{k: v for k, v in t.items() if k in turn_fields}) for t in data.get("turns", [])],
        )

    # ------------------------------------------------------------ export

    def to_markdown(self) -> str:
        lines = [f"# {self.title or 'Conversation'}", ""]
        if self.system_prompt:
            lines += [f"*System prompt:* {self.system_prompt}", ""]
        for t in self.turns:
            who = "You" if t.role == "user" else "Assistant"
            note = "" if t.complete else f" *(incomplete{': ' + t.end_reason if t.end_reason else ''})*"
            lines += [f"**{who}:**{note}", "", t.content, ""]
        return "\n".join(lines).rstrip() + "\n"


def _title(question: str) -> str:
    line = " ".join(question.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"
