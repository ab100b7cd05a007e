/**
 * R6: sustained captures/s through the recorder >= 90% of a raw better-sqlite3 batched
 * insert of the same rows.
 *
 * Recorder: wrapped async stages (4 per record) called as fast as the writer takes them;
 * the producer pauses while more than `--backlog` captures wait, so the writer is always
 * busy and nothing is dropped (maxQueue is set above the total and drops are reported).
 * `producerWaitingShare` in the details tells which side limited the run: near 0 means
 * the main thread (encoding, R1) could not feed the writer, not that the writer was slow.
 * The figure is captures written (stats().written) per second, from the first capture
 * until close() has committed and checkpointed the last one.
 *
 * Floor: raw better-sqlite3 on the main thread inserting the same payload texts into the
 * same schema, same pragmas and page size, same 256-capture transactions, open to close
 * (bench/raw-sqlite.ts). Runs alternate in one process; medians over rounds.
 *
 *     npm run build && npx tsx bench/r6-throughput.ts [--captures 40000] [--rounds 5]
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
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

async function measure(payloadBytes: number, label: string): Promise<void> {
  const pairs = makePairs(256, payloadBytes, 6)
  const outputOf = new Map<unknown, Payload>(pairs.map((p) => [p.input, p.output]))
  const texts = pairs.map((p) => ({ input: JSON.stringify(p.input), output: JSON.stringify(p.output) }))
  const records = Math.ceil(captures / stagesPerRecord)
  const total = records * stagesPerRecord
  const units = makeUnits(records, stagesPerRecord, texts)
  const drops: number[] = []
  /** Share of each recorder run the producer spent paused for the writer (0: producer-bound). */
  const waiting: number[] = []

  async function recorderRun(): Promise<number> {
    const path = join(dir, `rec-${file++}.sqlite`)
    const recorder = createRecorder({ path, pipeline: 'bench', build: 'bench', maxQueue: total * 2 })
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
          if (st.captured - st.written - st.dropped <= backlog) break
          const w0 = performance.now()
          await sleep(1)
          waitedMs += performance.now() - w0
        }
      }
    }
    await recorder.close()
    const ms = performance.now() - t0
    const st = recorder.stats()
    drops.push(st.dropped)
    waiting.push(waitedMs / ms)
    rmSync(path, { force: true })
    return (st.written - before) / (ms / 1000)
  }

  function rawRun(): number {
    const path = join(dir, `raw-${file++}.sqlite`)
    const ms = rawInsert(path, units, { pageSize: PAGE_SIZE })
    rmSync(path, { force: true })
    return total / (ms / 1000)
  }

  await recorderRun()
  rawRun()
  const t = await interleave(rounds, { recorder: recorderRun, raw: rawRun })
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
}

await measure(512, '0.5 KB payloads')
await measure(2048, '2 KB payloads')
