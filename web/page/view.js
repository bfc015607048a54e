// The DOM side of the app. It draws what the controller tells it to and
// forwards the person's actions; it keeps no chat state of its own beyond
// what it draws (an answer's text while it streams: the controller sends each
// token's text only) and the one question it holds until the controller
// takes questions.
import { MarkdownStream, renderMarkdown } from './markdown.js';
import { bindPanels } from './panels.js';
import { formatBytes } from '../shared/units.js';

export { setConversations, setSettings, setStorage, download } from './panels.js';

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const els = {
  status: $('status'), progress: /** @type {HTMLProgressElement} */ ($('progress')), progressDetail: $('progress-detail'),
  log: $('log'), form: /** @type {HTMLFormElement} */ ($('composer')), input: /** @type {HTMLTextAreaElement} */ ($('message')),
  send: /** @type {HTMLButtonElement} */ ($('send')), stop: /** @type {HTMLButtonElement} */ ($('stop')),
  model: $('model-name'), modelDetail: $('model-detail'), error: $('error'), errorText: $('error-text'),
  diag: $('diagnostics-body'), empty: $('empty'), picker: /** @type {HTMLSelectElement} */ ($('model-picker')),
  unload: /** @type {HTMLButtonElement} */ ($('unload')), cont: /** @type {HTMLButtonElement} */ ($('continue')),
  queued: $('queued'),
};

/** @type {Map<number, HTMLElement>} */
const messages = new Map();
/** Answers being written, by message key: their text so far, drawn block by block. */
const streams = new Map();
/** Messages to draw at the next animation frame: key -> the whole text, or null for a stream's new text. */
const pending = new Map();
let frameRequested = false;

/** Tokens arrive faster than frames: draw at most once per frame. */
function schedule(key, text) {
  pending.set(key, text);
  if (!frameRequested) {
    frameRequested = true;
    requestAnimationFrame(flush);
  }
}

function flush() {
  frameRequested = false;
  const atBottom = els.log.scrollHeight - els.log.scrollTop - els.log.clientHeight < 48;
  for (const [key, text] of pending) {
    const el = messages.get(key);
    if (!el) continue;
    if (text === null) streams.get(key)?.draw();
    else draw(el, text);
  }
  pending.clear();
  if (atBottom) els.log.scrollTop = els.log.scrollHeight;
}

/** Answers are Markdown (sanitised); what the person typed stays plain text. */
function draw(el, text) {
  const body = /** @type {HTMLElement} */ (el.querySelector('.text'));
  if (el.classList.contains('assistant')) body.replaceChildren(renderMarkdown(text));
  else body.textContent = text;
}

export function setStatus(text, state) {
  els.status.textContent = text;
  els.status.dataset.state = state;
}

/** @param {number} fraction 0..1, or -1 to hide the bar */
export function setProgress(fraction, detail) {
  const on = fraction >= 0;
  els.progress.hidden = !on;
  if (on) els.progress.value = fraction;
  els.progressDetail.textContent = on ? detail : '';
}

export function addMessage(key, role, text, complete) {
  els.empty.hidden = true;
  const el = document.createElement('article');
  el.className = `msg ${role}`;
  el.dataset.key = String(key);
  el.dataset.complete = String(complete);
  const who = document.createElement('h2');
  who.className = 'who';
  who.textContent = role === 'user' ? 'You' : 'Assistant';
  const body = document.createElement('div');
  body.className = 'text';
  const note = document.createElement('p');
  note.className = 'note';
  const outside = document.createElement('p');
  outside.className = 'outside';
  outside.textContent = "Outside the model's view: too far back for its context";
  el.append(who, outside, body, note, actionsFor(role));
  if (role === 'assistant' && !complete) {
    const stream = new MarkdownStream(body, text);
    streams.set(key, stream);
    stream.draw();
  } else draw(el, text);
  els.log.append(el);
  messages.set(key, el);
  if (role === 'user') showQueued('');
  els.log.scrollTop = els.log.scrollHeight;
}

function actionsFor(role) {
  const row = document.createElement('div');
  row.className = 'actions';
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'small secondary';
  button.dataset.action = role === 'user' ? 'edit' : 'regenerate';
  button.textContent = role === 'user' ? 'Edit' : 'Regenerate';
  row.append(button);
  return row;
}

export function clearMessages() {
  messages.clear();
  streams.clear();
  pending.clear();
  els.log.querySelectorAll('.msg').forEach((el) => el.remove());
  els.empty.hidden = false;
}

