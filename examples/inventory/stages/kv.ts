/**
 * Stage 3, KV: appends the change to the KV change log and reads it back, so what flows
 * on is exactly what the log holds (a lossy serialiser shows up here, not three stages
 * later). Replays of the same binlog event land on the same key.
 */
import type { StageContext } from 'retrace'
import type { Admission, Change, StoredChange } from '../types.js'
import { world } from '../world.js'

export async function kv(admission: Admission, ctx: StageContext): Promise<StoredChange> {
  const { change } = admission
  const key = `changes/${change.sku}/${change.version}`
  const put = await ctx.effect('kv.put', { key, value: change }, () => world.kv.put(key, change))
  const stored = await ctx.effect('kv.get', { key }, () => world.kv.get(key))
  if (stored === null)
    throw new Error(`${key} is missing right after it was written (revision ${put.revision})`)
  return { change: stored.value as Change, kvKey: key, revision: stored.revision }
}
