"""Native llama.cpp (llama-cpp-python, built from source for this CPU): the
reference the browser engine is compared against. Same GGUF, same thread
count, same prompts, greedy."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

# What every bench side asks: a document to continue (prefill + decode), and a
# short chat for time to first token (TTFT), then a follow-up in the same chat.
BASE_TEXT = (
    "The history of computing is a story of abstraction layered upon abstraction. Early machines were "
    "programmed by rewiring panels of cables; later, stored programs let the same hardware run any task. "
    "Assemblers named the instructions, compilers translated formulas, and operating systems shared one "
    "processor among many people. Networks joined the machines, then the web joined the documents, and "
    "phones put a computer in every pocket. Each layer hid the one below it and let more people build more "
    "things, from weather forecasts and bank ledgers to games, maps and music. Engineers measured every step: "
    "instructions per second, bytes per dollar, watts per operation, and the time a person waits for an answer. "
)
SHORT_QUESTION = "What is the capital of France?"
FOLLOW_UP = "And what river flows through it?"


def make_prompt(model_path: Path, n_tokens: int, run: int = 0) -> str:
    """A document prompt of about `n_tokens` tokens for this model's tokenizer.

    `run` changes the first words, so that an engine's prompt cache cannot
    reuse the previous repeat's prompt (the prefill is measured in full)."""
    from llama_cpp import Llama

    vocab = Llama(str(model_path), vocab_only=True, verbose=False)
    head = f"Chapter {run + 1}. Notes on machines, part {run + 7}.\n\n"
    text = head + BASE_TEXT * (n_tokens // 60 + 4)
    bos = len(vocab.tokenize(b"a", add_bos=True)) - len(vocab.tokenize(b"a", add_bos=False))
    toks = vocab.tokenize(text.encode(), add_bos=False)[: max(1, n_tokens - bos)]  # engines add the BOS, if any
    out = vocab.detokenize(toks).decode("utf-8", "ignore")
    vocab.close()
    return out


def chat_messages(answer: str | None = None, nonce: str = "") -> list[dict]:
    """The first question (and, given its answer, the follow-up). `nonce` starts the question
    with a few words of its own, so no engine's prompt cache holds any of it."""
    messages = [{"role": "user", "content": f"{nonce} {SHORT_QUESTION}" if nonce else SHORT_QUESTION}]
    if answer is not None:
        messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": FOLLOW_UP}]
    return messages


def build_flags() -> dict:
    """How this native llama.cpp was built (CMAKE_ARGS recorded by offgrid_dev.native_ref, and
    llama.cpp's system info): every result carries it, since the flags change the speed and
    the kernels (GGML_NATIVE=OFF with the CPU's instruction sets, no AMX; see the README)."""
    from offgrid_dev.native_ref import build_flags as flags  # bench/harness.py puts py/ on sys.path

    return flags()


KV_TYPES = {"f16": 1, "q8_0": 8}  # KV cache type -> GGML_TYPE_* for llama_cpp
KV_CACHE = "q8_0"  # the app's CPU default (web/engine/backend.js)


class Native:
    """One model loaded natively with `threads` threads (prompt and decode)."""

    def __init__(self, model_path: Path, threads: int, n_ctx: int = 2048) -> None:
        from llama_cpp import Llama

        # The same KV cache as the app's CPU backends (q8_0, which needs flash attention;
        # web/engine/backend.js says why), so both sides do the same work.
        self.llm = Llama(str(model_path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                         n_batch=512, seed=1, verbose=False, flash_attn=True, type_k=KV_TYPES[KV_CACHE], type_v=KV_TYPES[KV_CACHE])
        if "tokenizer.chat_template" not in self.llm.metadata:
            # No template in the GGUF (Gemma 3 270M here): llama.cpp, and so the browser engine,
            # falls back to ChatML; llama-cpp-python would pick llama-2.
            self.llm.chat_format = "chatml"

    def close(self) -> None:
        self.llm.close()

    def throughput(self, prompt: str, n_decode: int) -> dict:
        """Prefill of `prompt`, then `n_decode` greedy tokens (EOS does not stop it)."""
        llm = self.llm
        llm.reset()
        toks = llm.tokenize(prompt.encode(), add_bos=True)
        t0 = time.perf_counter()
        llm.eval(toks)
        t1 = time.perf_counter()
        n_vocab = llm.n_vocab()
        out = []
        for _ in range(n_decode):  # greedy: the most likely next token, from the last position's logits
            logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(n_vocab,))
            out.append(int(np.argmax(logits)))
            llm.eval(out[-1:])
        t2 = time.perf_counter()
        self.last_text = llm.detokenize(out).decode("utf-8", "ignore")
        return {"prompt_tokens": len(toks), "prefill_tps": len(toks) / (t1 - t0),
                "decode_tokens": n_decode, "decode_tps": n_decode / (t2 - t1) if n_decode else 0.0}

    def ttft(self, messages: list[dict], max_tokens: int, fresh: bool) -> tuple[float, str]:
        """ms from the request to the first streamed text; the answer's text."""
        if fresh:
            self.llm.reset()
        t0 = time.perf_counter()
        first = 0.0
        text = ""
        for chunk in self.llm.create_chat_completion(messages, temperature=0.0, max_tokens=max_tokens,
                                                     stream=True, seed=1):
            # The first chunk comes with the first generated token (even one with no text).
            if not first:
                first = (time.perf_counter() - t0) * 1000
            piece = chunk["choices"][0]["delta"].get("content") or ""
            text += piece
        return first, text


def measure(model_path: Path, threads: int, prompts: list[str], n_decode: int, chat_tokens: int) -> list[dict]:
    """One row per repeat: prefill/decode tok/s and TTFT (first and follow-up question)."""
    nat = Native(model_path, threads)
    rows = []
    try:
        for prompt in prompts:
            row = nat.throughput(prompt, n_decode)
            row["ttft_ms"], answer = nat.ttft(chat_messages(), chat_tokens, fresh=True)
            row["followup_ttft_ms"], _ = nat.ttft(chat_messages(answer), chat_tokens, fresh=False)
            rows.append(row)
    finally:
        nat.close()
    return rows


QUANTS = ("Q4_0", "Q4_1", "Q8_0", "Q4_K_M")


def quantize(src: Path, quant: str, out_dir: Path) -> Path:
    """`src` re-quantized to `quant` with native llama.cpp's quantize (speed tests only:
    re-quantizing an already quantized model loses quality). Made once, then reused."""
    import ctypes

    import llama_cpp

    out = out_dir / f"{src.stem.split('.')[0]}.{quant}-from-{src.stem.split('.')[-1]}.gguf"
    if out.exists():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant}")
    params.allow_requantize = True
    params.nthread = 2
    tmp = out.with_suffix(".part")
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize {src.name} -> {quant} failed ({rc})")
    tmp.rename(out)
    return out
