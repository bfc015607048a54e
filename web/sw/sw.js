// The service worker: the whole app shell, precached, so the app starts with
// no network at all. Bundled with the pinned Workbox modules by build.py
// (esbuild) into dist/sw.js, which also replaces self.__WB_MANIFEST with the
// list of files and their content hashes, and self.__OFFGRID_BUILDS with
// engine/builds.json.
//
// - One precache version serves every file of the app (page, engine worker,
//   Pyodide, wllama) and the wasm of the one engine build this browser runs
//   (engine_files.js): a new build installs beside the old one and waits; it
//   takes over only when the person presses "Reload to update", which sends
//   SKIP_WAITING. So two versions' files are never mixed in one page.
// - The other engine builds are cached when first used, under their revision,
//   and dropped when a new build no longer lists that revision.
// - Model weights are not here: they live in IndexedDB (weight_store.js). The
//   weight store's HTTP Range requests for .gguf files match no route, so they
//   go to the network untouched.
// - Cached responses keep the headers the server sent, COOP/COEP included,
//   so the page stays cross-origin isolated offline (multi-thread WASM).
import { clientsClaim } from 'workbox-core';
import { cleanupOutdatedCaches, precacheAndRoute } from 'workbox-precaching';
import { registerRoute } from 'workbox-routing';
import { engineFiles } from './engine_files.js';

const ON_USE_CACHE = 'offgrid-engine-builds';
const { precache, onUse } = engineFiles(self.__WB_MANIFEST, self.__OFFGRID_BUILDS);
/** The cache key of an engine file cached on use: its URL with its revision. */
const onUseKeys = new Map(onUse.map((e) => {
  const url = new URL(e.url, self.registration.scope).href;
  return [url, { key: `${url}?__offgrid_revision=${e.revision}`, integrity: e.integrity }];
}));

self.addEventListener('message', (event) => {
  if (event.data?.type === 'SKIP_WAITING') self.skipWaiting();
});

// On the first install there is no older version to mix with: take control at
// once, so the first visit is already served by the worker on reload.
clientsClaim();
cleanupOutdatedCaches();
precacheAndRoute(precache, { directoryIndex: 'index.html', cleanURLs: false });

registerRoute(({ url, request }) => onUseKeys.has(url.href) && !request.headers.has('range'), async ({ url }) => {
  const { key, integrity } = onUseKeys.get(url.href);
  const cache = await caches.open(ON_USE_CACHE);
  const hit = await cache.match(key);
  if (hit) return hit;
  const res = await fetch(url.href, { integrity });
  if (res.status === 200) await cache.put(key, res.clone());
  return res;
});

// A new build: drop the engine files of revisions it no longer has.
self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    const keep = new Set([...onUseKeys.values()].map((v) => v.key));
    const cache = await caches.open(ON_USE_CACHE);
    for (const request of await cache.keys()) if (!keep.has(request.url)) await cache.delete(request);
  })());
});
