/**
 * Typed JSON: plain JSON values encode to plain JSON text (so `json_extract` works on
 * them in the bundle), and the values JSON loses are written as tagged objects:
 *
 *     {"$t":"date","v":"2026-01-01T00:00:00.000Z"}   {"$t":"bigint","v":"12"}
 *     {"$t":"num","v":"NaN"|"Infinity"|"-Infinity"|"-0"}  {"$t":"undef"}
 *     {"$t":"buffer","v":"<base64>"}  {"$t":"bytes","v":"<base64>"}
 *     {"$t":"typedarray","k":"Float32Array","v":"<base64>"}  (the other typed arrays)
 *     {"$t":"arraybuffer"|"sharedarraybuffer"|"dataview","v":"<base64>"}
 *     {"$t":"map","v":[[k,v],...]}    {"$t":"set","v":[...]}
 *     {"$t":"error","v":{"name","message"}}
 *     {"$t":"obj","v":{...}}   a plain object that itself has a "$t" key (escaped)
 *
 * Boxed primitives (`new Number(3)`) are written as the primitive they hold (boxed.ts), and
 * built-ins whose state is not in own fields (RegExp, URLSearchParams, Headers) and a URL
 * as the plain JSON text or object they hold (opaque.ts).
 *
 * Encoding takes a fast path: one read-only walk checks that the value is plain JSON
 * within the limits with no key a redaction rule may match, then the native
 * `JSON.stringify` writes it. Only values that need tags or redaction pay for the slower
 * tagged copy.
 */
import { types } from 'node:util'
import { bufferToBase64, typedArrayKind, typedArrayToBase64, viewToBase64 } from './binary.js'
import { unboxed } from './boxed.js'
import { type OpaqueForm, opaqueForm, paramsText } from './opaque.js'
import { RedactionFailed, type Redactor, thrownMessage } from './redact.js'

export const TAG = '$t'

export interface EncodeLimits {
  /** Largest encoded size in bytes (UTF-16 code units, close enough for a cap). */
  maxBytes: number
  /** Deepest nesting of objects and arrays. */
  maxDepth: number
}

export const defaultLimits: EncodeLimits = { maxBytes: 8 * 1024 * 1024, maxDepth: 512 }

/** `unserialisable`: reading the value threw (a getter, a Proxy trap, a `toJSON`). */
export type PayloadProblem = 'cyclic' | 'too-large' | 'too-deep' | 'unserialisable'

/** A value that cannot be recorded as it is; the recorder stores a marker instead. */
export class PayloadError extends Error {
  override readonly name = 'PayloadError'
  constructor(
    readonly problem: PayloadProblem,
    message: string,
    readonly size?: number,
  ) {
    super(message)
  }
}

/**
 * How much JSON text the walk has seen so far, at least: every string with its quotes, every
 * key with its quotes, colon and comma, a character for each number. It never counts more
 * than JSON.stringify writes, so a value it finds over the cap is over it, and the walk stops
 * there instead of serialising megabytes only to refuse them.
 */
interface Size {
  seen: number
  max: number
}

function overCap(size: Size): never {
  throw new PayloadError(
    'too-large',
    `payload is over the ${size.max} byte cap (at least ${size.seen} bytes)`,
    size.seen,
  )
}

/**
 * Walks the value once. Returns true when `JSON.stringify` alone would write it
 * faithfully: only plain objects, arrays, finite non-negative-zero numbers, strings,
 * booleans and null, no tag key, no `__proto__` key, and no key under which `redactor`
 * (when given) may redact. Throws PayloadError when the value is over the size cap or
 * nests too deep.
 *
 * `seen` lists the containers on the path walked, to tell a cycle; without it a cycle
 * runs into the depth or the size limit, and the walk that keeps the list (the one
 * `encodeValue` runs then) names the problem. Keeping it, with the look at each array's
 * prototype below, cost a fifth of the walk's instructions (callgrind, 2 KB payloads).
 */
function isPlain(
  value: unknown,
  maxDepth: number,
  redactor: Redactor | undefined,
  size: Size,
  seen: object[] | undefined,
): boolean {
  // The value itself is walked as an item of a container one level up, at depth 0.
  return isPlainItem(value, -1, maxDepth, seen, redactor, size)
}

