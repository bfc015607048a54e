"""Time to first token of a follow-up question after 10 turns, with the
engine's prompt cache reused and without (issue 5).

    python3 bench/conversation_cache.py [--runs 3]

Drives the real app through window.offgrid with greedy sampling; each run
builds the same 10-turn history, then asks the same follow-up twice: once
reusing the cache (reuse_cache: true) and once forcing a full prefill.
"""

from __future__ import annotations

import argparse

from harness import app_page, call, summary, write

QUESTIONS = [f"Give me one short fact about the number {i}." for i in range(10)]
FOLLOW_UP = "Which of those facts was the most surprising, and why?"
SAMPLING = {"temperature": 0, "seed": 1, "max_tokens": 32}


def first_token_ms(events: list[dict]) -> float:
    speed = next(e for e in events if e["type"] == "Speed")
    return speed["ttft_ms"]


def run_once(page) -> dict:
    messages = [{"role": "system", "content": "You are a helpful assistant."}]
    for q in QUESTIONS:
        messages.append({"role": "user", "content": q})
        end = call(page, "Chat", {"messages": messages, "sampling": SAMPLING})
        messages.append({"role": "assistant", "content": end["text"]})
    messages.append({"role": "user", "content": FOLLOW_UP})
    out = {}
    for label, reuse in (("cached", True), ("uncached", False)):
        end = call(page, "Chat", {"messages": messages, "sampling": SAMPLING, "reuse_cache": reuse})
        out[label] = {"ttft_ms": first_token_ms(end["events"]), "prompt_tokens": end["prompt_tokens"],
                      "cached_tokens": end["cached_tokens"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    runs = []
    with app_page() as page:
        for _ in range(args.runs):
            runs.append(run_once(page))
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
