/**
 * The floor for write benchmarks: plain better-sqlite3 inserting the rows the recorder
 * would write, into the bundle schema, with the pragmas and statements of
 * src/bundle/writer.ts and the recorder's batch size, on the calling thread. No
 * encoding, no thread hop, no queue: what SQLite alone costs for the same rows.
 */
import Database from 'better-sqlite3'
import { APPLICATION_ID, FORMAT_VERSION, SCHEMA_V1 } from '../dist/bundle/schema.js'
import type { RecordUnit } from '../dist/bundle/types.js'
import { newRecordId } from '../dist/recorder/ids.js'

/** Pragmas src/bundle/writer.ts applies to a fresh bundle (page_size aside). */
export const WRITER_PRAGMAS = [
  'busy_timeout = 1000',
  'journal_mode = WAL',
  'synchronous = NORMAL',
  'secure_delete = ON',
] as const

/** Captures per transaction: the recorder's WriterLink batch size (src/recorder/recorder.ts). */
export const RECORDER_BATCH_CAPTURES = 256

/** Records of `stagesPerRecord` captures each, payload texts taken in turn from `texts`. */
export function makeUnits(
  records: number,
  stagesPerRecord: number,
  texts: readonly { input: string; output: string }[],
): RecordUnit[] {
  const units: RecordUnit[] = []
  let t = 0
  const now = Date.now()
  for (let r = 0; r < records; r++) {
    const id = newRecordId(now + r)
    const captures = []
    for (let s = 0; s < stagesPerRecord; s++) {
      const p = texts[t++ % texts.length]!
      captures.push({
        seq: s,
        stage: `stage${s}`,
        attempt: 1,
        input: p.input,
        output: p.output,
        error: null,
        startedAt: now + r,
        durationMs: 0.012,
        effects: [],
      })
    }
    units.push({
      record: {
        id,
        key: `sku:${1000 + (r % 5000)}`,
        startedAt: now + r,
        endedAt: now + r,
        status: 'ok',
        error: null,
        host: 'bench',
        pid: process.pid,
        build: 'bench',
      },
      captures,
    })
  }
  return units
}

export interface RawInsertOptions {
  pageSize: number
  batchCaptures?: number
}

/**
 * Creates a bundle at `path` and writes `units` in transactions of about `batchCaptures`
 * captures, then checkpoints and closes as BundleWriter.close() does. Returns ms taken,
 * open to close.
 */
export function rawInsert(path: string, units: readonly RecordUnit[], options: RawInsertOptions): number {
  const t0 = performance.now()
  const db = new Database(path)
  db.pragma(`page_size = ${options.pageSize}`)
  db.pragma(`application_id = ${APPLICATION_ID}`)
  db.pragma(`user_version = ${FORMAT_VERSION}`)
  for (const p of WRITER_PRAGMAS) db.pragma(p)
  db.exec(SCHEMA_V1)
  const insertRecord = db.prepare(
    `INSERT INTO records (id, key, started_at, ended_at, status, error, host, pid, build)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET ended_at = excluded.ended_at, status = excluded.status,
       error = excluded.error`,
  )
  const insertCapture = db.prepare(
    `INSERT INTO captures (record_id, seq, stage, attempt, input, output, error, started_at,
       duration_ms, build, host, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  )
  const write = db.transaction((batch: readonly RecordUnit[]) => {
    for (const unit of batch) {
      const r = unit.record
      insertRecord.run(r.id, r.key, r.startedAt, r.endedAt, r.status, r.error, r.host, r.pid, r.build)
      for (const c of unit.captures) {
        insertCapture.run(
          r.id,
          c.seq,
          c.stage,
          c.attempt,
          c.input,
          c.output,
          c.error,
          c.startedAt,
          c.durationMs,
          r.build,
          r.host,
          r.pid,
        )
      }
    }
  })
  const limit = options.batchCaptures ?? RECORDER_BATCH_CAPTURES
  let batch: RecordUnit[] = []
  let inBatch = 0
  for (const unit of units) {
    batch.push(unit)
    inBatch += unit.captures.length
    if (inBatch >= limit) {
      write(batch)
      batch = []
      inBatch = 0
    }
  }
  if (batch.length > 0) write(batch)
  db.pragma('wal_checkpoint(TRUNCATE)')
  db.pragma('journal_mode = DELETE')
  db.close()
  return performance.now() - t0
}

/** The SQLite library version better-sqlite3 was built with. */
export function sqliteVersion(): string {
  const db = new Database(':memory:')
  try {
    return db.prepare('SELECT sqlite_version()').pluck().get() as string
  } finally {
    db.close()
  }
}
