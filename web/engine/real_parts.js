// The handler's real parts in a browser's worker: llama.cpp through wllama,
// the IndexedDB weight store, the feature probe, the site's catalog and builds.
import { Wllama } from '../../vendor/wllama/index.js';
import { probe } from './backend.js';
import { fetchBuilds, loadBuild } from './build_select.js';
import * as weightStore from './weight_store.js';
import * as memory from './engine_memory.js';

const here = (path) => new URL(path, import.meta.url).href;
const SITE_ROOT = here('../../');

/**
 * Start llama.cpp in `build` on the weights in `file` (a wllama instance).
 * @param {import('./build_select.js').Build} build
 */
async function startWllama(build, file, options, logger) {
  const { Wllama: Engine, wasmPaths, compat } = await loadBuild(build, SITE_ROOT);
  const w = new Engine(wasmPaths, { logger, allowOffline: true });
  w.setCompat(compat); // null for a build without a compat flavour: wllama's default would fetch one from a CDN
  try {
    await w.loadModel([file], options);
  } catch (err) {
    await w.exit().catch(() => {}); // no half-started engine (and its worker) left behind
    throw err;
  }
  return w;
}

/** A model that is not in the catalog has no chunk hashes: fetch it whole (same origin). */
async function fetchWhole(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`HTTP ${res.status} for ${url}`);
  return res.blob();
}

/**
 * @param {DedicatedWorkerGlobalScope} scope
 * @returns {import('./handler.js').Parts}
 */
export function realParts(scope) {
  const builds = fetchBuilds(SITE_ROOT);
  return {
    post: (frame) => scope.postMessage(JSON.stringify(frame)),
    probe: probe(),
    catalog: fetch(here('../../models/catalog.json')).then((r) => {
      if (!r.ok) throw new Error(`catalog.json: HTTP ${r.status}`);
      return r.json();
    }),
    builds,
    engines: { start: startWllama, libllamaVersion: Wllama.getLibllamaVersion(), name: 'wllama' },
    weights: {
      ...weightStore,
      ensureStored: (model, onProgress) => weightStore.ensureStored(model, here(`../../models/${model.path ?? model.file}`), onProgress),
      fetchWhole,
    },
    selfTestMemory: { remembered: memory.remembered, remember: memory.remember },
    loads: { last: memory.lastLoad, remember: memory.rememberLoad },
    origin: scope.location.origin,
    now: () => performance.now(),
  };
}
