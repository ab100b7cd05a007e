/**
 * The young generation of replay worker processes (src/replay/heap.ts, workerNodeFlags):
 * replaying 5,000 records of the C3 fixture in one process, with the node flags a worker
 * gets, against the heap the CLI keeps (V8's starting 1 MiB semi-spaces, held there) and
 * against 2 and 8 MiB. Each case runs in a fresh child process (bench/replay-child.ts),
 * interleaved; the figure is the median replay time, start-up excluded.
 *
 *     npm run build && npx tsx bench/worker-heap.ts [--records 5000] [--rounds 8]
 */
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { workerNodeFlags } from '../dist/replay/heap.js'
import { replayFixture } from './fixtures-replay.js'
import { emit, interleave, median, note, numberArg, quantile, round } from './lib.js'

const records = numberArg('records', 5_000)
const rounds = numberArg('rounds', 8)
const fx = await replayFixture(10_000)
const child = join(dirname(fileURLToPath(import.meta.url)), 'replay-child.ts')
// Resolved here: the child runs in the fixture's folder, which has no node_modules.
const tsx = import.meta.resolve('tsx')

function replay(flags: readonly string[]): number {
  const r = spawnSync(
    process.execPath,
    [...flags, '--import', tsx, child, fx.bundle, fx.config, String(records)],
    { cwd: fx.dir, encoding: 'utf8' },
  )
  if (r.status !== 0) throw new Error(`replay-child exited ${r.status}: ${r.stderr.slice(0, 1000)}`)
  return Number(r.stdout.trim())
}

const semi = (mib: number): string[] => [`--min-semi-space-size=${mib}`, `--max-semi-space-size=${mib}`]
note(`worker heap: ${records.toLocaleString('en-US')} records x 6 stages in one process, ${rounds} rounds`)
const t = await interleave(rounds, {
  start: () => replay([]),
  semi2: () => replay(semi(2)),
  worker: () => replay(workerNodeFlags),
  semi8: () => replay(semi(8)),
})
const spread = (xs: number[]): number[] => [round(quantile(xs, 0.25)), round(quantile(xs, 0.75))]
const value = median(t.worker)
const floor = median(t.start)
emit({
  id: 'worker-heap',
  name: `replay of ${records.toLocaleString('en-US')} records in one process with the worker's node flags (${workerNodeFlags.join(' ')})`,
  unit: 'ms',
  value,
  floor,
  floorName: "the same with V8's starting semi-spaces, held (as the CLI runs)",
  target: 'informational: below 1 justifies the flags',
  pass: null,
  detail: {
    semi2Ms: round(median(t.semi2)),
    semi8Ms: round(median(t.semi8)),
    workerP25P75: spread(t.worker),
    startP25P75: spread(t.start),
    rounds,
  },
})
