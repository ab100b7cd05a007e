/** Terminal rendering of `why`. */
import type { WhyReport } from '../compare/why.js'
import { changedPair, compact, padEndColumns, visibleLine, visibleName } from './format.js'
import type { Theme } from './theme.js'

export function renderWhy(r: WhyReport, t: Theme): string {
  const lines = [
    `${t.bold('why')} ${visibleName(r.start.stage)}.${r.start.side}${visibleLine(r.start.path.slice(1))} = ${t.bold(compact(r.start.value, 60))}  ${t.dim(`record ${visibleLine(r.recordId)} key ${visibleName(r.key)}`)}`,
    '',
  ]
  for (const s of [...r.trail].reverse()) {
    // Beside what it was changed from, a long string shows where it changed, not its head.
    const value = s.before === undefined ? compact(s.value, 40) : changedPair(s.before, s.value, 40).local
    lines.push(
      `  ${t.stage(padEndColumns(visibleName(s.stage), 10))} ${value}  ${t.dim(visibleLine(s.note))}${s.attempt > 1 ? t.warn(` (attempt ${s.attempt})`) : ''}`,
    )
  }
  if (r.origin !== null) {
    const how = {
      produced: 'produced by',
      changed: 'changed by',
      'in-transit': 'changed in transit between',
      'recorded-input': 'already in the recorded input of',
    }[r.origin.how]
    lines.push(
      '',
      `${t.bold('origin:')} ${how} ${t.bad(visibleName(r.origin.stage))}${r.origin.attempt > 1 ? ` (attempt ${r.origin.attempt})` : ''}`,
    )
  }
  if (r.evidence.length > 0) {
    lines.push(t.bold('evidence:'))
    for (const e of r.evidence) lines.push(`  ${t.dim(`[${e.kind}]`)} ${visibleLine(e.text)}`)
  }
  lines.push('', t.dim(r.caveat))
  return lines.join('\n')
}
