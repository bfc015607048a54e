// Model weights in IndexedDB, as verified fixed-size chunks.
//
// A model is downloaded once, chunk by chunk with HTTP Range; each chunk is
// checked against the SHA-256 in the catalog before it is stored, so a
// half-finished download resumes from the chunks already stored and a corrupt
// byte never reaches the engine. The stored chunks are composed into one Blob
// for the engine: no full copy in JavaScript memory, none in Python.
import { openDB } from '../../vendor/idb/index.js';
import { formatBytes as mb } from '../shared/units.js';
import { StoredModelFile } from './stored_model_file.js';

const DB_NAME = 'offgrid-weights';
const DB_VERSION = 1;
const PARALLEL = 3; // chunk requests in flight
const MAX_TRIES = 3; // per chunk, before the download fails
const CHUNK_SIZE = 8 * 1024 * 1024; // the catalog's chunk size, for records that predate chunk_size

/**
 * @typedef {{id: string, name: string, version: string, file: string, bytes: number, sha256: string,
 *   quantization: string, license: string, chunk_size: number, chunks: string[]}} CatalogModel
 * @typedef {{phase: 'download'|'verify'|'store'|'read', loaded: number, total: number, fromCache: boolean,
 *   rate: number}} Progress  rate: bytes per second over the last few seconds (0 before it is known)
 * @typedef {{id: string, name: string, version: string, sha256: string, bytes: number, chunk_size: number,
 *   chunks: string[], complete: boolean}} StoredModel  one model version's record; its chunks are kept while it exists
 */

export class WeightStoreError extends Error {
  /** @param {'download_failed'|'offline'|'integrity'|'quota'|'gone'} code @param {string} message @param {string} [hint] */
  constructor(code, message, hint = '') {
    super(message);
    this.name = 'WeightStoreError';
    this.code = code;
    this.hint = hint;
  }
}

/** @type {Promise<import('../../vendor/idb/index.js').IDBPDatabase> | null} */
let dbPromise = null;
function db() {
  dbPromise ??= openDB(DB_NAME, DB_VERSION, {
    upgrade(d) {
      d.createObjectStore('chunks'); // sha256 -> Blob
      d.createObjectStore('models'); // model id -> {sha256, bytes, chunks, complete}
    },
  });
  return dbPromise;
}

async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** True when every chunk of this exact model version is stored. */
export async function isCached(model) {
  const rec = await (await db()).get('models', model.id);
  return !!rec && rec.complete && rec.sha256 === model.sha256;
}

/**
 * Fetch one chunk with Range, verify it, store it. Retries a few times.
 * @param {CatalogModel} model @param {string} url @param {number} index
 * @param {(n: number) => void} onBytes
 * @param {{failed: boolean}} run shared by the parallel fetchers: stop once one has failed
 */
async function fetchChunk(model, url, index, onBytes, run) {
  const start = index * model.chunk_size;
  const end = Math.min(start + model.chunk_size, model.bytes) - 1;
  const want = model.chunks[index];
  let lastError = '';
  let lastCode = 'download_failed'; // the last try's failure, by code (never by its message)
  let unreachable = true; // every try failed before any HTTP answer: no network
  let gone = false; // this version is no longer served (the site was updated)
  for (let attempt = 1; attempt <= MAX_TRIES && !run.failed && !gone; attempt++) {
    let counted = 0;
    try {
      const res = await fetch(url, { headers: { Range: `bytes=${start}-${end}` }, cache: 'no-store' });
      gone = res.status === 404 || res.status === 410;
      if (res.status !== 206) throw new Error(`HTTP ${res.status} for bytes ${start}-${end}`);
      const reader = res.body.getReader();
      const parts = [];
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parts.push(value);
        counted += value.byteLength;
        onBytes(value.byteLength);
      }
      const blob = new Blob(parts);
      const got = await sha256Hex(await blob.arrayBuffer());
      if (got !== want) throw new WeightStoreError('integrity', `chunk ${index} has SHA-256 ${got.slice(0, 12)}…, expected ${want.slice(0, 12)}…`);
      await (await db()).put('chunks', blob, want);
      return;
    } catch (err) {
      onBytes(-counted); // progress never counts bytes that were thrown away
      if (err?.name === 'QuotaExceededError' || err?.inner?.name === 'QuotaExceededError') {
        throw new WeightStoreError('quota', `The browser ran out of storage space after storing part of ${model.name}.`,
          'The parts already stored are kept and verified: free some space (Storage panel, or other sites\' data) and load the model again to resume.');
      }
      // fetch() rejects with a TypeError only when no answer came at all.
      unreachable &&= err instanceof TypeError && counted === 0;
      lastError = err?.message ?? String(err);
      lastCode = err?.code === 'integrity' ? 'integrity' : 'download_failed';
    }
  }
  if (run.failed) return;
  if (gone) {
    throw new WeightStoreError('gone', `This version of ${model.name} is no longer on the server: the app was updated.`,
      'Reload the page to get the new version; the parts already stored are kept where they still fit.');
  }
  if (unreachable) {
    throw new WeightStoreError('offline', `You are offline, and ${model.name} is not stored on this device yet.`);
  }
  throw new WeightStoreError(
    lastCode,
    `Could not download part ${index + 1} of ${model.name} after ${MAX_TRIES} tries: ${lastError}`,
  );
}

