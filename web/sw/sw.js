// The service worker: the whole app shell, precached, so the app starts with
// no network at all. Bundled with the pinned Workbox modules by build.py
// (esbuild) into dist/sw.js, which also replaces self.__WB_MANIFEST with the
// list of files and their content hashes.
//
// - One precache version serves every file of the app (page, engine worker,
//   Pyodide, wllama) and the one engine build this browser runs (engine_files.js;
//   build.py also puts builds.json in as self.__OFFGRID_BUILDS): a new build installs beside the old one and waits; it
//   takes over only when the person presses "Reload to update", which sends
//   SKIP_WAITING. So two versions' files are never mixed in one page.
// - Model weights are not here: they live in IndexedDB (weight_store.js). The
//   weight store's HTTP Range requests for .gguf files match no route, so they
//   go to the network untouched.
// - Cached responses keep the headers the server sent, COOP/COEP included,
//   so the page stays cross-origin isolated offline (multi-thread WASM).
import { clientsClaim } from 'workbox-core';
import { cleanupOutdatedCaches, precacheAndRoute } from 'workbox-precaching';
import { precacheFor } from './engine_files.js';

self.addEventListener('message', (event) => {
  if (event.data?.type === 'SKIP_WAITING') self.skipWaiting();
});

// On the first install there is no older version to mix with: take control at
// once, so the first visit is already served by the worker on reload.
clientsClaim();
cleanupOutdatedCaches();
precacheAndRoute(precacheFor(self.__WB_MANIFEST, self.__OFFGRID_BUILDS), { directoryIndex: 'index.html', cleanURLs: false });
