/**
 * The replay engine called directly: chains recorded by the SDK, read back with the
 * bundle reader, replayed through local stage functions passed in as a map.
 */
import { connect, createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BundleSet, type RecordChain } from '../../src/bundle/index.js'
import { noRules } from '../../src/compare/diff.js'
import { compileRules } from '../../src/compare/rules.js'
import type { StageContext, StageFn } from '../../src/index.js'
import { addToSummary, emptySummary, type ReplayOptions, replayRecord } from '../../src/replay/engine.js'
import { record, type Workspace, workspace } from './fixture.js'

type Item = { sku: string; onHand: number; reserved: number }
type Stock = { sku: string; available: number }

const parse: StageFn = (e) => ({ ...(e as Item) })
const computeProd: StageFn = (r) => ({
  sku: (r as Item).sku,
  available: (r as Item).onHand + (r as Item).reserved,
})
const computeFixed: StageFn = (r) => ({
  sku: (r as Item).sku,
  available: (r as Item).onHand - (r as Item).reserved,
})
// The effect's args carry the value written, so they differ whenever the input does.
const storeProd: StageFn = async (s, ctx) => {
  const v = await ctx.effect(
    'kv.version',
    { sku: (s as Stock).sku, available: (s as Stock).available },
    async () => 3,
  )
  return { ...(s as Stock), version: v + 1 }
}
const label: StageFn = (s) => ({ text: `${(s as Stock).available} left` })
const expand: StageFn = (n) => ({ pad: 'x'.repeat(Number(n)) })
const count: StageFn = (o) => ({ n: (o as { pad: string }).pad.length })

let ws: Workspace
let set: BundleSet
const chains: Record<string, RecordChain> = {}

function options(stages: Record<string, StageFn>, extra: Partial<ReplayOptions> = {}): ReplayOptions {
  return { mode: 'cascade', stages: new Map(Object.entries(stages)), rules: noRules, now: () => 0, ...extra }
}

const local = { parse, compute: computeFixed, store: storeProd, label }

beforeAll(async () => {
  ws = workspace()
  const path = ws.path('engine.sqlite')
  const ids: Record<string, string> = {}
  await record(
    path,
    async (recorder) => {
      const p = recorder.stage('parse', parse)
      const c = recorder.stage('compute', computeProd)
      const s = recorder.stage('store', storeProd)
      const l = recorder.stage('label', label)
      const run = (name: string, key: string, body: () => Promise<unknown>): Promise<unknown> =>
        recorder.record(key, async () => {
          ids[name] = recorder.current()!.recordId
          return body()
        })
      await run('bug', 'sku:1', async () =>
        l(await s(await c(await p({ sku: 'sku:1', onHand: 46, reserved: 41 })))),
      )
      await run('clean', 'sku:2', async () =>
        l(await s(await c(await p({ sku: 'sku:2', onHand: 5, reserved: 0 })))),
      )
      // Another writer changes the value between compute and store: the seam does not line up.
      await run('seam', 'sku:3', async () => {
        const computed = (await c(await p({ sku: 'sku:3', onHand: 7, reserved: 0 }))) as Stock
        return l(await s({ ...computed, available: 70 }))
      })
      // Production's compute threw.
      const boom = recorder.stage('compute', () => {
        throw new TypeError('reserved is not a number')
      })
      await run('threw', 'sku:4', async () => {
        try {
          await boom(await p({ sku: 'sku:4', onHand: 1, reserved: 0 }))
        } catch {}
      })
      // A payload over the recorder's size limit is not recorded.
      const big = recorder.stage('compute', computeProd)
      await run('big', 'sku:5', () => big({ sku: 'sku:5', onHand: 1, reserved: 0, pad: 'x'.repeat(4096) }))
      // An output over the limit: expand's output and label's input are not recorded.
      const e = recorder.stage('expand', expand)
      const n = recorder.stage('count', count)
      await run('bigOutput', 'sku:6', async () => n(await e(4096)))
    },
    { maxPayloadBytes: 2048 },
    ['E_PAYLOAD'],
  )
  set = BundleSet.open([path])
  for (const [name, id] of Object.entries(ids)) chains[name] = set.loadRecord(id)
})

