"""The sliding context window: which turns the model sees.

Pure arithmetic, so it is tested on CPython. The controller verifies the
chosen window with an exact count from the model's own tokenizer (the engine's
CountTokens on the templated messages) and slides further if needed.

Units: tokens. With n_ctx = 512 and max_tokens = 512, the reply budget is
512 // 4 = 128 and the prompt may use at most 512 - 128 = 384 tokens, so
prompt + answer never exceed the KV cache.
"""

from __future__ import annotations

from collections.abc import Sequence

from .conversation import Turn

TEMPLATE_OVERHEAD = 6  # tokens a chat template adds around one message (role markers, newlines)
SLIDE_TARGET = 0.75  # when the window must slide, refill it to this share of the limit


def reply_budget(n_ctx: int, max_tokens: int) -> int:
    """Tokens kept free for the answer: the requested maximum, at most a quarter of the context."""
    return max(1, min(max_tokens, n_ctx // 4))


def prompt_limit(n_ctx: int, max_tokens: int) -> int:
    return n_ctx - reply_budget(n_ctx, max_tokens)


def estimate(text: str) -> int:
    """A cautious guess (about 3 characters a token) for text not counted yet."""
    return len(text) // 3 + 1


def turn_cost(turn: Turn) -> int:
    return (turn.n_tokens or estimate(turn.content)) + TEMPLATE_OVERHEAD


def exchange_starts(turns: Sequence[Turn]) -> list[int]:
    """Indices where an exchange begins (user turns): the window starts at one of them."""
    return [i for i, t in enumerate(turns) if t.role == "user"]


def choose_start(costs: Sequence[int], starts: Sequence[int], system_cost: int, limit: int,
                 previous: int = 0) -> int | None:
    """The first turn the model sees, or None when even the newest exchange does not fit.

    The system prompt is always kept and the newest turns are preferred: the
    window is a suffix of the conversation beginning at an exchange. It keeps
    `previous` while that still fits, so the engine can reuse its cached
    prefix; when it must slide, it slides until the prompt is at most
    SLIDE_TARGET of the limit, so the following turns reuse the cache again.
    """
    if not starts:
        return None
    total = lambda s: system_cost + sum(costs[s:])  # noqa: E731
    candidates = [s for s in starts if s >= previous] or [starts[-1]]
    if total(candidates[0]) <= limit:
        return candidates[0]
    target = int(limit * SLIDE_TARGET)
    for s in candidates:
        if total(s) <= target:
            return s
    last = starts[-1]
    return last if total(last) <= limit else None


def next_start(starts: Sequence[int], start: int) -> int | None:
    """The exchange after `start`, to drop one more when an exact count is over the limit."""
    later = [s for s in starts if s > start]
    return later[0] if later else None
