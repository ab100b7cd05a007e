/**
 * The corrupted-bundle corpus: broken copies of one real bundle made by the recorder,
 * generated from a seed. Byte-level cases (truncations, flips in the header, in b-tree
 * pages and in overflow pages) are chosen by reading the real file's page map from
 * SQLite's `dbstat`; structural cases (another application's file, a newer format,
 * views and triggers calling functions, a mangled schema) are made through SQLite on a
 * scratch copy, so no journal ever lands beside a corpus file.
 */
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { withDb } from '../helpers/bundle-db.js'

export type CorpusKind =
  | 'truncation'
  | 'header flip'
  | 'b-tree flip'
  | 'overflow flip'
  | 'structural'
  | 'control'

export interface CorpusCase {
  name: string
  kind: CorpusKind
  /** Writes the hostile file at `path`. */
  make: (path: string) => void
}

export interface CorpusSizes {
  truncations: number
  headerFlips: number
  btreeFlips: number
  overflowFlips: number
}

interface PageMap {
  pageSize: number
  btree: number[]
  overflow: number[]
}

function pageMap(bundle: string): PageMap {
  return withDb(
    bundle,
    (db) => {
      const pageSize = db.pragma('page_size', { simple: true }) as number
      const rows = db.prepare('SELECT pageno, pagetype FROM dbstat').all() as {
        pageno: number
        pagetype: string
      }[]
      return {
        pageSize,
        btree: rows.filter((r) => r.pagetype === 'leaf' || r.pagetype === 'internal').map((r) => r.pageno),
        overflow: rows.filter((r) => r.pagetype === 'overflow').map((r) => r.pageno),
      }
    },
    true,
  )
}

/** A copy of `bundle` changed through SQLite in `scratch`, then written to the target. */
function altered(
  bundle: string,
  scratch: string,
  alter: (db: Database.Database) => void,
): (path: string) => void {
  return (path) => {
    const dir = join(scratch, `alter-${Math.random().toString(36).slice(2)}`)
    mkdirSync(dir)
    const copy = join(dir, 'bundle.sqlite')
    copyFileSync(bundle, copy)
    const db = new Database(copy)
    try {
      alter(db)
    } finally {
      db.close()
    }
    copyFileSync(copy, path)
    rmSync(dir, { recursive: true, force: true })
  }
}

function flipped(base: Buffer, offset: number, mask: number, span = 1): (path: string) => void {
  return (path) => {
    const bytes = Buffer.from(base)
    for (let i = offset; i < Math.min(bytes.length, offset + span); i++) bytes[i] = bytes[i]! ^ mask
    writeFileSync(path, bytes)
  }
}

/**
 * The cases, in a fixed order for a seed. `scratch` is a directory the structural cases
 * may use for their SQLite work.
 */
