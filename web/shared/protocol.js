// The protocol on both sides of the worker boundary: the schema generated from
// py/offgrid/protocol.py (protocol.gen.js, data only), its validator and make().
// Import the protocol from here, never from protocol.gen.js directly.
//
// validate() refuses exactly the frames that Python's protocol.decode refuses, with the same
// code and field (tests/test_protocol_gen.py runs both on the same frames). Names and ranges
// the protocol defines (BACKENDS, KV_CACHE_TYPES, fieldRange('LoadModel', 'n_ctx'), ...) are
// exported here so no other file repeats them.
import * as gen from './protocol.gen.js';

/**
 * A field of the schema, as protocol.gen.js writes it.
 * @typedef {{t: string, default?: any, min?: number | null, max?: number | null}} FieldSpec
 * @typedef {Record<string, FieldSpec>} Fields
 */

/**
 * A field type, resolved from its name ("int", "Backend", "ChatMessage[]", ...).
 * @typedef {{kind: 'bool' | 'int' | 'float' | 'str', name: string}
 *   | {kind: 'enum', name: string, values: readonly string[]}
 *   | {kind: 'object', name: string}
 *   | {kind: 'list', name: string, item: Type}} Type
 */

/**
 * A frame: `type`, `id`, `v` and the message's fields.
 * @typedef {Record<string, any> & {type: string, id: string, v: number}} Frame
 */

/** @typedef {{ok: true, msg: Frame} | {ok: false, code: string, message: string, field: string}} Checked */

/**
 * @template T
 * @param {T} value
 * @returns {T} the same value, frozen all the way down (the schema is shared; nobody may change it)
 */
function deepFreeze(value) {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** @type {number} */
export const PROTOCOL_VERSION = gen.PROTOCOL_VERSION;
/** How deep a frame may nest (protocol.py MAX_DEPTH); deeper ones are refused unread. */
export const MAX_DEPTH = gen.MAX_DEPTH;
export const TOO_DEEP = `the frame nests deeper than ${gen.MAX_DEPTH} levels`;

/**
 * How deep JSON text nests (objects and lists), read without parsing it: a parser's stack
 * (Pyodide's) may end before the text does. Strings are skipped, escapes included.
 * @param {string} text
 */
export function textDepth(text) {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (c === 34) { // a string: skip to its closing quote
      for (i += 1; i < text.length && text.charCodeAt(i) !== 34; i += 1) if (text.charCodeAt(i) === 92) i += 1;
    } else if (c === 91 || c === 123) deepest = Math.max(deepest, ++depth);
    else if (c === 93 || c === 125) depth -= 1;
  }
  return deepest;
}

/** How deep a parsed value nests, counted without recursion. @param {unknown} value */
function depthOf(value) {
  let deepest = 0;
  const stack = [[value, 1]];
  while (stack.length) {
    const [v, d] = stack.pop();
    if (v !== null && typeof v === 'object') {
      deepest = Math.max(deepest, d);
      if (d <= gen.MAX_DEPTH) for (const x of Object.values(v)) stack.push([x, d + 1]);
    }
  }
  return deepest;
}
/** Message type names (`T.Chat === 'Chat'`), so call sites fail loudly on a typo. */
export const T = deepFreeze(gen.T);
/** @type {readonly string[]} the requests' type names (controller -> worker) */
export const REQUESTS = deepFreeze(gen.REQUESTS);
/** @type {readonly string[]} the events' type names (worker -> controller) */
export const EVENTS = deepFreeze(gen.EVENTS);
/** @type {Readonly<Record<string, readonly string[]>>} every named set of strings, by its name in protocol.py */
export const ENUMS = deepFreeze(gen.ENUMS);
/** @type {Readonly<Record<string, Fields>>} */
const OBJECTS = deepFreeze(gen.OBJECTS);
/** @type {Readonly<Record<string, Fields>>} */
const MESSAGES = deepFreeze(gen.MESSAGES);

/**
 * @param {string} name an enum of protocol.py
 * @returns {readonly string[]}
 */
