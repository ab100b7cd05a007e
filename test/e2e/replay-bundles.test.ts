/**
 * Several bundles read as one by `replay`, `show`, `why`, `report` and `extract`: one file
 * per process, and a record continued in another process (`record(key, fn, { recordId })`).
 * Service A runs `ingest` and `compute` (with the bug planted in production's compute),
 * service B runs `store` and `query`, each writing its own bundle. Read together, the first
 * divergence in A is named as the cause of what B shows.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expectUsageFailure, parseJsonOut } from '../helpers/cli.js'
import {
  type CliResult,
  importStage,
  parseReplayJson,
  type ReplayJson,
  record,
  runCli,
  statuses,
  type Workspace,
  workspace,
} from '../replay/fixture.js'

const ingestSrc = `export function ingest(event) {
  return { sku: event.sku, onHand: event.onHand, reserved: event.reserved }
}
`
const computeFixed = `export function compute(row) {
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`
const computeBuggy = `export function compute(row) {
  return { sku: row.sku, available: row.onHand + row.reserved }
}
`
const storeSrc = `export async function store(item, ctx) {
  const prev = await ctx.effect('kv.get', { key: item.sku }, async () => ({ version: 7 }))
  return { ...item, version: prev.version + 1 }
}
`
const querySrc = `export function query(item) {
  return { sku: item.sku, display: item.available + ' in stock' }
}
`
const config = `export default { stages: ${JSON.stringify({
  ingest: './stages/ingest.mjs#ingest',
  compute: './stages/compute.mjs#compute',
  store: './stages/store.mjs#store',
  query: './stages/query.mjs#query',
})} }\n`

/** Over the records per process (50) below which `--workers 2` replays in the CLI alone. */
const RECORDS = 120
/** Records that diverge: the planted bug shows only where something is reserved. */
const reservedAt = (i: number): number => (i % 10 === 0 ? 3 : 0)
const DIVERGING = Array.from({ length: RECORDS }, (_, i) => i).filter((i) => reservedAt(i) > 0).length

let ws: Workspace
let a: string
let b: string
let dir: string
/** The record with the bug that shows (sku:1001: 46 on hand, 41 reserved, shown as 87). */
let bad = ''
/** Every record id, in the order recorded. */
const ids: string[] = []

beforeAll(async () => {
  ws = workspace('retrace-bundles-')
  ws.write('stages/ingest.mjs', ingestSrc)
  ws.write('stages/compute.mjs', computeFixed)
  ws.write('stages/store.mjs', storeSrc)
  ws.write('stages/query.mjs', querySrc)
  ws.write('prod/compute.mjs', computeBuggy)
  ws.write('retrace.config.mjs', config)
  const ingest = await importStage(ws.path('stages/ingest.mjs'), 'ingest')
  const compute = await importStage(ws.path('prod/compute.mjs'), 'compute')
  const store = await importStage(ws.path('stages/store.mjs'), 'store')
  const query = await importStage(ws.path('stages/query.mjs'), 'query')
  dir = ws.path('bundles')
  mkdirSync(dir)
  a = join(dir, 'orders-a.sqlite')
  b = join(dir, 'orders-b.sqlite')
  const events = [
    { sku: 'sku:1001', onHand: 46, reserved: 41 },
    ...Array.from({ length: RECORDS - 1 }, (_, i) => ({
      sku: `sku:${2000 + i}`,
      onHand: 10 + i,
      reserved: reservedAt(i + 1),
    })),
  ]
  /** What service A hands service B: the record id and compute's output. */
  const handed: { id: string; key: string; computed: unknown }[] = []
  let now = Date.parse('2026-01-10T12:00:00.000Z')
  const clock = (): number => now
  await record(
    a,
    async (rec) => {
      const i = rec.stage('ingest', ingest)
      const c = rec.stage('compute', compute)
      for (const event of events) {
        now += 1000
        await rec.record(event.sku, async () => {
          const computed = await c(await i(event))
          handed.push({ id: rec.current()!.recordId, key: event.sku, computed })
        })
      }
    },
    { clock, origin: { host: 'service-a', pid: 1 } },
  )
  await record(
    b,
    async (rec) => {
      const s = rec.stage('store', store)
      const q = rec.stage('query', query)
      for (const h of handed) {
        now += 1000
        const shown = await rec.record(h.key, async () => q(await s(h.computed)), { recordId: h.id })
        if (h.key === 'sku:1001') expect(shown).toEqual({ sku: 'sku:1001', display: '87 in stock' })
      }
    },
    { clock, origin: { host: 'service-b', pid: 2 } },
  )
  ids.push(...handed.map((h) => h.id))
  bad = ids[0]!
}, 60_000)

afterAll(() => ws?.remove())

const cli = (...args: string[]): Promise<CliResult> => runCli(args, ws.dir)

