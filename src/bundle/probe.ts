/**
 * Checks that the native SQLite module loads and works, without importing it at module
 * load time (so `retrace doctor` can report a broken install instead of crashing).
 */
import { createRequire } from 'node:module'

export interface SqliteProbe {
  ok: boolean
  sqliteVersion?: string
  json?: boolean
  error?: string
}

export async function probeSqlite(): Promise<SqliteProbe> {
  try {
    const Database = createRequire(import.meta.url)('better-sqlite3') as typeof import('better-sqlite3')
    const db = new Database(':memory:')
    try {
      const version = db.prepare('SELECT sqlite_version()').pluck().get() as string
      const json = db.prepare(`SELECT json_extract('{"a":1}', '$.a')`).pluck().get() === 1
      return { ok: true, sqliteVersion: version, json }
    } finally {
      db.close()
    }
  } catch (err) {
    return { ok: false, error: (err as Error).message.split('\n')[0] ?? String(err) }
  }
}