/** `scalarSize` of a value that is an object (walked on its own), and of one JSON cannot keep. */
const notScalar = -1
const notPlain = -2

/**
 * The JSON text a scalar adds at least (a string with its quotes, a character for a number),
 * `notScalar` for an object or array, `notPlain` for a value JSON.stringify does not write
 * faithfully (NaN, ±Infinity, -0, undefined, a BigInt, a function or a symbol).
 */
function scalarSize(v: unknown): number {
  switch (typeof v) {
    case 'string':
      return v.length + 2
    case 'number':
      // NaN and ±Infinity (`v - v` is NaN for each) and -0, without a call per number.
      return v - v !== 0 || (v === 0 && 1 / v < 0) ? notPlain : 1
    case 'boolean':
      return 4
    case 'object':
      return v === null ? 4 : notScalar
    default:
      return notPlain
  }
}

/**
 * isPlain of an object or array at `depth`. Most of a payload's values are scalars: each
 * is sized by a switch on its type, with no recursive call and no `Object.is` (the walk
 * cost a fifth of `JSON.stringify` itself before). The size is checked against the cap as
 * it grows, before anything is serialised.
 */
function isPlainContainer(
  value: object,
  depth: number,
  maxDepth: number,
  seen: object[] | undefined,
  redactor: Redactor | undefined,
  size: Size,
): boolean {
  if (depth >= maxDepth) throw new PayloadError('too-deep', `payload nests deeper than ${maxDepth} levels`)
  if (seen?.includes(value)) throw new PayloadError('cyclic', 'payload is cyclic')
  if (Array.isArray(value)) {
    // An array that says how to serialise itself (an own or inherited toJSON) is written as
    // what that gives, which only the tagged walk redacts. Its prototype is not looked at:
    // both ways write any other array as its items (and the look is a runtime call).
    if (hasToJSON(value)) return false
    seen?.push(value)
    // The brackets and the commas between the items: one for the array, one per item.
    size.seen += 1 + value.length
    if (size.seen > size.max) overCap(size)
    for (let i = 0; i < value.length; i++) {
      if (!isPlainItem(value[i], depth, maxDepth, seen, redactor, size)) return false
    }
  } else {
    const proto = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) return false
    seen?.push(value)
    size.seen += 1
    for (const key in value) {
      if (key === TAG || key === '__proto__') return false
      if (redactor?.keyMayMatch(key)) return false
      size.seen += key.length + 4
      if (size.seen > size.max) overCap(size)
      if (!isPlainItem((value as Record<string, unknown>)[key], depth, maxDepth, seen, redactor, size))
        return false
    }
  }
  if (size.seen > size.max) overCap(size)
  seen?.pop()
  return true
}

/** isPlain of an item of a container at `depth`: a scalar without a call of its own. */
function isPlainItem(
  v: unknown,
  depth: number,
  maxDepth: number,
  seen: object[] | undefined,
  redactor: Redactor | undefined,
  size: Size,
): boolean {
  const n = scalarSize(v)
  if (n >= 0) {
    size.seen += n
    // Over the cap, the walk stops at once, before the rest of a huge value is read.
    if (size.seen > size.max) overCap(size)
    return true
  }
  return n === notScalar && isPlainContainer(v as object, depth + 1, maxDepth, seen, redactor, size)
}

/** Whether `obj` says how to serialise itself, as `JSON.stringify` asks. */
function hasToJSON(obj: object): boolean {
  return typeof (obj as { toJSON?: unknown }).toJSON === 'function'
}

/** The path segment a Map key itself is walked at, its parts below it. */
const mapKeyPart = '<key>'

/**
 * The tag of a binary value (Buffer, a typed array, ArrayBuffer, SharedArrayBuffer,
 * DataView); undefined for anything else, and for a typed-array kind not in the list.
 */
