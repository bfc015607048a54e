// What this browser can run, and which engine backend to use.
//
// Order: WebGPU when the adapter has shader-f16 (llama.cpp's WebGPU backend
// needs it and aborts on some GPUs without it), else WASM multi-thread when
// the page is cross-origin isolated, else WASM single-thread.

/**
 * @typedef {{
 *   crossOriginIsolated: boolean, hardwareConcurrency: number, jspi: boolean, memory64: boolean,
 *   webgpu: {adapter: string, features: string[], fallback: boolean} | null,
 *   deviceMemoryGb: number, userAgent: string }} Probe
 * @typedef {{backend: 'webgpu'|'wasm-mt'|'wasm-st', reason: string, threads: number, gpuLayers: number, compat: boolean}} Choice
 */

function hasMemory64() {
  try {
    new WebAssembly.Memory({ address: 'i64', initial: 1n });
    return true;
  } catch {
    return false;
  }
}

async function probeWebGPU() {
  if (!('gpu' in navigator)) return null;
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return null;
    const info = adapter.info ?? {};
    return {
      adapter: [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unknown adapter',
      features: [...adapter.features].sort(),
      fallback: !!(info.isFallbackAdapter ?? adapter.isFallbackAdapter),
    };
  } catch {
    return null;
  }
}

/** @returns {Promise<Probe>} */
export async function probe() {
  return {
    crossOriginIsolated: self.crossOriginIsolated === true,
    hardwareConcurrency: navigator.hardwareConcurrency || 1,
    jspi: typeof WebAssembly.Suspending === 'function',
    memory64: hasMemory64(),
    webgpu: await probeWebGPU(),
    deviceMemoryGb: navigator.deviceMemory ?? 0,
    userAgent: navigator.userAgent,
  };
}

/**
 * @param {Probe} p
 * @param {'auto'|'webgpu'|'wasm-mt'|'wasm-st'} preference
 * @param {number} requestedThreads 0 = choose
 * @returns {Choice}
 */
export function choose(p, preference = 'auto', requestedThreads = 0) {
  const compat = !p.jspi || !p.memory64;
  const f16 = !!p.webgpu?.features.includes('shader-f16');
  // Phones have many small cores; more than 4 threads rarely helps a small model.
  const threads = requestedThreads || Math.max(1, Math.min(4, p.hardwareConcurrency));
  if ((preference === 'auto' || preference === 'webgpu') && f16) {
    return { backend: 'webgpu', reason: `WebGPU adapter "${p.webgpu.adapter}" has shader-f16`, threads: 1, gpuLayers: 999, compat };
  }
  const noGpu = !p.webgpu
    ? 'no WebGPU adapter'
    : `WebGPU adapter "${p.webgpu.adapter}" lacks shader-f16`;
  if (preference === 'webgpu') {
    return { backend: p.crossOriginIsolated ? 'wasm-mt' : 'wasm-st', reason: `WebGPU requested but ${noGpu}`, threads: p.crossOriginIsolated ? threads : 1, gpuLayers: 0, compat };
  }
  if (preference !== 'wasm-st' && p.crossOriginIsolated && threads > 1) {
    return { backend: 'wasm-mt', reason: `${noGpu}; cross-origin isolated, ${threads} threads`, threads, gpuLayers: 0, compat };
  }
  const why = preference === 'wasm-st' ? 'single thread requested' : !p.crossOriginIsolated ? 'page is not cross-origin isolated (no COOP/COEP)' : 'one core';
  return { backend: 'wasm-st', reason: `${noGpu}; ${why}`, threads: 1, gpuLayers: 0, compat };
}
