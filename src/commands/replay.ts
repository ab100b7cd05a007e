import { spawn } from 'node:child_process'
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BundleSet, type RecordChain } from '../bundle/index.js'
import { positionals } from '../cli/argv.js'
import { RetraceCommand } from '../cli/base-command.js'
import { splitBundleWords } from '../cli/bundles.js'
import { bundlesArg, configFlag, keyFlag } from '../cli/flags.js'
import { Args, Flags } from '../cli/oclif.js'
import { flushOut, out } from '../cli/stdout.js'
import { jsonLine, watchFiles } from '../cli/watch.js'
import { safeJson, visibleName } from '../render/format.js'
import { renderRecordResult, renderSummary } from '../render/replay.js'
import { renderUnified } from '../render/unified.js'
import { loadConfig, loadStages } from '../replay/config.js'
import { addToSummary, emptySummary } from '../replay/engine.js'
import { keepYoungGenerationSmall } from '../replay/heap.js'
import {
  type DocsItem,
  type ItemOptions,
  itemRecord,
  itemSpan,
  joinDocs,
  toItem,
  type WorkerItem,
} from '../replay/items.js'
import { type ReplayPool, workerPool } from '../replay/pool.js'
import { testRecord } from '../replay/regress.js'
import { engineOptions, type RunOptions, replaySelection } from '../replay/run.js'
import { checkSelection, type Selection, selectRecords } from '../replay/select.js'

