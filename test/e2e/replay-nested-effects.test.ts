/**
 * A `ctx.effect` whose function calls `ctx.effect` (or `ctx.now()`) again: the outer
 * effect's result is what a replay plays back, without running its function, so the
 * calls inside it are not recorded and the recording replays against the build that made it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readBundle } from '../helpers/bundle-db.js'
import {
  importStage,
  parseReplayJson,
  record,
  runChain,
  runCli,
  statuses,
  type Workspace,
  workspace,
} from '../replay/fixture.js'

// A read-through cache: on a miss, the cache effect loads from the database through
// another effect, and stamps the entry with the clock.
const loadSrc = `export async function load(id, ctx) {
  const entry = await ctx.effect('cache.getOrLoad', { id }, async () => {
    const row = await ctx.effect('db.load', { id }, async () => ({ id, name: 'n' + id }))
    const sync = ctx.effect('db.version', null, () => 3)
    return { ...row, sync, cachedAt: ctx.now() }
  })
  const price = ctx.effect('price.get', { id }, () => 2.5)
  return { entry, price, at: ctx.now() }
}
`

let ws: Workspace
let bundle: string
let recordId = ''

beforeAll(async () => {
  ws = workspace()
  ws.write('stages/load.mjs', loadSrc)
  ws.write('retrace.config.mjs', `export default { stages: { load: './stages/load.mjs#load' } }\n`)
  bundle = ws.path('prod.sqlite')
  const load = await importStage(ws.path('stages/load.mjs'), 'load')
  await record(bundle, async (recorder) => {
    const r = await runChain(recorder, 'id:1', 1, [['load', load]])
    expect(r.output).toMatchObject({ entry: { id: 1, name: 'n1', sync: 3 }, price: 2.5 })
    recordId = r.recordId
  })
})

afterAll(() => ws?.remove())

describe('effects called inside an effect', () => {
  it('are covered by the outer effect: only the calls the stage made itself are recorded', () => {
    const [capture] = readBundle(bundle).captures
    expect(capture!.effects.map((e) => [e.seq, e.kind, e.name])).toEqual([
      [0, 'async-effect', 'cache.getOrLoad'],
      [1, 'effect', 'price.get'],
      [2, 'now', 'now'],
    ])
  })

  it('replay against the build that recorded them: matched, exit 0', async () => {
    const r = await runCli(['replay', bundle, recordId, '--json'], ws.dir)
    expect(r.code).toBe(0)
    const doc = parseReplayJson(r)
    expect(statuses(doc.records[0]!)).toEqual({ load: 'matched' })
  })
})
