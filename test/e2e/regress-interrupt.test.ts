/**
 * Interrupting the regression workflow: a pin cut off by a kill leaves a -journal that
 * every reader rolls back (in a private copy) instead of reading half a write, and one
 * naming a super-journal (which a rollback would delete) is refused; Ctrl-C
 * during `test --update` lets the pin finish; and Ctrl-C leaves no private copy of a
 * bundle in $TMPDIR and no hidden temporary file in extract's output folder.
 */
import { spawnSync } from 'node:child_process'
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleFiles } from '../helpers/bundle-db.js'
import { repoRoot, runCli } from '../helpers/cli.js'
import {
  type CliResult,
  importStage,
  inventorySources,
  record,
  runChain,
  type Workspace,
  workspace,
} from '../replay/fixture.js'

const RECORDS = 200
/** A local build whose compute adds 20 KB of `letter`: pinning it writes a few MB. */
const padded = (letter: string, delayMs = 0): string => `export async function compute(row) {
  ${delayMs > 0 ? `await new Promise((r) => setTimeout(r, ${delayMs}))` : ''}
  return { sku: row.sku, available: row.onHand - row.reserved, pad: ${JSON.stringify(letter)}.repeat(20000) }
}
`
const configOf = (compute: string): string =>
  `export default { stages: { parse: './stages/parse.mjs#parse', compute: '${compute}', format: './stages/format.mjs#format' } }\n`

/**
 * A writer killed mid-transaction, as SIGKILL or a power cut leaves it: a tiny page cache
 * makes SQLite write changed pages into the file before the commit, with their old
 * contents in the -journal. `mode: 'wal'` instead leaves committed frames in a -wal.
 */
const killedWriter = `
const Database = require('better-sqlite3')
const [path, mode] = process.argv.slice(1)
const db = new Database(path)
if (mode === 'wal') {
  db.pragma('journal_mode = WAL')
  db.pragma('wal_autocheckpoint = 0')
  db.exec("UPDATE manifest SET value = value")
} else {
  db.pragma('cache_size = 4')
  db.exec('BEGIN')
  db.exec("UPDATE expectations SET output = replace(output, 'p', 'q')")
}
process.kill(process.pid, 'SIGKILL')
`

function killWriter(path: string, mode: 'journal' | 'wal'): void {
  const r = spawnSync(process.execPath, ['-e', killedWriter, path, mode], { cwd: repoRoot })
  expect(r.signal).toBe('SIGKILL')
}

let ws: Workspace
let n = 0

beforeAll(async () => {
  ws = workspace('retrace-interrupt-')
  ws.write('stages/parse.mjs', inventorySources.parse)
  ws.write('stages/format.mjs', inventorySources.format)
  ws.write('prod/compute.mjs', inventorySources.compute)
  ws.write('stages/compute-p.mjs', padded('p'))
  ws.write('stages/compute-q.mjs', padded('q'))
  ws.write('stages/compute-slow.mjs', padded('p', 20))
  ws.write('p.config.mjs', configOf('./stages/compute-p.mjs#compute'))
  ws.write('q.config.mjs', configOf('./stages/compute-q.mjs#compute'))
  ws.write('slow.config.mjs', configOf('./stages/compute-slow.mjs#compute'))
  const chain = [
    ['parse', await importStage(ws.path('stages/parse.mjs'), 'parse')],
    ['compute', await importStage(ws.path('prod/compute.mjs'), 'compute')],
    ['format', await importStage(ws.path('stages/format.mjs'), 'format')],
  ] as const
  await record(ws.path('base.sqlite'), async (recorder) => {
    for (let i = 0; i < RECORDS; i++) {
      const sku = `sku:${1000 + i}`
      await runChain(recorder, sku, { sku, onHand: 10 + i, reserved: i % 3 }, chain)
    }
  })
  // The base with the `p` build pinned: every later test starts from a copy of it.
  mkdirSync(ws.path('pinned'))
  copyFileSync(ws.path('base.sqlite'), ws.path('pinned/b.sqlite'))
  const r = await runCli(['test', 'pinned', '--update', '--force', '-c', 'p.config.mjs'], { cwd: ws.dir })
  expect(r.code, r.stderr).toBe(0)
}, 120_000)