function binaryTag(obj: object, size: Size): Record<string, string> | undefined {
  // Refused over the cap before a copy as big as the value is made (a 50 MB Buffer).
  const bytes = ArrayBuffer.isView(obj)
    ? obj.byteLength
    : types.isArrayBuffer(obj) || types.isSharedArrayBuffer(obj)
      ? obj.byteLength
      : -1
  if (bytes < 0) return undefined
  grow(size, 4 * Math.ceil(bytes / 3) + 20)
  if (Buffer.isBuffer(obj)) return { [TAG]: 'buffer', v: viewToBase64(obj) }
  if (ArrayBuffer.isView(obj)) {
    const kind = typedArrayKind(obj)
    if (kind === undefined) return { [TAG]: 'dataview', v: viewToBase64(obj) }
    if (kind === 'Uint8Array') return { [TAG]: 'bytes', v: viewToBase64(obj) }
    const v = typedArrayToBase64(obj, kind)
    return v === undefined ? undefined : { [TAG]: 'typedarray', k: kind, v }
  }
  // By their internal slot: one made in another realm (a vm context) is not `instanceof`.
  if (types.isArrayBuffer(obj)) return { [TAG]: 'arraybuffer', v: bufferToBase64(obj) }
  if (types.isSharedArrayBuffer(obj)) return { [TAG]: 'sharedarraybuffer', v: bufferToBase64(obj) }
  return undefined
}

/**
 * The path segment a redaction rule sees for a Map entry: its key as text when the key is
 * a primitive, and a name no key rule can spell otherwise (`String()` on an object runs
 * its own `toString`, which may throw or not be a function at all).
 */
function mapKeySegment(k: unknown): string {
  switch (typeof k) {
    case 'string':
      return k
    case 'number':
    case 'bigint':
    case 'boolean':
    case 'undefined':
      return String(k)
    default:
      return k === null ? 'null' : `[${typeof k}]`
  }
}

interface TagContext {
  /** JSON text the copy will take at least, so far: a value far over the cap stops early. */
  size: Size
  seen: unknown[]
  maxDepth: number
  redactor: Redactor | undefined
  path: (string | number)[]
}

/** Builds a JSON-safe copy of `value` with tags; `undefined` return means "omit". */
function toTagged(value: unknown, depth: number, cx: TagContext): unknown {
  if (cx.redactor?.matches(cx.path, value)) return cx.redactor.token(value)
  return taggedValue(value, depth, cx)
}

/** Adds `n` bytes to what the copy takes at least; over the cap, stops the walk. */
function grow(size: Size, n: number): void {
  size.seen += n
  if (size.seen > size.max) overCap(size)
}

/** How many characters a number takes in JSON at least: its integer digits and sign. */
function digits(n: number): number {
  let count = n < 0 ? 2 : 1
  const a = Math.abs(n)
  // From 1e21 up, JSON writes an exponent (`1e+21`).
  if (a >= 1e21) return count + 4
  for (let x = a; x >= 10; x /= 10) count++
  return count
}

