// Test hooks for the real engine worker. Never shipped: the e2e fixture
// `hooked` (py/offgrid_dev/site_variants.py) copies the built site, puts this module and its config
// (test_hooks_config.js) beside the engine's files and serves an entry
// (engine.worker.js, from worker_entry.js here) that wraps the real parts.
// Each hook makes a real failure happen inside the real engine worker:
//   webgpu_refuse       the engine's requestAdapter() returns null (as on a browser that
//                       refuses the adapter): llama.cpp then loads nothing onto the GPU;
//   webgpu_lose_device  the engine's GPUDevice is destroyed (device.destroy(), a real
//                       device loss) when the first answer on the GPU starts;
//   no_jspi             this worker has no JSPI (WebAssembly.Suspending is removed before
//                       anything probes it), as in Safari or Firefox;
//   device_memory_gb    the probe reports this much device memory (a smaller phone);
//   quota_mb            the weight store behaves as if the browser granted this much;
//   no_prompt_cache     every generation evaluates its whole prompt (for benchmarks).
import config from './test_hooks_config.js';
import { simulateQuota } from './weight_store.js';

if (config.no_jspi) {
  delete WebAssembly.Suspending;
  delete WebAssembly.promising;
}

// Code run inside wllama's own llama.cpp worker, which it builds from one string that starts
// with RUN_OPTIONS: prefix the hook to it.
const INNER = {
  webgpu_refuse: 'try{Object.defineProperty(WorkerNavigator.prototype,"gpu",{get:()=>({requestAdapter:async()=>null})});}catch(e){}',
  webgpu_lose_device: 'try{const rd=GPUAdapter.prototype.requestDevice;let devs=[];GPUAdapter.prototype.requestDevice=async function(...a){const d=await rd.apply(this,a);devs.push(d);return d};'
    + 'addEventListener("message",(e)=>{if(e.data&&e.data.verb==="offgrid.test.lose-device"){for(const d of devs)d.destroy();}});}catch(e){}',
};
const inner = Object.keys(INNER).filter((k) => config[k]).map((k) => INNER[k]).join(';');
if (inner) {
  const NativeBlob = self.Blob;
  self.Blob = class extends NativeBlob {
    constructor(parts, options) {
      if (Array.isArray(parts) && typeof parts[0] === 'string' && parts[0].startsWith('const RUN_OPTIONS')) parts = [inner, ';', ...parts];
      super(parts, options);
    }
  };
}
if (config.quota_mb) simulateQuota(config.quota_mb * 1e6);

/** The real parts, changed as the config says. @param {import('./handler.js').Parts} parts */
export function withHooks(parts) {
  const out = { ...parts };
  if (config.device_memory_gb) out.probe = parts.probe.then((p) => ({ ...p, deviceMemoryGb: config.device_memory_gb }));
  if (config.webgpu_lose_device || config.no_prompt_cache) {
    let fired = false;
    out.engines = {
      ...parts.engines,
      async start(build, file, options, logger) {
        const w = await parts.engines.start(build, file, options, logger);
        for (const method of ['createChatCompletion', 'createCompletion']) {
          const real = w[method].bind(w);
          w[method] = (params) => {
            // The first chat answer on the GPU (not the self-test's completions, not a token count).
            if (config.webgpu_lose_device && method === 'createChatCompletion' && options.n_gpu_layers > 0 && !fired && params.max_tokens !== 1) {
              fired = true;
              w.proxy?.worker?.postMessage({ verb: 'offgrid.test.lose-device' });
            }
            return real(config.no_prompt_cache ? { ...params, cache_prompt: false } : params);
          };
        }
        return w;
      },
    };
  }
  return out;
}
