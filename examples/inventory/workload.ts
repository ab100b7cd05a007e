/**
 * The workload of the example recording: about two minutes of `shop.inventory` row
 * changes for 42 SKUs, generated from a seed. Background traffic (orders reserving stock,
 * shipments, cancellations, restocks, stock counts) plus scripted scenes placed on the
 * fault schedule in world.ts:
 *
 * - KV blips and outages: retries, degraded reads of a fresh local store, one record
 *   that fails three compute attempts (the dead-letter queue redelivers it);
 * - a promotion burst that the ingest rate limit defers;
 * - malformed events: a DDL statement, a row of another table, a truncated event, a
 *   minimal row image (each followed by the good event where it was a real change);
 * - a binlog reader restart that redelivers two events;
 * - the incident: a flash sale takes sku:1001 from 90 available to 7, and the next
 *   change (3 more reserved, 4 left) meets a KV outage.
 */
import type { BinlogEvent, InventoryState, Product } from './types.js'
import { mulberry32 } from './world.js'

/** 2026-03-02T09:00:00Z */
export const START = Date.UTC(2026, 2, 2, 9, 0, 0)
export const DURATION_MS = 125_000
export const SEED = 20260302

export interface Timed {
  /** ms after START */
  at: number
  event: BinlogEvent
}

export interface Workload {
  stock: InventoryState[]
  catalog: Product[]
  events: Timed[]
}

const NAMES = [
  'Ceramic Pour-Over Dripper',
  'Merino Wool Hiking Socks',
  'Cast Iron Skillet 26 cm',
  'Bamboo Cutting Board',
  'Stainless Steel Water Bottle 750 ml',
  'Linen Tea Towel Set',
  'LED Desk Lamp',
  'Wireless Kitchen Scale',
  'Trail Running Shoes',
  'Insulated Lunch Box',
  'Glass Food Storage Set',
  'Canvas Weekender Bag',
  'Wool Throw Blanket',
  'Chef Knife 20 cm',
  'French Press 1 l',
  'Yoga Mat 6 mm',
  'Down Pillow',
  'Enamel Camping Mug',
  'Reading Glasses +1.5',
  'Cotton Bath Towel',
  'Rain Jacket',
  'Digital Meat Thermometer',
  'Leather Card Holder',
  'Silicone Baking Mat',
  'Hand Grinder for Coffee',
  'Aluminium Bike Bottle Cage',
  'Beeswax Food Wraps',
  'Folding Step Stool',
  'Oak Serving Tray',
  'Espresso Cups (set of 4)',
  'Headlamp 300 lm',
  'Kids Rain Boots',
  'Garden Pruning Shears',
  'Porcelain Dinner Plates (set of 6)',
  'Travel Adapter',
  'Cork Yoga Block',
  'Notebook A5 Dotted',
  'Fountain Pen',
  'Cashmere Beanie',
  'Waffle Bathrobe',
  'Ceramic Planter 18 cm',
  'Pizza Stone',
]

export const COLUMNS = ['sku', 'on_hand', 'reserved', 'version', 'updated_at']
const SERVER_UUID = '3e11fa47-71ca-11e1-9e33-c80aa9429562'
const BINLOG_FILE = 'mysql-bin.000417'

const skuAt = (i: number): string => `sku:${1001 + i}`