let quotaLimit = Infinity;
/** Test hook: behave as if the browser granted at most `bytes` (Chromium's DevTools quota override is enforced but not reported by estimate()). */
export function simulateQuota(bytes) {
  quotaLimit = bytes;
}

/**
 * Refuse early, with numbers, when the browser's quota cannot hold what is missing.
 * @param {CatalogModel} model @param {number} need bytes still to download
 */
async function checkRoom(model, need) {
  const { usage, quota } = await storageEstimate();
  if (!quota || need <= quota - usage) return;
  const others = (await storedModels()).filter((m) => m.id !== model.id && m.complete);
  const freeable = others.map((m) => `${m.name} ${m.version ? `v${m.version} ` : ''}(${mb(m.bytes)})`).join(', ');
  throw new WeightStoreError('quota',
    `Not enough storage for ${model.name}: it needs ${mb(need)} more, and only ${mb(Math.max(0, quota - usage))} of this site's ${mb(quota)} quota is free.`,
    freeable
      ? `Delete a cached model you do not need in Storage (${freeable}), or free space used by other sites, then try again.`
      : 'Free space on this device (or clear other sites\' data in the browser settings), then try again.');
}

/** Bytes per second over a sliding window of recent progress. */
function rateMeter(windowMs = 3000) {
  /** @type {[number, number][]} */
  const samples = [];
  return (loaded) => {
    const now = performance.now();
    samples.push([now, loaded]);
    while (samples.length > 2 && now - samples[0][0] > windowMs) samples.shift();
    const [t0, b0] = samples[0];
    return now - t0 > 250 ? Math.max(0, ((loaded - b0) * 1000) / (now - t0)) : 0;
  };
}

/**
 * Make sure every chunk of `model` is stored, downloading what is missing.
 * Chunks are stored by their SHA-256, so a new version of a model fetches
 * only the chunks that changed; chunks no version refers to any more are
 * removed once the new version is complete.
 * @param {CatalogModel} model @param {string} url where the .gguf is served
 * @param {(p: Progress) => void} onProgress
 * @returns {Promise<boolean>} true when nothing had to be downloaded
 */
