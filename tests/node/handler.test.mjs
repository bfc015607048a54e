// The engine handler driven with a fake engine: the job queue's rules
// (web/engine/job_queue.js), refusals, Stop, crashes, fallback and the
// warm-up. Run by `python3 build.py test` (tests/test_node.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHandler } from '../../web/engine/handler.js';
import { MODEL, OTHER, fakeParts, gate, request, until } from './fake_parts.mjs';

const of = (frames, id) => frames.filter((f) => f.id === id);
const types = (frames, id) => of(frames, id).map((f) => f.type);
const CHAT = { messages: [{ role: 'user', content: 'Hi' }] };

/** A handler with a loaded model (the warm-up and a LoadModel done). */
async function loaded(options = {}) {
  const fake = fakeParts(options);
  const h = createHandler(fake.parts);
  await h.start();
  const load = request('LoadModel', { model_id: MODEL.id });
  h.receive(load);
  await until(fake.frames, (fs) => of(fs, load.id).some((f) => f.type === 'Diagnostics'), 'the LoadModel');
  return { ...fake, h };
}

test('the warm-up loads the default model quietly; the LoadModel that follows joins it', async () => {
  const { parts, frames, engines } = fakeParts();
  const h = createHandler(parts);
  await h.start();
  assert.equal(frames[0].type, 'Hello');
  assert.equal(frames[0].engine, 'fake 0.0.0');
  const load = request('LoadModel', { model_id: MODEL.id });
  h.receive(load);
  await until(frames, (fs) => of(fs, load.id).some((f) => f.type === 'ModelLoaded'), 'ModelLoaded');
  assert.equal(engines.length, 1, 'one engine: the LoadModel reused the warm-up');
  assert.deepEqual(of(frames, '').map((f) => f.type).filter((t) => t !== 'Hello'), ['LoadProgress', 'LoadProgress', 'LoadProgress'], 'the warm-up posts progress only');
  assert.equal(of(frames, load.id).find((f) => f.type === 'ModelLoaded').load_ms, 0);
});

test('a generation before any model is loaded is refused no_model', async () => {
  const { parts, frames } = fakeParts();
  const h = createHandler(parts); // not started: no warm-up
  const chat = request('Chat', CHAT);
  h.receive(chat);
  await until(frames, (fs) => of(fs, chat.id).length > 0, 'an answer');
  assert.equal(of(frames, chat.id)[0].code, 'no_model');
});

test('a second generation while one runs is busy, naming the first; so is a LoadModel', async () => {
  const hold = gate();
  const { h, frames } = await loaded({ script: { hold } });
  const first = request('Chat', CHAT);
  h.receive(first);
  await until(frames, (fs) => types(fs, first.id).includes('GenerateStart'), 'the first to start');
  const second = request('Complete', { prompt: 'x' });
  const load = request('LoadModel', { model_id: OTHER.id });
  h.receive(second);
  h.receive(load);
  await until(frames, (fs) => of(fs, load.id).length > 0, 'refusals');
  assert.equal(of(frames, second.id)[0].code, 'busy');
  assert.match(of(frames, second.id)[0].message, new RegExp(first.id));
  assert.equal(of(frames, load.id)[0].code, 'busy');
  hold.open();
  await until(frames, (fs) => types(fs, first.id).includes('GenerateEnd'), 'the first to end');
  assert.equal(of(frames, first.id).find((f) => f.type === 'GenerateEnd').reason, 'stop');
});

test('Stop before a generation starts ends it as aborted without touching the engine', async () => {
  const { parts, frames, engines } = fakeParts();
  const h = createHandler(parts);
  await h.start(); // the warm-up is queued: the Chat waits behind it
  const chat = request('Chat', CHAT);
  h.receive(chat);
  h.receive(request('Stop', { target: chat.id }));
  await until(frames, (fs) => types(fs, chat.id).includes('GenerateEnd'), 'GenerateEnd');
  assert.deepEqual(types(frames, chat.id), ['GenerateStart', 'GenerateEnd']);
  assert.equal(of(frames, chat.id)[1].reason, 'aborted');
  assert.equal(engines[0].calls.length, 0, 'the engine never saw the stopped Chat');
});

