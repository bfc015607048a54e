// Starting llama.cpp on a backend, checking it really runs there, and falling
// back down the backend plan (WebGPU -> WASM multi-thread -> single thread)
// when it does not, at load time or later (a lost device, a failed self-test).
import { T } from '../shared/protocol.js';
import { plan, kvCacheFor } from './backend.js';
import { detectFeatures, selectBuild } from './build_select.js';
import { selfTestKey } from './self_test_job.js';
import { diagnostics } from './diagnostics.js';

/**
 * A started engine with what its start told us.
 * @typedef {{engine: any, build: any, gpuLayers: string, weightBuffers: string}} Started
 */

/** llama.cpp server slots (wllama's n_parallel): how many prompts of a ChatBatch run at once. */
export const SLOTS = 4;

/** The KV cache type a load asks for, else the backend's own. */
export function kvCache(req, choice) {
  return req.kv_cache || kvCacheFor(choice.backend);
}

/**
 * llama.cpp's "<buffer> model buffer size = N MiB" lines in words: our builds' repacked q4_1
 * weights are in WASM_Q4_1_F32, the rest in CPU (or a GPU's buffer).
 * @param {string[]} log @returns {string}
 */
export function weightBuffers(log) {
  return log.map((l) => l.match(/(\S+) model buffer size =\s*([\d.]+) MiB/)).filter(Boolean)
    .map((m) => `${m[1]} ${Math.round(Number(m[2]))} MiB`).join(', ');
}

/** A logger for one engine start: llama.cpp's info lines are kept (to read layers and buffers), warnings posted. */
function startLogger(ctx, lines) {
  const keep = (...a) => { if (lines.length < 5000) lines.push(a.join(' ')); };
  return {
    debug: keep, log: keep,
    warn: (...a) => ctx.post(T.Log, { level: 'warn', message: a.join(' ') }),
    error: (...a) => ctx.post(T.Log, { level: 'error', message: a.join(' ') }),
  };
}

/**
 * Start llama.cpp on `choice`'s backend with the weights in `file`, in the engine build that
 * `req.engine` names or that suits this browser, backend and model size. An unknown or unusable
 * `req.engine` throws an EngineBuildError (code bad_field); a model no build here can hold,
 * one with code out_of_memory. On WebGPU, llama.cpp must have offloaded every layer (it
 * quietly loads on the CPU when the device is refused or unusable): throws when not.
 * @returns {Promise<Started>}
 */
export async function startChecked(ctx, model, file, req, choice) {
  const { parts } = ctx;
  const { build } = selectBuild(detectFeatures(await parts.probe), choice.backend, await parts.builds, req.engine, file.size, model.quantization);
  const log = [];
  const kv = kvCache(req, choice);
  const engine = await parts.engines.start(build, file, {
    n_ctx: req.n_ctx, n_threads: choice.threads, n_gpu_layers: build.webgpu ? choice.gpuLayers : 0, cache_type_k: kv, cache_type_v: kv,
    n_parallel: SLOTS,
  }, startLogger(ctx, log));
  const started = { engine, build, gpuLayers: '', weightBuffers: weightBuffers(log) };
  if (choice.backend === 'webgpu') {
    const m = log.map((l) => l.match(/offloaded (\d+)\/(\d+) layers to GPU/)).find(Boolean);
    if (m) started.gpuLayers = `${m[1]}/${m[2]}`;
    if (!m || m[1] !== m[2]) {
      await engine.exit().catch(() => {});
      throw new Error(m ? `llama.cpp offloaded only ${m[1]}/${m[2]} layers to the GPU (no usable WebGPU device in the engine)`
        : 'llama.cpp put no layers on the GPU (no usable WebGPU device in the engine)');
    }
  }
  return started;
}

/** Why not to use the GPU for `model` on this device ('' = no reason): a failed self-test. */
async function gpuDistrust(ctx, model) {
  const r = await ctx.parts.selfTestMemory.remembered(await selfTestKey(ctx, model));
  return r && !r.passed ? `the GPU self-test failed for this model on this device (agreement ${(r.agreement * 100).toFixed(0)}%), so the CPU is preferred` : '';
}

