import { randomBytes } from 'node:crypto'

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
let pool = Buffer.alloc(0)
let offset = 0

/**
 * A record id: 10 characters of millisecond time then 16 random ones (Crockford base32,
 * ULID layout), so ids sort by start time and any unique prefix names a record.
 */
export function newRecordId(now: number): string {
  let time = ''
  let t = Math.max(0, Math.floor(now))
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time
    t = Math.floor(t / 32)
  }
  if (offset + 16 > pool.length) {
    pool = randomBytes(4096)
    offset = 0
  }
  let rand = ''
  for (let i = 0; i < 16; i++) rand += CROCKFORD[pool[offset++]! & 31]
  return time + rand
}
