// A bare llama.cpp decode loop for profiling the engine's wasm outside the browser: the same
// static libraries the simd build links (its CMake tree), greedy tokens, llama.cpp's own timings.
// Usage (node): decode.js MODEL N_PROMPT N_GEN  (see run.sh)
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "llama.h"

static double now_ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }

int main(int argc, char ** argv) {
    if (argc < 4) { fprintf(stderr, "usage: decode MODEL N_PROMPT N_GEN\n"); return 2; }
    const int n_prompt = atoi(argv[2]), n_gen = atoi(argv[3]);
    llama_backend_init();
    struct llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 2048; cp.n_batch = 512; cp.n_ubatch = 512; cp.n_threads = 1; cp.n_threads_batch = 1;
    cp.type_k = GGML_TYPE_Q8_0; cp.type_v = GGML_TYPE_Q8_0;  // as the app's CPU backends
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
    cp.no_perf = false;
    struct llama_context * ctx = llama_init_from_model(model, cp);
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);
    llama_token * tokens = malloc(sizeof(llama_token) * (n_prompt + 1));
    const char * text = "The quick brown fox jumps over the lazy dog while the sea rolls on and on. ";
    int n = 0;
    while (n < n_prompt) {  // repeat the sentence up to n_prompt tokens
        llama_token tmp[64];
        int k = llama_tokenize(vocab, text, 75, tmp, 64, n == 0, false);
        for (int i = 0; i < k && n < n_prompt; i++) tokens[n++] = tmp[i];
    }
    double t0 = now_ms();
    for (int i = 0; i < n; i += 512) {  // n_batch at a time
        const int k = n - i < 512 ? n - i : 512;
        if (llama_decode(ctx, llama_batch_get_one(tokens + i, k))) { fprintf(stderr, "prompt decode failed\n"); return 1; }
    }
    double t1 = now_ms();
    llama_token tok = 0;
    for (int i = 0; i < n_gen; i++) {
        const float * logits = llama_get_logits_ith(ctx, -1);
        tok = 0;
        for (int v = 1; v < n_vocab; v++) if (logits[v] > logits[tok]) tok = v;
        if (llama_decode(ctx, llama_batch_get_one(&tok, 1))) { fprintf(stderr, "decode failed\n"); return 1; }
    }
    double t2 = now_ms();
    printf("prompt %d tokens: %.1f tok/s; decode %d tokens: %.1f tok/s\n", n, n * 1e3 / (t1 - t0), n_gen, n_gen * 1e3 / (t2 - t1));
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
