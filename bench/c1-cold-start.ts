/**
 * C1: `retrace --version` and `retrace --help` within 1.3x of bare `node -e 0`.
 *
 * Wall time of spawnSync, from spawn to exit, of `node bin/run.js --version`,
 * `node bin/run.js --help` and `node -e 0`, interleaved (the order rotates every round),
 * medians over many rounds. `node bin/run.js ls <small bundle>` (the full oclif path:
 * oclif, the command module, better-sqlite3, the hardened open) is reported alongside as
 * an informational figure against the same floor.
 *
 *     npm run build && npx tsx bench/c1-cold-start.ts [--rounds 40] [--bundle FILE]
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot, runJs, runNode, shebangFlags } from './fixtures-cli.js'
import { replayFixture } from './fixtures-replay.js'
import { emit, interleave, median, note, numberArg, quantile, round } from './lib.js'

const rounds = numberArg('rounds', 40)
const argv = process.argv.slice(2)
const bundleArg = argv[argv.indexOf('--bundle') + 1]
const shipped = join(repoRoot, 'recordings/inventory.sqlite')
const bundle =
  argv.includes('--bundle') && bundleArg !== undefined
    ? bundleArg
    : existsSync(shipped)
      ? shipped
      : (await replayFixture(200)).bundle

function timed(args: string[], expectOut: RegExp): () => number {
  return () => {
    const r = runNode(args, { keepStdout: true })
    if (r.status !== 0 || !expectOut.test(r.stdout)) {
      throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(0, 500)}`)
    }
    return r.ms
  }
}

const cases = {
  floor: timed(['-e', '0'], /^$/),
  version: timed([...shebangFlags, runJs, '--version'], /^retrace\/\d/),
  help: timed([...shebangFlags, runJs, '--help'], /COMMANDS/),
  ls: timed([...shebangFlags, runJs, 'ls', bundle, '--limit', '5'], /\S/),
}
note(`C1: ${rounds} rounds of node -e 0, --version, --help and ls ${bundle}`)
// Warm the page cache and the compile cache once before timing.
for (const c of Object.values(cases)) c()
const t = await interleave(rounds, cases)
const floor = median(t.floor)
const spread = (xs: number[]): number[] => [round(quantile(xs, 0.25)), round(quantile(xs, 0.75))]
const paired = (xs: number[]): number => median(xs.map((x, i) => x / t.floor[i]!))

for (const [key, label] of [
  ['version', '`retrace --version`'],
  ['help', '`retrace --help`'],
] as const) {
  const value = median(t[key])
  emit({
    id: 'C1',
    name: `${label} cold start (spawn to exit)`,
    unit: 'ms',
    value,
    floor,
    floorName: 'node -e 0',
    target: '<= 1.3x floor',
    pass: value <= 1.3 * floor,
    detail: {
      rounds,
      valueP25P75: spread(t[key]),
      floorP25P75: spread(t.floor),
      pairedRatioMedian: round(paired(t[key]), 3),
    },
  })
}
const ls = median(t.ls)
emit({
  id: 'C1.ls',
  name: '`retrace ls <small bundle> --limit 5` (full oclif path), spawn to exit',
  unit: 'ms',
  value: ls,
  floor,
  floorName: 'node -e 0',
  target: 'informational',
  pass: null,
  detail: {
    bundle: bundle.startsWith(repoRoot) ? bundle.slice(repoRoot.length + 1) : bundle,
    rounds,
    valueP25P75: spread(t.ls),
    pairedRatioMedian: round(paired(t.ls), 3),
  },
})
