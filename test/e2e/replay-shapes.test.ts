/**
 * Pipelines that are not a line: stages called inside another, side by side, and once per
 * item, recorded by the SDK with its real clock. Only real hand-offs are seams: `verify`
 * and `show` report none where there was none, and replay's cascade feeds such a stage its
 * recorded input, so a healthy record matches and a local bug is named where it is.
 */
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRecorder, type Recorder } from '../../src/index.js'
import { parseReplayJson, repoRoot, runCli, statuses, type Workspace, workspace } from '../replay/fixture.js'

const sdk = pathToFileURL(join(repoRoot, 'dist/index.js')).href

function stagesSource(enrichCents: string, parsed = 'JSON.parse(req.body)', toParse = 'req'): string {
  return `import { createRecorder } from ${JSON.stringify(sdk)}
export const recorder = createRecorder({ path: process.env.SHAPES_BUNDLE, onError: () => {} })
const tick = () => new Promise((r) => setTimeout(r, 2))
// Once per item, side by side.
export const split = recorder.stage('split', (order) => order.lines.map((l) => ({ sku: l.sku, qty: l.qty })))
export const enrich = recorder.stage('enrich', async (line) => {
  await tick()
  return { ...line, cents: ${enrichCents} }
})
export const total = recorder.stage('total', (lines) => ({ total: lines.reduce((s, l) => s + l.cents, 0) }))
// Inside another.
export const parse = recorder.stage('parse', (req) => ${parsed})
export const store = recorder.stage('store', async (doc) => { await tick(); return { id: doc.id, tenant: doc.tenant } })
export const handle = recorder.stage('handle', async (req) => {
  const doc = await parse(${toParse})
  const saved = await store({ ...doc, tenant: req.tenant })
  return { status: 201, id: saved.id }
})
export const respond = recorder.stage('respond', (res) => ({ line: res.status + ' ' + res.id }))
// A fallback after a stage that failed in production.
export const primary = recorder.stage('primary', async () => { await tick(); throw new Error('primary down') })
export const backup = recorder.stage('backup', (order) => ({ ...order, via: 'backup' }))
export const receipt = recorder.stage('receipt', (paid) => ({ via: paid.via, id: paid.id }))
// Run by another process, on what handle gave.
export const notify = (res) => ({ sent: res.status === 201, id: res.id })
// Side by side, then gathered.
export const price = recorder.stage('price', async (id) => { await tick(); await tick(); return { id, cents: 500 } })
export const stock = recorder.stage('stock', async (id) => { await tick(); return { id, units: 7 } })
export const merge = recorder.stage('merge', (both) => ({ id: both.price.id, value: both.price.cents * both.stock.units }))
// Synchronous stages side by side.
export const sa = recorder.stage('sa', (x) => ({ a: x }))
export const sb = recorder.stage('sb', (x) => ({ b: x }))
// A line whose hand-off loses a field in transit.
export const a = recorder.stage('a', (x) => ({ id: x, note: 'kept' }))
export const b = recorder.stage('b', (x) => ({ ...x, seen: true }))
export const c = recorder.stage('c', (x) => ({ ...x, done: 1 }))
`
}

const names = [
  'split',
  'enrich',
  'total',
  'parse',
  'store',
  'handle',
  'respond',
  'notify',
  'primary',
  'backup',
  'receipt',
  'price',
  'stock',
  'merge',
  'sa',
  'sb',
  'a',
  'b',
  'c',
]

let ws: Workspace
let bundle: string
const ids: Record<string, string> = {}

