/** Terminal rendering of a recorded scene (`retrace show`). */

import { diffWords } from 'diff'
import { isUnrecorded } from '../codec/index.js'
import type { Change, DiffResult, Suppressed } from '../compare/diff.js'
import type { InvariantResult } from '../compare/invariants.js'
import type { Scene, SceneCapture, SceneEffect, SceneError } from '../compare/scene.js'
import {
  appendAll,
  changedOrThrown,
  changedPair,
  compact,
  formatDuration,
  formatTime,
  pretty,
  visibleLine,
  visibleName,
} from './format.js'
import type { Theme } from './theme.js'

export interface ShowOptions {
  expand: boolean
  /** Width budget for one-line payloads. */
  width: number
}

function isUnfinished(value: unknown): boolean {
  return isUnrecorded(value) && value.reason === 'unfinished'
}

export function errorText(e: SceneError): string {
  const code = e.code !== undefined ? ` [${String(e.code)}]` : ''
  return visibleLine(`${e.name}${code}: ${e.message}`)
}

function payload(label: string, value: unknown, t: Theme, o: ShowOptions, indent: string): string[] {
  if (o.expand) {
    const lines = pretty(value).split('\n')
    return [
      `${indent}${t.dim(label)} ${lines[0]}`,
      ...lines.slice(1).map((l) => `${indent}${' '.repeat(label.length + 1)}${l}`),
    ]
  }
  return [`${indent}${t.dim(label)} ${compact(value, o.width)}`]
}

export function changeLine(c: Change, t: Theme, width: number): string {
  const path = visibleLine(c.path)
  const w = Math.max(24, Math.floor(width / 2))
  switch (c.kind) {
    case 'added':
      return `${t.added('+')} ${path} ${t.added(compact(c.local, w))}`
    case 'removed':
      return `${t.removed('-')} ${path} ${t.removed(compact(c.recorded, w))}`
    default: {
      const p = changedOrThrown(c.recorded, c.local, w)
      const at = p.at === undefined ? '' : ` ${t.dim(`(${p.at})`)}`
      return `${t.warn('~')} ${path} ${t.removed(p.recorded)} ${t.dim('→')} ${t.added(p.local)}${at}`
    }
  }
}

/**
 * Bounds of a word-level diff: jsdiff's cost grows with the strings' length times their
 * edits, and two texts that differ in more words than this read better side by side.
 */
const wordDiff = { maxLength: 5000, maxEditLength: 50, timeout: 20 }

/**
 * The word-level diff of a changed string, as one line (`the quick [-brown-]{+red+} fox`),
 * when the change line cannot show it: the strings were cut to a window around their first
 * difference, or they differ in more than one place. Long runs both share are cut to the
 * words next to an edit. Undefined for other values, strings without words, and strings too
 * long or too different for a short diff (`wordDiff`).
 */
export function wordDiffLine(c: Change, t: Theme, width: number): string | undefined {
  const [a, b] = [c.recorded, c.local]
  if (c.kind !== 'changed' || typeof a !== 'string' || typeof b !== 'string') return undefined
  if (a.length > wordDiff.maxLength || b.length > wordDiff.maxLength || !/\s/.test(a + b)) return undefined
  const parts = diffWords(a, b, { maxEditLength: wordDiff.maxEditLength, timeout: wordDiff.timeout })
  if (parts === undefined) return undefined
  const regions = parts.filter((p, i) => !p.added && !p.removed && i > 0 && i < parts.length - 1).length + 1
  const windowed = changedPair(a, b, Math.max(24, Math.floor(width / 2))).at !== undefined
  if (regions < 2 && !windowed) return undefined
  const budget = Math.max(80, width * 2)
  const out: string[] = []
  let used = 0
  let edits = parts.filter((p) => p.added || p.removed).length
  const last = parts.length - 1
  for (let i = 0; i <= last; i++) {
    const p = parts[i]!
    let text: string
    if (p.added || p.removed) text = p.removed ? `[-${visibleLine(p.value)}-]` : `{+${visibleLine(p.value)}+}`
    else {
      // A shared run keeps the two words next to each edit around it.
      const words = visibleLine(p.value).split(/(?<=\s)(?=\S)/)
      const head = words.slice(0, 2).join('')
      const tail = words.slice(-2).join('')
      if (i === 0) text = words.length > 2 ? `…${tail}` : words.join('')
      else if (i === last) text = words.length > 2 ? `${head}…` : words.join('')
      else text = words.length > 4 ? `${head}…${tail}` : words.join('')
    }
    if (used + text.length > budget && out.length > 0) {
      out.push(t.dim(` … (${edits} more edits)`))
      break
    }
    used += text.length
    if (p.added || p.removed) edits--
    out.push(p.removed ? t.removed(text) : p.added ? t.added(text) : text)
  }
  return `${t.dim('words:')} ${out.join('')}`
}

