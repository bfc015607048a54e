// Which llama.cpp build runs: the site's engine builds (engine/builds.json,
// written by py/offgrid_dev/engine_site.py) against what this browser can do.
//
// WebGPU needs a build with WebGPU (the stock wllama one); the CPU backends take
// the most specialised build with SIMD kernels whose requirements the browser
// meets and whose memory holds the model (32-bit memory before Memory64, then
// relaxed SIMD before SIMD), else the stock build. LoadModel.engine forces one.
import { GiB, formatBytes } from '../shared/units.js';

/**
 * @typedef {{worker: string, wasm: string}} CompatPaths  site-root relative
 * @typedef {{
 *   id: string, label: string, module: string, wasm: string, compat: CompatPaths | null,
 *   webgpu: boolean, simd_kernels: boolean, requires: string[], memory: 'wasm32' | 'memory64',
 *   max_memory?: number, weight_growth?: Record<string, number> }} Build  max_memory: bytes its memory may
 *   grow to (4 GiB where not said); weight_growth: by quantization, how much larger its weights are in memory
 *   than in the file (our builds repack q4_1 with f32 scales)
 * @typedef {{builds: Build[], default_cpu: string}} Builds
 * @typedef {{simd128: boolean, relaxed_simd: boolean, jspi: boolean, memory64: boolean}} Features
 * @typedef {{build: Build, reason: string}} Selection
 * @typedef {{Wllama: any, wasmPaths: {default: string}, compat: CompatPaths | null}} LoadedBuild
 */

// The smallest modules that use a SIMD128 op (i8x16.splat, i8x16.popcnt) and a
// relaxed SIMD op (i8x16.relaxed_swizzle); as in wasm-feature-detect.
const SIMD128_WASM = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);
const RELAXED_WASM = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253, 15, 253, 128, 2, 11]);

/** Requirements that a build's compat (asyncify, wasm32) flavour does without. */
const COMPAT_LIFTS = new Set(['jspi', 'memory64']);

/** A build takes models whose weights, as they are in its memory (weightBytes), take up to 3/4 of
 * it: the weights, the KV cache and the compute buffers all live there (3 GiB for a 32-bit build,
 * 12 for Memory64's 16). */
const MODEL_SHARE = 0.75;
/** A 32-bit memory: every compat (asyncify) flavour's, and any build's whose max_memory is not said. */
export const WASM32_MAX = 4 * GiB;
/** @param {Build} build @returns {number} bytes its own memory may grow to */
const maxMemory = (build) => build.max_memory || WASM32_MAX;
/** @param {number} memory @returns {number} */
const modelLimit = (memory) => MODEL_SHARE * memory;
const ROOM = 'room for this model';
/** @param {number} memory @param {number} weights in that memory @param {number} bytes the file's */
const tooLarge = (memory, weights, bytes) => `${ROOM} (its ${memory / GiB} GiB memory holds models up to ${modelLimit(memory) / GiB} GiB${
  weights > bytes ? `; this one's weights take ${formatBytes(weights, { binary: true })} there, repacked` : ''})`;

export class EngineBuildError extends Error {
  /** @param {string} message @param {string} hint @param {string} code @param {string} field */
  constructor(message, hint, code = 'bad_field', field = 'engine') {
    super(message);
    this.code = code;
    this.field = field;
    this.hint = hint;
  }
}

