// Text generation on a loaded wllama instance: Chat, Complete, Continue,
// ChatBatch (concurrent, one slot each, at most SLOTS at a time) and
// CountTokens. Each job streams Delta frames and ends with exactly one
// GenerateEnd, whatever happens.
import { T } from '../shared/protocol.js';
import { SLOTS, recover, restart } from './fallback.js';
import { install } from './loading.js';

/**
 * Text as llama.cpp can take it: a lone UTF-16 surrogate (half an emoji, say) becomes U+FFFD.
 * wllama encodes strings for its glue by length, and a lone surrogate broke the glue's framing.
 * @param {string} s
 */
export function wellFormed(s) {
  return typeof s.toWellFormed === 'function' ? s.toWellFormed() : s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}
const cleanMessages = (messages) => messages.map((m) => ({ ...m, content: wellFormed(m.content) }));

/** Sampling from the protocol, in llama.cpp server's names. */
function samplingParams(s) {
  return {
    temperature: s.temperature, top_k: s.top_k, top_p: s.top_p, min_p: s.min_p,
    penalty_repeat: s.repeat_penalty, max_tokens: s.max_tokens, stop: s.stop,
    ...(s.seed >= 0 ? { seed: s.seed } : {}),
  };
}

/** The jobs of a request: one per prompt (ChatBatch) or a single one. */
function jobsOf(req) {
  if (req.type === T.ChatBatch) return req.prompts.map((messages, index) => ({ index, messages: cleanMessages(messages) }));
  if (req.type === T.Complete) return [{ index: 0, prompt: wellFormed(req.prompt) }];
  // Chat, and Continue: llama.cpp's server continues a final assistant message (prefill).
  return [{ index: 0, messages: cleanMessages(req.messages) }];
}

/**
 * Stream one job; posts Delta, GenerateEnd and Speed for it.
 * @param {import('../../vendor/wllama/index.js').Wllama} w
 */
async function runJob(w, id, job, req, signal, post, backend) {
  const t0 = performance.now();
  let ttft = 0;
  let text = '';
  let nTokens = 0;
  let last = null;
  let reason = 'stop';
  const onData = (chunk) => {
    last = chunk;
    const choice = chunk.choices?.[0];
    const piece = job.messages ? choice?.delta?.content : choice?.text;
    if (!piece) return;
    if (!ttft) ttft = performance.now() - t0;
    nTokens += 1;
    text += piece;
    post(T.Delta, { text: piece, n_tokens: nTokens, index: job.index }, id);
  };
  const params = { ...samplingParams(req.sampling), stream: true, onData, abortSignal: signal, cache_prompt: true };
  try {
    if (job.messages) await w.createChatCompletion({ ...params, messages: job.messages });
    else await w.createCompletion({ ...params, prompt: job.prompt });
    reason = last?.choices?.[0]?.finish_reason === 'length' ? 'length' : 'stop';
  } catch (err) {
    // Only our signal aborts a generation (each engine build has its own WllamaAbortError class).
    if (signal.aborted) reason = 'aborted';
    else {
      reason = 'error';
      post(T.EngineError, { code: 'inference_failed', message: `Generation failed: ${err?.message ?? err}`, hint: 'Try again; if it persists, reload the model.' }, id);
    }
  }
  const t = last?.timings;
  const usage = last?.usage;
  // Speed first: GenerateEnd is the last frame of a job.
  if (t) post(T.Speed, { prefill_tps: t.prompt_per_second || 0, decode_tps: t.predicted_per_second || 0, ttft_ms: ttft, backend }, id);
  post(T.GenerateEnd, {
    reason, text, index: job.index,
    prompt_tokens: usage?.prompt_tokens ?? (t ? t.prompt_n + t.cache_n : 0),
    completion_tokens: usage?.completion_tokens ?? t?.predicted_n ?? nTokens,
    cached_tokens: t?.cache_n ?? 0,
  }, id);
}

/** Run a Chat, Complete, Continue or ChatBatch request to the end. */
async function generate(w, id, req, signal, post, backend) {
  post(T.GenerateStart, {}, id);
  if (signal.aborted) { // stopped while it waited: end each job without touching the engine
    for (const job of jobsOf(req)) post(T.GenerateEnd, { reason: 'aborted', text: '', index: job.index }, id);
    return;
  }
  // llama.cpp's server has SLOTS slots; a request beyond them would wait for one forever.
  const jobs = jobsOf(req);
  const lane = async () => {
    for (let job = jobs.shift(); job; job = jobs.shift()) await runJob(w, id, job, req, signal, post, backend);
  };
  await Promise.all(Array.from({ length: Math.min(SLOTS, jobs.length) }, lane));
}

