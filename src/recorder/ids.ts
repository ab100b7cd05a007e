import { randomBytes } from 'node:crypto'

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
let pool = Buffer.alloc(0)
let offset = 0
/** The time and random digits of the last id made in this process (indexes into CROCKFORD). */
let lastTime = -1
const lastRand: number[] = []

/**
 * A record id: 10 characters of millisecond time then 16 random ones (Crockford base32,
 * ULID layout), so ids sort by start time and any unique prefix names a record. An id made
 * in the same millisecond as the last one a process made counts that one's random part up
 * by one, as ULID's monotonic ids do: records started one after the other within a
 * millisecond list in that order, never by chance. The time part is always the time given.
 */
export function newRecordId(now: number): string {
  const t = Math.max(0, Math.floor(now))
  if (t !== lastTime || !countUp()) {
    lastTime = t
    if (offset + 16 > pool.length) {
      pool = randomBytes(4096)
      offset = 0
    }
    for (let i = 0; i < 16; i++) lastRand[i] = pool[offset++]! & 31
  }
  let time = ''
  let rest = lastTime
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[rest % 32] + time
    rest = Math.floor(rest / 32)
  }
  let rand = ''
  for (let i = 0; i < 16; i++) rand += CROCKFORD[lastRand[i]!]
  return time + rand
}

/** Adds one to the last id's random digits; false when they were all at their largest. */
function countUp(): boolean {
  for (let i = 15; i >= 0; i--) {
    if (lastRand[i]! < 31) {
      lastRand[i]!++
      return true
    }
    lastRand[i] = 0
  }
  return false
}