beforeAll(async () => {
  ws = workspace()
  const file = ws.write('stages.mjs', stagesSource('line.qty * line.sku.length * 100'))
  ws.write('buggy.mjs', stagesSource('line.qty * 100'))
  ws.write(
    'inner-bug.mjs',
    stagesSource('line.qty * line.sku.length * 100', `({ id: 'x' + JSON.parse(req.body).id })`),
  )
  const config = (module: string) =>
    JSON.stringify({ stages: Object.fromEntries(names.map((n) => [n, `./${module}#${n}`])) })
  ws.write('retrace.config.json', config('stages.mjs'))
  ws.write('buggy.config.json', config('buggy.mjs'))
  ws.write('inner-bug.config.json', config('inner-bug.mjs'))
  ws.write(
    'outer-bug.mjs',
    stagesSource(
      'line.qty * line.sku.length * 100',
      undefined,
      `{ ...req, body: req.body.replace('doc', 'DOC') }`,
    ),
  )
  ws.write('outer-bug.config.json', config('outer-bug.mjs'))
  bundle = ws.path('prod.sqlite')
  process.env.SHAPES_BUNDLE = bundle
  try {
    type Stage = (x: unknown) => Promise<unknown>
    const m = (await import(pathToFileURL(file).href)) as Record<string, Stage> & { recorder: Recorder }
    const r = m.recorder
    await r.record('order:1', async () => {
      ids.order = r.current()!.recordId
      const lines = (await m.split!({
        lines: [
          { sku: 'ab', qty: 1 },
          { sku: 'abc', qty: 2 },
        ],
      })) as unknown[]
      return m.total!(await Promise.all(lines.map((l) => m.enrich!(l))))
    })
    // Once per item, one by one, with a single item: the list and its item are no seam.
    await r.record('order:2', async () => {
      ids.single = r.current()!.recordId
      const lines = (await m.split!({ lines: [{ sku: 'abcd', qty: 3 }] })) as unknown[]
      const priced: unknown[] = []
      for (const l of lines) priced.push(await m.enrich!(l))
      return m.total!(priced)
    })
    await r.record('req:1', async () => {
      ids.req = r.current()!.recordId
      return m.respond!(await m.handle!({ tenant: 't1', body: '{"id":"doc1"}' }))
    })
    // Continued in another process (its own bundle), on what handle gave.
    let handled: unknown
    await r.record('req:2', async () => {
      ids.continued = r.current()!.recordId
      handled = await m.handle!({ tenant: 't2', body: '{"id":"doc2"}' })
    })
    const other = createRecorder({
      path: ws.path('notify.sqlite'),
      origin: { pid: 424242 },
      onError: () => {},
    })
    const notify = other.stage('notify', m.notify!)
    await other.record('req:2', () => notify(handled), { recordId: ids.continued! })
    await other.close()
    await r.record('pay:1', async () => {
      ids.pay = r.current()!.recordId
      const order = { id: 'p1' }
      let paid: unknown
      try {
        paid = await m.primary!(order)
      } catch {
        paid = await m.backup!(order)
      }
      return m.receipt!(paid)
    })
    await r.record('item:1', async () => {
      ids.item = r.current()!.recordId
      const [p, s] = await Promise.all([m.price!('i1'), m.stock!('i1')])
      return m.merge!({ price: p, stock: s })
    })
    await r.record('pair:1', async () => {
      ids.pair = r.current()!.recordId
      return Promise.all([m.sa!(1), m.sb!(2)])
    })
    await r.record('line:1', async () => {
      ids.line = r.current()!.recordId
      const { note: _lost, ...rest } = (await m.a!('x1')) as { note: string }
      return m.c!(await m.b!(rest))
    })
    await r.close()
    expect(r.stats()).toMatchObject({ written: 25, dropped: 0 })
  } finally {
    delete process.env.SHAPES_BUNDLE
  }
})

afterAll(() => ws?.remove())