export function suppressedLine(s: Suppressed, t: Theme, width: number): string {
  const w = Math.max(16, Math.floor(width / 3))
  let values = ''
  // A redacted value is compared with nothing: the local value is not kept, so as not to print a secret.
  if (s.reason === 'redacted') values = ` ${compact(s.recorded, w)} → not shown`
  else if (s.recorded !== undefined || s.local !== undefined) {
    const p = changedPair(s.recorded, s.local, w)
    values = ` ${p.recorded} → ${p.local}${p.at === undefined ? '' : ` (${p.at})`}`
  }
  return t.dim(`· ${visibleLine(s.path)} (${s.reason})${values}`)
}

export function diffLines(d: DiffResult, t: Theme, width: number, indent: string, limit = 12): string[] {
  const out = d.changes.slice(0, limit).map((c) => indent + changeLine(c, t, width))
  if (d.changes.length > limit)
    out.push(`${indent}${t.dim(`… ${d.changes.length - limit} more changes (--json for all)`)}`)
  for (const s of d.suppressed.slice(0, 4)) out.push(indent + suppressedLine(s, t, width))
  if (d.suppressed.length > 4) out.push(`${indent}${t.dim(`… ${d.suppressed.length - 4} more suppressed`)}`)
  if (d.truncated) {
    out.push(
      `${indent}${t.warn(`diff cut short (${d.truncated.reason}) after ${d.truncated.compared} values`)}`,
    )
  }
  return out
}

export function effectLine(e: SceneEffect, t: Theme, width: number): string {
  const w = Math.max(24, Math.floor(width / 2))
  if (e.kind === 'now' || e.kind === 'random') {
    return `${t.dim(`#${e.seq}`)} ${e.kind}() ${t.dim('→')} ${compact(e.result, w)}`
  }
  const args = e.args === undefined ? '' : compact(e.args, w)
  const result =
    e.error !== undefined ? t.bad(`✗ ${errorText(e.error)}`) : `${t.dim('→')} ${compact(e.result, w)}`
  return `${t.dim(`#${e.seq}`)} ${t.info(visibleLine(e.name))}(${args}) ${result}`
}

