// The bridge between the Python controller (main thread) and the engine
// worker. Frames cross as JSON strings. The controller is the engine's one
// client (window.offgrid goes through it); frames that arrive before Python is
// up are kept and handed over, in order, when it attaches.

/**
 * @param {Worker} worker
 * @returns {{send: (frame: string) => void, attach: (sink: (frame: string) => void) => void,
 *   listen: (fn: (frame: Record<string, any>) => void) => () => void}}
 */
export function createBridge(worker) {
  /** @type {((frame: string) => void) | null} */
  let sink = null;
  /** @type {string[]} */
  const backlog = [];
  const listeners = new Set();
  worker.onmessage = (e) => {
    const raw = e.data;
    if (listeners.size) {
      const frame = JSON.parse(raw);
      listeners.forEach((fn) => fn(frame));
    }
    if (sink) sink(raw);
    else backlog.push(raw);
  };
  worker.onerror = (e) => console.error('engine worker failed to start:', e.message);
  return {
    send: (frame) => worker.postMessage(frame),
    attach(fn) {
      sink = fn;
      for (const raw of backlog.splice(0)) fn(raw);
    },
    // Observers see every frame, parsed (the boot timings, offgridDebug); they never act on the engine.
    listen(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}
