/**
 * Stage 4, compute: real-time availability of a SKU.
 *
 * The state a change is folded onto is the SKU's materialised state in KV plus the
 * deltas this compute shard has folded since the last flush (concurrent changes of the
 * same SKU that KV does not have yet). When KV cannot be read, the first attempt fails
 * and the runner retries; a retry that still cannot read KV degrades to the host's local
 * in-memory copy of the KV state.
 *
 * `available` is folded from deltas rather than recomputed from the row: the shard
 * buffer and the flusher work on deltas, and compute's figure has to agree with theirs.
 * A fold is only right on the version just before the change, so the fold checks that
 * the versions it adds up are contiguous. When they are not (a local copy older than the
 * last flush), the row image in the change is the truth.
 *
 * This is the fixed local build; prod/compute.ts is what production ran.
 */
import type { StageContext } from 'retrace'
import type { Change, Computed, InventoryState, PendingDelta, Stock, StoredChange } from '../types.js'
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

/** Adds the pending deltas newer than the base; notes whether any version was skipped. */
function fold(
  sku: string,
  base: InventoryState | null,
  pending: PendingDelta[],
): { state: InventoryState; contiguous: boolean } {
  const state = base === null ? { sku, onHand: 0, reserved: 0, available: 0, version: 0 } : { ...base }
  let contiguous = true
  for (const p of pending) {
    if (p.version <= state.version) continue
    if (p.version !== state.version + 1) contiguous = false
    state.onHand += p.delta.onHand
    state.reserved += p.delta.reserved
    state.available += p.delta.available
    state.version = p.version
  }
  return { state, contiguous }
}

const availableOf = (s: Stock | null): number => (s === null ? 0 : s.onHand - s.reserved)

export async function compute(input: StoredChange, ctx: StageContext): Promise<Computed> {
  const { change } = input
  const { sku } = change
  const shard = shardOf(sku)
  const { base, source } = await readState(change, ctx)
  const pending = await ctx.effect('shard.get', { shard, sku }, () => world.shards.get(shard, sku))
  const { state, contiguous } = fold(sku, base, pending)

  if (change.version <= state.version) {
    // A redelivered change: the state already contains it.
    const { onHand, reserved, available, version } = state
    return { sku, op: change.op, version, onHand, reserved, available, source, shard, applied: false }
  }

  const onTop = contiguous && state.version === change.version - 1
  const available = onTop ? state.available + change.delta.available : availableOf(change.after)
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