export default class Replay extends RetraceCommand<typeof Replay> {
  static override args = {
    bundle: bundlesArg,
    records: Args.string({ description: 'Record ids or unique prefixes (default: every record).' }),
  }
  static override description =
    `Runs recorded records through the local builds of their stages (named in the config) and compares each stage with what production recorded. Clock, random and effects play back from the recording; the network is closed.

Several bundles (one file per process: files, or a folder for every bundle under it) are read as one: a record continued in another process is replayed whole, its parts' captures in the order they ran, so a divergence in one process is named as the cause of what the next one shows.

Per stage: matched, diverged (its own output differs for the same input), inherited (differs only because its input already did), error (threw, called an effect production did not, or tried the network), skipped. The first diverged or error stage is the record's first divergence.

--watch replays again whenever the config or a stage module changes, until interrupted; with --json it writes each run's document (the one --json prints) compact on one line: NDJSON, one line per run.

Exit codes: 0 every record matched, 1 a divergence or error was found, 2 usage or input error, 3 the config or a stage module could not be loaded.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> recordings/inventory.sqlite --key sku:1001 --config examples/inventory/retrace.config.ts',
    '<%= config.bin %> <%= command.id %> prod.sqlite 01JD3Q --mode isolated',
    '<%= config.bin %> <%= command.id %> bundles/ 01JD3Q',
    '<%= config.bin %> <%= command.id %> prod.sqlite --where "store.available = 87" --watch',
  ]
  static override flags = {
    'allow-net': Flags.boolean({ description: 'Let stages reach the network under replay.' }),
    config: configFlag,
    format: Flags.option({
      default: 'structural',
      description:
        'How to print differences: structural (path, recorded, local) or unified (a text diff of the payloads).',
      options: ['structural', 'unified'] as const,
    })(),
    key: keyFlag,
    mode: Flags.option({
      default: 'cascade',
      description:
        'cascade: each stage gets the local output of the one before; isolated: each stage gets its recorded input.',
      options: ['cascade', 'isolated'] as const,
    })(),
    splice: Flags.string({
      description:
        'Use the recorded output of this stage instead of running it, where it is called inside another stage too (repeatable).',
      multiple: true,
      // One stage per flag, so `--splice compute BUNDLE` does not swallow the bundle.
      multipleNonGreedy: true,
    }),
    stage: Flags.string({
      char: 's',
      description: 'Replay only this stage; the stages it calls give their recorded results.',
    }),
    timeout: Flags.integer({
      default: 10_000,
      description: 'Milliseconds a stage may run before it fails.',
      min: 1,
    }),
    verbose: Flags.boolean({ char: 'v', description: 'Print matched records and every stage in full.' }),
    watch: Flags.boolean({
      char: 'w',
      description:
        'Replay again whenever the config or a stage module changes (with --json: one compact document per line, per run).',
    }),
    where: Flags.string({
      description:
        'Only records matching a predicate, as in `find` ("store.available = 87"); with --key, the records of that key it matches. One no record matches is an input error (exit 2), as a --key no record has is.',
    }),
    width: Flags.integer({ default: 120, description: 'Characters a value may take on one line.', min: 20 }),
    workers: Flags.integer({
      default: 1,
      description:
        'Processes to replay on, this one included (a selection of over 50 records per process is split across them; the report keeps its order).',
      max: 64,
      min: 1,
    }),
  }
  static override strict = false
  static override summary = 'Replay records through the local build and name the first stage that diverges.'

  async run(): Promise<void> {
    keepYoungGenerationSmall()
    if (this.flags.watch) {
      // A bundle that cannot be read or a selection that matches nothing is refused before
      // watching: no edit of the config or a stage module can fix it.
      const { bundles, selection } = this.selection()
      const set = BundleSet.open(bundles)
      try {
        checkSelection(set, selection)
      } finally {
        set.close()
      }
      // Each replay runs in a fresh process: edited stage modules load anew, and nothing a
      // stage left behind (timers, patched globals) leaks into the next run.
      const argv = this.argv.filter((a) => a !== '--watch' && a !== '-w')
      const bin = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
      await watchFiles(
        async () => (await loadConfig(this.flags.config, process.cwd())).files,
        async () => {
          await new Promise<void>((resolve) => {
            // With --json, each run's document is rewritten as one line: a stream of them parses.
            const json = this.jsonEnabled()
            const child = spawn(process.execPath, [bin, 'replay', ...argv], {
              stdio: json ? ['inherit', 'pipe', 'inherit'] : 'inherit',
            })
            const chunks: Buffer[] = []
            child.stdout?.on('data', (b: Buffer) => chunks.push(b))
            child.on('close', (code, signal) => {
              if (json) {
                out(jsonLine(Buffer.concat(chunks).toString('utf8'), { code, signal }))
                flushOut()
              }
              resolve()
            })
          })
          this.note(
            this.theme.dim(
              'watching the config and stage modules; edit one to replay again (Ctrl-C to stop)',
            ),
          )
        },
        (message) => this.note(message),
      )
      return
    }
    await this.once()
  }

  /** The bundles the command line names, and the records it selects in them. */
  private selection(): { bundles: string[]; named: string[]; selection: Selection } {
    const f = this.flags
    const { bundles, named, rest: records } = splitBundleWords(positionals(this.argv, valuedFlags))
    const selection: Selection = {
      records,
      ...(f.key !== undefined ? { key: f.key } : {}),
      ...(f.where !== undefined ? { where: f.where } : {}),
    }
    return { bundles, named, selection }
  }

  /** One replay of the selection. */
  private async once(): Promise<void> {
    const f = this.flags
    const run: RunOptions = {
      mode: f.mode,
      splice: f.splice ?? [],
      ...(f.stage !== undefined ? { only: f.stage } : {}),
      allowNet: f['allow-net'],
      timeoutMs: f.timeout,
    }
    const json = this.jsonEnabled()
    // A unified diff is drawn from the local outputs.
    const itemOptions: ItemOptions = {
      keepOutputs: f.format === 'unified',
      keepMatched: f.verbose,
      jsonDocs: json,
    }
    // The workers start now, loading the config and stages while this process does the same.
    const pool = f.workers > 1 ? workerPool(f.workers, f.config, process.cwd(), run, itemOptions) : undefined
    try {
      await this.replayAll(run, itemOptions, pool)
    } finally {
      await pool?.close()
    }
  }

  private async replayAll(
    run: RunOptions,
    itemOptions: ItemOptions,
    pool: ReplayPool | undefined,
  ): Promise<void> {
    const f = this.flags
    const config = await loadConfig(f.config, process.cwd())
    const engine = engineOptions(config, await loadStages(config), run)
    const { bundles, named, selection } = this.selection()
    const set = BundleSet.open(bundles)
    try {
      // A typo in the selection is the one line on stderr, not a second after the header.
      checkSelection(set, selection)
    } catch (err) {
      set.close()
      throw err
    }
    const json = itemOptions.jsonDocs
    const t = this.theme
    const render = { width: f.width, verbose: f.verbose, maxChanges: f.verbose ? 200 : 8 }
    const summary = emptySummary()
    const missing = new Set<string>()
    let first = true
    let quietMatched = 0
    this.note(
      t.dim(
        `replaying ${named.join(', ')}${f.key !== undefined ? ` (key ${f.key})` : ''}${f.where !== undefined ? ` (where ${f.where})` : ''} through the local build in ${config.path === undefined ? 'the config' : relative(process.cwd(), config.path)}, ${f.mode} mode, network closed${f['allow-net'] ? ' (no: --allow-net)' : ''}`,
      ),
    )
    // Opened with the first record, so an error before it leaves stdout to the error document.
    const open = '{\n  "records": ['
    /** Reports one record; records are reported in the order they were selected. */
    const report = (item: WorkerItem, chain?: RecordChain): void => {
      for (const s of item.stale) if (s.why === 'stage not in config') missing.add(s.stage)
      if ('docs' in item) {
        for (const verdict of item.verdicts) addToSummary(summary, { verdict })
        // Opened: a failure from here on ends this document rather than starting another.
        this.endJsonWithError ??= (error) => `\n  ],\n  "error": ${safeJson(error)}\n}\n`
        if (typeof item.docs === 'string') out(`${first ? `${open}\n` : ',\n'}${item.docs}`)
        else {
          out(first ? `${open}\n` : ',\n')
          out(item.docs)
        }
        first = false
        return
      }
      const about = itemRecord(item)
      addToSummary(summary, about)
      if ('matched' in item) {
        if (++quietMatched <= 20)
          this.log(t.dim(`${t.ok('✓')} record ${about.recordId}  key ${visibleName(about.key)}  matched`))
        else if (quietMatched === 21)
          this.log(t.dim('  … further matched records are counted in the summary (--verbose lists them)'))
      } else {
        this.log(renderRecordResult(item.result, t, render))
        if (f.format === 'unified')
          this.log(renderUnified(item.result, chain ?? set.loadRecord(about.recordId), t))
        this.log('')
      }
      first = false
    }
    try {
      const paths = set.paths
      const source = paths.join(', ')
      const ids = pool !== undefined ? [...selectRecords(set, selection)] : undefined
      if (pool !== undefined && ids !== undefined && ids.length >= pool.minRecords) {
        // Results land as they finish; each waits here until the ones before it are reported.
        const held = new Map<number, WorkerItem>()
        let next = 0
        const land = (item: WorkerItem, position: number): void => {
          if (position !== next) {
            const bytes = 'docs' in item && typeof item.docs === 'string'
            held.set(position, bytes ? { ...item, docs: Buffer.from(item.docs) } : item)
            return
          }
          for (let it: WorkerItem | undefined = item; it !== undefined; it = held.get(next)) {
            held.delete(next)
            report(it)
            next += itemSpan(it)
          }
        }
        const replayHere = async (part: readonly string[], start: number, stopped: () => boolean) => {
          const items: WorkerItem[] = []
          for (const chain of set.loadRecords(part)) {
            if (stopped()) return
            const { result, stale } = await testRecord(source, chain, engine)
            items.push(toItem(result, stale, itemOptions))
          }
          // JSON entries as one item, written at once, as a worker sends them.
          if (json) land(joinDocs(items as DocsItem[]), start)
          else for (const [k, item] of items.entries()) land(item, start + k)
        }
        // No process runs further ahead of the first record not yet reported than this.
        await pool.run(paths, ids, land, replayHere, () => next + 2048)
      } else {
        const r = await replaySelection(
          set,
          ids !== undefined ? { records: ids } : selection,
          engine,
          (result, chain) => report(toItem(result, [], itemOptions), chain),
        )
        for (const stage of r.missing) missing.add(stage)
      }
      this.endJsonWithError = undefined
      if (json) {
        out(
          `${first ? open : '\n  '}],\n  "summary": ${safeJson(summary)}${missing.size ? `,\n  "missingStages": ${safeJson([...missing])}` : ''}\n}\n`,
        )
        this.jsonComplete = true
      } else {
        if (missing.size > 0) {
          this.note(
            t.warn(
              `stages in the recording but not in the config (recorded output used): ${[...missing].map(visibleName).join(', ')}`,
            ),
          )
        }
        this.log(renderSummary(summary, t))
      }
      process.exitCode = summary.diverged + summary.errors > 0 ? 1 : 0
    } finally {
      set.close()
    }
  }
}

const valuedFlags = [
  '--config',
  '-c',
  '--format',
  '--key',
  '-k',
  '--mode',
  '--splice',
  '--stage',
  '-s',
  '--timeout',
  '--where',
  '--width',
  '--workers',
]
