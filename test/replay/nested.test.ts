/**
 * Wrapped stages called inside a replayed stage: the engine plays back their recorded
 * calls in the same record, and never runs their clock, random or effects for real.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { BundleSet, type RecordChain } from '../../src/bundle/index.js'
import { noRules } from '../../src/compare/diff.js'
import { createRecorder, type Recorder, type StageContext, type StageFn } from '../../src/index.js'
import { type ReplayOptions, replayRecord } from '../../src/replay/engine.js'
import { unwrapStage } from '../../src/stage-mark.js'
import { record, type Workspace, workspace } from './fixture.js'

type Doc = { id: number; tenant?: string }

/** Calls of the real world made by any build of the stages below. */
const world = { inserts: 0, clock: 0 }

/**
 * The service's stages wrapped by `recorder`: `handle` calls `parse` and `store`, and
 * `store` calls `audit`; `variant` changes what the local build does.
 */
function service(
  recorder: Recorder,
  variant: 'prod' | 'extraEffect' | 'twice' | 'catches' | 'net' | 'otherId' = 'prod',
) {
  const parse = recorder.stage('parse', (raw: { body: string }) => JSON.parse(raw.body) as Doc)
  const audit = recorder.stage('audit', (doc: Doc, ctx: StageContext) => ({ id: doc.id, r: ctx.random() }))
  const store = recorder.stage('store', async (doc: Doc, ctx: StageContext) => {
    const row = await ctx.effect('db.insert', { id: doc.id }, async () => {
      world.inserts++
      return { rowid: 7 + doc.id }
    })
    if (variant === 'extraEffect') await ctx.effect('db.audit', { id: doc.id }, async () => world.inserts++)
    if (variant === 'net') await fetch('http://127.0.0.1:9/')
    const trail = await audit(doc)
    return {
      id: doc.id,
      rowid: row.rowid,
      at: ctx.now(),
      trail,
    }
  })
  const handle = recorder.stage('handle', async (req: { body: string; tenant: string }) => {
    const doc = await parse(req)
    const saved = await store({
      ...doc,
      id: variant === 'otherId' ? doc.id + 10 : doc.id,
      tenant: req.tenant,
    })
    if (variant === 'twice') await store({ ...doc, tenant: 'again' })
    if (variant === 'catches') {
      try {
        await store({ ...doc, tenant: 'again' })
      } catch {}
    }
    return { status: 201, saved }
  })
  return { parse, audit, store, handle }
}

let ws: Workspace
let set: BundleSet
const chains: RecordChain[] = []

const clock = (): number => {
  world.clock++
  return Date.now()
}

/** The local build: the same module loaded again, its recorder writing nowhere. */
function localBuild(variant?: Parameters<typeof service>[1]): ReplayOptions {
  const s = service(
    createRecorder({ path: undefined as unknown as string, onError: () => {}, clock }),
    variant,
  )
  const stages = new Map<string, StageFn>(
    Object.entries(s).map(([name, fn]) => [name, unwrapStage(fn) as StageFn]),
  )
  return { mode: 'isolated', stages, rules: noRules, now: () => 0 }
}

beforeAll(async () => {
  ws = workspace()
  const path = ws.path('nested.sqlite')
  const ids: string[] = []
  await record(path, async (recorder) => {
    const { handle } = service(recorder)
    for (const id of [1, 2]) {
      await recorder.record(`req:${id}`, async () => {
        ids.push(recorder.current()!.recordId)
        return handle({ body: JSON.stringify({ id }), tenant: 't' })
      })
    }
  })
  set = BundleSet.open([path])
  for (const id of ids) chains.push(set.loadRecord(id))
})

beforeEach(() => {
  world.inserts = 0
  world.clock = 0
})

afterAll(() => {
  set?.close()
  ws?.remove()
})

const statusOf = (r: Awaited<ReturnType<typeof replayRecord>>): Record<string, string> =>
  Object.fromEntries(r.stages.map((s) => [s.stage, s.status]))

