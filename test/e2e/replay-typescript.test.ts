/**
 * A project written in TypeScript: `retrace.config.ts` importing `defineConfig` from the
 * installed package, and stage modules in `.ts` with types, interfaces, an enum and
 * NodeNext-style `.js` imports of `.ts` files. Replay loads them with no build step.
 */
import { symlinkSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  importStage,
  parseReplayJson,
  record,
  repoRoot,
  runChain,
  runCli,
  statuses,
  type Workspace,
  workspace,
} from '../replay/fixture.js'

const typesSrc = `export interface Row {
  sku: string
  onHand: number
  reserved: number
}
export enum Health {
  Ok = 'ok',
  Low = 'low',
}
export interface Stock {
  sku: string
  available: number
  health: Health
  checkedAt: number
}
`
const computeSrc = (op: '-' | '+'): string => `import type { StageContext } from 'retrace'
import { Health, type Row, type Stock } from '../types.js'

const lowWater = 5 as const

export function compute(row: Row, ctx: StageContext): Stock {
  const available: number = row.onHand ${op} row.reserved
  const health = available < lowWater ? Health.Low : Health.Ok
  return { sku: row.sku, available, health, checkedAt: ctx.now() } satisfies Stock
}
`
const storeSrc = `import type { StageContext } from 'retrace'
import type { Stock } from '../types.js'

export async function store(stock: Stock, ctx: StageContext): Promise<Stock & { version: number }> {
  const version = await ctx.effect<Promise<number>>('kv.version', { key: stock.sku }, async () => 1)
  return { ...stock, version: version + 1 }
}
`
const configSrc = `import { defineConfig, type RetraceConfig } from 'retrace'

const stages: RetraceConfig['stages'] = {
  compute: './stages/compute.ts#compute',
  store: './stages/store.ts#store',
}

export default defineConfig({ stages, diff: { ignore: ['$..checkedAt'] } })
`

let ws: Workspace
let bundle: string
const ids = { bad: '', good: '' }

beforeAll(async () => {
  ws = workspace()
  // As if `npm install retrace` had run in the project.
  ws.write('node_modules/.keep', '')
  symlinkSync(repoRoot, ws.path('node_modules/retrace'), 'dir')
  ws.write('types.ts', typesSrc)
  ws.write('stages/compute.ts', computeSrc('-'))
  ws.write('stages/store.ts', storeSrc)
  ws.write('prod/compute.ts', computeSrc('+'))
  ws.write('retrace.config.ts', configSrc)
  const chain = [
    ['compute', await importStage(ws.path('prod/compute.ts'), 'compute')],
    ['store', await importStage(ws.path('stages/store.ts'), 'store')],
  ] as const
  bundle = ws.path('prod.sqlite')
  await record(bundle, async (recorder) => {
    ids.bad = (await runChain(recorder, 'sku:1', { sku: 'sku:1', onHand: 45, reserved: 41 }, chain)).recordId
    ids.good = (await runChain(recorder, 'sku:2', { sku: 'sku:2', onHand: 9, reserved: 0 }, chain)).recordId
  })
})

afterAll(() => ws?.remove())

describe('TypeScript config and stage modules', () => {
  it('loads retrace.config.ts and .ts stages without a build step and finds the planted stage', async () => {
    const r = await runCli(['replay', bundle, '--json'], ws.dir)
    expect(r.stderr).toBe('')
    expect(r.code).toBe(1)
    const doc = parseReplayJson(r)
    expect(doc.summary).toEqual({ records: 2, matched: 1, diverged: 1, errors: 0 })
    const bad = doc.records.find((x) => x.recordId === ids.bad)!
    expect(bad.firstDivergence).toEqual({ stage: 'compute', status: 'diverged' })
    expect(statuses(bad)).toEqual({ compute: 'diverged', store: 'inherited' })
    // The enum value and the fix show up in the diff; the ignored clock is labelled.
    const compute = bad.stages[0]!
    expect(compute.changes).toEqual([
      { path: '$.available', kind: 'changed', recorded: 86, local: 4 },
      { path: '$.health', kind: 'changed', recorded: 'ok', local: 'low' },
    ])
    expect(compute.suppressed).toEqual([])
    const good = doc.records.find((x) => x.recordId === ids.good)!
    expect(statuses(good)).toEqual({ compute: 'matched', store: 'matched' })
  })

  it('reports a type-level syntax error in a .ts stage as a stage load error (exit 3)', async () => {
    ws.write(
      'broken/stages/compute.ts',
      'export function compute(row: { a: number ): number {\n  return 1\n}\n',
    )
    ws.write(
      'broken/retrace.config.ts',
      "export default { stages: { compute: './stages/compute.ts#compute' } }\n",
    )
    const r = await runCli(['replay', bundle], ws.path('broken'))
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/stage compute: cannot load \S*compute\.ts: [^\n]+ \(line 1, column \d+\)\n/)
  })
})
