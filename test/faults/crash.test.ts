/**
 * Crash: a child process records a steady stream and is SIGKILLed at a random moment, N
 * times. After each kill the bundle passes `integrity_check`, every record in it is whole
 * (all three captures with all their effects) or absent, the records that landed are a
 * gap-free prefix of the stream, and the loss (kill time minus the end of the last record
 * that landed) is reported against the flush interval.
 *
 * test/recorder/process.test.ts kills a few times and checks one bundle each; this is the
 * same promise counted at scale, with kills during start-up too.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { beforeAll, describe, expect, it } from 'vitest'
import { integrityCheck, withDb } from '../helpers/bundle-db.js'
import { runCli } from '../helpers/cli.js'
import { tempDir } from '../helpers/tmp.js'
import { childrenDir, faultSeed, full, mapLimit, reportFault, requireBuild, scale, seeded } from './kit.js'

const kills = scale(1000, 20)
const flushIntervalMs = 200
/** Every this many kills, the CLI also reads the crashed bundle as it was left. */
const cliEvery = full ? 20 : 10

beforeAll(requireBuild)

/** What each record must hold to be whole: stage, and its effects as kind:name. */
const shape: readonly [string, string[]][] = [
  ['parse', []],
  ['price', ['now:now', 'effect:kv.get', 'async-effect:promo.get']],
  ['store', ['random:random']],
]

interface Outcome {
  file: boolean
  schema: boolean
  integrity: string
  records: number
  partial: number
  orphans: number
  /** Records missing from the middle of the stream (the landed ones must be 0..n-1). */
  holes: number
  lossMs: number
  cliOk: boolean | undefined
}

function examine(path: string): Omit<Outcome, 'lossMs' | 'cliOk'> & { lastEndedAt: number | null } {
  const none = { records: 0, partial: 0, orphans: 0, holes: 0, lastEndedAt: null }
  if (!existsSync(path)) return { file: false, schema: false, integrity: 'ok', ...none }
  const integrity = integrityCheck(path)
  return withDb(path, (db) => {
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all()
    if (!tables.includes('records') || !tables.includes('effects')) {
      return { file: true, schema: false, integrity, ...none }
    }
    const records = db.prepare('SELECT id, key, status, ended_at FROM records').all() as {
      id: string
      key: string
      status: string
      ended_at: number | null
    }[]
    const capturesOf = db.prepare(
      'SELECT id, seq, stage, attempt, output, error FROM captures WHERE record_id = ? ORDER BY seq',
    )
    const effectsOf = db.prepare('SELECT kind, name, result FROM effects WHERE capture_id = ? ORDER BY seq')
    let partial = 0
    const seqs: number[] = []
    let lastEndedAt: number | null = null
    for (const r of records) {
      seqs.push(Number(r.key.slice('seq:'.length)))
      if (r.ended_at !== null) lastEndedAt = Math.max(lastEndedAt ?? 0, r.ended_at)
      const caps = capturesOf.all(r.id) as {
        id: number
        seq: number
        stage: string
        attempt: number
        output: string | null
        error: string | null
      }[]
      const whole =
        r.status === 'ok' &&
        r.ended_at !== null &&
        caps.length === shape.length &&
        caps.every((c, i) => {
          const [stage, effects] = shape[i]!
          const got = (effectsOf.all(c.id) as { kind: string; name: string; result: string | null }[]).filter(
            (e) => e.result !== null,
          )
          return (
            c.seq === i &&
            c.stage === stage &&
            c.attempt === 1 &&
            c.output !== null &&
            c.error === null &&
            got.map((e) => `${e.kind}:${e.name}`).join() === effects.join()
          )
        })
      if (!whole) partial++
    }
    seqs.sort((a, b) => a - b)
    const holes = seqs.length === 0 ? 0 : seqs[seqs.length - 1]! + 1 - seqs.length
    const orphans =
      (db
        .prepare('SELECT count(*) FROM captures WHERE record_id NOT IN (SELECT id FROM records)')
        .pluck()
        .get() as number) +
      (db
        .prepare('SELECT count(*) FROM effects WHERE capture_id NOT IN (SELECT id FROM captures)')
        .pluck()
        .get() as number)
    return {
      file: true,
      schema: true,
      integrity,
      records: records.length,
      partial,
      orphans,
      holes,
      lastEndedAt,
    }
  })
}

interface Plan {
  duringStartup: boolean
  delayMs: number
}

