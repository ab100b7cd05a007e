/**
 * Shapes combined as services write them: a stage called once per item inside another (two
 * items, two identical items, one item), two stages side by side on one input and gathered,
 * stages nested three deep with an effect at the bottom and the clock at the top, a retry
 * by `ctx.attempt`, a fallback after a stage that failed, real awaits beside synchronous
 * stages, and one stage name used at both ends of a record. A healthy record replays as
 * matched with no false seam; one bug planted in one stage is named there, and the stages
 * that depend on it through a hand-off or a call are `inherited`.
 */
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Recorder } from '../../src/index.js'
import { parseReplayJson, repoRoot, runCli, statuses, type Workspace, workspace } from '../replay/fixture.js'

const sdk = pathToFileURL(join(repoRoot, 'dist/index.js')).href

/** Where a local build may carry its one bug. */
type Bug = 'line' | 'left' | 'bb' | 'cc' | 'flaky' | 'prep' | 'fall' | 'a1' | 'enrich'

/** The service's stages; `bug` names the one stage a later local build got wrong. */
function stagesSource(bug?: Bug): string {
  const b = (stage: Bug, healthy: string, buggy: string): string => (bug === stage ? buggy : healthy)
  return `import { createRecorder } from ${JSON.stringify(sdk)}
export const recorder = createRecorder({ path: process.env.COMBINED_BUNDLE, onError: () => {} })
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
// Once per item, inside another stage.
export const line = recorder.stage('line', async (l, ctx) => {
  const unit = await ctx.effect('price.get', { sku: l.sku }, async () => { await sleep(1); return l.sku === 'a' ? 100 : 7 })
  return { sku: l.sku, cents: l.qty * unit${b('line', '', ' + 1')} }
})
export const batch = recorder.stage('batch', async (order) => {
  const lines = await Promise.all(order.lines.map((l) => line(l)))
  return { id: order.id, total: lines.reduce((s, l) => s + l.cents, 0) }
})
export const ship = recorder.stage('ship', (o) => ({ id: o.id, label: 'T' + o.total }))
// Side by side on one input, then gathered.
export const prep = recorder.stage('prep', (x) => (${b('prep', '{ v: x.v + 1, id: x.id }', "{ v: x.v + 2, id: x.id + '!' }")}))
export const left = recorder.stage('left', (x) => ({ l: x.v * 2${b('left', '', ' + 1')} }))
export const right = recorder.stage('right', async (x) => { await sleep(1); return { r: x.v + 3 } })
export const gather = recorder.stage('gather', (both) => ({ sum: both[0].l + both[1].r }))
// Nested three deep: the clock at the top, an effect at the bottom.
export const cc = recorder.stage('cc', async (x, ctx) => {
  const row = await ctx.effect('db.get', { k: x.k }, async () => { await sleep(1); return { val: 40 } })
  return { k: x.k, val: row.val${b('cc', '', ' + 1')} }
})
export const bb = recorder.stage('bb', async (x) => ({ ...(await cc({ k: x.k${b('bb', '', " + '?'")} })), b: true }))
export const aa = recorder.stage('aa', async (x, ctx) => { const at = ctx.now(); return { ...(await bb(x)), at } })
export const after = recorder.stage('after', (x) => ({ k: x.k, double: x.val * 2 }))
// A retry by attempt.
export const flaky = recorder.stage('flaky', async (x, ctx) => {
  await sleep(1)
  if (ctx.attempt === 1) throw Object.assign(new Error('transient'), { code: 'ETIMEDOUT' })
  return { v: x.v * 10${b('flaky', '', ' + 1')} }
})
export const post = recorder.stage('post', (x) => ({ posted: x.v }))
// A fallback after a stage that failed.
export const prim = recorder.stage('prim', async () => { await sleep(1); throw new Error('primary down') })
export const fall = recorder.stage('fall', (x) => ({ id: x.id, via: 'fall'${b('fall', '', " + '!'")} }))
export const rcpt = recorder.stage('rcpt', (x) => ({ r: x.id + '/' + x.via }))
// Real awaits beside synchronous stages.
export const s1 = recorder.stage('s1', (x) => ({ n: x.n + 1 }))
export const a1 = recorder.stage('a1', async (x, ctx) => {
  const t = await ctx.effect('tick', {}, () => sleep(1).then(() => 5))
  return { n: x.n * t${b('a1', '', ' + 1')} }
})
export const s2 = recorder.stage('s2', (x) => ({ n: x.n - 2 }))
export const a2 = recorder.stage('a2', async (x) => { await Promise.resolve(); await sleep(1); return { n: x.n, done: true } })
// One stage name at both ends of a record.
export const normalize = recorder.stage('normalize', (x) => ({ ...x, name: String(x.name).trim().toLowerCase() }))
export const enrich = recorder.stage('enrich', (x) => ({ ...x, name: x.name + ' EXTRA ', score: 3${b('enrich', '', ' + 1')} }))
`
}

