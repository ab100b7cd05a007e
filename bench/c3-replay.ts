/**
 * C3: replaying 10,000 records x 6 stages with 2 KB payloads and no divergence:
 * >= 5,000 records/s, and <= 1.3x the cost of just parsing and re-serialising those payloads.
 * C6: peak RSS flat in the number of records.
 *
 * Fixture (bench/fixtures-replay.ts): records recorded through the real recorder from a
 * six-stage module whose stages use ctx.now() and ctx.effect(); the replay config points
 * at the same module, so every record matches.
 *
 * Measured, interleaved, medians over rounds:
 * - in-process: replaySelection() from dist/ over every record (config, stages and the
 *   bundle already open: no start-up), every result discarded;
 * - CLI: `node bin/run.js replay BUNDLE --config CFG --json > /dev/null`, wall time from
 *   spawn to exit (node start, oclif, config load, bundle open included);
 * - the same with `--workers 2` (the CLI and one worker process, both cores), with the peak
 *   RSS of both processes summed (C6 for it: N against --small records);
 * - floor: in the same process, every capture's input and output text read from the bundle
 *   with better-sqlite3 (one scan) and put through JSON.parse + JSON.stringify.
 * C6 is the peak RSS (GNU time %M) of the CLI run on N records against the same run on
 * --small records, and on --large records (in the first --large-rounds rounds; 0 to skip),
 * from the same rounds. With --expose-gc, one more in-process pass reads the heap in use
 * after a full GC as the records go by (detail `heapAfterGcMiB`): retained memory, as
 * opposed to the heap V8 grows to while allocating.
 *
 *     npm run build && node --expose-gc --import tsx bench/c3-replay.ts [--records 10000]
 *       [--small 1000] [--large 30000] [--large-rounds 1] [--rounds 4] [--fresh] [--cache DIR]
 */
import { performance } from 'node:perf_hooks'
import { BundleSet } from '../dist/bundle/index.js'
import { loadConfig, loadStages } from '../dist/replay/config.js'
import type { ReplayOptions } from '../dist/replay/engine.js'
import { engineOptions, replaySelection } from '../dist/replay/run.js'
import { canMeasureRss, canMeasureTreeRss, retrace, retraceTree } from './fixtures-cli.js'
import { PARSE_FLOOR, parseFloor, type ReplayFixture, replayFixture, STAGES } from './fixtures-replay.js'
import { emit, interleave, median, note, numberArg, quantile, round } from './lib.js'

const records = numberArg('records', 10_000)
const small = numberArg('small', 1_000)
const large = numberArg('large', 30_000)
const rounds = numberArg('rounds', 4)
const largeRounds = Math.min(rounds, numberArg('large-rounds', 1))

const fx = await replayFixture(records)
const fxSmall = await replayFixture(small)
const fxLarge = large > 0 ? await replayFixture(large) : undefined

const config = await loadConfig(fx.config, fx.dir)
const engine: ReplayOptions = engineOptions(config, await loadStages(config), {
  mode: 'cascade',
  splice: [],
  allowNet: false,
  timeoutMs: 10_000,
})

const openMs: number[] = []
async function inProcess(f: ReplayFixture): Promise<number> {
  const o0 = performance.now()
  const set = BundleSet.open([f.bundle])
  const t0 = performance.now()
  openMs.push(t0 - o0)
  try {
    let n = 0
    const { summary } = await replaySelection(set, {}, engine, () => {
      n++
    })
    const ms = performance.now() - t0
    if (summary.matched !== f.records || n !== f.records) {
      throw new Error(`replay did not match every record: ${JSON.stringify(summary)}`)
    }
    return ms
  } finally {
    set.close()
  }
}

const rss: Record<'n' | 'small' | 'large' | 'workers' | 'workersSmall', number[]> = {
  n: [],
  small: [],
  large: [],
  workers: [],
  workersSmall: [],
}
const largeMs: number[] = []
function cli(f: ReplayFixture, into: number[]): number {
  const r = retrace(['replay', f.bundle, '--config', f.config, '--json'], { cwd: f.dir, rss: true })
  into.push(r.rssMiB)
  return r.ms
}

/** `retrace replay --json --workers 2`: wall time, and the peak RSS of the CLI and its worker summed. */
async function cliWorkers(f: ReplayFixture, into: number[]): Promise<number> {
  const r = await retraceTree(['replay', f.bundle, '--config', f.config, '--json', '--workers', '2'], {
    cwd: f.dir,
  })
  into.push(r.rssMiB)
  return r.ms
}

/** Heap in use after a full GC, sampled five times during one in-process replay. */
async function retainedHeap(f: ReplayFixture): Promise<number[] | undefined> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) return undefined
  const set = BundleSet.open([f.bundle])
  const out: number[] = []
  let n = 0
  try {
    await replaySelection(set, {}, engine, () => {
      if (++n % Math.ceil(f.records / 5) === 0) {
        gc()
        out.push(round(process.memoryUsage().heapUsed / 1024 ** 2))
      }
    })
  } finally {
    set.close()
  }
  return out
}

