/**
 * R6: sustained captures/s through the recorder >= 90% of a raw better-sqlite3 batched
 * insert of the same rows.
 *
 * Recorder: wrapped async stages (4 per record) called as fast as the writer takes them;
 * the producer pauses while more than `--backlog` captures wait (at most half of what the
 * default 16 MiB byte bound holds at the payload size), so the writer is always busy and
 * nothing is dropped (maxQueue is set above the total and drops are reported).
 * `producerWaitingShare` in the details tells which side limited the run: near 0 means
 * the main thread (encoding, R1) could not feed the writer, not that the writer was slow.
 * The figure is captures written (stats().written) per second, from the first capture
 * until close() has committed and checkpointed the last one.
 *
 * Each recorder run is a child process of this one (timed inside the child, from the first
 * capture to close()): every recorder a process creates keeps an AsyncLocalStorage alive
 * that makes every later promise of the process dearer, so a second recorder in the same
 * process would measure the first one's leftovers (see R2.als and the notes in
 * docs/performance.md). The raw runs stay in this process, which never creates a recorder.
 *
 * Floor: raw better-sqlite3 on the main thread inserting the same payload texts into the
 * same schema, same pragmas and page size, same 256-capture transactions, open to close
 * (bench/raw-sqlite.ts). Runs alternate in one process; medians over rounds.
 *
 * R6.shared-cpu (informational): the same raw insert while another thread of the process
 * keeps a core busy stringifying the same payloads, as the recorder's producer does. On a
 * 2-core machine the recorder needs two busy threads (the host encoding, the writer
 * inserting) where the raw floor needs one; this floor shows what SQLite alone gets when
 * it has to share the machine the same way.
 *
 *     npm run build && npx tsx bench/r6-throughput.ts [--captures 40000] [--rounds 5]
 */
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { PAGE_SIZE } from '../dist/bundle/schema.js'
import { createRecorder } from '../dist/index.js'
import { emit, interleave, median, numberArg, quantile, round, sleep, tempDir } from './lib.js'
import { makePairs, type Payload } from './payloads.js'
import { makeUnits, rawInsert } from './raw-sqlite.js'

const captures = numberArg('captures', 40_000)
const rounds = numberArg('rounds', 5)
const backlog = numberArg('backlog', 4096)
const stagesPerRecord = 4
const dir = tempDir('r6')
let file = 0

/** A thread that stringifies payloads until terminated (it says when it has started). */
const spinnerSource = `
const { parentPort, workerData } = require('node:worker_threads')
let sink = 0
parentPort.postMessage('started')
for (;;) for (const p of workerData) sink += JSON.stringify(p).length
`

interface RecorderRun {
  rate: number
  dropped: number
  /** Share of the run the producer spent paused for the writer (0: producer-bound). */
  waiting: number
}

/** One recorder run in this process: what a child prints for its parent. */
async function recorderRunHere(payloadBytes: number): Promise<RecorderRun> {
  const pairs = makePairs(256, payloadBytes, 6)
  const outputOf = new Map<unknown, Payload>(pairs.map((p) => [p.input, p.output]))
  const records = Math.ceil(captures / stagesPerRecord)
  const total = records * stagesPerRecord
  const path = join(dir, 'rec.sqlite')
  const recorder = createRecorder({ path, pipeline: 'bench', build: 'bench', maxQueue: total * 2 })
  const waitAbove = Math.min(
    backlog,
    Math.floor((16 * 1024 * 1024) / (2 * JSON.stringify(pairs[0]!.input).length + 400) / 2),
  )
  const stages = Array.from({ length: stagesPerRecord }, (_, i) =>
    recorder.stage(`stage${i}`, async (input: Payload) => outputOf.get(input)),
  )
  // Start timing with the writer thread up and the bundle open.
  await recorder.record('warm-up', () => stages[0]!(pairs[0]!.input))
  await recorder.flush()
  const before = recorder.stats().written
  const t0 = performance.now()
  let p = 0
  let waitedMs = 0
  for (let r = 0; r < records; r++) {
    await recorder.record(`sku:${1000 + (r % 5000)}`, async () => {
      for (let s = 0; s < stagesPerRecord; s++) await stages[s]!(pairs[p++ & 255]!.input)
    })
    if ((r & 15) === 0) {
      while (true) {
        const st = recorder.stats()
        if (st.captured - st.written - st.dropped <= waitAbove) break
        const w0 = performance.now()
        await sleep(1)
        waitedMs += performance.now() - w0
      }
    }
  }
  await recorder.close()
  const ms = performance.now() - t0
  const st = recorder.stats()
  rmSync(path, { force: true })
  return { rate: (st.written - before) / (ms / 1000), dropped: st.dropped, waiting: waitedMs / ms }
}