function captureBlock(
  c: SceneCapture,
  index: number,
  t: Theme,
  o: ShowOptions,
  inputFrom?: string,
): string[] {
  // An output the record ended before it came (a stage it did not wait for) is no success.
  const status =
    c.status !== 'ok' ? t.bad('error') : isUnfinished(c.output) ? t.warn('unfinished') : t.ok('ok')
  const attempt =
    c.perItem !== undefined
      ? t.dim(` call ${c.attempt} of ${c.perItem} (once per item)`)
      : c.attempt > 1
        ? t.warn(` attempt ${c.attempt} (retry)`)
        : ''
  const superseded = c.final || c.perItem !== undefined ? '' : t.dim(' superseded by a later attempt')
  const lines = [
    `${t.bold(String(index + 1).padStart(2))} ${t.stage(visibleName(c.stage))}${attempt} ${status} ${t.dim(formatDuration(c.durationMs))}${superseded}`,
  ]
  const ind = '    '
  if (inputFrom !== undefined && !o.expand)
    lines.push(`${ind}${t.dim(`in  = ${visibleName(inputFrom)}'s output`)}`)
  else appendAll(lines, payload('in ', c.input, t, o, ind))
  for (const e of c.effects) lines.push(`${ind}${effectLine(e, t, o.width)}`)
  if (c.error !== undefined) lines.push(`${ind}${t.bad(`threw ${errorText(c.error)}`)}`)
  else {
    appendAll(lines, payload('out', c.output, t, o, ind))
    if (c.transform !== null && c.transform.changes.length > 0) {
      if (o.expand) {
        lines.push(`${ind}${t.dim('what it changed:')}`)
        appendAll(lines, diffLines(c.transform, t, o.width, `${ind}  `, 1000))
      } else appendAll(lines, transformSummary(c.transform, t, o.width, ind))
    }
  }
  return lines
}

export function renderShow(scene: Scene, t: Theme, o: ShowOptions): string {
  const out: string[] = []
  const status = scene.status === 'ok' ? t.ok('ok') : t.bad('error')
  const retries =
    scene.retries > 0 ? t.warn(`, ${scene.retries} ${scene.retries === 1 ? 'retry' : 'retries'}`) : ''
  out.push(
    `${t.bold('record')} ${visibleLine(scene.recordId)}  ${t.bold('key')} ${visibleName(scene.key)}  ${status}  ${formatTime(scene.startedAt)}`,
  )
  out.push(
    t.dim(
      `${scene.stages.length} ${scene.stages.length === 1 ? 'stage' : 'stages'} (${scene.stages.map(visibleName).join(' → ')})${retries}` +
        ` · build ${visibleLine(scene.build ?? '-')} · host ${visibleLine(scene.host ?? '-')} · pid ${scene.pid ?? '-'}`,
    ),
  )
  if (scene.error !== undefined) out.push(t.bad(`record failed: ${errorText(scene.error)}`))
  out.push('')
  let index = -1
  let lastStage = ''
  let previousOutput: { stage: string; value: unknown } | undefined
  /** The seams that changed in transit, by the stage that handed the value on. */
  const brokenFrom = new Map<string, Scene['seams']>()
  for (const seam of scene.seams) {
    if (seam.matches) continue
    const list = brokenFrom.get(seam.from) ?? []
    list.push(seam)
    brokenFrom.set(seam.from, list)
  }
  for (const c of scene.captures) {
    if (c.stage !== lastStage || c.attempt === 1) index++
    lastStage = c.stage
    const from =
      previousOutput !== undefined && sameJson(previousOutput.value, c.input)
        ? previousOutput.stage
        : undefined
    appendAll(out, captureBlock(c, index, t, o, from))
    if (c.final && c.status === 'ok') previousOutput = { stage: c.stage, value: c.output }
    for (const seam of c.final ? (brokenFrom.get(c.stage) ?? []) : []) {
      out.push(
        `   ${t.warn(`seam ${visibleName(seam.from)} → ${visibleName(seam.to)}: the data changed in transit`)}`,
      )
      appendAll(out, diffLines(seam.diff, t, o.width, '      '))
    }
  }
  const broken = scene.seams.filter((s) => !s.matches).length
  out.push('')
  out.push(
    scene.seams.length === 0
      ? t.dim(
          scene.stages.length === 1
            ? 'seams: none (one stage)'
            : scene.loose.length === scene.stages.length - 1
              ? 'seams: none (no stage handed its output on to the next)'
              : 'seams: none to check (the stage before each hand-off failed)',
        )
      : scene.seams.length === 1
        ? broken === 0
          ? t.dim('seams: the one hand-off matches')
          : t.warn('seams: the one hand-off changed in transit')
        : broken === 0
          ? t.dim(`seams: all ${scene.seams.length} hand-offs match`)
          : t.warn(`seams: ${broken} of ${scene.seams.length} hand-offs changed in transit`),
  )
  if (scene.loose.length > 0) {
    out.push(
      t.dim(
        `not handed on: ${scene.loose.map(visibleName).join(', ')} (called inside or beside another stage, or once per item; ${scene.loose.length === 1 ? 'its' : 'their'} recorded input is what ${scene.loose.length === 1 ? 'it' : 'they'} got)`,
      ),
    )
  }
  return out.join('\n')
}

export function renderInvariants(results: readonly InvariantResult[], t: Theme): string {
  const lines = [t.bold('invariants')]
  for (const r of results) {
    const mark =
      r.status === 'ok'
        ? t.ok('✓')
        : r.status === 'not-applicable'
          ? t.dim('·')
          : t.bad(r.status === 'error' ? '!' : '✗')
    const what =
      r.status === 'violated'
        ? t.bad(' violated in production (a production data bug)')
        : r.status === 'not-applicable'
          ? t.dim(' not applicable')
          : ''
    lines.push(
      `  ${mark} ${visibleLine(r.name)}${what}${r.message ? t.dim(`: ${visibleLine(r.message)}`) : ''}`,
    )
  }
  return lines.join('\n')
}

/**
 * What a stage did to the payload, in a few lines: values that changed in place first
 * (where a wrong number usually shows), then the fields it added and dropped by name.
 */
function transformSummary(d: DiffResult, t: Theme, width: number, ind: string): string[] {
  const changed = d.changes.filter((c) => c.kind === 'changed')
  const added = d.changes
    .filter((c) => c.kind === 'added')
    .map((c) => visibleLine(c.path.replace(/^\$\.?/, '')))
  const removed = d.changes
    .filter((c) => c.kind === 'removed')
    .map((c) => visibleLine(c.path.replace(/^\$\.?/, '')))
  const out = changed.slice(0, 4).map((c) => `${ind}${changeLine(c, t, width)}`)
  if (changed.length > 4) out.push(`${ind}${t.dim(`… ${changed.length - 4} more changed values (--expand)`)}`)
  const names = (list: string[]): string => {
    let text = ''
    for (const [i, n] of list.entries()) {
      const next = text === '' ? n : `${text}, ${n}`
      if (next.length > width - 30) return `${text}, … ${list.length - i} more`
      text = next
    }
    return text
  }
  if (added.length > 0) out.push(`${ind}${t.added('+')} ${t.dim(`added ${names(added)}`)}`)
  if (removed.length > 0) out.push(`${ind}${t.removed('-')} ${t.dim(`dropped ${names(removed)}`)}`)
  return out
}

function sameJson(a: unknown, b: unknown): boolean {
  try {
    return JSON.stringify(a) === JSON.stringify(b)
  } catch {
    return false
  }
}
