// GPU-vs-CPU correctness self-test, and what it found, remembered per model
// and adapter (IndexedDB, so a GPU that produced garbage once is not trusted
// with that model again on this device).
//
// Both engines greedy-decode the same fixed prompt for N tokens; agreement is
// the share of positions where they produced the same token. f16 GPU kernels
// and f32 CPU kernels may part ways on a near tie late in a run, so the
// threshold is below 1; a broken GPU disagrees from the first token.
import { openDB } from '../vendor/idb/index.js';

export const PROMPT = 'The capital of France is';
export const THRESHOLD = 0.75;

/** @type {Promise<any> | null} */
let dbPromise = null;
const db = () => (dbPromise ??= openDB('offgrid-backend', 1, { upgrade: (d) => d.createObjectStore('self_test') }));

/** @returns {Promise<{agreement: number, passed: boolean, n_tokens: number, at: number} | null>} */
export async function remembered(key) {
  try {
    return (await (await db()).get('self_test', key)) ?? null;
  } catch {
    return null;
  }
}

export async function remember(key, result) {
  try {
    await (await db()).put('self_test', { ...result, at: Date.now() }, key);
  } catch {
    // Private mode or no quota: the test runs again next time.
  }
}

/** Greedy pieces (one per generated token) of `w` for the fixed prompt. */
export async function greedy(w, nTokens) {
  const pieces = [];
  await w.createCompletion({
    prompt: PROMPT, max_tokens: nTokens, temperature: 0, top_k: 1, seed: 0, stream: true, cache_prompt: false,
    onData: (c) => { const t = c.choices?.[0]?.text; if (t !== undefined && t !== '') pieces.push(t); },
  });
  return pieces;
}

/** Compare two greedy runs. */
export function agreement(gpu, cpu) {
  let prefix = 0;
  while (prefix < gpu.length && prefix < cpu.length && gpu[prefix] === cpu[prefix]) prefix += 1;
  let same = 0;
  for (let i = 0; i < Math.min(gpu.length, cpu.length); i += 1) if (gpu[i] === cpu[i]) same += 1;
  const n = Math.max(gpu.length, cpu.length, 1);
  const share = same / n;
  return { agreement: share, matched_prefix: prefix, n_tokens: Math.max(gpu.length, cpu.length), passed: share >= THRESHOLD };
}
