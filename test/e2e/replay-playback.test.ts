/**
 * Effects under replay, end to end: the clock, random numbers and `ctx.effect` calls come
 * back from the recording; an effect the local build calls differently is an effect
 * divergence; a socket the local build opens itself is refused unless `--allow-net`.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type CliResult,
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

// A stage whose output is made of the clock and random numbers it read through ctx.
const stampSrc = `export function stamp(order, ctx) {
  const at = ctx.now()
  const nonce = ctx.random()
  return { ...order, receivedAt: new Date(at), nonce, lottery: Math.floor(ctx.random() * 1e9), tookMs: ctx.now() - at }
}
`
// The same stage reading the real clock and Math.random: it cannot replay identically.
const stampRawSrc = `export function stamp(order) {
  return { ...order, receivedAt: new Date(), nonce: Math.random(), lottery: Math.floor(Math.random() * 1e9), tookMs: 0 }
}
`
// Prices through a sync and an async effect, with a secret the recorder redacts.
const priceSrc = `export async function price(order, ctx) {
  const unit = await ctx.effect('price.get', { sku: order.sku, apiKey: process.env.PRICE_KEY ?? 'dev-key' }, async () => 2.5)
  const stock = ctx.effect('stock.get', [order.sku], () => 40)
  return { ...order, unit, stock, total: unit * order.qty }
}
`
const localVariants = {
  // Asks for another SKU than production did.
  otherArgs: `export async function price(order, ctx) {
  const unit = await ctx.effect('price.get', { sku: order.sku + '-v2', apiKey: 'k' }, async () => 2.5)
  const stock = ctx.effect('stock.get', [order.sku], () => 40)
  return { ...order, unit, stock, total: unit * order.qty }
}
`,
  // Calls another effect than production did.
  otherName: `export async function price(order, ctx) {
  const unit = await ctx.effect('price.lookup', { sku: order.sku, apiKey: 'k' }, async () => 2.5)
  const stock = ctx.effect('stock.get', [order.sku], () => 40)
  return { ...order, unit, stock, total: unit * order.qty }
}
`,
  // One effect call more than production made.
  oneMore: `export async function price(order, ctx) {
  const unit = await ctx.effect('price.get', { sku: order.sku, apiKey: 'k' }, async () => 2.5)
  const stock = ctx.effect('stock.get', [order.sku], () => 40)
  const promo = await ctx.effect('promo.get', { sku: order.sku }, async () => null)
  return { ...order, unit, stock, total: unit * order.qty, promo }
}
`,
  // Swallows the divergence and carries on: still an error.
  swallows: `export async function price(order, ctx) {
  let unit = 0
  try {
    unit = await ctx.effect('price.fetch', { sku: order.sku }, async () => 2.5)
  } catch {}
  const stock = 40
  return { ...order, unit, stock, total: unit * order.qty }
}
`,
  // Skips the stock lookup (uses a constant): production's effect is left unused.
  fewer: `export async function price(order, ctx) {
  const unit = await ctx.effect('price.get', { sku: order.sku, apiKey: 'k' }, async () => 2.5)
  return { ...order, unit, stock: 40, total: unit * order.qty }
}
`,
}

let server: Server
let port = 0
let requests = 0
/** A port nothing listens on (a server that was opened, then closed). */
let closedPort = 0

