/**
 * A stage whose output holds a RegExp, a URLSearchParams and a Headers, built-ins whose
 * state is not in own fields: recorded by the SDK in a temp dir, then shown, replayed
 * through the same build and through one that changed them, and extracted with a rule
 * into its headers, by the CLI from dist as a user types it; and a host that never uses
 * Headers, which telling such values apart must not load into it.
 */
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decode } from '../../src/codec/index.js'
import { readBundle } from '../helpers/bundle-db.js'
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

const searchSrc = (pattern: string, page: number): string => `export function search(req) {
  return {
    pattern: ${pattern},
    query: new URLSearchParams({ sku: req.sku, page: '${page}' }),
    headers: new Headers({ 'X-Region': 'eu', 'X-User': 'ann@example.com', Authorization: 'Bearer CANARY-E2E-AUTH-9c' }),
  }
}
`

let ws: Workspace
let recordId = ''

beforeAll(async () => {
  ws = workspace('retrace-opaque-')
  const search = await importStage(ws.write('stages/search.mjs', searchSrc('/ab+c/i', 2)), 'search')
  ws.write('local/search.mjs', searchSrc('/xyz/', 3))
  ws.write('retrace.config.json', JSON.stringify({ stages: { search: './stages/search.mjs#search' } }))
  ws.write('changed.config.json', JSON.stringify({ stages: { search: './local/search.mjs#search' } }))
  await record(ws.path('prod.sqlite'), async (recorder) => {
    recordId = (await runChain(recorder, 'sku:1001', { sku: '1001' }, [['search', search]])).recordId
  })
})
afterAll(() => ws.remove())

describe('a stage returning a RegExp, a URLSearchParams and a Headers', () => {
  it('show prints what they held, with the authorization header redacted', async () => {
    const r = await runCli(['show', 'prod.sqlite', recordId], ws.dir)
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('"pattern":"/ab+c/i"')
    expect(r.stdout).toContain('"query":"sku=1001&page=2"')
    expect(r.stdout).toContain('"x-region":"eu"')
    expect(r.stdout).toContain('"authorization":"[redacted]"')
    expect(r.stdout).not.toContain('CANARY-E2E-AUTH-9c')
  })

  it('replay matches the same build, and names a changed pattern and query string as diverged', async () => {
    const same = await runCli(['replay', 'prod.sqlite', '--json'], ws.dir)
    expect(same.code).toBe(0)
    expect(statuses(parseReplayJson(same).records[0]!)).toEqual({ search: 'matched' })

    const changedJson = await runCli(['replay', 'prod.sqlite', '--json', '-c', 'changed.config.json'], ws.dir)
    expect(changedJson.code).toBe(1)
    expect(statuses(parseReplayJson(changedJson).records[0]!)).toEqual({ search: 'diverged' })

    const changed = await runCli(['replay', 'prod.sqlite', recordId, '-c', 'changed.config.json'], ws.dir)
    expect(changed.code).toBe(1)
    expect(changed.stdout).toContain('$.pattern "/ab+c/i" → "/xyz/"')
    expect(changed.stdout).toContain('$.query "sku=1001&page=2" → "sku=1001&page=3"')
    // The local build's real authorization is not compared with the redacted recording.
    expect(changed.stdout).not.toContain('$.headers.authorization')
  })

  it('extract --redact reaches into the recorded headers', async () => {
    const out = join(ws.dir, 'extract.sqlite')
    const r = await runCli(
      ['extract', 'prod.sqlite', recordId, '-o', out, '--redact', '$..headers["x-user"]'],
      ws.dir,
    )
    expect(r.code).toBe(0)
    expect(decode(readBundle(out).captures[0]!.output!)).toEqual({
      pattern: '/ab+c/i',
      query: 'sku=1001&page=2',
      headers: { authorization: '[redacted]', 'x-region': 'eu', 'x-user': '[redacted]' },
    })
  })
})

describe('a host that never uses Headers', () => {
  it('does not have it loaded by the recorder telling values apart', () => {
    // Node loads fetch's Headers (undici) the first time the global is read.
    const codec = pathToFileURL(join(repoRoot, 'dist/codec/index.js')).href
    const script = `
      const { encode } = await import(${JSON.stringify(codec)})
      class Row { n = 1 }
      encode({ at: new Date(0), row: new Row(), re: /x/, q: new URLSearchParams('a=1'), m: new Map() })
      const loaded = process.moduleLoadList.filter((m) => /undici|fetch/.test(m))
      new Headers()
      const after = process.moduleLoadList.filter((m) => /undici|fetch/.test(m))
      console.log(JSON.stringify({ loaded, control: after.length > 0 }))`
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
    expect(JSON.parse(out)).toEqual({ loaded: [], control: true })
  })
})