function recordOf(doc: ReplayJson, id: string): ReplayJson['records'][number] {
  const r = doc.records.find((x) => x.recordId === id)
  if (r === undefined) throw new Error(`record ${id} not in the replay output`)
  return r
}

describe('replay over several bundles', () => {
  it('replays a record whole across the seam: compute diverges, store and query inherit it', async () => {
    const r = await cli('replay', a, b, bad)
    expect(r.stderr).not.toMatch(/retrace: /)
    expect(r.code).toBe(1)
    const lines = r.stdout.split('\n')
    expect(r.stdout).toContain(`record ${bad}  key sku:1001  diverged at compute`)
    expect(lines.find((l) => /^\s+2 compute\b/.test(l))).toMatch(/✗ diverged/)
    expect(lines.find((l) => /^\s+3 store\b/.test(l))).toMatch(/↳ inherited from compute/)
    expect(lines.find((l) => /^\s+4 query\b/.test(l))).toMatch(/↳ inherited from compute/)
    expect(r.stdout).toContain('1 record replayed, 0 matched, 1 diverged, 0 errors')
  })

  it('--json names the first divergence across the seam, in the contract shape', async () => {
    const r = await cli('replay', a, b, bad, ids[1]!, '--json')
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('')
    const doc = parseReplayJson(r)
    expect(Object.keys(doc)).toEqual(['records', 'summary'])
    expect(doc.summary).toEqual({ records: 2, matched: 1, diverged: 1, errors: 0 })
    const rec = recordOf(doc, bad)
    expect(rec.firstDivergence).toEqual({ stage: 'compute', status: 'diverged' })
    expect(statuses(rec)).toEqual({
      ingest: 'matched',
      compute: 'diverged',
      store: 'inherited',
      query: 'inherited',
    })
    expect(rec.stages.find((s) => s.stage === 'query')?.changes).toEqual([
      { path: '$.display', kind: 'changed', recorded: '87 in stock', local: '5 in stock' },
    ])
    expect(statuses(recordOf(doc, ids[1]!))).toEqual({
      ingest: 'matched',
      compute: 'matched',
      store: 'matched',
      query: 'matched',
    })
  })

  it('one bundle alone still replays only the part it holds', async () => {
    const doc = parseReplayJson(await cli('replay', b, bad, '--json'))
    expect(statuses(recordOf(doc, bad))).toEqual({ store: 'matched', query: 'matched' })
  })

  it('a folder names every bundle under it, and every record is replayed once, whole', async () => {
    const [one, all] = await Promise.all([cli('replay', dir, bad, '--json'), cli('replay', dir, '--json')])
    expect(one.code).toBe(1)
    expect(statuses(recordOf(parseReplayJson(one), bad))).toMatchObject({
      compute: 'diverged',
      store: 'inherited',
      query: 'inherited',
    })
    expect(all.code).toBe(1)
    const doc = parseReplayJson(all)
    expect(doc.records.map((r) => r.recordId)).toEqual(ids)
    expect(doc.summary).toEqual({
      records: RECORDS,
      matched: RECORDS - DIVERGING,
      diverged: DIVERGING,
      errors: 0,
    })
    for (const rec of doc.records)
      expect(rec.stages.map((s) => s.stage)).toEqual(['ingest', 'compute', 'store', 'query'])
  })

  it('--workers 2 replays the stitched records as one process does, byte for byte', async () => {
    const [alone, shared] = await Promise.all([
      cli('replay', a, b, '--json'),
      cli('replay', a, b, '--json', '--workers', '2'),
    ])
    expect(shared.stderr).toBe('')
    expect(shared.code).toBe(1)
    expect(shared.stdout).toBe(alone.stdout)
    const doc = parseReplayJson(shared)
    expect(doc.summary.diverged).toBe(DIVERGING)
    expect(statuses(recordOf(doc, bad))).toMatchObject({ compute: 'diverged', query: 'inherited' })
  })

  it('a path that does not exist is an input error naming it, not a record id', async () => {
    const [late, first, after] = await Promise.all([
      cli('replay', a, 'nowhere/b.sqlite', bad),
      cli('show', 'missing.sqlite', a, bad),
      cli('replay', a, bad, 'gone.sqlite'),
    ])
    expect(expectUsageFailure(late)).toBe('retrace: nowhere/b.sqlite: no such file')
    expect(expectUsageFailure(first)).toBe('retrace: missing.sqlite: no such file')
    expect(expectUsageFailure(after)).toBe('retrace: gone.sqlite: no such file')
  })

  it('a bundle named after a record id is refused in one line', async () => {
    expect(expectUsageFailure(await cli('replay', a, bad, b))).toBe(
      `retrace: ${b}: name every bundle before the first record id`,
    )
  })
})

