import { randomBytes } from 'node:crypto'

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
let pool = Buffer.alloc(0)
let offset = 0
/** The time and random digits of the last id made in this process (indexes into CROCKFORD). */
let lastTime = -1
const lastRand: number[] = []

/**
 * A record id: 10 characters of millisecond time then 16 random ones (Crockford base32,
 * ULID layout), so ids sort by start time and any unique prefix names a record. Ids made
 * in one process within a millisecond (or while the clock steps back) keep the last id's
 * time and count its random part up by one, as ULID's monotonic ids do: records started one
 * after the other in a process list in that order, never by chance.
 */
export function newRecordId(now: number): string {
  const t = Math.max(0, Math.floor(now))
  if (t > lastTime || !countUp()) {
    lastTime = Math.max(t, lastTime)
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
