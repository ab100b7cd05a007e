/**
 * A local build that tries to end the run: a stage calling `process.exit()` (0 would make
 * a failing run look like a pass), a stage module calling it while it loads, and work a
 * stage leaves running that throws after the stage returned. Each must end as a reported
 * failure with one line naming the stage, never a silent exit and never a stack trace.
 */
import { mkdirSync, readdirSync, readFileSync, realpathSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  inventoryChain,
  parseReplayJson,
  record,
  runChain,
  runCli,
  type Workspace,
  workspace,
} from '../replay/fixture.js'

const RECORDS = 160

const exitingCompute = (code: string): string => `export function compute(row) {
  if (row.onHand % 2 === 0) process.exit(${code})
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`
const asyncExitingCompute = `export async function compute(row) {
  await new Promise((resolve) => setImmediate(resolve))
  process.exit(0)
}
`
const exitAtLoad = `process.exit(0)
export function compute(row) {
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`
// Returns the right value, and leaves behind a timer that throws.
const lateThrowCompute = `export function compute(row) {
  if (row.onHand === 15) setTimeout(() => { throw new Error('late failure in compute') }, 0)
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`
// Returns the right value, and leaves behind a promise that rejects unhandled.
const lateRejectCompute = `export function compute(row) {
  if (row.onHand === 15) Promise.reject(new Error('nobody awaited this'))
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`

// Never returns for one record, and never yields: no timer can fire while it runs.
const spinningCompute = `export function compute(row) {
  if (row.onHand === 20) while (true) {}
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`

// Never returns for any record: the CLI and its workers are all stuck.
const spinningEverywhere = `export function compute(row) {
  while (true) {}
}
`

// Spins only in a worker process (the CLI itself has no IPC channel).
const spinningInWorker = `export function compute(row) {
  if (typeof process.send === 'function') while (true) {}
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`

// Rejects with null from a timer its module set while loading (outside any stage call).
const nullRejectAtLoad = `setTimeout(() => { Promise.reject(null) }, 50)
export function compute(row) {
  const until = Date.now() + 2
  while (Date.now() < until) {}
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`
// Busy for 40 ms on every call: slow, and never stuck.
const slowCompute = `export function compute(row) {
  const until = Date.now() + 40
  while (Date.now() < until) {}
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`
// 700 ms of synchronous work, then an await of 500 ms: within --timeout 600 as the timeout
// counts (from the first await), though it does not yield for longer than that.
const busyThenWaitCompute = `export async function compute(row) {
  if (row.onHand === 12) {
    const until = Date.now() + 700
    while (Date.now() < until) {}
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`

const configOf = (compute: string): string =>
  `export default { stages: { parse: './stages/parse.mjs#parse', compute: './stages/${compute}.mjs#compute', format: './stages/format.mjs#format' } }\n`

let ws: Workspace
const bundle = 'recordings/prod.sqlite'

beforeAll(async () => {
  ws = workspace('retrace-stage-exits-')
  const chain = await inventoryChain(ws)
  const stages: Record<string, string> = {
    exit0: exitingCompute('0'),
    exit3: exitingCompute('3'),
    'async-exit': asyncExitingCompute,
    'exit-at-load': exitAtLoad,
    'late-throw': lateThrowCompute,
    'late-reject': lateRejectCompute,
    spin: spinningCompute,
    'spin-in-worker': spinningInWorker,
    'spin-everywhere': spinningEverywhere,
    'null-reject-at-load': nullRejectAtLoad,
    slow: slowCompute,
    'busy-then-wait': busyThenWaitCompute,
  }
  for (const [name, src] of Object.entries(stages)) {
    ws.write(`stages/${name}.mjs`, src)
    ws.write(`${name}.config.mjs`, configOf(name))
  }
  mkdirSync(ws.path('recordings'))
  await record(ws.path(bundle), async (recorder) => {
    for (let i = 0; i < RECORDS; i++) {
      await runChain(recorder, `sku:${i}`, { sku: `sku:${i}`, onHand: 10 + i, reserved: 1 }, chain)
    }
  })
}, 120_000)

