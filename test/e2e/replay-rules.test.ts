/**
 * The config's diff rules end to end: `diff.ignore`, `diff.tolerance` and `diff.arrayKeys`
 * hide differences that are not bugs, and every hidden difference is labelled in --json
 * (never silently dropped). Fields the recorder redacted are labelled `redacted`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type CliResult,
  importStage,
  parseReplayJson,
  type ReplayJson,
  record,
  runChain,
  runCli,
  type Workspace,
  workspace,
} from '../replay/fixture.js'

const prodSrc = `export function price(order) {
  const items = order.lines.map((l) => ({ sku: l.sku, qty: l.qty, price: l.unit * l.qty }))
  const total = Math.round(items.reduce((s, i) => s + i.price, 0) * 100) / 100
  return { id: order.id, items, total, updatedAt: order.ts, contact: order.customer.phone }
}
`
// The local refactor: items sorted by SKU, the surcharge added (unrounded), updatedAt in
// seconds instead of milliseconds. Only the surcharge of order 2 is a real difference.
const localSrc = `export function price(order) {
  const items = order.lines
    .map((l) => ({ sku: l.sku, qty: l.qty, price: l.unit * l.qty }))
    .sort((a, b) => (a.sku < b.sku ? -1 : 1))
  const total = items.reduce((s, i) => s + i.price, 0) + order.surcharge
  return { id: order.id, items, total, updatedAt: Math.floor(order.ts / 1000), contact: order.customer.phone }
}
`
const packSrc = `export function pack(priced) {
  return { id: priced.id, count: priced.items.length }
}
`
const rules = {
  ignore: ['$..updatedAt'],
  tolerance: { '$.total': 0.005 },
  arrayKeys: { '$.items': 'sku' },
}
const stages = { price: './stages/price.mjs#price', pack: './stages/pack.mjs#pack' }

const order = (id: number, surcharge: number) => ({
  id,
  ts: 1_767_225_600_123,
  surcharge,
  customer: { phone: '+1 555 0100' },
  lines: [
    { sku: 'B-2', qty: 1, unit: 2 },
    { sku: 'A-1', qty: 2, unit: 1.5 },
  ],
})

let ws: Workspace
let bundle: string
const ids = { within: '', outside: '' }

beforeAll(async () => {
  ws = workspace()
  ws.write('stages/price.mjs', localSrc)
  ws.write('stages/pack.mjs', packSrc)
  ws.write('prod/price.mjs', prodSrc)
  // The rules in a JSON config; the same stages without rules beside it.
  ws.write('retrace.config.json', JSON.stringify({ stages, diff: rules }, null, 2))
  ws.write('norules.config.mjs', `export default { stages: ${JSON.stringify(stages)} }\n`)
  ws.write(
    'badpath.config.mjs',
    `export default { stages: ${JSON.stringify(stages)}, diff: { ignore: ['$.items[oops'] } }\n`,
  )
  const chain = [
    ['price', await importStage(ws.path('prod/price.mjs'), 'price')],
    ['pack', await importStage(ws.path('stages/pack.mjs'), 'pack')],
  ] as const
  bundle = ws.path('prod.sqlite')
  await record(
    bundle,
    async (recorder) => {
      ids.within = (await runChain(recorder, 'order:1', order(1, 0.004), chain)).recordId
      ids.outside = (await runChain(recorder, 'order:2', order(2, 0.5), chain)).recordId
    },
    // Only the output field is redacted; the phone reaches the stage in its input.
    { redact: ['$.contact'], redactDefaults: false },
  )
})

afterAll(() => ws?.remove())

const replay = (...args: string[]): Promise<CliResult> => runCli(['replay', bundle, ...args], ws.dir)

function price(doc: ReplayJson, id: string): ReplayJson['records'][number]['stages'][number] {
  const rec = doc.records.find((r) => r.recordId === id)
  const s = rec?.stages.find((x) => x.stage === 'price')
  if (s === undefined) throw new Error(`no price stage for ${id}`)
  return s
}

describe('with ignore, tolerance and arrayKeys from the config', () => {
  it('matches a record whose only differences the rules explain, each labelled (exit 0)', async () => {
    const r = await replay(ids.within, '--json')
    expect(r.code).toBe(0)
    const doc = parseReplayJson(r)
    expect(doc.summary).toEqual({ records: 1, matched: 1, diverged: 0, errors: 0 })
    const s = price(doc, ids.within)
    expect(s.status).toBe('matched')
    expect(s.changes).toEqual([])
    // Reordered items are matched by SKU: not a change and not even a suppression.
    expect(s.suppressed.map(({ path, reason }) => ({ path, reason }))).toEqual([
      { path: '$.total', reason: 'within-tolerance' },
      { path: '$.updatedAt', reason: 'ignored' },
      { path: '$.contact', reason: 'redacted' },
    ])
    expect(s.suppressed[0]).toMatchObject({ recorded: 5, local: 5.004 })
  })

  it('still reports a number outside tolerance, with the suppressed ones beside it', async () => {
    const r = await replay(ids.outside, '--json')
    expect(r.code).toBe(1)
    const s = price(parseReplayJson(r), ids.outside)
    expect(s.status).toBe('diverged')
    expect(s.changes).toEqual([{ path: '$.total', kind: 'changed', recorded: 5, local: 5.5 }])
    expect(s.suppressed.map((x) => [x.path, x.reason])).toEqual([
      ['$.updatedAt', 'ignored'],
      ['$.contact', 'redacted'],
    ])
  })

  it('counts the suppressed differences by reason in human output', async () => {
    const r = await replay(ids.outside)
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('~ $.total 5 → 5.5')
    expect(r.stdout).toContain('suppressed: 1 ignored, 1 redacted')
    const verbose = await replay(ids.within, '--verbose')
    expect(verbose.code).toBe(0)
    expect(verbose.stdout).toContain('suppressed: 1 within-tolerance, 1 ignored, 1 redacted')
    expect(verbose.stdout).toMatch(/\$\.updatedAt \(ignored\)/)
    expect(verbose.stdout).toMatch(/\$\.total \(within-tolerance\) 5 → 5\.004/)
  })
})

describe('--format unified', () => {
  it('says which lines of the text diff the rules hide', async () => {
    const r = await replay(ids.outside, '--format', 'unified')
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/^-\s+"updatedAt": 1767225600123,$/m)
    expect(r.stdout).toContain(
      "price: not divergences, hidden by the config's rules: $.updatedAt (ignored), $.contact (redacted)",
    )
  })
})

describe('without rules', () => {
  it('reports the same differences as changes (only redaction still suppressed)', async () => {
    const r = await replay(ids.within, '--config', 'norules.config.mjs', '--json')
    expect(r.code).toBe(1)
    const s = price(parseReplayJson(r), ids.within)
    expect(s.status).toBe('diverged')
    expect(s.changes.map((c) => c.path)).toEqual([
      '$.items[0].sku',
      '$.items[0].qty',
      '$.items[0].price',
      '$.items[1].sku',
      '$.items[1].qty',
      '$.items[1].price',
      '$.total',
      '$.updatedAt',
    ])
    expect(s.suppressed.map((x) => [x.path, x.reason])).toEqual([['$.contact', 'redacted']])
  })
})

describe('bad rules', () => {
  it('a diff path that does not parse is a config error (exit 3) naming the path', async () => {
    const r = await replay('--config', 'badpath.config.mjs')
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/diff rules: bad path "\$\.items\[oops"/)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('a rule of the wrong shape is a config error (exit 3) on one line naming it, not a bug in retrace', async () => {
    const cases: [string, RegExp][] = [
      ["{ ignore: '$..updatedAt' }", /diff\.ignore must be a list of paths/],
      ["{ ignore: ['$.a', null] }", /diff\.ignore\[1\] must be a path/],
      [
        "{ tolerances: { '$.total': 0.01 } }",
        /diff\.tolerances is not a rule; the rules are ignore, tolerance, arrayKeys/,
      ],
      [
        "{ arrayKeys: { '$.items': ['sku'] } }",
        /diff\.arrayKeys\["\$\.items"\] must be the name of the field/,
      ],
    ]
    for (const [diff, message] of cases) {
      ws.write('shape.config.mjs', `export default { stages: ${JSON.stringify(stages)}, diff: ${diff} }\n`)
      const r = await replay('--config', 'shape.config.mjs', '--json')
      expect(r.code, diff).toBe(3)
      expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'E_CONFIG', message } })
      expect(r.stderr).toMatch(message)
      expect(r.stderr).toContain('shape.config.mjs: diff')
      expect(r.stderr).not.toMatch(/bug in retrace|\n\s+at /)
    }
  })
})
