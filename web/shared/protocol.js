// The protocol as code on both sides of the worker boundary: the generated message table and
// its validator. Import from here, never from protocol.gen.js directly.
export { PROTOCOL_VERSION, T, make, validate } from './protocol.gen.js';
