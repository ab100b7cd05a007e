/**
 * A stage that calls other wrapped stages (`handle` awaiting `parse` and `store`), named
 * in the config with them: under replay the nested calls play back their recordings, so
 * `store` writes nothing and `handle` sees production's clock, random and effects.
 */
import { existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Recorder } from '../../src/index.js'
import { parseReplayJson, repoRoot, runCli, statuses, type Workspace, workspace } from '../replay/fixture.js'

const sdk = pathToFileURL(join(repoRoot, 'dist/index.js')).href

/** The service's module; `extra` is a later local build whose `store` makes one more effect. */
function stagesSrc(extra: string): string {
  return `import { appendFileSync } from 'node:fs'
import { createRecorder } from ${JSON.stringify(sdk)}
const MARKER = new URL('./marker.txt', import.meta.url)
// Without NESTED_BUNDLE (as under replay) its recorder has no file, and records nothing.
export const recorder = createRecorder({ path: process.env.NESTED_BUNDLE, onError: () => {} })
export const parse = recorder.stage('parse', (raw) => JSON.parse(raw.body))
export const store = recorder.stage('store', async (doc, ctx) => {
  const row = await ctx.effect('db.insert', { id: doc.id }, async () => { appendFileSync(MARKER, 'wrote\\n'); return { rowid: 7 } })
  ${extra}
  return { id: doc.id, rowid: row.rowid, at: ctx.now(), r: ctx.random() }
})
export const handle = recorder.stage('handle', async (req) => {
  const doc = await parse(req)
  const saved = await store({ ...doc, tenant: req.tenant })
  return { status: 201, saved }
})
`
}

const stages = { handle: '#handle', parse: '#parse', store: '#store' }
const config = (module: string): string =>
  JSON.stringify({ stages: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, `${module}${v}`])) })

let ws: Workspace
let bundle: string
let marker: string

beforeAll(async () => {
  ws = workspace()
  const file = ws.write('stages/service.mjs', stagesSrc(''))
  ws.write(
    'stages/audited.mjs',
    stagesSrc(`await ctx.effect('db.audit', { id: doc.id }, async () => appendFileSync(MARKER, 'audit\\n'))`),
  )
  ws.write('retrace.config.json', config('./stages/service.mjs'))
  ws.write('audited.config.json', config('./stages/audited.mjs'))
  bundle = ws.path('prod.sqlite')
  marker = ws.path('stages/marker.txt')
  process.env.NESTED_BUNDLE = bundle
  try {
    const mod = (await import(pathToFileURL(file).href)) as {
      recorder: Recorder
      handle: (req: unknown) => Promise<unknown>
    }
    for (const id of [1, 2, 3])
      await mod.recorder.record(`req:${id}`, () => mod.handle({ body: JSON.stringify({ id }), tenant: 't' }))
    await mod.recorder.close()
    expect(mod.recorder.stats()).toMatchObject({ written: 9, dropped: 0 })
  } finally {
    delete process.env.NESTED_BUNDLE
  }
  // Production wrote three rows; a replay must write none.
  expect(existsSync(marker)).toBe(true)
  rmSync(marker)
})

afterAll(() => ws?.remove())

describe('a wrapped stage called inside a replayed stage', () => {
  it('plays back its recorded call: no real write, and the outer stage matches', async () => {
    const r = await runCli(['replay', bundle, '--json', '--mode', 'isolated'], ws.dir)
    const json = parseReplayJson(r)
    expect(json.records).toHaveLength(3)
    for (const rec of json.records)
      expect(statuses(rec)).toEqual({ handle: 'matched', parse: 'matched', store: 'matched' })
    expect(r.code).toBe(0)
    // In cascade too: the stages called inside handle get their recorded inputs.
    const cascade = await runCli(['replay', bundle, '--json'], ws.dir)
    for (const rec of parseReplayJson(cascade).records)
      expect(statuses(rec)).toEqual({ handle: 'matched', parse: 'matched', store: 'matched' })
    expect(cascade.code).toBe(0)
    expect(existsSync(marker)).toBe(false)
  })

  it('fails the outer stage, naming the nested one, when the nested call makes an effect production did not', async () => {
    const r = await runCli(
      ['replay', bundle, '--json', '--mode', 'isolated', '--config', 'audited.config.json'],
      ws.dir,
    )
    const json = parseReplayJson(r)
    expect(json.records).toHaveLength(3)
    for (const rec of json.records) {
      const handle = rec.stages.find((s) => s.stage === 'handle')!
      expect(handle.status).toBe('error')
      expect(handle.error?.code).toBe('E_EFFECT_DIVERGED')
      expect(handle.error?.message).toContain('store: effect #1 was ctx.now() in production')
      expect(handle.error?.message).toContain('(stage store called inside handle)')
      expect(rec.firstDivergence).toEqual({ stage: 'handle', status: 'error' })
    }
    expect(r.code).toBe(1)
    expect(existsSync(marker)).toBe(false)
  })

  it('gives the recorded result of a stage spliced (--splice) or not selected (--stage), inside the outer stage too', async () => {
    const audited = ['replay', bundle, '--json', '--config', 'audited.config.json']
    const spliced = parseReplayJson(await runCli([...audited, '--splice', 'store'], ws.dir))
    for (const rec of spliced.records)
      expect(statuses(rec)).toEqual({ handle: 'matched', parse: 'matched', store: 'skipped' })
    const only = await runCli([...audited, '--stage', 'handle'], ws.dir)
    for (const rec of parseReplayJson(only).records)
      expect(statuses(rec)).toEqual({ handle: 'matched', parse: 'skipped', store: 'skipped' })
    expect(only.code).toBe(0)
    expect(existsSync(marker)).toBe(false)
  })
})
