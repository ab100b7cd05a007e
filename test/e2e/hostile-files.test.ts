/**
 * Bundles from a bug report are untrusted. Every read command, given a file that is not a
 * sound bundle of a format it reads, exits 2 with one line on stderr (no stack trace,
 * nothing on stdout) and leaves nothing beside the file.
 *
 * The files start as a real bundle made by the recorder; each case then breaks it the
 * way a stranger's file might be broken (cut short, bytes flipped, schema changed).
 *
 * And the other side: a bundle left by a recorder killed during a checkpoint looks cut
 * short but is sound, and is read; BLOBs, numbers and NULLs in text columns give every read
 * command a result or one line, never a crash.
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  closeSync,
  copyFileSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { beforeAll, describe, expect, it } from 'vitest'
import { PAGE_SIZE } from '../../src/bundle/schema.js'
import type { RecordUnit } from '../../src/bundle/types.js'
import { BundleWriter } from '../../src/bundle/writer.js'
import { integrityCheck } from '../helpers/bundle-db.js'
import {
  type CliResult,
  listDir,
  makeSampleBundle,
  parseJsonOut,
  runCli,
  type SampleBundle,
  sharedTempDir,
} from '../helpers/cli.js'

const dir = sharedTempDir('retrace-e2e-hostile-')
let real: SampleBundle

/** A copy of the real bundle changed through SQLite (in a scratch dir, so no journal lands beside it). */
function alteredCopy(target: string, alter: (db: Database.Database) => void): void {
  const scratch = join(dir(), `scratch-${Math.random().toString(36).slice(2)}`)
  mkdirSync(scratch)
  const copy = join(scratch, 'bundle.sqlite')
  copyFileSync(real.path, copy)
  const db = new Database(copy)
  try {
    alter(db)
  } finally {
    db.close()
  }
  copyFileSync(copy, target)
}

interface HostileCase {
  name: string
  /** Creates the hostile file at `path` (its directory exists and is otherwise empty). */
  make: (path: string) => void
  /** What the one stderr line must say after `retrace: <path>: `. */
  says: RegExp
  code: string
  env?: Record<string, string>
}

const cases: HostileCase[] = [
  { name: 'missing file', make: () => {}, says: /^no such file$/, code: 'E_BUNDLE_MISSING' },
  { name: 'directory', make: (p) => mkdirSync(p), says: /is a directory/, code: 'E_NOT_BUNDLE' },
  { name: 'empty file', make: (p) => writeFileSync(p, ''), says: /is empty/, code: 'E_NOT_BUNDLE' },
  {
    // Opening a FIFO to read blocks until a writer comes: every command hung for good.
    name: 'FIFO',
    make: (p) => expect(spawnSync('mkfifo', [p]).status).toBe(0),
    says: /^is not a regular file$/,
    code: 'E_NOT_BUNDLE',
  },
  {
    name: 'truncated bundle (cut in half)',
    make: (p) => {
      const bytes = readFileSync(real.path)
      writeFileSync(p, bytes.subarray(0, Math.floor(bytes.length / 2)))
    },
    says: /truncated/,
    code: 'E_BUNDLE_CORRUPT',
  },
  {
    name: 'truncated bundle (cut mid-page)',
    make: (p) => {
      const bytes = readFileSync(real.path)
      writeFileSync(p, bytes.subarray(0, Math.floor(bytes.length / 2) + 1001))
    },
    says: /truncated/,
    code: 'E_BUNDLE_CORRUPT',
  },
  {
    name: 'truncated inside the header',
    make: (p) => writeFileSync(p, readFileSync(real.path).subarray(0, 50)),
    says: /not a SQLite file/,
    code: 'E_NOT_BUNDLE',
  },
  {
    name: 'random bytes',
    make: (p) => writeFileSync(p, randomBytes(64 * 1024)),
    says: /not a SQLite file/,
    code: 'E_NOT_BUNDLE',
  },
  {
    name: 'SQLite file of another application',
    make: (p) => {
      const db = new Database(p)
      db.exec(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('hi')",
      )
      db.close()
    },
    says: /another application/,
    code: 'E_NOT_BUNDLE',
  },
  {
    name: 'wrong application_id',
    make: (p) => alteredCopy(p, (db) => db.pragma('application_id = 305419896')),
    says: /another application/,
    code: 'E_NOT_BUNDLE',
  },
  {
    name: 'newer format (user_version 99)',
    make: (p) => alteredCopy(p, (db) => db.pragma('user_version = 99')),
    says: /bundle format 99, newer than this retrace reads \(1\); upgrade retrace/,
    code: 'E_NEWER_FORMAT',
  },
  {
    name: 'no format version (user_version 0)',
    make: (p) => alteredCopy(p, (db) => db.pragma('user_version = 0')),
    says: /no format version/,
    code: 'E_BUNDLE_CORRUPT',
  },
  {
    name: 'a trigger added',
    make: (p) =>
      alteredCopy(p, (db) =>
        db.exec('CREATE TRIGGER wipe AFTER INSERT ON records BEGIN DELETE FROM captures; END'),
      ),
    says: /contains a trigger \("wipe"\)/,
    code: 'E_BUNDLE_HOSTILE',
  },
  {
    name: 'a view added',
    make: (p) => alteredCopy(p, (db) => db.exec('CREATE VIEW everything AS SELECT * FROM records')),
    says: /contains a view \("everything"\)/,
    code: 'E_BUNDLE_HOSTILE',
  },
  {
    name: 'a table missing',
    make: (p) => alteredCopy(p, (db) => db.exec('DROP TABLE effects')),
    says: /has no effects table/,
    code: 'E_BUNDLE_CORRUPT',
  },
  {
    name: 'corrupted pages (bytes flipped in the middle)',
    make: (p) => {
      const bytes = readFileSync(real.path)
      const from = Math.floor(bytes.length / 3)
      const to = Math.floor((2 * bytes.length) / 3)
      for (let i = from; i < to; i++) bytes[i] = bytes[i]! ^ 0x5a
      writeFileSync(p, bytes)
    },
    says: /corrupt|integrity check/,
    code: 'E_BUNDLE_CORRUPT',
  },
  {
    name: 'over the size cap (RETRACE_MAX_BUNDLE_BYTES)',
    make: (p) => copyFileSync(real.path, p),
    says: /over the 4096 byte limit/,
    code: 'E_BUNDLE_TOO_LARGE',
    env: { RETRACE_MAX_BUNDLE_BYTES: '4096' },
  },
]