afterAll(() => ws?.remove())

/** A folder holding one copy of the pinned bundle, and a private TMPDIR. */
function fresh(): { dir: string; bundle: string; tmp: string } {
  const dir = ws.path(`case${++n}`)
  mkdirSync(`${dir}/tmp`, { recursive: true })
  mkdirSync(`${dir}/rec`)
  copyFileSync(ws.path('pinned/b.sqlite'), `${dir}/rec/b.sqlite`)
  return { dir, bundle: `${dir}/rec/b.sqlite`, tmp: `${dir}/tmp` }
}

const cli = (args: string[], tmp: string): Promise<CliResult> => spawnCli(args, tmp, () => false)

/**
 * Runs the CLI with TMPDIR=`tmp`, sends SIGINT once `when()` holds (checked every 2 ms),
 * and resolves when it has gone. `sent` says whether the signal went.
 */
async function spawnCli(
  args: string[],
  tmp: string,
  when: () => boolean,
  /** Signal the whole process group, as Ctrl-C in a terminal does. */
  group = false,
): Promise<CliResult & { sent: boolean }> {
  let sent = false
  let poll: NodeJS.Timeout | undefined
  try {
    const r = await runCli(args, {
      cwd: ws.dir,
      env: { CI: undefined, TMPDIR: tmp },
      detached: group,
      timeoutMs: 120_000,
      onSpawn: (child) => {
        poll = setInterval(() => {
          if (!sent && when()) {
            sent = true
            if (group && child.pid !== undefined) process.kill(-child.pid, 'SIGINT')
            else child.kill('SIGINT')
          }
        }, 2)
      },
    })
    return { ...r, sent }
  } finally {
    clearInterval(poll)
  }
}

const privateCopies = (tmp: string): string[] => readdirSync(tmp).filter((f) => f.startsWith('retrace-'))

