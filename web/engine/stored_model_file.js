// The engine's view of a model kept in the weight store (weight_store.js).

/**
 * The stored model, to hand to the engine. wllama reads a model file through
 * `slice(start, end).arrayBuffer()`, once per tensor: hundreds of slices per
 * load. In an incognito window Chromium keeps IndexedDB Blobs in memory, and
 * that many slices of them make every later read fail ("NotReadableError")
 * until the worker's next garbage collection, so a second load in the same
 * page failed. Whole-part reads do not, so each stored part is read whole,
 * the latest one kept, and slices are copied out of it.
 */
export class StoredModelFile {
  /** @param {Blob[]} parts the stored chunks, in order @param {number} chunkSize */
  constructor(parts, chunkSize) {
    this.parts = parts;
    this.chunkSize = chunkSize;
    this.size = parts.reduce((sum, b) => sum + b.size, 0);
    /** @type {{index: number, bytes: Promise<ArrayBuffer>} | null} */
    this.latest = null;
  }

  /** @param {number} index @returns {Promise<ArrayBuffer>} */
  part(index) {
    if (this.latest?.index !== index) this.latest = { index, bytes: this.parts[index].arrayBuffer() };
    return this.latest.bytes;
  }

  /** The bytes [start, end) as a fresh ArrayBuffer (the engine transfers it away). */
  async read(start, end) {
    const out = new Uint8Array(end - start);
    for (let at = start; at < end;) {
      const index = Math.floor(at / this.chunkSize);
      const from = at - index * this.chunkSize;
      const upto = Math.min(this.chunkSize, end - index * this.chunkSize);
      out.set(new Uint8Array(await this.part(index), from, upto - from), at - start);
      at += upto - from;
    }
    return out.buffer;
  }

  /** What the engine calls on a Blob; the bytes are read when asked for. */
  slice(start = 0, end = this.size) {
    const [a, b] = [Math.max(0, start), Math.min(this.size, end)];
    return { size: Math.max(0, b - a), arrayBuffer: () => this.read(a, Math.max(a, b)) };
  }

  /** The whole file as a stream (the engine's copy-into-memory path, without JSPI). */
  stream() {
    return new Blob(this.parts).stream();
  }
}
