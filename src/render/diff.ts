/** Terminal rendering of `diff`. */
import type { Change } from '../compare/diff.js'
import type { BundleDiff, RecordDiff } from '../compare/record-diff.js'
import { visibleLine, visibleName } from './format.js'
import { changeLine, wordDiffLine } from './show.js'
import type { Theme } from './theme.js'

export function renderRecordDiff(d: RecordDiff, t: Theme): string {
  const lines = [
    `${t.bold('A')} ${visibleLine(d.a.recordId)} ${visibleName(d.a.key)} ${t.dim(visibleLine(d.a.source))}`,
    `${t.bold('B')} ${visibleLine(d.b.recordId)} ${visibleName(d.b.key)} ${t.dim(visibleLine(d.b.source))}`,
    '',
  ]
  for (const s of d.stages) {
    const mark =
      s.status === 'same'
        ? t.ok('=')
        : s.status === 'differs'
          ? t.warn('≠')
          : t.bad(s.status === 'only-in-a' ? 'A' : 'B')
    const label = s.status === 'only-in-a' ? ' only in A' : s.status === 'only-in-b' ? ' only in B' : ''
    lines.push(`  ${mark} ${t.stage(visibleName(s.stage))}${t.dim(label)}`)
    const change = (side: string, c: Change): void => {
      lines.push(`      ${t.dim(side)} ${changeLine(c, t, 100)}`)
      const words = wordDiffLine(c, t, 100)
      if (words !== undefined) lines.push(`          ${words}`)
    }
    for (const c of s.input.slice(0, 4)) change('in ', c)
    for (const c of s.output.slice(0, 6)) change('out', c)
    const more = Math.max(0, s.input.length - 4) + Math.max(0, s.output.length - 6)
    if (s.truncated) {
      const listed = more > 0 ? `; --json lists ${more} more` : ''
      lines.push(t.warn(`      diff cut short after too many changes${listed}`))
    } else if (more > 0) lines.push(t.dim(`      … ${more} more (--json for all)`))
    const sup = [...s.suppressed.input, ...s.suppressed.output]
    if (sup.length > 0) {
      const counts = new Map<string, number>()
      for (const x of sup) counts.set(x.reason, (counts.get(x.reason) ?? 0) + 1)
      lines.push(t.dim(`      suppressed: ${[...counts].map(([r, n]) => `${n} ${r}`).join(', ')}`))
    }
  }
  lines.push(
    '',
    d.firstDifference === null
      ? t.ok('the records match stage for stage')
      : `${t.bold('outputs first differ at')} ${t.bad(visibleLine(d.firstDifference))}`,
  )
  return lines.join('\n')
}

export function renderBundleDiff(d: BundleDiff, t: Theme): string {
  const lines = [
    `${d.keys} ${d.keys === 1 ? 'key' : 'keys'}: ${t.ok(`${d.same} same`)}, ${d.differing > 0 ? t.bad(`${d.differing} differ`) : '0 differ'}, ${d.onlyInA} only in A, ${d.onlyInB} only in B`,
  ]
  for (const s of d.byStage) {
    lines.push(
      '',
      `${t.bold('first differ at')} ${t.stage(visibleName(s.stage))}: ${s.keys} ${s.keys === 1 ? 'key' : 'keys'}`,
    )
    for (const e of s.examples)
      lines.push(
        `  ${visibleName(e.key)}  ${t.dim(`${visibleLine(e.a)} vs ${visibleLine(e.b)}`)}  ${visibleLine(e.change)}`,
      )
  }
  return lines.join('\n')
}
