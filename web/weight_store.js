// Model weights in IndexedDB, as verified fixed-size chunks.
//
// A model is downloaded once, chunk by chunk with HTTP Range; each chunk is
// checked against the SHA-256 in the catalog before it is stored, so a
// half-finished download resumes from the chunks already stored and a corrupt
// byte never reaches the engine. The stored chunks are composed into one Blob
// for the engine: no full copy in JavaScript memory, none in Python.
import { openDB } from '../vendor/idb/index.js';

const DB_NAME = 'offgrid-weights';
const DB_VERSION = 1;
const PARALLEL = 3; // chunk requests in flight
const MAX_TRIES = 3; // per chunk, before the download fails

/**
 * @typedef {{id: string, name: string, file: string, bytes: number, sha256: string,
 *   quantization: string, license: string, chunk_size: number, chunks: string[]}} CatalogModel
 * @typedef {{phase: 'download'|'verify'|'store'|'read', loaded: number, total: number, fromCache: boolean}} Progress
 */

export class WeightStoreError extends Error {
  /** @param {'download_failed'|'offline'|'integrity'|'quota'} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** @type {Promise<import('../vendor/idb/index.js').IDBPDatabase> | null} */
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
 */
async function fetchChunk(model, url, index, onBytes) {
  const start = index * model.chunk_size;
  const end = Math.min(start + model.chunk_size, model.bytes) - 1;
  const want = model.chunks[index];
  let lastError = '';
  let unreachable = true; // every try failed before any HTTP answer: no network
  for (let attempt = 1; attempt <= MAX_TRIES; attempt++) {
    let counted = 0;
    try {
      const res = await fetch(url, { headers: { Range: `bytes=${start}-${end}` }, cache: 'no-store' });
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
      if (err?.name === 'QuotaExceededError') throw new WeightStoreError('quota', 'The browser has no room left to store the model.');
      // fetch() rejects with a TypeError only when no answer came at all.
      unreachable &&= err instanceof TypeError && counted === 0;
      lastError = err?.message ?? String(err);
    }
  }
  if (unreachable) {
    throw new WeightStoreError('offline', `You are offline, and ${model.name} is not stored on this device yet.`);
  }
  throw new WeightStoreError(
    lastError.includes('SHA-256') ? 'integrity' : 'download_failed',
    `Could not download part ${index + 1} of ${model.name} after ${MAX_TRIES} tries: ${lastError}`,
  );
}

/**
 * Make sure every chunk of `model` is stored, downloading what is missing.
 * @param {CatalogModel} model @param {string} url where the .gguf is served
 * @param {(p: Progress) => void} onProgress
 * @returns {Promise<boolean>} true when nothing had to be downloaded
 */
export async function ensureStored(model, url, onProgress) {
  const d = await db();
  if (await isCached(model)) return true;
  const have = new Set(await d.getAllKeys('chunks'));
  const missing = model.chunks.map((_, i) => i).filter((i) => !have.has(model.chunks[i]));
  let loaded = model.bytes - missing.reduce((sum, i) => sum + chunkLength(model, i), 0);
  const report = () => onProgress({ phase: 'download', loaded, total: model.bytes, fromCache: false });
  report();
  const queue = [...missing];
  const workers = Array.from({ length: Math.min(PARALLEL, queue.length) }, async () => {
    while (queue.length) {
      const i = queue.shift();
      await fetchChunk(model, url, i, (n) => { loaded += n; report(); });
    }
  });
  await Promise.all(workers);
  await d.put('models', { sha256: model.sha256, bytes: model.bytes, chunks: model.chunks, complete: true }, model.id);
  return false;
}

function chunkLength(model, i) {
  return Math.min(model.chunk_size, model.bytes - i * model.chunk_size);
}

/**
 * The stored model as one Blob composed of the chunk Blobs (no copy).
 * @param {CatalogModel} model
 */
export async function openModel(model) {
  const d = await db();
  const tx = d.transaction('chunks');
  const parts = await Promise.all(model.chunks.map((h) => tx.store.get(h)));
  await tx.done;
  const absent = parts.findIndex((b) => !b);
  if (absent >= 0) throw new WeightStoreError('integrity', `part ${absent + 1} of ${model.name} is missing from storage`);
  const blob = new Blob(parts);
  if (blob.size !== model.bytes) throw new WeightStoreError('integrity', `${model.name} has ${blob.size} bytes in storage, expected ${model.bytes}`);
  return blob;
}
