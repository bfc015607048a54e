// GPU-vs-CPU correctness self-test (engine_memory.js remembers what it
// found; self_test_job.js runs it on the engines).
//
// The GPU greedy-decodes a fixed prompt for N tokens; the CPU decodes it too,
// and at each position where they differ it is asked for its own next token
// after the GPU's text so far (teacher forcing). Agreement is the share of
// positions where both choose the same token. f16 GPU kernels and f32 CPU
// kernels may still differ on a near tie, so the threshold is below 1; a
// broken GPU disagrees almost everywhere.

export const PROMPT = 'The capital of France is';
export const THRESHOLD = 0.75;

/** Greedy pieces (one per generated token) of `w` after `prompt`. */
export async function greedy(w, nTokens, prompt = PROMPT) {
  const pieces = [];
  await w.createCompletion({
    prompt, max_tokens: nTokens, temperature: 0, top_k: 1, seed: 0, stream: true, cache_prompt: true,
    onData: (c) => { const t = c.choices?.[0]?.text; if (t !== undefined && t !== '') pieces.push(t); },
  });
  return pieces;
}

/**
 * Compare the GPU's greedy run with the CPU, teacher-forced: at every
 * position the CPU is given the GPU's text so far and asked for its own next
 * token. Free-running runs part for good at the first near tie (f16 vs f32
 * rounding), which would count every later token as a disagreement; forced,
 * only the positions where the two really pick differently count.
 * @returns {Promise<{agreement: number, matched_prefix: number, n_tokens: number, passed: boolean, cpu: string[]}>}
 */
export async function compare(gpuPieces, cpuW) {
  const cpu = await greedy(cpuW, gpuPieces.length || 1);
  let prefix = 0;
  while (prefix < gpuPieces.length && prefix < cpu.length && gpuPieces[prefix] === cpu[prefix]) prefix += 1;
  let same = prefix;
  for (let i = prefix; i < gpuPieces.length; i += 1) {
    const [next] = await greedy(cpuW, 1, PROMPT + gpuPieces.slice(0, i).join(''));
    if (next === gpuPieces[i]) same += 1;
  }
  const n = Math.max(gpuPieces.length, 1);
  return { agreement: same / n, matched_prefix: prefix, n_tokens: gpuPieces.length, passed: same / n >= THRESHOLD, cpu };
}
