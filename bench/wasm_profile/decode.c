// A bare llama.cpp decode loop for profiling the engine's wasm outside the browser: the same
// static libraries the simd build links (its CMake tree), greedy tokens, llama.cpp's own timings.
// Usage (node): decode.js MODEL N_PROMPT N_GEN  (see run.sh)
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "llama.h"

static double now_ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }

// What each sampler of the app's chain costs per token on this vocabulary (wllama runs llama.cpp's
// server sampler chain for every token; the loop above takes the argmax).
static void time_sampler(const char * name, struct llama_sampler * s, const float * logits, int n_vocab,
                         llama_token_data * data, llama_token last) {
    for (int i = 0; i < 64; i++) llama_sampler_accept(s, (last + i * 7) % n_vocab);
    const int reps = 200;
    double t0 = now_ms();
    for (int r = 0; r < reps; r++) {
        for (int v = 0; v < n_vocab; v++) data[v] = (llama_token_data){v, logits[v], 0.0f};
        llama_token_data_array a = {data, (size_t) n_vocab, -1, false};
        llama_sampler_apply(s, &a);
    }
    printf("  sampler %-28s %7.3f ms/token (with filling the candidates)\n", name, (now_ms() - t0) / reps);
    llama_sampler_free(s);
}

static void sampler_costs(struct llama_context * ctx, int n_vocab, llama_token last) {
    const float * logits = llama_get_logits_ith(ctx, -1);
    llama_token_data * data = malloc(sizeof(llama_token_data) * n_vocab);
    time_sampler("none", llama_sampler_init_greedy(), logits, n_vocab, data, last);
    time_sampler("penalties(64, 1.1)", llama_sampler_init_penalties(n_vocab, 64, 1.1f, 0.0f, 0.0f), logits, n_vocab, data, last);
    time_sampler("top_k(40)", llama_sampler_init_top_k(40), logits, n_vocab, data, last);
    time_sampler("top_p(0.95)", llama_sampler_init_top_p(0.95f, 1), logits, n_vocab, data, last);
    time_sampler("min_p(0.05)", llama_sampler_init_min_p(0.05f, 1), logits, n_vocab, data, last);
    time_sampler("temp_ext(0.2)", llama_sampler_init_temp_ext(0.2f, 0.0f, 1.0f), logits, n_vocab, data, last);
    time_sampler("dist", llama_sampler_init_dist(1), logits, n_vocab, data, last);
    struct llama_sampler * chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(chain, llama_sampler_init_penalties(n_vocab, 64, 1.1f, 0.0f, 0.0f));
    llama_sampler_chain_add(chain, llama_sampler_init_top_k(40));
    llama_sampler_chain_add(chain, llama_sampler_init_top_p(0.95f, 1));
    llama_sampler_chain_add(chain, llama_sampler_init_min_p(0.05f, 1));
    llama_sampler_chain_add(chain, llama_sampler_init_temp_ext(0.2f, 0.0f, 1.0f));
    llama_sampler_chain_add(chain, llama_sampler_init_dist(1));
    time_sampler("the app's chain", chain, logits, n_vocab, data, last);
    free(data);
}

int main(int argc, char ** argv) {
    if (argc < 4) { fprintf(stderr, "usage: decode MODEL N_PROMPT N_GEN\n"); return 2; }
    const int n_prompt = atoi(argv[2]), n_gen = atoi(argv[3]);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    // NO_EXTRA_BUFTS=1: ggml's layout for every weight (no repacked q4_1), to compare in one build.
    if (getenv("NO_EXTRA_BUFTS")) mp.use_extra_bufts = false;
    struct llama_model * model = llama_model_load_from_file(argv[1], mp);
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
    unsigned tokens_hash = 0;  // the greedy tokens, to compare builds: same kernels' sums, same tokens
    double tw = t1;  // decode speed per 128 tokens: how it falls as the context grows
    for (int i = 0; i < n_gen; i++) {
        if (i > 0 && i % 128 == 0) {
            const double t = now_ms();
            printf("  context %d-%d: %.1f tok/s\n", n + i - 128, n + i, 128 * 1e3 / (t - tw));
            tw = t;
        }
        const float * logits = llama_get_logits_ith(ctx, -1);
        tok = 0;
        for (int v = 1; v < n_vocab; v++) if (logits[v] > logits[tok]) tok = v;
        if (llama_decode(ctx, llama_batch_get_one(&tok, 1))) { fprintf(stderr, "decode failed\n"); return 1; }
        tokens_hash = tokens_hash * 31 + (unsigned) tok;
    }
    double t2 = now_ms();
    if (getenv("SAMPLERS")) sampler_costs(ctx, n_vocab, tok);
    printf("prompt %d tokens: %.1f tok/s; decode %d tokens: %.1f tok/s; tokens hash %08x\n", n, n * 1e3 / (t1 - t0), n_gen, n_gen * 1e3 / (t2 - t1), tokens_hash);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
