/** Terminal rendering of `verify`. */
import type { VerifySummary, Violation } from '../compare/verify.js'
import { visibleLine, visibleName } from './format.js'
import type { Theme } from './theme.js'

export function violationLine(v: Violation, t: Theme): string {
  return `${t.bad('✗')} ${visibleLine(v.recordId)} ${visibleName(v.key)}  ${t.bold(visibleLine(v.check))} ${t.dim(v.stage === '-' ? `(${v.kind} over the whole record)` : `(${v.kind} at ${visibleName(v.stage)})`)}: ${visibleLine(v.message)}`
}

export function renderVerify(s: VerifySummary, t: Theme): string {
  const lines: string[] = []
  if (s.violations === 0) {
    lines.push(t.ok(`✓ ${s.records} records checked: every seam matches and every invariant holds`))
    return lines.join('\n')
  }
  lines.push(
    t.bad(
      `✗ ${s.violations} violation${s.violations === 1 ? '' : 's'} in ${s.recordsWithViolations} of ${s.records} records`,
    ),
  )
  for (const c of s.checks) {
    lines.push('')
    lines.push(
      `${t.bold(visibleLine(c.check))} ${t.dim(c.stage === '-' ? `${c.kind} over the whole record` : `${c.kind} at stage ${visibleName(c.stage)}`)}: ${t.bad(String(c.violations))}`,
    )
    for (const e of c.examples)
      lines.push(`  ${visibleLine(e.recordId)} ${visibleName(e.key)}  ${t.dim(visibleLine(e.message))}`)
    if (c.violations > c.examples.length) lines.push(t.dim(`  … ${c.violations - c.examples.length} more`))
  }
  return lines.join('\n')
}
