/**
 * Issue 3: `retrace show` on one record of a 1 GB bundle starts printing in well under a
 * second (read here as < 500 ms to the first byte on stdout), as a ratio to bare
 * `node -e 0`.
 *
 * The bundle (bench/fixtures-bundle.ts) is generated once with raw better-sqlite3 into
 * the bundle schema and cached (`--bundle FILE`, else the bench cache folder); --gb sets
 * its size. The record shown is the one in the middle by start time. Interleaved rounds
 * of `node bin/run.js show BUNDLE ID` (time to the first stdout byte and to exit) and
 * `node -e 0` (to exit), run from a folder with no retrace config above it, page cache
 * warm (the bundle was just written or read).
 *
 * src/bundle/open.ts runs `quick_check` only on files up to 256 MiB, so a 1 GB bundle
 * skips it; `--checked-gb 0.24` (default; 0 to skip) adds an informational figure for a
 * bundle just under that limit, where the check reads the whole file before show prints.
 *
 *     npm run build && npx tsx bench/show-1gb.ts [--gb 1] [--checked-gb 0.24] [--rounds 15]
 *       [--bundle FILE] [--fresh] [--cache DIR]
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { type BigBundle, bigBundle } from './fixtures-bundle.js'
import { runJs, shebangFlags } from './fixtures-cli.js'
import { cacheRoot, freshRequested } from './fixtures-replay.js'
import { emit, interleave, median, note, numberArg, quantile, round, tempDir } from './lib.js'

const gb = numberArg('gb', 1)
const checkedGb = numberArg('checked-gb', 0.24)
const rounds = numberArg('rounds', 15)
const argv = process.argv.slice(2)
const explicit = argv.includes('--bundle') ? argv[argv.indexOf('--bundle') + 1] : undefined
const GiB = 1024 ** 3

const big = await bigBundle(
  explicit ?? join(cacheRoot(), `show-${gb}gb-v1.sqlite`),
  gb * GiB,
  freshRequested(),
)
const checked =
  checkedGb > 0
    ? await bigBundle(join(cacheRoot(), `show-${checkedGb}gb-v1.sqlite`), checkedGb * GiB, freshRequested())
    : undefined
// No retrace.config.* in this folder or above it, so show loads no config.
const cwd = tempDir('show')

/** Spawns node with `args`; resolves with ms to the first stdout byte and to exit. */
function run(args: string[]): Promise<{ first: number; exit: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    let first = Number.NaN
    let bytes = 0
    let stderr = ''
    const child = spawn(process.execPath, args, {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    })
    child.stdout.on('data', (chunk: Buffer) => {
      if (bytes === 0) first = performance.now() - t0
      bytes += chunk.length
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.on('error', reject)
    child.on('close', (code) => {
      const exit = performance.now() - t0
      if (code !== 0) reject(new Error(`node ${args.join(' ')} exited ${code}: ${stderr.slice(0, 500)}`))
      else resolve({ first: Number.isNaN(first) ? exit : first, exit, bytes })
    })
  })
}

const samples = { bigExit: [] as number[], checkedFirst: [] as number[], checkedExit: [] as number[] }
let printed = 0
function show(b: BigBundle, first: number[] | undefined, exit: number[]): () => Promise<number> {
  return async () => {
    const r = await run([...shebangFlags, runJs, 'show', b.path, b.middleId])
    if (r.bytes < 200) throw new Error(`show printed only ${r.bytes} bytes`)
    printed = r.bytes
    first?.push(r.first)
    exit.push(r.exit)
    return r.first
  }
}

note(
  `show: ${round(big.bytes / GiB, 3)} GiB bundle, ${big.records.toLocaleString('en-US')} records, record ${big.middleId}, ${rounds} rounds`,
)
const cases: Record<string, () => Promise<number>> = {
  show: show(big, undefined, samples.bigExit),
  floor: async () => (await run(['-e', '0'])).exit,
}
if (checked !== undefined) cases.checked = show(checked, samples.checkedFirst, samples.checkedExit)
for (const c of Object.values(cases)) await c()
for (const k of Object.keys(samples) as (keyof typeof samples)[]) samples[k].length = 0
const t = await interleave(rounds, cases)

const floor = median(t.floor!)
const first = median(t.show!)
const spread = (xs: number[]): number[] => [round(quantile(xs, 0.25)), round(quantile(xs, 0.75))]
emit({
  id: 'show',
  name: `\`retrace show\` one record of a ${round(big.bytes / GiB, 3)} GiB bundle: first stdout byte`,
  unit: 'ms',
  value: first,
  floor,
  floorName: 'node -e 0 (spawn to exit)',
  target: 'well under 1 s (< 500 ms) to first byte',
  pass: first < 500,
  detail: {
    bundleBytes: big.bytes,
    records: big.records,
    quickCheck: big.bytes <= 256 * 1024 ** 2,
    exitMs: round(median(samples.bigExit)),
    firstP25P75: spread(t.show!),
    floorP25P75: spread(t.floor!),
    stdoutBytes: printed,
    pairedRatioMedian: round(median(t.show!.map((x, i) => x / t.floor![i]!)), 3),
    generatedS: round(big.generatedS),
    rounds,
  },
})
if (checked !== undefined) {
  const v = median(t.checked!)
  emit({
    id: 'show.checked',
    name: `\`retrace show\` one record of a ${round(checked.bytes / 1024 ** 2, 3)} MiB bundle (under the 256 MiB quick_check limit): first stdout byte`,
    unit: 'ms',
    value: v,
    floor,
    floorName: 'node -e 0 (spawn to exit)',
    target: 'informational (same bar: < 500 ms)',
    pass: null,
    detail: {
      bundleBytes: checked.bytes,
      records: checked.records,
      exitMs: round(median(samples.checkedExit)),
      firstP25P75: spread(t.checked!),
      under500: v < 500,
    },
  })
}
