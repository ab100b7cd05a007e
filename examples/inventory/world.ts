/**
 * The simulated world the inventory stages run against: a KV store (change log plus the
 * materialised state, spread over replica nodes that can fail), the compute host's local
 * in-memory store, the per-shard buffers of compute, the ingest rate-limit buckets, the
 * availability DB, the stock cache and the query layer's product caches.
 *
 * Everything is in memory and driven by a simulated clock and seeded generators, so a
 * recording made against it is the same on every run. Stages reach the world only
 * through `ctx.effect(...)`; under replay those calls are played back and nothing here runs.
 *
 * Background jobs (KV flush every second, local-store refresh every five) run only when
 * the clock is moved with `advanceTo`/`sleep`, i.e. between stage calls: like timers in
 * a single-threaded service, they never interleave with a stage's own work.
 */
import type { AvailabilityRow, CacheEntry, InventoryState, PendingDelta, Product } from './types.js'

/** mulberry32: a tiny seeded PRNG with 32 bits of state, returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** FNV-1a, 32 bits: a stable hash for placing keys on nodes and shards. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

export const KV_NODES = 6
export const COMPUTE_SHARDS = 4

/** The KV replica node that serves a SKU's state. */
export function nodeOf(sku: string): string {
  return `kv-${fnv1a(sku) % KV_NODES}`
}

/** The compute shard that aggregates a SKU's changes. */
export function shardOf(sku: string): number {
  return fnv1a(`shard/${sku}`) % COMPUTE_SHARDS
}

/** A KV replica that cannot be reached. Compute retries on it, then degrades. */
export class KvUnavailableError extends Error {
  override readonly name = 'KvUnavailableError'
  readonly code = 'E_KV_UNAVAILABLE'
}

/** Reads of one KV node's replica fail in [from, to) (ms after the world's start). */
export interface Outage {
  node: string
  from: number
  to: number
  note: string
}

/**
 * The fault-injection schedule: which KV state reads fail. A read that fails takes the
 * 50 ms client timeout first. Writes go to the primary and are not affected.
 *
 * The windows are placed on the scripted scenes of workload.ts: the blips are shorter
 * than compute's first backoff (the retry reads KV again), the outages outlast it (the
 * retry degrades to the local store), and the last one is the incident.
 */
export const kvOutages: readonly Outage[] = [
  { node: nodeOf('sku:1007'), from: 20_000, to: 20_080, note: 'blip: attempt 2 reads KV again' },
  { node: nodeOf('sku:1023'), from: 33_000, to: 33_060, note: 'blip: attempt 2 reads KV again' },
  { node: nodeOf('sku:1015'), from: 47_200, to: 47_800, note: 'outage: attempt 2 reads a fresh local store' },
  {
    node: nodeOf('sku:1041'),
    from: 62_400,
    to: 63_200,
    note: 'outage: a new SKU is not in the local store yet; 3 attempts fail, the DLQ redelivers',
  },
  { node: nodeOf('sku:1030'), from: 88_000, to: 88_900, note: 'outage: local store + pending shard deltas' },
  {
    node: nodeOf('sku:1001'),
    from: 103_400,
    to: 104_000,
    note: 'the incident: the flash-sale SKU degrades to a local store last refreshed before the sale',
  },
]

export const FLUSH_EVERY_MS = 1_000
export const REFRESH_LOCAL_EVERY_MS = 5_000
const KV_TIMEOUT_MS = 50
const L1_TTL_MS = 10_000
const L2_TTL_MS = 60_000

/** A clock that moves only when told to. */
export class SimClock {
  constructor(private t: number) {}
  now(): number {
    return this.t
  }
  /** Moves forward (never back) to `t`. */
  set(t: number): void {
    this.t = Math.max(this.t, t)
  }
}

export interface WorldSetup {
  start: number
  seed: number
  stock: InventoryState[]
  catalog: Product[]
  outages?: readonly Outage[]
}

interface Expiring<T> {
  value: T
  expiresAt: number
}

const copy = <T>(v: T): T => structuredClone(v)