/**
 * Exact token count from llama.cpp's own prompt evaluation: of `text` as a raw
 * prompt, or of the chat prompt the model's template makes of `messages`
 * (then the evaluated prefix stays cached for the Chat that follows).
 * Streamed, with one token generated: wllama 3.8.1's glue fails when a
 * non-streamed result ends inside a multi-byte character (an emoji, say).
 */
async function countTokens(w, req, signal) {
  let last = null;
  const params = { max_tokens: 1, temperature: 0, stream: true, onData: (c) => { last = c; }, abortSignal: signal };
  if (req.messages.length) await w.createChatCompletion({ ...params, messages: cleanMessages(req.messages), cache_prompt: true });
  else await w.createCompletion({ ...params, prompt: wellFormed(req.text), cache_prompt: false });
  const t = last?.timings;
  return { n_tokens: last?.usage?.prompt_tokens ?? (t ? t.prompt_n + t.cache_n : 0), cached_tokens: t?.cache_n ?? 0 };
}

/**
 * Run one generation job (Chat, Complete, Continue, ChatBatch, CountTokens) on the loaded
 * engine. A failure of the engine while it runs on the GPU (a lost device, out of memory)
 * queues a recovery on the next backend, ahead of everything else.
 * @param {import('./handler.js').Context} ctx
 */
export async function runGeneration(ctx, msg, signal, job = {}) {
  const { state } = ctx;
  const { id } = msg;
  // What this job has posted, for the watchdog (endStuck); nothing once it let go of the job.
  Object.assign(job, { msg, started: false, ended: new Set(), texts: [] });
  const post = (type, fields = {}, rid = '') => {
    if (job.released) return;
    if (type === T.GenerateStart) job.started = true;
    if (type === T.Delta) job.texts[fields.index] = (job.texts[fields.index] ?? '') + fields.text;
    if (type === T.GenerateEnd) job.ended.add(fields.index);
    ctx.post(type, fields, rid);
  };
  const fail = (rid, code, message, hint = '', field = '') => post(T.EngineError, { code, message, hint, field }, rid);
  if (!state.current) return fail(id, 'no_model', 'No model is loaded.', 'Send LoadModel first.');
  const w = state.current.engine;
  const backend = state.choice?.backend ?? '';
  let failure = '';
  const watch = (type, fields = {}, rid = '') => {
    if (type === T.EngineError && fields.code === 'inference_failed') {
      failure = fields.message;
      if (backend === 'webgpu') fields = { ...fields, hint: 'The GPU failed; Offgrid moves the model to the CPU. Regenerate to try again.' };
    }
    post(type, fields, rid);
  };
  try {
    if (msg.type !== T.CountTokens) await generate(w, id, msg, signal, watch, backend);
    else if (signal.aborted) fail(id, 'aborted', 'Stopped before the tokens were counted.');
    else post(T.TokenCount, await countTokens(w, msg, signal), id);
  } catch (err) {
    if (msg.type === T.CountTokens && signal.aborted) return fail(id, 'aborted', 'Stopped while the tokens were counted.');
    failure = String(err?.message ?? err);
    fail(id, 'inference_failed', `The engine failed: ${failure}`, backend === 'webgpu' ? 'The GPU failed; Offgrid moves the model to the CPU.' : 'Try again; if it persists, reload the model.');
  }
  if (failure && backend === 'webgpu' && !job.released) {
    ctx.queue.push({ id, kind: 'lifecycle', type: 'Recover', run: () => recover(ctx, id, 'webgpu', failure, install) }, true);
  }
}

/**
 * The watchdog let go of a job that did not end after Stop (job_queue.js rule 7): end it as
 * the protocol promises (an error, then a GenerateEnd for each prompt still open, with what
 * was written), and restart the engine before anything else runs.
 */
export function endStuck(ctx, job) {
  const seconds = Math.round(ctx.queue.stopGraceMs / 1000);
  const message = `The engine did not stop within ${seconds} s of Stop; Offgrid restarts it.`;
  if (!job.started) ctx.fail(job.id, job.type === T.CountTokens ? 'aborted' : 'inference_failed', message, 'Ask again once the model is ready.');
  else {
    ctx.fail(job.id, 'inference_failed', message, 'Ask again once the model is ready.');
    const n = job.msg?.type === T.ChatBatch ? job.msg.prompts.length : 1;
    for (let index = 0; index < n; index += 1) {
      if (!job.ended.has(index)) ctx.post(T.GenerateEnd, { reason: 'aborted', text: job.texts[index] ?? '', index }, job.id);
    }
  }
  ctx.queue.push({ id: job.id, kind: 'lifecycle', type: 'Restart', run: () => restart(ctx, job.id, 'it did not stop after Stop', install) }, true);
}