const names = [
  'line',
  'batch',
  'ship',
  'prep',
  'left',
  'right',
  'gather',
  'cc',
  'bb',
  'aa',
  'after',
  'flaky',
  'post',
  'prim',
  'fall',
  'rcpt',
  's1',
  'a1',
  's2',
  'a2',
  'normalize',
  'enrich',
]
const bugs: readonly Bug[] = ['line', 'left', 'bb', 'cc', 'flaky', 'prep', 'fall', 'a1', 'enrich']

let ws: Workspace
let bundle: string
const ids: Record<string, string> = {}

type Stage = (x: unknown) => Promise<unknown>

beforeAll(async () => {
  ws = workspace()
  const config = (module: string): string =>
    JSON.stringify({ stages: Object.fromEntries(names.map((n) => [n, `./${module}#${n}`])) })
  const file = ws.write('stages.mjs', stagesSource())
  ws.write('retrace.config.json', config('stages.mjs'))
  for (const bug of bugs) {
    ws.write(`bug-${bug}.mjs`, stagesSource(bug))
    ws.write(`bug-${bug}.config.json`, config(`bug-${bug}.mjs`))
  }
  bundle = ws.path('prod.sqlite')
  process.env.COMBINED_BUNDLE = bundle
  try {
    const m = (await import(pathToFileURL(file).href)) as Record<string, Stage> & { recorder: Recorder }
    const r = m.recorder
    const record = (key: string, fn: () => Promise<unknown>): Promise<unknown> =>
      r.record(key, () => {
        ids[key] = r.current()!.recordId
        return fn()
      })
    const order = (id: string, lines: { sku: string; qty: number }[]) => async () =>
      m.ship!(await m.batch!({ id, lines }))
    await record(
      'items',
      order('o1', [
        { sku: 'a', qty: 2 },
        { sku: 'b', qty: 3 },
      ]),
    )
    await record(
      'twins',
      order('o2', [
        { sku: 'a', qty: 2 },
        { sku: 'a', qty: 2 },
      ]),
    )
    await record('one', order('o3', [{ sku: 'b', qty: 1 }]))
    await record('fan', async () => {
      const x = await m.prep!({ v: 1 })
      return m.gather!(await Promise.all([m.left!(x), m.right!(x)]))
    })
    await record('deep', async () => m.after!(await m.aa!({ k: 'k1' })))
    await record('retry', async () => {
      const x = await m.prep!({ v: 1 })
      let y: unknown
      try {
        y = await m.flaky!(x)
      } catch {
        y = await m.flaky!(x)
      }
      return m.post!(y)
    })
    await record('fallback', async () => {
      const x = await m.prep!({ v: 0, id: 'f1' })
      let y: unknown
      try {
        y = await m.prim!(x)
      } catch {
        y = await m.fall!(x)
      }
      return m.rcpt!(y)
    })
    await record('mixed', async () => m.a2!(await m.s2!(await m.a1!(await m.s1!({ n: 1 })))))
    await record('renormalize', async () =>
      m.normalize!(await m.enrich!(await m.normalize!({ name: '  Bob ' }))),
    )
    await r.close()
    expect(r.stats()).toMatchObject({ written: 34, dropped: 0 })
  } finally {
    delete process.env.COMBINED_BUNDLE
  }
})

afterAll(() => ws?.remove())

async function replay(config?: string, mode?: 'isolated') {
  const args = ['replay', bundle, '--json']
  if (config !== undefined) args.push('--config', config)
  if (mode !== undefined) args.push('--mode', mode)
  const r = await runCli(args, ws.dir)
  const json = parseReplayJson(r)
  return { code: r.code, byKey: new Map(json.records.map((x) => [x.key, x])) }
}