/** toTagged once the value at this path has been checked against the redaction rules. */
function taggedValue(value: unknown, depth: number, cx: TagContext): unknown {
  if (value === null) return null
  switch (typeof value) {
    case 'string':
      grow(cx.size, value.length + 2)
      return value
    case 'boolean':
      return value
    case 'number':
      grow(cx.size, digits(value))
      if (Number.isFinite(value) && !Object.is(value, -0)) return value
      return { [TAG]: 'num', v: Object.is(value, -0) ? '-0' : String(value) }
    case 'bigint': {
      const v = value.toString()
      grow(cx.size, v.length + 20)
      return { [TAG]: 'bigint', v }
    }
    case 'undefined':
      grow(cx.size, 14)
      return { [TAG]: 'undef' }
    case 'function':
    case 'symbol':
      return undefined
    case 'object':
      break
    default:
      return undefined
  }
  const obj = value as object
  if (depth >= cx.maxDepth)
    throw new PayloadError('too-deep', `payload nests deeper than ${cx.maxDepth} levels`)
  if (cx.seen.includes(obj)) throw new PayloadError('cyclic', 'payload is cyclic')
  if (obj instanceof Date) {
    grow(cx.size, 22)
    return { [TAG]: 'date', v: Number.isNaN(obj.getTime()) ? null : obj.toISOString() }
  }
  const binary = binaryTag(obj, cx.size)
  if (binary !== undefined) return binary
  const primitive = unboxed(obj)
  if (primitive !== obj) return taggedValue(primitive, depth, cx)
  cx.seen.push(obj)
  try {
    if (Array.isArray(obj) && !hasToJSON(obj)) return taggedItems(obj, depth, cx)
    if (obj instanceof Map) {
      const entries: unknown[] = []
      grow(cx.size, 18)
      for (const [k, v] of obj) {
        grow(cx.size, 3)
        // A key may be an object holding a secret as much as a value may.
        cx.path.push(mapKeyPart)
        const key = toTagged(k, depth + 1, cx)
        cx.path.pop()
        cx.path.push(mapKeySegment(k))
        entries.push([key, toTagged(v, depth + 1, cx) ?? null])
        cx.path.pop()
      }
      return { [TAG]: 'map', v: entries }
    }
    if (obj instanceof Set) {
      const items: unknown[] = []
      let i = 0
      grow(cx.size, 18)
      for (const v of obj) {
        grow(cx.size, 1)
        cx.path.push(i++)
        items.push(toTagged(v, depth + 1, cx) ?? null)
        cx.path.pop()
      }
      return { [TAG]: 'set', v: items }
    }
    if (obj instanceof Error) {
      const e: Record<string, unknown> = { name: obj.name, message: obj.message }
      const code = (obj as { code?: unknown }).code
      if (typeof code === 'string' || typeof code === 'number') e.code = code
      return { [TAG]: 'error', v: e }
    }
    const opaque = opaqueForm(obj)
    // A URL is read as one whatever `toJSON` it has: the text it gives would reach the file
    // with no rule having seen the query parameters or the userinfo in it.
    if (opaque?.kind === 'url') return taggedOpaque(obj, opaque, depth, cx)
    // As JSON.stringify does: a value that says how to serialise itself (decimal and
    // date-library types, ORM documents) is recorded as that, not as its private fields.
    if (hasToJSON(obj)) {
      const toJSON = (obj as { toJSON: (key: string) => unknown }).toJSON
      const json = toJSON.call(obj, String(cx.path.at(-1) ?? ''))
      if (json !== obj) return toTagged(json, depth + 1, cx)
      // A toJSON that gives back its own object (a fluent builder, a model base class) is
      // written by JSON.stringify as that object's fields; walked again it would read as cyclic.
      if (Array.isArray(obj)) return taggedItems(obj, depth, cx)
    }
    if (opaque !== undefined) return taggedOpaque(obj, opaque, depth, cx)
    return taggedFields(obj as Record<string, unknown>, depth, cx)
  } finally {
    cx.seen.pop()
  }
}

/** An array's items, tagged; a hole or an item JSON omits is recorded as undefined. */
function taggedItems(arr: unknown[], depth: number, cx: TagContext): unknown[] {
  grow(cx.size, 1 + arr.length)
  const out: unknown[] = new Array(arr.length)
  for (let i = 0; i < arr.length; i++) {
    cx.path.push(i)
    const v = toTagged(arr[i], depth + 1, cx)
    cx.path.pop()
    out[i] = v === undefined ? { [TAG]: 'undef' } : v
  }
  return out
}

/** An object's own enumerable fields, tagged; the object itself escaped if it has a tag key. */
function taggedFields(obj: Record<string, unknown>, depth: number, cx: TagContext): unknown {
  grow(cx.size, 2)
  const out: Record<string, unknown> = {}
  let escaped = false
  for (const key of Object.keys(obj)) {
    // A recorded `__proto__` key could later be assigned into a prototype; never keep it.
    if (key === '__proto__') continue
    if (key === TAG) escaped = true
    grow(cx.size, key.length + 3)
    cx.path.push(key)
    const v = toTagged(obj[key], depth + 1, cx)
    cx.path.pop()
    if (v !== undefined) out[key] = v
  }
  return escaped ? { [TAG]: 'obj', v: out } : out
}

/**
 * A RegExp, URLSearchParams, URL or Headers as the plain JSON it is recorded as. A Headers
 * is walked as an object, so a rule (or a default secret name) that names `authorization`
 * or `cookie` redacts that entry. A query string is checked parameter by parameter (path
 * `$.query.token`), and one holding a parameter a rule redacts is redacted whole: the text
 * with a token inside it would never equal the text a replay's local build gives, while a
 * whole token is known to replay as a value production never kept. A URL is its text,
 * checked the same way by the parameters of its query (`$.url.token`), and, with the
 * default secret names on, redacted whole when its userinfo holds a password.
 */