// Production reads stock from an HTTP service through ctx.effect (recorded); the local
// builds below talk to the network themselves.
const notifySrc = (p: number): string => `export async function notify(order, ctx) {
  const remote = await ctx.effect('stock.fetch', { sku: order.sku }, async () => {
    const res = await fetch('http://127.0.0.1:${p}/stock')
    return res.json()
  })
  return { sku: order.sku, remoteQty: remote.qty }
}
`
const netVariants = (p: number) => ({
  fetch: `export async function notify(order) {
  const res = await fetch('http://127.0.0.1:${p}/stock')
  const remote = await res.json()
  return { sku: order.sku, remoteQty: remote.qty }
}
`,
  http: `import http from 'node:http'
export async function notify(order) {
  const remote = await new Promise((resolve, reject) => {
    http.get('http://127.0.0.1:${p}/stock', (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve(JSON.parse(body)))
    }).on('error', reject)
  })
  return { sku: order.sku, remoteQty: remote.qty }
}
`,
  socket: `import net from 'node:net'
export async function notify(order) {
  await new Promise((resolve, reject) => {
    const s = net.connect(${p}, '127.0.0.1')
    s.on('connect', () => { s.end(); resolve() })
    s.on('error', reject)
  })
  return { sku: order.sku, remoteQty: 12 }
}
`,
  // Catches the refusal and returns a fallback: the stage still fails under replay.
  swallows: `export async function notify(order) {
  let qty = 12
  try {
    qty = (await (await fetch('http://127.0.0.1:${p}/stock')).json()).qty
  } catch {}
  return { sku: order.sku, remoteQty: qty }
}
`,
})

let ws: Workspace
let bundle: string
let recordId = ''
/** What production's stamp stage returned. */
let stamped: Record<string, unknown> = {}

const config = (stages: Record<string, string>): string =>
  `export default { stages: ${JSON.stringify(stages)} }\n`
const base = {
  stamp: './stages/stamp.mjs#stamp',
  price: './stages/price.mjs#price',
  notify: './stages/notify.mjs#notify',
}

beforeAll(async () => {
  server = createServer((_req, res) => {
    requests++
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ qty: 12 }))
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  port = (server.address() as AddressInfo).port
  const probe = createServer()
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done))
  closedPort = (probe.address() as AddressInfo).port
  await new Promise<void>((done) => probe.close(() => done()))

  ws = workspace()
  ws.write('stages/stamp.mjs', stampSrc)
  ws.write('stages/price.mjs', priceSrc)
  ws.write('stages/notify.mjs', notifySrc(port))
  ws.write('stages/stamp-raw.mjs', stampRawSrc)
  for (const [name, src] of Object.entries(localVariants)) ws.write(`variants/price-${name}.mjs`, src)
  for (const [name, src] of Object.entries(netVariants(port))) ws.write(`variants/notify-${name}.mjs`, src)
  ws.write('variants/notify-closed.mjs', netVariants(closedPort).fetch)
  ws.write('retrace.config.mjs', config(base))
  ws.write('raw.config.mjs', config({ ...base, stamp: './stages/stamp-raw.mjs#stamp' }))
  for (const name of Object.keys(localVariants))
    ws.write(`price-${name}.config.mjs`, config({ ...base, price: `./variants/price-${name}.mjs#price` }))
  for (const name of [...Object.keys(netVariants(port)), 'closed'])
    ws.write(`notify-${name}.config.mjs`, config({ ...base, notify: `./variants/notify-${name}.mjs#notify` }))

  const chain = [
    ['stamp', await importStage(ws.path('stages/stamp.mjs'), 'stamp')],
    ['price', await importStage(ws.path('stages/price.mjs'), 'price')],
    ['notify', await importStage(ws.path('stages/notify.mjs'), 'notify')],
  ] as const
  bundle = ws.path('prod.sqlite')
  await record(bundle, async (recorder) => {
    // Production runs with the real clock and Math.random (the recorder's defaults).
    const stampOnly = recorder.stage('stamp', chain[0][1])
    const r = await runChain(recorder, 'order:1', { sku: 'sku:1001', qty: 3 }, chain)
    expect(r.output).toEqual({ sku: 'sku:1001', remoteQty: 12 })
    recordId = r.recordId
    stamped = (await recorder.record('probe', () => stampOnly({ sku: 'x', qty: 0 }))) as Record<
      string,
      unknown
    >
  })
  expect(requests).toBe(1)
})

afterAll(async () => {
  ws?.remove()
  await new Promise<void>((done) => (server ? server.close(() => done()) : done()))
})

const replay = (...args: string[]): Promise<CliResult> =>
  runCli(['replay', bundle, recordId, ...args], ws.dir)

function only(doc: ReplayJson): ReplayJson['records'][number] {
  expect(doc.records).toHaveLength(1)
  return doc.records[0]!
}