export function buildCorpus(
  bundle: string,
  scratch: string,
  sizes: CorpusSizes,
  rand: () => number,
): CorpusCase[] {
  const base = readFileSync(bundle)
  const map = pageMap(bundle)
  const { pageSize } = map
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!
  const mask = (): number => 1 + Math.floor(rand() * 255)
  const cases: CorpusCase[] = []

  // Truncations: the edges that matter (inside the header, at and around page
  // boundaries), then offsets spread over the file.
  const edges = [1, 16, 99, 100, 101, 512, pageSize - 1, pageSize, pageSize + 1, base.length - 1]
  for (let p = 2; p * pageSize < base.length && edges.length < sizes.truncations / 2; p++)
    edges.push(p * pageSize)
  const cuts = new Set(edges.filter((o) => o > 0 && o < base.length))
  while (cuts.size < sizes.truncations) cuts.add(1 + Math.floor(rand() * (base.length - 1)))
  for (const at of [...cuts].slice(0, sizes.truncations)) {
    cases.push({
      name: `truncated at ${at} of ${base.length}`,
      kind: 'truncation',
      make: (path) => writeFileSync(path, base.subarray(0, at)),
    })
  }

  // Header: every one of the 100 bytes once before any twice.
  for (let i = 0; i < sizes.headerFlips; i++) {
    const at = i < 100 ? (sizes.headerFlips >= 100 ? i : Math.floor(rand() * 100)) : Math.floor(rand() * 100)
    const m = mask()
    cases.push({
      name: `header byte ${at} ^ 0x${m.toString(16)}`,
      kind: 'header flip',
      make: flipped(base, at, m),
    })
  }

  // B-tree pages: half in the page header and cell pointers, half anywhere in the page;
  // one in four flips a run of 8 bytes instead of one.
  for (let i = 0; i < sizes.btreeFlips; i++) {
    const page = pick(map.btree)
    const start = (page - 1) * pageSize + (page === 1 ? 100 : 0)
    const within = rand() < 0.5 ? Math.floor(rand() * 40) : Math.floor(rand() * (page * pageSize - start))
    const span = rand() < 0.25 ? 8 : 1
    const m = mask()
    cases.push({
      name: `b-tree page ${page} byte ${start + within} ^ 0x${m.toString(16)} x${span}`,
      kind: 'b-tree flip',
      make: flipped(base, start + within, m, span),
    })
  }

  // Overflow pages: the next-page pointer (first 4 bytes) or the content.
  for (let i = 0; i < sizes.overflowFlips && map.overflow.length > 0; i++) {
    const page = pick(map.overflow)
    const within = rand() < 0.3 ? Math.floor(rand() * 4) : Math.floor(rand() * pageSize)
    const m = mask()
    const at = (page - 1) * pageSize + within
    cases.push({
      name: `overflow page ${page} byte ${at} ^ 0x${m.toString(16)}`,
      kind: 'overflow flip',
      make: flipped(base, at, m),
    })
  }

  const alter = (fn: (db: Database.Database) => void) => altered(bundle, scratch, fn)
  const structural: [string, (path: string) => void][] = [
    ['zero length', (p) => writeFileSync(p, '')],
    [
      'random bytes',
      (p) => writeFileSync(p, Buffer.from(Array.from({ length: 64 * 1024 }, () => Math.floor(rand() * 256)))),
    ],
    ['a JSON file', (p) => writeFileSync(p, JSON.stringify({ records: [{ id: 'x' }] }))],
    ['header only (100 bytes of a real bundle)', (p) => writeFileSync(p, base.subarray(0, 100))],
    [
      'a SQLite file of another application',
      (p) => {
        const db = new Database(join(scratch, 'other.sqlite'))
        db.exec(
          "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('hi')",
        )
        db.close()
        copyFileSync(join(scratch, 'other.sqlite'), p)
      },
    ],
    ['wrong application_id', alter((db) => db.pragma('application_id = 305419896'))],
    ['application_id 0', alter((db) => db.pragma('application_id = 0'))],
    ['newer format (user_version 2)', alter((db) => db.pragma('user_version = 2'))],
    ['newer format (user_version 99)', alter((db) => db.pragma('user_version = 99'))],
    ['newer format (user_version 2147483647)', alter((db) => db.pragma('user_version = 2147483647'))],
    ['negative user_version (-1)', alter((db) => db.pragma('user_version = -1'))],
    ['no format version (user_version 0)', alter((db) => db.pragma('user_version = 0'))],
    [
      'a view calling load_extension',
      alter((db) => db.exec("CREATE VIEW v AS SELECT load_extension('/tmp/evil.so') AS x")),
    ],
    [
      'a view calling readfile',
      alter((db) => db.exec("CREATE VIEW v AS SELECT readfile('/etc/passwd') AS x")),
    ],
    [
      'records replaced by a view',
      alter((db) =>
        db.exec(
          'ALTER TABLE records RENAME TO records_real; CREATE VIEW records AS SELECT *, randomblob(1e9) AS z FROM records_real',
        ),
      ),
    ],
    [
      'a trigger calling load_extension',
      alter((db) =>
        db.exec("CREATE TRIGGER t AFTER INSERT ON records BEGIN SELECT load_extension('/tmp/evil.so'); END"),
      ),
    ],
    [
      'a trigger on the manifest calling writefile',
      alter((db) =>
        db.exec("CREATE TRIGGER t BEFORE DELETE ON manifest BEGIN SELECT writefile('/tmp/pwned', 'x'); END"),
      ),
    ],
    [
      'a generated column calling load_extension',
      // Through writable_schema: SQLite itself refuses to add it. A virtual column is not
      // stored, so the rows stay as they were.
      alter((db) => {
        db.unsafeMode(true) // better-sqlite3 turns on SQLite's defensive mode otherwise
        db.pragma('writable_schema = ON')
        const sql = db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'records'").pluck().get() as string
        const evil = sql.replace(/\)\s*$/, ", g TEXT AS (load_extension('/tmp/evil.so')) VIRTUAL)")
        db.prepare("UPDATE sqlite_schema SET sql = ? WHERE name = 'records'").run(evil)
      }),
    ],
    [
      'a CHECK and a DEFAULT calling functions',
      alter((db) => {
        db.exec('CREATE TABLE extra (a TEXT CHECK (length(a) > 0), b BLOB DEFAULT (randomblob(16)))')
        db.unsafeMode(true) // better-sqlite3 turns on SQLite's defensive mode otherwise
        db.pragma('writable_schema = ON')
        db.prepare(
          "UPDATE sqlite_schema SET sql = replace(sql, 'length(a)', 'load_extension(a)') WHERE name = 'extra'",
        ).run()
      }),
    ],
    ['an index on an expression', alter((db) => db.exec('CREATE INDEX by_len ON captures (length(input))'))],
    ['a table missing (effects)', alter((db) => db.exec('DROP TABLE effects'))],
    ['a column missing (captures.output)', alter((db) => db.exec('ALTER TABLE captures DROP COLUMN output'))],
    [
      'schema text mangled (writable_schema)',
      alter((db) => {
        db.unsafeMode(true) // better-sqlite3 turns on SQLite's defensive mode otherwise
        db.pragma('writable_schema = ON')
        db.prepare(
          "UPDATE sqlite_schema SET sql = 'CREATE TABLE records (id TEXT PRIMARY KEY, key' WHERE name = 'records'",
        ).run()
      }),
    ],
    [
      'schema root page pointing elsewhere (writable_schema)',
      alter((db) => {
        db.unsafeMode(true) // better-sqlite3 turns on SQLite's defensive mode otherwise
        db.pragma('writable_schema = ON')
        db.prepare("UPDATE sqlite_schema SET rootpage = 2 WHERE name = 'captures'").run()
      }),
    ],
    [
      'schema header claims a page count far past the end',
      (p) => {
        const bytes = Buffer.from(base)
        bytes.writeUInt32BE(0x7fffffff, 28)
        writeFileSync(p, bytes)
      },
    ],
  ]
  for (const [name, make] of structural) cases.push({ name, kind: 'structural', make })

  // Sound files that must read fine: the bundle itself and a copy with 4 KiB pages.
  cases.push({ name: 'the real bundle (control)', kind: 'control', make: (p) => copyFileSync(bundle, p) })
  cases.push({
    name: 'the real bundle re-paged to 4 KiB (control)',
    kind: 'control',
    make: alter((db) => {
      db.pragma('journal_mode = DELETE')
      db.pragma('page_size = 4096')
      db.exec('VACUUM')
    }),
  })
  return cases
}
