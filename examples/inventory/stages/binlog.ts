/**
 * Stage 1, binlog capture: turns a MySQL row event of `shop.inventory` into a change.
 * Row events carry positional values; the column names come from the table map event.
 * A malformed event throws: it is parked, never guessed at.
 */
import type { StageContext } from 'retrace'
import type { BinlogEvent, Change, Op, Stock } from '../types.js'

export const TABLE = 'shop.inventory'

const OPS: Readonly<Record<string, Op>> = {
  WRITE_ROWS: 'insert',
  UPDATE_ROWS: 'update',
  DELETE_ROWS: 'delete',
}

export class BinlogFormatError extends Error {
  override readonly name = 'BinlogFormatError'
  readonly code = 'E_BINLOG_FORMAT'
}

interface Image extends Stock {
  sku: string
  version: number
}

function count(row: Record<string, unknown>, column: string, where: string): number {
  const v = row[column]
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new BinlogFormatError(
      `${where}: ${column} must be a non-negative integer, got ${JSON.stringify(v)}`,
    )
  }
  return v
}

function image(columns: string[], values: unknown[] | undefined, where: string): Image {
  if (values === undefined)
    throw new BinlogFormatError(`${where} image is missing (binlog_row_image must be FULL)`)
  if (values.length !== columns.length) {
    throw new BinlogFormatError(
      `${where} image has ${values.length} values but the table map has ${columns.length} columns`,
    )
  }
  const row: Record<string, unknown> = Object.fromEntries(columns.map((c, i) => [c, values[i]]))
  if (typeof row.sku !== 'string' || !row.sku.startsWith('sku:')) {
    throw new BinlogFormatError(`${where}: sku must look like "sku:1234", got ${JSON.stringify(row.sku)}`)
  }
  return {
    sku: row.sku,
    onHand: count(row, 'on_hand', where),
    reserved: count(row, 'reserved', where),
    version: count(row, 'version', where),
  }
}

const availableOf = (s: Stock | null): number => (s === null ? 0 : s.onHand - s.reserved)
const stockOf = (i: Image | null): Stock | null =>
  i === null ? null : { onHand: i.onHand, reserved: i.reserved }

export async function binlog(event: BinlogEvent, ctx: StageContext): Promise<Change> {
  const at = `${event.header.file}:${event.header.pos}`
  const op = OPS[event.type]
  if (op === undefined) throw new BinlogFormatError(`${at}: ${event.type} is not a row event`)
  const table = `${event.schema}.${event.table}`
  if (table !== TABLE) throw new BinlogFormatError(`${at}: row event for ${table}, expected ${TABLE}`)
  const [row, ...more] = event.rows
  if (row === undefined || more.length > 0) {
    throw new BinlogFormatError(`${at}: expected one row, got ${event.rows.length} (truncated event?)`)
  }

  const before = op === 'insert' ? null : image(event.columns, row.before, `${at} before`)
  const after = op === 'delete' ? null : image(event.columns, row.after, `${at} after`)
  const sku = (after ?? before)!.sku
  if (before !== null && after !== null && before.sku !== after.sku) {
    throw new BinlogFormatError(`${at}: the row changed its sku from ${before.sku} to ${after.sku}`)
  }
  const b = stockOf(before)
  const a = stockOf(after)
  const committedAt = event.header.timestamp * 1000
  return {
    sku,
    op,
    version: after?.version ?? before!.version + 1,
    before: b,
    after: a,
    delta: {
      onHand: (a?.onHand ?? 0) - (b?.onHand ?? 0),
      reserved: (a?.reserved ?? 0) - (b?.reserved ?? 0),
      available: availableOf(a) - availableOf(b),
    },
    gtid: event.header.gtid,
    position: { file: event.header.file, pos: event.header.pos },
    committedAt,
    lagMs: ctx.now() - committedAt,
  }
}
