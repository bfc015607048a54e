// Fake parts for the engine handler (web/engine/handler.js): a scripted
// llama.cpp with wllama's methods, an in-memory weight store, a probe and
// builds of our choosing. Only node's tests use them; the e2e tests run the
// real engine.
import { make } from '../../web/shared/protocol.js';

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A gate a test opens to let a fake engine go on: `await gate.wait()`, `gate.open()`. */
export function gate() {
  let open;
  const g = { opened: false, promise: null, open: () => { g.opened = true; open(); } };
  g.promise = new Promise((resolve) => { open = resolve; });
  return g;
}

/**
 * A started fake engine. `script`: tokens to stream, `crashAfter` (throw after that many
 * tokens), `hold` (a gate every stream waits on before its first token).
 */
export class FakeEngine {
  constructor(script, options) {
    this.script = script;
    this.options = options;
    this.exited = false;
    /** @type {object[]} */ this.calls = [];
    this.active = 0; // streams running now; llama.cpp's server runs n_parallel at most
    this.maxActive = 0;
  }

  async #stream(params, piece) {
    this.calls.push(params);
    this.active += 1;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      // Like llama.cpp's server, a request beyond its slots waits for one: here, for ever.
      if (this.active > (this.options.n_parallel ?? 4)) await new Promise(() => {});
      await this.#run(params, piece);
    } finally {
      this.active -= 1;
    }
  }

  async #run(params, piece) {
    const { tokens = ['Hel', 'lo'], crashAfter = -1, hold = null, hang = false } = this.script;
    const text = [...(params.messages ?? []).map((m) => m.content), params.prompt ?? ''].join('');
    // wllama's glue framing broke on a lone surrogate (issue 23): the fake refuses one too.
    if (/[\uD800-\uDFFF]/.test(text.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ''))) throw new Error('Invalid typed array length: 1163217991');
    const n = Math.min(params.max_tokens > 0 ? params.max_tokens : tokens.length, tokens.length);
    if (hold) await hold.promise;
    for (let i = 0; i < n; i += 1) {
      await tick();
      if (hang && i === 1) await new Promise(() => {}); // a hung engine: deaf to Stop, never ends
      if (params.abortSignal?.aborted) throw new Error('aborted by the signal');
      if (i === crashAfter) throw new Error('RuntimeError: memory access out of bounds');
      params.onData?.(piece(tokens[i]));
    }
    const timings = { prompt_n: 5, cache_n: 0, predicted_n: n, prompt_per_second: 100, predicted_per_second: 50 };
    params.onData?.({ ...piece(''), choices: [{ ...piece('').choices[0], finish_reason: n < tokens.length ? 'length' : 'stop' }], timings, usage: { prompt_tokens: 5, completion_tokens: n } });
  }

  createChatCompletion(params) {
    return this.#stream(params, (t) => ({ choices: [{ delta: { content: t } }] }));
  }

  createCompletion(params) {
    return this.#stream(params, (t) => ({ choices: [{ text: t }] }));
  }

  getLoadedContextInfo() {
    return { metadata: { 'general.architecture': 'llama', 'general.size_label': '135M' }, n_ctx: this.options.n_ctx, n_ctx_train: 8192, n_vocab: 49152, n_layer: 30, n_embd: 576 };
  }

  getChatTemplate() { return '{{ messages }}'; }

  getNumThreads() { return this.options.n_threads; }

  async exit() { this.exited = true; }
}

const GPU = {
  vendor: 'fake', architecture: 'gpu', device: '', description: '', adapter: 'fake gpu', features: ['shader-f16'],
  fallback: false, shaderF16: true, subgroups: false, maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 28,
};

export const MODEL = { id: 'tiny', name: 'Tiny', file: 'tiny.gguf', bytes: 1000, sha256: 'ab12', quantization: 'Q4_1', license: 'MIT', version: '1', chunks: ['ab12'] };
export const OTHER = { ...MODEL, id: 'other', name: 'Other', file: 'other.gguf', sha256: 'cd34', chunks: ['cd34'] };

