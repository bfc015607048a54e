// Loading and unloading a model: find it, refuse what cannot run here before
// a byte is downloaded, share its download, read it from the weight store and
// start llama.cpp (fallback.js) on the best backend.
import { T, clip } from '../shared/protocol.js';
import { choose } from './backend.js';
import { EngineBuildError, WASM32_MAX, detectFeatures, memoryOf, selectBuild, weightBytes } from './build_select.js';
import { budget, fitContext } from './memory_budget.js';
import { formatBytes } from '../shared/units.js';
import { diagnostics } from './diagnostics.js';
import { kvCache, startWithFallback } from './fallback.js';
import { autoSelfTest } from './self_test_job.js';

/** A LoadModel's own fields (not its type, id or version), as the warm-up remembers them. */
function loadFields(req) {
  const { type, id, v, ...fields } = req;
  return fields;
}

/** Does `file` start with GGUF's magic? (A URL may name any file; the catalog's are hashed.) */
async function isGguf(file) {
  const head = new Uint8Array(await file.slice(0, 4).arrayBuffer());
  return String.fromCharCode(...head) === 'GGUF';
}

/** The catalog entry for a LoadModel, or null after posting why there is none. */
async function findModel(ctx, id, req) {
  const cat = await ctx.parts.catalog;
  if (req.url) {
    const url = new URL(req.url, ctx.parts.origin);
    if (url.origin !== ctx.parts.origin) {
      ctx.fail(id, 'bad_field', `url ${req.url} is not on this origin.`, 'Only models served by this app can be loaded; nothing is fetched from elsewhere.', 'url');
      return null;
    }
    return { id: url.pathname, name: url.pathname.split('/').pop(), url: url.href, quantization: '', license: '' };
  }
  const model = cat.models.find((m) => m.id === req.model_id);
  if (!model) ctx.fail(id, 'unknown_model', `No model "${clip(req.model_id)}" in the catalog.`, `Known: ${cat.models.map((m) => m.id).join(', ')}`, 'model_id');
  return model ?? null;
}

/**
 * The download of `model`, shared by the warm-up and LoadModel (one per model at a time).
 * Progress frames carry the id of the LoadModel waiting for it ('' before one).
 * @returns {{promise: Promise<boolean>, requestId: string}}
 */
function download(ctx, model) {
  ctx.downloads ??= new Map();
  let d = ctx.downloads.get(model.id);
  if (!d) {
    const entry = { promise: null, requestId: '' };
    entry.promise = ctx.parts.weights.ensureStored(model, (p) => ctx.post(T.LoadProgress, {
      model_id: model.id, phase: p.phase, loaded: p.loaded, total: p.total, from_cache: p.fromCache, rate: p.rate,
    }, entry.requestId));
    ctx.downloads.set(model.id, entry);
    entry.promise.finally(() => ctx.downloads.delete(model.id)).catch(() => {});
    d = entry;
  }
  return d;
}

/** Record a started engine as the loaded model; returns the ModelLoaded fields. */
export function install(ctx, started, choice, loaded, t0, key, notice = '') {
  const { state } = ctx;
  const { engine: w } = started;
  const { model, req, fromCache } = loaded;
  Object.assign(state, { current: started, choice, loadedKey: key, loaded });
  const info = w.getLoadedContextInfo();
  state.loadedInfo = {
    model_id: model.id, name: model.name, architecture: info.metadata['general.architecture'] ?? '',
    parameters: info.metadata['general.size_label'] ?? '', quantization: model.quantization, bytes: model.bytes,
    n_ctx: info.n_ctx, n_ctx_train: info.n_ctx_train, n_vocab: info.n_vocab, n_layer: info.n_layer, n_embd: info.n_embd,
    chat_template: w.getChatTemplate() ?? '', backend: choice.backend, engine: started.build?.id ?? '', kv_cache: kvCache(req, choice),
    threads: w.getNumThreads(), load_ms: ctx.parts.now() - t0, from_cache: fromCache, notice,
  };
  return state.loadedInfo;
}

/** Stop the running engine; returns the id of the model that was loaded ('' for none). */
export async function unload(ctx) {
  const { state } = ctx;
  const old = state.current;
  const modelId = state.loaded?.model.id ?? '';
  Object.assign(state, { current: null, loaded: null, loadedKey: '', loadedInfo: null });
  if (old) await old.engine.exit();
  return modelId;
}

/**
 * Refuse (or shrink the context) before downloading anything that cannot run here. The build
 * that would load the model says how large its WebAssembly memory may grow (builds.json
 * max_memory; 32-bit for a compat flavour) and how large the weights are in it; when no build
 * is chosen yet, 4 GiB and the file's size. A build the request names but that cannot run
 * (or hold this model) is refused here, before anything is unloaded.
 */