/** Every read command pointed at the file, as a user would type it. */
const commandsFor = (path: string): string[][] => [
  ['ls', path],
  ['show', path, real.records[0]!.id],
  ['find', path, '--where', 'store.available = 3'],
  ['inspect', path],
]

/** With --json, ls reading the file among several bundles. */
const jsonCommandsFor = (path: string): string[][] => [['ls', path, real.path, '--json']]

function expectOneLine(r: CliResult, path: string, says: RegExp, label: string): void {
  expect(r.code, label).toBe(2)
  expect(r.signal, label).toBeNull()
  expect(r.stderr, label).toMatch(/^retrace: [^\n]+\n$/)
  expect(r.stderr, label).not.toContain('    at ')
  expect(r.stderr.startsWith(`retrace: ${path}: `), label).toBe(true)
  expect(r.stderr.slice(`retrace: ${path}: `.length).trimEnd(), label).toMatch(says)
}

beforeAll(async () => {
  mkdirSync(join(dir(), 'real'))
  real = await makeSampleBundle(join(dir(), 'real', 'bundle.sqlite'))
  expect(real.recorderErrors).toEqual([])
})

describe('hostile bundle files', () => {
  it('the unbroken bundle reads fine (the cases below are broken copies of it)', async () => {
    const r = await runCli(['inspect', real.path, '--json'])
    expect(r.code).toBe(0)
    expect(parseJsonOut<{ records: number }>(r).records).toBe(6)
  })

  it.each(cases)(
    '$name: every read command exits 2 with one line and writes nothing beside it',
    async (c) => {
      const caseDir = join(dir(), c.name.replace(/\W+/g, '-'))
      mkdirSync(caseDir)
      const path = join(caseDir, 'bundle.sqlite')
      c.make(path)
      const before = listDir(caseDir)
      const opts = c.env === undefined ? {} : { env: c.env }

      const argvs = commandsFor(path)
      const jsonArgvs = jsonCommandsFor(path)
      const [human, json] = await Promise.all([
        Promise.all(argvs.map((argv) => runCli(argv, opts))),
        Promise.all(jsonArgvs.map((argv) => runCli(argv, opts))),
      ])
      for (const [i, r] of human.entries()) {
        const label = argvs[i]!.join(' ')
        expectOneLine(r, path, c.says, label)
        expect(r.stdout, label).toBe('')
      }
      for (const [i, r] of json.entries()) {
        const label = jsonArgvs[i]!.join(' ')
        expectOneLine(r, path, c.says, label)
        // With --json the error is also the one JSON document on stdout.
        const doc = parseJsonOut<{ error: { code: string; message: string } }>(r)
        expect(doc.error.code, label).toBe(c.code)
        expect(`retrace: ${doc.error.message}\n`, label).toBe(r.stderr)
      }

      const after = listDir(caseDir)
      expect(after).toEqual(before)
      expect(after.filter((f) => /-(wal|shm|journal)$/.test(f))).toEqual([])
    },
  )

  it('a RETRACE_MAX_BUNDLE_BYTES that is not a number is a usage error', async () => {
    const r = await runCli(['ls', real.path], { env: { RETRACE_MAX_BUNDLE_BYTES: 'lots' } })
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^retrace: RETRACE_MAX_BUNDLE_BYTES="lots" is not a number of bytes[^\n]*\n$/)
  })

  it('reading a sound bundle leaves nothing beside it either', async () => {
    const before = listDir(join(dir(), 'real'))
    const results = await Promise.all(
      [
        ['ls', real.path],
        ['show', real.path, '--key', 'sku:1001'],
        ['find', real.path, '--where', 'store.available = 3'],
        ['inspect', real.path],
      ].map((argv) => runCli(argv)),
    )
    for (const r of results) expect(r.code).toBe(0)
    expect(listDir(join(dir(), 'real'))).toEqual(before)
    expect(before).toEqual(['bundle.sqlite'])
  })

  it('where SQLite cannot open a file in place (no URIs), a bundle is read as it is, with no temporary copy', async () => {
    const before = listDir(join(dir(), 'real'))
    // With no temporary directory to write to, a copy would fail: there must be none.
    const env = { SQLITE_USE_URI: '0', TMPDIR: join(dir(), 'no-such-dir') }
    const results = await Promise.all(
      [
        ['ls', real.path],
        ['show', real.path, '--key', 'sku:1001'],
        ['inspect', real.path],
      ].map((argv) => runCli(argv, { env })),
    )
    for (const r of results) {
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
    }
    expect(listDir(join(dir(), 'real'))).toEqual(before)
  })

  it('a bundle with its WAL beside it and nowhere to copy it to: exit 2, one line naming TMPDIR', async () => {
    const walDir = join(dir(), 'wal-left')
    mkdirSync(walDir, { recursive: true })
    const path = join(walDir, 'bundle.sqlite')
    copyFileSync(real.path, path)
    // A writer that has not checkpointed: committed rows still in the -wal file.
    const db = new Database(path)
    db.pragma('journal_mode = WAL')
    db.pragma('wal_autocheckpoint = 0')
    db.prepare("UPDATE manifest SET value = value WHERE key = 'pipeline'").run()
    const tmp = join(dir(), 'no-such-dir')
    try {
      const r = await runCli(['ls', path], { env: { TMPDIR: tmp } })
      expect(r.stdout).toBe('')
      expect(r.code).toBe(2)
      expect(r.stderr).toBe(
        `retrace: ${path}: is read from a private copy (so nothing is written beside it), and none could be made in ${tmp} (ENOENT); set TMPDIR to a writable directory with room for it\n`,
      )
    } finally {
      db.close()
    }
  })

  it('a -journal or -wal beside a bundle that is a FIFO or a folder is refused in one line, not read', async () => {
    const sideDir = join(dir(), 'sidecars')
    mkdirSync(sideDir, { recursive: true })
    const path = join(sideDir, 'bundle.sqlite')
    copyFileSync(real.path, path)
    for (const [suffix, kind] of [
      ['-journal', 'fifo'],
      ['-journal', 'folder'],
      ['-wal', 'fifo'],
    ] as const) {
      const side = `${path}${suffix}`
      // Opening a FIFO to read blocks until a writer comes: it must never be opened.
      if (kind === 'fifo') expect(spawnSync('mkfifo', [side]).status).toBe(0)
      else mkdirSync(side)
      try {
        const r = await runCli(['ls', path], { timeoutMs: 8_000 })
        expectOneLine(
          r,
          path,
          new RegExp(`^has a ${suffix} beside it that is not a file; refused$`),
          `${suffix} ${kind}`,
        )
      } finally {
        rmSync(side, { recursive: true, force: true })
      }
    }
  })

  it('verify --follow on a FIFO refuses it at once instead of waiting for it to appear', async () => {
    const fifoDir = join(dir(), 'follow-fifo')
    mkdirSync(fifoDir, { recursive: true })
    const path = join(fifoDir, 'live.sqlite')
    expect(spawnSync('mkfifo', [path]).status).toBe(0)
    const r = await runCli(['verify', '--follow', path], { timeoutMs: 8_000, cwd: fifoDir })
    expect(r.signal).toBeNull()
    expect(r.code).toBe(2)
    expect(r.stderr).not.toContain('waiting for')
    expect(r.stderr).toContain(`retrace: ${path}: is not a regular file\n`)
  })

  it('a -journal or -wal that would take a private copy over the size cap is refused in one line', async () => {
    const sideDir = join(dir(), 'big-sidecars')
    mkdirSync(sideDir, { recursive: true })
    const path = join(sideDir, 'bundle.sqlite')
    const size = statSync(real.path).size
    // The file alone is within the cap; with either sidecar it is not.
    const env = { RETRACE_MAX_BUNDLE_BYTES: String(size + 4096) }
    for (const suffix of ['-journal', '-wal'] as const) {
      // A -wal is read only beside a file in WAL mode (a recorder still writing it).
      if (suffix === '-wal') alteredCopy(path, (db) => db.pragma('journal_mode = WAL'))
      else copyFileSync(real.path, path)
      expect(statSync(path).size).toBe(size)
      expect((await runCli(['ls', path], { env })).code, suffix).toBe(0)
      const side = `${path}${suffix}`
      writeFileSync(side, Buffer.alloc(8192))
      try {
        const r = await runCli(['ls', path], { env })
        expectOneLine(
          r,
          path,
          new RegExp(
            `^has a ${suffix} of 8192 bytes beside it, which with the rest makes ${size + 8192} bytes to copy, over the ${size + 4096} byte limit \\(set RETRACE_MAX_BUNDLE_BYTES\\)$`,
          ),
          suffix,
        )
        expect(listDir(sideDir).sort(), suffix).toEqual(['bundle.sqlite', `bundle.sqlite${suffix}`])
      } finally {
        rmSync(side, { force: true })
      }
    }
  })
})

