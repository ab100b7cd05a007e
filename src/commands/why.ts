import { BundleSet } from '../bundle/index.js'
import { positionals } from '../cli/argv.js'
import { RetraceCommand } from '../cli/base-command.js'
import { atMost, splitBundleWords } from '../cli/bundles.js'
import { bundlesArg, configFlag, keyFlag } from '../cli/flags.js'
import { Args } from '../cli/oclif.js'
import { recordedChain } from '../compare/chain.js'
import { compileInvariants, runInvariants } from '../compare/invariants.js'
import { changeStagePath, explain, parseStagePath, type WhyReport } from '../compare/why.js'
import { UsageError } from '../errors.js'
import { renderWhy } from '../render/why.js'
import { findConfig, loadConfig, loadStages } from '../replay/config.js'
import { replayRecord } from '../replay/engine.js'
import { engineOptions } from '../replay/run.js'

export default class Why extends RetraceCommand<typeof Why> {
  static override args = {
    bundle: bundlesArg,
    record: Args.string({ description: 'Record id or unique prefix (or use --key).' }),
    path: Args.string({
      description:
        'The value to explain: <stage>[.input|.output].<path>, e.g. compute.output.available; a stage whose name holds a dot or a space in double quotes ("orders.parse".qty).',
    }),
  }
  static override description =
    `Walks back from a value in a stage's output to the stage that produced or last changed it, and lists the evidence: what its input held, what its effects returned and which recorded numbers (BigInts and dates too) add up to it, the retry or fallback path it took, and seams where it changed in transit.

Without PATH: the first invariant the record violates (config invariants), else the first change of its first divergence (needs the config's stages to replay).

Several bundles (files, or a folder for every bundle under it) are read as one: a record continued in another process is explained whole, across the seam between the processes.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> recordings/inventory.sqlite --key sku:1001 store.output.available',
    '<%= config.bin %> <%= command.id %> recordings/inventory.sqlite 01KJPWGBP --config examples/inventory/retrace.config.ts',
  ]
  static override flags = { config: configFlag, key: keyFlag }
  static override strict = false
  static override summary = 'Explain where a value came from.'

  async run(): Promise<WhyReport> {
    const { bundles, rest } = splitBundleWords(positionals(this.argv, ['--config', '-c', '--key', '-k']))
    let [record, path] = atMost(rest, 2)
    const { key } = this.flags
    if (key !== undefined && record !== undefined && path === undefined && /\./.test(record)) {
      path = record
      record = undefined
    }
    if ((record === undefined) === (key === undefined))
      throw new UsageError('name a record: RECORD or --key KEY')
    const set = BundleSet.open(bundles)
    try {
      const id = key !== undefined ? set.latestRecordIdForKey(key) : set.resolveRecordId(record!)
      const chain = set.loadRecord(id)
      const target = path !== undefined ? parseStagePath(path) : parseStagePath(await this.defaultPath(chain))
      const report = explain(chain, target)
      if (!this.jsonEnabled()) this.log(renderWhy(report, this.theme))
      return report
    } finally {
      set.close()
    }
  }

  private async defaultPath(chain: Parameters<typeof recordedChain>[0]): Promise<string> {
    if (this.flags.config === undefined && findConfig(process.cwd()) === undefined) {
      throw new UsageError(
        'name the value to explain (e.g. compute.output.available), or pass --config so retrace can find the first violation or divergence',
      )
    }
    const config = await loadConfig(this.flags.config, process.cwd())
    const invariants = compileInvariants(config.config.invariants)
    const results = runInvariants(invariants, recordedChain(chain))
    // The first violated expression that names a stage path; a function names none.
    for (const [i, r] of results.entries()) {
      if (r.status !== 'violated') continue
      const first =
        /[\p{L}_][\p{L}\p{M}\p{Nd}\p{Pc}-]*\.(?:input|output)(?:\.[\p{L}_$][\p{L}\p{M}\p{Nd}\p{Pc}$]*|\[\d+\])+/u.exec(
          invariants[i]!.source,
        )
      if (first !== null) return first[0]
    }
    const violated = results.find((r) => r.status === 'violated')
    const result = await replayRecord(
      chain,
      engineOptions(config, await loadStages(config), {
        mode: 'cascade',
        splice: [],
        allowNet: false,
        timeoutMs: 10_000,
      }),
    )
    const stage = result.stages.find((s) => s.stage === result.firstDivergence?.stage)
    const change = stage?.changes.find((c) => c.path.startsWith('$'))
    if (stage === undefined || change === undefined)
      throw new UsageError(
        violated !== undefined
          ? `the record violates ${JSON.stringify(violated.name)}, which names no stage path, and replays cleanly: name the value to explain`
          : 'the record violates no invariant and replays cleanly: name the value to explain',
      )
    return changeStagePath(chain, stage.stage, change.path)
  }
}
