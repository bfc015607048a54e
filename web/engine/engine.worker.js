// The engine worker: llama.cpp (through wllama) behind the typed protocol.
//
// Every frame in is validated with the generated protocol module; every
// refusal is an EngineError naming the field or state, and the worker stays
// usable. It holds no chat logic: the controller sends whole prompts.
import { Wllama } from '../../vendor/wllama/index.js';
import { countTokens, generate } from './generation.js';
import { PROTOCOL_VERSION, T, make, validate } from '../shared/protocol.js';
import { probe, choose, plan, adapterKey, kvCacheFor } from './backend.js';
import * as selfTest from './self_test.js';
import {
  deleteModel, ensureStored, isCached, openModel, simulateQuota, storageEstimate, storedModels, WeightStoreError,
} from './weight_store.js';
import { budget, fitContext } from './memory_budget.js';
import { EngineBuildError, WASM32_MAX, describe, detectFeatures, fetchBuilds, loadBuild, memoryOf, selectBuild, weightBytes } from './build_select.js';

/** @typedef {Blob | import('./weight_store.js').StoredModelFile} ModelFile  what the engine reads weights from */

const ENGINE = 'wllama 3.8.1'; // which build (stock, simd) runs a model: ModelLoaded.engine
const AUTO_SELF_TEST_TOKENS = 8; // small: a software GPU decodes ~2 tokens/s
const here = (path) => new URL(path, import.meta.url).href;
const SITE_ROOT = here('../../');
const builds = fetchBuilds(SITE_ROOT);

/** @type {(type: string, fields?: object, id?: string) => void} */
const post = (type, fields = {}, id = '') => self.postMessage(JSON.stringify(make(type, fields, id)));
const fail = (id, code, message, hint = '', field = '') => post(T.EngineError, { code, message, hint, field }, id);

