/**
 * The whole story of issue 5, as a user types it: a 3-stage pipeline recorded by the SDK
 * whose production build of the middle stage has a bug for one key; `replay` shows it;
 * the engineer fixes the local stage, `accept`s the fix with a note, `extract`s the one
 * record into recordings/, and `retrace test` keeps it fixed: it passes, and fails naming
 * the stage as soon as the bug comes back.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { readBundle, withDb } from '../helpers/bundle-db.js'
import {
  type CliResult,
  importStage,
  parseReplayJson,
  record,
  runChain,
  runCli,
  statuses,
  type Workspace,
  workspace,
} from '../replay/fixture.js'

const parseSrc = `export function parse(event) {
  return { sku: event.sku, onHand: event.onHand, reserved: event.reserved }
}
`
// Production: bundle SKUs take a special path, and that path adds the reserved count.
const computeProd = `const BUNDLES = new Set(['sku:1001'])
export function compute(row) {
  const available = BUNDLES.has(row.sku) ? row.onHand + row.reserved : row.onHand - row.reserved
  return { sku: row.sku, available }
}
`
// The engineer's first try flips the sign the wrong way round: still not the fix.
const computeFirstTry = `const BUNDLES = new Set(['sku:1001'])
export function compute(row) {
  const available = BUNDLES.has(row.sku) ? row.reserved - row.onHand : row.onHand - row.reserved
  return { sku: row.sku, available }
}
`
const computeFixed = `export function compute(row) {
  return { sku: row.sku, available: row.onHand - row.reserved }
}
`
const formatSrc = `export function format(item) {
  return { sku: item.sku, display: item.available + ' in stock' }
}
`
const config = `export default { stages: {
  parse: './stages/parse.mjs#parse',
  compute: './stages/compute.mjs#compute',
  format: './stages/format.mjs#format',
} }
`

let ws: Workspace
const ids = { bad: '', good: '', other: '' }

beforeAll(async () => {
  ws = workspace('retrace-story-')
  ws.write('stages/parse.mjs', parseSrc)
  ws.write('stages/compute.mjs', computeFirstTry)
  ws.write('stages/format.mjs', formatSrc)
  ws.write('prod/compute.mjs', computeProd)
  ws.write('retrace.config.mjs', config)
  const chain = [
    ['parse', await importStage(ws.path('stages/parse.mjs'), 'parse')],
    ['compute', await importStage(ws.path('prod/compute.mjs'), 'compute')],
    ['format', await importStage(ws.path('stages/format.mjs'), 'format')],
  ] as const
  await record(ws.path('prod.sqlite'), async (recorder) => {
    const bad = await runChain(recorder, 'sku:1001', { sku: 'sku:1001', onHand: 46, reserved: 41 }, chain)
    expect(bad.output).toEqual({ sku: 'sku:1001', display: '87 in stock' })
    ids.bad = bad.recordId
    const good = await runChain(recorder, 'sku:2002', { sku: 'sku:2002', onHand: 5, reserved: 1 }, chain)
    expect(good.output).toEqual({ sku: 'sku:2002', display: '4 in stock' })
    ids.good = good.recordId
    const other = await runChain(recorder, 'sku:3003', { sku: 'sku:3003', onHand: 9, reserved: 0 }, chain)
    ids.other = other.recordId
  })
})

afterAll(() => ws?.remove())

const cli = (...args: string[]): Promise<CliResult> => runCli(args, ws.dir)

function expectCode(r: CliResult, code: number): void {
  if (r.code !== code) {
    throw new Error(`expected exit ${code}, got ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`)
  }
}

it('record -> replay shows the bug -> fix -> accept -> extract -> test passes -> bug back -> test fails', {
  timeout: 120_000,
}, async () => {
  const bundle = ws.path('prod.sqlite')

  // 1. Replay shows the bug: production recorded 87 for sku:1001 at compute.
  const shown = await cli('replay', 'prod.sqlite')
  expectCode(shown, 1)
  expect(shown.stdout).toContain(`record ${ids.bad}  key sku:1001  diverged at compute`)
  expect(shown.stdout).toMatch(
    /first divergence: compute \(diverged\): production recorded 87 at \$\.available/,
  )
  expect(shown.stdout).toContain('3 records replayed, 2 matched, 1 diverged, 0 errors')

  // 2. The fix: the local build now gives 5, production still says 87, so replay still
  //    exits 1 and shows the fixed value as the local one.
  ws.write('stages/compute.mjs', computeFixed)
  const fixed = await cli('replay', 'prod.sqlite', ids.bad, '--json')
  expectCode(fixed, 1)
  const doc = parseReplayJson(fixed)
  expect(doc.records).toHaveLength(1)
  const rec = doc.records[0]!
  expect(rec.firstDivergence).toEqual({ stage: 'compute', status: 'diverged' })
  expect(statuses(rec)).toEqual({ parse: 'matched', compute: 'diverged', format: 'inherited' })
  expect(rec.stages.find((s) => s.stage === 'compute')!.changes).toEqual([
    { path: '$.available', kind: 'changed', recorded: 87, local: 5 },
  ])
  expect(rec.stages.find((s) => s.stage === 'format')!.local).toEqual({
    sku: 'sku:1001',
    display: '5 in stock',
  })

  // 3. Accept the fix with the bug id.
  const accepted = await cli('accept', 'prod.sqlite', ids.bad, '--note', 'BUG-1', '--yes')
  expectCode(accepted, 0)
  expect(accepted.stdout).toContain('~ $.available 87 → 5')
  expect(accepted.stderr).toContain('pinned 3 expectations in prod.sqlite')
  const pinned = withDb(
    bundle,
    (db) =>
      db.prepare('SELECT record_id, stage, output, note FROM expectations ORDER BY stage').all() as {
        record_id: string
        stage: string
        output: string
        note: string
      }[],
  )
  expect(pinned.map((p) => [p.record_id, p.stage, p.note])).toEqual([
    [ids.bad, 'compute', 'BUG-1'],
    [ids.bad, 'format', 'BUG-1'],
    [ids.bad, 'parse', 'BUG-1'],
  ])
  expect(JSON.parse(pinned[0]!.output)).toEqual({ sku: 'sku:1001', available: 5 })
  // The expectation is the oracle now: the record replays cleanly.
  const clean = await cli('replay', 'prod.sqlite', ids.bad)
  expectCode(clean, 0)
  expect(clean.stdout).toContain(`record ${ids.bad}  key sku:1001  matched`)

  // 4. Extract the one record into recordings/ (a folder: the name comes from the key).
  ws.write('recordings/README', 'regression recordings\n')
  const extracted = await cli('extract', 'prod.sqlite', ids.bad, '-o', 'recordings/')
  expectCode(extracted, 0)
  const out = extracted.stdout.trim()
  expect(out.startsWith(join(ws.dir, 'recordings', 'sku_1001-'))).toBe(true)
  expect(readdirSync(ws.path('recordings')).sort()).toEqual(['README', out.split('/').at(-1)!].sort())
  const small = readBundle(out)
  expect(small.records.map((r) => r.id)).toEqual([ids.bad])
  expect(small.captures.map((c) => c.stage)).toEqual(['parse', 'compute', 'format'])

  // 5. The regression test passes with the fix in place.
  const passing = await cli('test', 'recordings')
  expectCode(passing, 0)
  expect(passing.stdout).toContain('1 record tested, 1 matched, 0 diverged, 0 errors')
  expect(passing.stderr).toBe('')

  // 6. The bug comes back: the test fails, naming the stage, exit 1.
  ws.write('stages/compute.mjs', computeProd)
  const failing = await cli('test', 'recordings')
  expectCode(failing, 1)
  expect(failing.stdout).toContain(`record ${ids.bad}  key sku:1001  diverged at compute`)
  expect(failing.stdout).toMatch(/first divergence: compute \(diverged\)/)
  expect(failing.stdout).toContain('~ $.available 5 → 87')
  expect(failing.stdout).toContain('1 record tested, 0 matched, 1 diverged, 0 errors')
  const json = await cli('test', 'recordings', '--reporter', 'json')
  expectCode(json, 1)
  const report = JSON.parse(json.stdout) as {
    summary: { records: number; diverged: number }
    bundles: { failures: { recordId: string; firstDivergence: { stage: string } | null }[] }[]
  }
  expect(report.summary).toMatchObject({ records: 1, diverged: 1 })
  expect(report.bundles[0]!.failures.map((f) => [f.recordId, f.firstDivergence?.stage])).toEqual([
    [ids.bad, 'compute'],
  ])
  // The production bundle still holds all three records; only the bad one has expectations.
  expect(
    readBundle(bundle)
      .records.map((r) => r.id)
      .sort(),
  ).toEqual([ids.bad, ids.good, ids.other].sort())
})
