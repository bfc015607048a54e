// The engine worker: llama.cpp (through wllama) behind the typed protocol.
// The handler (handler.js) does the work; this entry gives it the real parts
// and this worker's messages. It holds no chat logic: the controller sends
// whole prompts. (tests/e2e/hooks/ serves a test-only entry beside it.)
import { createHandler } from './handler.js';
import { realParts } from './real_parts.js';

const handler = createHandler(realParts(self));
self.onmessage = (e) => handler.receive(e.data);
handler.start();
