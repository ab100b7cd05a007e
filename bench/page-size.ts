/**
 * Does a 16 KiB page beat a 4 KiB page for bundle writes? (src/bundle/schema.ts claims
 * about 1.5x for 2 KB payload rows.) Inserts the same captures into the bundle schema with
 * each page size, WAL and synchronous NORMAL, in the recorder's batch size, interleaved,
 * and prints the throughput ratio 16 KiB / 4 KiB.
 *
 *     npx tsx bench/page-size.ts [--captures 20000] [--rounds 7]
 */
import { rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { emit, interleave, median, note, numberArg, quantile, round, tempDir } from './lib.js'
import { makePairs, type Payload } from './payloads.js'
import { makeUnits, rawInsert } from './raw-sqlite.js'

const captures = numberArg('captures', 20_000)
const rounds = numberArg('rounds', 7)
const stagesPerRecord = 4
const dir = tempDir('page-size')
let file = 0

/**
 * Row payload sizes (input + output text per capture row). A fixed size can land on a
 * packing accident (two 2.1 KB rows do not fit a 4 KiB page, so every 4 KiB page is half
 * empty), hence the mixed case too.
 */
const cases: { name: string; pairs: () => { input: Payload; output: Payload }[] }[] = [
  { name: '2 KB rows (1 KB input + 1 KB output)', pairs: () => makePairs(64, 1024) },
  { name: '4 KB rows (2 KB input + 2 KB output)', pairs: () => makePairs(64, 2048) },
  { name: '1 KB rows (0.5 KB input + 0.5 KB output)', pairs: () => makePairs(64, 512) },
  {
    name: 'mixed 0.6-4 KB rows',
    pairs: () => Array.from({ length: 64 }, (_, i) => makePairs(1, 256 + ((i * 997) % 1792), i + 7)[0]!),
  },
]

for (const c of cases) {
  const texts = c.pairs().map((p) => ({
    input: JSON.stringify(p.input),
    output: JSON.stringify(p.output),
  }))
  const rowBytes = texts.reduce((n, t) => n + t.input.length + t.output.length, 0) / texts.length
  const units = makeUnits(Math.ceil(captures / stagesPerRecord), stagesPerRecord, texts)
  const n = units.length * stagesPerRecord
  const sizes: Record<number, number> = {}
  const rate = (pageSize: number) => () => {
    const path = join(dir, `${file++}.sqlite`)
    const ms = rawInsert(path, units, { pageSize })
    sizes[pageSize] = statSync(path).size
    rmSync(path)
    return n / (ms / 1000)
  }
  rate(4096)()
  rate(16384)()
  const t = await interleave(rounds, { p4k: rate(4096), p16k: rate(16384) })
  const ratios = t.p16k.map((v, i) => v / t.p4k[i]!)
  const value = median(t.p16k)
  const floor = median(t.p4k)
  emit({
    id: 'page-size',
    name: c.name,
    unit: 'captures/s',
    value,
    floor,
    floorName: 'same inserts with page_size 4096',
    ratio: value / floor,
    target: 'schema.ts claims 16 KiB ~1.5x faster than 4 KiB',
    pass: null,
    detail: {
      rowBytes: Math.round(rowBytes),
      fileMB4k: round((sizes[4096] ?? 0) / 1e6, 3),
      fileMB16k: round((sizes[16384] ?? 0) / 1e6, 3),
      captures: n,
      rounds,
      pairedRatioP25: round(quantile(ratios, 0.25), 3),
      pairedRatioP75: round(quantile(ratios, 0.75), 3),
    },
  })
}
note('pragmas: journal_mode=WAL, synchronous=NORMAL, secure_delete=ON; 256 captures per transaction')
