// What this browser can run, and which engine backend to use.
//
// Order: WebGPU when the adapter has shader-f16 (llama.cpp's WebGPU backend
// needs it and aborts on some GPUs without it) and the model fits its buffer
// limits, else WASM multi-thread when the page is cross-origin isolated, else
// WASM single-thread. The compat engine build (no JSPI, no Memory64) is used
// whenever the browser lacks either. A fallback adapter (software, e.g.
// SwiftShader or lavapipe) is accepted when it has shader-f16.
import { formatBytes } from '../shared/units.js';
import { hasMemory64 } from './build_select.js';

const BIN = { binary: true };

/**
 * @typedef {{
 *   vendor: string, architecture: string, device: string, description: string, adapter: string,
 *   features: string[], fallback: boolean, shaderF16: boolean, subgroups: boolean,
 *   maxBufferSize: number, maxStorageBufferBindingSize: number }} GpuProbe
 * @typedef {{
 *   crossOriginIsolated: boolean, hardwareConcurrency: number, jspi: boolean, memory64: boolean,
 *   webgpu: GpuProbe | null, webgpuError: string,
 *   deviceMemoryGb: number, userAgent: string, browser: string, platform: string }} Probe
 * @typedef {'webgpu'|'wasm-mt'|'wasm-st'} BackendName
 * @typedef {{backend: BackendName, reason: string, threads: number, gpuLayers: number, compat: boolean}} Choice
 */

// The KV cache's element type on each backend. On the CPU q8_0: WASM has no f16
// conversion instructions, so llama.cpp's flash attention over an f16 cache sends
// every cached element through a lookup table, and its f16 accumulator back through
// a computed conversion, once per token. q8_0 runs on the SIMD dot-product kernels
// and takes half the memory (SmolLM2-135M, 1 thread, decode: 21 -> 41 tok/s at 256
// tokens of context, 11 -> 33 at 760; bench/RESULTS.md). The GPU keeps f16.
const KV_CACHE = { webgpu: 'f16', 'wasm-mt': 'q8_0', 'wasm-st': 'q8_0' };

/** The KV cache type `backend` runs with. @param {BackendName} backend */
export function kvCacheFor(backend) {
  return KV_CACHE[backend];
}

/** @returns {Promise<{gpu: GpuProbe | null, error: string}>} */
async function probeWebGPU() {
  if (!('gpu' in navigator)) return { gpu: null, error: 'this browser has no WebGPU (navigator.gpu)' };
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return { gpu: null, error: 'the browser offers no WebGPU adapter' };
    const info = adapter.info ?? {};
    const features = [...adapter.features].sort();
    const vendor = info.vendor ?? '';
    const architecture = info.architecture ?? '';
    return {
      gpu: {
        vendor, architecture, device: info.device ?? '', description: info.description ?? '',
        adapter: [vendor, architecture, info.description].filter(Boolean).join(' ') || 'unknown adapter',
        features, fallback: !!(info.isFallbackAdapter ?? adapter.isFallbackAdapter),
        shaderF16: features.includes('shader-f16'), subgroups: features.includes('subgroups'),
        maxBufferSize: Number(adapter.limits?.maxBufferSize ?? 0),
        maxStorageBufferBindingSize: Number(adapter.limits?.maxStorageBufferBindingSize ?? 0),
      },
      error: '',
    };
  } catch (err) {
    return { gpu: null, error: `requestAdapter failed: ${err?.message ?? err}` };
  }
}

/** "Chromium 156", "Firefox 140", "Safari 18.4": from User-Agent Client Hints, else the UA string. */
function browserName(ua) {
  const brands = navigator.userAgentData?.brands ?? [];
  const brand = brands.find((b) => !/Not.?A.?Brand/i.test(b.brand) && b.brand !== 'Chromium') ?? brands.find((b) => b.brand === 'Chromium');
  if (brand) return `${brand.brand} ${brand.version}`;
  const m = ua.match(/(Firefox|Edg|OPR|Chrome|Chromium)\/(\d+)/) ?? ua.match(/Version\/([\d.]+).*(Safari)/)?.slice(0, 3).reverse();
  return m ? `${m[1] === 'Edg' ? 'Edge' : m[1]} ${m[2]}` : 'unknown browser';
}

function platformName() {
  const hints = navigator.userAgentData;
  const base = hints?.platform || navigator.platform || 'unknown platform';
  return hints?.mobile ? `${base} (mobile)` : base;
}

/** @returns {Promise<Probe>} */
export async function probe() {
  const { gpu, error } = await probeWebGPU();
  const ua = navigator.userAgent;
  return {
    crossOriginIsolated: self.crossOriginIsolated === true,
    hardwareConcurrency: navigator.hardwareConcurrency || 1,
    jspi: typeof WebAssembly.Suspending === 'function',
    memory64: hasMemory64(),
    webgpu: gpu,
    webgpuError: error,
    deviceMemoryGb: navigator.deviceMemory ?? 0,
    userAgent: ua,
    browser: browserName(ua),
    platform: platformName(),
  };
}