/** Say that `from` failed and that `next` is tried: a Log warning and a BackendFallback event. */
function reportFallback(ctx, id, model, from, next, reason) {
  ctx.state.fallbacks.push(`${from}: ${reason}`);
  next.reason = `${from} failed (${reason}); now ${next.backend}: ${next.reason}`;
  ctx.post(T.Log, { level: 'warn', message: `${from} failed for ${model.name}: ${reason}. Falling back to ${next.backend}.` }, id);
  ctx.post(T.BackendFallback, { model_id: model.id, from_backend: from, to_backend: next.backend, reason }, id);
}

/**
 * Start the engine on the first backend of the plan that works, falling back down the plan.
 * @returns {Promise<{started: Started, choice: import('./backend.js').Choice}>}
 */
export async function startWithFallback(ctx, id, model, file, req, skip = []) {
  const p = await ctx.parts.probe;
  const choices = plan(p, req.backend, req.n_threads, { bytes: model.bytes, avoidGpu: await gpuDistrust(ctx, model) })
    .filter((c) => !skip.includes(c.backend));
  for (let i = 0; ; i += 1) {
    const choice = choices[i];
    try {
      return { started: await startChecked(ctx, model, file, req, choice), choice };
    } catch (err) {
      const next = choices[i + 1];
      if (!next) throw err;
      reportFallback(ctx, id, model, choice.backend, next, String(err?.message ?? err));
    }
  }
}

/** Stop the running engine (waiting on it 2 s at most: it may be hung); returns what was loaded. */
async function stopCurrent(ctx) {
  const old = ctx.state.current;
  ctx.state.current = null;
  if (old) await Promise.race([old.engine.exit().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 2000))]);
  return ctx.state.loaded;
}

/**
 * Start the loaded model again on `req`'s plan (less `skip`) and post its ModelLoaded; on
 * failure, say `why` could not be undone.
 */
async function startAgain(ctx, id, l, req, skip, install, why, reason = '') {
  const t0 = ctx.parts.now();
  try {
    const { started, choice } = await startWithFallback(ctx, id, l.model, l.file, req, skip);
    if (reason) choice.reason = reason;
    ctx.post(T.ModelLoaded, install(ctx, started, choice, l, t0, ctx.state.loadedKey), id);
    await diagnostics(ctx, id);
  } catch (err) {
    ctx.state.loadedKey = '';
    ctx.fail(id, 'load_failed', `Could not restart ${l.model.name}${why}: ${err?.message ?? err}`, 'Reload the page.');
  }
}

/**
 * The engine hung (it did not end an answer after Stop: the job queue's watchdog let go of it):
 * stop it and start the same model on the same plan again.
 */
export async function restart(ctx, id, reason, install) {
  const l = await stopCurrent(ctx);
  if (!l) return;
  ctx.post(T.Log, { level: 'warn', message: `Restarting ${l.model.name}: ${reason}.` }, id);
  await startAgain(ctx, id, l, l.req, [], install, '');
}

/**
 * The running backend failed (a lost device during an answer, a failed self-test): restart
 * the same model on the next backend and tell the controller. `install` records the result.
 */
export async function recover(ctx, id, from, reason, install) {
  const l = await stopCurrent(ctx);
  if (!l) return;
  const p = await ctx.parts.probe;
  const skip = from === 'webgpu' ? ['webgpu'] : ['webgpu', from];
  const next = plan(p, l.req.backend === 'webgpu' ? 'auto' : l.req.backend, l.req.n_threads, { bytes: l.model.bytes }).find((c) => !skip.includes(c.backend));
  if (!next) return ctx.fail(id, 'load_failed', `${from} failed (${reason}) and there is no other backend to run on.`, 'Reload the page.');
  reportFallback(ctx, id, l.model, from, next, reason);
  const req = { ...l.req, backend: next.backend === 'wasm-st' ? 'wasm-st' : 'auto' };
  await startAgain(ctx, id, l, req, skip, install, ` after ${from} failed`, next.reason);
}
