// The crash scenario's victim: records a steady stream of three-stage records with
// effects until it is killed. argv: bundle path, flush interval (ms).
import { createRecorder } from '../../../dist/index.js'

const [path, flushMs] = process.argv.slice(2)
const recorder = createRecorder({
  path,
  pipeline: 'crash',
  flushIntervalMs: Number(flushMs),
  onError: (e) => process.stderr.write(`recorder: ${e.code} ${e.message}\n`),
})
const parse = recorder.stage('parse', (n) => ({ n, pad: 'p'.repeat(200 + (n % 7) * 50) }))
const price = recorder.stage('price', async (o, ctx) => {
  const at = ctx.now()
  const unit = ctx.effect('kv.get', { sku: o.n }, () => 100 + (o.n % 13))
  const promo = await ctx.effect('promo.get', [o.n], async () => (o.n % 3 === 0 ? 5 : 0))
  return { ...o, unit, promo, at }
})
const store = recorder.stage('store', (o, ctx) => ({ stored: o.n, total: o.unit - o.promo, r: ctx.random() }))

let streaming = false
for (let i = 0; ; i++) {
  await recorder.record(`seq:${i}`, async () => store(await price(await parse(i))))
  // Said once the writer thread has committed its first batch: from here on the stream is steady.
  if (!streaming && recorder.stats().written > 0) {
    streaming = true
    process.stdout.write('streaming\n')
  }
  // A steady pace of a few hundred records a second, with the event loop free in between.
  await new Promise((resolve) => setTimeout(resolve, 2))
}
