/**
 * `retrace test --workers` and `retrace replay --workers`: the CLI and its worker processes
 * share a bundle's records. The report must be the one a single process gives (same
 * counts, same failures in the same order, same JUnit test cases, the same JSON byte for
 * byte), --update must pin the same expectations, and a worker that dies must end the run
 * with one clear line, not a hang.
 */
import { spawnSync } from 'node:child_process'
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
} from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withDb } from '../helpers/bundle-db.js'
import { binPath, runCli as spawnCli } from '../helpers/cli.js'
import {
  type CliResult,
  inventoryChain,
  record,
  runChain,
  type Workspace,
  workspace,
} from '../replay/fixture.js'

// A local build with a bug in one record out of seven, spread over the bundle.
const computeSomeSrc = `export function compute(row) {
  const off = row.onHand % 7 === 0 ? 1 : 0
  return { sku: row.sku, available: row.onHand - row.reserved - off }
}
`
// Kills a worker process at its first record (the CLI itself has no IPC channel).
const computeKillerSrc = `export function compute(row) {
  if (typeof process.send === 'function') process.kill(process.pid, 'SIGKILL')
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`
// Waits on a timer (the event loop turns, results from workers land) and prints after it.
const computeSlowChattySrc = `export async function compute(row) {
  await new Promise((resolve) => setTimeout(resolve, 1))
  console.log('compute: waited for', row.sku)
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`
// The worker replays its first two chunks (57 records of 240 with two processes), then, at
// the first record of its third, waits until the CLI is at the 12th record of its own first
// chunk (its last 8 already read) and kills itself there.
const computeMidChunkKillerSrc = `import { existsSync, writeFileSync } from 'node:fs'
let calls = 0
export async function compute(row) {
  calls++
  if (typeof process.send === 'function') {
    if (calls === 58) {
      for (let i = 0; i < 1000 && !existsSync('cli-at-12'); i++) await new Promise((r) => setTimeout(r, 5))
      process.kill(process.pid, 'SIGKILL')
    }
  } else {
    if (calls === 12) writeFileSync('cli-at-12', '')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`