describe('shapes combined', () => {
  it('replays every healthy record as matched, in cascade and isolated', async () => {
    const healthy = {
      items: { batch: 'matched', line: 'matched', ship: 'matched' },
      twins: { batch: 'matched', line: 'matched', ship: 'matched' },
      one: { batch: 'matched', line: 'matched', ship: 'matched' },
      fan: { prep: 'matched', left: 'matched', right: 'matched', gather: 'matched' },
      deep: { aa: 'matched', bb: 'matched', cc: 'matched', after: 'matched' },
      retry: { prep: 'matched', flaky: 'matched', post: 'matched' },
      fallback: { prep: 'matched', prim: 'matched', fall: 'matched', rcpt: 'matched' },
      mixed: { s1: 'matched', a1: 'matched', s2: 'matched', a2: 'matched' },
      renormalize: { normalize: 'matched', enrich: 'matched' },
    }
    for (const mode of [undefined, 'isolated'] as const) {
      const r = await replay(undefined, mode)
      expect(Object.fromEntries([...r.byKey].map(([k, rec]) => [k, statuses(rec)]))).toEqual(healthy)
      expect(r.code).toBe(0)
    }
  })

  it('verify finds no seam where nothing was handed on', async () => {
    const r = await runCli(['verify', bundle, '--json'], ws.dir)
    const json = JSON.parse(r.stdout) as { checks: { check: string; violations: number }[] }
    expect(json.checks.filter((c) => c.violations > 0)).toEqual([])
    expect(r.code).toBe(0)
  })

  it('show renders each shape, naming the stages nothing handed their input to', async () => {
    const notHanded: Record<string, RegExp> = {
      items: /not handed on: line \(/,
      one: /not handed on: line \(/,
      fan: /not handed on: right, gather \(/,
      deep: /not handed on: bb, cc \(/,
    }
    const keys = Object.keys(ids)
    const shown = await Promise.all(keys.map((key) => runCli(['show', bundle, ids[key]!], ws.dir)))
    const out: Record<string, string> = {}
    for (const [i, r] of shown.entries()) {
      const key = keys[i]!
      expect(r.code, key).toBe(0)
      expect(r.stderr, key).toBe('')
      expect(r.stdout, key).not.toContain('changed in transit')
      if (notHanded[key] !== undefined) expect(r.stdout, key).toMatch(notHanded[key]!)
      out[key] = r.stdout
    }
    expect(out.mixed).toContain('seams: all 3 hand-offs match')
    expect(out.retry).toContain('flaky attempt 2 (retry) ok')
    expect(out.retry).toContain('seams: all 2 hand-offs match')
    // prep → prim, prep → fall (the fallback got what prim was handed), fall → rcpt.
    expect(out.fallback).toContain('seams: all 3 hand-offs match')
  })

  it.each([
    ['line', 'items', { batch: 'inherited', line: 'diverged', ship: 'inherited' }],
    ['line', 'twins', { batch: 'inherited', line: 'diverged', ship: 'inherited' }],
    ['line', 'one', { batch: 'inherited', line: 'diverged', ship: 'inherited' }],
    ['left', 'fan', { prep: 'matched', left: 'diverged', right: 'matched', gather: 'matched' }],
    ['cc', 'deep', { aa: 'inherited', bb: 'inherited', cc: 'diverged', after: 'inherited' }],
    // The middle stage passes the bottom one another input: the bug is its own.
    ['bb', 'deep', { aa: 'inherited', bb: 'diverged', cc: 'matched', after: 'inherited' }],
    ['flaky', 'retry', { prep: 'matched', flaky: 'diverged', post: 'inherited' }],
    ['prep', 'retry', { prep: 'diverged', flaky: 'inherited', post: 'inherited' }],
    ['fall', 'fallback', { prep: 'matched', prim: 'matched', fall: 'diverged', rcpt: 'inherited' }],
    // The fallback got what the failed stage was handed: it depends on the stage before.
    ['prep', 'fallback', { prep: 'diverged', prim: 'matched', fall: 'inherited', rcpt: 'inherited' }],
    ['a1', 'mixed', { s1: 'matched', a1: 'diverged', s2: 'inherited', a2: 'inherited' }],
    ['enrich', 'renormalize', { normalize: 'matched', enrich: 'diverged' }],
  ] as const)('a bug in %s is named first in record %s', async (bug, key, expected) => {
    const r = await replay(`bug-${bug}.config.json`)
    const rec = r.byKey.get(key)!
    expect(rec.firstDivergence).toEqual({ stage: bug, status: 'diverged' })
    expect(statuses(rec)).toEqual(expected)
    for (const s of rec.stages)
      if (s.status === 'inherited') expect(s.inheritedFrom, `${key} ${s.stage}`).toBe(bug)
    expect(r.code).toBe(1)
  })
})
