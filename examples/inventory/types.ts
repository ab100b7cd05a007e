/**
 * The payloads that travel the inventory pipeline, one type per seam:
 *
 *     BinlogEvent -binlog-> Change -ingest-> Admission -kv-> StoredChange
 *       -compute-> Computed -store-> Written -query-> Screen
 */

/** A MySQL row event as the binlog reader hands it over: positional values, one row. */
export interface BinlogEvent {
  header: {
    serverId: number
    gtid: string
    file: string
    pos: number
    /** Commit time in whole seconds, as MySQL writes it. */
    timestamp: number
  }
  schema: string
  table: string
  /** WRITE_ROWS, UPDATE_ROWS, DELETE_ROWS; other event types are not row changes. */
  type: string
  /** Column names from the table map event, in value order. */
  columns: string[]
  rows: { before?: unknown[]; after?: unknown[] }[]
}

export interface Stock {
  onHand: number
  reserved: number
}

export type Op = 'insert' | 'update' | 'delete'

/** One row change of `shop.inventory`, parsed. */
export interface Change {
  sku: string
  op: Op
  /** Row version after the change (a delete is the row's last version + 1). */
  version: number
  before: Stock | null
  after: Stock | null
  /** after - before, with available = onHand - reserved. */
  delta: { onHand: number; reserved: number; available: number }
  gtid: string
  position: { file: string; pos: number }
  committedAt: number
  /** How far behind the commit the pipeline saw the change. */
  lagMs: number
}

/** The ingest layer's decision about one change. */
export interface Admission {
  admitted: boolean
  change: Change
  /** Tokens left in the bucket after this decision. */
  tokens: number
  /** When deferred: how long to wait before asking again. */
  retryAfterMs: number | null
}

/** A change as written to and read back from the KV change log. */
export interface StoredChange {
  change: Change
  kvKey: string
  revision: number
}

/** A SKU's materialised stock, as the KV state and the local store hold it. */
export interface InventoryState {
  sku: string
  onHand: number
  reserved: number
  available: number
  version: number
}

/** A change folded by this compute shard but not yet flushed into the KV state. */
export interface PendingDelta {
  version: number
  delta: Change['delta']
}

export interface Computed {
  sku: string
  op: Op
  version: number
  onHand: number
  reserved: number
  /** The number the customer sees. */
  available: number
  /** Where the state the change was folded onto came from. */
  source: 'kv' | 'local'
  shard: number
  /** false for a change the state already contains (a redelivered event). */
  applied: boolean
}

export interface AvailabilityRow {
  sku: string
  onHand: number
  reserved: number
  available: number
  version: number
  updatedAt: number
}

export interface CacheEntry {
  key: string
  value: { available: number; version: number }
  ttlSec: number
}

/** The row written to the DB, with the cache entry written next to it. */
export interface Written extends AvailabilityRow {
  cache: CacheEntry
  /** false when the DB already had this version or a newer one. */
  written: boolean
}

export interface Product {
  sku: string
  title: string
  price: { amount: number; currency: string }
}

/** The stock block of the product page, as the customer sees it. */
export interface Screen {
  sku: string
  title: string
  price: { amount: number; currency: string }
  available: number
  badge: string
  /** Which cache level answered the product lookup. */
  servedFrom: 'l1' | 'l2' | 'db'
}
