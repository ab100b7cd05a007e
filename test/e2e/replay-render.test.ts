/**
 * What `retrace replay` says about a divergence, as a user reads it: a long string changed
 * by one character, values JSON cannot hold (Date, Set, Map, BigInt, undefined), an error
 * of another class than Error. A pipeline recorded by the SDK (parse -> price -> discount)
 * replayed through local builds that each change one thing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type CliResult,
  importStage,
  parseReplayJson,
  record,
  runChain,
  runCli,
  type Workspace,
  workspace,
} from '../replay/fixture.js'

/** 5 MiB: a stage payload as large as the one the defect was found with. */
const blobSize = 5 * 1024 * 1024

const parseSrc = `export function parse(raw) {
  return { orderId: raw.id, blob: raw.blob, tags: new Set(raw.tags), receivedAt: new Date(raw.at) }
}
`
const priceSrc = `export function price(o) {
  return { ...o, unit: new Map([['SKU-42', 8.49]]), cents: 5102n }
}
`
const discountSrc = `export function discount(o) {
  return { orderId: o.orderId, cents: o.cents, total: Number(o.cents) / 100 }
}
`
const local: Record<string, string> = {
  // The last character of the 5 MiB string changes.
  'local/parse-last-char.mjs': `import { parse as prod } from '../stages/parse.mjs'
export function parse(raw) {
  const o = prod(raw)
  return { ...o, blob: o.blob.slice(0, -1) + 'y' }
}
`,
  'local/price-typed.mjs': `export function price(o) {
  return { ...o, tags: new Set([...o.tags, 'new']), receivedAt: new Date(0), unit: new Map([['SKU-42', 8.49], ['extra', 1]]), cents: 5103n }
}
`,
  'local/discount-throws.mjs': `export function discount() {
  throw new TypeError('boom')
}
`,
  'local/discount-undefined.mjs': `export function discount() {
  return undefined
}
`,
}

const config = (stages: Record<string, string>): string =>
  `export default { stages: ${JSON.stringify({
    parse: './stages/parse.mjs#parse',
    price: './stages/price.mjs#price',
    discount: './stages/discount.mjs#discount',
    ...stages,
  })} }\n`

let ws: Workspace
let bundle: string

beforeAll(async () => {
  ws = workspace('retrace-replay-render-')
  ws.write('stages/parse.mjs', parseSrc)
  ws.write('stages/price.mjs', priceSrc)
  ws.write('stages/discount.mjs', discountSrc)
  for (const [name, text] of Object.entries(local)) ws.write(name, text)
  ws.write('last-char.config.mjs', config({ parse: './local/parse-last-char.mjs#parse' }))
  ws.write('typed.config.mjs', config({ price: './local/price-typed.mjs#price' }))
  ws.write('throws.config.mjs', config({ discount: './local/discount-throws.mjs#discount' }))
  ws.write('undefined.config.mjs', config({ discount: './local/discount-undefined.mjs#discount' }))
  const chain = [
    ['parse', await importStage(ws.path('stages/parse.mjs'), 'parse')],
    ['price', await importStage(ws.path('stages/price.mjs'), 'price')],
    ['discount', await importStage(ws.path('stages/discount.mjs'), 'discount')],
  ] as const
  bundle = ws.path('prod.sqlite')
  const raw = { id: 'o-3', blob: 'x'.repeat(blobSize), tags: ['web', 'vip'], at: Date.UTC(2026, 11, 2) }
  await record(
    bundle,
    async (recorder) => {
      await runChain(recorder, 'order:3', raw, chain)
    },
    { maxPayloadBytes: 8 * 1024 * 1024, maxQueueBytes: 128 * 1024 * 1024 },
  )
})

afterAll(() => ws?.remove())

const replay = (...args: string[]): Promise<CliResult> =>
  runCli(['replay', bundle, '--key', 'order:3', ...args], ws.dir)

describe('replay: a long string changed by one character', () => {
  it('shows the characters around the change and where it is, on every change line', async () => {
    const r = await replay('--config', 'last-char.config.mjs')
    expect(r.code).toBe(1)
    const lines = r.stdout.split('\n').filter((l) => l.includes('~ $.blob'))
    expect(lines.length).toBeGreaterThanOrEqual(2)
    for (const l of lines) expect(l).toMatch(/"…x+" → "…x*y".*\(at character 5,242,880 of 5,242,880\)/)
    expect(r.stdout).toMatch(/first divergence: parse \(diverged\): production recorded "…x+" at \$\.blob/)
  })

  it('--format unified shows the changed line with the shared run counted, not a timeout', async () => {
    const r = await replay('--config', 'last-char.config.mjs', '--format', 'unified')
    expect(r.code).toBe(1)
    expect(r.stdout).not.toContain('too different to diff')
    expect(r.stdout).toMatch(/^- {2}"blob": "x+ … \(5,242,\d{3} characters\) … x+",?$/m)
    expect(r.stdout).toMatch(/^\+ {2}"blob": "x+ … \(5,242,\d{3} characters\) … x+y",?$/m)
  }, 60_000)
})

