// The Diagnostics event: what this browser and device can do, what runs the
// model and why, and what happened (fallbacks, the self-test).
import { T } from '../shared/protocol.js';
import { choose, kvCacheFor } from './backend.js';
import { describe, detectFeatures, selectBuild } from './build_select.js';

/** Post Diagnostics for request `id`. */
export async function diagnostics(ctx, id) {
  const { state, parts } = ctx;
  const p = await parts.probe;
  const c = state.choice ?? choose(p);
  const g = p.webgpu;
  const features = detectFeatures(p);
  const build = state.current?.build ?? selectBuild(features, c.backend, await parts.builds).build;
  ctx.post(T.Diagnostics, {
    backend: c.backend, backend_reason: c.reason, threads: c.threads,
    cross_origin_isolated: p.crossOriginIsolated, hardware_concurrency: p.hardwareConcurrency,
    webgpu_adapter: g?.adapter ?? '', webgpu_features: g?.features ?? [],
    jspi: p.jspi, memory64: p.memory64, compat: c.compat, device_memory_gb: p.deviceMemoryGb,
    user_agent: p.userAgent, libllama_version: parts.engines.libllamaVersion,
    webgpu_vendor: g?.vendor ?? '', webgpu_architecture: g?.architecture ?? '', webgpu_description: g?.description || (g ? '' : p.webgpuError),
    webgpu_fallback: g?.fallback ?? false, shader_f16: g?.shaderF16 ?? false, subgroups: g?.subgroups ?? false,
    max_buffer_size: g?.maxBufferSize ?? 0, max_storage_buffer_binding_size: g?.maxStorageBufferBindingSize ?? 0,
    gpu_layers: c.backend === 'webgpu' ? state.current?.gpuLayers ?? '' : '',
    weight_buffers: state.current?.weightBuffers ?? '',
    browser: p.browser, platform: p.platform, self_test: state.selfTest, fallbacks: state.fallbacks,
    engine: describe(build, features),
    kv_cache: state.loadedInfo?.kv_cache ?? kvCacheFor(c.backend),
  }, id);
}
