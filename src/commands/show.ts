import { BundleSet } from '../bundle/index.js'
import { positionals } from '../cli/argv.js'
import { RetraceCommand } from '../cli/base-command.js'
import { atMost, splitBundleWords } from '../cli/bundles.js'
import { bundlesArg, configFlag, keyFlag } from '../cli/flags.js'
import { Args, Flags } from '../cli/oclif.js'
import { recordedChain } from '../compare/chain.js'
import { compileInvariants, type InvariantResult, runInvariants } from '../compare/invariants.js'
import { buildScene, type Scene } from '../compare/scene.js'
import { UsageError } from '../errors.js'
import { renderInvariants, renderShow } from '../render/show.js'
import { findConfig, loadConfig } from '../replay/config.js'

export default class Show extends RetraceCommand<typeof Show> {
  static override args = {
    bundle: bundlesArg,
    record: Args.string({ description: 'Record id or a unique prefix of one.' }),
  }
  static override description =
    `The recorded scene, stage by stage: input and output of each stage, what each stage changed, the effects it saw (clock, random, KV/DB/HTTP reads), retries with their errors, durations, builds, and seams where a stage's recorded output is not the recorded input of the stage it handed it to (stages called inside or beside another, or once per item, are handed nothing: docs/bundle-format.md, "Hand-offs").

Name the record by id (or unique prefix), or use --key for the latest record of a key. Several bundles (files, or a folder for every bundle under it) are read as one: a record continued in another process is shown whole, its parts in the order they ran.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> recordings/inventory.sqlite --key sku:1001',
    '<%= config.bin %> <%= command.id %> recordings/inventory.sqlite 01KJPWGBP --expand',
  ]
  static override flags = {
    config: configFlag,
    expand: Flags.boolean({
      char: 'e',
      description: 'Print payloads in full, pretty-printed, instead of folded.',
    }),
    key: keyFlag,
    width: Flags.integer({ default: 120, description: 'Characters a folded payload may take.', min: 20 }),
  }
  static override strict = false
  static override summary = 'Show what one record went through in production.'

  async run(): Promise<Scene & { invariants?: InvariantResult[] }> {
    const { bundles, rest } = splitBundleWords(
      positionals(this.argv, ['--config', '-c', '--key', '-k', '--width']),
    )
    const [record] = atMost(rest, 1)
    const { key } = this.flags
    if ((record === undefined) === (key === undefined)) {
      throw new UsageError(
        `name a record: give a RECORD id (or prefix) or --key KEY${record !== undefined && key !== undefined ? ', not both' : ''}`,
      )
    }
    const set = BundleSet.open(bundles)
    try {
      const id = key !== undefined ? set.latestRecordIdForKey(key) : set.resolveRecordId(record!)
      const chain = set.loadRecord(id)
      const config =
        this.flags.config !== undefined || findConfig(process.cwd()) !== undefined
          ? await loadConfig(this.flags.config, process.cwd())
          : undefined
      const scene: Scene & { invariants?: InvariantResult[] } = buildScene(chain, config?.rules)
      const invariants = compileInvariants(config?.config.invariants)
      if (invariants.length > 0) scene.invariants = runInvariants(invariants, recordedChain(chain))
      if (!this.jsonEnabled()) {
        this.log(renderShow(scene, this.theme, { expand: this.flags.expand, width: this.flags.width }))
        if (scene.invariants) this.log(renderInvariants(scene.invariants, this.theme))
      }
      return scene
    } finally {
      set.close()
    }
  }
}
