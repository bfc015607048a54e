// What the engine remembers on this device (IndexedDB 'offgrid-backend'):
//  - what the GPU self-test found, per model and adapter, so a GPU that produced
//    garbage once is not trusted with that model again here;
//  - the last model load the page asked for, so the next visit warms that one up
//    while Pyodide boots (not a model the person moved away from or deleted).
import { openDB } from '../../vendor/idb/index.js';

/** @type {Promise<any> | null} */
let dbPromise = null;
const db = () => (dbPromise ??= openDB('offgrid-backend', 2, {
  upgrade(d, oldVersion) {
    if (oldVersion < 1) d.createObjectStore('self_test');
    if (oldVersion < 2) d.createObjectStore('settings');
  },
}));

async function get(store, key) {
  try {
    return (await (await db()).get(store, key)) ?? null;
  } catch {
    return null;
  }
}

async function put(store, key, value) {
  try {
    await (await db()).put(store, value, key);
  } catch {
    // Private mode or no quota: nothing is remembered, and that is all.
  }
}

/** @returns {Promise<{agreement: number, passed: boolean, n_tokens: number, at: number} | null>} */
export const remembered = (key) => get('self_test', key);

/** @param {string} key @param {{agreement: number, passed: boolean, n_tokens: number}} result */
export const remember = (key, result) => put('self_test', key, { ...result, at: Date.now() });

/** The last LoadModel the page asked for (its fields), or null. */
export const lastLoad = () => get('settings', 'last_load');

/** @param {Record<string, any>} req a LoadModel's fields */
export const rememberLoad = (req) => put('settings', 'last_load', req);
