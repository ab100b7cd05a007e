/**
 * Payloads as the user's data: a typed-JSON node read as the value it stands for, so
 * paths name what the stage returned (`$.receivedAt`, `$.tags[1]`, `$.unit["SKU-42"]`)
 * and never the tags that store it (`$.receivedAt.v`, `$.tags.v[1]`). Date, BigInt,
 * undefined, NaN and Error tags are single values; Set, Map, typed arrays, binary data
 * (by byte) and the wrapper of an object that has its own `$t` key are containers.
 */
import {
  binaryNames,
  type PathPart,
  type Segment,
  shortestFloat32,
  strictBase64,
  TAG,
  type TypedArray,
  typedArrayFrom,
} from '../codec/index.js'

export type Shape =
  | { kind: 'leaf' }
  | { kind: 'array'; items: readonly unknown[] }
  | { kind: 'set'; items: readonly unknown[] }
  /**
   * A typed array (`Float32Array`...) or binary data (`Buffer`, `ArrayBuffer`...): its
   * elements (bytes) as typed JSON, compared one by one.
   */
  | { kind: 'typed'; name: string; items: readonly unknown[] }
  | { kind: 'object'; fields: Record<string, unknown> }
  /**
   * `keyed` when every key is a string or a finite number, each written differently
   * (then an entry's path is its key); otherwise null, and the entries are walked as
   * `[key, value]` pairs by position.
   */
  | { kind: 'map'; pairs: readonly (readonly [unknown, unknown])[]; keyed: Map<PathPart, unknown> | null }

const leaf: Shape = { kind: 'leaf' }

const plainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/** A tag exactly as the codec writes a container: `$t` and `v`, nothing else. */
function container(o: Record<string, unknown>): boolean {
  return Object.hasOwn(o, 'v') && Object.keys(o).length === 2
}

function keyedEntries(pairs: readonly (readonly [unknown, unknown])[]): Map<PathPart, unknown> | null {
  const out = new Map<PathPart, unknown>()
  const spelled = new Set<string>()
  for (const [k, v] of pairs) {
    if (typeof k !== 'string' && !(typeof k === 'number' && Number.isFinite(k))) return null
    if (spelled.has(String(k))) return null
    spelled.add(String(k))
    // A path's index is a whole number from 0 (`$.m[3]`): other number keys are named by
    // how they are written (`$.m["-1"]`, `$.m["0.5"]`), so the path parses back.
    out.set(typeof k === 'number' && Number.isSafeInteger(k) && k >= 0 ? k : String(k), v)
  }
  return out
}

/** An element of a typed array as typed JSON: a float32 as the decimal it was written as. */
export function typedElement(x: number | bigint, float32: boolean): unknown {
  if (typeof x === 'bigint') return { [TAG]: 'bigint', v: String(x) }
  if (Number.isNaN(x) || !Number.isFinite(x) || Object.is(x, -0))
    return { [TAG]: 'num', v: Object.is(x, -0) ? '-0' : String(x) }
  return float32 ? shortestFloat32(x) : x
}

/** True for a tag `typedArrayOf` reads (a typed array or binary data), well formed or not. */
export function isArrayTag(v: unknown): boolean {
  if (!plainObject(v)) return false
  const tag = v[TAG]
  return tag === 'typedarray' || (typeof tag === 'string' && Object.hasOwn(binaryNames, tag))
}

/**
 * A typed array's kind and its elements, decoded, and binary data (Buffer, ArrayBuffer,
 * DataView) as its bytes; undefined for any other node or a malformed tag.
 */
export function typedArrayOf(v: unknown): { name: string; elements: TypedArray | Uint8Array } | undefined {
  if (!plainObject(v) || !isArrayTag(v)) return undefined
  const tag = v[TAG] as string
  if (tag === 'typedarray') {
    if (Object.keys(v).length !== 3) return undefined
    const elements = typedArrayFrom(v.k, v.v)
    return elements === undefined ? undefined : { name: String(v.k), elements }
  }
  const bytes = container(v) ? strictBase64(v.v) : undefined
  return bytes === undefined ? undefined : { name: binaryNames[tag]!, elements: bytes }
}

/** What a typed-JSON node is in the user's data. Malformed tags are single values. */
export function shapeOf(v: unknown): Shape {
  if (Array.isArray(v)) return { kind: 'array', items: v }
  if (!plainObject(v)) return leaf
  const tag = v[TAG]
  if (typeof tag !== 'string') return { kind: 'object', fields: v }
  if (isArrayTag(v)) {
    const t = typedArrayOf(v)
    if (t === undefined) return leaf
    const items: unknown[] = []
    for (const x of t.elements) items.push(typedElement(x, t.name === 'Float32Array'))
    return { kind: 'typed', name: t.name, items }
  }
  if (!container(v)) return leaf
  const inner = v.v
  switch (tag) {
    case 'set':
      return Array.isArray(inner) ? { kind: 'set', items: inner } : leaf
    case 'map': {
      if (!Array.isArray(inner) || !inner.every((e) => Array.isArray(e) && e.length === 2)) return leaf
      const pairs = inner as [unknown, unknown][]
      return { kind: 'map', pairs, keyed: keyedEntries(pairs) }
    }
    case 'obj':
      // The codec wraps an object that has its own `$t` key; when that key holds a function
      // or a Symbol it is not written, and the wrapper holds the other fields.
      return plainObject(inner) ? { kind: 'object', fields: inner } : leaf
    default:
      return leaf
  }
}

/** True for `undefined` as a payload holds it: absent, or the `undef` tag. */
export function isUndefinedValue(v: unknown): boolean {
  return v === undefined || (plainObject(v) && v[TAG] === 'undef' && Object.keys(v).length === 1)
}

/** The children of a node with their path parts, in order; empty for a single value. */
export function childrenOf(v: unknown): [PathPart, unknown][] {
  const s = shapeOf(v)
  switch (s.kind) {
    case 'array':
    case 'set':
    case 'typed':
      return s.items.map((item, i) => [i, item])
    case 'object':
      return Object.keys(s.fields).map((k) => [k, s.fields[k]])
    case 'map':
      return s.keyed !== null ? [...s.keyed] : s.pairs.map((p, i) => [i, [p[0], p[1]]])
    default:
      return []
  }
}

/**
 * The value at a concrete (wildcard-free) path in the user's data; undefined when absent.
 * A key names an object's field or a Map entry by its key; an index names an item of an
 * array or a Set, or a Map entry whose key is that number.
 */
export function readPath(value: unknown, segments: readonly Segment[]): unknown {
  let cur = value
  for (const seg of segments) {
    const s = shapeOf(cur)
    if (seg.kind === 'key') {
      if (s.kind === 'object') {
        if (!Object.hasOwn(s.fields, seg.name)) return undefined
        cur = s.fields[seg.name]
      } else if (s.kind === 'map' && s.keyed !== null) {
        const hit = [...s.keyed].find(([k]) => String(k) === seg.name)
        if (hit === undefined) return undefined
        cur = hit[1]
      } else return undefined
    } else if (seg.kind === 'index') {
      if (s.kind === 'array' || s.kind === 'set' || s.kind === 'typed') {
        if (seg.index >= s.items.length) return undefined
        cur = s.items[seg.index]
      } else if (s.kind === 'map' && s.keyed?.has(seg.index)) {
        cur = s.keyed.get(seg.index)
      } else return undefined
    } else return undefined
  }
  return cur
}
