/**
 * Child process of bench/worker-heap.ts: replays the first N records of a bundle in
 * process, as a replay worker does (same engine, same heap setting at start), and prints
 * the milliseconds the replay took (start-up excluded).
 *
 *     node [node flags] --import tsx bench/replay-child.ts BUNDLE CONFIG N
 */
import { performance } from 'node:perf_hooks'
import { BundleSet } from '../dist/bundle/index.js'
import { loadConfig, loadStages } from '../dist/replay/config.js'
import { replayRecord } from '../dist/replay/engine.js'
import { keepYoungGenerationSmall } from '../dist/replay/heap.js'
import { engineOptions } from '../dist/replay/run.js'

const [bundle, configPath, count] = process.argv.slice(2)
if (bundle === undefined || configPath === undefined) throw new Error('usage: replay-child BUNDLE CONFIG N')
keepYoungGenerationSmall()
const config = await loadConfig(configPath, process.cwd())
const engine = engineOptions(config, await loadStages(config), {
  mode: 'cascade',
  splice: [],
  allowNet: false,
  timeoutMs: 10_000,
})
const set = BundleSet.open([bundle])
const ids = [...set.readers[0]!.recordIds()].slice(0, Number(count ?? 5000))
const t0 = performance.now()
let matched = 0
for (let i = 0; i < ids.length; i += 16) {
  for (const chain of set.loadRecords(ids.slice(i, i + 16))) {
    if ((await replayRecord(chain, engine)).verdict === 'matched') matched++
  }
}
const ms = performance.now() - t0
set.close()
if (matched !== ids.length) throw new Error(`only ${matched} of ${ids.length} records matched`)
process.stdout.write(`${ms}\n`)
