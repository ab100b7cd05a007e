/**
 * `retrace test` over 10,000 records: >= 5,000 records/s with --workers using both cores
 * of this 2-core machine, peak RSS flat in N (issue 5), as a ratio to the replay floor.
 *
 * The same fixture as C3 (bench/fixtures-replay.ts: 6 stages, 2 KB payloads, every record
 * matches). Interleaved rounds of:
 * - `node bin/run.js test BUNDLE --config CFG --workers 2` (the figure) and `--workers 1`,
 *   wall time from spawn to exit, peak RSS summed over the CLI and its worker process
 *   (sampled from /proc every 5 ms);
 * - the same `--workers 2` run on --small records, for RSS flatness;
 * - the replay floor in this process: every capture's input and output text read from the
 *   bundle and put through JSON.parse + JSON.stringify.
 *
 *     npm run build && npx tsx bench/test-workers.ts [--records 10000] [--small 1000]
 *       [--rounds 3] [--fresh] [--cache DIR]
 */
import { canMeasureTreeRss, retraceTree } from './fixtures-cli.js'
import { PARSE_FLOOR, parseFloor, type ReplayFixture, replayFixture, STAGES } from './fixtures-replay.js'
import { emit, interleave, median, note, numberArg, quantile, round } from './lib.js'

const records = numberArg('records', 10_000)
const small = numberArg('small', 1_000)
const rounds = numberArg('rounds', 3)

const fx = await replayFixture(records)
const fxSmall = await replayFixture(small)

const rss: Record<'w2' | 'w1' | 'small', number[]> = { w2: [], w1: [], small: [] }
async function test(f: ReplayFixture, workers: number, into: number[]): Promise<number> {
  const r = await retraceTree(['test', f.bundle, '--config', f.config, '--workers', String(workers)], {
    cwd: f.dir,
    keepStdout: true,
  })
  if (!new RegExp(`\\b${f.records}\\b`).test(r.stdout.replaceAll(',', ''))) {
    throw new Error(`retrace test did not report ${f.records} records: ${r.stdout.slice(0, 500)}`)
  }
  into.push(r.rssMiB)
  return r.ms
}

note(
  `test: ${records.toLocaleString('en-US')} records (${(fx.bytes / 1024 ** 2).toFixed(0)} MiB) x ${STAGES.length} stages, ${rounds} rounds`,
)
parseFloor(fx.bundle)
const t = await interleave(rounds, {
  w2: () => test(fx, 2, rss.w2),
  w1: () => test(fx, 1, rss.w1),
  small: () => test(fxSmall, 2, rss.small),
  floor: () => parseFloor(fx.bundle).ms,
})

const floorMs = median(t.floor)
const spread = (xs: number[]): number[] => [round(quantile(xs, 0.25)), round(quantile(xs, 0.75))]
const rps = (ms: number): number => records / (ms / 1000)
const label = `${records.toLocaleString('en-US')} records x ${STAGES.length} stages x 2 KB, all pass`
const floorRps = rps(floorMs)

for (const [key, workers] of [
  ['w2', 2],
  ['w1', 1],
] as const) {
  const ms = median(t[key])
  emit({
    id: workers === 2 ? 'test' : 'test.w1',
    name: `\`retrace test --workers ${workers}\`, ${label}: throughput (start-up included)`,
    unit: 'records/s',
    value: rps(ms),
    floor: floorRps,
    floorName: `replay floor: ${PARSE_FLOOR}`,
    target: workers === 2 ? '>= 5,000 records/s' : 'informational (one worker)',
    pass: workers === 2 ? rps(ms) >= 5000 : null,
    detail: {
      wallMs: round(ms),
      wallP25P75: spread(t[key]),
      floorMs: round(floorMs),
      timeVsFloor: round(ms / floorMs, 3),
      rounds,
    },
  })
}
if (canMeasureTreeRss) {
  const big = median(rss.w2)
  const little = median(rss.small)
  emit({
    id: 'test.rss',
    name: `peak RSS of \`retrace test --workers 2\` (CLI + worker process), ${records.toLocaleString('en-US')} vs ${small.toLocaleString('en-US')} records`,
    unit: 'MiB',
    value: big,
    floor: little,
    floorName: `the same run on ${small.toLocaleString('en-US')} records`,
    target: '<= 1.2x floor (flat in N)',
    pass: big <= 1.2 * little,
    detail: {
      rssW2: rss.w2.map((x) => round(x)),
      rssSmall: rss.small.map((x) => round(x)),
      rssW1: rss.w1.map((x) => round(x)),
    },
  })
} else note('RSS skipped: no /proc to sum the process tree from')
