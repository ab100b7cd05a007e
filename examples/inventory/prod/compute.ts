/**
 * Stage 4, compute: real-time availability of a SKU.
 *
 * PRODUCTION BUILD (inventory-prod@2026.03.1+7c1e2a9), kept as it ran so the recording
 * in recordings/inventory.sqlite can be reproduced. It has the bug: the fold trusts
 * whatever state it is given, so after a KV failure it adds this change's delta to a
 * local copy that may be several versions old. stages/compute.ts is the fix; diff the
 * two files to see it.
 *
 * The state a change is folded onto is the SKU's materialised state in KV plus the
 * deltas this compute shard has folded since the last flush (concurrent changes of the
 * same SKU that KV does not have yet). When KV cannot be read, the first attempt fails
 * and the runner retries; a retry that still cannot read KV degrades to the host's local
 * in-memory copy of the KV state.
 *
 * `available` is folded from deltas rather than recomputed from the row: the shard
 * buffer and the flusher work on deltas, and compute's figure has to agree with theirs.
 */
import type { StageContext } from 'retrace'
import type { Change, Computed, InventoryState, PendingDelta, StoredChange } from '../types.js'
import { shardOf, world } from '../world.js'

/** A KV read failure, also as replay revives it (the code survives, the class does not). */
function isKvUnavailable(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'E_KV_UNAVAILABLE'
}

async function readState(
  change: Change,
  ctx: StageContext,
): Promise<{ base: InventoryState | null; source: Computed['source'] }> {
  const { sku } = change
  try {
    return { base: await ctx.effect('kv.state', { sku }, () => world.kv.state(sku)), source: 'kv' }
  } catch (err) {
    // The first failure goes back to the runner: most KV blips are over by its backoff.
    if (!isKvUnavailable(err) || ctx.attempt < 2) throw err
  }
  const local = await ctx.effect('local.get', { sku }, () => world.local.get(sku))
  if (local === null && change.op !== 'insert') {
    throw new Error(`no state for ${sku}: KV is unreachable and the local store has no copy`)
  }
  return { base: local, source: 'local' }
}

/** Adds the pending deltas newer than the base. */
function fold(sku: string, base: InventoryState | null, pending: PendingDelta[]): { state: InventoryState } {
  const state = base === null ? { sku, onHand: 0, reserved: 0, available: 0, version: 0 } : { ...base }
  for (const p of pending) {
    if (p.version <= state.version) continue
    state.onHand += p.delta.onHand
    state.reserved += p.delta.reserved
    state.available += p.delta.available
    state.version = p.version
  }
  return { state }
}

export async function compute(input: StoredChange, ctx: StageContext): Promise<Computed> {
  const { change } = input
  const { sku } = change
  const shard = shardOf(sku)
  const { base, source } = await readState(change, ctx)
  const pending = await ctx.effect('shard.get', { shard, sku }, () => world.shards.get(shard, sku))
  const { state } = fold(sku, base, pending)

  if (change.version <= state.version) {
    // A redelivered change: the state already contains it.
    const { onHand, reserved, available, version } = state
    return { sku, op: change.op, version, onHand, reserved, available, source, shard, applied: false }
  }

  const available = state.available + change.delta.available
  await ctx.effect('shard.add', { shard, sku, version: change.version, delta: change.delta }, () =>
    world.shards.add(shard, sku, { version: change.version, delta: change.delta }),
  )
  return {
    sku,
    op: change.op,
    version: change.version,
    onHand: change.after?.onHand ?? 0,
    reserved: change.after?.reserved ?? 0,
    available,
    source,
    shard,
    applied: true,
  }
}