/** A record of two stages whose seam lines up, with payloads big enough to fill pages. */
function crashUnit(i: number): RecordUnit {
  const parsed = JSON.stringify({ n: i, text: 'x'.repeat(3000) })
  return {
    record: {
      id: `01CRASH${String(i).padStart(19, '0')}`,
      key: `sku:${i}`,
      startedAt: 1_700_000_000_000 + i,
      endedAt: 1_700_000_000_001 + i,
      status: 'ok',
      error: null,
      host: 'h',
      pid: 1,
      build: 'b1',
    },
    captures: [
      { stage: 'parse', input: JSON.stringify(`raw ${i}`), output: parsed },
      { stage: 'store', input: parsed, output: JSON.stringify({ n: i, stored: true }) },
    ].map((c, seq) => ({
      ...c,
      seq,
      attempt: 1,
      error: null,
      startedAt: 1_700_000_000_000 + i,
      durationMs: 1,
      effects: [],
    })),
  }
}

describe('a bundle left by a recorder killed during a checkpoint', () => {
  /** The main file and -wal as the kill left them, and the records they hold. */
  let crashed: { dir: string; path: string; records: number; headerBytes: number; fileBytes: number }

  beforeAll(() => {
    // A recorder's writer in WAL mode: 40 records checkpointed into the main file, 40 more
    // still in the WAL, pages past the main file's end among them.
    const live = join(dir(), 'ckpt-live', 'bundle.sqlite')
    mkdirSync(join(dir(), 'ckpt-live'))
    const writer = BundleWriter.open(live, {
      manifest: {
        pipeline: 'orders',
        recorderVersion: '0.0.0-test',
        builds: ['b1'],
        redaction: { rules: [], equalityPreserving: false },
      },
    })
    const snapshot = join(dir(), 'ckpt-snapshot')
    const left = join(dir(), 'ckpt-crashed')
    mkdirSync(snapshot)
    mkdirSync(left)
    try {
      writer.write(Array.from({ length: 40 }, (_, i) => crashUnit(i)))
      const other = new Database(live)
      other.pragma('wal_checkpoint(PASSIVE)')
      other.close()
      writer.write(Array.from({ length: 40 }, (_, i) => crashUnit(40 + i)))
      for (const d of [snapshot, left]) {
        copyFileSync(live, join(d, 'bundle.sqlite'))
        copyFileSync(`${live}-wal`, join(d, 'bundle.sqlite-wal'))
      }
    } finally {
      writer.close()
    }
    // A checkpoint copies the WAL's pages in page order, page 1 (which holds the new
    // database size) first. Run a real one on a copy and keep only its page 1: what the main
    // file holds when the process is killed just after that write.
    const ckpt = new Database(join(snapshot, 'bundle.sqlite'))
    ckpt.pragma('wal_checkpoint(TRUNCATE)')
    const pageOne = readFileSync(join(snapshot, 'bundle.sqlite')).subarray(0, PAGE_SIZE)
    ckpt.close()
    const path = join(left, 'bundle.sqlite')
    const fd = openSync(path, 'r+')
    try {
      writeSync(fd, pageOne, 0, PAGE_SIZE, 0)
    } finally {
      closeSync(fd)
    }
    const head = readFileSync(path).subarray(0, 100)
    // SQLite trusts the header's size: the change counter matches version-valid-for.
    expect(head.readUInt32BE(24)).toBe(head.readUInt32BE(92))
    crashed = {
      dir: left,
      path,
      records: 80,
      headerBytes: head.readUInt32BE(28) * PAGE_SIZE,
      fileBytes: statSync(path).size,
    }
    expect(crashed.headerBytes).toBeGreaterThan(crashed.fileBytes)
    // SQLite itself reads the pair whole (checked on a copy: it writes a -shm beside it).
    const probe = join(dir(), 'ckpt-probe')
    mkdirSync(probe)
    copyFileSync(path, join(probe, 'bundle.sqlite'))
    copyFileSync(`${path}-wal`, join(probe, 'bundle.sqlite-wal'))
    expect(integrityCheck(join(probe, 'bundle.sqlite'))).toBe('ok')
  })

  it('is read whole by inspect, ls, show and verify, and nothing is written beside it', async () => {
    const before = listDir(crashed.dir)
    const [inspect, ls, show, verify] = await Promise.all([
      runCli(['inspect', crashed.path, '--json']),
      runCli(['ls', crashed.path, '--limit', '0', '--json']),
      runCli(['show', crashed.path, '--key', 'sku:79', '--json']),
      runCli(['verify', crashed.path]),
    ])
    for (const [label, r] of [
      ['inspect', inspect],
      ['ls', ls],
      ['show', show],
      ['verify', verify],
    ] as const) {
      expect(r.stderr, label).not.toMatch(/truncated|corrupt|bug in retrace/)
      expect(r.code, `${label}: ${r.stderr}`).toBe(0)
    }
    expect(parseJsonOut<{ records: number; captures: number }>(inspect)).toMatchObject({
      records: crashed.records,
      captures: 2 * crashed.records,
    })
    expect(parseJsonOut<{ records: unknown[] }>(ls).records).toHaveLength(crashed.records)
    expect(parseJsonOut<{ key: string; captures: unknown[] }>(show)).toMatchObject({ key: 'sku:79' })
    expect(verify.stdout).toContain(`${crashed.records} records checked`)
    expect(listDir(crashed.dir)).toEqual(before)
    expect(before).toEqual(['bundle.sqlite', 'bundle.sqlite-wal'])
  })

  it('opened through a symlink in another folder, is read whole with the WAL beside its target', async () => {
    const links = join(dir(), 'ckpt-links')
    mkdirSync(links)
    const link = join(links, 'link.sqlite')
    symlinkSync(crashed.path, link)
    const before = listDir(crashed.dir)
    const [inspect, ls, verify] = await Promise.all([
      runCli(['inspect', link, '--json']),
      runCli(['ls', link, '--limit', '0', '--json']),
      runCli(['verify', link]),
    ])
    for (const [label, r] of [
      ['inspect', inspect],
      ['ls', ls],
      ['verify', verify],
    ] as const) {
      expect(r.stderr, label).not.toMatch(/truncated|corrupt|manifest|bug in retrace/)
      expect(r.code, `${label}: ${r.stderr}`).toBe(0)
    }
    expect(parseJsonOut<{ records: number }>(inspect).records).toBe(crashed.records)
    expect(parseJsonOut<{ records: unknown[] }>(ls).records).toHaveLength(crashed.records)
    expect(verify.stdout).toContain(`${crashed.records} records checked`)
    expect(listDir(crashed.dir)).toEqual(before)
    expect(listDir(links)).toEqual(['link.sqlite'])
  })

  it('with its WAL lost, the same file is refused as truncated, in one line', async () => {
    const lost = join(dir(), 'ckpt-wal-lost')
    mkdirSync(lost)
    const path = join(lost, 'bundle.sqlite')
    copyFileSync(crashed.path, path)
    const results = await Promise.all(commandsFor(path).map((argv) => runCli(argv)))
    for (const r of results) {
      expectOneLine(
        r,
        path,
        new RegExp(
          `^is truncated: the header says ${crashed.headerBytes} bytes, the file has ${crashed.fileBytes}$`,
        ),
        'WAL lost',
      )
      expect(r.stdout).toBe('')
    }
    expect(listDir(lost)).toEqual(['bundle.sqlite'])
  })
})