afterAll(() => ws?.remove())

const cli = (...args: string[]) => runCli(args, ws.dir)

describe('a local build that tries to end the run', { timeout: 120_000 }, () => {
  it('process.exit(0) in a stage fails that stage (E_STAGE_EXIT) instead of passing the run', async () => {
    for (const workers of ['1', '2']) {
      const r = await cli('replay', bundle, '--config', 'exit0.config.mjs', '--json', '--workers', workers)
      expect(r.code, r.stderr).toBe(1)
      const doc = parseReplayJson(r)
      expect(doc.summary).toEqual({
        records: RECORDS,
        matched: RECORDS / 2,
        diverged: 0,
        errors: RECORDS / 2,
      })
      const failed = doc.records.find((x) => x.verdict === 'error')!
      expect(failed.firstDivergence).toEqual({ stage: 'compute', status: 'error' })
      const compute = failed.stages.find((s) => s.stage === 'compute')!
      expect(compute.error).toMatchObject({
        code: 'E_STAGE_EXIT',
        message:
          'stage compute called process.exit(0) under replay; retrace does not let the local build end the run',
      })
    }
  })

  it('retrace test fails too, whatever code the stage exits with, in one process or several', async () => {
    for (const config of ['exit0.config.mjs', 'exit3.config.mjs', 'async-exit.config.mjs']) {
      for (const workers of ['1', '2']) {
        const r = await cli('test', 'recordings', '--config', config, '--workers', workers)
        expect(r.code, `${config} --workers ${workers}: ${r.stderr}`).toBe(1)
        expect(r.stdout).toMatch(/E_STAGE_EXIT|called process\.exit/)
      }
    }
  })

  it('a stage module that calls process.exit while it loads cannot be loaded: exit 3, one line', async () => {
    const r = await cli('replay', bundle, '--config', 'exit-at-load.config.mjs')
    expect(r.code).toBe(3)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(
      /^retrace: stage compute: cannot load \S+exit-at-load\.mjs: module \S+exit-at-load\.mjs called process\.exit\(0\) under replay; retrace does not let the local build end the run\n$/m,
    )
  })

  it('an error thrown later by a timer a stage left ends the run: exit 1, one line naming the stage', async () => {
    for (const [config, message] of [
      ['late-throw.config.mjs', 'late failure in compute'],
      ['late-reject.config.mjs', 'nobody awaited this'],
    ] as const) {
      for (const extra of [[], ['--json'], ['--workers', '2']]) {
        const r = await cli('replay', bundle, '--config', config, ...extra)
        const label = `${config} ${extra.join(' ')}`
        expect(r.code, label).toBe(1)
        expect(r.stderr, label).toContain(
          `retrace: stage compute: an error escaped its call (from a timer, callback or promise it left running): ${message}\n`,
        )
        expect(r.stderr, label).not.toMatch(/\n\s+at /)
        // With --json, stdout is still one JSON document.
        if (extra.includes('--json')) parseReplayJson(r)
      }
    }
  })

  it('a stage stuck in code that never yields is stopped after --timeout and a grace period, naming the stage', async () => {
    const stuck =
      /retrace: stage compute has run for \d+ ms without returning or yielding \(a loop that never ends\?\); --timeout cannot interrupt synchronous code, so retrace stopped the process \(E_STAGE_STUCK\)\n/
    const started = Date.now()
    const one = await cli('replay', bundle, '--config', 'spin.config.mjs', '--timeout', '300')
    // Killed: a process stuck in JavaScript cannot exit with a code of its own.
    expect(one.signal).toBe('SIGKILL')
    expect(one.stderr).toMatch(stuck)
    // What was reported of the records before it is written out, not lost with the process.
    expect(one.stdout).toMatch(/^✓ record \S+ {2}key sku:0 {2}matched$/m)
    expect(one.stdout).not.toMatch(/key sku:10 /)
    const many = await cli(
      'test',
      'recordings',
      '--config',
      'spin.config.mjs',
      '--timeout',
      '300',
      '--workers',
      '2',
    )
    expect(many.code === 0, many.stderr).toBe(false)
    // Whichever process met the record: the CLI's watchdog names the stage, a worker's
    // silence names the record.
    expect(many.stderr).toMatch(new RegExp(`${stuck.source}|gave no sign of life for \\d+ ms`))
    // Well before the 20 s the CLI helper allows.
    expect(Date.now() - started).toBeLessThan(15_000)
  })

  it('with --json, a stage stuck that way leaves one JSON document ending in the error', async () => {
    const r = await cli('replay', bundle, '--config', 'spin.config.mjs', '--timeout', '300', '--json')
    expect(r.signal).toBe('SIGKILL')
    const doc = JSON.parse(r.stdout) as {
      records: { key: string }[]
      error: { code: string; message: string }
    }
    // The records before it, then the error where the summary would be.
    expect(doc.records.map((x) => x.key)).toContain('sku:0')
    expect(doc.error.code).toBe('E_STAGE_STUCK')
    expect(doc.error.message).toMatch(/^stage compute has run for \d+ ms without returning or yielding/)
  })

  it('a worker process stuck that way is stopped by the CLI, which fails the run naming the record (exit 1)', async () => {
    const started = Date.now()
    const r = await cli(
      'test',
      'recordings',
      '--config',
      'spin-in-worker.config.mjs',
      '--timeout',
      '300',
      '--workers',
      '2',
    )
    expect(r.signal).toBeNull()
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(
      /^retrace: a worker process replaying record \S+ of \S+prod\.sqlite gave no sign of life for \d+ ms \(a stage stuck in code that never yields\?\); retrace stopped it \(retrace replay \S+ \S+ names the stage\)$/m,
    )
    expect(Date.now() - started).toBeLessThan(15_000)
  })

  it('a CLI stopped for a stuck stage takes its worker processes with it', async () => {
    const r = await cli(
      'replay',
      bundle,
      '--config',
      'spin-everywhere.config.mjs',
      '--timeout',
      '300',
      '--workers',
      '2',
      '--json',
    )
    expect(r.signal).toBe('SIGKILL')
    // A worker left behind spins in the stage for good, its parent gone.
    const left = async (): Promise<number[]> => {
      const pids: number[] = []
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue
        try {
          const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
          if (
            cmdline.includes('--retrace-worker') &&
            realpathSync(`/proc/${entry}/cwd`) === realpathSync(ws.dir)
          )
            pids.push(Number(entry))
        } catch {
          // Gone meanwhile.
        }
      }
      return pids
    }
    let pids = await left()
    for (let i = 0; i < 20 && pids.length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      pids = await left()
    }
    for (const pid of pids) process.kill(pid, 'SIGKILL')
    expect(pids).toEqual([])
  })

  it('a rejection with null from a module timer still fails the run, never exit 0', async () => {
    const r = await cli('replay', bundle, '--config', 'null-reject-at-load.config.mjs')
    expect(r.code === 0, r.stderr).toBe(false)
    expect(r.stderr).toMatch(/^retrace: .*not an Error: null/m)
  })

  it('slow stages are not taken for stuck ones, in one process or several', async () => {
    const slow = await cli(
      'test',
      'recordings',
      '--config',
      'slow.config.mjs',
      '--timeout',
      '300',
      '--workers',
      '2',
    )
    expect(slow.stderr).not.toContain('no sign of life')
    expect(slow.code, slow.stderr).toBe(0)
    const wait = await cli('replay', bundle, '--config', 'busy-then-wait.config.mjs', '--timeout', '600')
    expect(wait.stderr).not.toContain('E_STAGE_STUCK')
    expect(wait.code, wait.stderr).toBe(0)
  })
})
