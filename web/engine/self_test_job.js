// Running the GPU self-test on the engines: the loaded engine for whichever
// side it runs on, a second one started for the other side (self_test.js has
// the comparison, engine_memory.js what is remembered).
import { T } from '../shared/protocol.js';
import { adapterKey, plan } from './backend.js';
import * as selfTest from './self_test.js';
import { diagnostics } from './diagnostics.js';
import { recover, startChecked } from './fallback.js';
import { install } from './loading.js';

const AUTO_SELF_TEST_TOKENS = 8; // small: a software GPU decodes ~2 tokens/s

/** The self-test memory key for a model on this adapter. */
export async function selfTestKey(ctx, model) {
  return `${model.sha256 || model.id}|${adapterKey(await ctx.parts.probe)}`;
}

/**
 * Greedy-decode the fixed prompt on the GPU and on the CPU and compare.
 * @returns {Promise<Record<string, any>>} the SelfTestResult fields
 */
async function runSelfTest(ctx, nTokens) {
  const { state } = ctx;
  const l = state.loaded;
  const p = await ctx.parts.probe;
  const base = { model_id: l?.model.id ?? '', adapter: p.webgpu?.adapter ?? '', n_tokens: nTokens, threshold: selfTest.THRESHOLD };
  if (!l || !state.current) return { ...base, error: 'No model is loaded.' };
  const gpuChoice = plan(p, 'webgpu', 1, { bytes: l.model.bytes })[0];
  if (gpuChoice.backend !== 'webgpu') return { ...base, error: `No GPU to test: ${gpuChoice.reason}` };
  const cpuChoice = plan(p, 'auto', l.req.n_threads, { avoidGpu: 'CPU side of the self-test' }).find((c) => c.backend !== 'webgpu');
  const onGpu = state.choice?.backend === 'webgpu';
  /** @type {import('./fallback.js').Started | null} */ let other = null;
  try {
    other = await startChecked(ctx, l.model, l.file, { ...l.req, n_ctx: 256 }, onGpu ? cpuChoice : gpuChoice);
    const gpu = onGpu ? state.current : other;
    const cpu = onGpu ? other : state.current;
    const pieces = await selfTest.greedy(gpu.engine, nTokens);
    const { cpu: cpuPieces, ...a } = await selfTest.compare(pieces, cpu.engine);
    return { ...base, ...a, gpu_text: pieces.join(''), cpu_text: cpuPieces.join(''), gpu_layers: gpu.gpuLayers };
  } catch (err) {
    return { ...base, error: `The self-test could not run: ${err?.message ?? err}` };
  } finally {
    await other?.engine.exit().catch(() => {});
  }
}

/** Run the self-test, remember and report it; a failed one moves the model to the CPU. */
export async function selfTestAndReport(ctx, id, nTokens) {
  const { state } = ctx;
  const r = await runSelfTest(ctx, nTokens);
  ctx.post(T.SelfTestResult, r, id);
  if (r.error) {
    state.selfTest = r.error;
  } else {
    state.selfTest = `${r.passed ? 'passed' : 'FAILED'}: GPU and CPU agree on ${(r.agreement * 100).toFixed(0)}% of ${r.n_tokens} greedy tokens (threshold ${(r.threshold * 100).toFixed(0)}%)`;
    await ctx.parts.selfTestMemory.remember(await selfTestKey(ctx, state.loaded.model), { agreement: r.agreement, passed: r.passed, n_tokens: r.n_tokens });
    if (!r.passed) {
      ctx.post(T.Log, { level: 'warn', message: `GPU self-test failed: ${state.selfTest}. The CPU is preferred for this model on this device.` }, id);
      if (state.choice?.backend === 'webgpu') return recover(ctx, id, 'webgpu', `self-test failed: ${state.selfTest}`, install);
    }
  }
  return diagnostics(ctx, id);
}

/**
 * The first time WebGPU runs a model on a device, check it against the CPU.
 * @returns {Promise<boolean>} true when the model moved off the GPU (its ModelLoaded is posted)
 */
export async function autoSelfTest(ctx, id, model) {
  if (ctx.state.choice?.backend !== 'webgpu' || await ctx.parts.selfTestMemory.remembered(await selfTestKey(ctx, model))) return false;
  await selfTestAndReport(ctx, id, AUTO_SELF_TEST_TOKENS);
  return ctx.state.choice?.backend !== 'webgpu';
}
