/** `--format unified`: a text diff (jsdiff) of the pretty-printed payloads of each stage that differs. */
import { formatPatch, structuredPatch } from 'diff'
import type { RecordChain } from '../bundle/types.js'
import { readPayload } from '../compare/scene.js'
import type { RecordResult } from '../replay/engine.js'
import { characterCount, commonHead, commonTail, count, pretty, visible, visibleName } from './format.js'
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
  const head = commonHead(a, b)
  return Math.max(a.length, b.length) - head - commonTail(a, b, head)
}

/**
 * The unified diff of two texts within the budget, counted from `started` (performance.now).
 * jsdiff sees only the lines around the differing middle, and in them the long runs both
 * texts share cut to their ends (see `lineWindow` and `focusWindow`), so one changed
 * character in a line of megabytes is a short hunk, not a timeout.
 */
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
  const f = focusWindow(w.a, w.b, w.head, w.tail)
  const patch = structuredPatch(`recorded/${label}`, `local/${label}`, f.a, f.b, undefined, undefined, {
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
 * number of lines cut from the top (identical in both), and `head` and `tail`, the lengths
 * of the common head and tail left in the window. Cutting the common head and tail here
 * keeps jsdiff from splitting a whole large payload into lines when a few of them changed.
 */
export function lineWindow(
  a: string,
  b: string,
  contextLines: number,
): { a: string; b: string; skipped: number; head: number; tail: number } {
  const head = commonHead(a, b)
  const tail = commonTail(a, b, head)
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
  return {
    a: a.slice(start, a.length - cut),
    b: b.slice(start, b.length - cut),
    skipped,
    head: head - start,
    tail: tail - cut,
  }
}

/** Characters kept at each end of a long run both texts share, around the count of those cut. */
const keepOuter = 40
const keepNear = 60

/** `text` cut to its first `first` and last `last` characters around a count, never inside a surrogate pair. */
function shorten(text: string, first: number, last: number): string {
  if (text.length <= first + last + 40) return text
  let head = first
  if (/[\uDC00-\uDFFF]/.test(text.charAt(head))) head--
  let tail = text.length - last
  if (/[\uDC00-\uDFFF]/.test(text.charAt(tail))) tail++
  return `${text.slice(0, head)} … (${count(tail - head)} characters) … ${text.slice(tail)}`
}

/**
 * The window's texts with what both share in the lines jsdiff compares made short: in the
 * line of the first difference, the run from the line's start up to it; in the line of the
 * last, the run from it to the line's end; and every whole line of context (identical in
 * both) folded like a printed line. Lines keep their count, so hunk numbers stay true.
 */
export function focusWindow(a: string, b: string, head: number, tail: number): { a: string; b: string } {
  const lineStart = head === 0 ? 0 : a.lastIndexOf('\n', head - 1) + 1
  const aEnd = a.length - tail
  const bEnd = b.length - tail
  const nl = a.indexOf('\n', aEnd)
  const lineEnd = nl < 0 ? a.length : nl
  const before = a
    .slice(0, lineStart)
    .split('\n')
    .map((l) => foldLine(l))
    .join('\n')
  const lead = shorten(a.slice(lineStart, head), keepOuter, keepNear)
  const trail = shorten(a.slice(aEnd, lineEnd), keepNear, keepOuter)
  const after = a
    .slice(lineEnd)
    .split('\n')
    .map((l) => foldLine(l))
    .join('\n')
  return {
    a: before + lead + a.slice(head, aEnd) + trail + after,
    b: before + lead + b.slice(head, bEnd) + trail + after,
  }
}

/** The unified diff of two texts, or undefined when it falls back (see unifiedOutcome). */
export function unifiedDiff(recorded: string, local: string, label: string): string | undefined {
  const r = unifiedOutcome(recorded, local, label)
  return 'patch' in r ? r.patch : undefined
}

/**
 * From the stored payload texts, as `replay --format unified` renders one stage: the texts
 * are compared before anything is decoded or pretty-printed, so a pair that differs
 * throughout falls back at once, whatever its size. Decoding and pretty-printing what is
 * left grows with the payloads alone (replay has decoded them once already to judge the
 * stage); the budget is the diff's, so its clock starts once the texts are ready, and a
 * small change in a payload of megabytes is shown, not timed out.
 */
export function unifiedFromPayloads(recordedText: string, localText: string, label: string): UnifiedOutcome {
  const span = differingSpan(recordedText, localText)
  if (span > unifiedMaxSpan)
    return { fallback: 'too-large', span, size: Math.max(recordedText.length, localText.length) }
  return unifiedOutcome(pretty(readPayload(recordedText)), pretty(readPayload(localText)), label)
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
  return `${line.slice(0, head)} … (${count(characterCount(line.slice(head, tail)))} characters) … ${line.slice(tail)}`
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
            ? `${visibleName(s.stage)}: payloads differ across ${mib(r.span)} of ${mib(r.size)}, too much for a unified diff; see the structural changes above`
            : `${visibleName(s.stage)}: payloads too different to diff within ${unifiedTimeoutMs} ms; see the structural changes above`,
        ),
      )
      continue
    }
    // The text diff shows every difference; say which of them the config's rules hide.
    if (s.suppressed.length > 0) {
      const listed = s.suppressed
        .slice(0, 5)
        .map((x) => `${visible(x.path)} (${x.reason})`)
        .join(', ')
      const more = s.suppressed.length > 5 ? ` and ${s.suppressed.length - 5} more` : ''
      out.push(
        t.dim(`${visibleName(s.stage)}: not divergences, hidden by the config's rules: ${listed}${more}`),
      )
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
