// Boot: the page has painted already. Start the engine worker and Pyodide in
// parallel, then hand both to the Python controller, the engine's one client
// (window.offgrid's requests go through it too).
import { createBridge } from './bridge.js';
import * as view from './view.js';
import { createApi } from './offgrid_api.js';
import * as store from './conversation_store.js';
import { registerServiceWorker } from './pwa.js';

performance.mark('offgrid:boot');
registerServiceWorker();
const workerUrl = new URL('../engine/engine.worker.js', import.meta.url);
const worker = new Worker(workerUrl, { type: 'module', name: 'engine' });
const bridge = createBridge(worker);

// Boot timings (see window.offgridTimings): worker up, weights read (downloaded or from
// IndexedDB) and llama.cpp starting, model loaded. Marked as the frames arrive (the
// controller sees them later if Python is still starting); the observer leaves once
// the model is loaded. Everything else about the engine's frames is the controller's:
// it is the engine's one client, and draws the download progress.
const stopTiming = bridge.listen((f) => {
  if (f.type === 'Hello') performance.mark('offgrid:engine-ready');
  if (f.type === 'LoadProgress' && f.phase === 'init' && !performance.getEntriesByName('offgrid:weights-ready').length) {
    performance.mark('offgrid:weights-ready');
  }
  if (f.type === 'ModelLoaded') {
    performance.mark('offgrid:model-ready');
    stopTiming();
  }
});

/** @type {any} */
let pyodide = null;
/** @type {any} the Python controller, once started */
let controller = null;
// window.offgrid: its requests go through the controller once Python is up.
const scripts = createApi(() => controller);
window.offgrid = scripts.api;

async function bootPython() {
  view.setStatus('Loading the Python runtime…', 'busy');
  const stored = store.loadAll(); // read while Pyodide boots
  const { loadPyodide } = await import('../../vendor/pyodide/pyodide.mjs');
  pyodide = await loadPyodide({
    indexURL: new URL('../../vendor/pyodide/', import.meta.url).href,
    packages: ['offgrid'],
  });
  performance.mark('offgrid:pyodide-ready');
  controller = pyodide.pyimport('offgrid.browser').start(bridge, view, store, await stored, scripts);
  scripts.connect(controller);
}

bootPython().catch((err) => {
  view.setStatus('Error: the Python runtime did not start', 'error');
  view.showError(String(err?.message ?? err), 'Reload the page; if it persists, rebuild with `python3 build.py`.');
});

// For tests and the curious: what happened when (ms since navigation start).
window.offgridTimings = () => Object.fromEntries(
  performance.getEntriesByType('mark').filter((m) => m.name.startsWith('offgrid:'))
    .map((m) => [m.name.slice(8), Math.round(m.startTime)]),
);
window.offgridDebug = {
  listen: bridge.listen,
  // Size of Pyodide's wasm memory: weights must never be copied into it.
  pythonHeapBytes: () => pyodide?._module?.HEAPU8?.byteLength ?? 0,
};
