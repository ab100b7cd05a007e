/**
 * Raw reads of a bundle file for tests, straight through better-sqlite3 (no retrace
 * reader in between), so tests check what is really on disk.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import Database from 'better-sqlite3'
import type { RecordUnit } from '../../src/bundle/types.js'

/** The records row of a record unit written in tests: one that ended well, of `build`. */
export function okRecord(id: string, build: string | null = 'b1'): RecordUnit['record'] {
  return {
    id,
    key: `key:${id}`,
    startedAt: 1000,
    endedAt: 1001,
    status: 'ok',
    error: null,
    host: 'h',
    pid: 1,
    build,
  }
}

export interface RawRecord {
  id: string
  key: string
  started_at: number
  ended_at: number | null
  status: string
  error: string | null
  host: string | null
  pid: number | null
  build: string | null
}

export interface RawEffect {
  capture_id: number
  seq: number
  kind: string
  name: string
  args: string | null
  result: string | null
  error: string | null
}

export interface RawCapture {
  id: number
  record_id: string
  seq: number
  stage: string
  attempt: number
  input: string
  output: string | null
  error: string | null
  started_at: number
  duration_ms: number
  build: string | null
  host: string | null
  pid: number | null
  effects: RawEffect[]
}

export interface RawBundle {
  records: RawRecord[]
  captures: RawCapture[]
  manifest: Record<string, unknown>
}

/** Opens the file, runs `fn`, and always closes the handle. */
export function withDb<T>(
  path: string,
  fn: (db: Database.Database) => T,
  readonly = false,
  create = false,
): T {
  const db = new Database(path, { readonly, fileMustExist: !create })
  try {
    return fn(db)
  } finally {
    db.close()
  }
}

/** Everything in a bundle, records by start, captures by record and seq. */
export function readBundle(path: string): RawBundle {
  return withDb(path, (db) => {
    const records = db.prepare('SELECT * FROM records ORDER BY started_at, id').all() as RawRecord[]
    const rows = db.prepare('SELECT * FROM captures ORDER BY record_id, seq').all() as Omit<
      RawCapture,
      'effects'
    >[]
    const effects = db.prepare('SELECT * FROM effects ORDER BY capture_id, seq').all() as RawEffect[]
    const captures = rows.map((c) => ({ ...c, effects: effects.filter((e) => e.capture_id === c.id) }))
    const manifest: Record<string, unknown> = {}
    for (const row of db.prepare('SELECT key, value FROM manifest').all() as {
      key: string
      value: string
    }[]) {
      manifest[row.key] = JSON.parse(row.value)
    }
    return { records, captures, manifest }
  })
}

/** `PRAGMA integrity_check` result rows joined; 'ok' for a sound file. */
export function integrityCheck(path: string): string {
  return withDb(path, (db) =>
    (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('\n'),
  )
}

/** The bundle file and its companions (`-wal`, `-shm`, `-journal`) that exist now. */
export function bundleFiles(path: string): string[] {
  const name = basename(path)
  return readdirSync(dirname(path))
    .filter((f) => f === name || f.startsWith(`${name}-`))
    .map((f) => join(dirname(path), f))
    .sort()
}

/** How many times `needle` (UTF-8) occurs in the raw bytes of the bundle and companions. */
export function countBytes(path: string, needle: string): number {
  const pattern = Buffer.from(needle, 'utf8')
  let n = 0
  for (const file of bundleFiles(path)) {
    const bytes = readFileSync(file)
    for (let at = bytes.indexOf(pattern); at >= 0; at = bytes.indexOf(pattern, at + 1)) n++
  }
  return n
}

/**
 * Runs `fn` while this process holds the bundle's write lock (`BEGIN IMMEDIATE`), as a
 * recorder or another pin does while it writes; the lock is let go (nothing written) after.
 */
export async function holdingWriteLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const db = new Database(path)
  try {
    db.exec('BEGIN IMMEDIATE')
    return await fn()
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK')
    db.close()
  }
}
