import { describe, expect, it } from 'vitest'
import { newRecordId } from '../../src/recorder/ids.js'

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const timeOf = (id: string): number => [...id.slice(0, 10)].reduce((t, c) => t * 32 + CROCKFORD.indexOf(c), 0)

describe('record ids', () => {
  it('are 26 Crockford base32 characters, the first ten the start time in milliseconds', () => {
    const now = Date.UTC(2026, 11, 2, 10, 0, 0, 123) + 7_000_000
    const id = newRecordId(now)
    expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/)
    expect(timeOf(id)).toBe(now)
  })

  it('made within one millisecond sort in the order they were made, and are unique', () => {
    const now = Date.UTC(2026, 11, 3, 9, 30) + 8_000_000
    const ids = Array.from({ length: 2000 }, () => newRecordId(now))
    expect(new Set(ids).size).toBe(ids.length)
    expect([...ids].sort()).toEqual(ids)
    expect(ids.every((id) => timeOf(id) === now)).toBe(true)
  })

  it('keep the time they are given: a clock that steps back, or another clock, starts afresh', () => {
    const later = Date.UTC(2026, 11, 3, 9, 31) + 9_000_000
    const a = newRecordId(later)
    const b = newRecordId(later - 50)
    expect(timeOf(b)).toBe(later - 50)
    expect(b < a).toBe(true)
    const c = newRecordId(1000)
    expect(timeOf(c)).toBe(1000)
    // Back in the same millisecond as the one before: counting up again.
    const d = newRecordId(1000)
    expect(d > c).toBe(true)
  })
})