describe('stages inside, beside and per item', () => {
  it('verify reports the one seam that changed in transit, and none where nothing was handed on', async () => {
    const r = await runCli(['verify', bundle, '--json'], ws.dir)
    expect(r.code).toBe(1)
    const json = JSON.parse(r.stdout) as { checks: { check: string; violations: number }[] }
    expect(json.checks.filter((c) => c.violations > 0).map((c) => c.check)).toEqual(['seam a → b'])
  })

  it('replays a healthy record of each shape as matched, with no stage inherited', async () => {
    const r = await runCli(['replay', bundle, '--json'], ws.dir)
    const byKey = new Map(parseReplayJson(r).records.map((x) => [x.key, statuses(x)]))
    expect(byKey.get('order:1')).toEqual({ split: 'matched', enrich: 'matched', total: 'matched' })
    expect(byKey.get('order:2')).toEqual({ split: 'matched', enrich: 'matched', total: 'matched' })
    expect(byKey.get('req:1')).toEqual({
      handle: 'matched',
      parse: 'matched',
      store: 'matched',
      respond: 'matched',
    })
    expect(byKey.get('item:1')).toEqual({ price: 'matched', stock: 'matched', merge: 'matched' })
    expect(byKey.get('pair:1')).toEqual({ sa: 'matched', sb: 'matched' })
    // The fallback after a stage that failed in production runs on its recorded input.
    expect(byKey.get('pay:1')).toEqual({ primary: 'matched', backup: 'matched', receipt: 'matched' })
    // The lossy hand-off still shows: b differs on what a gave, and matches on what it got.
    expect(byKey.get('line:1')).toEqual({ a: 'matched', b: 'inherited', c: 'inherited' })
    expect(r.code).toBe(0)
  })

  it('names the seam that did not line up for every stage downstream of it', async () => {
    const r = await runCli(['replay', bundle, ids.line!, '--json'], ws.dir)
    const [rec] = parseReplayJson(r).records
    const reasons = Object.fromEntries(rec!.stages.map((s) => [s.stage, s.reason]))
    expect(reasons.b).toMatch(/\(the seam from a does not line up in the recording\)/)
    expect(reasons.c).toMatch(
      /\(the seam a → b does not line up in the recording, and b handed on what it made of it\)/,
    )
    expect(reasons.c).not.toContain('seam from b')
    expect(r.code).toBe(0)
  })

  it('names a stage called per item as the first divergence; the stage gathering it keeps its recorded input', async () => {
    const r = await runCli(['replay', bundle, ids.order!, '--json', '--config', 'buggy.config.json'], ws.dir)
    const [rec] = parseReplayJson(r).records
    expect(rec!.firstDivergence).toEqual({ stage: 'enrich', status: 'diverged' })
    expect(statuses(rec!)).toEqual({ split: 'matched', enrich: 'diverged', total: 'matched' })
    expect(r.code).toBe(1)
  })

  it('show checks no seam between a list and the one item a per-item stage was called with', async () => {
    const r = await runCli(['show', bundle, ids.single!], ws.dir)
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('seams: none (no stage handed its output on to the next)')
    expect(r.stdout).toMatch(/not handed on: enrich, total/)
    expect(r.stdout).not.toContain('changed in transit')
  })

  it('a record continued in another process is handed on from the outer stage, not one called inside it', async () => {
    const show = await runCli(['show', bundle, 'notify.sqlite', ids.continued!], ws.dir)
    expect(show.code).toBe(0)
    expect(show.stdout).toContain('seams: the one hand-off matches')
    expect(show.stdout).not.toContain('changed in transit')
    const replay = await runCli(['replay', bundle, 'notify.sqlite', ids.continued!, '--json'], ws.dir)
    expect(statuses(parseReplayJson(replay).records[0]!)).toEqual({
      handle: 'matched',
      parse: 'matched',
      store: 'matched',
      notify: 'matched',
    })
    expect(replay.code).toBe(0)
  })

  it('accept pins no stage called once per item: a pin holds one output per stage', async () => {
    const pins = ws.path('pins.sqlite')
    copyFileSync(bundle, pins)
    const one = await runCli(['accept', pins, ids.order!, '--stage', 'enrich', '--yes'], ws.dir)
    expect(one.code).toBe(2)
    expect(one.stderr.trim()).toBe(
      `retrace: cannot pin enrich: it was called 2 times with different inputs in record ${ids.order} (once per item), and a pin holds one output per stage`,
    )
    const all = await runCli(['accept', pins, ids.order!, '--yes', '--json'], ws.dir)
    expect(all.code).toBe(0)
    const json = JSON.parse(all.stdout) as { pinned: { stage: string }[] }
    expect(json.pinned.map((p) => p.stage)).toEqual(['split', 'total'])
    const told = await runCli(['accept', pins, ids.order!, '--yes'], ws.dir)
    expect(told.code).toBe(0)
    expect(told.stderr).toContain(
      'not pinned: enrich (called once per item: a pin holds one output per stage)',
    )
    expect(told.stderr).toContain('pinned 2 expectations')
  })

  it('names a stage called inside another as the first divergence, the outer stage inheriting it', async () => {
    const r = await runCli(
      ['replay', bundle, ids.req!, '--json', '--config', 'inner-bug.config.json'],
      ws.dir,
    )
    const [rec] = parseReplayJson(r).records
    expect(rec!.firstDivergence).toEqual({ stage: 'parse', status: 'diverged' })
    expect(statuses(rec!)).toEqual({
      handle: 'inherited',
      parse: 'diverged',
      store: 'matched',
      respond: 'inherited',
    })
    const handle = rec!.stages.find((s) => s.stage === 'handle') as {
      inheritedFrom?: string
      reason?: string
    }
    expect(handle.inheritedFrom).toBe('parse')
    expect(handle.reason).toMatch(/^differs only through parse, store, called inside it/)
    expect(r.code).toBe(1)
  })

  it('keeps the outer stage as the divergence when it passes the stage inside it another input', async () => {
    const r = await runCli(
      ['replay', bundle, ids.req!, '--json', '--config', 'outer-bug.config.json'],
      ws.dir,
    )
    const [rec] = parseReplayJson(r).records
    expect(rec!.firstDivergence).toEqual({ stage: 'handle', status: 'diverged' })
    expect(statuses(rec!)).toMatchObject({ handle: 'diverged', parse: 'matched' })
    expect(r.code).toBe(1)
  })

  it('show tells calls once per item from retries', async () => {
    const r = await runCli(['show', bundle, ids.order!], ws.dir)
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('enrich call 1 of 2 (once per item)')
    expect(r.stdout).toContain('enrich call 2 of 2 (once per item)')
    expect(r.stdout).not.toMatch(/retr(y|ies)|superseded/)
  })

  it('show lists the stages nothing handed their input to', async () => {
    const r = await runCli(['show', bundle, ids.req!], ws.dir)
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('seams: the one hand-off matches')
    expect(r.stdout).toMatch(/not handed on: parse, store \(called inside or beside another stage/)
    expect(r.stdout).not.toContain('changed in transit')
  })

  it('why follows the hand-off around the stages called inside another', async () => {
    const r = await runCli(['why', bundle, ids.req!, 'respond.output.line', '--json'], ws.dir)
    expect(r.code).toBe(0)
    const json = JSON.parse(r.stdout) as { origin: { stage: string } | null }
    expect(json.origin?.stage).toBe('respond')
    const id = await runCli(['why', bundle, ids.req!, 'respond.input.id', '--json'], ws.dir)
    expect((JSON.parse(id.stdout) as { origin: { stage: string } }).origin.stage).toBe('handle')
  })
})
