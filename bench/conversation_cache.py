"""Time to first token of a follow-up question after 10 turns, with the
engine's prompt cache reused and without (issue 5).

    python3 bench/conversation_cache.py [--runs 3]

Drives the real app through window.offgrid with greedy sampling; each run
builds the same 10-turn history, then asks the follow-up: on the site as it ships
(the prompt cache reused) and on a copy with the test hook no_prompt_cache
(offgrid_dev/site_variants.py: every answer evaluates its whole prompt).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness import ROOT, app_page, call, summary, write
from offgrid_dev.site_variants import make_hooked_site

QUESTIONS = [f"Give me one short fact about the number {i}." for i in range(10)]
FOLLOW_UP = "Which of those facts was the most surprising, and why?"
SAMPLING = {"temperature": 0, "seed": 1, "max_tokens": 32}


def first_token_ms(events: list[dict]) -> float:
    speed = next(e for e in events if e["type"] == "Speed")
    return speed["ttft_ms"]


def run_once(page) -> dict:
    """The history, then the follow-up: its first-token time, prompt and cached tokens."""
    messages = [{"role": "system", "content": "You are a helpful assistant."}]
    for q in QUESTIONS:
        messages.append({"role": "user", "content": q})
        end = call(page, "Chat", {"messages": messages, "sampling": SAMPLING})
        messages.append({"role": "assistant", "content": end["text"]})
    messages.append({"role": "user", "content": FOLLOW_UP})
    end = call(page, "Chat", {"messages": messages, "sampling": SAMPLING})
    return {"ttft_ms": first_token_ms(end["events"]), "prompt_tokens": end["prompt_tokens"], "cached_tokens": end["cached_tokens"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with app_page() as page:
        cached = [run_once(page) for _ in range(args.runs)]
    with tempfile.TemporaryDirectory() as tmp:
        with app_page(make_hooked_site(ROOT / "dist", Path(tmp) / "site", no_prompt_cache=True)) as page:
            uncached = [run_once(page) for _ in range(args.runs)]
    runs = [{"cached": c, "uncached": u} for c, u in zip(cached, uncached)]
    cached = summary([r["cached"]["ttft_ms"] for r in runs])
    uncached = summary([r["uncached"]["ttft_ms"] for r in runs])
    prompt = runs[-1]["cached"]["prompt_tokens"]
    table = "\n".join([
        "| follow-up after 10 turns | TTFT median (ms) | min–max (ms) | prompt tokens | from cache |",
        "|---|---|---|---|---|",
        f"| prompt cache reused | {cached['median']:.0f} | {cached['min']:.0f}–{cached['max']:.0f} | {prompt} | {runs[-1]['cached']['cached_tokens']} |",
        f"| full prefill | {uncached['median']:.0f} | {uncached['min']:.0f}–{uncached['max']:.0f} | {prompt} | {runs[-1]['uncached']['cached_tokens']} |",
    ])
    write("conversation-cache", {"runs": runs, "cached_ttft_ms": cached, "uncached_ttft_ms": uncached}, table)


if __name__ == "__main__":
    main()
