/** Terminal rendering of replay results. */
import { type Change, diffValues } from '../compare/diff.js'
import type {
  AttemptResult,
  RecordResult,
  ReplaySummary,
  StageError,
  StageResult,
  StageStatus,
} from '../replay/engine.js'
import {
  appendAll,
  changedPair,
  compact,
  displayWidth,
  padEndColumns,
  thrownText,
  visibleLine,
  visibleName,
} from './format.js'
import { changeLine, suppressedLine, wordDiffLine } from './show.js'
import type { Theme } from './theme.js'

const marks: Record<StageStatus, string> = {
  matched: '✓',
  diverged: '✗',
  inherited: '↳',
  error: '!',
  skipped: '·',
}

function statusText(s: StageStatus, t: Theme): string {
  const text = `${marks[s]} ${s}`
  switch (s) {
    case 'matched':
      return t.ok(text)
    case 'diverged':
    case 'error':
      return t.bad(text)
    case 'inherited':
      return t.warn(text)
    default:
      return t.dim(text)
  }
}

export interface ReplayRenderOptions {
  width: number
  /** Print every stage's details, even matched ones. */
  verbose: boolean
  /** Most change lines per stage. */
  maxChanges: number
}

function stageBlock(s: StageResult, index: number, t: Theme, o: ReplayRenderOptions, pad: number): string[] {
  const retry =
    s.attempts.length > 1
      ? t.dim(` (${s.attempts.length} attempts: ${s.attempts.map((a) => marks[a.status]).join(' ')})`)
      : ''
  const from =
    s.status === 'inherited' && s.inheritedFrom ? t.dim(` from ${visibleName(s.inheritedFrom)}`) : ''
  const lines = [
    `  ${String(index + 1).padStart(2)} ${t.stage(padEndColumns(visibleName(s.stage), pad))} ${statusText(s.status, t)}${from}${retry}`,
  ]
  const ind = '       '
  if (s.status === 'skipped' && s.reason) lines.push(ind + t.dim(visibleLine(s.reason)))
  if (s.error !== null) lines.push(ind + t.bad(`${errorText(s.error)} [${visibleLine(s.error.code)}]`))
  if (s.status !== 'matched' || o.verbose) {
    for (const c of s.changes.slice(0, o.maxChanges)) {
      lines.push(ind + changeLine(c, t, o.width))
      const words = wordDiffLine(c, t, o.width)
      if (words !== undefined) lines.push(`${ind}  ${words}`)
    }
    // The diff stops at its most changes or at its deadline: --json then holds only what it found.
    const cut = s.attempts.at(-1)?.truncated === true
    if (s.changes.length > o.maxChanges) {
      const more = s.changes.length - o.maxChanges
      lines.push(ind + t.dim(`… ${more} more changes (--json for ${cut ? 'those' : 'all'})`))
    }
    if (cut) {
      lines.push(
        ind +
          t.warn(
            s.changes.length === 0
              ? 'diff cut short (out of time) before it placed a difference: the outputs differ as recorded text'
              : `diff cut short after ${s.changes.length} changes: there are more`,
          ),
      )
    }
  }
  const sup = s.suppressed
  if (sup.length > 0) {
    const counts = new Map<string, number>()
    for (const x of sup) counts.set(x.reason, (counts.get(x.reason) ?? 0) + 1)
    lines.push(ind + t.dim(`suppressed: ${[...counts].map(([r, n]) => `${n} ${r}`).join(', ')}`))
    if (o.verbose) for (const x of sup.slice(0, o.maxChanges)) lines.push(ind + suppressedLine(x, t, o.width))
  }
  for (const a of s.attempts) {
    for (const e of (a.effectChanges ?? []).slice(0, 3)) {
      const d = diffValues(e.recorded, e.local)
      const what = d.changes
        .slice(0, 2)
        .map((c) => `${visibleLine(c.path)} ${compact(c.recorded, 24)} → ${compact(c.local, 24)}`)
        .join(', ')
      lines.push(ind + t.dim(`wrote other values through ${visibleLine(e.name)} (effect #${e.seq}): ${what}`))
    }
    if (a.unusedEffects.length > 0) {
      lines.push(
        ind +
          t.warn(
            `attempt ${a.attempt} left ${a.unusedEffects.length} recorded effects unused: ${a.unusedEffects.map((e) => visibleLine(e.name)).join(', ')}`,
          ),
      )
    }
  }
  return lines
}

