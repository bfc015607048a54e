// window.offgrid: the engine protocol as a small scripting API, for the
// console and for tests. Requests go through the Python controller, the
// engine's one client: it relays each frame as it is, gives back the events
// that answer it (and nothing else), and takes a model that a script loads,
// switches or unloads as its own, so the screen stays in step. Requests made
// before Python is up wait for it.
//
//   const run = offgrid.request('Chat', { messages: [{ role: 'user', content: 'Hi' }] });
//   for await (const ev of run) if (ev.type === 'Delta') console.log(ev.text);
//   const { n_tokens } = await offgrid.call('CountTokens', { text: 'Hello' });
import { MAX_DEPTH, PROTOCOL_VERSION, T, make, textDepth, validate } from '../shared/protocol.js';

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
 * @param {() => any} controller the Python controller (relay, release, snapshot_json), once Pyodide is up (else null)
 * @returns {{api: object, deliver: (raw: string) => void, connect: (controller: any) => void}} the API
 *   (window.offgrid), where the controller delivers the events of its requests, and how main.js says it is up
 */
export function createApi(controller) {
  let counter = 0;
  /** @type {(c: any) => void} */
  let connect = () => {};
  const up = new Promise((resolve) => { connect = resolve; });
  /** Request id -> the exchanges waiting for its events. */
  const waiting = new Map();

  /** Events of the requests this API sent (JSON text, from the controller). */
  function deliver(raw) {
    const ev = JSON.parse(raw);
    for (const take of [...(waiting.get(ev.id) ?? [])]) take(ev);
  }

  /** Send any frame (even a malformed one) through the controller; iterate the events that answer its id. */
  function exchange(frame, raw, done) {
    const id = typeof frame?.id === 'string' ? frame.id : '';
    const queue = [];
    let wake = null;
    let finished = false;
    const seen = { started: false, ended: 0 };
    const finish = () => {
      finished = true;
      const set = waiting.get(id);
      set?.delete(take);
      if (set && !set.size) {
        waiting.delete(id);
        controller()?.release(id);
      }
    };
    const take = (ev) => {
      if (finished) return;
      queue.push(ev);
      if (done(frame, ev, seen)) finish();
      wake?.();
    };
    if (!waiting.has(id)) waiting.set(id, new Set());
    waiting.get(id).add(take);
    if (typeof raw === 'string' && raw.length > 2 * MAX_DEPTH && textDepth(raw) > MAX_DEPTH) {
      // Python's JSON parser (in Pyodide) would run out of stack on it: the engine reads and refuses it.
      up.then((c) => c.relay_unread(raw, id));
    } else {
      up.then((c) => {
        c.relay(raw);
        // A valid Stop has no answer of its own; a malformed one gets its EngineError.
        if (frame?.type === T.Stop && validate(frame).ok) { finish(); wake?.(); }
      });
    }
    return {
      id,
      /** Stop waiting for events (what came already can still be iterated). */
      close() { if (!finished) { finish(); wake?.(); } },
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
      await up;
      const timer = new Promise((resolve) => setTimeout(resolve, ms));
      const collect = (async () => { for await (const ev of run) events.push(ev); })();
      await Promise.race([collect, timer]);
      run.close();
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
  return { api, deliver, connect: (c) => connect(c) };
}