/**
 * Rebuilds a table without column types or constraints, as a file made by hand may have it:
 * the only way a bundle's text column holds an integer, or NULL where it is NOT NULL.
 */
function untyped(db: Database.Database, table: string): void {
  const columns = (db.pragma(`table_info(${table})`) as { name: string }[]).map((c) => c.name)
  const indexes = db
    .prepare("SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL")
    .pluck()
    .all(table) as string[]
  db.exec(`ALTER TABLE ${table} RENAME TO ${table}_typed;
    CREATE TABLE ${table} (${columns.join(', ')});
    INSERT INTO ${table} SELECT * FROM ${table}_typed;
    DROP TABLE ${table}_typed;`)
  for (const sql of indexes) db.exec(sql)
}

/** Runs `fn` over `items`, at most `limit` at a time (each CLI run is a node process). */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = []
  for (let i = 0; i < items.length; i += limit)
    out.push(...(await Promise.all(items.slice(i, i + limit).map(fn))))
  return out
}

describe('BLOBs, numbers and NULLs in text columns', () => {
  /** Bytes that are not UTF-8 text, as a recorder handed `randomBytes()` as recordId stores them. */
  const BINARY = 'ff00fe01'
  let ws: string

  beforeAll(() => {
    ws = join(dir(), 'types')
    mkdirSync(join(ws, 'out'), { recursive: true })
    // A config for replay and test: the stages hand their input on (every record diverges).
    writeFileSync(join(ws, 'stages.mjs'), 'export const pass = (input) => input\n')
    writeFileSync(
      join(ws, 'retrace.config.mjs'),
      "export default { stages: { parse: './stages.mjs#pass', price: './stages.mjs#pass', store: './stages.mjs#pass' } }\n",
    )
  })

  /** A copy of the real bundle at `<ws>/<name>.sqlite`, changed through SQLite. */
  function typedCopy(name: string, alter: (db: Database.Database, ids: string[]) => void): string {
    const path = join(ws, `${name}.sqlite`)
    alteredCopy(path, (db) =>
      alter(
        db,
        real.records.map((r) => r.id),
      ),
    )
    return path
  }

  /** Every read command, as a user types it, on records the changes touched and did not. */
  const readCommands = (path: string, plain: string): string[][] => [
    ['ls', path],
    ['ls', path, '--json'],
    ['ls', path, '--key', 'sku:1001'],
    ['ls', path, '--stage', 'price'],
    ['show', path, plain],
    ['show', path, '--key', 'sku:1001'],
    ['find', path, '--where', 'store.available = 3'],
    ['inspect', path],
    ['inspect', path, '--json'],
    ['verify', path],
    ['why', path, '--key', 'sku:1001', 'store.output.available'],
    ['diff', `${path}#${plain}`, `#${real.records[4]!.id}`],
    ['diff', path, real.path],
    ['report', path, '--key', 'sku:1001', '-o', join(ws, 'out', 'report.html')],
    ['replay', path],
    ['test', path],
    ['extract', path, plain, '-o', join(ws, 'out', 'extract.sqlite'), '--force'],
  ]

  /** A sensible result (0 or 1) or one clear line (2); never a crash, a stack or exit 5. */
  async function expectNoCrash(path: string, plain: string): Promise<void> {
    const argvs = readCommands(path, plain)
    const results = await mapLimit(argvs, 4, (argv) => runCli(argv, { cwd: ws, timeoutMs: 120_000 }))
    for (const [i, r] of results.entries()) {
      const label = `${argvs[i]!.join(' ')}: ${r.stderr}`
      expect(r.signal, label).toBeNull()
      expect([0, 1, 2], label).toContain(r.code)
      expect(r.stderr, label).not.toContain('bug in retrace')
      expect(r.stderr, label).not.toContain('    at ')
      if (r.code === 2) expect(r.stderr.trimEnd().split('\n').at(-1), label).toMatch(/^retrace: \S/)
    }
  }

  it("record ids a recorder stored as BLOBs are read by their text (x'<hex>' when not UTF-8) by every command", {
    timeout: 600_000,
  }, async () => {
    const ids = real.records.map((r) => r.id)
    const path = typedCopy('blob-ids', (db) => {
      const toBlob = (id: string, blob: Buffer): void => {
        db.prepare('UPDATE records SET id = ? WHERE id = ?').run(blob, id)
        db.prepare('UPDATE captures SET record_id = ? WHERE record_id = ?').run(blob, id)
      }
      toBlob(ids[0]!, Buffer.from(ids[0]!))
      toBlob(ids[2]!, Buffer.from(BINARY, 'hex'))
      expect(db.prepare("SELECT count(*) FROM records WHERE typeof(id) = 'blob'").pluck().get()).toBe(2)
    })
    const binary = `x'${BINARY}'`
    const [verify, verifyReal, ls, showText, showBinary, showKey] = (await mapLimit(
      [
        ['verify', path, '--json'],
        ['verify', real.path, '--json'],
        ['ls', path, '--json'],
        ['show', path, ids[0]!, '--json'],
        ['show', path, binary, '--json'],
        ['show', path, '--key', 'sku:1001', '--json'],
      ],
      3,
      (argv) => runCli(argv, { cwd: ws, timeoutMs: 120_000 }),
    )) as [CliResult, CliResult, CliResult, CliResult, CliResult, CliResult]
    // verify checks every record, as in the bundle with text ids.
    expect(verify.stderr).not.toContain('bug in retrace')
    expect(verify.code).toBe(verifyReal.code)
    const summary = parseJsonOut<{ records: number; violations: number }>(verify)
    const summaryReal = parseJsonOut<{ records: number; violations: number }>(verifyReal)
    expect(summary.records).toBe(6)
    expect(summary.violations).toBe(summaryReal.violations)
    expect(parseJsonOut<{ records: { id: string }[] }>(ls).records.map((r) => r.id)).toEqual(
      expect.arrayContaining([ids[0], binary, ids[1]]),
    )
    for (const [r, key] of [
      [showText, real.records[0]!.key],
      [showBinary, real.records[2]!.key],
      [showKey, 'sku:1001'],
    ] as const) {
      expect(r.code, r.stderr).toBe(0)
      const scene = parseJsonOut<{ key: string; captures: unknown[] }>(r)
      expect(scene.key).toBe(key)
      expect(scene.captures.length).toBeGreaterThan(0)
    }
    expect(parseJsonOut<{ recordId: string }>(showBinary).recordId).toBe(binary)
    await expectNoCrash(path, ids[1]!)
  })

  /** What `ls --json` lists, as [id, status] pairs. */
  async function listed(...argv: string[]): Promise<[string, string][]> {
    const r = await runCli(['ls', ...argv, '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    return parseJsonOut<{ records: { id: string; status: string }[] }>(r).records.map((x) => [x.id, x.status])
  }

  it('a status stored as a BLOB or as other text than ok is filtered and counted as its STATUS column reads', async () => {
    const ids = real.records.map((r) => r.id)
    expect(real.records[3]!.status).toBe('error')
    const path = typedCopy('statuses', (db) => {
      db.prepare('UPDATE records SET status = CAST(status AS BLOB) WHERE id = ?').run(ids[3])
      db.prepare("UPDATE records SET status = 'OK' WHERE id = ?").run(ids[0])
    })
    const [all, error, ok, inspect] = await Promise.all([
      listed(path),
      listed(path, '--status', 'error'),
      listed(path, '--status', 'ok'),
      runCli(['inspect', path, '--json']),
    ])
    expect(all.filter(([, status]) => status === 'error').map(([id]) => id)).toEqual([ids[3]])
    expect(error).toEqual(all.filter(([, status]) => status === 'error'))
    expect(ok).toEqual(all.filter(([, status]) => status === 'ok'))
    expect(ok).toHaveLength(5)
    expect(parseJsonOut<{ statuses: unknown[] }>(inspect).statuses).toEqual([
      { status: 'error', records: 1 },
      { status: 'ok', records: 5 },
    ])
  })

  it('inspect counts no records row whose id is NULL, as ls and verify list none', async () => {
    const ids = real.records.map((r) => r.id)
    const path = typedCopy('null-id', (db) => {
      db.prepare('UPDATE records SET id = NULL WHERE id = ?').run(ids[0])
    })
    const [all, inspect] = await Promise.all([
      listed(path, '--limit', '0'),
      runCli(['inspect', path, '--json']),
    ])
    expect(all).toHaveLength(5)
    expect(
      parseJsonOut<{ records: number; firstRecordAt: number; statuses: unknown[] }>(inspect),
    ).toMatchObject({
      records: 5,
      firstRecordAt: real.records[1]!.startedAt,
      statuses: [
        { status: 'error', records: 1 },
        { status: 'ok', records: 4 },
      ],
    })
  })

  it('a record whose key is NULL, listed with key "", is found by --key ""', async () => {
    const ids = real.records.map((r) => r.id)
    const path = typedCopy('null-key', (db) => {
      untyped(db, 'records')
      db.prepare('UPDATE records SET key = NULL WHERE id = ?').run(ids[3])
    })
    const [ls, show] = await Promise.all([
      runCli(['ls', path, '--key', '', '--json']),
      runCli(['show', path, '--key', '', '--json']),
    ])
    expect(ls.stderr).toBe('')
    expect(parseJsonOut<{ records: { id: string; key: string }[] }>(ls).records).toMatchObject([
      { id: ids[3], key: '' },
    ])
    expect(show.stderr).toBe('')
    expect(show.code).toBe(0)
    expect(parseJsonOut<{ recordId: string }>(show).recordId).toBe(ids[3])
  })

  it('a record stored under a BLOB id in two bundles is listed once, whole, and counted once', async () => {
    const ids = real.records.map((r) => r.id)
    const toBlob = (db: Database.Database): void => {
      db.prepare('UPDATE records SET id = CAST(id AS BLOB) WHERE id = ?').run(ids[0])
      db.prepare('UPDATE captures SET record_id = CAST(record_id AS BLOB) WHERE record_id = ?').run(ids[0])
    }
    // The record's parse and price in one bundle, its store in the other (which holds no other record).
    const first = typedCopy('blob-split-a', (db) => {
      db.prepare("DELETE FROM captures WHERE record_id = ? AND stage = 'store'").run(ids[0])
      toBlob(db)
    })
    const second = typedCopy('blob-split-b', (db) => {
      db.prepare('DELETE FROM records WHERE id != ?').run(ids[0])
      db.prepare("DELETE FROM captures WHERE record_id != ? OR stage != 'store'").run(ids[0])
      toBlob(db)
    })
    type Listing = {
      records: { id: string; stages: string[]; captures: number; source: string }[]
      total: number
    }
    const [all, cut] = (
      await Promise.all([
        runCli(['ls', first, second, '--limit', '0', '--json']),
        runCli(['ls', first, second, '--limit', '5', '--json']),
      ])
    ).map((r) => parseJsonOut<Listing>(r))
    expect(all!.records.map((r) => r.id).sort()).toEqual([...ids].sort())
    expect(all!.records.find((r) => r.id === ids[0])).toMatchObject({
      stages: ['parse', 'price', 'store'],
      captures: 3,
      source: `${first}, ${second}`,
    })
    expect(cut).toMatchObject({ total: 6, truncated: true })
  })

  it('ls and inspect name stages stored as BLOBs, numbers or NULL as show does', async () => {
    const ids = real.records.map((r) => r.id)
    const path = typedCopy('stage-names', (db) => {
      untyped(db, 'captures')
      db.prepare("UPDATE captures SET stage = x'ff00fe' WHERE record_id = ? AND stage = 'store'").run(ids[0])
      // Record 1's price ran twice: one attempt's name stored as a BLOB of the same text.
      db.prepare(
        "UPDATE captures SET stage = CAST(stage AS BLOB) WHERE id = (SELECT min(id) FROM captures WHERE record_id = ? AND stage = 'price')",
      ).run(ids[1])
      db.prepare("UPDATE captures SET stage = NULL WHERE record_id = ? AND stage = 'parse'").run(ids[2])
      db.prepare("UPDATE captures SET stage = 2.0 WHERE record_id = ? AND stage = 'parse'").run(ids[4])
    })
    const runs = await Promise.all([
      runCli(['ls', path, '--json']),
      runCli(['inspect', path, '--json']),
      ...[0, 1, 2, 4].map((i) => runCli(['show', path, ids[i]!, '--json'])),
    ])
    for (const r of runs) expect(r.stderr).toBe('')
    const [ls, inspect, ...shows] = runs as [CliResult, CliResult, ...CliResult[]]
    const listed = parseJsonOut<{ records: { id: string; stages: string[] }[] }>(ls).records
    const stagesOf = (id: string): string[] | undefined => listed.find((r) => r.id === id)?.stages
    for (const [n, i] of [0, 1, 2, 4].entries()) {
      const shown = parseJsonOut<{ captures: { stage: string }[] }>(shows[n]!).captures.map((c) => c.stage)
      expect(stagesOf(ids[i]!), `record ${i}`).toEqual([...new Set(shown)])
    }
    expect(stagesOf(ids[0]!)).toEqual(['parse', 'price', "x'ff00fe'"])
    expect(stagesOf(ids[1]!)).toEqual(['parse', 'price', 'store'])
    expect(stagesOf(ids[2]!)).toEqual(['', 'price', 'store'])
    expect(stagesOf(ids[4]!)).toEqual(['2', 'price', 'store'])
    const stages = parseJsonOut<{ stages: { stage: string; captures: number }[] }>(inspect).stages
    expect(stages.map((x) => x.stage).sort()).toEqual(['', '2', 'parse', 'price', 'store', "x'ff00fe'"])
    const price = parseJsonOut<{ stages: { stage: string; captures: number }[] }>(
      await runCli(['inspect', real.path, '--json']),
    ).stages.find((x) => x.stage === 'price')
    expect(stages.find((x) => x.stage === 'price')).toEqual(price)
  })

  it("a record id stored as bytes that are not UTF-8 is found by a prefix of x'<hex>' and in upper case", async () => {
    const ids = real.records.map((r) => r.id)
    const path = typedCopy('binary-prefix', (db) => {
      db.prepare('UPDATE records SET id = ? WHERE id = ?').run(Buffer.from(BINARY, 'hex'), ids[2])
      db.prepare('UPDATE captures SET record_id = ? WHERE record_id = ?').run(
        Buffer.from(BINARY, 'hex'),
        ids[2],
      )
    })
    const refs = ["x'ff00fe", `x'${BINARY.toUpperCase()}'`, "X'FF00"]
    const results = await Promise.all(refs.map((ref) => runCli(['show', path, ref, '--json'])))
    for (const [i, r] of results.entries()) {
      expect(r.stderr, refs[i]).toBe('')
      expect(r.code, refs[i]).toBe(0)
      expect(parseJsonOut<{ recordId: string }>(r).recordId, refs[i]).toBe(`x'${BINARY}'`)
    }
  })

  const hostile: { name: string; alter: (db: Database.Database, ids: string[]) => void }[] = [
    {
      name: 'BLOBs',
      alter: (db, ids) => {
        db.prepare('UPDATE records SET id = CAST(id AS BLOB) WHERE id = ?').run(ids[0])
        db.prepare('UPDATE captures SET record_id = CAST(record_id AS BLOB) WHERE record_id = ?').run(ids[0])
        // Captures whose record_id no longer matches their record's id, as stored.
        db.prepare('UPDATE captures SET record_id = CAST(record_id AS BLOB) WHERE record_id = ?').run(ids[2])
        db.prepare('UPDATE records SET key = CAST(key AS BLOB) WHERE id = ?').run(ids[3])
        db.prepare(
          "UPDATE captures SET stage = CAST(stage AS BLOB) WHERE record_id = ? AND stage = 'price'",
        ).run(ids[4])
        // A payload of bytes that are not JSON text: replay cannot read it.
        db.prepare("UPDATE captures SET output = x'80' WHERE record_id = ? AND stage = 'parse'").run(ids[1])
      },
    },
    {
      name: 'integers',
      alter: (db, ids) => {
        untyped(db, 'records')
        untyped(db, 'captures')
        db.prepare('UPDATE records SET id = 4242 WHERE id = ?').run(ids[0])
        db.prepare('UPDATE captures SET record_id = 4242 WHERE record_id = ?').run(ids[0])
        db.prepare('UPDATE captures SET record_id = 77 WHERE record_id = ?').run(ids[2])
        db.prepare('UPDATE records SET key = 7 WHERE id = ?').run(ids[3])
        db.prepare("UPDATE captures SET stage = 3 WHERE record_id = ? AND stage = 'price'").run(ids[4])
        // A start time that is not a number: extract cannot write it into a bundle.
        db.prepare("UPDATE records SET started_at = 'soon' WHERE id = ?").run(ids[1])
      },
    },
    {
      name: 'NULLs',
      alter: (db, ids) => {
        // records.id takes NULL as it is (a TEXT PRIMARY KEY is not NOT NULL); the rest is NOT NULL.
        db.prepare('UPDATE records SET id = NULL WHERE id = ?').run(ids[0])
        untyped(db, 'records')
        untyped(db, 'captures')
        db.prepare('UPDATE captures SET record_id = NULL WHERE record_id = ?').run(ids[2])
        db.prepare('UPDATE records SET key = NULL WHERE id = ?').run(ids[3])
        db.prepare("UPDATE captures SET stage = NULL WHERE record_id = ? AND stage = 'price'").run(ids[4])
      },
    },
  ]

  it.each(hostile)(
    '$name in records.id, captures.record_id, records.key and captures.stage: every read command gives a result or one line',
    { timeout: 600_000 },
    async ({ name, alter }) => {
      const path = typedCopy(name, alter)
      await expectNoCrash(path, real.records[1]!.id)
    },
  )
})
