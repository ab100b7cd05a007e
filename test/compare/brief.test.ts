/** Values inside one-line messages. */
import { describe, expect, it } from 'vitest'
import { brief } from '../../src/compare/brief.js'

describe('brief', () => {
  it('writes short values as JSON, and a missing one as nothing', () => {
    expect(brief(4)).toBe('4')
    expect(brief('web')).toBe('"web"')
    expect(brief({ a: [1, null] })).toBe('{"a":[1,null]}')
    expect(brief(undefined)).toBe('nothing')
  })

  it('cuts long values to the bound and says how long they were', () => {
    const text = brief('x'.repeat(10_000), 50)
    expect(text).toBe(`"${'x'.repeat(48)}… (10,002 characters)`)
  })

  it('never leaves half of a surrogate pair at the cut', () => {
    for (let max = 10; max < 20; max++) {
      const text = brief('😀'.repeat(50), max)
      expect(text).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/)
      expect(text).not.toMatch(/(?<![\ud800-\udbff])[\udc00-\udfff]/)
    }
  })
})