function stageOf(doc: ReplayJson, stage: string): ReplayJson['records'][number]['stages'][number] {
  const s = only(doc).stages.find((x) => x.stage === stage)
  if (s === undefined) throw new Error(`no stage ${stage}`)
  return s
}

describe('clock, random and effects play back', () => {
  it('replays a stage built from ctx.now() and ctx.random() identically, in a later process', async () => {
    const r = await replay('--json', '--mode', 'isolated')
    expect(r.code).toBe(0)
    const doc = parseReplayJson(r)
    expect(statuses(only(doc))).toEqual({ stamp: 'matched', price: 'matched', notify: 'matched' })
    expect(doc.summary).toEqual({ records: 1, matched: 1, diverged: 0, errors: 0 })
    expect(requests).toBe(1)
  })

  it('replays the whole chain in cascade with every stage matched and exit 0', async () => {
    const r = await replay()
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('1 record replayed, 1 matched, 0 diverged, 0 errors')
    // Replay never called the effect functions: the HTTP service saw only production.
    expect(requests).toBe(1)
  })

  it('a stage reading the real clock and Math.random diverges on exactly those fields', async () => {
    // The control: what ctx playback prevents.
    expect(Object.keys(stamped)).toEqual(['sku', 'qty', 'receivedAt', 'nonce', 'lottery', 'tookMs'])
    const r = await replay('--config', 'raw.config.mjs', '--json', '--stage', 'stamp')
    expect(r.code).toBe(1)
    const stamp = stageOf(parseReplayJson(r), 'stamp')
    expect(stamp.status).toBe('diverged')
    const paths = stamp.changes.map((c) => c.path)
    expect(paths).toEqual(expect.arrayContaining(['$.receivedAt', '$.nonce', '$.lottery']))
    // tookMs may be 0 in both (two clock reads within one millisecond); nothing else differs.
    expect(paths.filter((p) => !['$.receivedAt', '$.nonce', '$.lottery', '$.tookMs'].includes(p))).toEqual([])
    // The three recorded effects the raw build did not ask for are reported.
    const unused = (stamp.attempts as { unusedEffects: { kind: string }[] }[])[0]!.unusedEffects
    expect(unused.map((e) => e.kind)).toEqual(['now', 'random', 'random', 'now'])
  })

  it('lists recorded effects the local build left unused, in --json and in human output', async () => {
    const json = await replay('--config', 'price-fewer.config.mjs', '--json')
    expect(json.code).toBe(0)
    const price = stageOf(parseReplayJson(json), 'price')
    expect(price.status).toBe('matched')
    expect((price.attempts as { unusedEffects: unknown[] }[])[0]!.unusedEffects).toEqual([
      { seq: 1, kind: 'effect', name: 'stock.get' },
    ])
    const human = await replay('--config', 'price-fewer.config.mjs', '--verbose')
    expect(human.stdout).toMatch(/attempt 1 left 1 recorded effects unused: stock\.get/)
  })
})

