// Answers as Markdown, safely. `marked` turns the model's text into HTML and
// DOMPurify strips everything that could run or fetch: the model (or a prompt
// that makes it echo an attacker's text) must never run script or make the
// page request anything. Raw HTML inside the Markdown is shown as text, images
// become their alt text (no request may leave the device), and links keep only
// http(s)/mailto targets and open in a new tab without an opener.
import { Marked } from '../../vendor/marked/marked.esm.js';
import createDOMPurify from '../../vendor/dompurify/purify.es.mjs';
import { splitBlocks } from './markdown_blocks.js';

/** @param {string} s */
const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const marked = new Marked({
  gfm: true,
  breaks: true, // chat models end lines where they mean a line break
  async: false,
  renderer: {
    // Raw HTML in an answer is text to read, not markup to apply.
    html: ({ text }) => escapeHtml(text),
    // No image is ever fetched: show what it would have been instead.
    image: ({ text }) => `<span class="img-alt">[image${text ? `: ${escapeHtml(text)}` : ''}]</span>`,
  },
});

// A private instance: our hooks must not change DOMPurify for anyone else.
const purify = createDOMPurify(window);
const SAFE_LINK = /^(https?:|mailto:)/i;

purify.addHook('afterSanitizeAttributes', (node) => {
  if (node.nodeName !== 'A') return;
  const href = node.getAttribute('href') ?? '';
  if (SAFE_LINK.test(href.trim())) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  } else {
    node.removeAttribute('href'); // javascript:, data:, relative links…: plain text
  }
});

/** What may appear in an answer: Markdown's output and nothing else. */
const CONFIG = {
  ALLOWED_TAGS: ['a', 'blockquote', 'br', 'code', 'del', 'em', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'li',
    'ol', 'p', 'pre', 'span', 'strong', 'table', 'tbody', 'td', 'th', 'thead', 'tr', 'ul'],
  ALLOWED_ATTR: ['href', 'title', 'class', 'align', 'start'],
  ALLOW_DATA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

/**
 * Render Markdown into a sanitised fragment, with code blocks and tables
 * wrapped so they scroll inside themselves on a narrow screen.
 * @param {string} text
 * @returns {DocumentFragment}
 */
export function renderMarkdown(text) {
  return toFragment(/** @type {string} */ (marked.parse(text)));
}

/** @param {string} html marked's output @returns {DocumentFragment} */
function toFragment(html) {
  const frag = /** @type {DocumentFragment} */ (purify.sanitize(html, CONFIG));
  for (const pre of frag.querySelectorAll('pre')) wrapCode(pre);
  for (const table of frag.querySelectorAll('table')) {
    const wrap = scrollBox('table-wrap', 'Table');
    table.replaceWith(wrap);
    wrap.append(table);
  }
  return frag;
}

/**
 * An answer being written, drawn into `body` as it grows. The blocks that later
 * text can no longer change are rendered once and kept; each draw renders only
 * the open tail again, so a frame costs about the same however long the answer
 * is. Block by block, the result is what renderMarkdown makes of the same text
 * (the one exception: a link used before its reference definition stays text
 * until the answer ends); the view draws the finished answer whole with
 * renderMarkdown.
 */
export class MarkdownStream {
  /** @param {HTMLElement} body @param {string} text */
  constructor(body, text = '') {
    this.body = body;
    this.text = text;
    this.done = 0; // characters of `text` rendered for good
    /** @type {ChildNode[]} */
    this.tail = []; // the nodes of the open tail, drawn again each time
    body.replaceChildren();
  }

  /** @param {string} more */
  append(more) {
    this.text += more;
  }

  draw() {
    const { done, length, open } = splitBlocks(marked, this.text.slice(this.done));
    for (const node of this.tail) node.remove();
    if (length) {
      this.body.append(toFragment(/** @type {string} */ (marked.parser(done))));
      this.done += length;
    }
    const tail = toFragment(/** @type {string} */ (marked.parser(open)));
    this.tail = [...tail.childNodes];
    this.body.append(tail);
  }
}

/** @param {string} className @param {string} label */
function scrollBox(className, label) {
  const el = document.createElement('div');
  el.className = className;
  // A region that scrolls must be reachable by keyboard to scroll it.
  el.tabIndex = 0;
  el.setAttribute('role', 'region');
  el.setAttribute('aria-label', label);
  return el;
}

/** @param {HTMLPreElement} pre */
function wrapCode(pre) {
  const lang = /language-([\w+-]+)/.exec(pre.querySelector('code')?.className ?? '')?.[1] ?? '';
  const box = document.createElement('div');
  box.className = 'code';
  const bar = document.createElement('div');
  bar.className = 'code-bar';
  const name = document.createElement('span');
  name.textContent = lang || 'code';
  const copy = document.createElement('button');
  copy.type = 'button';
  copy.className = 'copy secondary';
  copy.textContent = 'Copy';
  bar.append(name, copy);
  const scroller = scrollBox('code-scroll', `${lang || 'Code'} block`);
  pre.replaceWith(box);
  scroller.append(pre);
  box.append(bar, scroller);
}
