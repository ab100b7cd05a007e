import { spawn } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, isAbsolute, join, relative, resolve } from 'node:path'
import { BundleSet, type RecordChain } from '../bundle/index.js'
import { positionals } from '../cli/argv.js'
import { RetraceCommand } from '../cli/base-command.js'
import { atMost, splitBundleWords } from '../cli/bundles.js'
import { bundlesArg, configFlag, keyFlag } from '../cli/flags.js'
import { Args, Flags } from '../cli/oclif.js'
import { prepareOutput, refuseBundleOutput, writeOutput } from '../cli/output.js'
import { recordedChain, replayedChain } from '../compare/chain.js'
import { handoffs } from '../compare/handoff.js'
import { compileInvariants, runInvariants } from '../compare/invariants.js'
import { buildScene } from '../compare/scene.js'
import { UsageError } from '../errors.js'
import { type ReportModel, renderHtmlReport } from '../render/html.js'
import { findConfig, loadConfig, loadStages } from '../replay/config.js'
import { replayRecord } from '../replay/engine.js'
import { engineOptions } from '../replay/run.js'
import { version } from '../version.js'

export interface ReportResult {
  /** Absolute path of the HTML file written. */
  path: string
  recordId: string
}

export default class Report extends RetraceCommand<typeof Report> {
  static override args = {
    bundle: bundlesArg,
    record: Args.string({ description: 'Record id or a unique prefix of one.' }),
  }
  static override description =
    `Writes the scene of one record as one self-contained HTML file to attach to a bug report: the stage timeline with retries, each stage's input, output and effects (folded), the seams, and, when a config is given or found, the replay through the local build (the first divergence and every structural difference) and the config's invariants on the recorded and the replayed chain. The page loads nothing from the network.

Name the record by id (or unique prefix), or use --key for the latest record of a key. Several bundles (files, or a folder for every bundle under it) are read as one: a record continued in another process is reported whole. Exit codes: 0 the report shows no divergence and no violated invariant, 1 it shows one, 2 usage or input error, 3 the config or a stage module could not be loaded.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> recordings/inventory.sqlite --key sku:1001 --config examples/inventory/retrace.config.ts',
    '<%= config.bin %> <%= command.id %> prod.sqlite 01JD3Q -o bug-4711.html --open',
  ]
  static override flags = {
    config: configFlag,
    key: keyFlag,
    open: Flags.boolean({ description: 'Open the report in the default browser (best effort).' }),
    output: Flags.string({
      char: 'o',
      description:
        'File to write, or a folder to write retrace-report-<record>.html in (default: here); missing folders are made.',
    }),
  }
  static override strict = false
  static override summary = "Write one record's scene as a self-contained HTML report."

  async run(): Promise<ReportResult> {
    const { bundles, named, rest } = splitBundleWords(
      positionals(this.argv, ['--config', '-c', '--key', '-k', '--output', '-o']),
    )
    const [record] = atMost(rest, 1)
    const { key } = this.flags
    if ((record === undefined) === (key === undefined)) {
      throw new UsageError(
        `name a record: give a RECORD id (or prefix) or --key KEY${record !== undefined && key !== undefined ? ', not both' : ''}`,
      )
    }
    const set = BundleSet.open(bundles)
    let model: ReportModel
    let path: string
    try {
      const id = key !== undefined ? set.latestRecordIdForKey(key) : set.resolveRecordId(record!)
      // Before the replay: a file that cannot be written fails now.
      const output = prepareOutput(this.flags.output ?? '.', () => defaultName(id))
      refuseBundleOutput(output.path, output.shown, set.paths)
      path = output.path
      model = await gatherReport(set.loadRecord(id), named.join(', '), this.flags.config)
    } finally {
      set.close()
    }
    const recordId = model.scene.recordId
    writeOutput(path, renderHtmlReport(model))
    const inv = model.invariants
    this.found(
      (model.replay !== undefined && model.replay.verdict !== 'matched') ||
        [...(inv?.recorded ?? []), ...(inv?.local ?? [])].some((r) => r.status === 'violated'),
    )
    if (!this.jsonEnabled()) this.log(`wrote ${shortPath(path)}`)
    if (this.flags.open && !openFile(path))
      this.note('retrace: no xdg-open or open on PATH; open the file yourself')
    return { path, recordId }
  }
}

/**
 * The report's data: the recorded scene and, when a config is given or found upward from
 * here, the replay (cascade) and the invariants on both chains. Without a config the
 * report is the recorded scene alone.
 */
async function gatherReport(
  chain: RecordChain,
  bundle: string,
  explicit: string | undefined,
): Promise<ReportModel> {
  const configPath = explicit ?? findConfig(process.cwd())
  const base = { bundle, generatedAt: Date.now(), version }
  if (configPath === undefined) return { ...base, scene: buildScene(chain) }
  const config = await loadConfig(configPath, process.cwd())
  const invariants = compileInvariants(config.config.invariants)
  const stages = await loadStages(config)
  const scene = buildScene(chain, config.rules)
  const options = engineOptions(config, stages, {
    mode: 'cascade',
    splice: [],
    allowNet: false,
    timeoutMs: 10_000,
  })
  const { outputs = {}, ...replay } = await replayRecord(chain, options)
  const recorded = recordedChain(chain)
  return {
    ...base,
    scene,
    config: shortPath(config.path ?? configPath),
    replay,
    invariants: {
      recorded: runInvariants(invariants, recorded),
      local: runInvariants(invariants, replayedChain(recorded, handoffs(chain.captures), outputs, true)),
    },
  }
}

/** A path relative to here when it is below here, else absolute. */
function shortPath(path: string): string {
  const rel = relative(process.cwd(), resolve(path))
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? resolve(path) : rel
}

/** The default file name; record ids come from an untrusted bundle, so only safe characters. */
function defaultName(recordId: string): string {
  return `retrace-report-${recordId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 80)}.html`
}

/** Opens a file with the desktop's opener, detached; false when there is none. */
function openFile(path: string): boolean {
  const opener = process.platform === 'darwin' ? 'open' : 'xdg-open'
  const found = (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, opener), constants.X_OK)
      return true
    } catch {
      return false
    }
  })
  if (!found) return false
  try {
    const child = spawn(opener, [path], { detached: true, stdio: 'ignore' })
    child.on('error', () => {})
    child.unref()
    return true
  } catch {
    return false
  }
}
