/**
 * R1: main-thread cost per capture <= 1.15x the cost of JSON.stringify of the same
 * payloads + 1 us, for 0.5 KB and 2 KB payloads.
 *
 * Cost per capture = (a record of K wrapped async stages run under recorder.record)
 * - (the same K bare calls, `await fn(input, ctx)`), divided by K. It includes the
 * record's own overhead (id, async context, hand-off to the writer, and the structured
 * clone of each 256-capture batch posted to the writer thread), spread over its captures.
 * The floor is JSON.stringify(input) + JSON.stringify(output) of the same payloads.
 *
 * Chunks are 256 captures (one writer batch). After each recorded chunk the benchmark
 * waits, untimed, for the writer to commit it, so the queue never fills (nothing is
 * dropped) and the writer thread never competes with the timed main thread for a core.
 * The main thread never waits on the writer in the timed part.
 *
 * Also measured: the raw codec, encode(value) with the default redaction rules, against
 * JSON.stringify(value).
 *
 *     npm run build && npx tsx bench/r1-capture-cost.ts [--rounds 15] [--chunks 16]
 */
import { join } from 'node:path'
import { defaultLimits, encode, Redactor } from '../dist/codec/index.js'
import { createRecorder, type StageContext } from '../dist/index.js'
import { emit, median, numberArg, quantile, round, tempDir } from './lib.js'
import { makePairs, type Payload } from './payloads.js'

const rounds = numberArg('rounds', 15)
const chunksPerRound = numberArg('chunks', 16)
const warmupRounds = numberArg('warmup', 4)
const dir = tempDir('r1')
const chunkCaptures = 256

/**
 * One recorder for every case: each recorder a process creates leaves an AsyncLocalStorage
 * enabled that makes every later promise dearer (R2.als), so a recorder per case would
 * charge later cases for earlier ones.
 */
const recorder = createRecorder({
  path: join(dir, 'r1.sqlite'),
  pipeline: 'bench',
  build: 'bench',
  maxQueue: 1_000_000,
})

/** Keeps results alive so the work cannot be optimised away. */
let sink = 0

async function measure(payloadBytes: number, stagesPerRecord: number, label: string): Promise<void> {
  const recordsPerChunk = chunkCaptures / stagesPerRecord
  const pairs = makePairs(chunkCaptures, payloadBytes, payloadBytes + stagesPerRecord)
  const outputOf = new Map<unknown, Payload>(pairs.map((p) => [p.input, p.output]))
  const keys = Array.from({ length: recordsPerChunk }, (_, i) => `sku:${1000 + i}`)
  const fns = Array.from(
    { length: stagesPerRecord },
    () =>
      async (input: Payload, _ctx: StageContext): Promise<Payload> =>
        outputOf.get(input)!,
  )
  const wrapped = fns.map((fn, i) => recorder.stage(`stage${i}-${payloadBytes}-${stagesPerRecord}`, fn))
  const ctx: StageContext = {
    key: 'sku:1000',
    recordId: '01K0000000000000000000000',
    stage: 'stage0',
    attempt: 1,
    now: Date.now,
    random: Math.random,
    effect: (_name, _args, fn) => fn(),
  }
  const redactor = new Redactor({})

  async function wrappedChunk(): Promise<number> {
    const t0 = performance.now()
    for (let r = 0; r < recordsPerChunk; r++) {
      await recorder.record(keys[r]!, async () => {
        for (let s = 0; s < stagesPerRecord; s++) {
          const out = await wrapped[s]!(pairs[r * stagesPerRecord + s]!.input)
          sink += out === undefined ? 0 : 1
        }
      })
    }
    const ms = performance.now() - t0
    await recorder.flush()
    return ms
  }
  async function bareChunk(): Promise<number> {
    const t0 = performance.now()
    for (let r = 0; r < recordsPerChunk; r++) {
      await (async () => {
        for (let s = 0; s < stagesPerRecord; s++) {
          const out = await fns[s]!(pairs[r * stagesPerRecord + s]!.input, ctx)
          sink += out === undefined ? 0 : 1
        }
      })()
    }
    return performance.now() - t0
  }
  function stringifyChunk(): number {
    const t0 = performance.now()
    for (const p of pairs) sink += JSON.stringify(p.input).length + JSON.stringify(p.output).length
    return performance.now() - t0
  }
  function encodeChunk(): number {
    const t0 = performance.now()
    for (const p of pairs) {
      sink +=
        encode(p.input, defaultLimits, redactor).length + encode(p.output, defaultLimits, redactor).length
    }
    return performance.now() - t0
  }

  const cases = [wrappedChunk, bareChunk, stringifyChunk, encodeChunk]
  const perRound = { capture: [] as number[], stringify: [] as number[], encode: [] as number[] }
  for (let round = 0; round < warmupRounds + rounds; round++) {
    const total = [0, 0, 0, 0]
    for (let c = 0; c < chunksPerRound; c++) {
      for (let i = 0; i < cases.length; i++) {
        const k = (i + c + round) % cases.length
        total[k]! += await cases[k]!()
      }
    }
    if (round < warmupRounds) continue
    const perCaptureNs = (ms: number) => (ms * 1e6) / (chunksPerRound * chunkCaptures)
    perRound.capture.push(perCaptureNs(total[0]! - total[1]!))
    perRound.stringify.push(perCaptureNs(total[2]!))
    perRound.encode.push(perCaptureNs(total[3]!))
  }
  const stats = recorder.stats()
  const bytes =
    pairs.reduce((n, p) => n + JSON.stringify(p.input).length + JSON.stringify(p.output).length, 0) /
    pairs.length /
    2
  const value = median(perRound.capture)
  const floor = median(perRound.stringify)
  const spread = (xs: number[]) => [round(quantile(xs, 0.25), 3), round(quantile(xs, 0.75), 3)]
  emit({
    id: 'R1',
    name: `${label}, ${stagesPerRecord} stage${stagesPerRecord === 1 ? '' : 's'} per record`,
    unit: 'ns/capture',
    value,
    floor,
    floorName: 'JSON.stringify(input) + JSON.stringify(output)',
    target: '<= 1.15x floor + 1 us',
    pass: value <= 1.15 * floor + 1000,
    detail: {
      payloadBytes: Math.round(bytes),
      budgetNs: round(1.15 * floor + 1000),
      /** encode() of input and output alone, and the rest of the recorder's work. */
      codecNs: round(median(perRound.encode)),
      restNs: round(value - median(perRound.encode)),
      captureP25P75: spread(perRound.capture),
      stringifyP25P75: spread(perRound.stringify),
      rounds,
      capturesPerRound: chunksPerRound * chunkCaptures,
      written: stats.written,
      dropped: stats.dropped,
      errors: stats.errors,
    },
  })
  if (stagesPerRecord === 4) {
    const enc = median(perRound.encode)
    emit({
      id: 'R1.codec',
      name: `encode() with default redaction, ${label}`,
      unit: 'ns/capture',
      value: enc,
      floor,
      floorName: 'JSON.stringify(input) + JSON.stringify(output)',
      target: '<= 1.15x floor + 1 us (R1 budget, codec alone)',
      pass: enc <= 1.15 * floor + 1000,
      detail: { encodeP25P75: spread(perRound.encode) },
    })
  }
}

await measure(512, 4, '0.5 KB payloads')
await measure(2048, 4, '2 KB payloads')
await measure(512, 1, '0.5 KB payloads')
await measure(2048, 1, '2 KB payloads')
await recorder.close()
if (sink === -1) process.stdout.write('unreachable\n')