/** Dim the messages before `firstKey`: the model no longer sees them. */
export function setOutOfView(firstKey) {
  for (const [key, el] of messages) el.classList.toggle('out-of-view', key < firstKey);
}

/** Turn user message `el` into an editor; saving asks the controller to answer it again. */
function startEdit(el, controller) {
  const body = el.querySelector('.text');
  const editor = document.createElement('form');
  editor.className = 'editor';
  const area = document.createElement('textarea');
  area.value = body.textContent;
  area.setAttribute('aria-label', 'Edit question');
  const save = Object.assign(document.createElement('button'), { type: 'submit', textContent: 'Save & regenerate' });
  const cancel = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Cancel', className: 'secondary' });
  editor.append(area, save, cancel);
  body.hidden = true;
  body.after(editor);
  area.focus();
  const close = () => { editor.remove(); body.hidden = false; };
  cancel.addEventListener('click', close);
  editor.addEventListener('submit', (e) => {
    e.preventDefault();
    const key = Number(el.dataset.key);
    close();
    controller.edit(key, area.value);
  });
}

/** Set a message's whole text; a complete one is drawn at once (whole), an answer still being written grows from it. */
export function updateMessage(key, text, complete, note) {
  const el = messages.get(key);
  if (!el) return;
  el.dataset.complete = String(complete);
  el.querySelector('.note').textContent = note;
  if (complete) {
    streams.delete(key);
    pending.set(key, text);
    flush();
  } else if (el.classList.contains('assistant')) {
    streams.set(key, new MarkdownStream(/** @type {HTMLElement} */ (el.querySelector('.text')), text));
    schedule(key, null);
  } else schedule(key, text);
}

/** More text of an answer being written: kept, and drawn at the next frame (its finished blocks once). */
export function appendMessage(key, text) {
  const stream = streams.get(key);
  if (!stream) return;
  stream.append(text);
  if (!pending.has(key)) schedule(key, null);
}

export function setGenerating(on) {
  els.stop.disabled = !on;
  els.send.disabled = on;
  els.picker.disabled = on;
  els.log.setAttribute('aria-busy', String(on));
  document.body.classList.toggle('generating', on);
}

export function setModel(name, detail) {
  els.model.textContent = name;
  els.modelDetail.textContent = detail;
}

/** @param {string} json the catalog entries (ModelInfo) @param {string} current loaded model id */
export function setModels(json, current) {
  const models = JSON.parse(json);
  els.picker.replaceChildren(...models.map((m) => {
    const o = document.createElement('option');
    o.value = m.model_id;
    o.textContent = `${m.name} — ${m.quantization} · ${formatBytes(m.bytes)}${m.cached ? ' · stored' : ''}`;
    return o;
  }));
  if (!current) {
    const none = document.createElement('option');
    none.value = '';
    none.textContent = 'No model loaded';
    els.picker.prepend(none);
  }
  els.picker.value = current;
  els.picker.disabled = models.length === 0;
  els.unload.disabled = !current;
}

export function setCanContinue(on) {
  els.cont.hidden = !on;
}

export function setDiagnostics(json) {
  const data = JSON.parse(json);
  const last = data.last_answer;
  const mib = (n) => (n ? formatBytes(n, { binary: true }) : 'unknown');
  const gpu = data.webgpu_vendor || data.webgpu_architecture || data.webgpu_adapter
    ? [data.webgpu_vendor, data.webgpu_architecture].filter(Boolean).join(' · ') || data.webgpu_adapter
    : `none${data.webgpu_description ? ` (${data.webgpu_description})` : ''}`;
  const hasGpu = !gpu.startsWith('none');
  const test = data.self_test_result;
  const rows = [
    ['Backend', data.backend], ['Why', data.backend_reason],
    ...(data.gpu_layers ? [['Layers on the GPU', data.gpu_layers]] : []),
    ...(data.weight_buffers ? [['Weights in memory', data.weight_buffers]] : []),
    ['Threads', `${data.threads} (of ${data.hardware_concurrency} cores)`],
    ['Cross-origin isolated', data.cross_origin_isolated],
    ['WebGPU adapter', gpu],
    ...(hasGpu ? [
      ['Fallback (software) adapter', data.webgpu_fallback],
      ['shader-f16', data.shader_f16], ['subgroups', data.subgroups],
      ['Max buffer size', mib(data.max_buffer_size)], ['Max storage binding', mib(data.max_storage_buffer_binding_size)],
    ] : []),
    ['JSPI', data.jspi], ['Memory64', data.memory64], ['Compat build', data.compat],
    ['Device memory', data.device_memory_gb ? `${data.device_memory_gb} GB` : 'not reported'],
    ['Browser', data.browser], ['Platform', data.platform], ['llama.cpp', data.libllama_version],
    ['Engine', data.engine || undefined],
    ['KV cache', data.kv_cache || undefined],
    ...(data.self_test ? [['GPU self-test', data.self_test]] : []),
    ...(test && !test.error ? [['Self-test tokens', `GPU “${test.gpu_text}” · CPU “${test.cpu_text}”`]] : []),
    ...((data.fallbacks || []).length ? [['Fallbacks', data.fallbacks.join('; ')]] : []),
    ...(last ? [['Last answer', `${last.decode_tps.toFixed(1)} tok/s decode · ${last.prefill_tps.toFixed(1)} tok/s prefill · first token ${Math.round(last.ttft_ms)} ms · ${last.backend}`]] : []),
  ].filter(([, v]) => v !== undefined && v !== '');
  els.diag.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v);
    return [dt, dd];
  }));
}