/** Builds the workload. Same seed, same workload. */
export function buildWorkload(seed = SEED): Workload {
  const rng = mulberry32(seed)
  const int = (lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1))

  const catalog: Product[] = NAMES.map((title, i) => ({
    sku: skuAt(i),
    title,
    price: { amount: int(4, 180) * 100 - 1, currency: 'EUR' },
  }))

  // sku:1041 and sku:1042 are listed during the run; the others are in stock from the start.
  const stock: InventoryState[] = []
  for (let i = 0; i < 40; i++) {
    const onHand = int(20, 300)
    const reserved = int(0, Math.floor(onHand / 5))
    stock.push({ sku: skuAt(i), onHand, reserved, available: onHand - reserved, version: int(1, 6) })
  }
  // The SKU of the incident: 90 available before its flash sale.
  stock[0] = { sku: 'sku:1001', onHand: 100, reserved: 10, available: 90, version: 3 }

  // The MySQL truth, moved by every real change the workload emits.
  const truth = new Map(
    stock.map((s) => [s.sku, { onHand: s.onHand, reserved: s.reserved, version: s.version }]),
  )
  let txn = 48_211
  let pos = 4
  const events: Timed[] = []
  const emitted: Timed[] = []

  const header = (at: number): BinlogEvent['header'] => {
    pos += int(160, 240)
    // Commits land a few ms before the reader sees them; MySQL stamps whole seconds.
    return {
      serverId: 11,
      gtid: `${SERVER_UUID}:${txn++}`,
      file: BINLOG_FILE,
      pos,
      timestamp: Math.floor((START + at - int(3, 40)) / 1000),
    }
  }
  const stamp = (at: number): string => new Date(START + at).toISOString().slice(0, 19).replace('T', ' ')
  const values = (sku: string, r: { onHand: number; reserved: number; version: number }, at: number) => [
    sku,
    r.onHand,
    r.reserved,
    r.version,
    stamp(at),
  ]

  /** A real change of a row: moves the truth and emits its event. */
  const change = (
    at: number,
    sku: string,
    next: (r: { onHand: number; reserved: number }) => void,
  ): Timed => {
    const before = truth.get(sku)
    const after = {
      onHand: before?.onHand ?? 0,
      reserved: before?.reserved ?? 0,
      version: (before?.version ?? 0) + 1,
    }
    next(after)
    truth.set(sku, after)
    const row =
      before === undefined
        ? { after: values(sku, after, at) }
        : { before: values(sku, before, at), after: values(sku, after, at) }
    const timed: Timed = {
      at,
      event: {
        header: header(at),
        schema: 'shop',
        table: 'inventory',
        type: before === undefined ? 'WRITE_ROWS' : 'UPDATE_ROWS',
        columns: COLUMNS,
        rows: [row],
      },
    }
    events.push(timed)
    emitted.push(timed)
    return timed
  }
  const remove = (at: number, sku: string): void => {
    const before = truth.get(sku)!
    truth.delete(sku)
    const timed: Timed = {
      at,
      event: {
        header: header(at),
        schema: 'shop',
        table: 'inventory',
        type: 'DELETE_ROWS',
        columns: COLUMNS,
        rows: [{ before: values(sku, before, at) }],
      },
    }
    events.push(timed)
    emitted.push(timed)
  }
  type Mutation = (r: { onHand: number; reserved: number }) => void
  const reserve =
    (q: number): Mutation =>
    (r) => {
      r.reserved += q
    }
  const ship =
    (q: number): Mutation =>
    (r) => {
      r.onHand -= q
      r.reserved -= q
    }
  const cancel: Mutation = (r) => {
    r.reserved -= 1
  }
  const restock =
    (q: number): Mutation =>
    (r) => {
      r.onHand += q
    }
  const recount =
    (d: number): Mutation =>
    (r) => {
      r.onHand = Math.max(r.reserved, r.onHand + d)
    }
  const list =
    (onHand: number): Mutation =>
    (r) => {
      r.onHand = onHand
    }

  // A background change: what an order system and a warehouse do to a row all day.
  const background = (at: number, sku: string): void => {
    const r = truth.get(sku)!
    const available = r.onHand - r.reserved
    const roll = rng()
    if (roll < 0.45 && available >= 3) change(at, sku, reserve(int(1, 3)))
    else if (roll < 0.7 && r.reserved > 0) change(at, sku, ship(int(1, Math.min(4, r.reserved))))
    else if (roll < 0.78 && r.reserved > 0) change(at, sku, cancel)
    else if (roll < 0.9 || available < 3) change(at, sku, restock(int(20, 80)))
    else change(at, sku, recount(int(-2, 2)))
  }

  // Scripted scenes, by time. Each runs when the background generator reaches its time.
  const scenes: { at: number; run: (at: number) => void }[] = [
    // A DDL statement in the row stream: not a row event.
    {
      at: 14_200,
      run: (at) =>
        events.push({
          at,
          event: {
            header: header(at),
            schema: 'shop',
            table: 'inventory',
            type: 'QUERY',
            columns: [],
            rows: [],
          },
        }),
    },
    // KV blips: the first compute attempt fails, the retry reads KV.
    { at: 20_010, run: (at) => void change(at, 'sku:1007', reserve(1)) },
    // A new product is listed.
    { at: 30_500, run: (at) => void change(at, 'sku:1042', list(40)) },
    { at: 33_010, run: (at) => void change(at, 'sku:1023', reserve(2)) },
    // A row of another table routed onto this stream.
    {
      at: 38_700,
      run: (at) => {
        const r = truth.get('sku:1012')!
        events.push({
          at,
          event: {
            header: header(at),
            schema: 'shop',
            table: 'inventory_audit',
            type: 'UPDATE_ROWS',
            columns: COLUMNS,
            rows: [
              {
                before: values('sku:1012', r, at),
                after: values('sku:1012', { ...r, version: r.version + 1 }, at),
              },
            ],
          },
        })
      },
    },
    // KV outage: both attempts fail, the local store is fresh.
    { at: 47_250, run: (at) => void change(at, 'sku:1015', reserve(1)) },
    // A truncated event, then the reader re-reads it whole.
    {
      at: 56_400,
      run: (at) => {
        const good = change(at, 'sku:1019', ship(1))
        events.splice(events.indexOf(good), 0, { at, event: { ...structuredClone(good.event), rows: [] } })
      },
    },
    // A new product, and its first update during an outage of its KV node: not in the
    // local store yet, so all three attempts fail and the dead-letter queue redelivers it.
    { at: 61_200, run: (at) => void change(at, 'sku:1041', list(25)) },
    { at: 62_450, run: (at) => void change(at, 'sku:1041', reserve(2)) },
    // A promotion: 25 orders in 0.8 s, more than the ingest bucket holds.
    ...Array.from({ length: 25 }, (_, i) => ({
      at: 75_000 + i * 32,
      run: (at: number) => void change(at, skuAt([2, 4, 8, 13, 16, 21, 26, 33][i % 8]!), reserve(1)),
    })),
    // The binlog reader restarts from an older position and redelivers two events.
    {
      at: 80_000,
      run: (at) => {
        for (const e of emitted.slice(-2)) events.push({ at, event: structuredClone(e.event) })
      },
    },
    // KV outage with a change of the same SKU still pending in the shard buffer.
    { at: 88_300, run: (at) => void change(at, 'sku:1030', reserve(1)) },
    { at: 88_500, run: (at) => void change(at, 'sku:1030', reserve(2)) },
    // A discontinued product: the rest is written off, then the row is removed.
    {
      at: 90_000,
      run: (at) =>
        void change(at, 'sku:1039', (x) => {
          x.onHand = 0
          x.reserved = 0
        }),
    },
    { at: 90_100, run: (at) => remove(at, 'sku:1039') },
    // A replica with binlog_row_image=MINIMAL served one event; the reader re-reads it.
    {
      at: 96_100,
      run: (at) => {
        const good = change(at, 'sku:1027', reserve(1))
        const row = { after: good.event.rows[0]!.after! }
        events.splice(events.indexOf(good), 0, { at, event: { ...structuredClone(good.event), rows: [row] } })
      },
    },
    // The incident. A flash sale on sku:1001 right after the 100 s local-store refresh...
    { at: 100_300, run: (at) => void change(at, 'sku:1001', reserve(30)) },
    { at: 100_900, run: (at) => void change(at, 'sku:1001', reserve(25)) },
    { at: 101_600, run: (at) => void change(at, 'sku:1001', ship(60)) },
    { at: 102_100, run: (at) => void change(at, 'sku:1001', reserve(28)) },
    { at: 102_700, run: (at) => void change(at, 'sku:1001', ship(30)) },
    // ...and three more reserved (10 on hand, 6 reserved: 4 left) while its KV node is down.
    { at: 103_500, run: (at) => void change(at, 'sku:1001', reserve(3)) },
  ]
  scenes.sort((a, b) => a.at - b.at)

  // SKUs the background leaves alone, and when. sku:1001 belongs to the incident. The
  // others keep the scripted scenes as scripted: sku:1041 gets no change before the DLQ
  // has redelivered its failed one, and sku:1015 and sku:1030 get none that a flush
  // could fold into KV after the last local-store refresh before their degraded reads
  // (that would make their local copy stale too, and the incident would not be the only one).
  const quiet: { sku: string; from: number; to: number }[] = [
    { sku: 'sku:1001', from: 0, to: DURATION_MS },
    { sku: 'sku:1041', from: 0, to: 70_000 },
    { sku: 'sku:1042', from: 0, to: 31_000 },
    { sku: 'sku:1039', from: 89_000, to: DURATION_MS },
    { sku: 'sku:1030', from: 84_000, to: 89_000 },
    { sku: 'sku:1015', from: 44_000, to: 48_000 },
  ]
  const eligible = (sku: string, at: number): boolean =>
    truth.has(sku) && !quiet.some((q) => q.sku === sku && at >= q.from && at < q.to)
  // Popular SKUs change more often: weights fall off with the SKU's rank.
  const weights = NAMES.map((_, i) => 1 / (i + 1) ** 0.6)

  let next = 0
  for (let at = 300; at < DURATION_MS; at += Math.max(20, Math.round(-Math.log(1 - rng()) * 320))) {
    while (next < scenes.length && scenes[next]!.at <= at) scenes[next]!.run(scenes[next++]!.at)
    const candidates = NAMES.map((_, i) => skuAt(i)).filter((sku) => eligible(sku, at))
    const weightOf = (sku: string): number => weights[Number(sku.slice(4)) - 1001]!
    let pick = rng() * candidates.reduce((n, sku) => n + weightOf(sku), 0)
    let sku = candidates[0]!
    for (const c of candidates) {
      sku = c
      pick -= weightOf(c)
      if (pick < 0) break
    }
    background(at, sku)
  }
  while (next < scenes.length) scenes[next]!.run(scenes[next++]!.at)

  events.sort((a, b) => a.at - b.at)
  return { stock, catalog, events }
}