async function planFit(ctx, req, model) {
  const p = await ctx.parts.probe;
  let memory = WASM32_MAX;
  let weights = model.bytes;
  try {
    const features = detectFeatures(p);
    const { build } = selectBuild(features, choose(p, req.backend, req.n_threads).backend, await ctx.parts.builds, req.engine, model.bytes || 0, model.quantization);
    memory = memoryOf(build, features);
    weights = weightBytes(build, model);
  } catch (err) {
    if (req.engine) throw err;
  }
  if (!model.n_layer) return { nCtx: req.n_ctx, notice: '' };
  return fitContext({ ...model, bytes: weights }, req.n_ctx, budget(p.deviceMemoryGb, memory));
}

/**
 * Load a model for request `id`. With `announce` false (the warm-up at start) nothing is
 * posted but download progress: the controller's own LoadModel then finds the model
 * loaded and gets its ModelLoaded at once.
 */
export async function loadModel(ctx, id, req, announce = true) {
  const { state, parts } = ctx;
  const key = JSON.stringify([req.model_id, req.url, req.n_ctx, req.n_threads, req.backend, req.engine, req.kv_cache]);
  if (state.current && state.loadedKey === key) {
    if (announce) parts.loads.remember(loadFields(req));
    ctx.post(T.ModelLoaded, { ...state.loadedInfo, load_ms: 0 }, id);
    return diagnostics(ctx, id);
  }
  const fail = (...args) => announce && ctx.fail(...args);
  const model = announce ? await findModel(ctx, id, req) : (await parts.catalog).models.find((m) => m.id === req.model_id);
  if (!model) return;
  let fit;
  try {
    fit = await planFit(ctx, req, model);
  } catch (err) {
    return fail(id, err.code ?? 'bad_field', err.message, err.hint ?? '', err.field ?? 'engine');
  }
  if (fit.nCtx === null) return fail(id, 'out_of_memory', fit.reason, 'Choose a smaller model, or a smaller context size in Settings.', 'n_ctx');
  const t0 = parts.now();
  let fromCache = false;
  let file = null;
  try {
    if (model.url) {
      file = await parts.weights.fetchWhole(model.url);
      model.bytes = file.size;
      if (!(await isGguf(file))) { // refused before the loaded model is touched
        return fail(id, 'bad_field', `${req.url} is not a GGUF model file.`, 'Give the URL of a .gguf file served by this app.', 'url');
      }
    } else {
      const d = download(ctx, model);
      d.requestId = id;
      fromCache = await d.promise;
    }
  } catch (err) {
    const code = { integrity: 'integrity', quota: 'storage_full' }[err?.code] ?? 'download_failed';
    const hint = err?.hint || ({
      offline: `Connect to the internet once to download it (${formatBytes(model.bytes)}); after that Offgrid works offline.`,
    }[err?.code] ?? 'Check the connection and try again; chunks already stored are kept.');
    return fail(id, code, err?.message ?? String(err), hint);
  }
  try {
    ctx.post(T.LoadProgress, { model_id: model.id, phase: 'read', loaded: 0, total: model.bytes, from_cache: fromCache }, id);
    file ??= await parts.weights.openModel(model);
    if (state.current) ctx.post(T.ModelUnloaded, { model_id: await unload(ctx) }, id);
    ctx.post(T.LoadProgress, { model_id: model.id, phase: 'init', loaded: model.bytes, total: model.bytes, from_cache: fromCache }, id);
    if (fit.notice) ctx.post(T.Log, { level: 'warn', message: fit.notice }, id);
    const fitted = { ...req, n_ctx: fit.nCtx };
    const { started, choice } = await startWithFallback(ctx, id, model, file, fitted);
    install(ctx, started, choice, { model, file, req: fitted, fromCache }, t0, key, fit.notice);
    if (await autoSelfTest(ctx, id, model)) return; // moved to the CPU; ModelLoaded was posted
    if (!announce) return;
    parts.loads.remember(loadFields(req)); // what the next visit warms up
    ctx.post(T.ModelLoaded, state.loadedInfo, id);
    await diagnostics(ctx, id);
  } catch (err) {
    if (err instanceof EngineBuildError || err?.code === 'bad_field') return fail(id, err.code, err.message, err.hint, err.field);
    fail(id, err?.name === 'WeightStoreError' ? 'integrity' : 'load_failed', `Could not load ${model.name}: ${err?.message ?? err}`,
      'Try reloading the page; if it persists, delete the cached model.');
  }
}
