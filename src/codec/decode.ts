/**
 * Decoding of typed JSON read from a bundle. Bundles may come from strangers, so the
 * text is parsed with secure-json-parse (it removes `__proto__` and
 * `constructor.prototype` keys) and tags are rebuilt into objects made with
 * `Object.defineProperty`, so no key can reach a prototype.
 */
import sjson from 'secure-json-parse'
import { arrayBufferFrom, sharedArrayBufferFrom, typedArrayFrom } from './binary.js'
import { TAG } from './encode.js'

/** A value the recorder could not capture (cyclic, too large, redaction failed). */
export interface Unrecorded {
  readonly [TAG]: 'unrecorded'
  readonly reason: string
  readonly message: string
  readonly size?: number
}

export class DecodeError extends Error {
  override readonly name = 'DecodeError'
}

/**
 * Whether secure-json-parse would find no suspect key in `text`. Its two regular expressions
 * look for `"__proto__"` and `"constructor"` as keys, each letter either literal or written
 * as a `\u` escape, so text that spells neither word and holds no `\u` cannot match them:
 * three substring scans instead of two regular expressions over the whole text (2.5-3 us of
 * the ~14 us a 2 KB payload took). A byte order mark is left to the library, which strips it.
 */
function noSuspectKey(text: string): boolean {
  return (
    text.charCodeAt(0) !== 0xfeff &&
    !text.includes('\\u') &&
    !text.includes('__proto__') &&
    !text.includes('constructor')
  )
}

/** Parses JSON text from an untrusted source without prototype pollution. */
export function parseJson(text: string): unknown {
  try {
    if (noSuspectKey(text)) return JSON.parse(text)
    return sjson.parse(text, undefined, { protoAction: 'remove', constructorAction: 'remove' })
  } catch (err) {
    throw new DecodeError(`not valid JSON: ${(err as Error).message}`)
  }
}

export function isUnrecorded(value: unknown): value is Unrecorded {
  return (
    typeof value === 'object' && value !== null && (value as Record<string, unknown>)[TAG] === 'unrecorded'
  )
}

function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
}

/**
 * A primitive as text; anything else gives `fallback`. `String(x)` would call a hand-made
 * `toString` (or throw on `{"toString": ""}`) in a stranger's file.
 */
function textOf(v: unknown, fallback: string): string {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint'
    ? String(v)
    : fallback
}

function fromBase64(v: unknown): Buffer {
  return Buffer.from(typeof v === 'string' ? v : '', 'base64')
}

/** Deeper payloads than this are refused rather than risk the stack. */
export const maxDecodeDepth = 2000

function revive(value: unknown, depth = 0): unknown {
  if (typeof value !== 'object' || value === null) return value
  if (depth > maxDecodeDepth) throw new DecodeError(`payload nests deeper than ${maxDecodeDepth} levels`)
  const next = (v: unknown): unknown => revive(v, depth + 1)
  if (Array.isArray(value)) return value.map(next)
  const obj = value as Record<string, unknown>
  const tag = obj[TAG]
  if (typeof tag === 'string') {
    const v = obj.v
    switch (tag) {
      case 'undef':
        return undefined
      case 'num':
        return v === '-0' ? -0 : Number(textOf(v, 'NaN'))
      case 'bigint':
        try {
          return BigInt(textOf(v, 'invalid'))
        } catch {
          return Number.NaN
        }
      case 'date':
        return new Date(typeof v === 'string' ? v : Number.NaN)
      case 'buffer':
        return fromBase64(v)
      case 'bytes':
        return new Uint8Array(fromBase64(v))
      // A binary tag with a malformed field (binary.ts) decodes as the object it is, like a
      // tag this reader does not know: nothing in it is lost or guessed at.
      case 'typedarray':
        return typedArrayFrom(obj.k, v) ?? reviveObject(obj, depth)
      case 'arraybuffer':
        return arrayBufferFrom(v) ?? reviveObject(obj, depth)
      case 'sharedarraybuffer':
        return sharedArrayBufferFrom(v) ?? reviveObject(obj, depth)
      case 'dataview': {
        const buffer = arrayBufferFrom(v)
        return buffer === undefined ? reviveObject(obj, depth) : new DataView(buffer)
      }
      case 'map':
        return new Map(
          Array.isArray(v) ? v.map((e) => (Array.isArray(e) ? [next(e[0]), next(e[1])] : [e, e])) : [],
        )
      case 'set':
        return new Set(Array.isArray(v) ? v.map(next) : [])
      case 'error': {
        const src = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>
        const err = new Error(textOf(src.message, ''))
        err.name = textOf(src.name, 'Error')
        if (src.code !== undefined) setOwn(err as unknown as Record<string, unknown>, 'code', src.code)
        return err
      }
      case 'obj':
        return reviveObject((typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>, depth)
      case 'unrecorded':
        return obj
      default:
        break
    }
  }
  return reviveObject(obj, depth)
}

function reviveObject(obj: Record<string, unknown>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(obj)) setOwn(out, key, revive(obj[key], depth + 1))
  return out
}

/**
 * True when the parsed text can hold no tag and nests no deeper than maxDecodeDepth, so
 * the parsed value is already the decoded one. A key can only spell `$t` literally or
 * with a `\u` escape; nesting needs two characters a level, so short text cannot be too
 * deep, and longer text is let through only when it opens few enough brackets.
 */
function plainText(text: string): boolean {
  if (text.includes('$t') || text.includes('\\u')) return false
  if (text.length <= 2 * (maxDecodeDepth + 1)) return true
  let opened = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    // '[' and '{': brackets inside strings are counted too, which only errs towards the walk.
    if ((c === 0x5b || c === 0x7b) && ++opened > maxDecodeDepth + 1) return false
  }
  return true
}

/** Decodes typed JSON text into the value it was encoded from. */
export function decode(text: string): unknown {
  const parsed = parseJson(text)
  // The walk below only rebuilds tags and checks depth; parseJson has already removed the
  // keys that could reach a prototype.
  if (plainText(text)) return parsed
  return decodeParsed(parsed)
}

/**
 * Decodes typed JSON already parsed (by `decodeRaw` or `parseJson`, which keep keys away
 * from prototypes) into the value it was encoded from.
 */
export function decodeParsed(parsed: unknown): unknown {
  try {
    return revive(parsed)
  } catch (err) {
    // Called from deep in a caller's own stack, the stack can run out just short of
    // maxDecodeDepth (even while building the DecodeError): still the payload's nesting.
    if (err instanceof RangeError) throw new DecodeError(`payload nests too deeply to decode`)
    throw err
  }
}

/** Decodes to the JSON-shaped form, tags left as they are (for display and diffing). */
export function decodeRaw(text: string): unknown {
  return parseJson(text)
}