export class World {
  clock = new SimClock(0)
  start = 0
  private latency: () => number = mulberry32(1)
  private outages: readonly Outage[] = []
  private nextFlush = 0
  private nextRefresh = 0
  private revision = 0
  private readonly changes = new Map<string, { value: unknown; revision: number }>()
  private readonly state = new Map<string, InventoryState>()
  private readonly localStore = new Map<string, InventoryState>()
  private readonly pending = new Map<number, Map<string, PendingDelta[]>>()
  private readonly buckets = new Map<string, { tokens: number; updatedAt: number }>()
  private readonly rows = new Map<string, AvailabilityRow>()
  private readonly stockCache = new Map<string, Expiring<CacheEntry['value']>>()
  private readonly products = new Map<string, Product>()
  private readonly l1Entries = new Map<string, Expiring<Product>>()
  private readonly l2Entries = new Map<string, Expiring<Product>>()

  /** Empties the world and loads the initial stock (KV state, local store and DB agree). */
  reset(setup: WorldSetup): void {
    this.clock = new SimClock(setup.start)
    this.start = setup.start
    this.latency = mulberry32(setup.seed)
    this.outages = setup.outages ?? kvOutages
    for (const m of [this.changes, this.state, this.localStore, this.pending, this.buckets, this.rows])
      m.clear()
    for (const m of [this.stockCache, this.products, this.l1Entries, this.l2Entries]) m.clear()
    this.revision = 0
    for (const s of setup.stock) {
      this.state.set(s.sku, copy(s))
      this.rows.set(s.sku, { ...copy(s), updatedAt: setup.start })
    }
    for (const p of setup.catalog) this.products.set(p.sku, copy(p))
    this.nextFlush = setup.start + FLUSH_EVERY_MS
    this.nextRefresh = setup.start
    this.advanceTo(setup.start)
  }

  /** Moves the clock to `t`, running the background jobs that fall due on the way. */
  advanceTo(t: number): void {
    for (;;) {
      const due = Math.min(this.nextFlush, this.nextRefresh)
      if (due > t) break
      this.clock.set(due)
      // At a tie the flush goes first, so a refresh sees what was just flushed.
      if (this.nextFlush === due) {
        this.flush()
        this.nextFlush += FLUSH_EVERY_MS
      } else {
        this.refreshLocal()
        this.nextRefresh += REFRESH_LOCAL_EVERY_MS
      }
    }
    this.clock.set(t)
  }

  /** Waits `ms` of simulated time (a backoff, a deferral). */
  sleep(ms: number): Promise<void> {
    this.advanceTo(this.clock.now() + ms)
    return Promise.resolve()
  }

  /** Milliseconds since the world started. */
  elapsed(): number {
    return this.clock.now() - this.start
  }

  isDown(node: string): boolean {
    const t = this.elapsed()
    return this.outages.some((o) => o.node === node && t >= o.from && t < o.to)
  }

  /** Simulated I/O: takes a few ms of clock time. */
  private async io(minMs: number, maxMs: number): Promise<void> {
    this.clock.set(this.clock.now() + minMs + Math.floor(this.latency() * (maxMs - minMs + 1)))
  }

  /** Folds every shard's pending deltas into the KV state and empties the buffers. */
  private flush(): void {
    for (const bySku of this.pending.values()) {
      for (const [sku, deltas] of bySku) {
        const s = this.state.get(sku) ?? { sku, onHand: 0, reserved: 0, available: 0, version: 0 }
        for (const p of deltas) {
          s.onHand += p.delta.onHand
          s.reserved += p.delta.reserved
          s.available += p.delta.available
          s.version = p.version
        }
        this.state.set(sku, s)
      }
      bySku.clear()
    }
  }

  /** Copies the KV state into the local store; SKUs on unreachable nodes keep their old copy. */
  private refreshLocal(): void {
    for (const [sku, s] of this.state) {
      if (!this.isDown(nodeOf(sku))) this.localStore.set(sku, copy(s))
    }
  }