/** An error as `TypeError: boom`; a plain `Error` (or a thrown non-Error) by its message alone. */
function errorText(e: StageError): string {
  const name = e.name === undefined || e.name === 'Error' || e.name === 'NonError' ? '' : `${e.name}: `
  return visibleLine(`${name}${e.message}`)
}

/**
 * The oracle of the attempt a stage's changes come from. A pin stands for a stage's last call
 * only: an earlier call (a stage called once per item) is judged on what production recorded.
 */
function judgedOn(s: StageResult): AttemptResult['oracle'] | undefined {
  const changes = JSON.stringify(s.changes)
  return s.attempts.find((a) => a.status === s.status && JSON.stringify(a.changes) === changes)?.oracle
}

/** The first difference of a stage in words: what the oracle holds at the path, what the local build gives. */
function changeSentence(c: Change, pinned: boolean): string {
  const oracle = pinned ? 'the pinned expectation' : 'production'
  const at = visibleLine(c.path)
  switch (c.kind) {
    case 'added':
      // An array item the local build inserted: production may hold another item at that index.
      if (/\[\d+\]$/.test(c.path))
        return `the local build adds ${compact(c.local, 40)} at ${at}, an item ${oracle} does not have`
      return `the local build gives ${compact(c.local, 40)} at ${at}, where ${oracle} has nothing`
    case 'removed':
      return `${pinned ? 'the pinned expectation is' : 'production recorded'} ${compact(c.recorded, 40)} at ${at}, the local build leaves it out`
    default: {
      const recordedThrew = thrownText(c.recorded, 80)
      const localThrew = thrownText(c.local, 80)
      if (recordedThrew === undefined && localThrew === undefined) {
        const p = changedPair(c.recorded, c.local, 40)
        return `${pinned ? 'the pinned expectation is' : 'production recorded'} ${p.recorded} at ${at}, the local build gives ${p.local}${p.at === undefined ? '' : ` (${p.at})`}`
      }
      // One side threw (a thrown error is held at $): said as the throw it was.
      const was =
        recordedThrew !== undefined
          ? `${oracle} ${recordedThrew}`
          : `${pinned ? 'the pinned expectation is' : 'production recorded'} ${compact(c.recorded, 40)} at ${at}`
      return `${was}, the local build ${localThrew ?? `gives ${compact(c.local, 40)}`}`
    }
  }
}