describe('interrupted writes and Ctrl-C', { timeout: 120_000 }, () => {
  it('a pin cut off by a kill: test reads the bundle as it was before it, and leaves the file alone', async () => {
    const { bundle, tmp, dir } = fresh()
    killWriter(bundle, 'journal')
    expect(existsSync(`${bundle}-journal`)).toBe(true)
    const before = readFileSync(bundle)
    const r = await cli(['test', `${dir}/rec`, '-c', 'p.config.mjs'], tmp)
    expect(r.stderr).toBe('')
    expect(r.stdout).toContain(`${RECORDS} records tested, ${RECORDS} matched, 0 diverged`)
    expect(r.code).toBe(0)
    expect(readFileSync(bundle).equals(before)).toBe(true)
    expect(privateCopies(tmp)).toEqual([])
    // The next pin rolls the cut-off write back in the file itself, then writes its own.
    const u = await cli(['test', `${dir}/rec`, '-c', 'q.config.mjs', '--update', '--force'], tmp)
    expect(u.stdout).toContain(`0 matched, 0 diverged, 0 errors, ${RECORDS} updated`)
    expect(u.code).toBe(0)
    expect(bundleFiles(bundle)).toEqual([bundle])
    const q = await cli(['test', `${dir}/rec`, '-c', 'q.config.mjs'], tmp)
    expect(q.stdout).toContain(`${RECORDS} records tested, ${RECORDS} matched, 0 diverged`)
  })

  it('a -journal naming a super-journal is refused, and the file it names is not deleted', async () => {
    const { bundle, tmp, dir } = fresh()
    killWriter(bundle, 'journal')
    // What SQLite reads as a super-journal name at a journal's end: a page number, the
    // name, its length, its checksum and the journal magic. A rollback deletes the file
    // named there once no journal refers to it.
    const victim = `${dir}/notes.txt`
    writeFileSync(victim, 'not a journal\n')
    const name = Buffer.from(victim)
    const tail = Buffer.alloc(16)
    tail.writeUInt32BE(name.length, 0)
    tail.writeInt32BE(
      name.reduce((sum, b) => (sum + ((b << 24) >> 24)) | 0, 0),
      4,
    )
    Buffer.from('d9d505f920a163d7', 'hex').copy(tail, 8)
    appendFileSync(`${bundle}-journal`, Buffer.concat([Buffer.alloc(4), name, tail]))
    const before = readFileSync(bundle)
    for (const args of [
      ['ls', bundle],
      ['test', `${dir}/rec`, '-c', 'q.config.mjs', '--update', '--force'],
    ]) {
      const r = await cli(args, tmp)
      expect(r.stderr).toMatch(/-journal naming another file to delete/)
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
      expect(r.code).toBe(2)
      expect(existsSync(victim)).toBe(true)
    }
    expect(readFileSync(bundle).equals(before)).toBe(true)
    expect(privateCopies(tmp)).toEqual([])
  })

  it('Ctrl-C during test --update lets the pin finish: all of it is there, no -journal left', async () => {
    const { bundle, tmp, dir } = fresh()
    const r = await spawnCli(['test', `${dir}/rec`, '-c', 'q.config.mjs', '--update', '--force'], tmp, () =>
      existsSync(`${bundle}-journal`),
    )
    expect(r.sent).toBe(true)
    expect(r.signal).toBe('SIGINT')
    expect(bundleFiles(bundle)).toEqual([bundle])
    const after = await cli(['test', `${dir}/rec`, '-c', 'q.config.mjs'], tmp)
    expect(after.stdout).toContain(`${RECORDS} records tested, ${RECORDS} matched, 0 diverged`)
    expect(after.code).toBe(0)
  })

  it('Ctrl-C while reading a bundle with a live WAL leaves no private copy in TMPDIR', async () => {
    const { bundle, tmp, dir } = fresh()
    killWriter(bundle, 'wal')
    expect(existsSync(`${bundle}-wal`)).toBe(true)
    // Well into the replay (20 ms a record): the copy has been read from for a while.
    let seen = 0
    const r = await spawnCli(['test', `${dir}/rec`, '-c', 'slow.config.mjs'], tmp, () => {
      if (seen === 0 && privateCopies(tmp).length > 0) seen = Date.now()
      return seen > 0 && Date.now() - seen > 300
    })
    expect(r.sent).toBe(true)
    expect(r.signal).toBe('SIGINT')
    expect(privateCopies(tmp)).toEqual([])
  })

  it('Ctrl-C on the process group under --workers 2 leaves no private copy from any process', async () => {
    const { bundle, tmp, dir } = fresh()
    killWriter(bundle, 'wal')
    let seen = 0
    const r = await spawnCli(
      ['test', `${dir}/rec`, '-c', 'slow.config.mjs', '--workers', '2'],
      tmp,
      () => {
        if (seen === 0 && privateCopies(tmp).length >= 2) seen = Date.now()
        return seen > 0 && Date.now() - seen > 300
      },
      true,
    )
    expect(r.sent).toBe(true)
    expect(r.signal).toBe('SIGINT')
    // The workers go with the CLI; give them a moment to finish removing their copies.
    for (let i = 0; i < 50 && privateCopies(tmp).length > 0; i++) await new Promise((f) => setTimeout(f, 100))
    expect(privateCopies(tmp)).toEqual([])
  })

  it('Ctrl-C during extract leaves no hidden temporary file in the output folder', async () => {
    const { bundle, tmp, dir } = fresh()
    const ids = (await cli(['ls', bundle, '-n', '0', '--json'], tmp)).stdout
    const recordIds = (JSON.parse(ids) as { records: { id: string }[] }).records.map((x) => x.id)
    expect(recordIds).toHaveLength(RECORDS)
    mkdirSync(`${dir}/out`)
    const hidden = (): string[] => readdirSync(`${dir}/out`).filter((f) => f.startsWith('.'))
    const r = await spawnCli(
      ['extract', bundle, ...recordIds, '-o', `${dir}/out/all.sqlite`],
      tmp,
      () => hidden().length > 0,
    )
    expect(r.sent).toBe(true)
    expect(r.signal).toBe('SIGINT')
    expect(hidden()).toEqual([])
  })
})