  readonly kv = {
    /** Appends to the change log. */
    put: async (key: string, value: unknown): Promise<{ revision: number }> => {
      await this.io(1, 3)
      const revision = ++this.revision
      this.changes.set(key, { value: copy(value), revision })
      return { revision }
    },
    get: async (key: string): Promise<{ value: unknown; revision: number } | null> => {
      await this.io(1, 2)
      const hit = this.changes.get(key)
      return hit === undefined ? null : copy(hit)
    },
    /** The SKU's materialised state as of the last flush. Fails while its node is down. */
    state: async (sku: string): Promise<InventoryState | null> => {
      const node = nodeOf(sku)
      if (this.isDown(node)) {
        this.clock.set(this.clock.now() + KV_TIMEOUT_MS)
        throw new KvUnavailableError(`${node}: read of state/${sku} timed out after ${KV_TIMEOUT_MS} ms`)
      }
      await this.io(1, 3)
      const s = this.state.get(sku)
      return s === undefined ? null : copy(s)
    },
  }

  readonly local = {
    get: async (sku: string): Promise<InventoryState | null> => {
      const s = this.localStore.get(sku)
      return s === undefined ? null : copy(s)
    },
  }

  readonly shards = {
    get: async (shard: number, sku: string): Promise<PendingDelta[]> =>
      copy(this.pending.get(shard)?.get(sku) ?? []),
    add: async (shard: number, sku: string, delta: PendingDelta): Promise<{ pending: number }> => {
      const bySku = this.pending.get(shard) ?? new Map<string, PendingDelta[]>()
      this.pending.set(shard, bySku)
      const list = bySku.get(sku) ?? []
      list.push(copy(delta))
      bySku.set(sku, list)
      return { pending: list.length }
    },
  }

  readonly limits = {
    get: async (bucket: string): Promise<{ tokens: number; updatedAt: number } | null> => {
      await this.io(0, 1)
      const b = this.buckets.get(bucket)
      return b === undefined ? null : copy(b)
    },
    put: async (bucket: string, state: { tokens: number; updatedAt: number }): Promise<'OK'> => {
      await this.io(0, 1)
      this.buckets.set(bucket, copy(state))
      return 'OK'
    },
  }

  readonly db = {
    /** Upsert guarded by version: an older or equal version changes nothing. */
    upsert: async (row: AvailabilityRow): Promise<{ affectedRows: number }> => {
      await this.io(2, 6)
      const old = this.rows.get(row.sku)
      if (old !== undefined && old.version >= row.version) return { affectedRows: 0 }
      this.rows.set(row.sku, copy(row))
      return { affectedRows: 1 }
    },
    product: async (sku: string): Promise<Product | null> => {
      await this.io(2, 5)
      const p = this.products.get(sku)
      return p === undefined ? null : copy(p)
    },
    /** The availability row, for the record script's summary. Not an effect. */
    row: (sku: string): AvailabilityRow | undefined => this.rows.get(sku),
  }

  readonly cache = {
    set: async (entry: CacheEntry): Promise<'OK'> => {
      await this.io(0, 1)
      this.stockCache.set(entry.key, {
        value: copy(entry.value),
        expiresAt: this.clock.now() + entry.ttlSec * 1000,
      })
      return 'OK'
    },
  }

  private readCache(level: Map<string, Expiring<Product>>, sku: string): Product | null {
    const hit = level.get(sku)
    if (hit === undefined || hit.expiresAt <= this.clock.now()) return null
    return copy(hit.value)
  }

  readonly l1 = {
    get: async (sku: string): Promise<Product | null> => this.readCache(this.l1Entries, sku),
    set: async (product: Product): Promise<'OK'> => {
      this.l1Entries.set(product.sku, { value: copy(product), expiresAt: this.clock.now() + L1_TTL_MS })
      return 'OK'
    },
  }

  readonly l2 = {
    get: async (sku: string): Promise<Product | null> => {
      await this.io(0, 1)
      return this.readCache(this.l2Entries, sku)
    },
    set: async (product: Product): Promise<'OK'> => {
      await this.io(0, 1)
      this.l2Entries.set(product.sku, { value: copy(product), expiresAt: this.clock.now() + L2_TTL_MS })
      return 'OK'
    },
  }

  /** The KV state of a SKU, for the record script's summary. Not an effect. */
  kvState(sku: string): InventoryState | undefined {
    return this.state.get(sku)
  }
}

/** The world the stages talk to: the production service's clients, simulated. */
export const world = new World()
