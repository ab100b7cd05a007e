/**
 * A bundle that opens but holds damaged values (text that is not typed JSON in one record's
 * input, output or effect, a clock reading that is not a number): the record is an `error`
 * of the stage whose recording is damaged, named with E_BUNDLE_CORRUPT, and every other
 * record still replays, in one process and under `--workers`, in `replay` and `test`.
 */
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  importStage,
  parseReplayJson,
  type ReplayJson,
  record,
  runChain,
  runCli,
  statuses,
  type Workspace,
  workspace,
} from '../replay/fixture.js'

const sources = {
  stamp: `export function stamp(order, ctx) {
  return { ...order, at: ctx.now() }
}
`,
  price: `export function price(order, ctx) {
  const unit = ctx.effect('price.get', { sku: order.sku }, () => 2.5)
  return { ...order, unit, total: unit * order.qty }
}
`,
  format: `export function format(order) {
  return { line: order.sku + ' x' + order.qty + ' = ' + order.total }
}
`,
}

let ws: Workspace
let bundle: string
/** Record ids by key. */
const ids = new Map<string, string>()
const RECORDS = 120

/** Replaces one recorded value of the record with this key. */
function damage(key: string, sql: string): void {
  const db = new Database(bundle)
  try {
    db.prepare(sql).run({ id: ids.get(key)! })
  } finally {
    db.close()
  }
}

beforeAll(async () => {
  ws = workspace('retrace-damaged-')
  for (const [name, src] of Object.entries(sources)) ws.write(`stages/${name}.mjs`, src)
  ws.write(
    'retrace.config.mjs',
    `export default { stages: ${JSON.stringify({
      stamp: './stages/stamp.mjs#stamp',
      price: './stages/price.mjs#price',
      format: './stages/format.mjs#format',
    })} }\n`,
  )
  const chain = await Promise.all(
    Object.keys(sources).map(
      async (name) => [name, await importStage(ws.path(`stages/${name}.mjs`), name)] as const,
    ),
  )
  bundle = ws.path('prod.sqlite')
  await record(bundle, async (recorder) => {
    for (let i = 0; i < RECORDS; i++) {
      const r = await runChain(recorder, `order:${i}`, { sku: `sku:${1000 + i}`, qty: 1 + (i % 5) }, chain)
      ids.set(`order:${i}`, r.recordId)
    }
  })
  const capture = (stage: string) => `(SELECT id FROM captures WHERE record_id = @id AND stage = '${stage}')`
  damage('order:3', `UPDATE captures SET output = '{not json' WHERE id = ${capture('price')}`)
  damage('order:40', `UPDATE effects SET result = '{"unit":' WHERE capture_id = ${capture('price')}`)
  damage('order:77', `UPDATE effects SET result = '"soon"' WHERE capture_id = ${capture('stamp')}`)
  damage('order:90', `UPDATE captures SET input = '[1,' WHERE id = ${capture('stamp')}`)
}, 60_000)

afterAll(() => ws?.remove())

function byKey(doc: ReplayJson, key: string): ReplayJson['records'][number] {
  const rec = doc.records.find((r) => r.key === key)
  if (rec === undefined) throw new Error(`no record ${key} in the report`)
  return rec
}

function expectDamaged(doc: ReplayJson): void {
  expect(doc.records).toHaveLength(RECORDS)
  expect(doc.summary).toEqual({ records: RECORDS, matched: RECORDS - 4, diverged: 0, errors: 4 })

  const output = byKey(doc, 'order:3')
  expect(output.verdict).toBe('error')
  expect(output.firstDivergence).toEqual({ stage: 'price', status: 'error' })
  expect(statuses(output)).toEqual({ stamp: 'matched', price: 'error', format: 'skipped' })
  const priceError = output.stages.find((s) => s.stage === 'price')!.error!
  expect(priceError.code).toBe('E_BUNDLE_CORRUPT')
  expect(priceError.message).toMatch(
    /^the recording of price holds a value that cannot be read \(not valid JSON/,
  )
  expect(output.stages.find((s) => s.stage === 'format')!.reason).toBe(
    'upstream stage price could not be replayed (its recording cannot be read)',
  )

  const effect = byKey(doc, 'order:40')
  expect(effect.firstDivergence).toEqual({ stage: 'price', status: 'error' })
  const effectError = effect.stages.find((s) => s.stage === 'price')!.error!
  expect(effectError.code).toBe('E_BUNDLE_CORRUPT')
  expect(effectError.message).toContain('the result of effect #0: not valid JSON')

  const clock = byKey(doc, 'order:77')
  expect(clock.firstDivergence).toEqual({ stage: 'stamp', status: 'error' })
  expect(statuses(clock)).toEqual({ stamp: 'error', price: 'skipped', format: 'skipped' })
  const clockError = clock.stages.find((s) => s.stage === 'stamp')!.error!
  expect(clockError.message).toContain('ctx.now() was recorded as "\\"soon\\"", not a number')
  expect(clock.stages.find((s) => s.stage === 'format')!.reason).toBe(
    'upstream stage stamp could not be replayed (its recording cannot be read), so price did not run',
  )

  const input = byKey(doc, 'order:90')
  expect(input.firstDivergence).toEqual({ stage: 'stamp', status: 'error' })

  for (const rec of doc.records.filter(
    (r) => !['order:3', 'order:40', 'order:77', 'order:90'].includes(r.key),
  ))
    expect(rec.verdict, rec.key).toBe('matched')
}

describe('retrace replay on a bundle with damaged values', () => {
  it('fails the damaged stage of each damaged record and replays every other record (exit 1)', async () => {
    const r = await runCli(['replay', bundle, '--json'], ws.dir)
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/)
    expect(r.code).toBe(1)
    expectDamaged(parseReplayJson(r))
  })

  it('does the same, with the same document, under --workers 2', async () => {
    const one = await runCli(['replay', bundle, '--json'], ws.dir)
    const two = await runCli(['replay', bundle, '--json', '--workers', '2'], ws.dir)
    expect(two.code).toBe(1)
    expect(two.stdout).toBe(one.stdout)
    expectDamaged(parseReplayJson(two))
  })

  it('says which stage and why in the text report', async () => {
    const r = await runCli(['replay', bundle, ids.get('order:3')!], ws.dir)
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('error at price')
    expect(r.stdout).toContain('the bundle is damaged here [E_BUNDLE_CORRUPT]')
    expect(r.stdout).toContain('1 record replayed, 0 matched, 0 diverged, 1 error')
  })
})

describe('retrace test on a bundle with damaged values', () => {
  it('fails the damaged records, passes the others, and names the stage (exit 1)', async () => {
    const r = await runCli(['test', bundle, '--reporter', 'json'], ws.dir)
    expect(r.code).toBe(1)
    const doc = JSON.parse(r.stdout) as {
      summary: { records: number; matched: number; errors: number }
      bundles: { failures: { key: string; firstDivergence: { stage: string } }[] }[]
    }
    expect(doc.summary).toMatchObject({ records: RECORDS, matched: RECORDS - 4, errors: 4 })
    const failures = doc.bundles.flatMap((b) => b.failures)
    expect(Object.fromEntries(failures.map((f) => [f.key, f.firstDivergence.stage]))).toEqual({
      'order:3': 'price',
      'order:40': 'price',
      'order:77': 'stamp',
      'order:90': 'stamp',
    })
  })
})
