// The engine worker's request handler: checks each frame, answers queries at
// once and puts everything else on the one job queue (job_queue.js has the
// rules). It is built from injected parts, so node's tests can drive it with a
// fake engine; engine.worker.js gives it the real ones.
import { PROTOCOL_VERSION, T, make, validate } from '../shared/protocol.js';
import { JobQueue } from './job_queue.js';
import { diagnostics } from './diagnostics.js';
import { deleteStored, listModels, storageReport } from './models.js';
import { loadModel, unload } from './loading.js';
import { runGeneration, endStuck } from './generation.js';
import { selfTestAndReport } from './self_test_job.js';

/**
 * What the handler is built from.
 * @typedef {object} Parts
 * @property {(frame: object) => void} post  send one event frame to the page
 * @property {Promise<import('./backend.js').Probe>} probe  what this browser and device can do
 * @property {Promise<{default: string, models: any[], engine?: {libllama_version?: string}}>} catalog
 * @property {Promise<any>} builds  dist/engine/builds.json
 * @property {{start: (build: any, file: any, options: object, logger: object) => Promise<any>, libllamaVersion: string, name: string}} engines
 *   starts llama.cpp (a wllama instance, or a fake with the same methods)
 * @property {object} weights  the weight store (weight_store.js's functions)
 * @property {{remembered: (key: string) => Promise<any>, remember: (key: string, v: object) => Promise<void>}} selfTestMemory
 * @property {{last: () => Promise<Record<string, any> | null>, remember: (req: Record<string, any>) => Promise<void>}} loads
 *   the last LoadModel the page asked for (what the next visit warms up)
 * @property {string} origin  the site's origin (a LoadModel url must be on it)
 * @property {() => number} now  milliseconds, for load times
 * @property {number} [stopGraceMs]  how long a generation may take to end after Stop (job_queue.js rule 7)
 */

/** Mutable engine state, owned by the handler. */
function newState() {
  return {
    /** @type {import('./fallback.js').Started | null} */ current: null, // the running engine
    /** @type {import('./backend.js').Choice | null} */ choice: null,
    loadedKey: '', // which LoadModel the loaded model answers, to reuse a warm-up load
    /** @type {Record<string, any> | null} */ loadedInfo: null, // the ModelLoaded fields
    /** @type {{model: any, file: any, req: any, fromCache: boolean} | null} */ loaded: null, // to restart on another backend
    /** @type {string[]} */ fallbacks: [], // "webgpu: why" for each backend that failed this session
    selfTest: '', // the last self-test, in words
  };
}

/** @typedef {ReturnType<typeof createHandler>['ctx']} Context */

