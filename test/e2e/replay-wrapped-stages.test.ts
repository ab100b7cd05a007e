/**
 * A stage module that wraps its own stage with the recorder (`export const enrich =
 * recorder.stage('enrich', ...)`, as the README's recording example reads) and a config
 * that names that export: replay runs the function inside, under playback.
 */
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Recorder } from '../../src/index.js'
import { parseReplayJson, repoRoot, runCli, statuses, type Workspace, workspace } from '../replay/fixture.js'

const sdk = pathToFileURL(join(repoRoot, 'dist/index.js')).href
// Without SELF_BUNDLE (as under replay) its recorder has no file, and records nothing.
const enrichSrc = `import { createRecorder } from ${JSON.stringify(sdk)}
export const recorder = createRecorder({ path: process.env.SELF_BUNDLE, onError: () => {} })
export const enrich = recorder.stage('enrich', async (order, ctx) => {
  const region = await ctx.effect('geo.lookup', { ip: order.ip }, async () => 'NL')
  return { ...order, region, at: ctx.now(), roll: ctx.random() }
})
export default enrich
`

let ws: Workspace
let bundle: string

beforeAll(async () => {
  ws = workspace()
  const file = ws.write('stages/enrich.mjs', enrichSrc)
  ws.write('retrace.config.json', JSON.stringify({ stages: { enrich: './stages/enrich.mjs#enrich' } }))
  ws.write('default.config.json', JSON.stringify({ stages: { enrich: './stages/enrich.mjs' } }))
  bundle = ws.path('prod.sqlite')
  process.env.SELF_BUNDLE = bundle
  try {
    const mod = (await import(pathToFileURL(file).href)) as {
      recorder: Recorder
      enrich: (o: unknown) => Promise<unknown>
    }
    await mod.recorder.record('user:1', () => mod.enrich({ ip: '192.0.2.1' }))
    await mod.recorder.close()
    expect(mod.recorder.stats()).toMatchObject({ written: 1, dropped: 0 })
  } finally {
    delete process.env.SELF_BUNDLE
  }
})

afterAll(() => ws?.remove())

describe('a config naming a stage as the recorder wrapped it', () => {
  it.each(['retrace.config.json', 'default.config.json'])(
    'replays the function inside with the recorded clock, random and effects (%s)',
    async (config) => {
      const r = await runCli(['replay', bundle, '--json', '--config', config], ws.dir)
      expect(r.stderr).not.toContain('E_NO_RECORD')
      const json = parseReplayJson(r)
      expect(json.records).toHaveLength(1)
      expect(statuses(json.records[0]!)).toEqual({ enrich: 'matched' })
      expect(r.code).toBe(0)
    },
  )
})
