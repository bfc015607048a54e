// Which engine files this browser's service worker precaches: the app shell
// (every file that is not an engine build's wasm) and the wasm of the CPU build
// this browser runs, chosen as the engine worker chooses it (build_select.js).
// The site carries about 74 MB of builds; a phone stores the one it needs. The
// others come from the network when asked for (a forced build, WebGPU's stock
// build; offline, a failed WebGPU start falls back to the precached CPU build).
import { browserFeatures, heavyFiles, selectBuild } from '../engine/build_select.js';

/**
 * @param {{url: string}[]} entries every runtime file of the site (the precache manifest)
 * @param {import('../engine/build_select.js').Builds} builds dist/engine/builds.json
 * @param {import('../engine/build_select.js').Features} [features] this browser's (default: detected here)
 * @returns {{url: string}[]} the entries to precache
 */
export function precacheFor(entries, builds, features = browserFeatures()) {
  const heavy = new Set(builds.builds.flatMap((b) => [b.wasm, ...(b.compat ? [b.compat.worker, b.compat.wasm] : [])]));
  let keep = [];
  try {
    const { build } = selectBuild(features, 'wasm-mt', builds);
    keep = heavyFiles(build, features);
  } catch {
    // No build runs here: the shell still installs, and the page says why.
  }
  return entries.filter((e) => !heavy.has(e.url) || keep.includes(e.url));
}
