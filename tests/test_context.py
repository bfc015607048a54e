"""The sliding context window (py/offgrid/context.py), spelled out in tokens."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from offgrid import context
from offgrid.conversation import Turn


def test_reply_budget_is_a_quarter_of_the_context_at_most():
    # n_ctx 512, max_tokens 512: the answer gets 128 tokens, the prompt 384.
    assert context.reply_budget(512, 512) == 128
    assert context.prompt_limit(512, 512) == 384
    # A small max_tokens is kept as it is.
    assert context.reply_budget(2048, 64) == 64
    assert context.prompt_limit(2048, 64) == 1984


def test_everything_fits_so_the_window_starts_at_the_beginning():
    # system 10 + turns 20+30+20+30+20 = 130 <= 384
    costs = [20, 30, 20, 30, 20]
    assert context.choose_start(costs, [0, 2, 4], 10, 384) == 0


def test_the_oldest_exchanges_go_first_and_the_system_prompt_stays():
    # system 50; exchanges of 100+100; total 50 + 500 + 20 = 570 > limit 300.
    costs = [100, 100, 100, 100, 20]
    starts = [0, 2, 4]
    start = context.choose_start(costs, starts, 50, 300)
    # It slides to 75% of the limit (225): from 2 the prompt is 50+220 = 270 > 225, from 4 it is 70.
    assert start == 4
    assert 50 + sum(costs[start:]) <= 300


def test_a_window_that_still_fits_is_kept_for_the_prompt_cache():
    costs = [100, 100, 30, 30, 20]
    # From 2: 10 + 80 = 90 <= 200, and the previous start (2) is kept although 0 would not fit anyway.
    assert context.choose_start(costs, [0, 2, 4], 10, 200, previous=2) == 2
    # Never slides back before `previous`, even when more would fit: the cached prefix starts there.
    assert context.choose_start([5, 5, 5, 5], [0, 2], 10, 1000, previous=2) == 2


def test_one_exchange_larger_than_the_window_is_reported():
    # The new question alone (400) plus the system prompt (10) exceeds the limit (384).
    assert context.choose_start([20, 20, 400], [0, 2], 10, 384) is None


def test_next_start_drops_one_more_exchange():
    assert context.next_start([0, 2, 4], 0) == 2
    assert context.next_start([0, 2, 4], 4) is None


def test_turn_cost_uses_the_exact_count_when_known():
    assert context.turn_cost(Turn("user", "x" * 300, n_tokens=42)) == 42 + context.TEMPLATE_OVERHEAD
    assert context.turn_cost(Turn("user", "x" * 300)) == 101 + context.TEMPLATE_OVERHEAD


@settings(max_examples=300)
@given(
    costs=st.lists(st.integers(1, 300), min_size=1, max_size=40),
    system=st.integers(0, 200),
    limit=st.integers(50, 4000),
    previous=st.integers(0, 40),
)
def test_the_budget_is_never_exceeded(costs, system, limit, previous):
    starts = list(range(0, len(costs), 2))  # user turns at even indices
    start = context.choose_start(costs, starts, system, limit, previous)
    if start is None:
        # Only when even the newest exchange alone does not fit.
        assert system + sum(costs[starts[-1]:]) > limit
    else:
        assert start in starts
        assert system + sum(costs[start:]) <= limit  # system prompt always counted, never dropped
        # Newest preferred: the window is a suffix, and no later start was needed.
        assert start <= starts[-1]