let floorBytes = 0
note(
  `C3/C6: ${records.toLocaleString('en-US')} records (${(fx.bytes / 1024 ** 2).toFixed(0)} MiB) x ${STAGES.length} stages, ${rounds} rounds`,
)
// Warm-up: JIT, page cache, the URI probe.
await inProcess(fx)
parseFloor(fx.bundle)
const cases = {
  inProcess: () => inProcess(fx),
  floor: () => {
    const r = parseFloor(fx.bundle)
    floorBytes = r.bytes
    return r.ms
  },
  cli: () => cli(fx, rss.n),
  cliSmall: () => cli(fxSmall, rss.small),
  cliWorkers: () => cliWorkers(fx, rss.workers),
  cliWorkersSmall: () => cliWorkers(fxSmall, rss.workersSmall),
  ...(fxLarge !== undefined
    ? {
        cliLarge: () => {
          if (largeMs.length >= largeRounds) return Number.NaN
          largeMs.push(cli(fxLarge, rss.large))
          return largeMs.at(-1)!
        },
      }
    : {}),
} as Record<string, () => number | Promise<number>>
const t = await interleave(rounds, cases)

const floorMs = median(t.floor!)
const spread = (xs: number[]): number[] => [round(quantile(xs, 0.25)), round(quantile(xs, 0.75))]
const paired = (xs: number[]): number => median(xs.map((x, i) => x / t.floor![i]!))
const common = {
  records,
  stages: STAGES.length,
  bundleMiB: round(fx.bytes / 1024 ** 2),
  payloadMiBParsed: round(floorBytes / 1024 ** 2),
  rounds,
}
const floorName = PARSE_FLOOR
const label = `${records.toLocaleString('en-US')} records x ${STAGES.length} stages x 2 KB, no divergence`

/** C3 for one way of replaying: its time against the floor, and its throughput. */
function c3(what: string, xs: number[], detail: Record<string, unknown> = {}): void {
  const ms = median(xs)
  emit({
    id: 'C3',
    name: `${what}: ${what.includes('in-process') ? 'time' : 'wall time (start-up included)'}`,
    unit: 'ms',
    value: ms,
    floor: floorMs,
    floorName,
    target: '<= 1.3x floor',
    pass: ms <= 1.3 * floorMs,
    detail: { ...common, pairedRatioMedian: round(paired(xs), 3), valueP25P75: spread(xs), ...detail },
  })
  emit({
    id: 'C3',
    name: `${what}: throughput`,
    unit: 'records/s',
    value: records / (ms / 1000),
    floor: records / (floorMs / 1000),
    floorName,
    target: '>= 5,000 records/s',
    pass: records / (ms / 1000) >= 5000,
  })
}

c3(`replay ${label}, in-process (replaySelection, no start-up)`, t.inProcess!, {
  floorP25P75: spread(t.floor!),
  bundleOpenMs: round(median(openMs)),
})
c3(`\`retrace replay --json > /dev/null\`, ${label}`, t.cli!)
c3(`\`retrace replay --json --workers 2 > /dev/null\`, ${label}`, t.cliWorkers!)

/** C6: the peak RSS of a run on `n` records against the same run on `fewer`, flat in N. */
function flatRss(
  what: string,
  at: { n: number; xs: number[] },
  than: { n: number; xs: number[] },
  detail: Record<string, unknown>,
): void {
  const value = median(at.xs)
  const floor = median(than.xs)
  emit({
    id: 'C6',
    name: `peak RSS of ${what}, ${at.n.toLocaleString('en-US')} vs ${than.n.toLocaleString('en-US')} records`,
    unit: 'MiB',
    value,
    floor,
    floorName: `the same run on ${than.n.toLocaleString('en-US')} records`,
    target: '<= 1.2x floor (flat in N)',
    pass: value <= 1.2 * floor,
    detail: { rssN: at.xs.map((x) => round(x)), rssFewer: than.xs.map((x) => round(x)), rounds, ...detail },
  })
}

if (canMeasureTreeRss) {
  flatRss(
    '`retrace replay --json --workers 2` (CLI + worker process)',
    { n: records, xs: rss.workers },
    { n: small, xs: rss.workersSmall },
    {},
  )
}

const heapAfterGcMiB = await retainedHeap(fx)
if (canMeasureRss) {
  flatRss(
    '`retrace replay --json`',
    { n: records, xs: rss.n },
    { n: small, xs: rss.small },
    heapAfterGcMiB !== undefined ? { heapAfterGcMiB } : {},
  )
  if (fxLarge !== undefined) {
    flatRss(
      '`retrace replay --json`',
      { n: large, xs: rss.large },
      { n: records, xs: rss.n },
      {
        vsSmallRatio: round(median(rss.large) / median(rss.small), 3),
        largeMs: round(median(largeMs)),
        largeRecordsPerS: round(large / (median(largeMs) / 1000)),
        largeBundleMiB: round(fxLarge.bytes / 1024 ** 2),
      },
    )
  }
} else note('C6 skipped: /usr/bin/time (GNU time) is not installed')