afterAll(() => {
  set?.close()
  ws?.remove()
})

const statusOf = (r: Awaited<ReturnType<typeof replayRecord>>): Record<string, string> =>
  Object.fromEntries(r.stages.map((s) => [s.stage, s.status]))

describe('replayRecord: cascade and isolated', () => {
  it('names the diverged stage and marks downstream inherited, with the upstream named', async () => {
    const r = await replayRecord(chains.bug!, options(local))
    expect(statusOf(r)).toEqual({
      parse: 'matched',
      compute: 'diverged',
      store: 'inherited',
      label: 'inherited',
    })
    expect(r.verdict).toBe('diverged')
    expect(r.firstDivergence).toEqual({ stage: 'compute', status: 'diverged' })
    expect(r.stages[2]!.inheritedFrom).toBe('compute')
    expect(r.stages[3]!.changes).toEqual([
      { path: '$.text', kind: 'changed', recorded: '87 left', local: '5 left' },
    ])
    expect(r.stages[1]!.local).toEqual({ sku: 'sku:1', available: 5 })
    expect(r.mode).toBe('cascade')
  })

  it('marks a downstream stage with its own bug diverged, not inherited', async () => {
    const labelBuggy: StageFn = (s) => ({ text: `${(s as Stock).available} in stock` })
    const r = await replayRecord(chains.bug!, options({ ...local, label: labelBuggy }))
    expect(statusOf(r)).toEqual({
      parse: 'matched',
      compute: 'diverged',
      store: 'inherited',
      label: 'diverged',
    })
    expect(r.firstDivergence).toEqual({ stage: 'compute', status: 'diverged' })
  })

  it('isolated: each stage judged on its recorded input', async () => {
    const r = await replayRecord(chains.bug!, options(local, { mode: 'isolated' }))
    expect(statusOf(r)).toEqual({ parse: 'matched', compute: 'diverged', store: 'matched', label: 'matched' })
    expect(r.mode).toBe('isolated')
  })

  it('matches a record the bug does not touch, and the summary counts it', async () => {
    const r = await replayRecord(chains.clean!, options(local))
    expect(r.verdict).toBe('matched')
    expect(r.firstDivergence).toBeNull()
    const s = emptySummary()
    addToSummary(s, r)
    addToSummary(s, await replayRecord(chains.bug!, options(local)))
    expect(s).toEqual({ records: 2, matched: 1, diverged: 1, errors: 0 })
  })

  it('applies diff rules from the options', async () => {
    const rules = compileRules({ tolerance: { '$.available': 100 }, ignore: ['$.text'] })
    const r = await replayRecord(chains.bug!, options(local, { rules }))
    expect(r.verdict).toBe('matched')
    expect(r.stages[1]!.suppressed).toEqual([
      { path: '$.available', reason: 'within-tolerance', recorded: 87, local: 5 },
    ])
  })

  it('uses a pinned expectation instead of the recording as the oracle', async () => {
    const pinned: RecordChain = {
      ...chains.bug!,
      expectations: [
        {
          recordId: chains.bug!.record.id,
          stage: 'compute',
          output: JSON.stringify({ sku: 'sku:1', available: 5 }),
          error: null,
          note: null,
          build: null,
          acceptedAt: 0,
        },
      ],
    }
    const r = await replayRecord(pinned, options(local, { mode: 'isolated' }))
    expect(r.stages[1]).toMatchObject({ stage: 'compute', status: 'matched' })
    expect(r.stages[1]!.attempts[0]!.oracle).toBe('expected')
  })

  it('with the fixed chain pinned and the bug back, downstream stages inherit it', async () => {
    // What `accept` pins: every stage's output from the fixed local build.
    const fixed = await replayRecord(chains.bug!, options(local))
    const pinned: RecordChain = {
      ...chains.bug!,
      expectations: Object.entries(fixed.outputs ?? {}).map(([stage, output]) => ({
        recordId: chains.bug!.record.id,
        stage,
        output,
        error: null,
        note: 'BUG-1',
        build: null,
        acceptedAt: 0,
      })),
    }
    expect(pinned.expectations).toHaveLength(4)
    const clean = await replayRecord(pinned, options(local))
    expect(clean.verdict).toBe('matched')
    const regressed = await replayRecord(pinned, options({ ...local, compute: computeProd }))
    expect(regressed.firstDivergence).toEqual({ stage: 'compute', status: 'diverged' })
    expect(regressed.stages.map((s) => s.status)).toEqual(['matched', 'diverged', 'inherited', 'inherited'])
  })
})