describe('wrapped stages called inside a replayed stage', () => {
  it('play back their recorded calls in the record: nothing runs for real, the outer stage matches', async () => {
    for (const chain of chains) {
      const r = await replayRecord(chain, localBuild())
      expect(statusOf(r)).toEqual({ handle: 'matched', parse: 'matched', store: 'matched', audit: 'matched' })
    }
    expect(world).toEqual({ inserts: 0, clock: 0 })
  })

  it('fail the outer stage when a nested call diverges, naming the nested stage', async () => {
    const r = await replayRecord(chains[0]!, localBuild('extraEffect'))
    const handle = r.stages.find((s) => s.stage === 'handle')!
    expect(handle.status).toBe('error')
    expect(handle.error?.code).toBe('E_EFFECT_DIVERGED')
    expect(handle.error?.message).toContain('store: effect #1 was ctx.now() in production')
    expect(handle.error?.message).toContain('(stage store called inside handle)')
    expect(world.inserts).toBe(0)
  })

  it('are played back leniently when their input differs from the recorded one', async () => {
    const r = await replayRecord(chains[0]!, localBuild('otherId'))
    const handle = r.stages.find((s) => s.stage === 'handle')!
    // Its effect's args differ with the input; the recorded result still stands in for it.
    expect(handle.status).toBe('diverged')
    expect(handle.error).toBeNull()
    expect(handle.changes.map((c) => c.path)).toEqual(['$.saved.id', '$.saved.trail.id'])
    expect(world.inserts).toBe(0)
  })

  it('fail the outer stage when a nested call was not recorded, without running its effect', async () => {
    const r = await replayRecord(chains[0]!, localBuild('twice'))
    const handle = r.stages.find((s) => s.stage === 'handle')!
    expect(handle.status).toBe('error')
    expect(handle.error).toMatchObject({
      code: 'E_EFFECT_DIVERGED',
      message:
        'stage store called inside handle was not recorded in this record: its ctx.effect("db.insert") has nothing to play back',
    })
    expect(world).toEqual({ inserts: 0, clock: 0 })
  })

  it('fail the outer stage even when it catches what the nested call threw', async () => {
    const r = await replayRecord(chains[0]!, localBuild('catches'))
    const handle = r.stages.find((s) => s.stage === 'handle')!
    expect(handle.status).toBe('error')
    expect(handle.error?.message).toContain('stage store called inside handle was not recorded')
  })

  it('keep the network closed', async () => {
    const r = await replayRecord(chains[0]!, localBuild('net'))
    const handle = r.stages.find((s) => s.stage === 'handle')!
    expect(handle.status).toBe('error')
    expect(handle.error?.code).toBe('E_REPLAY_OFFLINE')
  })

  it('leave a call made outside any replayed stage alone', async () => {
    // Once a replay has published the hook, a call outside a stage run is handed back.
    await replayRecord(chains[0]!, localBuild())
    const s = service(createRecorder({ path: undefined as unknown as string, onError: () => {}, clock }))
    const out = (await s.store({ id: 5 })) as { rowid: number }
    expect(out.rowid).toBe(12)
    expect(world.inserts).toBe(1)
    expect(world.clock).toBeGreaterThan(0)
  })

  it('keep the this a method wrapped in place is called on', async () => {
    const path = ws.path('method.sqlite')
    const make = (recorder: Recorder) => {
      const svc = {
        rate: 3,
        price: recorder.stage('price', function (this: { rate: number }, n: number, ctx: StageContext) {
          return n * this.rate + ctx.random()
        }),
      }
      const quote = recorder.stage('quote', async (n: number) => ({ total: await svc.price(n) }))
      return { svc, quote }
    }
    let id = ''
    await record(path, async (recorder) => {
      const { quote } = make(recorder)
      await recorder.record('q:1', async () => {
        id = recorder.current()!.recordId
        return quote(2)
      })
    })
    const own = BundleSet.open([path])
    try {
      const { quote } = make(createRecorder({ path: undefined as unknown as string, onError: () => {} }))
      const stages = new Map<string, StageFn>([['quote', unwrapStage(quote) as StageFn]])
      const r = await replayRecord(own.loadRecord(id), {
        mode: 'isolated',
        stages,
        rules: noRules,
        now: () => 0,
      })
      expect(statusOf(r)).toEqual({ quote: 'matched', price: 'skipped' })
    } finally {
      own.close()
    }
  })

  it('take the capture of the same item when per-item calls start in another order than in production', async () => {
    const path = ws.path('per-item.sqlite')
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
    type Item = { sku: string; qty: number }
    const make = (recorder: Recorder) => {
      const price = recorder.stage('price', async (item: Item, ctx: StageContext) => {
        const rate = await ctx.effect('rate.get', { sku: item.sku }, async () => (item.sku === 'A' ? 2 : 3))
        return { sku: item.sku, total: item.qty * rate }
      })
      // In production A's stock read is slow, so price(B) starts first; played back, both
      // reads settle at once and price(A) starts first.
      const handle = recorder.stage('handle', async (items: Item[], ctx: StageContext) => ({
        priced: await Promise.all(
          items.map(async (it) => {
            await ctx.effect('stock.get', { sku: it.sku }, async () => sleep(it.sku === 'A' ? 40 : 1))
            return price(it)
          }),
        ),
      }))
      return { handle }
    }
    let id = ''
    await record(path, async (recorder) => {
      const { handle } = make(recorder)
      await recorder.record('o:1', async () => {
        id = recorder.current()!.recordId
        return handle([
          { sku: 'A', qty: 1 },
          { sku: 'B', qty: 10 },
        ])
      })
    })
    const own = BundleSet.open([path])
    try {
      const chain = own.loadRecord(id)
      expect(chain.captures.filter((c) => c.stage === 'price').map((c) => JSON.parse(c.input).sku)).toEqual([
        'B',
        'A',
      ])
      const { handle } = make(createRecorder({ path: undefined as unknown as string, onError: () => {} }))
      const stages = new Map<string, StageFn>([['handle', unwrapStage(handle) as StageFn]])
      const r = await replayRecord(chain, { mode: 'isolated', stages, rules: noRules, now: () => 0 })
      expect(statusOf(r)).toEqual({ handle: 'matched', price: 'skipped' })
    } finally {
      own.close()
    }
  })
})
