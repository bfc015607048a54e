// window.offgrid: the engine protocol as a small scripting API, for the
// console and for tests. Requests go straight to the engine worker; the
// controller sees their events too, so the screen stays in step.
//
//   const run = offgrid.request('Chat', { messages: [{ role: 'user', content: 'Hi' }] });
//   for await (const ev of run) if (ev.type === 'Delta') console.log(ev.text);
//   const { n_tokens } = await offgrid.call('CountTokens', { text: 'Hello' });
import { PROTOCOL_VERSION, T, make } from '../shared/protocol.js';

const GENERATING = new Set([T.Chat, T.Complete, T.Continue, T.ChatBatch]);
const FINAL = {
  [T.LoadModel]: T.ModelLoaded, [T.SwitchModel]: T.ModelLoaded, [T.InspectModel]: T.ModelLoaded,
  [T.UnloadModel]: T.ModelUnloaded, [T.ListModels]: T.ModelList, [T.GetDiagnostics]: T.Diagnostics,
  [T.CountTokens]: T.TokenCount, [T.GetStorage]: T.StorageReport, [T.DeleteModel]: T.StorageReport,
  [T.SelfTest]: T.SelfTestResult,
};

/**
 * Does `ev` end the request `frame`? A refusal (EngineError before any
 * GenerateStart) ends every request; a generation ends with its last GenerateEnd.
 */
function isFinal(frame, ev, seen) {
  if (GENERATING.has(frame.type)) {
    if (ev.type === T.GenerateStart) seen.started = true;
    if (ev.type === T.GenerateEnd) seen.ended += 1;
    if (!seen.started) return ev.type === T.EngineError;
    return seen.ended >= (frame.type === T.ChatBatch ? frame.prompts.length : 1);
  }
  return ev.type === T.EngineError || ev.type === FINAL[frame.type];
}

/**
 * @param {{send: (s: string) => void, listen: (fn: (f: any) => void) => () => void}} bridge
 * @param {() => any} controller the Python controller, once Pyodide is up (else null)
 */
export function createApi(bridge, controller) {
  let counter = 0;

  /** Send any frame (even a malformed one); iterate the events that answer its id. */
  function exchange(frame, raw, done) {
    const id = typeof frame?.id === 'string' ? frame.id : '';
    const queue = [];
    let wake = null;
    let finished = false;
    const seen = { started: false, ended: 0 };
    const unlisten = bridge.listen((ev) => {
      if (ev.id !== id || finished) return;
      queue.push(ev);
      if (done(frame, ev, seen)) { finished = true; unlisten(); }
      wake?.();
    });
    bridge.send(raw);
    if (frame?.type === T.Stop) { finished = true; unlisten(); } // Stop has no answer of its own
    return {
      id,
      async *[Symbol.asyncIterator]() {
        for (;;) {
          if (queue.length) { yield queue.shift(); continue; }
          if (finished) return;
          await new Promise((resolve) => { wake = resolve; });
          wake = null;
        }
      },
    };
  }

  const api = {
    protocolVersion: PROTOCOL_VERSION,
    types: T,
    /** Send request `type`; returns an async iterable of its events (with `.id`). */
    request(type, fields = {}) {
      const frame = make(type, fields, `api${++counter}`);
      return exchange(frame, JSON.stringify(frame), isFinal);
    },
    /** Send a request and collect its events; resolves to the final one (its `events` attached). */
    async call(type, fields = {}) {
      const events = [];
      for await (const ev of api.request(type, fields)) events.push(ev);
      return Object.assign({}, events.at(-1), { events });
    },
    /** Post anything to the worker as is (tests of malformed input); collects answers for `ms`. */
    async sendRaw(frame, ms = 1000) {
      const raw = typeof frame === 'string' ? frame : JSON.stringify(frame);
      let parsed = frame;
      try { parsed = JSON.parse(raw); } catch { parsed = null; }
      const events = [];
      const run = exchange(parsed, raw, (f, ev) => ev.type === T.EngineError);
      const timer = new Promise((resolve) => setTimeout(resolve, ms));
      const collect = (async () => { for await (const ev of run) events.push(ev); })();
      await Promise.race([collect, timer]);
      return events;
    },
    /** The catalog, with what is stored on this device. */
    async models() {
      return (await api.call(T.ListModels)).models;
    },
    /** The controller's state: {state, model_id, turns}. */
    state() {
      const c = controller();
      return c ? JSON.parse(c.snapshot_json()) : { state: 'booting', model_id: '', turns: [] };
    },
  };
  return api;
}
