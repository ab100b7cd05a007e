import { performance } from 'node:perf_hooks'
import { BundleSet } from '../dist/bundle/index.js'
import { loadConfig, loadStages } from '../dist/replay/config.js'
import { engineOptions, replaySelection } from '../dist/replay/run.js'
const dir = process.argv[2]
const config = await loadConfig(`${dir}/retrace.config.mjs`, dir)
const engine = engineOptions(config, await loadStages(config), { mode: 'cascade', splice: [], allowNet: false, timeoutMs: 10000 })
for (let r = 0; r < Number(process.argv[3] ?? 3); r++) {
  const set = BundleSet.open([`${dir}/bundle-10000.sqlite`])
  const t0 = performance.now()
  let n = 0
  const { summary } = await replaySelection(set, {}, engine, () => { n++ })
  const ms = performance.now() - t0
  console.log(n, summary.matched, ms.toFixed(0), 'ms', (n / ms * 1000).toFixed(0), 'rec/s')
  set.close()
}
