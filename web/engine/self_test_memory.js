// What the GPU self-test found, remembered per model and adapter (IndexedDB),
// so a GPU that produced garbage once is not trusted with that model again on
// this device.
import { openDB } from '../../vendor/idb/index.js';

/** @type {Promise<any> | null} */
let dbPromise = null;
const db = () => (dbPromise ??= openDB('offgrid-backend', 1, { upgrade: (d) => d.createObjectStore('self_test') }));

/** @returns {Promise<{agreement: number, passed: boolean, n_tokens: number, at: number} | null>} */
export async function remembered(key) {
  try {
    return (await (await db()).get('self_test', key)) ?? null;
  } catch {
    return null;
  }
}

/** @param {string} key @param {{agreement: number, passed: boolean, n_tokens: number}} result */
export async function remember(key, result) {
  try {
    await (await db()).put('self_test', { ...result, at: Date.now() }, key);
  } catch {
    // Private mode or no quota: the test runs again next time.
  }
}