// Test hooks (for e2e tests and for trying the fallback by hand), set by the
// page's URL fragment #offgrid-test=<hook> (main.js passes it in the worker's
// name). Each makes a real failure happen inside the real engine worker:
//   webgpu-refuse       the engine's requestAdapter() returns null (as on a
//                       browser that refuses the adapter): llama.cpp then loads
//                       nothing onto the GPU, which loadModel must notice;
//   webgpu-lose-device  the engine's GPUDevice is destroyed (device.destroy(),
//                       a real device loss) when the first answer starts;
//   no-jspi             this worker has no JSPI (WebAssembly.Suspending is
//                       removed before the probe), as in Safari or Firefox:
//                       Debian Chromium 150 has no switch left to turn JSPI off.
const TEST_HOOK = (self.name.match(/#offgrid-test=([\w-]+)/) ?? [])[1] ?? '';
if (TEST_HOOK === 'no-jspi') {
  delete WebAssembly.Suspending;
  delete WebAssembly.promising;
}
const HOOK_CODE = {
  'webgpu-refuse': 'try{Object.defineProperty(WorkerNavigator.prototype,"gpu",{get:()=>({requestAdapter:async()=>null})});}catch(e){}',
  'webgpu-lose-device': 'try{const rd=GPUAdapter.prototype.requestDevice;let devs=[];GPUAdapter.prototype.requestDevice=async function(...a){const d=await rd.apply(this,a);devs.push(d);return d};'
    + 'addEventListener("message",(e)=>{if(e.data&&e.data.verb==="offgrid.test.lose-device"){for(const d of devs)d.destroy();}});}catch(e){}',
}[TEST_HOOK];
if (HOOK_CODE) {
  // wllama builds its llama.cpp worker from one string that starts with RUN_OPTIONS; prefix the hook to it.
  const NativeBlob = self.Blob;
  self.Blob = class extends NativeBlob {
    constructor(parts, options) {
      if (Array.isArray(parts) && typeof parts[0] === 'string' && parts[0].startsWith('const RUN_OPTIONS')) parts = [HOOK_CODE, ';', ...parts];
      super(parts, options);
    }
  };
}

const state = {
  /** @type {Wllama | null} */ wllama: null,
  modelId: '',
  /** @type {import('./backend.js').Choice | null} */ choice: null,
  /** @type {import('./build_select.js').Build | null} */ build: null, // the engine build running the model
  /** @type {{id: string, abort: AbortController} | null} */ generation: null,
  loadedKey: '', // which LoadModel the loaded model answers, to reuse a warm-up load
  /** @type {Record<string, any> | null} */ loadedInfo: null, // the ModelLoaded fields
  lifecycle: Promise.resolve(), // load/unload run one after another
  stopEarly: new Set(), // ids of requests stopped before they started
  /** @type {{model: any, blob: ModelFile, req: any, fromCache: boolean} | null} */ loaded: null, // to restart on another backend
  /** @type {string[]} */ fallbacks: [], // "webgpu: why" for each backend that failed this session
  selfTest: '', // the last self-test, in words
  hookFired: false,
};

// llama.cpp's log lines of the engine being started (to read how many layers went to the GPU,
// and into which buffers the weights went).
/** @type {string[]} */
let engineLog = [];

const probed = probe();
// Test hooks (forwarded by main.js from the page's URL): plan as a device that
// reports this much memory, or whose browser grants this much storage.
const hooks = new URL(self.location.href).searchParams;
const simulatedMemoryGb = Number(hooks.get('device_memory_gb')) || 0;
if (Number(hooks.get('quota_mb')) > 0) simulateQuota(Number(hooks.get('quota_mb')) * 1e6);
const catalog = fetch(here('../../models/catalog.json')).then((r) => {
  if (!r.ok) throw new Error(`catalog.json: HTTP ${r.status}`);
  return r.json();
});

// Downloads in progress, by model id, shared by the prefetch and LoadModel.
// Progress frames carry the id of the LoadModel waiting for it ('' before one).
/** @type {Map<string, {promise: Promise<boolean>, requestId: string}>} */
const downloads = new Map();
function store(model) {
  let d = downloads.get(model.id);
  if (!d) {
    d = { promise: null, requestId: '' };
    const entry = d;
    d.promise = ensureStored(model, here(`../../models/${model.file}`), (p) => post(T.LoadProgress, {
      model_id: model.id, phase: p.phase, loaded: p.loaded, total: p.total, from_cache: p.fromCache, rate: p.rate,
    }, entry.requestId));
    downloads.set(model.id, d);
    d.promise.finally(() => downloads.delete(model.id)).catch(() => {});
  }
  return d;
}

/** The catalog entry for a LoadModel, or null after posting why there is none. */
async function findModel(id, req) {
  const cat = await catalog;
  if (req.url) {
    const url = new URL(req.url, self.location.href);
    if (url.origin !== self.location.origin) {
      fail(id, 'bad_field', `url ${req.url} is not on this origin.`, 'Only models served by this app can be loaded; nothing is fetched from elsewhere.', 'url');
      return null;
    }
    return { id: url.pathname, name: url.pathname.split('/').pop(), url: url.href, quantization: '', license: '' };
  }
  const model = cat.models.find((m) => m.id === req.model_id);
  if (!model) fail(id, 'unknown_model', `No model "${req.model_id}" in the catalog.`, `Known: ${cat.models.map((m) => m.id).join(', ')}`, 'model_id');
  return model ?? null;
}

/** A model that is not in the catalog has no chunk hashes: fetch it whole (same origin). */
async function fetchUncatalogued(model) {
  const res = await fetch(model.url);
  if (!res.ok) throw new Error(`HTTP ${res.status} for ${model.url}`);
  const blob = await res.blob();
  model.bytes = blob.size;
  return blob;
}

async function listModels(id) {
  const cat = await catalog;
  const models = await Promise.all(cat.models.map(async (m) => ({
    model_id: m.id, name: m.name, file: m.file, bytes: m.bytes, sha256: m.sha256,
    quantization: m.quantization, license: m.license, cached: await isCached(m),
    version: m.version ?? '', context_length: m.context_length ?? 0,
  })));
  post(T.ModelList, { models, default_id: cat.default }, id);
}

async function storageReport(id) {
  const cat = await catalog;
  const [stored, { usage, quota, persisted }] = await Promise.all([storedModels(), storageEstimate()]);
  const models = stored.map((m) => ({
    model_id: m.id, name: m.name, version: m.version, bytes: m.bytes, stored_bytes: m.stored, complete: m.complete,
    current: cat.models.some((c) => c.id === m.id && c.sha256 === m.sha256),
  }));
  post(T.StorageReport, { models, usage, quota, persisted }, id);
}

/** Delete a stored model (unloading it first when it is the one loaded). */
async function deleteStored(id, modelId) {
  if (!(await storedModels()).some((m) => m.id === modelId)) {
    return fail(id, 'unknown_model', `No model "${modelId}" is stored on this device.`, '', 'model_id');
  }
  if (state.modelId === modelId) post(T.ModelUnloaded, { model_id: await unload() }, id);
  await deleteModel(modelId);
  await listModels(id);
  return storageReport(id);
}

async function diagnostics(id) {
  const p = await probed;
  const c = state.choice ?? choose(p);
  const g = p.webgpu;
  const features = detectFeatures(p);
  post(T.Diagnostics, {
    backend: c.backend, backend_reason: c.reason, threads: c.threads,
    cross_origin_isolated: p.crossOriginIsolated, hardware_concurrency: p.hardwareConcurrency,
    webgpu_adapter: g?.adapter ?? '', webgpu_features: g?.features ?? [],
    jspi: p.jspi, memory64: p.memory64, compat: c.compat, device_memory_gb: p.deviceMemoryGb,
    user_agent: p.userAgent, libllama_version: Wllama.getLibllamaVersion(),
    webgpu_vendor: g?.vendor ?? '', webgpu_architecture: g?.architecture ?? '', webgpu_description: g?.description || (g ? '' : p.webgpuError),
    webgpu_fallback: g?.fallback ?? false, shader_f16: g?.shaderF16 ?? false, subgroups: g?.subgroups ?? false,
    max_buffer_size: g?.maxBufferSize ?? 0, max_storage_buffer_binding_size: g?.maxStorageBufferBindingSize ?? 0,
    gpu_layers: c.backend === 'webgpu' ? gpuLayersOf.get(state.wllama) ?? '' : '',
    weight_buffers: weightBuffersOf.get(state.wllama) ?? '',
    browser: p.browser, platform: p.platform, self_test: state.selfTest, fallbacks: state.fallbacks,
    engine: describe(state.build ?? selectBuild(features, c.backend, await builds).build, features),
    kv_cache: state.loadedInfo?.kv_cache ?? kvCacheFor(c.backend),
  }, id);
}

/** The self-test memory key for a model on this adapter. */
async function selfTestKey(model) {
  return `${model.sha256 || model.id}|${adapterKey(await probed)}`;
}

/** "offloaded/total" layers of each engine started on WebGPU. */
const gpuLayersOf = new WeakMap();
/** Where each started engine's weights went, in words (weightBuffers), e.g. "CPU 29 MiB, WASM_Q4_1_F32 76 MiB". */
const weightBuffersOf = new WeakMap();
/** The engine build each started engine runs (a self-test starts a second engine on another build). */
const buildOf = new WeakMap();

/**
 * llama.cpp's "<buffer> model buffer size = N MiB" lines in words: our builds' repacked q4_1
 * weights are in WASM_Q4_1_F32, the rest in CPU (or a GPU's buffer).
 * @param {string[]} log @returns {string}
 */
function weightBuffers(log) {
  return log.map((l) => l.match(/(\S+) model buffer size =\s*([\d.]+) MiB/)).filter(Boolean)
    .map((m) => `${m[1]} ${Math.round(Number(m[2]))} MiB`).join(', ');
}

/** Why not to use the GPU for `model` on this device ('' = no reason): a failed self-test. */
async function gpuDistrust(model) {
  const r = await selfTest.remembered(await selfTestKey(model));
  return r && !r.passed ? `the GPU self-test failed for this model on this device (agreement ${(r.agreement * 100).toFixed(0)}%), so the CPU is preferred` : '';
}

/**
 * Start `choice` and check it really runs there: on WebGPU, llama.cpp must
 * have offloaded every layer (it quietly loads on the CPU when the device
 * is refused or unusable). Throws when not.
 */
async function startChecked(model, blob, req, choice) {
  engineLog = [];
  const w = await startEngine(model, blob, req, choice);
  weightBuffersOf.set(w, weightBuffers(engineLog));
  if (choice.backend === 'webgpu') {
    const m = engineLog.map((l) => l.match(/offloaded (\d+)\/(\d+) layers to GPU/)).find(Boolean);
    if (m) gpuLayersOf.set(w, `${m[1]}/${m[2]}`);
    if (!m || m[1] !== m[2]) {
      await w.exit().catch(() => {});
      throw new Error(m ? `llama.cpp offloaded only ${m[1]}/${m[2]} layers to the GPU (no usable WebGPU device in the engine)`
        : 'llama.cpp put no layers on the GPU (no usable WebGPU device in the engine)');
    }
  }
  return w;
}

/**
 * Start the engine on the first backend of the plan that works, falling back
 * down the plan; each failure is posted (Log warn + BackendFallback).
 * @returns {Promise<{w: Wllama, choice: import('./backend.js').Choice}>}
 */
async function startWithFallback(id, model, blob, req, skip = []) {
  const p = await probed;
  const choices = plan(p, req.backend, req.n_threads, { bytes: model.bytes, avoidGpu: await gpuDistrust(model) })
    .filter((c) => !skip.includes(c.backend));
  for (let i = 0; ; i += 1) {
    const choice = choices[i];
    try {
      return { w: await startChecked(model, blob, req, choice), choice };
    } catch (err) {
      const next = choices[i + 1];
      if (!next) throw err;
      reportFallback(id, model, choice.backend, next, String(err?.message ?? err));
    }
  }
}

function reportFallback(id, model, from, next, reason) {
  state.fallbacks.push(`${from}: ${reason}`);
  next.reason = `${from} failed (${reason}); now ${next.backend}: ${next.reason}`;
  post(T.Log, { level: 'warn', message: `${from} failed for ${model.name}: ${reason}. Falling back to ${next.backend}.` }, id);
  post(T.BackendFallback, { model_id: model.id, from_backend: from, to_backend: next.backend, reason }, id);
}

/** Record a started engine as the loaded model; returns the ModelLoaded fields. */
function install(w, choice, model, req, blob, fromCache, t0, key, notice = '') {
  state.wllama = w;
  state.modelId = model.id;
  state.choice = choice;
  state.loadedKey = key;
  state.loaded = { model, blob, req, fromCache };
  state.build = buildOf.get(w) ?? null;
  const info = w.getLoadedContextInfo();
  state.loadedInfo = {
    model_id: model.id, name: model.name, architecture: info.metadata['general.architecture'] ?? '',
    parameters: info.metadata['general.size_label'] ?? '', quantization: model.quantization, bytes: model.bytes,
    n_ctx: info.n_ctx, n_ctx_train: info.n_ctx_train, n_vocab: info.n_vocab, n_layer: info.n_layer, n_embd: info.n_embd,
    chat_template: w.getChatTemplate() ?? '', backend: choice.backend, engine: state.build?.id ?? '', kv_cache: kvCache(req, choice),
    threads: w.getNumThreads(), load_ms: performance.now() - t0, from_cache: fromCache, notice,
  };
  return state.loadedInfo;
}

/**
 * The running backend failed (a lost device during an answer, a failed self-test):
 * restart the same model on the next backend and tell the controller.
 */
async function recover(id, from, reason) {
  const l = state.loaded;
  if (!l) return;
  const t0 = performance.now();
  const w = state.wllama;
  state.wllama = null;
  if (w) await w.exit().catch(() => {});
  const p = await probed;
  const skip = from === 'webgpu' ? ['webgpu'] : ['webgpu', from];
  const next = plan(p, l.req.backend === 'webgpu' ? 'auto' : l.req.backend, l.req.n_threads, { bytes: l.model.bytes }).find((c) => !skip.includes(c.backend));
  if (!next) return fail(id, 'load_failed', `${from} failed (${reason}) and there is no other backend to run on.`, 'Reload the page.');
  reportFallback(id, l.model, from, next, reason);
  try {
    const started = await startWithFallback(id, l.model, l.blob, { ...l.req, backend: next.backend === 'wasm-st' ? 'wasm-st' : 'auto' }, skip);
    started.choice.reason = next.reason;
    post(T.ModelLoaded, install(started.w, started.choice, l.model, l.req, l.blob, l.fromCache, t0, state.loadedKey), id);
    diagnostics(id);
  } catch (err) {
    state.loadedKey = '';
    fail(id, 'load_failed', `Could not restart ${l.model.name} after ${from} failed: ${err?.message ?? err}`, 'Reload the page.');
  }
}

/**
 * Greedy-decode the fixed prompt on the GPU and on the CPU and compare.
 * Uses the loaded engine for whichever side it runs on and starts the other.
 * @returns {Promise<Record<string, any>>} the SelfTestResult fields
 */
async function runSelfTest(nTokens) {
  const l = state.loaded;
  const p = await probed;
  const base = { model_id: l?.model.id ?? '', adapter: p.webgpu?.adapter ?? '', n_tokens: nTokens, threshold: selfTest.THRESHOLD };
  if (!l || !state.wllama) return { ...base, error: 'No model is loaded.' };
  const gpuChoice = plan(p, 'webgpu', 1, { bytes: l.model.bytes })[0];
  if (gpuChoice.backend !== 'webgpu') return { ...base, error: `No GPU to test: ${gpuChoice.reason}` };
  const cpuChoice = plan(p, 'auto', l.req.n_threads, { avoidGpu: 'CPU side of the self-test' }).find((c) => c.backend !== 'webgpu');
  const onGpu = state.choice?.backend === 'webgpu';
  const req = { ...l.req, n_ctx: 256 };
  /** @type {Wllama | null} */ let other = null;
  try {
    other = await startChecked(l.model, l.blob, req, onGpu ? cpuChoice : gpuChoice);
    const gpuW = onGpu ? state.wllama : other;
    const cpuW = onGpu ? other : state.wllama;
    const gpu = await selfTest.greedy(gpuW, nTokens);
    const { cpu, ...a } = await selfTest.compare(gpu, cpuW);
    return { ...base, ...a, gpu_text: gpu.join(''), cpu_text: cpu.join(''), gpu_layers: gpuLayersOf.get(gpuW) ?? '' };
  } catch (err) {
    return { ...base, error: `The self-test could not run: ${err?.message ?? err}` };
  } finally {
    await other?.exit().catch(() => {});
  }
}

/** Run the self-test, remember and report it; a failed one moves the model to the CPU. */
async function selfTestAndReport(id, nTokens) {
  const r = await runSelfTest(nTokens);
  post(T.SelfTestResult, r, id);
  if (r.error) {
    state.selfTest = r.error;
  } else {
    state.selfTest = `${r.passed ? 'passed' : 'FAILED'}: GPU and CPU agree on ${(r.agreement * 100).toFixed(0)}% of ${r.n_tokens} greedy tokens (threshold ${(r.threshold * 100).toFixed(0)}%)`;
    await selfTest.remember(await selfTestKey(state.loaded.model), { agreement: r.agreement, passed: r.passed, n_tokens: r.n_tokens });
    if (!r.passed) {
      post(T.Log, { level: 'warn', message: `GPU self-test failed: ${state.selfTest}. The CPU is preferred for this model on this device.` }, id);
      if (state.choice?.backend === 'webgpu') return recover(id, 'webgpu', `self-test failed: ${state.selfTest}`);
    }
  }
  return diagnostics(id);
}

async function unload() {
  const w = state.wllama;
  state.loaded = null;
  const modelId = state.modelId;
  state.wllama = null;
  state.modelId = '';
  state.loadedKey = '';
  state.loadedInfo = null;
  if (w) await w.exit();
  return modelId;
}

/**
 * What the WebAssembly memory of the build that would load this model may grow to (its
 * builds.json max_memory, 32-bit for a compat flavour; 4 GiB when no build would), and the
 * model's weights' size in that memory.
 * @returns {Promise<{memory: number, weights: number}>}
 */
async function engineMemory(p, req, model) {
  try {
    const features = detectFeatures(p);
    const { build } = selectBuild(features, choose(p, req.backend, req.n_threads).backend, await builds, req.engine, model.bytes || 0, model.quantization);
    return { memory: memoryOf(build, features), weights: weightBytes(build, model) };
  } catch {
    return { memory: WASM32_MAX, weights: model.bytes };
  }
}

/**
 * Load a model for request `id`. With `announce` false (the warm-up at start)
 * nothing is posted but download progress: the controller's own LoadModel
 * then finds the model loaded and gets its ModelLoaded at once.
 */
async function loadModel(id, req, announce = true) {
  const key = JSON.stringify([req.model_id, req.url, req.n_ctx, req.n_threads, req.backend, req.engine, req.kv_cache]);
  if (state.wllama && state.loadedKey === key) {
    post(T.ModelLoaded, { ...state.loadedInfo, load_ms: 0 }, id);
    return diagnostics(id);
  }
  const failQuietly = (...args) => announce && fail(...args);
  const model = announce ? await findModel(id, req) : (await catalog).models.find((m) => m.id === req.model_id);
  if (!model) return;
  if (req.engine) { // refuse an engine build that cannot run (or hold this model) before unloading anything
    const p = await probed;
    try {
      selectBuild(detectFeatures(p), choose(p, req.backend, req.n_threads).backend, await builds, req.engine, model.bytes || 0, model.quantization);
    } catch (err) {
      return failQuietly(id, err.code ?? 'bad_field', err.message, err.hint ?? '', err.field ?? 'engine');
    }
  }
  // Refuse (or shrink the context) before downloading anything that cannot run here.
  let fit = { nCtx: req.n_ctx, notice: '' };
  if (model.n_layer) {
    const p = await probed;
    const { memory, weights } = await engineMemory(p, req, model);
    const planned = fitContext({ ...model, bytes: weights }, req.n_ctx, budget(simulatedMemoryGb || p.deviceMemoryGb, memory));
    if (planned.nCtx === null) {
      return failQuietly(id, 'out_of_memory', planned.reason, 'Choose a smaller model, or a smaller context size in Settings.', 'n_ctx');
    }
    fit = planned;
  }
  const t0 = performance.now();
  let fromCache = false;
  let blob = null;
  try {
    if (model.url) blob = await fetchUncatalogued(model);
    else {
      const d = store(model);
      d.requestId = id;
      fromCache = await d.promise;
    }
  } catch (err) {
    const code = { integrity: 'integrity', quota: 'storage_full' }[err?.code] ?? 'download_failed';
    const hint = err?.hint || ({
      offline: `Connect to the internet once to download it (${(model.bytes / 1e6).toFixed(0)} MB); after that Offgrid works offline.`,
    }[err?.code] ?? 'Check the connection and try again; chunks already stored are kept.');
    return failQuietly(id, code, err.message, hint);
  }
  try {
    post(T.LoadProgress, { model_id: model.id, phase: 'read', loaded: 0, total: model.bytes, from_cache: fromCache }, id);
    blob ??= await openModel(model);
    if (state.wllama) post(T.ModelUnloaded, { model_id: await unload() }, id);
    post(T.LoadProgress, { model_id: model.id, phase: 'init', loaded: model.bytes, total: model.bytes, from_cache: fromCache }, id);
    if (fit.notice) post(T.Log, { level: 'warn', message: fit.notice }, id);
    const { w, choice } = await startWithFallback(id, model, blob, { ...req, n_ctx: fit.nCtx });
    install(w, choice, model, { ...req, n_ctx: fit.nCtx }, blob, fromCache, t0, key, fit.notice);
    // The first time WebGPU runs this model on this device, check it against the CPU.
    if (choice.backend === 'webgpu' && !(await selfTest.remembered(await selfTestKey(model)))) {
      await selfTestAndReport(id, AUTO_SELF_TEST_TOKENS);
      if (state.choice?.backend !== 'webgpu') return; // moved to the CPU; ModelLoaded was posted
    }
    if (!announce) return;
    post(T.ModelLoaded, state.loadedInfo, id);
    diagnostics(id);
  } catch (err) {
    if (err instanceof EngineBuildError || err?.code === 'bad_field') return failQuietly(id, err.code, err.message, err.hint, err.field);
    failQuietly(id, err instanceof WeightStoreError ? 'integrity' : 'load_failed', `Could not load ${model.name}: ${err?.message ?? err}`, 'Try reloading the page; if it persists, delete the cached model.');
  }
}

/**
 * Start llama.cpp on `choice`'s backend with the weights in `blob`, in the engine
 * build that `req.engine` names or that suits this browser, backend and model
 * size (buildOf says which). An unknown or unusable `req.engine` throws an
 * EngineBuildError (code bad_field, field engine); a model no build here can
 * hold, one with code out_of_memory.
 * @param {{quantization?: string}} model
 * @param {ModelFile} blob
 * @param {{n_ctx: number, engine: string}} req
 * @param {import('./backend.js').Choice} choice
 */
async function startEngine(model, blob, req, choice) {
  const { build } = selectBuild(detectFeatures(await probed), choice.backend, await builds, req.engine, blob.size, model.quantization);
  const { Wllama: Engine, wasmPaths, compat } = await loadBuild(build, SITE_ROOT);
  const w = new Engine(wasmPaths, { logger: workerLogger, allowOffline: true });
  w.setCompat(compat); // null for a build without a compat flavour: wllama's default would fetch one from a CDN
  try {
    const kv = kvCache(req, choice);
    await w.loadModel([blob], {
      n_ctx: req.n_ctx, n_threads: choice.threads, n_gpu_layers: build.webgpu ? choice.gpuLayers : 0, cache_type_k: kv, cache_type_v: kv,
    });
  } catch (err) {
    await w.exit().catch(() => {}); // no half-started engine (and its worker) left behind
    throw err;
  }
  buildOf.set(w, build);
  return w;
}

/** The KV cache type a load asks for, else the backend's own. */
function kvCache(req, choice) {
  return req.kv_cache || kvCacheFor(choice.backend);
}

/** Generation and token counting share the one-at-a-time guard (and Stop). */
async function runGeneration(id, msg) {
  if (msg.type === T.Continue && msg.messages.at(-1)?.role !== 'assistant') {
    return fail(id, 'bad_field', 'Continue needs messages that end with the assistant turn to extend.', '', 'messages');
  }
  if (msg.type === T.ChatBatch && msg.prompts.length === 0) return fail(id, 'bad_field', 'ChatBatch needs at least one prompt.', '', 'prompts');
  const abort = new AbortController();
  if (state.stopEarly.delete(id)) abort.abort();
  state.generation = { id, abort };
  const backend = state.choice?.backend ?? '';
  let failure = '';
  // Errors of the engine while it runs on the GPU (a lost device, out of memory) move it to the CPU.
  const watch = (type, fields = {}, rid = '') => {
    if (type === T.EngineError && fields.code === 'inference_failed') {
      failure = fields.message;
      if (backend === 'webgpu') fields = { ...fields, hint: 'The GPU failed; Offgrid moves the model to the CPU. Regenerate to try again.' };
    }
    post(type, fields, rid);
  };
  if (TEST_HOOK === 'webgpu-lose-device' && backend === 'webgpu' && !state.hookFired && msg.type !== T.CountTokens) {
    state.hookFired = true;
    state.wllama.proxy?.worker?.postMessage({ verb: 'offgrid.test.lose-device' }); // see HOOK_CODE
  }
  try {
    if (msg.type === T.CountTokens) post(T.TokenCount, await countTokens(state.wllama, msg), id);
    else await generate(state.wllama, id, msg, abort.signal, watch, backend);
  } catch (err) {
    failure = String(err?.message ?? err);
    fail(id, 'inference_failed', `The engine failed: ${failure}`, backend === 'webgpu' ? 'The GPU failed; Offgrid moves the model to the CPU.' : 'Try again; if it persists, reload the model.');
  } finally {
    state.generation = null;
  }
  if (failure && backend === 'webgpu') {
    state.lifecycle = state.lifecycle.then(() => recover(id, 'webgpu', failure));
    await state.lifecycle;
  }
}

const workerLogger = {
  debug: (...a) => { if (engineLog.length < 5000) engineLog.push(a.join(' ')); },
  log: (...a) => { if (engineLog.length < 5000) engineLog.push(a.join(' ')); },
  warn: (...a) => post(T.Log, { level: 'warn', message: a.join(' ') }),
  error: (...a) => post(T.Log, { level: 'error', message: a.join(' ') }),
};

/** Route one checked request. */
async function handle(msg) {
  const { id } = msg;
  switch (msg.type) {
    case T.ListModels: return listModels(id);
    case T.GetDiagnostics: return diagnostics(id);
    case T.GetStorage: return storageReport(id);
    case T.DeleteModel:
      if (state.generation) return fail(id, 'busy', 'A generation is running.', 'Stop it first, then delete the model.');
      state.lifecycle = state.lifecycle.then(() => deleteStored(id, msg.model_id));
      return state.lifecycle;
    case T.SelfTest:
      await state.lifecycle;
      if (!state.wllama) return fail(id, 'no_model', 'No model is loaded.', 'Load a model first.');
      if (state.generation) return fail(id, 'busy', `Request ${state.generation.id} is still generating.`, 'Wait for it to end.');
      state.lifecycle = state.lifecycle.then(() => selfTestAndReport(id, msg.n_tokens));
      return state.lifecycle;
    case T.Stop:
      if (state.generation && (!msg.target || msg.target === state.generation.id)) state.generation.abort.abort();
      else if (msg.target) state.stopEarly.add(msg.target); // its request has not started yet
      return;
    case T.LoadModel:
    case T.SwitchModel:
    case T.UnloadModel:
      if (state.generation) return fail(id, 'busy', 'A generation is running.', 'Stop it first, then change the model.');
      state.lifecycle = state.lifecycle.then(() =>
        msg.type === T.UnloadModel ? unload().then((m) => post(T.ModelUnloaded, { model_id: m }, id)) : loadModel(id, msg));
      return state.lifecycle;
    case T.InspectModel:
    case T.CountTokens:
    case T.Chat:
    case T.Complete:
    case T.Continue:
    case T.ChatBatch:
      await state.lifecycle;
      if (!state.wllama) return fail(id, 'no_model', 'No model is loaded.', 'Send LoadModel first.');
      if (msg.type === T.InspectModel) return post(T.ModelLoaded, state.loadedInfo, id);
      if (state.generation) return fail(id, 'busy', `Request ${state.generation.id} is still generating.`, 'Wait for GenerateEnd or send Stop.');
      return runGeneration(id, msg);
    default:
      return fail(id, 'bad_message', `${msg.type} is an event, not a request.`, '', 'type');
  }
}

self.onmessage = (e) => {
  let frame = e.data;
  if (typeof frame === 'string') {
    try {
      frame = JSON.parse(frame);
    } catch {
      return fail('', 'bad_message', 'not JSON');
    }
  }
  const checked = validate(frame);
  const id = typeof frame?.id === 'string' ? frame.id : '';
  if (!checked.ok) {
    const hint = checked.code === 'version_mismatch' ? 'The page and the engine worker come from different builds: run `python3 build.py` and reload.' : '';
    return fail(id, checked.code, checked.message, hint, checked.field);
  }
  handle(checked.msg).catch((err) => fail(id, 'internal', String(err?.message ?? err)));
};

post(T.Hello, { protocol_version: PROTOCOL_VERSION, libllama_version: Wllama.getLibllamaVersion(), engine: ENGINE });
// Warm up at once: download and load the default model while Pyodide boots.
// The controller's LoadModel then joins this load (any failure is reported to it).
catalog.then((cat) => {
  const built = cat.engine?.libllama_version;
  if (built && built !== Wllama.getLibllamaVersion()) {
    fail('', 'version_mismatch', `The engine is llama.cpp ${Wllama.getLibllamaVersion()} but the site was built for ${built}.`,
      'Rebuild with `python3 build.py` and reload; an old cached copy of the app can cause this too.');
  }
  const req = make(T.LoadModel, { model_id: cat.default });
  state.lifecycle = state.lifecycle.then(() => loadModel('', req, false));
}).catch((err) => fail('', 'internal', `Cannot read the model catalog: ${err.message}`, 'Rebuild the site with `python3 build.py`.'));