function enumOf(name) {
  if (!Object.hasOwn(ENUMS, name)) throw new Error(`protocol.gen.js has no enum ${name}: run \`python3 build.py protocol\``);
  return ENUMS[name];
}

/** Message roles: 'system', 'user', 'assistant'. */
export const ROLES = enumOf('Role');
/** LoadModel.backend: 'auto' (the engine chooses) or a backend to force. */
export const BACKENDS = enumOf('Backend');
/** LoadModel.kv_cache: the KV cache's element type; '' = the backend's own. */
export const KV_CACHE_TYPES = enumOf('KvCache');
/** GenerateEnd.reason. */
export const END_REASONS = enumOf('EndReason');
/** LoadProgress.phase. */
export const LOAD_PHASES = enumOf('LoadPhase');
/** Log.level. */
export const LOG_LEVELS = enumOf('LogLevel');
/** EngineError.code. */
export const ERROR_CODES = enumOf('ErrorCode');

// ------------------------------------------------------------------ types

const PRIMITIVES = new Set(['bool', 'int', 'float', 'str']);

/**
 * @param {string} name a type as the schema writes it
 * @returns {Type}
 */
function resolve(name) {
  if (name.endsWith('[]')) return { kind: 'list', name, item: resolve(name.slice(0, -2)) };
  if (PRIMITIVES.has(name)) return { kind: /** @type {'bool' | 'int' | 'float' | 'str'} */ (name), name };
  if (Object.hasOwn(ENUMS, name)) return { kind: 'enum', name, values: ENUMS[name] };
  if (Object.hasOwn(OBJECTS, name)) return { kind: 'object', name };
  throw new Error(`protocol.gen.js: unknown type ${name}`);
}

/** @type {Map<string, Type>} */
const TYPES = new Map();
for (const fields of [...Object.values(OBJECTS), ...Object.values(MESSAGES)]) {
  for (const spec of Object.values(fields)) if (!TYPES.has(spec.t)) TYPES.set(spec.t, resolve(spec.t));
}

/** @param {FieldSpec} spec */
const typeOf = (spec) => /** @type {Type} */ (TYPES.get(spec.t));

/** @param {unknown} v */
const isRecord = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// -------------------------------------------------------------- validate

/**
 * @param {string} code
 * @param {string} message
 * @param {string} [field]
 * @returns {Checked}
 */
const fail = (code, message, field = '') => ({ ok: false, code, message, field });

/**
 * Check one value against a field type.
 * @param {Type} type
 * @param {any} value
 * @param {string} where the value's path, e.g. "messages[0].role"
 * @returns {[string, string] | null} [message, path] of the first problem, or null
 */
function checkValue(type, value, where) {
  /** @param {string} message @returns {[string, string]} */
  const bad = (message) => [message, where];
  switch (type.kind) {
    case 'bool': return typeof value === 'boolean' ? null : bad(`${where} must be true or false`);
    case 'int': return Number.isInteger(value) ? null : bad(`${where} must be an integer`);
    case 'float': return typeof value === 'number' && Number.isFinite(value) ? null : bad(`${where} must be a finite number`);
    case 'str': return typeof value === 'string' ? null : bad(`${where} must be a string`);
    case 'enum': return type.values.includes(value) ? null : bad(`${where} = ${shown(value)}; expected one of ${type.values.map((v) => JSON.stringify(v)).join(', ')}`);
    case 'list': {
      if (!Array.isArray(value)) return bad(`${where} must be a list`);
      for (let i = 0; i < value.length; i++) {
        const err = checkValue(type.item, value[i], `${where}[${i}]`);
        if (err) return err;
      }
      return null;
    }
    case 'object': return checkFields(OBJECTS[type.name], value, where);
    default: return bad(`${where} has an unknown type`);
  }
}

/**
 * Check an object's keys and fields in the order Python's decoder does: the first unknown
 * key, then each field in declaration order (missing, wrong type, out of range).
 * @param {Fields} fields
 * @param {any} obj
 * @param {string} where the dotted path so far ('' for the frame)
 * @returns {[string, string] | null}
 */
