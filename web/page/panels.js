// The side panels: the conversation list (new, open, rename, delete, export)
// and the settings form. Drawing and forwarding only; the controller decides.
import { BACKENDS, fieldDefault, fieldRange } from '../shared/protocol.js';

const $ = (id) => /** @type {any} */ (document.getElementById(id));
const list = $('conversations');
const settingsForm = $('settings');

/** @param {string} json [{id, title, updated, turns}] newest first @param {string} current */
export function setConversations(json, current) {
  const items = JSON.parse(json);
  list.replaceChildren(...items.map((c) => {
    const li = document.createElement('li');
    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'conv';
    open.dataset.id = c.id;
    open.textContent = c.title;
    if (c.id === current) open.setAttribute('aria-current', 'true');
    li.append(open);
    return li;
  }));
  list.dataset.current = current;
}

const SAMPLING = ['temperature', 'top_k', 'top_p', 'min_p', 'repeat_penalty', 'max_tokens', 'seed'];

// The settings' ranges and the backends come from the protocol (py/offgrid/protocol.py), not from index.html.
const BACKEND_LABELS = {
  auto: 'Automatic (best this device runs)',
  webgpu: 'WebGPU (GPU)',
  'wasm-mt': 'WASM, multi-thread (CPU)',
  'wasm-st': 'WASM, single thread (CPU)',
};
for (const name of SAMPLING) Object.assign(settingsForm.elements[name], fieldRange('Sampling', name));
Object.assign(settingsForm.elements.n_ctx, fieldRange('LoadModel', 'n_ctx'));
settingsForm.elements.backend.replaceChildren(...BACKENDS.map((name) => new Option(BACKEND_LABELS[name] ?? name, name)));

/** @param {string} json {system_prompt, sampling: {...}, n_ctx, backend} */
export function setSettings(json) {
  const s = JSON.parse(json);
  settingsForm.elements.system_prompt.value = s.system_prompt;
  settingsForm.elements.n_ctx.value = s.n_ctx;
  settingsForm.elements.backend.value = s.backend ?? fieldDefault('LoadModel', 'backend');
  for (const name of SAMPLING) settingsForm.elements[name].value = s.sampling[name];
}

function readSettings() {
  const el = settingsForm.elements;
  const sampling = Object.fromEntries(SAMPLING.map((name) => [name, Number(el[name].value)]));
  return JSON.stringify({ system_prompt: el.system_prompt.value, n_ctx: Number(el.n_ctx.value), backend: el.backend.value, sampling });
}

/** @param {string} json {models: [{model_id, name, version, size, state, loaded}], summary} */
export function setStorage(json) {
  const data = JSON.parse(json);
  $('storage-summary').textContent = data.summary;
  const rows = data.models.map((m) => {
    const li = document.createElement('li');
    const text = document.createElement('span');
    text.textContent = `${m.name}${m.version ? ` v${m.version}` : ''} · ${m.size} · ${m.state}${m.loaded ? ' · in use' : ''}`;
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'small secondary';
    del.dataset.delete = m.model_id;
    del.dataset.name = m.name;
    del.textContent = 'Delete';
    del.setAttribute('aria-label', `Delete ${m.name}`);
    li.append(text, del);
    return li;
  });
  if (!rows.length) {
    const li = document.createElement('li');
    li.textContent = 'No model is stored on this device.';
    rows.push(li);
  }
  $('stored-models').replaceChildren(...rows);
}

/** Save `text` as a file the person downloads. */
export function download(filename, mime, text) {
  const url = URL.createObjectURL(new Blob([text], { type: mime }));
  const a = Object.assign(document.createElement('a'), { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** @param {any} controller the Python Controller (a Pyodide proxy) */
export function bindPanels(controller) {
  const drawer = $('drawer');
  const toggle = $('drawer-toggle');
  const setOpen = (open) => { drawer.dataset.open = String(open); toggle.setAttribute('aria-expanded', String(open)); };
  toggle.addEventListener('click', () => setOpen(drawer.dataset.open !== 'true'));
  $('drawer-close').addEventListener('click', () => { setOpen(false); toggle.focus(); });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && drawer.dataset.open === 'true') { setOpen(false); toggle.focus(); }
  });
  list.addEventListener('click', (e) => {
    const b = e.target.closest('button.conv');
    if (b) { controller.select_conversation(b.dataset.id); setOpen(false); }
  });
  $('new-chat').addEventListener('click', () => { controller.new_conversation(); setOpen(false); $('message').focus(); });
  $('rename-chat').addEventListener('click', () => {
    const current = list.querySelector('[aria-current]');
    const title = prompt('New name for this conversation', current?.textContent ?? '');
    if (title) controller.rename_conversation(list.dataset.current, title);
  });
  $('delete-chat').addEventListener('click', () => {
    if (confirm('Delete this conversation? This cannot be undone.')) controller.delete_conversation(list.dataset.current);
  });
  $('export-md').addEventListener('click', () => controller.export_conversation('md'));
  $('export-json').addEventListener('click', () => controller.export_conversation('json'));
  const storage = $('storage-panel');
  storage.addEventListener('toggle', () => { if (storage.open) controller.show_storage(); });
  $('stored-models').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-delete]');
    if (b && confirm(`Delete ${b.dataset.name} from this device? It will be downloaded again when you use it.`)) {
      controller.delete_model(b.dataset.delete);
    }
  });
  $('self-test').addEventListener('click', () => controller.run_self_test());
  settingsForm.addEventListener('submit', (e) => {
    e.preventDefault();
    controller.update_settings(readSettings());
  });
}
