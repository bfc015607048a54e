// The engine worker: llama.cpp (through wllama) behind the typed protocol.
//
// Every frame in is validated with the generated protocol module; every
// refusal is an EngineError naming the field or state, and the worker stays
// usable. It holds no chat logic: the controller sends whole prompts.
import { Wllama } from '../vendor/wllama/index.js';
import { countTokens, generate } from './generation.js';
import { PROTOCOL_VERSION, T, make, validate } from './protocol.gen.js';
import { probe, choose } from './backend.js';
import { ensureStored, isCached, openModel, WeightStoreError } from './weight_store.js';

const ENGINE = 'wllama 3.8.1 (stock build)';
const here = (path) => new URL(path, import.meta.url).href;
const WASM_PATHS = { default: here('../vendor/wllama/wasm/wllama.wasm') };
const COMPAT = { worker: here('../vendor/wllama-compat/wllama.js'), wasm: here('../vendor/wllama-compat/wllama.wasm') };

/** @type {(type: string, fields?: object, id?: string) => void} */
const post = (type, fields = {}, id = '') => self.postMessage(JSON.stringify(make(type, fields, id)));
const fail = (id, code, message, hint = '', field = '') => post(T.EngineError, { code, message, hint, field }, id);

const state = {
  /** @type {Wllama | null} */ wllama: null,
  modelId: '',
  /** @type {import('./backend.js').Choice | null} */ choice: null,
  /** @type {{id: string, abort: AbortController} | null} */ generation: null,
  loadedKey: '', // which LoadModel the loaded model answers, to reuse a warm-up load
  /** @type {Record<string, any> | null} */ loadedInfo: null, // the ModelLoaded fields
  lifecycle: Promise.resolve(), // load/unload run one after another
  stopEarly: new Set(), // ids of requests stopped before they started
};

const probed = probe();
const catalog = fetch(here('../models/catalog.json')).then((r) => {
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
    d.promise = ensureStored(model, here(`../models/${model.file}`), (p) => post(T.LoadProgress, {
      model_id: model.id, phase: p.phase, loaded: p.loaded, total: p.total, from_cache: p.fromCache,
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
  })));
  post(T.ModelList, { models, default_id: cat.default }, id);
}

async function diagnostics(id) {
  const p = await probed;
  const c = state.choice ?? choose(p);
  post(T.Diagnostics, {
    backend: c.backend, backend_reason: c.reason, threads: c.threads,
    cross_origin_isolated: p.crossOriginIsolated, hardware_concurrency: p.hardwareConcurrency,
    webgpu_adapter: p.webgpu?.adapter ?? '', webgpu_features: p.webgpu?.features ?? [],
    jspi: p.jspi, memory64: p.memory64, compat: c.compat, device_memory_gb: p.deviceMemoryGb,
    user_agent: p.userAgent, libllama_version: Wllama.getLibllamaVersion(),
  }, id);
}

async function unload() {
  const w = state.wllama;
  const modelId = state.modelId;
  state.wllama = null;
  state.modelId = '';
  state.loadedKey = '';
  state.loadedInfo = null;
  if (w) await w.exit();
  return modelId;
}

/**
 * Load a model for request `id`. With `announce` false (the warm-up at start)
 * nothing is posted but download progress: the controller's own LoadModel
 * then finds the model loaded and gets its ModelLoaded at once.
 */
async function loadModel(id, req, announce = true) {
  const key = JSON.stringify([req.model_id, req.url, req.n_ctx, req.n_threads, req.backend, req.engine]);
  if (state.wllama && state.loadedKey === key) {
    post(T.ModelLoaded, { ...state.loadedInfo, load_ms: 0 }, id);
    return diagnostics(id);
  }
  const failQuietly = (...args) => announce && fail(...args);
  const model = announce ? await findModel(id, req) : (await catalog).models.find((m) => m.id === req.model_id);
  if (!model) return;
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
    const code = err instanceof WeightStoreError && err.code === 'integrity' ? 'integrity' : 'download_failed';
    const hint = {
      quota: 'Free some space (delete other sites\' data or cached models) and try again.',
      offline: `Connect to the internet once to download it (${(model.bytes / 1e6).toFixed(0)} MB); after that Offgrid works offline.`,
    }[err?.code] ?? 'Check the connection and try again; chunks already stored are kept.';
    return failQuietly(id, code, err.message, hint);
  }
  try {
    post(T.LoadProgress, { model_id: model.id, phase: 'read', loaded: 0, total: model.bytes, from_cache: fromCache }, id);
    blob ??= await openModel(model);
    if (state.wllama) post(T.ModelUnloaded, { model_id: await unload() }, id);
    const p = await probed;
    const choice = choose(p, req.backend, req.n_threads);
    post(T.LoadProgress, { model_id: model.id, phase: 'init', loaded: model.bytes, total: model.bytes, from_cache: fromCache }, id);
    const w = await startEngine(blob, req, choice);
    state.wllama = w;
    state.modelId = model.id;
    state.choice = choice;
    state.loadedKey = key;
    const info = w.getLoadedContextInfo();
    state.loadedInfo = {
      model_id: model.id, name: model.name, architecture: info.metadata['general.architecture'] ?? '',
      parameters: info.metadata['general.size_label'] ?? '', quantization: model.quantization, bytes: model.bytes,
      n_ctx: info.n_ctx, n_ctx_train: info.n_ctx_train, n_vocab: info.n_vocab, n_layer: info.n_layer, n_embd: info.n_embd,
      chat_template: w.getChatTemplate() ?? '', backend: choice.backend,
      threads: w.getNumThreads(), load_ms: performance.now() - t0, from_cache: fromCache,
    };
    if (!announce) return;
    post(T.ModelLoaded, state.loadedInfo, id);
    diagnostics(id);
  } catch (err) {
    failQuietly(id, err instanceof WeightStoreError ? 'integrity' : 'load_failed', `Could not load ${model.name}: ${err?.message ?? err}`, 'Try reloading the page; if it persists, delete the cached model.');
  }
}

/**
 * Start llama.cpp on `choice`'s backend with the weights in `blob`.
 * @param {Blob} blob
 * @param {{n_ctx: number}} req
 * @param {import('./backend.js').Choice} choice
 */
async function startEngine(blob, req, choice) {
  const w = new Wllama(WASM_PATHS, { logger: workerLogger, allowOffline: true });
  w.setCompat(COMPAT);
  await w.loadModel([blob], { n_ctx: req.n_ctx, n_threads: choice.threads, n_gpu_layers: choice.gpuLayers });
  return w;
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
  try {
    if (msg.type === T.CountTokens) post(T.TokenCount, await countTokens(state.wllama, msg), id);
    else await generate(state.wllama, id, msg, abort.signal, post, state.choice?.backend ?? '');
  } catch (err) {
    fail(id, 'inference_failed', `The engine failed: ${err?.message ?? err}`, 'Try again; if it persists, reload the model.');
  } finally {
    state.generation = null;
  }
}

const workerLogger = {
  debug() {},
  log() {},
  warn: (...a) => post(T.Log, { level: 'warn', message: a.join(' ') }),
  error: (...a) => post(T.Log, { level: 'error', message: a.join(' ') }),
};

/** Route one checked request. */
async function handle(msg) {
  const { id } = msg;
  switch (msg.type) {
    case T.ListModels: return listModels(id);
    case T.GetDiagnostics: return diagnostics(id);
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
