/** The `verify` report: where each check sits. */
import { describe, expect, it } from 'vitest'
import type { Violation } from '../../src/compare/verify.js'
import { plain } from '../../src/render/theme.js'
import { renderVerify, violationLine } from '../../src/render/verify.js'

describe('renderVerify', () => {
  it('names the stage of a check, and says so when a check spans the whole record', () => {
    const example = { recordId: '01R', key: 'order:1', message: 'total is negative' }
    const text = renderVerify(
      {
        records: 10,
        violations: 2,
        recordsWithViolations: 1,
        checks: [
          { check: 'total >= 0', kind: 'invariant', stage: 'price', violations: 1, examples: [example] },
          { check: 'balanced', kind: 'invariant', stage: '-', violations: 1, examples: [example] },
        ],
      },
      plain,
    )
    expect(text).toContain('total >= 0 invariant at stage price: 1')
    expect(text).toContain('balanced invariant over the whole record: 1')
    expect(text).not.toContain('at stage -')
  })
})

describe('violationLine (verify --follow)', () => {
  it('says a check that spans the whole record is over the whole record, as the summary does', () => {
    const v = { recordId: '01R', key: 'order:1', kind: 'invariant', message: 'returned false' } as const
    expect(violationLine({ ...v, check: 'balanced', stage: '-' } as Violation, plain)).toBe(
      '✗ 01R order:1  balanced (invariant over the whole record): returned false',
    )
    expect(violationLine({ ...v, check: 'total >= 0', stage: 'price' } as Violation, plain)).toBe(
      '✗ 01R order:1  total >= 0 (invariant at price): returned false',
    )
  })
})
