// The overload scenario's host: produces records as fast as it can (many in flight at
// once) for a fixed time, far faster than the writer thread can commit them, and reports
// the counters and its memory. argv: bundle path, seconds, max queue (captures). On a
// loaded machine the run is extended (up to 4x) until the queue has overflowed once.
import { createRecorder } from '../../../dist/index.js'

const [path, secondsArg, maxQueueArg] = process.argv.slice(2)
const seconds = Number(secondsArg)
const escaped = []
process.on('uncaughtException', (err) => escaped.push(String(err)))
process.on('unhandledRejection', (err) => escaped.push(String(err)))

const errorCodes = new Set()
const recorder = createRecorder({
  path,
  pipeline: 'overload',
  maxQueue: Number(maxQueueArg),
  closeTimeoutMs: 60_000,
  onError: (e) => errorCodes.add(e.code),
})
const pad = 'o'.repeat(1500)
const parse = recorder.stage('parse', (n) => ({ n, pad }))
// Many cheap effects: each costs the host a push and the writer a row, so the writer is
// the bottleneck by a wide margin.
const enrich = recorder.stage('enrich', (o, ctx) => {
  let r = 0
  for (let k = 0; k < 40; k++) r += ctx.random()
  return { ...o, r, kv: ctx.effect('kv.get', { n: o.n }, () => o.n * 2) }
})
const store = recorder.stage('store', (o) => ({ stored: o.n, kv: o.kv, pad }))

const mib = (n) => Math.round(n / 2 ** 20)
global.gc?.()
const baseline = process.memoryUsage().rss
let peak = baseline
const samples = []
const sampler = setInterval(() => {
  const rss = process.memoryUsage().rss
  peak = Math.max(peak, rss)
  samples.push(rss)
}, 50)

let attempts = 0
let n = 0
const started = Date.now()
const until = started + seconds * 1000
const latest = started + 4 * seconds * 1000
while (Date.now() < until || (recorder.stats().dropped === 0 && Date.now() < latest)) {
  // A burst of concurrent records, then a turn of the event loop for timers and acks.
  const burst = []
  for (let k = 0; k < 64; k++) {
    const i = n++
    burst.push(recorder.record(`k:${i}`, async () => store(await enrich(await parse(i)))))
    attempts += 3
  }
  await Promise.all(burst)
  await new Promise((resolve) => setImmediate(resolve))
}
const produceMs = Date.now() - started
const atStop = recorder.stats()
await recorder.close()
clearInterval(sampler)
const stats = recorder.stats()
const quarter = (q) => mib(samples[Math.min(samples.length - 1, Math.floor((samples.length * q) / 4))] ?? 0)

process.stdout.write(
  `${JSON.stringify({
    records: n,
    attempts,
    produceMs,
    atStop,
    stats,
    errorCodes: [...errorCodes].sort(),
    escaped,
    rssMiB: {
      baseline: mib(baseline),
      peak: mib(peak),
      quarters: [quarter(1), quarter(2), quarter(3), quarter(4)],
    },
  })}\n`,
)
