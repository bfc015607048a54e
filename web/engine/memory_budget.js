// Will this model fit? An estimate made before loading, so that a phone gets a
// clear refusal or a smaller context instead of a killed tab.
//
// need = weights + KV cache (f16, every layer, the whole context; the CPU's q8_0
// cache takes about half, so this is an upper bound there) + compute
// buffers (llama.cpp's graph for one 512-token micro-batch) + runtime overhead.
// The compute term was calibrated against llama.cpp's own "compute buffer size"
// log lines for the catalog's models (see tests/test_memory_budget.py).

import { WASM32_MAX } from './build_select.js';
import { GiB, MiB, formatBytes as fmt } from '../shared/units.js';

const UBATCH = 512; // llama.cpp's default micro-batch
const OVERHEAD = 64 * MiB; // wasm runtime, tokenizer, server state
/** A tab can count on about half of what the device reports. */
const DEVICE_SHARE = 0.5;
const MIN_CTX = 256;

/**
 * @typedef {{name: string, bytes: number, n_layer: number, n_embd: number, n_head: number, n_head_kv: number,
 *   key_length: number, value_length: number, n_vocab: number}} ModelShape
 * @typedef {{weights: number, kv: number, compute: number, overhead: number, total: number}} Need
 */

/** @param {ModelShape} m @param {number} nCtx @returns {Need} */
export function estimate(m, nCtx) {
  const kv = m.n_layer * nCtx * m.n_head_kv * (m.key_length + m.value_length) * 2;
  const ub = Math.min(UBATCH, nCtx);
  // llama.cpp reserves the larger of the logits of one micro-batch and its
  // attention scores over the whole context (f32), plus a few activations.
  const compute = 4 * ub * (Math.max(m.n_vocab, nCtx * (m.n_head + 1)) + 4 * m.n_embd);
  const weights = m.bytes;
  return { weights, kv, compute, overhead: OVERHEAD, total: weights + kv + compute + OVERHEAD };
}

/**
 * How many bytes this model may use here, and why.
 * @param {number} deviceMemoryGb navigator.deviceMemory (0: the browser does not say)
 * @param {number} engineMaxBytes what the engine build's WebAssembly memory may grow to (a 32-bit one's 4 GiB unless said)
 * @returns {{bytes: number, why: string}}
 */
export function budget(deviceMemoryGb, engineMaxBytes = WASM32_MAX) {
  const device = deviceMemoryGb > 0 ? deviceMemoryGb * GiB * DEVICE_SHARE : Infinity;
  if (device < engineMaxBytes) {
    return { bytes: device, why: `about half of this device's ${deviceMemoryGb} GB of memory` };
  }
  return { bytes: engineMaxBytes, why: `the engine's ${engineMaxBytes / GiB} GiB WebAssembly memory` };
}

/**
 * The context to load with: the requested one when it fits, else the largest
 * power-of-two fraction of it that does; null (with the reason) when even the
 * smallest context does not fit.
 * @param {ModelShape} m @param {number} nCtx @param {{bytes: number, why: string}} limit
 * @returns {{nCtx: number, notice: string} | {nCtx: null, reason: string}}
 */
export function fitContext(m, nCtx, limit) {
  const describe = (need) => `${fmt(need.total)} (weights ${fmt(need.weights)}, KV cache ${fmt(need.kv)}, buffers ${fmt(need.compute + need.overhead)})`;
  const asked = estimate(m, nCtx);
  if (asked.total <= limit.bytes) return { nCtx, notice: '' };
  for (let n = Math.floor(nCtx / 2); n >= MIN_CTX; n = Math.floor(n / 2)) {
    if (estimate(m, n).total <= limit.bytes) {
      return {
        nCtx: n,
        notice: `Context reduced from ${nCtx} to ${n} tokens to fit memory: ${nCtx} tokens would need ${describe(asked)}, more than ${fmt(limit.bytes)} (${limit.why}).`,
      };
    }
  }
  const least = estimate(m, Math.min(nCtx, MIN_CTX));
  return {
    nCtx: null,
    reason: `${m.name} does not fit in memory here: even with a ${Math.min(nCtx, MIN_CTX)}-token context it needs ${describe(least)}, and the limit is ${fmt(limit.bytes)} (${limit.why}).`,
  };
}
