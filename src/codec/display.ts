/**
 * Typed JSON as people read it: tags shown as what they stand for (`Date(...)`, `12n`,
 * `Set[...]`, `Map{"k"=>v}`, `undefined`), on one line folded to a width budget or pretty
 * over several, and with every control, C1 and bidi character made visible so a hostile
 * payload can never drive the terminal. Pure and dependency-free: `compare/` builds its
 * messages with it and `render/` its lines.
 */

import { binaryNames, shortestFloat32, strictBase64, type TypedArray, typedArrayFrom } from './binary.js'

// C0 except tab/newline, DEL, C1, bidi embeddings/overrides/isolates, line/para separators,
// and the zero-width space, word joiner and BOM, which make two different texts print alike
// (U+200C and U+200D are left: scripts and emoji sequences need them).
const UNSAFE =
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b\u200e\u200f\u2028\u2029\u202a-\u202e\u2060\u2066-\u2069\ufeff]/g
const UNSAFE_WITH_LAYOUT =
  /[\u0000-\u001f\u007f-\u009f\u061c\u200b\u200e\u200f\u2028\u2029\u202a-\u202e\u2060\u2066-\u2069\ufeff]/g

function escapeChar(ch: string): string {
  const code = ch.charCodeAt(0)
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`
}

/** Makes control and bidi characters visible (`\x1b`, `\u202e`). Keeps tab and newline. */
export function visible(text: string): string {
  return text.replace(UNSAFE, escapeChar)
}

/** Like `visible`, and newlines and tabs too: for text that must stay on one line. */
export function visibleLine(text: string): string {
  return text.replace(UNSAFE_WITH_LAYOUT, escapeChar)
}

/**
 * Characters that take no room on a terminal and are left unescaped (scripts and emoji
 * need them): joiners, the soft hyphen, variation selectors, Hangul fillers.
 */
const INVISIBLE = /^(?:\u00ad|\u115f|\u1160|\u200c|\u200d|\u3164|\uffa0|[\ufe00-\ufe0f])*$/

/**
 * A name (a stage, a record key) on one line, as `visibleLine` shows it, and quoted when it
 * would not show as itself: empty, made only of characters that take no room, with space at
 * either end, or starting with a quote (so `""` the name and the empty name differ).
 * Inside the quotes, a backslash and a quote are escaped too.
 */
export function visibleName(text: string): string {
  if (!(INVISIBLE.test(text) || /^\s|\s$|^"/.test(text))) return visibleLine(text)
  return `"${visibleLine(text.replace(/[\\"]/g, '\\$&'))}"`
}