function taggedOpaque(value: object, form: OpaqueForm, depth: number, cx: TagContext): unknown {
  switch (form.kind) {
    case 'text':
      return form.text
    case 'entries':
      return taggedFields(form.fields, depth, cx)
    case 'params':
      return cx.redactor !== undefined && paramsRedacted(form.entries, cx.redactor, cx.path)
        ? cx.redactor.token(value)
        : paramsText(form.entries)
    case 'url': {
      const { redactor } = cx
      if (
        redactor !== undefined &&
        ((form.password && redactor.redactsSecretNames) || paramsRedacted(form.entries, redactor, cx.path))
      )
        return redactor.token(value)
      return form.href
    }
  }
}

/** Whether `redactor` redacts one of a query's parameters, each at its name below `path`. */
function paramsRedacted(
  entries: readonly (readonly [string, string])[],
  redactor: Redactor,
  path: (string | number)[],
): boolean {
  for (const [name, param] of entries) {
    path.push(name)
    try {
      if (redactor.matches(path, param)) return true
    } finally {
      path.pop()
    }
  }
  return false
}

/**
 * Encodes a value as typed JSON text. Throws PayloadError for cyclic, too deep, too large
 * or unreadable values (a getter, Proxy trap or `toJSON` that throws) and RedactionFailed
 * when a redaction rule throws; never anything else.
 */
export function encode(value: unknown, limits: EncodeLimits = defaultLimits, redactor?: Redactor): string {
  try {
    return encodeValue(value, limits, redactor)
  } catch (err) {
    if (isOwnError(err)) throw err
    throw new PayloadError('unserialisable', `payload cannot be serialised: ${thrownMessage(err)}`)
  }
}

/** `instanceof` that cannot throw: what a getter threw may be a revoked Proxy. */
function isOwnError(err: unknown): boolean {
  try {
    return err instanceof PayloadError || err instanceof RedactionFailed
  } catch {
    return false
  }
}

function encodeValue(value: unknown, limits: EncodeLimits, redactor: Redactor | undefined): string {
  const active = redactor !== undefined && !redactor.isEmpty ? redactor : undefined
  // Rules that cannot be screened by key name (function rules, rules ending in `*` or an
  // index) see every value, so only the tagged walk will do.
  if (active === undefined || active.screensKeys) {
    let plain: boolean
    try {
      plain = isPlain(value, limits.maxDepth, active, { seen: 0, max: limits.maxBytes }, undefined)
    } catch (err) {
      if (!(err instanceof PayloadError)) throw err
      // Too deep or too large may be a cycle: walked again with the path kept, to say which.
      plain = isPlain(value, limits.maxDepth, active, { seen: 0, max: limits.maxBytes }, [])
    }
    if (plain) return checkSize(JSON.stringify(value), limits)
  }
  const text = JSON.stringify(
    toTagged(value, 0, {
      size: { seen: 0, max: limits.maxBytes },
      seen: [],
      maxDepth: limits.maxDepth,
      redactor: active,
      path: [],
    }),
  )
  // A top-level function or symbol encodes as undefined, like a missing value.
  return checkSize(text ?? `{"${TAG}":"undef"}`, limits)
}

function checkSize(text: string, limits: EncodeLimits): string {
  if (text.length > limits.maxBytes) {
    throw new PayloadError(
      'too-large',
      `payload is ${text.length} bytes, over the ${limits.maxBytes} byte cap`,
      text.length,
    )
  }
  return text
}

/** The marker stored in place of a value that could not be recorded. */
export function unrecordedMarker(err: PayloadError | RedactionFailed): string {
  const marker: Record<string, unknown> = {
    [TAG]: 'unrecorded',
    reason: err instanceof PayloadError ? err.problem : 'redaction-failed',
    message: err.message,
  }
  if (err instanceof PayloadError && err.size !== undefined) marker.size = err.size
  return JSON.stringify(marker)
}

/**
 * The marker stored for a value that was not there yet when its record ended: the output
 * of a stage, or the result of an async effect, still running then. What it gives later is
 * not recorded (the record has gone to the writer).
 */
export function unfinishedMarker(message: string): string {
  return JSON.stringify({ [TAG]: 'unrecorded', reason: 'unfinished', message })
}