function checkFields(fields, obj, where) {
  if (!isRecord(obj)) return [`${where || 'frame'} must be an object`, where];
  for (const key of Object.keys(obj)) {
    const path = where ? `${where}.${key}` : key;
    if (key === 'type' && !where) continue; // the frame's tag, at the top level only
    if (!Object.hasOwn(fields, key)) return [`unknown field '${clip(path)}'`, clip(path)];
  }
  for (const [name, spec] of Object.entries(fields)) {
    const path = where ? `${where}.${name}` : name;
    if (!Object.hasOwn(obj, name)) {
      if (!Object.hasOwn(spec, 'default')) return [`missing field '${path}'`, path];
      continue;
    }
    const err = checkValue(typeOf(spec), obj[name], path);
    if (err) return err;
    if ((spec.min != null && obj[name] < spec.min) || (spec.max != null && obj[name] > spec.max)) {
      return [`${path} = ${obj[name]} is outside [${spec.min}, ${spec.max}]`, path];
    }
  }
  return null;
}

/**
 * Validate a frame exactly as protocol.decode does in Python; a valid frame comes back
 * with every default filled in.
 * @param {unknown} frame a parsed JSON value
 * @returns {Checked}
 */
export function validate(frame) {
  if (!isRecord(frame)) return fail('bad_message', 'a frame must be a JSON object');
  if (depthOf(frame) > MAX_DEPTH) return fail('bad_message', TOO_DEEP);
  const f = /** @type {Record<string, any>} */ (frame);
  const fields = typeof f.type === 'string' && Object.hasOwn(MESSAGES, f.type) ? MESSAGES[f.type] : null;
  if (!fields) return fail('bad_message', `unknown message type ${JSON.stringify(clip(f.type))}`, 'type');
  if (f.v !== PROTOCOL_VERSION) return fail('version_mismatch', `protocol version ${shown(f.v)}, expected ${PROTOCOL_VERSION}`, 'v');
  if ('id' in f && typeof f.id !== 'string') return fail('bad_field', 'id must be a string', 'id');
  const err = checkFields(fields, f, '');
  if (err) return fail('bad_field', err[0], err[1]);
  return { ok: true, msg: /** @type {Frame} */ (withDefaults(f.type, fields, f, '')) };
}

// ------------------------------------------------------------------ make

/** @param {Type} type @returns {string} the type in words, plural: "ChatMessage objects" */
function plural(type) {
  switch (type.kind) {
    case 'list': return `lists of ${plural(type.item)}`;
    case 'object': return `${type.name} objects`;
    case 'enum': return `${type.name} names (${type.values.map((v) => JSON.stringify(v)).join(', ')})`;
    case 'bool': return 'booleans';
    case 'int': return 'integers';
    case 'float': return 'numbers';
    default: return 'strings';
  }
}

/** @param {Type} type @returns {string} the type in words: "a list of strings" */
const expected = (type) => (type.kind === 'list' ? `a list of ${plural(type.item)}` : `a ${type.name} object`);

/** Characters of a sender's name (a type, a field) an error repeats: a 1 MB name is not echoed. */
const ECHO = 64;
/** `name` cut past ECHO code points, with an ellipsis (as codec.clip does). @param {unknown} name */
export function clip(name) {
  if (typeof name !== 'string') return name;
  const points = [...name];
  return points.length > ECHO ? `${points.slice(0, ECHO - 1).join('')}…` : name;
}

/** A sender's value as an error repeats it: its JSON, cut at ECHO characters. @param {unknown} v */
const shown = (v) => /** @type {string} */ (clip(JSON.stringify(v) ?? String(v)));

/** @param {unknown} v @returns {string} what `v` is, in a word */
const kindOf = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/**
 * `obj` with its missing fields' defaults, nested objects and lists filled in the same way.
 * Wrong scalars are kept as they are (the validator answers them with a bad_field), but a
 * list or object that is not one throws: there is nothing to fill, and guessing would hide
 * the mistake. A field that is undefined counts as not given; a required field that is not
 * given stays missing.
 * @param {string} owner the message type, for errors
 * @param {Fields} fields
 * @param {Record<string, any>} obj
 * @param {string} where
 * @returns {Record<string, any>}
 */