describe('replay: values JSON cannot hold', () => {
  it('names paths in the data and shows Date, Set, Map and BigInt as they are', async () => {
    const [text, json] = await Promise.all([
      replay('--config', 'typed.config.mjs', '--stage', 'price'),
      replay('--config', 'typed.config.mjs', '--stage', 'price', '--json'),
    ])
    expect(text.code).toBe(1)
    expect(text.stdout).toContain('+ $.tags[2] "new"')
    expect(text.stdout).toContain(
      '~ $.receivedAt Date(2026-12-02T00:00:00.000Z) → Date(1970-01-01T00:00:00.000Z)',
    )
    expect(text.stdout).toContain('+ $.unit.extra 1')
    expect(text.stdout).toContain('~ $.cents 5102n → 5103n')
    expect(text.stdout).not.toMatch(/\.v\b|\$t/)
    const price = parseReplayJson(json).records[0]!.stages.find((s) => s.stage === 'price')!
    expect(price.changes.map((c) => c.path)).toEqual(['$.tags[2]', '$.receivedAt', '$.unit.extra', '$.cents'])
  })

  it('a stage that returns undefined is explained: what production recorded, and undefined', async () => {
    const r = await replay('--config', 'undefined.config.mjs', '--stage', 'discount')
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/~ \$ \{"orderId":"o-3","cents":5102n,"total":51\.02\} → undefined/)
    expect(r.stdout).toMatch(
      /first divergence: discount \(diverged\): production recorded \{"orderId":"o-3",.* at \$, the local build gives undefined/,
    )
  })
})

describe('replay: an error of its own class', () => {
  it('names TypeError, not just its message', async () => {
    const r = await replay('--config', 'throws.config.mjs', '--stage', 'discount')
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('TypeError: boom [E_STAGE_THREW]')
    expect(r.stdout).toContain('first divergence: discount (error): TypeError: boom')
  })
})

describe('replay: binary values that changed', () => {
  const signSrc = (sig: string, last: number, kept: number): string => `export function sign(o) {
  return { id: o.id, sig: Buffer.from('${sig}'), raw: new Uint8Array([1, 2, ${last}]), ab: new Uint8Array([9, ${kept}]).buffer }
}
`
  let bin: Workspace
  let binBundle: string

  beforeAll(async () => {
    bin = workspace('retrace-replay-binary-')
    bin.write('stages/sign.mjs', signSrc('secret-v1', 3, 9))
    bin.write('local/sign.mjs', signSrc('secret-v2', 4, 8))
    bin.write('retrace.config.mjs', `export default { stages: { sign: './local/sign.mjs#sign' } }\n`)
    binBundle = bin.path('prod.sqlite')
    const sign = await importStage(bin.path('stages/sign.mjs'), 'sign')
    await record(binBundle, async (recorder) => {
      await runChain(recorder, 'order:7', { id: 7 }, [['sign', sign]])
    })
  })

  afterAll(() => bin?.remove())

  it('names the bytes that differ, and the unified diff shows them in hex', async () => {
    const [text, unified] = await Promise.all([
      runCli(['replay', binBundle, '--config', 'retrace.config.mjs'], bin.dir),
      runCli(['replay', binBundle, '--config', 'retrace.config.mjs', '--format', 'unified'], bin.dir),
    ])
    expect(text.code).toBe(1)
    expect(text.stdout).toContain('~ $.sig[8] 49 → 50')
    expect(text.stdout).toContain('~ $.raw[2] 3 → 4')
    expect(text.stdout).toContain('~ $.ab[1] 9 → 8')
    expect(text.stdout).not.toMatch(/Buffer\(9 bytes\) → Buffer\(9 bytes\)/)
    expect(unified.code).toBe(1)
    expect(unified.stdout).toMatch(/^- {4}73 65 63 72 65 74 2d 76 31$/m)
    expect(unified.stdout).toMatch(/^\+ {4}73 65 63 72 65 74 2d 76 32$/m)
    expect(unified.stdout).toMatch(/^- {4}09 09$/m)
    expect(unified.stdout).toMatch(/^\+ {4}09 08$/m)
  })
})
