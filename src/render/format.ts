/**
 * Printing payload values for people: compact one-line JSON with typed-JSON tags shown
 * as what they stand for (`Date(...)`, `12n`, `NaN`), folded to a width budget, and with
 * every control, C1 and bidi character made visible so a hostile payload can never drive
 * the terminal.
 */
import { shortestFloat32, strictBase64, type TypedArray, typedArrayFrom } from '../codec/index.js'

// C0 except tab/newline, DEL, C1, bidi embeddings/overrides/isolates, line/para separators.
const UNSAFE =
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const UNSAFE_WITH_LAYOUT =
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

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

/** JSON text safe to print: control characters JSON leaves raw (C1, bidi) are escaped. */
export function safeJson(value: unknown, indent?: number): string {
  return (JSON.stringify(value, null, indent) ?? 'null').replace(
    /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

class Budget extends Error {}

/**
 * A field of a typed-JSON tag as text. A stranger's file may put an object there, and
 * `String({"toString": ""})` throws; JSON text never calls a method.
 */
function fieldText(v: unknown): string {
  return typeof v === 'string' ? v : (JSON.stringify(v) ?? 'undefined')
}

/** Most elements of a typed array shown on one line; the line is cut to its width anyway. */
const maxElements = 32

/** `Float32Array(3)[1.5,2,-0]`, the first maxElements elements. */
function typedArrayText(kind: string, a: TypedArray): string {
  const shown: string[] = []
  for (let i = 0; i < Math.min(a.length, maxElements); i++) {
    const x = a[i]!
    shown.push(
      typeof x === 'bigint'
        ? `${x}n`
        : Object.is(x, -0)
          ? '-0'
          : kind === 'Float32Array'
            ? String(shortestFloat32(x))
            : String(x),
    )
  }
  return `${kind}(${a.length})[${shown.join(',')}${a.length > maxElements ? ',…' : ''}]`
}

/** Binary tags shown by name and size (`ArrayBuffer(3 bytes)`), like Buffer's. */
const binaryNames: Readonly<Record<string, string>> = {
  arraybuffer: 'ArrayBuffer',
  sharedarraybuffer: 'SharedArrayBuffer',
  dataview: 'DataView',
}

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
    case 'buffer':
    case 'bytes': {
      const n =
        typeof v === 'string'
          ? Math.floor((v.length * 3) / 4) - (v.endsWith('==') ? 2 : v.endsWith('=') ? 1 : 0)
          : 0
      return `${t === 'buffer' ? 'Buffer' : 'Uint8Array'}(${n} bytes)`
    }
    // A malformed typed-array or binary tag is shown as the object it is, as decode reads it.
    case 'typedarray': {
      const a = typedArrayFrom(o.k, v)
      return a === undefined ? undefined : typedArrayText(fieldText(o.k), a)
    }
    case 'arraybuffer':
    case 'sharedarraybuffer':
    case 'dataview': {
      const bytes = strictBase64(v)
      return bytes === undefined ? undefined : `${binaryNames[t]}(${bytes.length} bytes)`
    }
    case 'unrecorded':
      return `<unrecorded: ${fieldText(o.reason)}${o.size !== undefined ? `, ${fieldText(o.size)} bytes` : ''}>`
    case 'unreadable':
      return `<unreadable payload: ${fieldText(o.message)}>`
    default:
      return undefined
  }
}

/**
 * One-line rendering of a JSON-shaped value, at most `max` characters (then `…`).
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
    if (o.$t === 'map' || o.$t === 'set') {
      put(o.$t === 'map' ? 'Map' : 'Set')
      walk(o.v)
      return
    }
    if (o.$t === 'obj') {
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
    return `${out.slice(0, Math.max(0, max - 1))}…`
  }
}

/** Pretty multi-line rendering (for --expand), with control characters made visible. */
export function pretty(value: unknown): string {
  return visible(safeJson(value, 2))
}

export function formatTime(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '-'
  try {
    return new Date(ms).toISOString().replace('T', ' ').replace('Z', 'Z')
  } catch {
    return String(ms)
  }
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '-'
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`
  return `${(ms / 1000).toFixed(2)} s`
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(2)} GiB`
}