describe('show, why, report and extract over several bundles', () => {
  it('show gives the stitched record, the seam between the processes included', async () => {
    const r = await cli('show', a, b, bad, '--json')
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const scene = parseJsonOut<{
      captures: { stage: string; host: string | null }[]
      seams: { from: string; to: string; matches: boolean }[]
    }>(r)
    expect(scene.captures.map((c) => [c.stage, c.host])).toEqual([
      ['ingest', 'service-a'],
      ['compute', 'service-a'],
      ['store', 'service-b'],
      ['query', 'service-b'],
    ])
    expect(scene.seams).toContainEqual(
      expect.objectContaining({ from: 'compute', to: 'store', matches: true }),
    )
  })

  it('why walks back from what B shows to the stage in A that made it', async () => {
    const r = await cli('why', dir, bad, 'store.output.available')
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^origin: .*compute/m)
    const json = parseJsonOut<{ origin: { stage: string } | null }>(
      await cli('why', dir, bad, 'store.input.available', '--json'),
    )
    expect(json.origin?.stage).toBe('compute')
  })

  it('report replays the whole record', async () => {
    const out = ws.path('out/report.html')
    const r = await cli('report', a, b, bad, '-o', out)
    expect(r.code).toBe(1)
    const html = readFileSync(out, 'utf8')
    expect(html).toContain('ingest')
    expect(html).toContain('query')
  })

  it('extract writes the whole record, which then replays whole on its own', async () => {
    const out = ws.path('out/whole.sqlite')
    const r = await cli('extract', a, b, bad, '-o', out, '--json')
    expect(r.code).toBe(0)
    expect(parseJsonOut<{ records: number; captures: number }>(r)).toMatchObject({ records: 1, captures: 4 })
    const [replay, inspect] = await Promise.all([
      cli('replay', out, bad, '--json'),
      cli('inspect', out, '--json'),
    ])
    expect(replay.code).toBe(1)
    expect(statuses(recordOf(parseReplayJson(replay), bad))).toEqual({
      ingest: 'matched',
      compute: 'diverged',
      store: 'inherited',
      query: 'inherited',
    })
    const manifest = parseJsonOut<{ manifest: { extractedFrom: unknown; pipeline: unknown } }>(
      inspect,
    ).manifest
    expect(manifest.extractedFrom).toMatchObject({ bundle: 'orders-a.sqlite, orders-b.sqlite', records: 1 })
    // Built fresh: no other record's id is anywhere in the file.
    const bytes = readFileSync(out)
    expect(bytes.includes(Buffer.from(bad))).toBe(true)
    expect(bytes.includes(Buffer.from(ids[1]!))).toBe(false)
  })
})

describe('a record id holding a /', () => {
  it('is taken for a record id after the bundles when it names a record in them, and is still a missing bundle when it names none', async () => {
    // Service A's half and service B's half of one record, its id given to the SDK.
    const first = ws.path('slash/part-a.sqlite')
    const second = ws.path('slash/part-b.sqlite')
    mkdirSync(ws.path('slash'))
    const id = 'orders/7'
    const event = { sku: 'sku:1001', onHand: 46, reserved: 41 }
    let computed: unknown
    await record(first, async (rec) => {
      const i = rec.stage('ingest', await importStage(ws.path('stages/ingest.mjs'), 'ingest'))
      const c = rec.stage('compute', await importStage(ws.path('prod/compute.mjs'), 'compute'))
      await rec.record(
        event.sku,
        async () => {
          computed = await c(await i(event))
        },
        { recordId: id },
      )
    })
    await record(second, async (rec) => {
      const s = rec.stage('store', await importStage(ws.path('stages/store.mjs'), 'store'))
      const q = rec.stage('query', await importStage(ws.path('stages/query.mjs'), 'query'))
      await rec.record(event.sku, async () => q(await s(computed)), { recordId: id })
    })
    const [replay, show, prefix] = await Promise.all([
      cli('replay', first, second, id, '--json'),
      cli('show', first, second, id, '--json'),
      cli('replay', first, second, 'orders/', '--json'),
    ])
    expect(replay.code).toBe(1)
    expect(statuses(recordOf(parseReplayJson(replay), id))).toEqual({
      ingest: 'matched',
      compute: 'diverged',
      store: 'inherited',
      query: 'inherited',
    })
    expect(show.code).toBe(0)
    expect(parseJsonOut<{ recordId: string }>(show).recordId).toBe(id)
    expect(prefix.code).toBe(1)
    expect(parseReplayJson(prefix).records.map((r) => r.recordId)).toEqual([id])
    // A path-like word that names neither a file nor a record is still a missing bundle.
    const [other, after] = await Promise.all([
      cli('replay', first, second, 'orders/8'),
      cli('replay', first, id, 'nowhere/c.sqlite'),
    ])
    expect(expectUsageFailure(other)).toBe('retrace: orders/8: no such file')
    expect(expectUsageFailure(after)).toBe('retrace: nowhere/c.sqlite: no such file')
  })
})