/**
 * Does a model of `bytes` fit the adapter's buffer limits? llama.cpp's WebGPU
 * backend spreads the weights over buffers of at most maxBufferSize, but each
 * tensor is bound whole as one storage buffer: the largest tensor (the token
 * embedding, up to about a quarter of a small model) must fit
 * maxStorageBufferBindingSize, and all of it must fit a handful of buffers.
 * @returns {string} '' when it fits, else why not
 */
export function gpuFitProblem(gpu, bytes) {
  if (!bytes) return '';
  const largestTensor = bytes / 4;
  if (gpu.maxStorageBufferBindingSize && largestTensor > gpu.maxStorageBufferBindingSize) {
    return `model (${formatBytes(bytes, BIN)}) has tensors larger than the adapter's maxStorageBufferBindingSize (${formatBytes(gpu.maxStorageBufferBindingSize, BIN)})`;
  }
  if (gpu.maxBufferSize && bytes > 8 * gpu.maxBufferSize) {
    return `model (${formatBytes(bytes, BIN)}) exceeds 8 × the adapter's maxBufferSize (${formatBytes(gpu.maxBufferSize, BIN)})`;
  }
  return '';
}

/** Why WebGPU cannot be used ('' when it can). */
function gpuProblem(p, bytes) {
  if (!p.webgpu) return p.webgpuError || 'no WebGPU adapter';
  if (!p.webgpu.shaderF16) return `WebGPU adapter "${p.webgpu.adapter}" lacks shader-f16`;
  return gpuFitProblem(p.webgpu, bytes);
}

/**
 * Every backend this browser can run, best first, each with the reason it
 * stands where it does. The worker starts the first and falls back down the list.
 * @param {Probe} p
 * @param {'auto'|'webgpu'|'wasm-mt'|'wasm-st'} preference the user's setting
 * @param {number} requestedThreads 0 = choose
 * @param {{bytes?: number, avoidGpu?: string}} opts model size; avoidGpu: why not to use the GPU (failed self-test)
 * @returns {Choice[]}
 */
export function plan(p, preference = 'auto', requestedThreads = 0, opts = {}) {
  const compat = !p.jspi || !p.memory64;
  const compatNote = compat ? ` (compat build: ${[!p.jspi && 'no JSPI', !p.memory64 && 'no Memory64'].filter(Boolean).join(', ')})` : '';
  // Phones have many small cores; more than 4 threads rarely helps a small model.
  const threads = requestedThreads || Math.max(1, Math.min(4, p.hardwareConcurrency));
  const noGpu = gpuProblem(p, opts.bytes ?? 0);
  const out = [];
  const gpuOk = !noGpu && !(opts.avoidGpu && preference !== 'webgpu');
  if (gpuOk && (preference === 'auto' || preference === 'webgpu')) {
    const soft = p.webgpu.fallback ? ' (a fallback/software adapter)' : '';
    out.push({ backend: 'webgpu', reason: `WebGPU adapter "${p.webgpu.adapter}"${soft} has shader-f16 and the model fits its limits${compatNote}`, threads: 1, gpuLayers: 999, compat });
  }
  const why = preference === 'webgpu' ? `WebGPU requested but ${noGpu || opts.avoidGpu}`
    : preference === 'auto' ? (noGpu || opts.avoidGpu || 'next after WebGPU') : `${preference} requested`;
  const mt = p.crossOriginIsolated && threads > 1;
  if (mt && preference !== 'wasm-st') {
    out.push({ backend: 'wasm-mt', reason: `${why}; cross-origin isolated, ${threads} threads${compatNote}`, threads, gpuLayers: 0, compat });
  }
  const st = !p.crossOriginIsolated ? 'page is not cross-origin isolated (no COOP/COEP), so no threads' : threads <= 1 ? 'one core' : 'single thread';
  out.push({ backend: 'wasm-st', reason: `${why}; ${preference === 'wasm-st' ? 'single thread requested' : st}${compatNote}`, threads: 1, gpuLayers: 0, compat });
  // An explicit choice that cannot run here still falls back to what can.
  if (preference === 'wasm-mt' && !mt) out[0].reason = `wasm-mt requested but ${st}${compatNote}`;
  return out;
}

/**
 * The first backend of `plan`.
 * @returns {Choice}
 */
export function choose(p, preference = 'auto', requestedThreads = 0, opts = {}) {
  return plan(p, preference, requestedThreads, opts)[0];
}

/** A stable key for "this adapter on this device", for remembering self-test results. */
export function adapterKey(p) {
  const g = p.webgpu;
  return g ? [g.vendor, g.architecture, g.device, g.description, p.platform].join('|') : '';
}