const JSON_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/** JSON text safe to print: control characters JSON leaves raw (C1, bidi) are escaped. */
export function safeJson(value: unknown, indent?: number): string {
  return (JSON.stringify(value, null, indent) ?? 'null').replace(
    JSON_UNSAFE,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

/**
 * A field of a typed-JSON tag as text. A stranger's file may put an object there, and
 * `String({"toString": ""})` throws; JSON text never calls a method.
 */
function fieldText(v: unknown): string {
  return typeof v === 'string' ? v : (JSON.stringify(v) ?? 'undefined')
}

function errorTagText(v: unknown): string {
  const e = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>
  const name = e.name === undefined ? 'Error' : fieldText(e.name)
  const code = e.code === undefined ? '' : ` [${fieldText(e.code)}]`
  return `[${name}${code}: ${e.message === undefined ? '' : fieldText(e.message)}]`
}

/** Most elements of a typed array shown on one line; the line is cut to its width anyway. */
const maxElements = 32

/** An element of a typed array: `1.5`, `-0`, `12n`; a float32 as the decimal it was written as. */
function elementText(kind: string, x: number | bigint): string {
  if (typeof x === 'bigint') return `${x}n`
  if (Object.is(x, -0)) return '-0'
  return kind === 'Float32Array' ? String(shortestFloat32(x)) : String(x)
}

/** `Float32Array(3)[1.5,2,-0]`, the first maxElements elements. */
function typedArrayText(kind: string, a: TypedArray): string {
  const shown: string[] = []
  for (let i = 0; i < Math.min(a.length, maxElements); i++) shown.push(elementText(kind, a[i]!))
  return `${kind}(${a.length})[${shown.join(',')}${a.length > maxElements ? ',…' : ''}]`
}

/** The bytes a well-formed binary tag holds; undefined for any other node. */
function binaryBytes(o: Record<string, unknown>): Uint8Array | undefined {
  return typeof o.$t === 'string' && Object.hasOwn(binaryNames, o.$t) && isContainer(o)
    ? strictBase64(o.v)
    : undefined
}

/**
 * A tag with `$t` and `v` and nothing else, as the codec writes a Set, a Map, binary data
 * and a wrapped object. Anything more or less is shown as the object it is, as the diff
 * compares it (src/compare/typed.ts), so two that differ never read the same.
 */
function isContainer(o: Record<string, unknown>): boolean {
  return Object.hasOwn(o, 'v') && Object.keys(o).length === 2
}

const isPlainObject = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v)

const hex = (byte: number): string => byte.toString(16).padStart(2, '0')

/** `Buffer(3 bytes)`, the name and size of a binary tag's value. */
const binaryHead = (t: string, bytes: Uint8Array): string => `${binaryNames[t]}(${bytes.length} bytes)`

/** `<01 02 ff>`: the first maxElements bytes in hex. */
function bytesText(bytes: Uint8Array): string {
  const shown: string[] = []
  for (let i = 0; i < Math.min(bytes.length, maxElements); i++) shown.push(hex(bytes[i]!))
  return `<${shown.join(' ')}${bytes.length > maxElements ? ' …' : ''}>`
}

/** The text of a tag that stands for one value (not a container); undefined for others. */
function tagText(o: Record<string, unknown>): string | undefined {
  const t = o.$t
  if (typeof t !== 'string') return undefined
  const v = o.v
  switch (t) {
    case 'date':
      return `Date(${v === null ? 'Invalid' : fieldText(v)})`
    case 'bigint':
      return `${fieldText(v)}n`
    case 'num':
      return fieldText(v)
    case 'undef':
      return 'undefined'
    // A malformed typed-array or binary tag is shown as the object it is, as decode reads it.
    case 'typedarray': {
      const a = Object.keys(o).length === 3 ? typedArrayFrom(o.k, v) : undefined
      return a === undefined ? undefined : typedArrayText(fieldText(o.k), a)
    }
    case 'buffer':
    case 'bytes':
    case 'arraybuffer':
    case 'sharedarraybuffer':
    case 'dataview': {
      const bytes = binaryBytes(o)
      return bytes === undefined ? undefined : `${binaryHead(t, bytes)}${bytesText(bytes)}`
    }
    case 'error':
      return errorTagText(v)
    case 'unrecorded':
      return `<unrecorded: ${fieldText(o.reason)}${o.size !== undefined ? `, ${fieldText(o.size)} bytes` : ''}>`
    case 'unreadable':
      return `<unreadable payload: ${fieldText(o.message)}>`
    default:
      return undefined
  }
}

/** Map entries as `[key, value]` pairs, or undefined when the tag's `v` is not that shape. */
function mapEntries(v: unknown): [unknown, unknown][] | undefined {
  if (!Array.isArray(v)) return undefined
  for (const e of v) if (!Array.isArray(e) || e.length !== 2) return undefined
  return v as [unknown, unknown][]
}

const isHigh = (code: number): boolean => code >= 0xd800 && code <= 0xdbff
const isLow = (code: number): boolean => code >= 0xdc00 && code <= 0xdfff

class Budget extends Error {}

/**
 * One-line rendering of a typed-JSON value, at most `max` characters (then `…`).
 * Stops walking as soon as the budget is spent, so huge payloads cost little.
 */
export function compact(value: unknown, max = 160): string {
  let out = ''
  const put = (s: string): void => {
    out += s
    if (out.length > max) throw new Budget()
  }
  const walk = (v: unknown): void => {
    if (v === undefined) {
      put('undefined')
      return
    }
    if (v === null || typeof v !== 'object') {
      put(visibleLine(JSON.stringify(v) ?? String(v)))
      return
    }
    if (Array.isArray(v)) {
      put('[')
      v.forEach((item, i) => {
        if (i > 0) put(',')
        walk(item)
      })
      put(']')
      return
    }
    const o = v as Record<string, unknown>
    const tagged = tagText(o)
    if (tagged !== undefined) {
      put(visibleLine(tagged))
      return
    }
    if (o.$t === 'map' && isContainer(o) && Array.isArray(o.v)) {
      const entries = mapEntries(o.v)
      if (entries === undefined) {
        put('Map')
        walk(o.v)
        return
      }
      put('Map{')
      entries.forEach(([k, item], i) => {
        if (i > 0) put(',')
        walk(k)
        put('=>')
        walk(item)
      })
      put('}')
      return
    }
    if (o.$t === 'set' && isContainer(o) && Array.isArray(o.v)) {
      put('Set')
      walk(o.v)
      return
    }
    if (o.$t === 'obj' && isContainer(o) && isPlainObject(o.v)) {
      walk(o.v)
      return
    }
    put('{')
    let first = true
    for (const k of Object.keys(o)) {
      if (!first) put(',')
      first = false
      put(`${visibleLine(JSON.stringify(k))}:`)
      walk(o[k])
    }
    put('}')
  }
  try {
    walk(value)
    return out
  } catch (err) {
    if (!(err instanceof Budget)) throw err
    let end = Math.max(0, max - 1)
    // Never end on the first half of a surrogate pair.
    if (end > 0 && isHigh(out.charCodeAt(end - 1))) end--
    return `${out.slice(0, end)}…`
  }
}

/**
 * Pretty multi-line rendering (for --expand, the HTML report and unified diffs): JSON
 * indented by two, typed-JSON tags shown as what they stand for, control characters
 * made visible. A payload without tags is JSON.stringify's own output.
 */
export function pretty(value: unknown): string {
  const text = safeJson(value, 2)
  // JSON.stringify writes every key literally, so a tag always shows as `"$t": `.
  if (!text.includes('"$t": ')) return visible(text)
  const parts: string[] = []
  const walk = (v: unknown, indent: string): void => {
    if (v === undefined) {
      parts.push('undefined')
      return
    }
    if (v === null || typeof v !== 'object') {
      parts.push(safeJson(v))
      return
    }
    const inner = `${indent}  `
    const list = (open: string, close: string, items: readonly unknown[], each: (x: unknown) => void) => {
      if (items.length === 0) {
        parts.push(`${open}${close}`)
        return
      }
      parts.push(`${open}\n`)
      items.forEach((x, i) => {
        parts.push(inner)
        each(x)
        parts.push(i < items.length - 1 ? ',\n' : '\n')
      })
      parts.push(`${indent}${close}`)
    }
    if (Array.isArray(v)) {
      list('[', ']', v, (x) => walk(x, inner))
      return
    }
    const o = v as Record<string, unknown>
    /** Cells in rows of sixteen, so a unified diff shows the rows that differ. */
    const rows = (
      open: string,
      close: string,
      cells: readonly string[],
      sep: string,
      rowEnd: string,
    ): void => {
      if (cells.length === 0) {
        parts.push(`${open}${close}`)
        return
      }
      parts.push(`${open}\n`)
      for (let i = 0; i < cells.length; i += 16) {
        const last = i + 16 >= cells.length
        parts.push(`${inner}${cells.slice(i, i + 16).join(sep)}${last ? '' : rowEnd}\n`)
      }
      parts.push(`${indent}${close}`)
    }
    const bytes = binaryBytes(o)
    if (bytes !== undefined) {
      rows(`${binaryHead(o.$t as string, bytes)} <`, '>', Array.from(bytes, hex), ' ', '')
      return
    }
    // Every element, not the first maxElements: a unified diff shows the line that changed.
    const elements =
      o.$t === 'typedarray' && Object.keys(o).length === 3 ? typedArrayFrom(o.k, o.v) : undefined
    if (elements !== undefined) {
      const kind = fieldText(o.k)
      const cells: string[] = []
      for (const x of elements) cells.push(elementText(kind, x))
      rows(`${visibleLine(kind)}(${elements.length}) [`, ']', cells, ', ', ',')
      return
    }
    const tagged = tagText(o)
    if (tagged !== undefined) {
      parts.push(visibleLine(tagged))
      return
    }
    if (o.$t === 'map' && isContainer(o) && mapEntries(o.v) !== undefined) {
      list('Map {', '}', mapEntries(o.v)!, (e) => {
        const [k, item] = e as [unknown, unknown]
        walk(k, inner)
        parts.push(' => ')
        walk(item, inner)
      })
      return
    }
    if ((o.$t === 'set' || o.$t === 'map') && isContainer(o) && Array.isArray(o.v)) {
      list(o.$t === 'set' ? 'Set [' : 'Map [', ']', o.v, (x) => walk(x, inner))
      return
    }
    if (o.$t === 'obj' && isContainer(o) && isPlainObject(o.v)) {
      walk(o.v, indent)
      return
    }
    list('{', '}', Object.keys(o), (k) => {
      parts.push(`${safeJson(k)}: `)
      walk(o[k as string], inner)
    })
  }
  walk(value, '')
  return visible(parts.join(''))
}

/**
 * Length of the common head of `a` and `b`, never ending between the two halves of a
 * surrogate pair. Compares growing slices first (native string comparison), then
 * characters, so a one-character change at the end of megabytes costs well under a
 * millisecond.
 */
export function commonHead(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  let head = 0
  let step = 64
  while (head < n) {
    const end = Math.min(n, head + step)
    if (a.slice(head, end) !== b.slice(head, end)) break
    head = end
    step = Math.min(step * 2, 1 << 16)
  }
  while (head < n && a.charCodeAt(head) === b.charCodeAt(head)) head++
  if (head > 0 && head < a.length && isHigh(a.charCodeAt(head - 1))) head--
  return head
}

/**
 * Length of the common tail of `a` and `b` that does not reach into the first `head`
 * characters of either, never starting between the halves of a surrogate pair.
 */
export function commonTail(a: string, b: string, head = 0): number {
  const n = Math.min(a.length, b.length) - head
  let tail = 0
  let step = 64
  while (tail < n) {
    const end = Math.min(n, tail + step)
    if (a.slice(a.length - end, a.length - tail) !== b.slice(b.length - end, b.length - tail)) break
    tail = end
    step = Math.min(step * 2, 1 << 16)
  }
  while (tail < n && a.charCodeAt(a.length - 1 - tail) === b.charCodeAt(b.length - 1 - tail)) tail++
  if (tail > 0 && tail < a.length && isLow(a.charCodeAt(a.length - tail))) tail--
  return tail
}

/**
 * How many characters `s` holds as people count them: a surrogate pair (an emoji) is one.
 * A string with no surrogate is counted without a loop over it.
 */
export function characterCount(s: string): number {
  if (!/[\ud800-\udfff]/.test(s)) return s.length
  let n = 0
  for (let i = 0; i < s.length; i = charEnd(s, i)) n++
  return n
}

/** `n` with thousands separators, as every count people read is written. */
export function count(n: number): string {
  return n.toLocaleString('en-US')
}

/** The characters of a string as `compact` shows them inside its quotes. */
function quotedInner(s: string): string {
  return visibleLine(JSON.stringify(s)).slice(1, -1)
}

/** Where the character of `s` that starts at `i` ends: a surrogate pair is one character. */
function charEnd(s: string, i: number): number {
  return isHigh(s.charCodeAt(i)) && i + 1 < s.length && isLow(s.charCodeAt(i + 1)) ? i + 2 : i + 1
}

/** Where the character of `s` that ends at `i` starts. */
function charStart(s: string, i: number): number {
  return i >= 2 && isLow(s.charCodeAt(i - 1)) && isHigh(s.charCodeAt(i - 2)) ? i - 2 : i - 1
}

/**
 * Windows on two strings that first differ at `at`, each holding its character there (or
 * its end, when `at` is its length), as JSON string text of at most `room` characters
 * (quotes and `…` marks included), `…` where it was cut. Both start at the same character,
 * so what they share reads the same; they grow by the room characters take as shown (`\n`
 * and `\u202e` take more than one): about a third of the room before the difference, then
 * after it, each as far as it fits, then before it again.
 */
function windowPair(a: string, b: string, at: number, room: number): [string, string] {
  let from = at > 0 && at < a.length && isLow(a.charCodeAt(at)) ? charStart(a, at + 1) : at
  const side = (s: string) => {
    const end = from < s.length ? charEnd(s, from) : from
    return { s, end, body: quotedInner(s.slice(from, end)).length }
  }
  const sides = [side(a), side(b)]
  const size = (s: string, f: number, e: number, inner: number): number =>
    inner + 2 + (f > 0 ? 1 : 0) + (e < s.length ? 1 : 0)
  // The characters before `at` are the same on both sides, and so is the room they take.
  const growBack = (most: number): void => {
    let before = 0
    while (from > 0 && before < most) {
      const f = charStart(a, from)
      const w = quotedInner(a.slice(f, from)).length
      if (sides.some((x) => size(x.s, f, x.end, x.body + w) > room)) return
      from = f
      before += w
      for (const x of sides) x.body += w
    }
  }
  growBack(Math.max(1, Math.floor((room - 4) / 3)))
  for (const x of sides) {
    while (x.end < x.s.length) {
      const e = charEnd(x.s, x.end)
      const w = quotedInner(x.s.slice(x.end, e)).length
      if (size(x.s, from, e, x.body + w) > room) break
      x.end = e
      x.body += w
    }
  }
  growBack(Number.POSITIVE_INFINITY)
  const text = ({ s, end }: { s: string; end: number }): string =>
    `${from > 0 ? '"…' : '"'}${quotedInner(s.slice(from, end))}${end < s.length ? '…' : ''}"`
  return [text(sides[0]!), text(sides[1]!)]
}

/** Two values as one change line shows them (see `changedPair`). */
export interface PairText {
  recorded: string
  local: string
  /** Where two long strings first differ: `at character 5,242,880 of 5,242,880`. */
  at?: string
}

/**
 * The recorded and local values of a change, each in at most `max` characters. Two
 * strings too long to show whole are shown as windows around their first difference
 * (`"…xxxxA"` → `"…xxxxB"`) with where that is, counted in characters from 1: their
 * common head would otherwise fill both sides and hide it.
 */
export function changedPair(recorded: unknown, local: unknown, max: number): PairText {
  if (typeof recorded !== 'string' || typeof local !== 'string') {
    return { recorded: compact(recorded, max), local: compact(local, max) }
  }
  const fits = (s: string): boolean => s.length + 2 <= max && quotedInner(s).length + 2 <= max
  if (fits(recorded) && fits(local)) return { recorded: compact(recorded, max), local: compact(local, max) }
  const at = commonHead(recorded, local)
  const position = characterCount(recorded.slice(0, at)) + 1
  const [rn, ln] = [characterCount(recorded), characterCount(local)]
  const where =
    rn === ln
      ? `at character ${count(position)} of ${count(rn)}`
      : `at character ${count(position)}; ${count(rn)} → ${count(ln)} characters`
  const [r, l] = windowPair(recorded, local, at, max)
  return { recorded: r, local: l, at: where }
}

/**
 * A value in a one-line message (`why`, `verify`, `diff`): cut to `max` characters with
 * the full length of its rendering said, so a stage output of megabytes at the path asked
 * about still gives a line, not a screenful. Absent is `nothing`.
 */
export function brief(value: unknown, max = 120): string {
  if (value === undefined) return 'nothing'
  const short = compact(value, max)
  if (!short.endsWith('…')) return short
  const whole = compact(value, Number.POSITIVE_INFINITY)
  if (whole.length <= max) return whole
  return `${short} (${count(whole.length)} characters)`
}

/** Two values of a change in a one-line message: `brief` each, or windows on two long strings. */
export function briefPair(recorded: unknown, local: unknown, max = 120): PairText {
  if (typeof recorded === 'string' && typeof local === 'string') return changedPair(recorded, local, max)
  return { recorded: brief(recorded, max), local: brief(local, max) }
}
