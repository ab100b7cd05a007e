/**
 * Large bundles, fast: raw better-sqlite3 into the bundle schema (dist/bundle/schema.js)
 * with the application_id, user_version and manifest a recorder writes, big transactions,
 * journal off while writing, then left in rollback-journal mode (no -wal beside it) as a
 * closed recorder leaves it. Rows are the six-stage chains of bench/fixtures-replay.ts
 * (256 distinct chains, cycled under fresh record ids), so the bundle reads like a real
 * recording: seams line up, every capture has its clock and effect rows.
 */
import { existsSync, renameSync, rmSync, statSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import Database from 'better-sqlite3'
import { APPLICATION_ID, FORMAT_VERSION, PAGE_SIZE, SCHEMA_V1 } from '../dist/bundle/schema.js'
import { newRecordId } from '../dist/recorder/ids.js'
import { version } from '../dist/version.js'
import { type ChainTexts, chainTexts, loadStageModule } from './fixtures-replay.js'
import { note } from './lib.js'

export interface BigBundle {
  path: string
  bytes: number
  records: number
  /** A record id from the middle of the bundle (by start time). */
  middleId: string
  generatedS: number
}

function describe(path: string, generatedS: number): BigBundle {
  const db = new Database(path, { readonly: true, fileMustExist: true })
  try {
    const records = Number(db.prepare('SELECT count(*) FROM records').pluck().get())
    const middleId = String(
      db
        .prepare('SELECT id FROM records ORDER BY started_at, id LIMIT 1 OFFSET ?')
        .pluck()
        .get(Math.floor(records / 2)),
    )
    return { path, bytes: statSync(path).size, records, middleId, generatedS }
  } finally {
    db.close()
  }
}

/**
 * A bundle of about `bytes` bytes at `path`; an existing file of at least 95% of that size
 * (and a valid bundle) is reused unless `fresh`.
 */
export async function bigBundle(path: string, bytes: number, fresh = false): Promise<BigBundle> {
  if (!fresh && existsSync(path) && statSync(path).size >= 0.95 * bytes) {
    try {
      return describe(path, 0)
    } catch {
      // Not readable as expected: generate it again.
    }
  }
  note(`generating a ${(bytes / 1024 ** 3).toFixed(2)} GiB bundle at ${path}`)
  const t0 = performance.now()
  const mod = await loadStageModule()
  const start = 1_760_000_000_000
  const chains: ChainTexts[] = Array.from({ length: 256 }, (_, i) => chainTexts(mod, i, start))
  const partial = `${path}.partial`
  rmSync(partial, { force: true })
  const db = new Database(partial)
  try {
    db.pragma(`page_size = ${PAGE_SIZE}`)
    db.pragma(`application_id = ${APPLICATION_ID}`)
    db.pragma(`user_version = ${FORMAT_VERSION}`)
    db.pragma('journal_mode = OFF')
    db.pragma('synchronous = OFF')
    db.exec(SCHEMA_V1)
    const manifest = {
      format: 'retrace-bundle',
      formatVersion: FORMAT_VERSION,
      pipeline: 'bench-inventory',
      recorderVersion: version,
      created: new Date(start).toISOString(),
      builds: ['bench'],
      redaction: { rules: [], equalityPreserving: false },
    }
    const put = db.prepare('INSERT INTO manifest (key, value) VALUES (?, ?)')
    for (const [k, v] of Object.entries(manifest)) put.run(k, JSON.stringify(v))
    const insRecord = db.prepare(
      `INSERT INTO records (id, key, started_at, ended_at, status, error, host, pid, build)
       VALUES (?, ?, ?, ?, 'ok', NULL, 'bench-host', 4242, 'bench')`,
    )
    const insCapture = db.prepare(
      `INSERT INTO captures (record_id, seq, stage, attempt, input, output, error, started_at,
         duration_ms, build, host, pid) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, 'bench', 'bench-host', 4242)`,
    )
    const insEffect = db.prepare(
      'INSERT INTO effects (capture_id, seq, kind, name, args, result, error) VALUES (?, ?, ?, ?, ?, ?, NULL)',
    )
    let r = 0
    const batch = db.transaction((n: number) => {
      for (let k = 0; k < n; k++, r++) {
        const chain = chains[r % chains.length]!
        const at = start + r * 20
        const id = newRecordId(at)
        insRecord.run(id, chain.key, at, at + 18)
        for (const c of chain.captures) {
          const cid = insCapture.run(
            id,
            c.seq,
            c.stage,
            c.attempt,
            c.input,
            c.output,
            at + c.seq * 3,
            c.durationMs,
          ).lastInsertRowid
          for (const e of c.effects) insEffect.run(cid, e.seq, e.kind, e.name, e.args, e.result)
        }
      }
    })
    const size = (): number =>
      (db.pragma('page_count', { simple: true }) as number) *
      (db.pragma('page_size', { simple: true }) as number)
    // Small batches (a few MB each) so the file stops close to the size asked for.
    while (size() < bytes) batch(100)
    db.pragma('journal_mode = DELETE')
  } finally {
    db.close()
  }
  renameSync(partial, path)
  return describe(path, (performance.now() - t0) / 1000)
}