export function renderRecordResult(r: RecordResult, t: Theme, o: ReplayRenderOptions): string {
  const verdict =
    r.verdict === 'matched'
      ? t.ok('matched')
      : r.verdict === 'diverged'
        ? t.bad(`diverged at ${visibleName(r.firstDivergence?.stage ?? '?')}`)
        : t.bad(`error at ${visibleName(r.firstDivergence?.stage ?? '?')}`)
  const lines = [
    `${t.bold('record')} ${visibleLine(r.recordId)}  ${t.bold('key')} ${visibleName(r.key)}  ${verdict}`,
  ]
  let pad = 6
  for (const s of r.stages) pad = Math.max(pad, displayWidth(visibleName(s.stage)))
  r.stages.forEach((s, i) => {
    appendAll(lines, stageBlock(s, i, t, o, pad))
  })
  for (const inv of r.invariants ?? []) {
    if (inv.productionBug) {
      const now =
        inv.local === 'ok'
          ? 'the local build satisfies it'
          : inv.local === 'violated'
            ? 'still violated by the local build'
            : `locally ${inv.local}`
      lines.push(
        `  ${t.warn('production data bug:')} invariant ${t.bold(visibleLine(inv.name))} was violated in production; ${now}`,
      )
      if (inv.message && inv.local !== 'ok') lines.push(`       ${t.dim(visibleLine(inv.message))}`)
    } else if (inv.local === 'violated') {
      lines.push(
        `  ${t.bad('invariant broken by the local build:')} ${t.bold(visibleLine(inv.name))}${inv.message ? t.dim(` ${visibleLine(inv.message)}`) : ''}`,
      )
    } else if (inv.local === 'error') {
      // The check itself failed (it threw, or names a function that does not exist).
      lines.push(
        `  ${t.warn('invariant could not be checked:')} ${t.bold(visibleLine(inv.name))}${inv.message ? t.dim(` ${visibleLine(inv.message)}`) : ''}`,
      )
    }
  }
  if (r.firstDivergence !== null) {
    const first = r.firstDivergence
    const s = r.stages.find((x) => x.stage === first.stage)!
    const c = s.changes[0]
    // No stage of its own differs: the record diverges by an invariant the local build breaks.
    const broken =
      s.status === 'diverged' || s.status === 'error'
        ? undefined
        : r.invariants?.find((i) => !i.productionBug && i.local === 'violated')
    const detail =
      broken !== undefined
        ? `: the local build breaks invariant ${visibleLine(broken.name)}, which production passed`
        : c !== undefined && s.status !== 'error'
          ? `: ${changeSentence(c, judgedOn(s) === 'expected')}`
          : s.error !== null
            ? `: ${errorText(s.error)}`
            : ''
    const inherited = r.stages.filter((x) => x.status === 'inherited').map((x) => visibleName(x.stage))
    lines.push(
      `  ${t.bold('first divergence:')} ${t.bad(visibleName(s.stage))} (${first.status})${detail}` +
        (inherited.length > 0
          ? t.dim(`; ${inherited.join(', ')} inherit${inherited.length === 1 ? 's' : ''} it`)
          : ''),
    )
    const pinned = s.attempts.some((a) => a.oracle === 'expected')
    if (!pinned && s.changes.some(recordedEmptyForText)) lines.push(`  ${t.dim(olderOpaqueHint)}`)
  }
  return lines.join('\n')
}

/**
 * Recorders before RegExp and URLSearchParams were recorded as their text wrote `{}` for
 * them; a replay of such a bundle shows `{} → "/ab+c/i"`, which says nothing of why.
 */
const olderOpaqueHint =
  'production recorded {} where the local build gives text: a RegExp or URLSearchParams recorded by an older recorder is stored as {}; record again, or pin the local output with accept'

function recordedEmptyForText(c: Change): boolean {
  if (c.kind !== 'changed' || typeof c.local !== 'string') return false
  const r = c.recorded
  return (
    typeof r === 'object' &&
    r !== null &&
    Object.getPrototypeOf(r) === Object.prototype &&
    Object.keys(r).length === 0
  )
}

export function renderSummary(s: ReplaySummary & { updated?: number }, t: Theme, label = 'replayed'): string {
  const parts = [
    `${s.records} record${s.records === 1 ? '' : 's'} ${label}`,
    t.ok(`${s.matched} matched`),
    s.diverged > 0 ? t.bad(`${s.diverged} diverged`) : `${s.diverged} diverged`,
    s.errors > 0 ? t.bad(`${s.errors} error${s.errors === 1 ? '' : 's'}`) : '0 errors',
  ]
  // `test --update`: records that failed and were re-pinned, so pass from now on.
  if (s.updated !== undefined) parts.push(s.updated > 0 ? t.ok(`${s.updated} updated`) : '0 updated')
  return parts.join(', ')
}