describe('replayRecord: stage failures', () => {
  it('a local throw where production returned is an error with the thrown code', async () => {
    const throwing: StageFn = () => {
      throw Object.assign(new Error('no such column'), { code: 'E_COL' })
    }
    const r = await replayRecord(chains.clean!, options({ ...local, compute: throwing }))
    expect(r.stages[1]).toMatchObject({
      status: 'error',
      error: { message: 'no such column', code: 'E_COL' },
    })
    expect(r.firstDivergence).toEqual({ stage: 'compute', status: 'error' })
    expect(statusOf(r).store).toBe('skipped')
  })

  it('a stage throwing the error production recorded matches', async () => {
    const sameBug: StageFn = () => {
      throw new TypeError('reserved is not a number')
    }
    const r = await replayRecord(chains.threw!, options({ ...local, compute: sameBug }))
    expect(statusOf(r)).toEqual({ parse: 'matched', compute: 'matched' })
  })

  it('a plain object thrown matches a recording that kept only [object Object] of it', async () => {
    // What a recorder that did not read a thrown object's own message wrote for one.
    const older: RecordChain = {
      ...chains.threw!,
      captures: chains.threw!.captures.map((c) =>
        c.stage === 'compute' ? { ...c, error: '{"name":"NonError","message":"[object Object]"}' } : c,
      ),
    }
    const plain: StageFn = () => {
      throw { code: 'E_RESERVED', message: 'reserved is not a number' }
    }
    const anError: StageFn = () => {
      throw new TypeError('reserved is not a number')
    }
    expect(statusOf(await replayRecord(older, options({ ...local, compute: plain })))).toEqual({
      parse: 'matched',
      compute: 'matched',
    })
    expect(statusOf(await replayRecord(older, options({ ...local, compute: anError }))).compute).toBe(
      'diverged',
    )
  })

  it('another error than production threw is a divergence at $error', async () => {
    const other: StageFn = () => {
      throw new RangeError('reserved out of range')
    }
    const r = await replayRecord(chains.threw!, options({ ...local, compute: other }))
    const compute = r.stages[1]!
    expect(compute.status).toBe('diverged')
    expect(compute.changes).toEqual([
      {
        path: '$error',
        kind: 'changed',
        recorded: expect.objectContaining({ name: 'TypeError', message: 'reserved is not a number' }),
        local: expect.objectContaining({ name: 'RangeError', message: 'reserved out of range' }),
      },
    ])
  })

  it('returning where production threw is a divergence', async () => {
    const r = await replayRecord(chains.threw!, options(local))
    expect(r.stages[1]!.status).toBe('diverged')
    expect(r.stages[1]!.changes[0]).toMatchObject({ path: '$', kind: 'changed' })
  })

  it('a stage that never settles is failed by the timeout', async () => {
    const hangs: StageFn = () => new Promise(() => {})
    const r = await replayRecord(chains.clean!, options({ ...local, label: hangs }, { timeoutMs: 20 }))
    expect(r.stages[3]).toMatchObject({ status: 'error', error: { code: 'E_STAGE_TIMEOUT' } })
  })

  it('an output that cannot be recorded (cyclic) is an error, not a crash', async () => {
    const cyclic: StageFn = () => {
      const o: Record<string, unknown> = {}
      o.self = o
      return o
    }
    const r = await replayRecord(chains.clean!, options({ ...local, label: cyclic }))
    expect(r.stages[3]).toMatchObject({ status: 'error', error: { code: 'E_OUTPUT_UNRECORDABLE' } })
  })

  it('skips a stage whose input production could not record, saying why', async () => {
    const r = await replayRecord(chains.big!, options(local))
    expect(r.stages[0]).toMatchObject({ stage: 'compute', status: 'skipped' })
    expect(r.stages[0]!.reason).toMatch(/input was not recorded \(too-large\)/)
  })

  it('does not call a stage diverged when production could not record its output', async () => {
    const r = await replayRecord(chains.bigOutput!, options({ expand, count }))
    expect(statusOf(r)).toEqual({ expand: 'skipped', count: 'skipped' })
    expect(r.stages[0]!.reason).toMatch(/output was not recorded \(too-large\)/)
    expect(r.stages[0]!.changes).toEqual([])
    expect(r.verdict).toBe('matched')
  })

  it('an effect divergence in the local build is an error, even in isolated mode', async () => {
    const otherKey: StageFn = async (s, ctx: StageContext) => {
      const v = await ctx.effect('kv.version', `${(s as Stock).sku}:v2`, async () => 3)
      return { ...(s as Stock), version: v + 1 }
    }
    const r = await replayRecord(chains.clean!, options({ ...local, store: otherKey }, { mode: 'isolated' }))
    expect(r.stages[2]).toMatchObject({ status: 'error', error: { code: 'E_EFFECT_DIVERGED' } })
    expect(r.verdict).toBe('error')
  })
})

