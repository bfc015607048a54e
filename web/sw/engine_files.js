// Which engine files this browser's service worker precaches: the app shell
// (every file that is not an engine build's wasm) and the wasm of the CPU build
// this browser runs, chosen as the engine worker chooses it (build_select.js).
// The site carries about 74 MB of builds; a phone stores the one it needs. The
// others are cached when first used (a forced build, WebGPU's stock build), so
// they work offline from then on; until then, offline, a WebGPU start that
// cannot fetch its build falls back to the precached CPU build.
import { browserFeatures, heavyFiles, selectBuild } from '../engine/build_select.js';

/**
 * @typedef {{url: string, revision: string, integrity?: string}} Entry  a precache manifest entry
 * @param {Entry[]} entries every runtime file of the site (the precache manifest)
 * @param {import('../engine/build_select.js').Builds} builds dist/engine/builds.json
 * @param {import('../engine/build_select.js').Features} [features] this browser's (default: detected here)
 * @returns {{precache: Entry[], onUse: Entry[]}} what to precache, and what to cache when first used
 */
export function engineFiles(entries, builds, features = browserFeatures()) {
  const heavy = new Set(builds.builds.flatMap((b) => [b.wasm, ...(b.compat ? [b.compat.worker, b.compat.wasm] : [])]));
  let keep = [];
  try {
    keep = heavyFiles(selectBuild(features, 'wasm-mt', builds).build, features);
  } catch {
    // No build runs here: the shell still installs, and the page says why.
  }
  const precache = entries.filter((e) => !heavy.has(e.url) || keep.includes(e.url));
  return { precache, onUse: entries.filter((e) => heavy.has(e.url) && !keep.includes(e.url)) };
}

/** The entries to precache (see engineFiles). */
export const precacheFor = (entries, builds, features) => engineFiles(entries, builds, features).precache;