function withDefaults(owner, fields, obj, where) {
  const out = { ...obj };
  for (const [name, spec] of Object.entries(fields)) {
    const path = where ? `${where}.${name}` : name;
    if (out[name] !== undefined) out[name] = fill(owner, typeOf(spec), out[name], path);
    else if (Object.hasOwn(spec, 'default')) out[name] = fill(owner, typeOf(spec), structuredClone(spec.default), path);
    else delete out[name];
  }
  return out;
}

/**
 * @param {string} owner
 * @param {Type} type
 * @param {any} value
 * @param {string} where
 * @returns {any}
 */
function fill(owner, type, value, where) {
  if (type.kind === 'list' || type.kind === 'object') {
    const ok = type.kind === 'list' ? Array.isArray(value) : isRecord(value);
    if (!ok) {
      const err = new TypeError(`${owner}.${where}: expected ${expected(type)}, got ${kindOf(value)}`);
      throw Object.assign(err, { field: where });
    }
  }
  if (type.kind === 'list') return value.map((/** @type {any} */ item, /** @type {number} */ i) => fill(owner, type.item, item, `${where}[${i}]`));
  if (type.kind === 'object') return withDefaults(owner, OBJECTS[type.name], value, where);
  return value;
}

/**
 * Build a frame of `type` with defaults filled in. Field values are not range- or
 * type-checked here (the receiver's validate() answers those with an EngineError), but a
 * list or object field given something else throws a TypeError that names the field
 * (`err.field`, e.g. "sampling.stop"), as does an unknown type.
 * @param {string} type a message type name (T.Chat, ...)
 * @param {Record<string, any>} [fields]
 * @param {string} [id] the request id ('' for unsolicited events)
 * @returns {Frame}
 */
export function make(type, fields = {}, id = '') {
  if (!Object.hasOwn(MESSAGES, type)) throw new Error(`unknown message type ${type}`);
  if (!isRecord(fields)) throw Object.assign(new TypeError(`${type}: expected an object of fields, got ${kindOf(fields)}`), { field: '' });
  return /** @type {Frame} */ (withDefaults(type, MESSAGES[type], { ...fields, type, id, v: PROTOCOL_VERSION }, ''));
}

/**
 * The range the protocol allows for a field, e.g. fieldRange('LoadModel', 'n_ctx') -> {min: 128, max: 131072}.
 * @param {string} owner a message type (LoadModel) or an object type (Sampling)
 * @param {string} name the field
 * @returns {{min: number, max: number}}
 */
export function fieldRange(owner, name) {
  const fields = Object.hasOwn(MESSAGES, owner) ? MESSAGES[owner] : Object.hasOwn(OBJECTS, owner) ? OBJECTS[owner] : null;
  if (!fields) throw new Error(`unknown protocol type ${owner}`);
  const spec = Object.hasOwn(fields, name) ? fields[name] : null;
  if (!spec || spec.min == null || spec.max == null) throw new Error(`${owner}.${name} has no range in the protocol`);
  return { min: spec.min, max: spec.max };
}

/**
 * A field's default, e.g. fieldDefault('LoadModel', 'n_ctx') -> 2048 (a copy: change it freely).
 * @param {string} owner a message type or an object type
 * @param {string} name the field
 * @returns {any}
 */
export function fieldDefault(owner, name) {
  if (Object.hasOwn(MESSAGES, owner)) return make(owner)[name];
  if (!Object.hasOwn(OBJECTS, owner)) throw new Error(`unknown protocol type ${owner}`);
  const spec = Object.hasOwn(OBJECTS[owner], name) ? OBJECTS[owner][name] : null;
  if (!spec || !Object.hasOwn(spec, 'default')) throw new Error(`${owner}.${name} has no default`);
  return fill(owner, typeOf(spec), structuredClone(spec.default), name);
}
