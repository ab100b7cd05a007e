/**
 * Stage 2, ingest: admission control. One token bucket per source table protects the KV
 * store and compute from bursts (a promotion, a replica catching up). The bucket's state
 * lives in the shared rate-limit store; the refill arithmetic runs here, on `ctx.now()`.
 * A change that finds the bucket empty is deferred with a jittered retry-after.
 */
import type { StageContext } from 'retrace'
import type { Admission, Change } from '../types.js'
import { world } from '../world.js'

/** Burst the bucket absorbs, in changes. */
export const CAPACITY = 12
/** Sustained rate, in changes per second. */
export const RATE_PER_SEC = 8
const MAX_JITTER_MS = 25
const BUCKET = 'ingest/shop.inventory'

const round3 = (n: number): number => Math.round(n * 1000) / 1000

export async function ingest(change: Change, ctx: StageContext): Promise<Admission> {
  const bucket = BUCKET
  const now = ctx.now()
  const saved = await ctx.effect('ratelimit.get', { bucket }, () => world.limits.get(bucket))
  const refilled =
    saved === null
      ? CAPACITY
      : Math.min(CAPACITY, saved.tokens + (Math.max(0, now - saved.updatedAt) * RATE_PER_SEC) / 1000)

  if (refilled >= 1) {
    const tokens = round3(refilled - 1)
    await ctx.effect('ratelimit.put', { bucket, tokens, updatedAt: now }, () =>
      world.limits.put(bucket, { tokens, updatedAt: now }),
    )
    return { admitted: true, change, tokens, retryAfterMs: null }
  }

  // Jitter spreads the retries of a burst so they do not come back as the same burst.
  const tokens = round3(refilled)
  const retryAfterMs =
    Math.ceil(((1 - refilled) * 1000) / RATE_PER_SEC) + Math.floor(ctx.random() * MAX_JITTER_MS)
  await ctx.effect('ratelimit.put', { bucket, tokens, updatedAt: now }, () =>
    world.limits.put(bucket, { tokens, updatedAt: now }),
  )
  return { admitted: false, change, tokens, retryAfterMs }
}
