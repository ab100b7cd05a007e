/**
 * Stage 5, store: writes the computed availability to the DB (a version-guarded upsert,
 * so a late or redelivered change cannot move a row backwards) and to the stock cache
 * the storefront reads.
 */
import type { StageContext } from 'retrace'
import type { AvailabilityRow, CacheEntry, Computed, Written } from '../types.js'
import { world } from '../world.js'

const CACHE_TTL_SEC = 300

export async function store(computed: Computed, ctx: StageContext): Promise<Written> {
  const row: AvailabilityRow = {
    sku: computed.sku,
    onHand: computed.onHand,
    reserved: computed.reserved,
    available: computed.available,
    version: computed.version,
    updatedAt: ctx.now(),
  }
  const result = await ctx.effect('db.upsert', { table: 'sku_availability', row }, () => world.db.upsert(row))
  const cache: CacheEntry = {
    key: `stock/${computed.sku}`,
    value: { available: computed.available, version: computed.version },
    ttlSec: CACHE_TTL_SEC,
  }
  await ctx.effect('cache.set', cache, () => world.cache.set(cache))
  return { ...row, cache, written: result.affectedRows > 0 }
}