export async function ensureStored(model, url, onProgress) {
  const d = await db();
  if (await isCached(model)) return true;
  const have = new Set(await d.getAllKeys('chunks'));
  const missing = model.chunks.map((_, i) => i).filter((i) => !have.has(model.chunks[i]));
  const need = missing.reduce((sum, i) => sum + chunkLength(model, i), 0);
  await checkRoom(model, need);
  // The in-progress version is recorded first, so that its chunks count as referenced.
  const previous = await d.get('models', model.id);
  const pending = previous && previous.sha256 !== model.sha256 ? `${model.id}@${model.sha256}` : model.id;
  await d.put('models', record(model, false), pending);
  let loaded = model.bytes - need;
  const rate = rateMeter();
  const report = () => onProgress({ phase: 'download', loaded, total: model.bytes, fromCache: false, rate: rate(loaded) });
  report();
  const queue = [...missing];
  const run = { failed: false };
  const workers = Array.from({ length: Math.min(PARALLEL, queue.length) }, async () => {
    while (queue.length && !run.failed) {
      const i = queue.shift();
      try {
        await fetchChunk(model, url, i, (n) => { loaded += n; report(); }, run);
      } catch (err) {
        run.failed = true;
        throw err;
      }
    }
  });
  // When one chunk fails, the others already in flight still finish and are stored (no new
  // ones start): the next load must not fetch them again.
  const failure = (await Promise.allSettled(workers)).find((r) => r.status === 'rejected');
  if (failure) throw failure.reason;
  const tx = d.transaction('models', 'readwrite');
  await tx.store.put(record(model, true), model.id);
  if (pending !== model.id) await tx.store.delete(pending);
  await tx.done;
  await collectGarbage();
  return false;
}

/** @param {CatalogModel} model @param {boolean} complete @returns {StoredModel} */
function record(model, complete) {
  return {
    id: model.id, name: model.name, version: model.version ?? '', sha256: model.sha256,
    bytes: model.bytes, chunk_size: model.chunk_size, chunks: model.chunks, complete,
  };
}

/** Remove every chunk that no stored model version refers to. @returns {Promise<number>} chunks removed */
async function collectGarbage() {
  const d = await db();
  const tx = d.transaction(['models', 'chunks'], 'readwrite');
  const keep = new Set((await tx.objectStore('models').getAll()).flatMap((m) => m.chunks));
  let removed = 0;
  for (const key of await tx.objectStore('chunks').getAllKeys()) {
    if (!keep.has(key)) { await tx.objectStore('chunks').delete(key); removed++; }
  }
  await tx.done;
  return removed;
}

/** Every model version with chunks in storage, with the bytes actually stored. @returns {Promise<(StoredModel & {stored: number})[]>} */
export async function storedModels() {
  const d = await db();
  const have = new Set(await d.getAllKeys('chunks'));
  const records = await d.getAll('models');
  return records.map((m) => ({
    ...m,
    stored: m.chunks.reduce((sum, h, i) => sum + (have.has(h) ? chunkLength(m, i) : 0), 0),
  }));
}

/** Forget every version of model `id` and the chunks only it used. */
export async function deleteModel(id) {
  const d = await db();
  const tx = d.transaction('models', 'readwrite');
  for (const key of await tx.store.getAllKeys()) {
    if (key === id || String(key).startsWith(`${id}@`)) await tx.store.delete(key);
  }
  await tx.done;
  return collectGarbage();
}

/** Usage and quota of this origin, and whether the browser keeps the data under storage pressure. */
export async function storageEstimate() {
  const { usage = 0, quota: granted = 0 } = (await navigator.storage?.estimate?.()) ?? {};
  const quota = Math.min(granted, quotaLimit);
  const persisted = (await navigator.storage?.persisted?.()) ?? false;
  return { usage, quota, persisted };
}

/** @param {{bytes: number, chunk_size?: number, chunks: string[]}} model @param {number} i */
function chunkLength(model, i) {
  const size = model.chunk_size ?? CHUNK_SIZE;
  return Math.min(size, model.bytes - i * size);
}

/**
 * The stored model, its chunks read from IndexedDB as needed.
 * @param {CatalogModel} model
 * @returns {Promise<StoredModelFile>}
 */
export async function openModel(model) {
  const d = await db();
  const tx = d.transaction('chunks');
  const parts = await Promise.all(model.chunks.map((h) => tx.store.get(h)));
  await tx.done;
  const absent = parts.findIndex((b) => !b);
  if (absent >= 0) throw new WeightStoreError('integrity', `part ${absent + 1} of ${model.name} is missing from storage`);
  const file = new StoredModelFile(parts, model.chunk_size ?? CHUNK_SIZE);
  if (file.size !== model.bytes) throw new WeightStoreError('integrity', `${model.name} has ${file.size} bytes in storage, expected ${model.bytes}`);
  return file;
}
