import { performance } from 'node:perf_hooks'
import { BundleSet } from '../dist/bundle/index.js'
import { loadConfig, loadStages } from '../dist/replay/config.js'
import { engineOptions, replaySelection } from '../dist/replay/run.js'
import { keepYoungGenerationSmall } from '../dist/replay/heap.js'
if (process.argv.includes('--small-young')) keepYoungGenerationSmall()
const dir = process.argv[2]
const config = await loadConfig(`${dir}/retrace.config.mjs`, dir)
const engine = engineOptions(config, await loadStages(config), { mode: 'cascade', splice: [], allowNet: false, timeoutMs: 10000 })
for (const b of process.argv[3].split(',')) {
  const set = BundleSet.open([`${dir}/bundle-${b}.sqlite`])
  const t0 = performance.now()
  let n = 0, last = t0
  const marks = []
  await replaySelection(set, {}, engine, () => { if (++n % 1000 === 0) { const t = performance.now(); marks.push((t - last).toFixed(0)); last = t } })
  console.log(b, (performance.now() - t0).toFixed(0), 'ms; per 1000:', marks.join(' '))
  set.close()
}