describe('effect divergence', () => {
  it('other args: error E_EFFECT_DIVERGED naming the recorded and the local args', async () => {
    const r = await replay('--config', 'price-otherArgs.config.mjs', '--json')
    expect(r.code).toBe(1)
    const doc = parseReplayJson(r)
    expect(only(doc).verdict).toBe('error')
    expect(only(doc).firstDivergence).toEqual({ stage: 'price', status: 'error' })
    const price = stageOf(doc, 'price')
    expect(price.status).toBe('error')
    expect(price.error?.code).toBe('E_EFFECT_DIVERGED')
    expect(price.error?.message).toContain('"price.get"')
    // The recorded apiKey was redacted by the recorder; the SKU is what differs.
    expect(price.error?.message).toContain('recorded {"sku":"sku:1001","apiKey":"[redacted]"}')
    expect(price.error?.message).toContain('local {"sku":"sku:1001-v2","apiKey":"k"}')
    expect(doc.summary).toEqual({ records: 1, matched: 0, diverged: 0, errors: 1 })
  })

  it('another name: names the recorded and the local effect, in human output too', async () => {
    const r = await replay('--config', 'price-otherName.config.mjs')
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('error at price')
    expect(r.stdout).toMatch(
      /price: effect #0 was ctx\.effect\("price\.get"\) in production, the local build called ctx\.effect\("price\.lookup"\) \[E_EFFECT_DIVERGED\]/,
    )
  })

  it('one call more than recorded: names the call', async () => {
    const r = await replay('--config', 'price-oneMore.config.mjs', '--json')
    expect(r.code).toBe(1)
    const price = stageOf(parseReplayJson(r), 'price')
    expect(price.status).toBe('error')
    expect(price.error?.code).toBe('E_EFFECT_DIVERGED')
    expect(price.error?.message).toMatch(
      /ctx\.effect\("promo\.get"\) was not recorded \(production made 2 effect calls here\)/,
    )
  })

  it('a stage that swallows the divergence still fails', async () => {
    const r = await replay('--config', 'price-swallows.config.mjs', '--json')
    expect(r.code).toBe(1)
    const price = stageOf(parseReplayJson(r), 'price')
    expect(price.status).toBe('error')
    expect(price.error?.code).toBe('E_EFFECT_DIVERGED')
    expect(price.error?.message).toContain('"price.fetch"')
  })

  it('in cascade, downstream of an effect divergence is skipped, not judged', async () => {
    const r = await replay('--config', 'price-otherName.config.mjs', '--json')
    const doc = parseReplayJson(r)
    expect(statuses(only(doc))).toEqual({ stamp: 'matched', price: 'error', notify: 'skipped' })
  })
})

describe('the network guard', () => {
  for (const variant of ['fetch', 'http', 'socket'] as const) {
    it(`refuses ${variant} to 127.0.0.1 with the host and port named, status error`, async () => {
      const before = requests
      const r = await replay('--config', `notify-${variant}.config.mjs`, '--json')
      expect(r.code).toBe(1)
      const notify = stageOf(parseReplayJson(r), 'notify')
      expect(notify.status).toBe('error')
      expect(notify.error?.code).toBe('E_REPLAY_OFFLINE')
      expect(notify.error?.message).toContain(`127.0.0.1:${port}`)
      expect(notify.error?.message).toMatch(/replay is offline/)
      expect(notify.error?.message).toContain('--allow-net')
      expect(requests).toBe(before)
    })
  }

  it('names the host and port in human output', async () => {
    const r = await replay('--config', 'notify-http.config.mjs')
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('error at notify')
    expect(r.stdout).toMatch(
      new RegExp(`stage notify tried to reach 127\\.0\\.0\\.1:${port}.*\\[E_REPLAY_OFFLINE\\]`),
    )
  })

  it('fails a stage that catches the refusal and falls back', async () => {
    const r = await replay('--config', 'notify-swallows.config.mjs', '--json')
    const notify = stageOf(parseReplayJson(r), 'notify')
    expect(notify.status).toBe('error')
    expect(notify.error?.code).toBe('E_REPLAY_OFFLINE')
  })

  it('--allow-net lets fetch reach the server (and the stage match)', async () => {
    const before = requests
    const r = await replay('--config', 'notify-fetch.config.mjs', '--allow-net', '--json')
    expect(r.code).toBe(0)
    expect(stageOf(parseReplayJson(r), 'notify').status).toBe('matched')
    expect(requests).toBe(before + 1)
  })

  it('--allow-net lets http.get reach the server', async () => {
    const before = requests
    const r = await replay('--config', 'notify-http.config.mjs', '--allow-net', '--json')
    expect(r.code).toBe(0)
    expect(requests).toBe(before + 1)
  })

  it('--allow-net turns a refusal into the real connection error', async () => {
    const r = await replay('--config', 'notify-closed.config.mjs', '--allow-net', '--json')
    expect(r.code).toBe(1)
    const notify = stageOf(parseReplayJson(r), 'notify')
    expect(notify.status).toBe('error')
    expect(notify.error?.code).not.toBe('E_REPLAY_OFFLINE')
    expect(notify.error?.message).not.toMatch(/offline/)
  })
})
