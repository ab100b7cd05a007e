/**
 * W1: what the recorder's writer thread spends per capture row (taking each packed batch
 * apart, bundle/wire.ts, and writing it with BundleWriter) against raw better-sqlite3
 * inserting the same rows from ready strings with the same schema, pragmas and 256-capture
 * transactions (bench/raw-sqlite.ts). Both run on this thread, alternating, each into a
 * fresh file, timed in CPU time (process.cpuUsage) from open to close, so the other
 * threads of a busy machine weigh less than in wall time. The batches are packed before
 * the clock starts (that is the host's work, R1).
 *
 * A guard for the writer's own overhead (the upsert of the record row, the sequence check
 * for continued records, opening and closing the bundle): R6 compares the whole recorder
 * with the same floor, but there the host's encoding shares the machine with the writer.
 * The target (<= 1.15x) is the writer's, not an issue's.
 *
 *     npm run build && npx tsx bench/writer-rows.ts [--captures 40000] [--rounds 9]
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { PAGE_SIZE } from '../dist/bundle/schema.js'
import { BatchBuilder, type PackedUnits, unpackUnits } from '../dist/bundle/wire.js'
import { BundleWriter } from '../dist/bundle/writer.js'
import { version } from '../dist/version.js'
import { emit, median, numberArg, quantile, round, tempDir } from './lib.js'
import { makePairs } from './payloads.js'
import { makeUnits, rawInsert } from './raw-sqlite.js'

const captures = numberArg('captures', 40_000)
const rounds = numberArg('rounds', 9)
const stagesPerRecord = 4
const dir = tempDir('writer-rows')
let file = 0

/** CPU milliseconds `fn` takes on this process. */
function cpuMs(fn: () => void): number {
  const c0 = process.cpuUsage()
  fn()
  const c = process.cpuUsage(c0)
  return (c.user + c.system) / 1000
}

for (const payloadBytes of [512, 2048]) {
  const pairs = makePairs(256, payloadBytes, 6)
  const texts = pairs.map((p) => ({ input: JSON.stringify(p.input), output: JSON.stringify(p.output) }))
  const units = makeUnits(Math.ceil(captures / stagesPerRecord), stagesPerRecord, texts)
  const n = units.length * stagesPerRecord
  const perBatch = 256 / stagesPerRecord
  const batches: PackedUnits[] = []
  for (let i = 0; i < units.length; i += perBatch) {
    const builder = new BatchBuilder(
      (bytes) => new ArrayBuffer(bytes * 2),
      () => undefined,
    )
    for (const u of units.slice(i, i + perBatch)) builder.add(u, builder.measure(u))
    batches.push(builder.finish().packed!)
  }

  const writer = (): number => {
    const path = join(dir, `w-${file++}.sqlite`)
    const ms = cpuMs(() => {
      const w = BundleWriter.open(path, {
        manifest: {
          pipeline: 'bench',
          recorderVersion: version,
          builds: [],
          redaction: { rules: [], equalityPreserving: false },
        },
      })
      for (const b of batches) w.write(unpackUnits(b, 'bytes'))
      w.close()
    })
    rmSync(path, { force: true })
    return ms
  }
  const raw = (): number => {
    const path = join(dir, `r-${file++}.sqlite`)
    const ms = cpuMs(() => rawInsert(path, units, { pageSize: PAGE_SIZE }))
    rmSync(path, { force: true })
    return ms
  }

  writer()
  raw()
  const w: number[] = []
  const r: number[] = []
  for (let i = 0; i < rounds; i++) {
    // Alternate which goes first, so neither always follows the other's file deletion.
    if (i % 2 === 0) {
      w.push(writer())
      r.push(raw())
    } else {
      r.push(raw())
      w.push(writer())
    }
  }
  const ratios = w.map((v, i) => v / r[i]!)
  const value = (median(w) * 1e6) / n
  const floor = (median(r) * 1e6) / n
  emit({
    id: 'W1',
    name: `writer thread CPU per capture row (unpack + write), ${payloadBytes} B payloads`,
    unit: 'ns/capture',
    value,
    floor,
    floorName:
      'raw better-sqlite3 insert of the same rows from strings (same schema, pragmas, 256/tx), CPU time',
    ratio: median(ratios),
    target: '<= 1.15x floor (the writer own guard)',
    pass: median(ratios) <= 1.15,
    detail: {
      captures: n,
      rounds,
      pairedRatioP25P75: [round(quantile(ratios, 0.25), 3), round(quantile(ratios, 0.75), 3)],
    },
  })
}