test('Stop reaches a CountTokens that is still counting', async () => {
  const hold = gate();
  const { h, frames, engines } = await loaded({ script: { hold } });
  const count = request('CountTokens', { text: 'a long prompt' });
  h.receive(count);
  await until(frames, () => engines[0].calls.length === 1, 'the count to start');
  assert.ok(engines[0].calls[0].abortSignal, 'the count runs with the job\'s signal');
  h.receive(request('Stop', {}));
  hold.open();
  await until(frames, (fs) => of(fs, count.id).length > 0, 'the count to end');
  assert.equal(of(frames, count.id)[0].type, 'EngineError');
  assert.equal(of(frames, count.id)[0].code, 'aborted');
  const after = request('CountTokens', { text: 'again' });
  h.receive(after);
  await until(frames, (fs) => of(fs, after.id).length > 0, 'the next count');
  assert.equal(of(frames, after.id)[0].type, 'TokenCount', 'the engine is free again');
});

test('Stop while streaming keeps what was written', async () => {
  const { h, frames } = await loaded({ script: { tokens: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'] } });
  const chat = request('Chat', CHAT);
  h.receive(chat);
  await until(frames, (fs) => of(fs, chat.id).filter((f) => f.type === 'Delta').length >= 2, 'two tokens');
  h.receive(request('Stop', { target: chat.id }));
  await until(frames, (fs) => types(fs, chat.id).includes('GenerateEnd'), 'GenerateEnd');
  const end = of(frames, chat.id).find((f) => f.type === 'GenerateEnd');
  assert.equal(end.reason, 'aborted');
  assert.ok(end.text.startsWith('ab') && end.text.length < 8, end.text);
});

test('a LoadModel sent while a Chat waits runs after that Chat, on the model it was asked of', async () => {
  const { parts, frames, engines } = fakeParts();
  const h = createHandler(parts);
  await h.start(); // the warm-up runs first
  const chat = request('Chat', CHAT);
  const load = request('LoadModel', { model_id: OTHER.id });
  h.receive(chat);
  h.receive(load);
  await until(frames, (fs) => types(fs, load.id).includes('ModelLoaded'), 'the LoadModel');
  const order = frames.filter((f) => f.id === chat.id || f.id === load.id).map((f) => `${f.id === chat.id ? 'chat' : 'load'}:${f.type}`);
  assert.ok(order.indexOf('chat:GenerateEnd') < order.indexOf('load:ModelUnloaded'), order.join(' '));
  assert.equal(engines[0].calls.length, 1, 'the Chat ran on the warm-up model');
  assert.equal(engines[0].exited, true);
  assert.equal(of(frames, load.id).find((f) => f.type === 'ModelLoaded').model_id, OTHER.id);
});

test('an engine that crashes mid-answer ends it with an error and a GenerateEnd, and stays usable', async () => {
  const { h, frames } = await loaded({ script: { tokens: ['a', 'b', 'c'], crashAfter: 1 } });
  const chat = request('Chat', CHAT);
  h.receive(chat);
  await until(frames, (fs) => types(fs, chat.id).includes('GenerateEnd'), 'GenerateEnd');
  const got = of(frames, chat.id);
  assert.deepEqual(got.map((f) => f.type), ['GenerateStart', 'Delta', 'EngineError', 'GenerateEnd']);
  assert.equal(got[2].code, 'inference_failed');
  assert.match(got[2].message, /memory access out of bounds/);
  assert.equal(got[3].reason, 'error');
  assert.equal(got[3].text, 'a');
  const next = request('ListModels');
  h.receive(next);
  await until(frames, (fs) => types(fs, next.id).includes('ModelList'), 'ModelList');
});

test('each prompt of a ChatBatch ends with its own GenerateEnd', async () => {
  const { h, frames } = await loaded();
  const batch = request('ChatBatch', { prompts: Array.from({ length: 6 }, (_, i) => [{ role: 'user', content: `q${i}` }]) });
  h.receive(batch);
  await until(frames, (fs) => of(fs, batch.id).filter((f) => f.type === 'GenerateEnd').length === 6, 'six ends');
  const ends = of(frames, batch.id).filter((f) => f.type === 'GenerateEnd').map((f) => f.index).sort();
  assert.deepEqual(ends, [0, 1, 2, 3, 4, 5]);
});

test('WebGPU that loads nothing onto the GPU falls back to WASM, and says why', async () => {
  const { h, frames, engines } = await loaded({ gpu: true, gpuBroken: true });
  const fallback = frames.find((f) => f.type === 'BackendFallback');
  assert.ok(fallback, 'a BackendFallback event');
  assert.equal(fallback.from_backend, 'webgpu');
  assert.equal(fallback.to_backend, 'wasm-mt');
  assert.match(fallback.reason, /offloaded only 0\/31 layers/);
  assert.equal(engines[0].exited, true, 'the engine that failed on the GPU was stopped');
  const diag = request('GetDiagnostics');
  h.receive(diag);
  await until(frames, (fs) => types(fs, diag.id).includes('Diagnostics'), 'Diagnostics');
  const d = of(frames, diag.id)[0];
  assert.equal(d.backend, 'wasm-mt');
  assert.equal(d.fallbacks.length, 1);
  assert.equal(d.weight_buffers, 'CPU 92 MiB');
});

test('a GPU failure during an answer moves the model to the CPU before anything else runs', async () => {
  const { h, frames, engines } = await loaded({ gpu: true, script: { tokens: ['a', 'b'], crashAfter: 1 } });
  assert.equal(engines.length, 2, 'the GPU engine and the self-test\'s CPU engine');
  assert.equal(frames.find((f) => f.type === 'ModelLoaded').backend, 'webgpu');
  const chat = request('Chat', CHAT);
  h.receive(chat);
  await until(frames, (fs) => types(fs, chat.id).includes('GenerateEnd'), 'GenerateEnd');
  const count = request('CountTokens', { text: 'x' }); // queued behind the recovery
  h.receive(count);
  await until(frames, (fs) => of(fs, count.id).length > 0, 'the count');
  const after = frames.slice(frames.findIndex((f) => f.type === 'GenerateEnd' && f.id === chat.id));
  assert.ok(after.findIndex((f) => f.type === 'ModelLoaded') < after.findIndex((f) => f.id === count.id), 'the recovery ran first');
  assert.equal(after.find((f) => f.type === 'BackendFallback').to_backend, 'wasm-mt');
  assert.equal(after.find((f) => f.type === 'ModelLoaded').backend, 'wasm-mt');
});

test('malformed frames are refused with the field named, and the handler goes on', async () => {
  const { h, frames } = await loaded();
  h.receive('{not json');
  h.receive({ type: 'Chat', id: 'm1', v: 1, messages: 'hello' });
  h.receive({ type: 'ModelLoaded', id: 'm2', v: 1 });
  await until(frames, (fs) => fs.filter((f) => f.type === 'EngineError').length >= 3, 'three refusals');
  const errors = frames.filter((f) => f.type === 'EngineError');
  assert.equal(errors[0].code, 'bad_message');
  assert.equal(errors.find((f) => f.id === 'm1').field, 'messages');
  assert.equal(errors.find((f) => f.id === 'm2').code, 'bad_message');
});

test('a ChatBatch larger than the engine\'s slots runs them in turn and ends every prompt (issue 23)', async () => {
  const { h, frames, engines } = await loaded();
  const batch = request('ChatBatch', { prompts: Array.from({ length: 9 }, (_, i) => [{ role: 'user', content: `q${i}` }]) });
  h.receive(batch);
  await until(frames, (fs) => of(fs, batch.id).filter((f) => f.type === 'GenerateEnd').length === 9, 'nine ends');
  assert.ok(engines[0].maxActive <= 4, `at most 4 at once, saw ${engines[0].maxActive}`);
  const next = request('Complete', { prompt: 'x' });
  h.receive(next);
  await until(frames, (fs) => types(fs, next.id).includes('GenerateEnd'), 'the next request');
});

test('a lone UTF-16 surrogate reaches the engine as U+FFFD and the answer ends normally (issue 23)', async () => {
  const { h, frames, engines } = await loaded();
  const chat = request('Chat', { messages: [{ role: 'user', content: 'half an emoji: \ud83d!' }] });
  h.receive(chat);
  await until(frames, (fs) => types(fs, chat.id).includes('GenerateEnd'), 'GenerateEnd');
  assert.equal(of(frames, chat.id).find((f) => f.type === 'GenerateEnd').reason, 'stop');
  assert.equal(engines[0].calls.at(-1).messages[0].content, 'half an emoji: \ufffd!');
  const count = request('CountTokens', { text: '\udc00 alone' });
  h.receive(count);
  await until(frames, (fs) => of(fs, count.id).length > 0, 'TokenCount');
  assert.equal(of(frames, count.id)[0].type, 'TokenCount');
});

test('LoadModel of a URL that is not a GGUF file is refused and the loaded model stays (issue 23)', async () => {
  const { h, frames, engines } = await loaded();
  const bad = request('LoadModel', { url: '/index.html' });
  h.receive(bad);
  await until(frames, (fs) => of(fs, bad.id).length > 0, 'the refusal');
  assert.deepEqual(types(frames, bad.id), ['EngineError']);
  assert.equal(of(frames, bad.id)[0].code, 'bad_field');
  assert.equal(of(frames, bad.id)[0].field, 'url');
  assert.equal(engines[0].exited, false, 'the working model was not unloaded');
  const inspect = request('InspectModel');
  h.receive(inspect);
  await until(frames, (fs) => of(fs, inspect.id).length > 0, 'InspectModel');
  assert.equal(of(frames, inspect.id)[0].model_id, MODEL.id);
  const good = request('LoadModel', { url: '/models/mine.gguf' });
  h.receive(good);
  await until(frames, (fs) => types(fs, good.id).includes('ModelLoaded'), 'the GGUF URL to load');
  assert.equal(of(frames, good.id).find((f) => f.type === 'ModelLoaded').model_id, '/models/mine.gguf');
});

test('a 1 MB unknown type name is not echoed back whole (issue 23)', async () => {
  const { parts, frames } = fakeParts();
  const h = createHandler(parts);
  h.receive({ type: 'X'.repeat(1_000_000), id: 'big', v: 1 });
  await until(frames, (fs) => of(fs, 'big').length > 0, 'the refusal');
  const [err] = of(frames, 'big');
  assert.equal(err.code, 'bad_message');
  assert.ok(JSON.stringify(err).length < 400, `${JSON.stringify(err).length} characters`);
});

test('the warm-up loads the model last asked for, and nothing when it was deleted (issue 23)', async () => {
  // An earlier visit asked for OTHER with a 1024-token context, and it is stored.
  const other = { model_id: OTHER.id, n_ctx: 1024 };
  let fake = fakeParts({ lastLoad: other });
  await fake.parts.weights.ensureStored(OTHER, () => {});
  let h = createHandler(fake.parts);
  await h.start();
  const load = request('LoadModel', other);
  h.receive(load);
  await until(fake.frames, (fs) => types(fs, load.id).includes('ModelLoaded'), 'ModelLoaded');
  assert.equal(fake.engines.length, 1, 'one load: the warm-up was the one asked for');
  assert.equal(fake.engines[0].options.n_ctx, 1024);
  assert.equal(await fake.parts.weights.isCached(MODEL), false, 'the default was not downloaded');

  // The person deleted the model they last used: nothing is warmed up (or downloaded).
  fake = fakeParts({ lastLoad: other });
  h = createHandler(fake.parts);
  await h.start();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(fake.engines.length, 0);
  assert.deepEqual(fake.frames.map((f) => f.type), ['Hello']);

  // A LoadModel the page asks for is what the next visit warms up.
  const asked = request('LoadModel', { model_id: MODEL.id, n_ctx: 512 });
  h.receive(asked);
  await until(fake.frames, (fs) => types(fs, asked.id).includes('ModelLoaded'), 'ModelLoaded');
  assert.equal((await fake.parts.loads.last()).n_ctx, 512);
  assert.equal((await fake.parts.loads.last()).model_id, MODEL.id);
  assert.equal('id' in (await fake.parts.loads.last()), false);
});

test('an engine that hangs and ignores Stop is let go, the answer ended and the engine restarted (issue 23)', async () => {
  const { h, frames, engines } = await loaded({ hangFirst: true, script: { tokens: ['a', 'b', 'c'] } });
  const chat = request('Chat', CHAT);
  h.receive(chat);
  await until(frames, (fs) => types(fs, chat.id).includes('Delta'), 'the first token');
  const busy = request('Complete', { prompt: 'x' });
  h.receive(busy);
  await until(frames, (fs) => of(fs, busy.id).length > 0, 'busy');
  assert.equal(of(frames, busy.id)[0].code, 'busy');
  h.receive(request('Stop', { target: chat.id }));
  await until(frames, (fs) => types(fs, chat.id).includes('ModelLoaded'), 'the restart', 3000);
  const got = of(frames, chat.id);
  const end = got.find((f) => f.type === 'GenerateEnd');
  assert.deepEqual([end.reason, end.text], ['aborted', 'a']);
  assert.equal(got.filter((f) => f.type === 'GenerateEnd').length, 1, 'exactly one GenerateEnd');
  assert.match(got.find((f) => f.type === 'EngineError').message, /did not stop within/);
  assert.equal(engines.length, 2, 'a new engine');
  assert.equal(engines[0].exited, true);
  const after = request('Complete', { prompt: 'x' });
  h.receive(after);
  await until(frames, (fs) => types(fs, after.id).includes('GenerateEnd'), 'an answer from the new engine');
  assert.equal(of(frames, after.id).find((f) => f.type === 'GenerateEnd').reason, 'stop');
});