function recorderRunInChild(payloadBytes: number): Promise<RecorderRun> {
  const args = [
    '--import',
    'tsx',
    fileURLToPath(import.meta.url),
    '--child-payload',
    String(payloadBytes),
    '--captures',
    String(captures),
    '--backlog',
    String(backlog),
  ]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      out += chunk
    })
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`recorder run exited with ${code}`))
      else resolve(JSON.parse(out.trim().split('\n').at(-1)!) as RecorderRun)
    })
  })
}

async function measure(payloadBytes: number, label: string): Promise<void> {
  const pairs = makePairs(256, payloadBytes, 6)
  const texts = pairs.map((p) => ({ input: JSON.stringify(p.input), output: JSON.stringify(p.output) }))
  const records = Math.ceil(captures / stagesPerRecord)
  const total = records * stagesPerRecord
  const units = makeUnits(records, stagesPerRecord, texts)
  const drops: number[] = []
  /** Share of each recorder run the producer spent paused for the writer (0: producer-bound). */
  const waiting: number[] = []

  async function recorderRun(): Promise<number> {
    const run = await recorderRunInChild(payloadBytes)
    drops.push(run.dropped)
    waiting.push(run.waiting)
    return run.rate
  }

  function rawRun(): number {
    const path = join(dir, `raw-${file++}.sqlite`)
    const ms = rawInsert(path, units, { pageSize: PAGE_SIZE })
    rmSync(path, { force: true })
    return total / (ms / 1000)
  }

  async function rawSharedRun(): Promise<number> {
    const spinner = new Worker(spinnerSource, { eval: true, workerData: pairs.map((x) => x.input) })
    await new Promise((resolve) => spinner.once('message', resolve))
    const rate = rawRun()
    await spinner.terminate()
    return rate
  }

  await recorderRun()
  rawRun()
  const t = await interleave(rounds, { recorder: recorderRun, raw: rawRun, rawShared: rawSharedRun })
  const value = median(t.recorder)
  const floor = median(t.raw)
  const ratios = t.recorder.map((v, i) => v / t.raw[i]!)
  emit({
    id: 'R6',
    name: `sustained throughput, ${label}, ${stagesPerRecord} stages per record`,
    unit: 'captures/s',
    value,
    floor,
    floorName: 'raw better-sqlite3 batched insert of the same rows (same schema, pragmas, 256/tx)',
    target: '>= 0.9x floor',
    pass: value >= 0.9 * floor,
    detail: {
      payloadBytes: Math.round(
        texts.reduce((n, x) => n + x.input.length + x.output.length, 0) / texts.length / 2,
      ),
      captures: total,
      rounds,
      pairedRatioP25P75: [round(quantile(ratios, 0.25), 3), round(quantile(ratios, 0.75), 3)],
      dropped: drops.reduce((a, b) => a + b, 0),
      producerWaitingShare: round(median(waiting), 3),
      pageSize: PAGE_SIZE,
    },
  })
  const shared = median(t.rawShared)
  emit({
    id: 'R6.shared-cpu',
    name: `recorder vs raw insert sharing the CPU with a busy thread, ${label}`,
    unit: 'captures/s',
    value,
    floor: shared,
    floorName: 'the same raw insert while another thread stringifies the payloads non-stop',
    target: 'informational: the floor when the writer has to share 2 cores with an encoding thread',
    pass: null,
    detail: { rawSharedOverRaw: round(shared / floor, 3) },
  })
}

const childPayload = numberArg('child-payload', 0)
if (childPayload > 0) {
  process.stdout.write(`${JSON.stringify(await recorderRunHere(childPayload))}\n`)
} else {
  await measure(512, '0.5 KB payloads')
  await measure(2048, '2 KB payloads')
}
