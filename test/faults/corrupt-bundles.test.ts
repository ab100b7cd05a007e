/**
 * Corrupted bundles at scale: every read command (ls, show, find, inspect, spawned as a
 * user types them) over a generated corpus of broken copies of a real bundle. Each run
 * exits 2 with exactly one line on stderr and nothing on stdout, or exits 0 because the
 * damage landed where it changes nothing SQLite checks (counted apart, and the file's
 * full `integrity_check` is run to tell sound files from corruption that went unnoticed);
 * never another code, a stack trace, a hang past the deadline, or a file written beside
 * the input. test/e2e/hostile-files.test.ts pins the exact message of each kind of
 * breakage; this counts the promise over hundreds of files.
 */
import { copyFileSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { createRecorder, type StageContext } from '../../src/index.js'
import { withDb } from '../helpers/bundle-db.js'
import { type CliResult, listDir, runCli, sharedTempDir } from '../helpers/cli.js'
import { buildCorpus, type CorpusKind } from './corpus.js'
import { faultSeed, full, mapLimit, reportFault, requireBuild, seeded } from './kit.js'

const dir = sharedTempDir('retrace-faults-corrupt-')
const deadlineMs = 30_000
let real = ''
let recordId = ''

/** A real bundle: 40 three-stage records with effects, and 3 with 60 KB payloads (overflow pages). */
async function recordRealBundle(path: string): Promise<string> {
  let now = Date.parse('2026-02-01T00:00:00Z')
  const recorder = createRecorder({
    path,
    pipeline: 'corpus',
    build: 'b1',
    clock: () => now,
    flushIntervalMs: 5,
  })
  let first = ''
  const parse = recorder.stage('parse', (n: number) => ({ n, note: `order ${n}` }))
  const price = recorder.stage('price', (o: { n: number }, ctx: StageContext) => ({
    ...o,
    unit: ctx.effect('kv.get', { sku: o.n }, () => 100 + o.n),
    blob: o.n % 15 === 14 ? 'B'.repeat(60_000) : '',
  }))
  const store = recorder.stage('store', (o: { n: number; unit: number }, ctx: StageContext) => ({
    n: o.n,
    total: o.unit * 2,
    at: ctx.now(),
  }))
  try {
    for (let n = 0; n < 43; n++) {
      now += 1000
      await recorder.record(`sku:${n % 7}`, async () => {
        if (first === '') first = recorder.current()!.recordId
        await store(await price(await parse(n)))
      })
    }
  } finally {
    await recorder.close()
  }
  return first
}

beforeAll(async () => {
  requireBuild()
  mkdirSync(join(dir(), 'real'))
  real = join(dir(), 'real', 'bundle.sqlite')
  recordId = await recordRealBundle(real)
  const overflow = withDb(
    real,
    (db) => db.prepare("SELECT count(*) FROM dbstat WHERE pagetype = 'overflow'").pluck().get(),
    true,
  )
  expect(overflow).toBeGreaterThan(0)
})

const commandsFor = (path: string): string[][] => [
  ['ls', path],
  ['show', path, recordId],
  ['find', path, '--where', 'store.n = 3'],
  ['inspect', path],
]

/**
 * Full `integrity_check` over a private copy, read-only as the CLI reads (a read-write
 * open would also refuse a schema that merely names an unsafe function in a CHECK).
 */
function soundOnDisk(path: string): boolean {
  try {
    return withDb(path, (db) => db.pragma('integrity_check', { simple: true }) === 'ok', true)
  } catch {
    return false
  }
}

type FileOutcome = 'refused' | 'sound' | 'unnoticed' | 'mixed'

interface Checked {
  name: string
  kind: CorpusKind
  outcome: FileOutcome
  problems: string[]
  hangs: number
  runs: number
  writtenBeside: string[]
}

function checkRun(r: CliResult, label: string, problems: string[]): void {
  if (r.signal !== null) {
    problems.push(`${label}: killed (${r.signal})`)
    return
  }
  if (r.stderr.includes('    at ')) problems.push(`${label}: stack trace on stderr`)
  if (r.code === 2) {
    if (!/^retrace: [^\n]+\n$/.test(r.stderr))
      problems.push(`${label}: exit 2 without exactly one line: ${JSON.stringify(r.stderr)}`)
    if (r.stdout !== '') problems.push(`${label}: exit 2 with output on stdout`)
  } else if (r.code === 0) {
    if (r.stderr !== '')
      problems.push(`${label}: exit 0 with stderr ${JSON.stringify(r.stderr.slice(0, 200))}`)
  } else {
    problems.push(`${label}: exit ${r.code}: ${JSON.stringify(r.stderr.slice(0, 300))}`)
  }
}

describe('a corpus of corrupted bundles', () => {
  it('every read command refuses each in one line, or reads a file still sound', {
    timeout: 60 * 60_000,
  }, async () => {
    const sizes = full
      ? { truncations: 120, headerFlips: 200, btreeFlips: 150, overflowFlips: 60 }
      : { truncations: 16, headerFlips: 24, btreeFlips: 24, overflowFlips: 10 }
    const scratch = join(dir(), 'scratch')
    mkdirSync(scratch)
    const corpus = buildCorpus(real, scratch, sizes, seeded(faultSeed))
    expect(corpus.length).toBeGreaterThanOrEqual(full ? 500 : 100)

    const checked = await mapLimit(corpus, 2, async (c, i): Promise<Checked> => {
      const caseDir = join(dir(), `c${i}`)
      mkdirSync(caseDir)
      const path = join(caseDir, 'bundle.sqlite')
      c.make(path)
      const before = listDir(caseDir)
      // The full run sends every file through all four commands; the bounded run sends each
      // through two of them in turn, so every command still sees half the corpus.
      const argvs = full ? commandsFor(path) : commandsFor(path).filter((_, k) => k % 2 === i % 2)
      const runs = await Promise.all(argvs.map((argv) => runCli(argv, { timeoutMs: deadlineMs })))
      const after = listDir(caseDir)
      const problems: string[] = []
      for (const [k, r] of runs.entries()) checkRun(r, `${c.name} / ${argvs[k]![0]}`, problems)
      const codes = runs.map((r) => r.code)
      let outcome: FileOutcome = 'mixed'
      if (codes.every((x) => x === 2)) outcome = 'refused'
      else if (codes.every((x) => x === 0)) {
        // Read without complaint: is it really sound, or did the damage go unnoticed?
        const copyDir = join(scratch, `check-${i}`)
        mkdirSync(copyDir)
        copyFileSync(path, join(copyDir, 'bundle.sqlite'))
        outcome = soundOnDisk(join(copyDir, 'bundle.sqlite')) ? 'sound' : 'unnoticed'
        rmSync(copyDir, { recursive: true, force: true })
      }
      rmSync(caseDir, { recursive: true, force: true })
      return {
        name: c.name,
        kind: c.kind,
        outcome,
        problems,
        hangs: runs.filter((r) => r.signal === 'SIGKILL').length,
        runs: runs.length,
        writtenBeside: after.filter((f) => !before.includes(f)),
      }
    })

    const count = (pred: (c: Checked) => boolean): number => checked.filter(pred).length
    const runs = checked.reduce((n, c) => n + c.runs, 0)
    const kinds = [...new Set(checked.map((c) => c.kind))]
    reportFault(
      'corrupt',
      `${checked.length} files (seed ${faultSeed}; ${kinds.map((k) => `${k} ${count((c) => c.kind === k)}`).join(', ')}) ` +
        `x ${full ? 'all 4 commands' : '2 of the 4 commands in turn'} = ${runs} runs: ` +
        `${count((c) => c.outcome === 'refused')} refused by every command run on them (exit 2, one line), ` +
        `${count((c) => c.outcome === 'sound')} read fine and still sound (integrity_check ok), ` +
        `${count((c) => c.outcome === 'unnoticed')} read fine although integrity_check fails, ` +
        `${count((c) => c.outcome === 'mixed')} refused by some commands and read by others; ` +
        `${checked.reduce((n, c) => n + c.problems.length, 0)} runs with another exit code, more than one line or a stack trace, ` +
        `${checked.reduce((n, c) => n + c.hangs, 0)} hangs (deadline ${deadlineMs / 1000} s), ` +
        `${checked.reduce((n, c) => n + c.writtenBeside.length, 0)} files written beside the input`,
    )
    for (const kind of kinds) {
      const of = checked.filter((c) => c.kind === kind)
      reportFault(
        'corrupt',
        `  ${kind}: ${of.length} files, refused ${of.filter((c) => c.outcome === 'refused').length}, ` +
          `sound ${of.filter((c) => c.outcome === 'sound').length}, unnoticed ${of.filter((c) => c.outcome === 'unnoticed').length}, ` +
          `mixed ${of.filter((c) => c.outcome === 'mixed').length}`,
      )
    }
    const unnoticed = checked
      .filter((c) => c.outcome === 'unnoticed' || c.outcome === 'mixed')
      .map((c) => `${c.outcome}: ${c.name}`)
    if (unnoticed.length > 0)
      reportFault('corrupt', `  read although damaged, or mixed: ${unnoticed.slice(0, 20).join('; ')}`)

    expect(checked.flatMap((c) => c.problems)).toEqual([])
    expect(checked.flatMap((c) => c.writtenBeside.map((f) => `${c.name}: ${f}`))).toEqual([])
    expect(checked.filter((c) => c.kind === 'control').map((c) => c.outcome)).toEqual(['sound', 'sound'])
    // Hostile schemas are refused, never read.
    expect(checked.filter((c) => /view|trigger/.test(c.name)).map((c) => [c.name, c.outcome])).toEqual(
      checked.filter((c) => /view|trigger/.test(c.name)).map((c) => [c.name, 'refused']),
    )
  })
})
