/** The `verify` report: where each check sits. */
import { describe, expect, it } from 'vitest'
import { plain } from '../../src/render/theme.js'
import { renderVerify } from '../../src/render/verify.js'

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