describe('replayRecord: the network guard', () => {
  it('covers a stage that returns a lazy thenable doing its I/O in then (a query builder)', async () => {
    let arrived = 0
    const server = createServer((socket) => {
      arrived++
      socket.destroy()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    try {
      const lazy: StageFn = (s) => ({
        // biome-ignore lint/suspicious/noThenProperty: a thenable is what is under test
        then(resolve: (v: unknown) => void) {
          connect(port, '127.0.0.1').on('error', () => undefined)
          resolve({ ...(s as Stock), version: 4 })
        },
      })
      const r = await replayRecord(chains.clean!, options({ ...local, store: lazy }))
      expect(r.stages[2]).toMatchObject({
        stage: 'store',
        status: 'error',
        error: { code: 'E_REPLAY_OFFLINE' },
      })
      await new Promise((resolve) => setTimeout(resolve, 100))
      expect(arrived).toBe(0)
    } finally {
      server.close()
    }
  })
})

describe('replayRecord: a seam that does not line up in production', () => {
  it('does not blame a stage that matched for the difference', async () => {
    const r = await replayRecord(chains.seam!, options(local))
    // compute matched; store saw another value in production than compute produced.
    expect(statusOf(r).compute).toBe('matched')
    const store = r.stages.find((s) => s.stage === 'store')!
    expect(store.status).toBe('inherited')
    expect(store.reason).not.toMatch(/compute diverged/)
    expect(store.reason).toMatch(/seam|recorded input/)
  })
})

describe('BundleSet.loadRecords', () => {
  it('reads the chains loadRecord reads, in the order asked, across chunks', () => {
    const list = Object.values(chains)
      .map((c) => c.record.id)
      .reverse()
    expect([...set.loadRecords(list)]).toEqual(list.map((id) => set.loadRecord(id)))
    expect([...set.readers[0]!.loadRecords(list, 2)]).toEqual(list.map((id) => set.loadRecord(id)))
  })

  it('refuses an id the bundle does not hold', () => {
    expect(() => [...set.loadRecords([chains.bug!.record.id, 'no-such-record'])]).toThrow(
      /no record "no-such-record"/,
    )
  })
})