/** @param {Uint8Array} bytes */
function validates(bytes) {
  try {
    return WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

/** Can this realm make a 64-bit WebAssembly memory? */
export function hasMemory64() {
  try {
    new WebAssembly.Memory({ address: 'i64', initial: 1n });
    return true;
  } catch {
    return false;
  }
}

/** What this realm itself offers (the service worker asks before precaching a build). @returns {Features} */
export function browserFeatures() {
  return detectFeatures({ jspi: typeof WebAssembly.Suspending === 'function', memory64: hasMemory64() });
}

/**
 * The big files of `build` a browser with `features` loads (its wasm, or its compat flavour's
 * glue and wasm); its JS API module is not among them.
 * @param {Build} build @param {Features} features @returns {string[]} site-root relative
 */
export function heavyFiles(build, features) {
  return fit(build, features).mode === 'compat' && build.compat ? [build.compat.worker, build.compat.wasm] : [build.wasm];
}

/**
 * @param {{jspi: boolean, memory64: boolean}} probe what backend.js found
 * @returns {Features}
 */
export function detectFeatures(probe) {
  return { simd128: validates(SIMD128_WASM), relaxed_simd: validates(RELAXED_WASM), jspi: probe.jspi, memory64: probe.memory64 };
}

/**
 * How `build` runs here: 'native' (all it requires), 'compat' (its asyncify/wasm32
 * flavour, without JSPI/Memory64), or '' with what is missing.
 * @param {Build} build @param {Features} f
 * @param {number} modelBytes the model file's size (0: not known yet)
 * @param {string} quantization the model's (weightBytes: some grow in our builds' memory)
 * @returns {{mode: ''|'native'|'compat', missing: string[]}}
 */
export function fit(build, f, modelBytes = 0, quantization = '') {
  const missing = build.requires.filter((r) => !f[r]);
  const compat = Boolean(build.compat) && missing.length > 0 && missing.every((r) => COMPAT_LIFTS.has(r));
  if (missing.length > 0 && !compat) return { mode: '', missing };
  const memory = compat ? WASM32_MAX : maxMemory(build);
  const weights = weightBytes(build, { bytes: modelBytes, quantization });
  if (weights > modelLimit(memory)) return { mode: '', missing: [...missing, tooLarge(memory, weights, modelBytes)] };
  return { mode: compat ? 'compat' : 'native', missing };
}

/**
 * The bytes a model's weights take in this build's memory: the file's, grown where the build
 * repacks its quantization (an estimate: a few tensors of another type may stay as they are).
 * @param {Build} build @param {{bytes: number, quantization?: string}} model
 */
export function weightBytes(build, model) {
  return Math.ceil(model.bytes * (build.weight_growth?.[model.quantization ?? ''] ?? 1));
}

/** The memory the build runs with here: its own, or its compat flavour's 32-bit one. @param {Build} build @param {Features} f */
export function memoryOf(build, f) {
  return fit(build, f).mode === 'compat' ? WASM32_MAX : maxMemory(build);
}

/**
 * @param {Features} features
 * @param {string} backend the chosen backend: 'webgpu' | 'wasm-mt' | 'wasm-st'
 * @param {Builds} builds
 * @param {string} requested LoadModel.engine ('' = choose)
 * @param {number} modelBytes the model file's size (0: not known yet)
 * @param {string} quantization the model's
 * @returns {Selection}
 */
export function selectBuild(features, backend, builds, requested = '', modelBytes = 0, quantization = '') {
  const list = builds.builds;
  if (requested) {
    const build = list.find((b) => b.id === requested);
    if (!build) {
      throw new EngineBuildError(`No engine build "${requested}" on this site.`, `Known: ${list.map((b) => b.id).join(', ')} ("" chooses).`);
    }
    if (backend === 'webgpu' && !build.webgpu) {
      throw new EngineBuildError(`Engine build "${requested}" has no WebGPU backend.`, 'Ask for backend wasm-mt or wasm-st with it, or leave engine empty.');
    }
    const { mode, missing } = fit(build, features, modelBytes, quantization);
    if (!mode) throw new EngineBuildError(`Engine build "${requested}" needs ${missing.join(', ')}, which ${missing.some((m) => m.startsWith(ROOM)) ? 'it lacks here' : 'this browser lacks'}.`, 'Leave engine empty to choose one that runs here.');
    return { build, reason: `engine ${requested} requested` };
  }
  const runs = list.filter((b) => fit(b, features, modelBytes, quantization).mode);
  if (backend === 'webgpu') {
    const build = runs.find((b) => b.webgpu);
    if (build) return { build, reason: 'the WebGPU backend needs a build with WebGPU' };
  }
  // CPU: SIMD kernels first, then 32-bit memory (faster than Memory64), then the most specific
  // requirements (relaxed SIMD before SIMD), then the site's default.
  const rank = (b) => [b.simd_kernels ? 1 : 0, b.memory === 'wasm32' ? 1 : 0, b.requires.length, b.id === builds.default_cpu ? 1 : 0];
  const better = (a, b) => {
    const [x, y] = [rank(a), rank(b)];
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] > y[i] ? a : b;
    return a;
  };
  if (runs.length === 0) {
    if (list.some((b) => fit(b, features).mode)) {
      // Builds run here, none holds the model: say what the largest memory on the site would take.
      const largest = Math.max(...list.map(maxMemory));
      const lacking = ['jspi', 'memory64'].filter((r) => !features[r]);
      const held = list.some((b) => weightBytes(b, { bytes: modelBytes, quantization }) <= modelLimit(maxMemory(b)));
      const why = held && lacking.length
        ? `this browser lacks ${lacking.join(' and ')}, which models over ${modelLimit(WASM32_MAX) / GiB} GiB need`
        : `the largest engine memory here (${largest / GiB} GiB) holds models up to ${modelLimit(largest) / GiB} GiB`;
      throw new EngineBuildError(`No engine build here can hold a model of ${formatBytes(modelBytes, { binary: true })}: ${why}.`, 'Use a smaller model, or a current Chrome or Edge.', 'out_of_memory', '');
    }
    throw new EngineBuildError('No engine build runs in this browser.', 'Use a current Chrome, Edge, Firefox or Safari.');
  }
  const build = runs.reduce(better);
  const skipped = list.filter((b) => b.simd_kernels && !runs.includes(b)).map((b) => `${b.id} needs ${fit(b, features, modelBytes, quantization).missing.join(', ')}`);
  if (!build.simd_kernels) return { build, reason: `CPU backend: ${skipped.join('; ') || 'no SIMD build on this site'}` };
  return { build, reason: [`CPU backend: ${build.id} runs here`, ...skipped].join('; ') };
}

/** What Diagnostics says about a build, and its flavour here. @param {Build} build @param {Features} f */
export function describe(build, f) {
  const name = build.simd_kernels ? build.label : `${build.id} engine (no SIMD kernels)`;
  return fit(build, f).mode === 'compat' ? `${name}, compat flavour (asyncify, wasm32)` : name;
}

/**
 * Import the build's wllama module and resolve its file paths.
 * @param {Build} build
 * @param {string} siteRoot absolute URL of the site root (ends in '/')
 * @returns {Promise<LoadedBuild>}
 */
export async function loadBuild(build, siteRoot) {
  const at = (path) => new URL(path, siteRoot).href;
  const mod = await import(at(build.module));
  return {
    Wllama: mod.Wllama,
    wasmPaths: { default: at(build.wasm) },
    compat: build.compat ? { worker: at(build.compat.worker), wasm: at(build.compat.wasm) } : null,
  };
}

/** The site's builds (the build always writes engine/builds.json). @param {string} siteRoot */
export async function fetchBuilds(siteRoot) {
  const res = await fetch(new URL('engine/builds.json', siteRoot));
  if (!res.ok) throw new Error(`engine/builds.json: HTTP ${res.status}`);
  return /** @type {Promise<Builds>} */ (res.json());
}
