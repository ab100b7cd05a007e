/** `--format unified`: a text diff (jsdiff) of the pretty-printed payloads of each stage that differs. */
import { formatPatch, structuredPatch } from 'diff'
import type { RecordChain } from '../bundle/types.js'
import { readPayload } from '../compare/scene.js'
import type { RecordResult } from '../replay/engine.js'
import { pretty, visible } from './format.js'
import type { Theme } from './theme.js'

/** Longest one unified diff may take, from its start, before it gives up (C5 in bench/). */
export const unifiedTimeoutMs = 50

/**
 * Texts whose differing middle (what is left once the common head and tail are cut off) is
 * longer than this are not handed to jsdiff: a line diff of that much changed text is
 * unreadable, and tokenising it alone would cost more than the whole budget.
 */
export const unifiedMaxSpan = 1024 * 1024

export type UnifiedOutcome =
  | { patch: string }
  | { fallback: 'too-large'; span: number; size: number }
  | { fallback: 'timeout' }

/** Length of the span where `a` and `b` differ: the longer text minus common head and tail. */
export function differingSpan(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  let head = 0
  while (head < n && a.charCodeAt(head) === b.charCodeAt(head)) head++
  let tail = 0
  while (tail < n - head && a.charCodeAt(a.length - 1 - tail) === b.charCodeAt(b.length - 1 - tail)) tail++
  return Math.max(a.length, b.length) - head - tail
}

/** The unified diff of two texts within the budget, counted from `started` (performance.now). */
export function unifiedOutcome(
  recorded: string,
  local: string,
  label: string,
  started = performance.now(),
): UnifiedOutcome {
  const span = differingSpan(recorded, local)
  if (span > unifiedMaxSpan)
    return { fallback: 'too-large', span, size: Math.max(recorded.length, local.length) }
  // jsdiff checks its timeout between edit-length rounds, and a round over thousands of
  // changed lines takes milliseconds: give it four fifths of what is left.
  const timeout = Math.max(1, Math.floor(0.8 * (unifiedTimeoutMs - (performance.now() - started))))
  const w = lineWindow(recorded, local, context)
  const patch = structuredPatch(`recorded/${label}`, `local/${label}`, w.a, w.b, undefined, undefined, {
    context,
    timeout,
  })
  if (patch === undefined) return { fallback: 'timeout' }
  for (const h of patch.hunks) {
    h.oldStart += w.skipped
    h.newStart += w.skipped
  }
  return { patch: formatPatch(patch) }
}

const context = 3

/**
 * The lines of `a` and `b` that jsdiff needs to see: from `context` lines before the line of
 * the first difference to `context` lines after the line of the last, with `skipped`, the
 * number of lines cut from the top (identical in both). Cutting the common head and tail
 * here, in one pass over the characters, keeps jsdiff from splitting a whole large payload
 * into lines when a few of them changed.
 */
export function lineWindow(
  a: string,
  b: string,
  contextLines: number,
): { a: string; b: string; skipped: number } {
  const n = Math.min(a.length, b.length)
  let head = 0
  while (head < n && a.charCodeAt(head) === b.charCodeAt(head)) head++
  let tail = 0
  while (tail < n - head && a.charCodeAt(a.length - 1 - tail) === b.charCodeAt(b.length - 1 - tail)) tail++
  // Start at the beginning of the line holding the first difference, then `contextLines` up.
  let start = head === 0 ? 0 : a.lastIndexOf('\n', head - 1) + 1
  for (let k = 0; k < contextLines && start > 0; k++)
    start = start < 2 ? 0 : a.lastIndexOf('\n', start - 2) + 1
  // End after the newline that closes the line holding the last difference, then
  // `contextLines` down. The tail is common to both, so one cut fits both texts.
  let cut = 0
  let nl = tail === 0 ? -1 : a.indexOf('\n', a.length - tail)
  if (nl >= 0) {
    for (let k = 0; k < contextLines; k++) {
      const next = a.indexOf('\n', nl + 1)
      if (next < 0) break
      nl = next
    }
    cut = a.length - nl - 1
  }
  let skipped = 0
  for (let i = a.indexOf('\n'); i >= 0 && i < start; i = a.indexOf('\n', i + 1)) skipped++
  return { a: a.slice(start, a.length - cut), b: b.slice(start, b.length - cut), skipped }
}

/** The unified diff of two texts, or undefined when it falls back (see unifiedOutcome). */
export function unifiedDiff(recorded: string, local: string, label: string): string | undefined {
  const r = unifiedOutcome(recorded, local, label)
  return 'patch' in r ? r.patch : undefined
}

/**
 * From the stored payload texts, as `replay --format unified` renders one stage: the texts
 * are compared before anything is decoded or pretty-printed, so a pair that differs
 * throughout falls back at once, whatever its size.
 */
export function unifiedFromPayloads(recordedText: string, localText: string, label: string): UnifiedOutcome {
  const started = performance.now()
  const span = differingSpan(recordedText, localText)
  if (span > unifiedMaxSpan)
    return { fallback: 'too-large', span, size: Math.max(recordedText.length, localText.length) }
  return unifiedOutcome(pretty(readPayload(recordedText)), pretty(readPayload(localText)), label, started)
}

/** Lines longer than this (a long string value) print as their head and tail. */
export const unifiedMaxLine = 1000

/** A line cut to its first and last characters around a count, never inside a surrogate pair. */
export function foldLine(line: string): string {
  if (line.length <= unifiedMaxLine) return line
  const keep = unifiedMaxLine / 2 - 20
  let head = keep
  if (/[\uDC00-\uDFFF]/.test(line.charAt(head))) head--
  let tail = line.length - keep
  if (/[\uDC00-\uDFFF]/.test(line.charAt(tail))) tail++
  return `${line.slice(0, head)} … (${(tail - head).toLocaleString('en-US')} characters) … ${line.slice(tail)}`
}

const mib = (n: number): string =>
  n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`

export function renderUnified(result: RecordResult, chain: RecordChain, t: Theme): string {
  const out: string[] = []
  for (const s of result.stages) {
    if (s.status !== 'diverged' && s.status !== 'inherited') continue
    const capture = [...chain.captures].reverse().find((c) => c.stage === s.stage)
    const expectation = chain.expectations.find((x) => x.stage === s.stage)
    const recordedText = expectation?.output ?? capture?.output ?? null
    const localText = result.outputs?.[s.stage]
    if (recordedText === null || localText === undefined) continue
    const r = unifiedFromPayloads(recordedText, localText, s.stage)
    if ('fallback' in r) {
      out.push(
        t.warn(
          r.fallback === 'too-large'
            ? `${s.stage}: payloads differ across ${mib(r.span)} of ${mib(r.size)}, too much for a unified diff; see the structural changes above`
            : `${s.stage}: payloads too different to diff within ${unifiedTimeoutMs} ms; see the structural changes above`,
        ),
      )
      continue
    }
    for (const whole of visible(r.patch).split('\n')) {
      const line = foldLine(whole)
      if (line.startsWith('+') && !line.startsWith('+++')) out.push(t.added(line))
      else if (line.startsWith('-') && !line.startsWith('---')) out.push(t.removed(line))
      else if (line.startsWith('@@')) out.push(t.info(line))
      else out.push(line)
    }
  }
  return out.join('\n')
}
