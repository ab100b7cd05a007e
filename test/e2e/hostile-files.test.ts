/**
 * Bundles from a bug report are untrusted. Every read command, given a file that is not a
 * sound bundle of a format it reads, exits 2 with one line on stderr (no stack trace,
 * nothing on stdout) and leaves nothing beside the file.
 *
 * The files start as a real bundle made by the recorder; each case then breaks it the
 * way a stranger's file might be broken (cut short, bytes flipped, schema changed).
 */
import { randomBytes } from 'node:crypto'
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { beforeAll, describe, expect, it } from 'vitest'
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
})
