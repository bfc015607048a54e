// Where an answer that is still being written can be cut: the Markdown blocks
// that no later text can change, and the open tail after them. markdown.js
// renders the first once and only the tail again on each frame.

/**
 * @param {{lexer: (src: string) => any[]}} md a Marked instance
 * @param {string} src the text not yet rendered for good
 * @returns {{done: any[], length: number, open: any[]}} the final blocks, how many
 *   characters of `src` they take, and the blocks after them
 */
export function splitBlocks(md, src) {
  const tokens = md.lexer(src);
  const blocks = [];
  tokens.forEach((t, i) => { if (t.type !== 'space') blocks.push(i); });
  // A block is final once two more follow it: the one right after it has its first
  // line complete then, so it can no longer turn into a continuation of the block
  // before it (a paragraph "2" that becomes "2. b" joins the list above it).
  const cut = blocks.length >= 3 ? blocks[blocks.length - 2] : 0;
  const done = tokens.slice(0, cut);
  const raw = done.map((t) => t.raw).join('');
  // The blocks' raw text must be `src` itself (marked rewrites \r\n before lexing).
  if (!cut || !src.startsWith(raw)) return { done: [], length: 0, open: tokens };
  return { done, length: raw.length, open: tokens.slice(cut) };
}
