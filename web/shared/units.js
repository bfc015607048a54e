// Bytes in words, the one formatter on the JavaScript side. Storage, downloads and
// model files are counted in decimal units (MB, GB), as browsers and disks count
// them; memory that WebAssembly or llama.cpp sizes in powers of two in binary
// units (MiB, GiB), as they report it.

export const MiB = 2 ** 20;
export const GiB = 2 ** 30;

/**
 * @param {number} n bytes
 * @param {{binary?: boolean}} [options] binary: MiB/GiB instead of MB/GB
 * @returns {string} e.g. "98 MB", "7.5 MB", "1.2 GB", "76 MiB", "4.0 GiB"
 */
export function formatBytes(n, { binary = false } = {}) {
  const [mega, giga, mu, gu] = binary ? [MiB, GiB, 'MiB', 'GiB'] : [1e6, 1e9, 'MB', 'GB'];
  if (n >= giga) return `${(n / giga).toFixed(1)} ${gu}`;
  if (n >= 10 * mega) return `${Math.round(n / mega)} ${mu}`;
  return `${(n / mega).toFixed(1)} ${mu}`;
}
