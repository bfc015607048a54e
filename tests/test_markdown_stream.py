"""web/page/markdown_blocks.js under node: an answer drawn as it streams, its
final blocks rendered once and only the open tail again (MarkdownStream in
markdown.js), gives at every step the HTML that rendering the whole text
gives, for the app's marked settings and thousands of random Markdown texts
cut at random places; and it does render most blocks only once."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKED = ROOT / "node_modules" / "marked" / "lib" / "marked.esm.js"

CHECK = r"""
import { Marked } from %(marked)s;
import { splitBlocks } from %(blocks)s;
const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
// The settings of web/page/markdown.js.
const md = new Marked({ gfm: true, breaks: true, async: false, renderer: {
  html: ({ text }) => escapeHtml(text),
  image: ({ text }) => `<span class="img-alt">[image${text ? `: ${escapeHtml(text)}` : ''}]</span>` } });
// Lines that start, continue, interrupt or end every kind of block, and half-typed markers.
const LINES = ['# H', '## H2 *em*', 'para text', 'more **bold** text', '1. one', '2. two', '10. ten', '- a',
  '  - nested', '* s', '+ p', '> q', 'lazy', '```', '```js', '~~~', '    code', '---', '***', '===', '| a | b |',
  '|---|---|', '| 1 | 2 |', '<div>', '</div>', '<pre>', '</pre>', '<script>', '</script>', '<!-- c -->', '-->',
  '- [ ] task', '- [x] done', '', '', '', 'Term', '  indented cont', '\t tab', '2) paren', 'http://auto.link',
  '| c |', '\\', 'a  ', '#', '1.', '-', '>', '`', '``', '![img](http://x/y.png)', '[l](javascript:alert(1))'];
let seed = 7;
const rnd = (n) => { seed = (seed * 1103515245 + 12345) %% 2147483648; return seed %% n; };
let steps = 0;
const mismatches = [];
for (let d = 0; d < 300; d++) {
  const doc = Array.from({ length: 5 + rnd(30) }, () => LINES[rnd(LINES.length)]).join('\n');
  let html = '', offset = 0;
  for (let n = 0; n < doc.length;) {
    n = Math.min(doc.length, n + 1 + rnd(6));  // a token is a few characters
    const text = doc.slice(0, n);
    const { done, length, open } = splitBlocks(md, text.slice(offset));
    html += md.parser(done);
    offset += length;
    steps += 1;
    const drawn = html + md.parser(open), whole = md.parse(text);
    if (drawn !== whole && mismatches.length < 3) mismatches.push({ text, drawn, whole });
  }
}
// A long answer as a model writes one: how much of it was rendered once, for good.
const story = Array.from({ length: 40 }, (_, i) => (i %% 10 === 9 ? '```js\nlet x = 1;\n```'
  : i %% 5 === 4 ? '1. first\n2. second' : `Paragraph ${i}, a few sentences **long**.`)).join('\n\n');
let offset = 0;
for (let n = 0; n < story.length;) {
  n = Math.min(story.length, n + 4);
  offset += splitBlocks(md, story.slice(0, n).slice(offset)).length;
}
console.log(JSON.stringify({ steps, mismatches, frozenShare: offset / story.length }));
"""


@pytest.mark.skipif(shutil.which("node") is None or not MARKED.exists(), reason="needs node and `npm ci`")
def test_a_streamed_answer_renders_as_the_whole_text_does(tmp_path):
    script = tmp_path / "check.mjs"
    script.write_text(CHECK % {"marked": json.dumps(MARKED.as_uri()),
                               "blocks": json.dumps((ROOT / "web" / "page" / "markdown_blocks.js").as_uri())})
    out = subprocess.run(["node", str(script)], capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["steps"] > 10_000
    assert result["mismatches"] == []
    assert result["frozenShare"] > 0.9  # all but the last blocks of an answer were rendered once, not on every frame