/**
 * A handler's parts, and what they saw. Options: `gpu` (a WebGPU adapter with shader-f16),
 * `gpuBroken` (the engine loads nothing onto it), `script` (for every engine started),
 * `lastLoad` (the LoadModel the engine remembers from an earlier visit), `hangFirst` (the first
 * engine started hangs after one token of an answer, deaf to Stop).
 */
export function fakeParts({ gpu = false, gpuBroken = false, script = {}, lastLoad = null, hangFirst = false } = {}) {
  /** @type {any[]} */ const frames = [];
  /** @type {FakeEngine[]} */ const engines = [];
  const stored = new Map();
  const parts = {
    post: (frame) => frames.push(JSON.parse(JSON.stringify(frame))),
    probe: Promise.resolve({
      crossOriginIsolated: true, hardwareConcurrency: 2, jspi: true, memory64: true, webgpu: gpu ? GPU : null,
      webgpuError: gpu ? '' : 'no WebGPU here', deviceMemoryGb: 8, userAgent: 'node', browser: 'node', platform: 'test',
    }),
    catalog: Promise.resolve({ default: MODEL.id, models: [MODEL, OTHER], engine: { libllama_version: 'fake-1' } }),
    builds: Promise.resolve({
      builds: [{ id: 'stock', label: 'stock', requires: [], webgpu: true, simd_kernels: false, memory: 'memory64', max_memory: 4 * 2 ** 30, compat: null }],
      default_cpu: 'stock', wllama: '0.0.0',
    }),
    engines: {
      name: 'fake', libllamaVersion: 'fake-1',
      async start(build, file, options, logger) {
        await tick();
        if (options.n_gpu_layers > 0) logger.log(`load_tensors: offloaded ${gpuBroken ? 0 : 31}/31 layers to GPU`);
        logger.log('load_tensors:          CPU model buffer size =    92.00 MiB');
        const e = new FakeEngine(hangFirst && engines.length === 0 ? { ...script, hang: true } : script, { ...options, file });
        engines.push(e);
        return e;
      },
    },
    weights: {
      async ensureStored(model, onProgress) {
        const had = stored.has(model.id);
        onProgress({ phase: 'download', loaded: model.bytes, total: model.bytes, fromCache: had, rate: 0 });
        stored.set(model.id, model);
        return had;
      },
      openModel: async (model) => ({ size: model.bytes, name: model.file }),
      isCached: async (model) => stored.has(model.id),
      storedModels: async () => [...stored.values()].map((m) => ({ ...m, stored: m.bytes, complete: true })),
      deleteModel: async (id) => { stored.delete(id); },
      storageEstimate: async () => ({ usage: 0, quota: 1e9, persisted: false }),
      // Same-origin files a LoadModel.url may name: a GGUF one and a page.
      fetchWhole: async (url) => {
        if (url.endsWith('.gguf')) return new Blob(['GGUF', new Uint8Array(996)]);
        if (url.endsWith('.html')) return new Blob(['<!doctype html><title>Offgrid</title>']);
        throw new Error(`HTTP 404 for ${url}`);
      },
    },
    selfTestMemory: { remembered: async () => null, remember: async () => {} },
    loads: { last: async () => lastLoad, remember: async (req) => { lastLoad = req; } },
    origin: 'http://localhost:8000',
    now: () => 0,
    stopGraceMs: 50,
  };
  return { parts, frames, engines };
}

/** A request frame, as the page sends it. */
export const request = (type, fields = {}, id = `r${Math.random().toString(36).slice(2, 8)}`) => make(type, fields, id);

/** Wait until `pred(frames)` holds (the handler works asynchronously). */
export async function until(frames, pred, what = 'a condition', ms = 2000) {
  const t0 = Date.now();
  while (!pred(frames)) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}; frames: ${frames.map((f) => `${f.type}:${f.id}${f.code ? `:${f.code}` : ''}`).join(' ')}`);
    await tick();
  }
}
