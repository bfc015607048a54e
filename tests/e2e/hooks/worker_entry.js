// The engine worker's entry in a hooked test site: the real handler and parts,
// with test_hooks.js imported first (its global changes come before anything probes).
import { withHooks } from './test_hooks.js';
import { createHandler } from './handler.js';
import { realParts } from './real_parts.js';

const handler = createHandler(withHooks(realParts(self)));
self.onmessage = (e) => handler.receive(e.data);
handler.start();
