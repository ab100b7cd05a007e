/**
 * Binary values in typed JSON beyond Buffer and Uint8Array: the other typed arrays,
 * ArrayBuffer, SharedArrayBuffer and DataView, stored as their bytes in base64.
 *
 *     {"$t":"typedarray","k":"Float32Array","v":"<base64>"}
 *     {"$t":"arraybuffer","v":"<base64>"}  {"$t":"sharedarraybuffer","v":"<base64>"}
 *     {"$t":"dataview","v":"<base64>"}
 *
 * Typed-array elements are stored little-endian whatever the host, so a bundle reads the
 * same everywhere. Reading validates every field (a kind from the fixed list, base64 as the
 * encoder writes it, a byte length that is a whole number of elements); a tag that fails
 * is not one, and decodes as the plain object it is, like a tag decode does not know.
 */

export type TypedArray =
  | Int8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array

interface Kind {
  readonly make: (buffer: ArrayBuffer) => TypedArray
  /** Bytes per element. */
  readonly size: 1 | 2 | 4 | 8
}

/** The kinds a `typedarray` tag may name (`k`); a Uint8Array has its own `bytes` tag. */
const kinds: ReadonlyMap<string, Kind> = new Map<string, Kind>([
  ['Int8Array', { make: (b) => new Int8Array(b), size: 1 }],
  ['Uint8ClampedArray', { make: (b) => new Uint8ClampedArray(b), size: 1 }],
  ['Int16Array', { make: (b) => new Int16Array(b), size: 2 }],
  ['Uint16Array', { make: (b) => new Uint16Array(b), size: 2 }],
  ['Int32Array', { make: (b) => new Int32Array(b), size: 4 }],
  ['Uint32Array', { make: (b) => new Uint32Array(b), size: 4 }],
  ['Float32Array', { make: (b) => new Float32Array(b), size: 4 }],
  ['Float64Array', { make: (b) => new Float64Array(b), size: 8 }],
  ['BigInt64Array', { make: (b) => new BigInt64Array(b), size: 8 }],
  ['BigUint64Array', { make: (b) => new BigUint64Array(b), size: 8 }],
])

export const typedArrayKinds: readonly string[] = [...kinds.keys()]

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** Reverses the bytes of each `size`-byte element in place (to or from little-endian). */
function swapElements(bytes: Buffer, size: 1 | 2 | 4 | 8): void {
  if (size === 2) bytes.swap16()
  else if (size === 4) bytes.swap32()
  else if (size === 8) bytes.swap64()
}

// %TypedArray%.prototype[Symbol.toStringTag] reads the internal kind: a subclass, a
// Symbol.toStringTag of the value's own or a plain object cannot fake it.
const kindGetter = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Int8Array.prototype),
  Symbol.toStringTag,
)?.get

/** The kind of a typed array (`'Float32Array'`); undefined for anything else. */
export function typedArrayKind(value: object): string | undefined {
  const kind: unknown = kindGetter?.call(value)
  return typeof kind === 'string' ? kind : undefined
}

// A buffer handed to another thread (transferred) is detached: it holds no bytes, and
// Buffer.from refuses it. Every empty one is written as no bytes.

/** The bytes a view holds, as base64 (only the viewed bytes). */
export function viewToBase64(view: ArrayBufferView): string {
  if (view.byteLength === 0) return ''
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64')
}

/** The bytes a buffer holds, as base64. */
export function bufferToBase64(buffer: ArrayBuffer | SharedArrayBuffer): string {
  return buffer.byteLength === 0 ? '' : Buffer.from(buffer).toString('base64')
}

/**
 * The elements of a typed array of a listed kind as little-endian bytes in base64 (only the
 * viewed bytes); undefined for a kind not in the list.
 */
export function typedArrayToBase64(value: ArrayBufferView, kind: string): string | undefined {
  const k = kinds.get(kind)
  if (k === undefined) return undefined
  if (littleEndian || k.size === 1 || value.byteLength === 0) return viewToBase64(value)
  const copy = Buffer.from(Buffer.from(value.buffer, value.byteOffset, value.byteLength))
  swapElements(copy, k.size)
  return copy.toString('base64')
}

/**
 * A Float32Array element as the shortest decimal that is the same float32 (0.1, where the
 * element reads as 0.10000000149011612): what the producer most likely wrote, for people.
 */
export function shortestFloat32(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x
  for (let digits = 1; digits < 9; digits++) {
    const n = Number(x.toPrecision(digits))
    if (Math.fround(n) === x) return n
  }
  return x
}

// One pass with no backtracking: an anchored `^[...]*={0,2}$` takes 0.2 s to refuse 8 MB.
const notBase64 = /[^A-Za-z0-9+/=]/

/** The bytes of base64 text as the encoder writes it (padded); undefined for anything else. */
export function strictBase64(v: unknown): Buffer | undefined {
  if (typeof v !== 'string' || v.length % 4 !== 0 || notBase64.test(v)) return undefined
  // Padding: at most two `=`, only at the end.
  const pad = v.indexOf('=')
  if (pad !== -1 && (pad < v.length - 2 || v.charCodeAt(v.length - 1) !== 0x3d)) return undefined
  return Buffer.from(v, 'base64')
}

/** A fresh ArrayBuffer holding `bytes` (Buffer.from may hand back a slice of its pool). */
function ownBuffer(bytes: Buffer): ArrayBuffer {
  const out = new ArrayBuffer(bytes.length)
  new Uint8Array(out).set(bytes)
  return out
}

/** The typed array a `typedarray` tag's fields stand for; undefined when a field is malformed. */
export function typedArrayFrom(k: unknown, v: unknown): TypedArray | undefined {
  const kind = typeof k === 'string' ? kinds.get(k) : undefined
  if (kind === undefined) return undefined
  const bytes = strictBase64(v)
  if (bytes === undefined || bytes.length % kind.size !== 0) return undefined
  const buffer = ownBuffer(bytes)
  if (!littleEndian) swapElements(Buffer.from(buffer), kind.size)
  return kind.make(buffer)
}

/** The ArrayBuffer an `arraybuffer` or `dataview` tag's `v` holds; undefined when malformed. */
export function arrayBufferFrom(v: unknown): ArrayBuffer | undefined {
  const bytes = strictBase64(v)
  return bytes === undefined ? undefined : ownBuffer(bytes)
}

/** The SharedArrayBuffer a `sharedarraybuffer` tag's `v` holds; undefined when malformed. */
export function sharedArrayBufferFrom(v: unknown): SharedArrayBuffer | undefined {
  const bytes = strictBase64(v)
  if (bytes === undefined) return undefined
  const out = new SharedArrayBuffer(bytes.length)
  new Uint8Array(out).set(bytes)
  return out
}

/**
 * The tags of binary data (compared byte by byte, as a Uint8Array is, and shown by name,
 * size and bytes in hex: `Buffer(3 bytes)<01 02 ff>`), with the name each is shown by.
 */
export const binaryNames: Readonly<Record<string, string>> = {
  buffer: 'Buffer',
  bytes: 'Uint8Array',
  arraybuffer: 'ArrayBuffer',
  sharedarraybuffer: 'SharedArrayBuffer',
  dataview: 'DataView',
}
