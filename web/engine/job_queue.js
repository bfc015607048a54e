// The engine's one job queue, and the rules every request follows.
//
//  1. Jobs run one at a time, in arrival order. A job is a lifecycle job
//     (LoadModel, SwitchModel, UnloadModel, DeleteModel, SelfTest, the warm-up
//     load, a recovery after a backend failed) or a generation (Chat, Complete,
//     Continue, ChatBatch, CountTokens).
//  2. Queries (ListModels, GetDiagnostics, GetStorage) and Stop never queue:
//     they answer at once. InspectModel queues behind lifecycle jobs (it names
//     the model they leave loaded) but is never refused.
//  3. A generation is refused `busy` while another generation runs or waits:
//     one at a time, never silently later.
//  4. A lifecycle job is refused `busy` while a generation runs (it would pull
//     the model from under the answer: Stop first). One that arrives while a
//     generation waits queues behind it: the generation runs on the model it
//     was asked of.
//  5. Stop reaches the running generation whatever it is doing (evaluating the
//     prompt, counting tokens, streaming), and a waiting one, which then ends
//     at once as aborted without touching the engine. A Stop naming a request
//     that is neither running nor waiting is remembered for it.
//  6. A recovery (the backend failed during an answer) goes to the front:
//     nothing else runs on a broken engine.
//  7. Watchdog: a generation that has not ended `stopGraceMs` after Stop
//     reached it is released (the handler ends it and restarts the engine);
//     whatever it posts later is dropped. A hung engine never leaves every
//     later request `busy`.

/**
 * @typedef {'lifecycle' | 'generation' | 'inspect'} JobKind
 * @typedef {{id: string, kind: JobKind, type: string, abort: AbortController, released?: boolean,
 *   run: (signal: AbortSignal, job: Job) => Promise<void>}} Job  released: let go by the watchdog (rule 7)
 */

export class JobQueue {
  /**
   * @param {(job: Job, err: unknown) => void} onCrash  a job threw (the handler reports it)
   * @param {{stopGraceMs?: number, onStuck?: (job: Job) => void}} [watchdog] rule 7
   */
  constructor(onCrash, { stopGraceMs = 10_000, onStuck = () => {} } = {}) {
    this.stopGraceMs = stopGraceMs;
    this.onStuck = onStuck;
    /** @type {Job[]} */ this.waiting = [];
    /** @type {Job | null} */ this.running = null;
    /** @type {Set<string>} */ this.stopEarly = new Set();
    this.onCrash = onCrash;
  }

  /** The running or a waiting generation, else null. @returns {Job | null} */
  generation() {
    if (this.running?.kind === 'generation') return this.running;
    return this.waiting.find((j) => j.kind === 'generation') ?? null;
  }

  /** Why `kind` cannot be queued now ('' = it can), by rules 3 and 4. */
  refusal(kind) {
    const g = this.generation();
    if (kind === 'generation' && g) return `Request ${g.id} is ${g === this.running ? 'still generating' : 'waiting to generate'}.`;
    if (kind === 'lifecycle' && this.running?.kind === 'generation') return `Request ${this.running.id} is generating.`;
    return '';
  }

  /**
   * Queue a job (rule 6: `front` for a recovery).
   * @param {Omit<Job, 'abort'>} job
   */
  push(job, front = false) {
    const full = { ...job, abort: new AbortController() };
    if (this.stopEarly.delete(full.id)) full.abort.abort();
    if (front) this.waiting.unshift(full);
    else this.waiting.push(full);
    if (!this.running) this.next();
  }

  /** Rule 5. */
  stop(target) {
    const jobs = [this.running, ...this.waiting].filter((j) => j && j.kind === 'generation');
    const hit = jobs.find((j) => !target || j.id === target);
    if (!hit) {
      if (target) this.stopEarly.add(target);
      return;
    }
    hit.abort.abort();
    if (hit === this.running) setTimeout(() => this.release(hit), this.stopGraceMs);
  }

  /** Rule 7: let go of a running job that did not end after Stop. */
  release(job) {
    if (this.running !== job) return;
    job.released = true;
    this.onStuck(job);
    this.next();
  }

  next() {
    const job = this.waiting.shift();
    this.running = job ?? null;
    if (!job) return;
    Promise.resolve()
      .then(() => job.run(job.abort.signal, job))
      .catch((err) => job.released || this.onCrash(job, err))
      .finally(() => this.running === job && this.next());
  }
}