export function showError(message, hint) {
  els.errorText.textContent = hint ? `${message} ${hint}` : message;
  els.error.dataset.kind = 'error';
  els.error.hidden = false;
}

/** Something the person should know that is not an error (same place, calmer look). */
export function showNotice(text) {
  els.errorText.textContent = text;
  els.error.dataset.kind = 'info';
  els.error.hidden = false;
}

/** Show (or, with '', hide) a question that waits for the model. */
function showQueued(text) {
  els.queued.hidden = !text;
  els.queued.textContent = text ? `Waiting to send: “${text.length > 80 ? `${text.slice(0, 80)}…` : text}” — it goes as soon as the model is ready.` : '';
}

/** @type {null | ((text: string) => boolean)} the controller's submit, once Python is up */
let submit = null;
/** Whether the controller takes questions now (a model is loaded); it says so with setAccepting. */
let accepting = false;
/**
 * The one queue of early questions: one typed before Python is up, or while no
 * model is ready, waits here (and on screen) until the controller takes questions.
 */
let held = '';

function send() {
  const text = els.input.value;
  if (!text.trim()) return;
  els.error.hidden = true;
  if (!submit || !accepting) {
    held = text.trim();
    els.input.value = '';
    showQueued(held);
  } else if (submit(text)) els.input.value = '';
  els.input.focus();
}

/** Send the held question, if the controller takes it now (else drop it: it was refused). */
function sendHeld() {
  if (!held || !submit || !accepting) return;
  const text = held;
  held = '';
  if (!submit(text)) showQueued('');
}

/** The controller takes questions now (a model is ready), or no longer (loading, none loaded). */
export function setAccepting(on) {
  accepting = on;
  // After the controller's current call has returned: it is in the middle of a frame.
  if (on && held) queueMicrotask(sendHeld);
}

/** Ask the browser to keep this site's data (the weights) under storage pressure; only a page can ask. */
export function persistStorage() {
  navigator.storage?.persist?.().catch(() => {});
}

els.form.addEventListener('submit', (e) => { e.preventDefault(); send(); });
els.input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
});
// Copy buttons on code blocks (made by markdown.js), one listener for all.
els.log.addEventListener('click', (e) => {
  const button = /** @type {HTMLElement} */ (e.target).closest?.('button.copy');
  const code = button?.closest('.code')?.querySelector('pre');
  if (!button || !code) return;
  navigator.clipboard.writeText(code.textContent ?? '').then(
    () => { button.textContent = 'Copied'; },
    () => { button.textContent = 'Copy failed'; },
  ).finally(() => setTimeout(() => { button.textContent = 'Copy'; }, 1500));
});
$('error-close').addEventListener('click', () => { els.error.hidden = true; });

/**
 * Wire the person's actions to the controller (a Pyodide proxy of offgrid.controller.Controller).
 * @param {{submit: (text: string) => boolean, stop: () => void, switch_model: (id: string) => void,
 *   unload: () => void, continue_answer: () => boolean}} controller
 */
export function bind(controller) {
  submit = (text) => controller.submit(text);
  els.stop.addEventListener('click', () => controller.stop());
  els.picker.addEventListener('change', () => { if (els.picker.value) controller.switch_model(els.picker.value); });
  els.unload.addEventListener('click', () => controller.unload());
  els.cont.addEventListener('click', () => controller.continue_answer());
  els.log.addEventListener('click', (e) => {
    const button = /** @type {HTMLElement} */ (e.target).closest('button[data-action]');
    if (!button) return;
    if (button.dataset.action === 'regenerate') controller.regenerate();
    else startEdit(button.closest('.msg'), controller);
  });
  bindPanels(controller);
  sendHeld();
}