/** @param {Parts} parts */
export function createHandler(parts) {
  const post = (type, fields = {}, id = '') => parts.post(make(type, fields, id));
  const fail = (id, code, message, hint = '', field = '') => post(T.EngineError, { code, message, hint, field }, id);
  const ctx = { parts, post, fail, queue: /** @type {JobQueue} */ (/** @type {unknown} */ (null)), state: newState() };
  ctx.queue = new JobQueue((job, err) => fail(job.id, 'internal', String(err?.message ?? err)),
    { stopGraceMs: parts.stopGraceMs, onStuck: (job) => endStuck(ctx, job) });
  const { queue } = ctx;

  const LIFECYCLE = {
    [T.LoadModel]: (msg) => loadModel(ctx, msg.id, msg),
    [T.SwitchModel]: (msg) => loadModel(ctx, msg.id, msg),
    [T.UnloadModel]: async (msg) => post(T.ModelUnloaded, { model_id: await unload(ctx) }, msg.id),
    [T.DeleteModel]: (msg) => deleteStored(ctx, msg.id, msg.model_id),
    [T.SelfTest]: (msg) => (ctx.state.current ? selfTestAndReport(ctx, msg.id, msg.n_tokens)
      : fail(msg.id, 'no_model', 'No model is loaded.', 'Load a model first.')),
  };
  const GENERATION = new Set([T.Chat, T.Complete, T.Continue, T.ChatBatch, T.CountTokens]);

  /** Route one checked request. */
  function route(msg) {
    const { id, type } = msg;
    switch (type) {
      case T.ListModels: return listModels(ctx, id);
      case T.GetDiagnostics: return diagnostics(ctx, id);
      case T.GetStorage: return storageReport(ctx, id);
      case T.Stop: return queue.stop(msg.target);
      case T.InspectModel: {
        const answer = async () => (ctx.state.current ? post(T.ModelLoaded, ctx.state.loadedInfo, id)
          : fail(id, 'no_model', 'No model is loaded.', 'Send LoadModel first.'));
        if (queue.running?.kind === 'generation' && !queue.waiting.length) return answer(); // the model cannot change now
        return queue.push({ id, kind: 'inspect', type, run: answer });
      }
      default: break;
    }
    if (LIFECYCLE[type]) {
      const busy = queue.refusal('lifecycle');
      if (busy) return fail(id, 'busy', busy, type === T.DeleteModel ? 'Stop it first, then delete the model.' : 'Stop it first, then change the model.');
      return queue.push({ id, kind: 'lifecycle', type, run: () => LIFECYCLE[type](msg) });
    }
    if (GENERATION.has(type)) {
      if (type === T.Continue && msg.messages.at(-1)?.role !== 'assistant') {
        return fail(id, 'bad_field', 'Continue needs messages that end with the assistant turn to extend.', '', 'messages');
      }
      if (type === T.ChatBatch && msg.prompts.length === 0) return fail(id, 'bad_field', 'ChatBatch needs at least one prompt.', '', 'prompts');
      const busy = queue.refusal('generation');
      if (busy) return fail(id, 'busy', busy, 'Wait for GenerateEnd or send Stop.');
      return queue.push({ id, kind: 'generation', type, run: (signal, job) => runGeneration(ctx, msg, signal, job) });
    }
    return fail(id, 'bad_message', `${type} is an event, not a request.`, '', 'type');
  }

  /** Take one frame from the page (a JSON string or an object). */
  function receive(data) {
    let frame = data;
    if (typeof frame === 'string') {
      try {
        frame = JSON.parse(frame);
      } catch {
        return fail('', 'bad_message', 'not JSON');
      }
    }
    const checked = validate(frame);
    const id = typeof frame?.id === 'string' ? frame.id : '';
    if (!checked.ok) {
      const hint = checked.code === 'version_mismatch' ? 'The page and the engine worker come from different builds: run `python3 build.py` and reload.' : '';
      return fail(id, checked.code, checked.message, hint, checked.field);
    }
    return Promise.resolve(route(checked.msg)).catch((err) => fail(id, 'internal', String(err?.message ?? err)));
  }

  /**
   * Say hello, and load the model the page will ask for while Pyodide boots (queued like any
   * lifecycle job; nothing but download progress is posted: the controller's own LoadModel
   * then finds it loaded and gets its ModelLoaded at once). That is the last load the page
   * asked for, if its model is still stored; on a first visit, the catalog's default; none
   * when the person deleted the model they last used.
   */
  async function start() {
    const builds = await Promise.resolve(parts.builds).catch(() => null); // builds.json names wllama's version
    const engine = [parts.engines.name, builds?.wllama].filter(Boolean).join(' ');
    post(T.Hello, { protocol_version: PROTOCOL_VERSION, libllama_version: parts.engines.libllamaVersion, engine });
    let cat;
    try {
      cat = await parts.catalog;
    } catch (err) {
      return fail('', 'internal', `Cannot read the model catalog: ${err?.message ?? err}`, 'Rebuild the site with `python3 build.py`.');
    }
    const built = cat.engine?.libllama_version;
    if (built && built !== parts.engines.libllamaVersion) {
      fail('', 'version_mismatch', `The engine is llama.cpp ${parts.engines.libllamaVersion} but the site was built for ${built}.`,
        'Rebuild with `python3 build.py` and reload; an old cached copy of the app can cause this too.');
    }
    const req = await warmUpRequest(cat);
    if (req) queue.push({ id: '', kind: 'lifecycle', type: 'WarmUp', run: () => loadModel(ctx, '', req, false) });
  }

  /** The LoadModel to warm up with (see start), or null for none. */
  async function warmUpRequest(cat) {
    const last = await parts.loads.last();
    if (!last) return make(T.LoadModel, { model_id: cat.default });
    const model = cat.models.find((m) => m.id === last.model_id);
    if (last.url || !model || !(await parts.weights.isCached(model))) return null;
    try {
      return make(T.LoadModel, last);
    } catch {
      return null; // remembered by an older build whose fields differ
    }
  }

  return { receive, start, ctx };
}