// Prints when it loads and from a timer it leaves running, outside any stage call.
const computeNoisyModuleSrc = `console.log('compute module loaded')
setInterval(() => console.log('heartbeat'), 1).unref()
export function compute(row) {
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`
// Kills a worker process at its 40th record: after its first chunk (30 records of 240 with
// two processes) has been sent back, within the second it holds from the start.
const computeLateKillerSrc = `let calls = 0
export function compute(row) {
  if (typeof process.send === 'function' && ++calls === 40) process.kill(process.pid, 'SIGKILL')
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`
// Prints as it works: on stdout through console.log and process.stdout.write.
const computeChattySrc = `export function compute(row) {
  console.log('compute: looking at', row.sku)
  process.stdout.write('compute: done\\n')
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`
const configOf = (compute: string): string =>
  `export default { stages: ${JSON.stringify({
    parse: './stages/parse.mjs#parse',
    compute: `./stages/${compute}.mjs#compute`,
    format: './stages/format.mjs#format',
  })} }\n`

// Over the 50 records per process below which a bundle runs in the CLI alone.
const RECORDS = 240
const diverging = Array.from({ length: RECORDS }, (_, i) => 10 + i).filter(
  (onHand) => onHand % 7 === 0,
).length

let ws: Workspace
const cli = (...args: string[]): Promise<CliResult> =>
  spawnCli(args, { cwd: ws.dir, env: { CI: undefined, GITHUB_ACTIONS: undefined } })

beforeAll(async () => {
  ws = workspace('retrace-test-workers-')
  const chain = await inventoryChain(ws)
  ws.write('stages/compute-some.mjs', computeSomeSrc)
  ws.write('stages/compute-killer.mjs', computeKillerSrc)
  ws.write('stages/compute-chatty.mjs', computeChattySrc)
  ws.write('stages/compute-late-killer.mjs', computeLateKillerSrc)
  ws.write('stages/compute-slow-chatty.mjs', computeSlowChattySrc)
  ws.write('stages/compute-mid-chunk-killer.mjs', computeMidChunkKillerSrc)
  ws.write('mid-chunk-killer.config.mjs', configOf('compute-mid-chunk-killer'))
  ws.write('stages/compute-noisy-module.mjs', computeNoisyModuleSrc)
  ws.write('noisy-module.config.mjs', configOf('compute-noisy-module'))
  ws.write('slow-chatty.config.mjs', configOf('compute-slow-chatty'))
  ws.write('late-killer.config.mjs', configOf('compute-late-killer'))
  ws.write('chatty.config.mjs', configOf('compute-chatty'))
  ws.write('retrace.config.mjs', configOf('compute'))
  ws.write('some.config.mjs', configOf('compute-some'))
  ws.write('killer.config.mjs', configOf('compute-killer'))
  ws.write(
    'partial.config.mjs',
    `export default { stages: ${JSON.stringify({ parse: './stages/parse.mjs#parse', compute: './stages/compute.mjs#compute' })} }\n`,
  )
  mkdirSync(ws.path('recordings'))
  await record(ws.path('recordings/big.sqlite'), async (recorder) => {
    for (let i = 0; i < RECORDS; i++) {
      const sku = `sku:${1000 + i}`
      await runChain(recorder, sku, { sku, onHand: 10 + i, reserved: i % 3 }, chain)
    }
  })
}, 120_000)

afterAll(() => ws?.remove())

function copyOfBig(name: string): string {
  mkdirSync(ws.path('copies'), { recursive: true })
  const path = ws.path(`copies/${name}.sqlite`)
  copyFileSync(ws.path('recordings/big.sqlite'), path)
  return path
}

function pinned(path: string): string[] {
  return withDb(
    path,
    (db) =>
      (
        db.prepare('SELECT record_id, stage, output FROM expectations ORDER BY record_id, stage').all() as {
          record_id: string
          stage: string
          output: string
        }[]
      ).map((x) => `${x.record_id} ${x.stage} ${x.output}`),
    true,
  )
}

/** The lines retrace itself wrote to stderr (what stages print aside). */
function retraceLines(stderr: string): string[] {
  return stderr
    .trimEnd()
    .split('\n')
    .filter((l) => l.startsWith('retrace:'))
}

/** Replay worker processes running in `dir`, from /proc. */
function workersIn(dir: string): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      if (cmdline.includes('--retrace-worker') && readlinkSync(`/proc/${entry}/cwd`) === dir)
        found.push(Number(entry))
    } catch {
      // Gone while we looked.
    }
  }
  return found
}

describe('retrace test --workers', { timeout: 120_000 }, () => {
  it('reports exactly what one process reports when every record matches', async () => {
    const one = await cli('test', 'recordings')
    const two = await cli('test', 'recordings', '--workers', '2')
    const three = await cli('test', 'recordings', '--workers', '3')
    expect(one.code).toBe(0)
    expect(one.stdout).toContain(`${RECORDS} records tested, ${RECORDS} matched, 0 diverged, 0 errors`)
    for (const r of [two, three]) {
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      expect(r.stdout).toBe(one.stdout)
    }
  })

  it('lists the same failures, in bundle order, with the same step diffs (text and JSON)', async () => {
    const one = await cli('test', 'recordings', '--config', 'some.config.mjs')
    const two = await cli('test', 'recordings', '--config', 'some.config.mjs', '--workers', '2')
    expect(one.code).toBe(1)
    expect(two.code).toBe(1)
    expect(one.stdout).toContain(
      `${RECORDS} records tested, ${RECORDS - diverging} matched, ${diverging} diverged, 0 errors`,
    )
    expect(one.stdout).toContain('diverged at compute')
    expect(two.stdout).toBe(one.stdout)
    const jsonOne = await cli('test', 'recordings', '--config', 'some.config.mjs', '--reporter', 'json')
    const jsonTwo = await cli(
      'test',
      'recordings',
      '--config',
      'some.config.mjs',
      '--reporter',
      'json',
      '--workers',
      '2',
    )
    const failures = (r: CliResult): unknown[] =>
      (JSON.parse(r.stdout) as { bundles: { failures: unknown[] }[] }).bundles[0]!.failures
    expect(failures(jsonOne)).toHaveLength(diverging)
    expect(failures(jsonTwo)).toEqual(failures(jsonOne))
  })

  it('JUnit lists every record, in bundle order, as one process does', async () => {
    const args = ['test', 'recordings', '--config', 'some.config.mjs', '--reporter', 'junit']
    const one = await cli(...args)
    const two = await cli(...args, '--workers', '2')
    expect(two.code).toBe(1)
    expect(two.stdout.match(/<testcase /g)).toHaveLength(RECORDS)
    expect(two.stdout).toBe(one.stdout)
  })

  it('reports the same stale records, in bundle order', async () => {
    const args = ['test', 'recordings', '--config', 'partial.config.mjs', '--reporter', 'json']
    const one = await cli(...args)
    const two = await cli(...args, '--workers', '2')
    const stale = (r: CliResult): { recordId: string; stage: string; why: string }[] =>
      (JSON.parse(r.stdout) as { stale: { recordId: string; stage: string; why: string }[] }).stale
    expect(stale(one)).toHaveLength(RECORDS)
    expect(stale(one)[0]).toMatchObject({ stage: 'format', why: 'stage not in config' })
    expect(stale(two)).toEqual(stale(one))
  })

  it('--update pins the same expectations as one process', async () => {
    const a = copyOfBig('update-one')
    const b = copyOfBig('update-two')
    const one = await cli('test', a, '--config', 'some.config.mjs', '--update')
    const two = await cli('test', b, '--config', 'some.config.mjs', '--update', '--workers', '2')
    expect(one.code).toBe(0)
    expect(two.code).toBe(0)
    // compute diverged and format inherited in each failing record.
    expect(two.stdout).toContain(`updated ${diverging * 2} expectations from the local build`)
    expect(pinned(b)).toEqual(pinned(a))
    const again = await cli('test', b, '--config', 'some.config.mjs', '--workers', '2')
    expect(again.code).toBe(0)
  })

  it('a stage that kills its worker fails the run (exit 1) with one line naming the records', async () => {
    const r = await cli('test', 'recordings', '--config', 'killer.config.mjs', '--workers', '2')
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    const bundle = ws.path('recordings/big.sqlite')
    expect(r.stderr).toMatch(
      new RegExp(
        `^retrace: a worker process exited \\(SIGKILL\\) while replaying \\d+ records of ${bundle.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} from [0-9A-Za-z-]+; a stage may have ended its process \\(retrace replay \\S+ [0-9A-Za-z-]+ runs the first of them\\)\n$`,
      ),
    )
  })

  it.runIf(existsSync('/proc/self/cmdline'))(
    'workers started before the command line is checked leave with a refused run',
    async () => {
      for (const args of [
        ['test', 'nowhere', '--workers', '2'],
        ['test', 'recordings', '--workers=3', '--shard', 'half'],
      ]) {
        const r = await cli(...args)
        expect(r.code).toBe(2)
        expect(r.stdout).toBe('')
        expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
      }
      await expect.poll(() => workersIn(ws.dir), { timeout: 5_000 }).toEqual([])
    },
  )

  it('what a stage prints goes to stderr: stdout holds the report alone', async () => {
    const replay = await cli('replay', 'recordings/big.sqlite', '--config', 'chatty.config.mjs', '--json')
    expect(replay.code).toBe(0)
    const doc = JSON.parse(replay.stdout) as { summary: { records: number; matched: number } }
    expect(doc.summary).toMatchObject({ records: RECORDS, matched: RECORDS })
    expect(replay.stderr).toContain('compute: looking at sku:1000\ncompute: done\n')
    for (const workers of ['1', '2']) {
      const json = await cli(
        'test',
        'recordings',
        '--config',
        'chatty.config.mjs',
        '--reporter',
        'json',
        '--workers',
        workers,
      )
      expect(json.code).toBe(0)
      expect((JSON.parse(json.stdout) as { summary: { matched: number } }).summary.matched).toBe(RECORDS)
      expect(json.stderr.match(/compute: done/g)).toHaveLength(RECORDS)
      const junit = await cli(
        'test',
        'recordings',
        '--config',
        'chatty.config.mjs',
        '--reporter',
        'junit',
        '--workers',
        workers,
      )
      expect(junit.code).toBe(0)
      expect(junit.stdout).toMatch(/^<\?xml [^\n]*\?>\n<testsuites /)
      expect(junit.stdout).not.toContain('compute:')
      expect(junit.stdout.match(/<testcase /g)).toHaveLength(RECORDS)
    }
  })
})

describe('retrace replay --workers', { timeout: 120_000 }, () => {
  const bundle = 'recordings/big.sqlite'
  const same = async (...args: string[]): Promise<CliResult> => {
    const one = await cli('replay', bundle, ...args)
    const two = await cli('replay', bundle, ...args, '--workers', '2')
    expect(two.stdout).toBe(one.stdout)
    expect(two.stderr).toBe(one.stderr)
    expect(two.code).toBe(one.code)
    return one
  }

  it('prints what one process prints, in the same order: text, verbose, unified and JSON', async () => {
    const text = await same('--config', 'some.config.mjs')
    expect(text.code).toBe(1)
    expect(text.stdout).toContain(
      `${RECORDS} records replayed, ${RECORDS - diverging} matched, ${diverging} diverged, 0 errors`,
    )
    expect(text.stdout.match(/diverged at compute/g)).toHaveLength(diverging)
    await same('--config', 'some.config.mjs', '--verbose')
    const unified = await same('--config', 'some.config.mjs', '--format', 'unified')
    expect(unified.stdout.match(/^\+\+\+ local\/compute/gm)).toHaveLength(diverging)
    const json = await same('--config', 'some.config.mjs', '--json')
    const doc = JSON.parse(json.stdout) as { records: { recordId: string; verdict: string }[] }
    expect(doc.records).toHaveLength(RECORDS)
    expect(doc.records.filter((r) => r.verdict === 'diverged')).toHaveLength(diverging)
    const matched = await same('--config', 'retrace.config.mjs', '--json')
    expect(matched.code).toBe(0)
  })

  it('keeps the order of a selection: --where, and record ids named twice', async () => {
    const where = await same('--config', 'some.config.mjs', '--where', 'compute.available >= 0', '--json')
    const picked = (JSON.parse(where.stdout) as { records: { recordId: string }[] }).records.map(
      (r) => r.recordId,
    )
    expect(picked.length).toBeGreaterThan(100)
    // Over the 50 records per process below which a selection runs in the CLI alone.
    const named = [...picked.slice(0, 70), ...picked.slice(0, 40).reverse()]
    const byId = await same(...named, '--config', 'some.config.mjs', '--json')
    expect(
      (JSON.parse(byId.stdout) as { records: { recordId: string }[] }).records.map((r) => r.recordId),
    ).toEqual(named)
  })

  it('stdout and stderr sent to one file keep their order', () => {
    // stdout to a file is written in gathered blocks; what retrace says on stderr must
    // still follow the records before it and precede the summary after it.
    for (const workers of ['1', '2']) {
      const file = ws.path(`both-${workers}.txt`)
      const fd = openSync(file, 'w')
      try {
        const r = spawnSync(
          process.execPath,
          [binPath, 'replay', bundle, '--config', 'partial.config.mjs', '--verbose', '--workers', workers],
          { cwd: ws.dir, stdio: ['ignore', fd, fd], env: { ...process.env, NO_COLOR: '1' } },
        )
        expect(r.status).toBe(0)
      } finally {
        closeSync(fd)
      }
      const lines = readFileSync(file, 'utf8').trimEnd().split('\n')
      expect(lines[0]).toMatch(/^replaying /)
      const warning = lines.findIndex((l) => l.startsWith('stages in the recording but not in the config'))
      const summary = lines.findIndex((l) => l.startsWith(`${RECORDS} records replayed`))
      const records = lines.flatMap((l, i) => (/^record \S+ +key \S+ +matched$/.test(l) ? [i] : []))
      expect(records).toHaveLength(RECORDS)
      expect(records.at(-1)).toBeLessThan(warning)
      expect(summary).toBe(lines.length - 1)
      expect(warning).toBeLessThan(summary)
    }
  })

  it('names the stages the config lacks, as one process does', async () => {
    const r = await same('--config', 'partial.config.mjs', '--json')
    expect(JSON.parse(r.stdout)).toMatchObject({ missingStages: ['format'] })
  })

  it('a stage that kills its worker fails the run (exit 1) with one line', async () => {
    const r = await cli('replay', bundle, '--config', 'killer.config.mjs', '--workers', '2')
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^retrace: a worker process exited \(SIGKILL\) while replaying \d+ records of /m)
    expect(retraceLines(r.stderr)).toHaveLength(1)
  })

  it('a failure midway through --json still leaves one JSON document, ending in the error', async () => {
    const r = await cli('replay', bundle, '--config', 'late-killer.config.mjs', '--json', '--workers', '2')
    expect(r.code).toBe(1)
    const doc = JSON.parse(r.stdout) as { records: { recordId: string }[]; error: { code: string } }
    expect(doc.records.length).toBeGreaterThan(0)
    expect(doc.records.length).toBeLessThan(RECORDS)
    expect(doc.error.code).toBe('E_WORKER_DIED')
    expect(r.stderr).toMatch(/^retrace: a worker process exited \(SIGKILL\)/m)
  })

  it('a stage that prints after awaiting does not send the records reported meanwhile to stderr', async () => {
    const args = ['replay', bundle, '--config', 'slow-chatty.config.mjs', '--json']
    const one = await cli(...args)
    const two = await cli(...args, '--workers', '2')
    for (const r of [one, two]) {
      expect(r.code).toBe(0)
      expect((JSON.parse(r.stdout) as { records: unknown[] }).records).toHaveLength(RECORDS)
      expect(r.stderr.match(/compute: waited for/g)).toHaveLength(RECORDS)
    }
    expect(two.stdout).toBe(one.stdout)
  })

  it('a worker that dies while the CLI replays its own records: no record is written after the error', async () => {
    rmSync(ws.path('cli-at-12'), { force: true })
    const r = await cli(
      'replay',
      bundle,
      '--config',
      'mid-chunk-killer.config.mjs',
      '--json',
      '--workers',
      '2',
    )
    expect(r.code).toBe(1)
    const doc = JSON.parse(r.stdout) as { records: unknown[]; error: { code: string } }
    expect(doc.error.code).toBe('E_WORKER_DIED')
    expect(retraceLines(r.stderr)).toHaveLength(1)
  })

  it('what a stage module prints outside a stage (loading, timers) goes to stderr too', async () => {
    for (const workers of ['1', '2']) {
      const r = await cli(
        'replay',
        bundle,
        '--config',
        'noisy-module.config.mjs',
        '--json',
        '--workers',
        workers,
      )
      expect(r.code).toBe(0)
      expect((JSON.parse(r.stdout) as { records: unknown[] }).records).toHaveLength(RECORDS)
      expect(r.stderr).toContain('compute module loaded')
    }
  })
})
