// Conversations and app settings in IndexedDB. The Python controller decides
// what to store (JSON text); this only keeps it. Writes are queued by
// IndexedDB in order, so a later save always wins.
import { openDB } from '../../vendor/idb/index.js';

const DB_NAME = 'offgrid-chats';
const SETTINGS_KEY = 'app';

const db = openDB(DB_NAME, 1, {
  upgrade(d) {
    d.createObjectStore('conversations'); // id -> JSON text
    d.createObjectStore('settings'); // 'app' -> JSON text
  },
});

/** Everything stored, as the JSON the controller starts from. */
export async function loadAll() {
  const d = await db;
  const conversations = (await d.getAll('conversations')).map((text) => JSON.parse(text));
  const settings = JSON.parse((await d.get('settings', SETTINGS_KEY)) ?? '{}');
  return JSON.stringify({ conversations, settings });
}

const report = (what) => (err) => console.error(`conversation store: ${what} failed`, err);

/** @param {string} id @param {string} json */
export function save(id, json) {
  db.then((d) => d.put('conversations', json, id)).catch(report('save'));
}

/** @param {string} id */
export function remove(id) {
  db.then((d) => d.delete('conversations', id)).catch(report('delete'));
}

/** @param {string} json */
export function saveSettings(json) {
  db.then((d) => d.put('settings', json, SETTINGS_KEY)).catch(report('settings'));
}