/**
 * One kill in ten lands during start-up (before or while the writer thread opens the
 * bundle); the rest once the first batch is committed, up to 3.5 flush intervals later. Drawn up front from the
 * seed, so a run can be repeated with FAULTS_SEED.
 */
function planKills(n: number, rand: () => number): Plan[] {
  return Array.from({ length: n }, () => {
    const duringStartup = rand() < 0.1
    return { duringStartup, delayMs: Math.floor(rand() * (duringStartup ? 300 : 3.5 * flushIntervalMs)) }
  })
}

/** Spawns the stream, kills it at a random moment, and examines what it left. */
async function killOnce(dir: string, round: number, plan: Plan): Promise<Outcome> {
  const path = join(dir, `crash-${round}.sqlite`)
  const child = spawn(process.execPath, [join(childrenDir, 'stream.mjs'), path, String(flushIntervalMs)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString()
  })
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, s) => resolve(s)))
  let streamingAt = Date.now()
  if (plan.duringStartup) {
    await sleep(plan.delayMs)
  } else {
    const deadline = Date.now() + 20_000
    while (!stdout.includes('streaming') && Date.now() < deadline && child.exitCode === null) await sleep(2)
    streamingAt = Date.now()
    await sleep(plan.delayMs)
  }
  const killAt = Date.now()
  child.kill('SIGKILL')
  const signal = await exited
  expect(signal, `round ${round}: the child died of the kill, not before it (stderr: ${stderr})`).toBe(
    'SIGKILL',
  )
  // The recorder absorbed nothing worth a report before the kill.
  expect(stderr, `round ${round}`).toBe('')

  let cliOk: boolean | undefined
  if (round % cliEvery === 0 && existsSync(path)) {
    // The crashed bundle as an engineer receives it (with its -wal): the CLI reads it, or
    // refuses an incomplete one with one line; it never crashes on it.
    const r = await runCli(['inspect', path, '--json'])
    cliOk = r.code === 0
    if (!cliOk) {
      expect(r.code, `inspect of crash ${round}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toMatch(/^retrace: [^\n]+\n$/)
    }
  }
  const seen = examine(path)
  const lossMs = killAt - (seen.lastEndedAt ?? streamingAt)
  return { ...seen, lossMs: Math.max(0, lossMs), cliOk }
}

describe('SIGKILL at random moments', () => {
  it(`leaves a sound bundle of whole records, ${kills} times`, { timeout: 60 * 60_000 }, async () => {
    const dir = tempDir('retrace-faults-crash-')
    mkdirSync(join(dir, 'b'))
    const plans = planKills(kills, seeded(faultSeed))
    const outcomes = await mapLimit(plans, 2, (plan, round) => killOnce(join(dir, 'b'), round, plan))

    const bad = outcomes
      .map((o, round) => ({ round, ...o }))
      .filter((o) => o.integrity !== 'ok' || o.partial > 0 || o.orphans > 0 || o.holes > 0)
    const withRecords = outcomes.filter((o) => o.records > 0)
    const losses = withRecords.map((o) => o.lossMs).sort((a, b) => a - b)
    const cli = outcomes.filter((o) => o.cliOk !== undefined)
    reportFault(
      'crash',
      `${kills} kills (seed ${faultSeed}), ${outcomes.filter((o) => o.integrity === 'ok').length} integrity ok, ` +
        `${outcomes.reduce((n, o) => n + o.partial, 0)} partial records, ` +
        `${outcomes.reduce((n, o) => n + o.orphans, 0)} orphan rows, ` +
        `${outcomes.reduce((n, o) => n + o.holes, 0)} gaps; ` +
        `${outcomes.reduce((n, o) => n + o.records, 0)} whole records landed; ` +
        `${outcomes.filter((o) => !o.file).length} killed before the file existed, ` +
        `${outcomes.filter((o) => o.file && !o.schema).length} before the schema was committed, ` +
        `${outcomes.filter((o) => o.schema && o.records === 0).length} before the first batch; ` +
        `loss over ${withRecords.length} kills with records: median ${losses[Math.floor(losses.length / 2)] ?? '-'} ms, ` +
        `p99 ${losses[Math.floor(losses.length * 0.99)] ?? '-'} ms, max ${losses.at(-1) ?? '-'} ms ` +
        `(flush interval ${flushIntervalMs} ms); ` +
        `CLI read ${cli.filter((o) => o.cliOk).length}/${cli.length} crashed bundles as left (others refused in one line)`,
    )
    expect(bad).toEqual([])
    expect(withRecords.length).toBeGreaterThan(0)
  })
})
