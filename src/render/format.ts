/**
 * Printing for people: payload values (typed JSON shown as what it stands for, control and
 * bidi characters made visible; src/codec/display.ts), times, durations and sizes.
 */
export {
  brief,
  briefPair,
  changedPair,
  characterCount,
  commonHead,
  commonTail,
  compact,
  count,
  type PairText,
  pretty,
  safeJson,
  visible,
  visibleLine,
  visibleName,
} from '../codec/display.js'

import { visibleLine as lineOf, changedPair as pairOf } from '../codec/display.js'

export { appendAll } from '../lists.js'

/**
 * What a stage threw, where a change holds it in place of an output (`{"$error": {...}}`:
 * production threw and the local build returned, or the other way round), said as a person
 * would: `threw RangeError [E_AMOUNT]: amount must be positive`, cut to `max` characters.
 * Undefined for any other value.
 */
export function thrownText(v: unknown, max: number): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined
  const keys = Object.keys(v)
  if (keys.length !== 1 || keys[0] !== '$error') return undefined
  const e = (v as { $error: unknown }).$error as { name?: unknown; message?: unknown; code?: unknown } | null
  if (typeof e !== 'object' || e === null || typeof e.message !== 'string') return undefined
  const name = typeof e.name === 'string' && e.name !== '' ? e.name : 'Error'
  const code = typeof e.code === 'string' || typeof e.code === 'number' ? ` [${e.code}]` : ''
  const text = lineOf(`threw ${name}${code}: ${e.message}`)
  return text.length > max ? `${text.slice(0, Math.max(1, max - 1))}…` : text
}

/** `changedPair`, with a thrown error on either side said as `thrownText` says it. */
export function changedOrThrown(recorded: unknown, local: unknown, max: number): ReturnType<typeof pairOf> {
  const r = thrownText(recorded, max)
  const l = thrownText(local, max)
  if (r === undefined && l === undefined) return pairOf(recorded, local, max)
  const p = pairOf(r === undefined ? recorded : '', l === undefined ? local : '', max)
  return { recorded: r ?? p.recorded, local: l ?? p.local }
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

/** Code points a terminal draws two columns wide: East Asian Wide and Fullwidth, and emoji. */
const WIDE: readonly (readonly [number, number])[] = [
  [0x1100, 0x115f],
  [0x231a, 0x231b],
  [0x2329, 0x232a],
  [0x23e9, 0x23ec],
  [0x23f0, 0x23f0],
  [0x23f3, 0x23f3],
  [0x25fd, 0x25fe],
  [0x2614, 0x2615],
  [0x2648, 0x2653],
  [0x26aa, 0x26ab],
  [0x26bd, 0x26be],
  [0x26c4, 0x26c5],
  [0x26d4, 0x26d4],
  [0x26ea, 0x26ea],
  [0x26f2, 0x26f5],
  [0x26fa, 0x26fa],
  [0x26fd, 0x26fd],
  [0x2705, 0x2705],
  [0x270a, 0x270b],
  [0x2728, 0x2728],
  [0x274c, 0x274c],
  [0x2753, 0x2755],
  [0x2757, 0x2757],
  [0x2795, 0x2797],
  [0x27b0, 0x27b0],
  [0x27bf, 0x27bf],
  [0x2b1b, 0x2b1c],
  [0x2b50, 0x2b50],
  [0x2b55, 0x2b55],
  [0x2e80, 0x303e],
  [0x3041, 0x33ff],
  [0x3400, 0x4dbf],
  [0x4e00, 0x9fff],
  [0xa000, 0xa4cf],
  [0xa960, 0xa97f],
  [0xac00, 0xd7a3],
  [0xf900, 0xfaff],
  [0xfe10, 0xfe19],
  [0xfe30, 0xfe6f],
  [0xff00, 0xff60],
  [0xffe0, 0xffe6],
  [0x16fe0, 0x16fe4],
  [0x17000, 0x18cff],
  [0x1b000, 0x1b2ff],
  [0x1f004, 0x1f004],
  [0x1f0cf, 0x1f0cf],
  [0x1f18e, 0x1f18e],
  [0x1f191, 0x1f19a],
  [0x1f200, 0x1f251],
  [0x1f300, 0x1f64f],
  [0x1f680, 0x1f6ff],
  [0x1f7e0, 0x1f7eb],
  [0x1f90c, 0x1f9ff],
  [0x1fa70, 0x1faff],
  [0x20000, 0x2fffd],
  [0x30000, 0x3fffd],
]

/** Combining marks, zero-width spaces and joiners, variation selectors: no column of their own. */
const ZERO_WIDTH: readonly (readonly [number, number])[] = [
  [0x0300, 0x036f],
  [0x0483, 0x0489],
  [0x0591, 0x05bd],
  [0x1ab0, 0x1aff],
  [0x1dc0, 0x1dff],
  [0x200b, 0x200f],
  [0x20d0, 0x20ff],
  [0xfe00, 0xfe0f],
  [0xfe20, 0xfe2f],
]

function within(table: readonly (readonly [number, number])[], code: number): boolean {
  let lo = 0
  let hi = table.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const [from, to] = table[mid]!
    if (code < from) hi = mid - 1
    else if (code > to) lo = mid + 1
    else return true
  }
  return false
}

/**
 * Made on first use: creating a Segmenter loads ICU's break rules (30-50 ms here), a cost
 * every command would pay at start-up although most never measure a non-ASCII text.
 */
let graphemes: Intl.Segmenter | undefined

/** Printable ASCII only: one column per character, no segmenting needed. */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/

/** An emoji drawn as a picture: with VS16 (✔️), joined (👨‍👩‍👧), or a flag's two letters. */
const EMOJI_SEQUENCE = /\ufe0f|\u200d|[\u{1f1e6}-\u{1f1ff}]{2}/u

/**
 * Columns `text` takes in a terminal (text already made visible, so no control characters):
 * 日本語 is six, not three. A small East Asian Width table, enough to line up columns, read
 * by user-perceived character: a character with its combining marks takes the columns of
 * its first code point, and an emoji sequence (👍🏽, ✔️, 👨‍👩‍👧) two, as terminals draw it.
 */
export function displayWidth(text: string): number {
  if (PRINTABLE_ASCII.test(text)) return text.length
  graphemes ??= new Intl.Segmenter('en', { granularity: 'grapheme' })
  let width = 0
  for (const { segment } of graphemes.segment(text)) {
    const code = segment.codePointAt(0)!
    if (segment.length > 1 && EMOJI_SEQUENCE.test(segment)) width += 2
    else if (within(ZERO_WIDTH, code)) continue
    else width += within(WIDE, code) ? 2 : 1
  }
  return width
}

/** `text` padded with spaces to `width` columns (as `padEnd` does for characters). */
export function padEndColumns(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - displayWidth(text)))
}
