import { relative, resolve } from 'node:path'
import { SingleBar } from 'cli-progress'
import { pinExpectations } from '../bundle/index.js'
import { positionals } from '../cli/argv.js'
import { RetraceCommand } from '../cli/base-command.js'
import { configFlag } from '../cli/flags.js'
import { Args, Flags } from '../cli/oclif.js'
import { type PreparedOutput, prepareOutput, refuseBundleOutput, writeOutput } from '../cli/output.js'
import { out } from '../cli/stdout.js'
import { UsageError } from '../errors.js'
import { safeJson, visibleLine, visibleName } from '../render/format.js'
import { renderJunit } from '../render/junit.js'
import { renderRecordResult, renderSummary } from '../render/replay.js'
import { loadConfig, loadStages } from '../replay/config.js'
import { keepYoungGenerationSmall } from '../replay/heap.js'
import { type ReplayPool, workerPool } from '../replay/pool.js'
import { discoverBundles, inCI, parseShard, runTests, type TestRun } from '../replay/regress.js'
import { engineOptions, type RunOptions } from '../replay/run.js'
import { version } from '../version.js'

/** The file name `--output FOLDER` writes, by reporter. */
const reportExtension = { default: 'txt', json: 'json', junit: 'xml' } as const

export default class Test extends RetraceCommand<typeof Test> {
  static override args = {
    paths: Args.string({ description: 'Bundles or folders of bundles (default: recordings/).' }),
  }
  static override description =
    `Replays every record of every bundle under the paths through the local build and checks each stage against its pinned expectation where there is one, and against the production recording elsewhere. Failures show the same step diff as replay.

Exit codes: 0 all passed, 1 any failure, 2 usage or input error, 3 the config or a stage module could not be loaded.`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> recordings/ --reporter junit --output reports/retrace.xml',
    '<%= config.bin %> <%= command.id %> recordings/ --shard 2/4',
  ]
  static override flags = {
    config: configFlag,
    force: Flags.boolean({ description: 'Allow --update in CI.' }),
    output: Flags.string({
      description:
        'Write the report to this file instead of stdout (missing folders are made; a folder gets retrace.txt, .json or .xml by --reporter).',
    }),
    reporter: Flags.option({
      default: 'default',
      description: 'Report format.',
      options: ['default', 'json', 'junit'] as const,
    })(),
    shard: Flags.string({ description: 'Run shard i of n (i/n), a deterministic split of the records.' }),
    timeout: Flags.integer({
      default: 10_000,
      description: 'Milliseconds a stage may run before it fails.',
      min: 1,
    }),
    workers: Flags.integer({
      default: 1,
      description:
        'Processes to replay on, this one included (a bundle of over 50 records per process is split across them).',
      max: 64,
      min: 1,
    }),
    update: Flags.boolean({
      char: 'u',
      description:
        "Re-pin failing stages from the local build's output, for each record a replay with its new pins shows to pass (refused in CI without --force).",
    }),
  }
  static override strict = false
  static override summary = 'Run the recordings as regression tests.'

  async run(): Promise<void> {
    keepYoungGenerationSmall()
    const f = this.flags
    if (f.update && inCI(process.env) && !f.force) {
      throw new UsageError(
        'refusing --update in CI (CI is set): expectations are pinned on a workstation; add --force to override',
      )
    }
    const given = positionals(this.argv, [
      '--config',
      '-c',
      '--output',
      '--reporter',
      '--shard',
      '--timeout',
      '--workers',
    ])
    const bundles = discoverBundles(given.length > 0 ? given : ['recordings'])
    if (
      f.output !== undefined &&
      (bundles.includes(resolve(f.output)) || /\.(sqlite|bundle)$/i.test(f.output))
    ) {
      throw new UsageError(`--output ${f.output} looks like a bundle; the report would overwrite a recording`)
    }
    if (bundles.length === 0)
      throw new UsageError(
        `no bundles (*.sqlite) under ${given.length > 0 ? given.join(', ') : 'recordings/'}`,
      )
    // Before the run: a report that cannot be written fails now, not after every test ran.
    const output =
      f.output === undefined
        ? undefined
        : prepareOutput(f.output, () => `retrace.${reportExtension[f.reporter]}`)
    if (output !== undefined) refuseBundleOutput(output.path, output.shown, bundles)
    const runOptions: RunOptions = { mode: 'cascade', splice: [], allowNet: false, timeoutMs: f.timeout }
    // The workers start now, loading the config and stages while this process does the same.
    const pool =
      f.workers > 1
        ? workerPool(f.workers, f.config, process.cwd(), runOptions, {
            keepOutputs: f.update,
            keepMatched: f.reporter === 'junit',
            jsonDocs: false,
          })
        : undefined
    try {
      await this.runAll(bundles, runOptions, pool, output)
    } finally {
      await pool?.close()
    }
  }

  private async runAll(
    bundles: string[],
    runOptions: RunOptions,
    pool: ReplayPool | undefined,
    output: PreparedOutput | undefined,
  ): Promise<void> {
    const f = this.flags
    const config = await loadConfig(f.config, process.cwd())
    const stages = await loadStages(config)
    const shard = f.shard !== undefined ? parseShard(f.shard) : undefined
    const showBar =
      process.stderr.isTTY === true && !process.env.CI && f.reporter === 'default' && f.output === undefined
    const bar = showBar
      ? new SingleBar({
          clearOnComplete: true,
          hideCursor: true,
          stream: process.stderr,
          format: ' {bar} {value}/{total} records | {bundle}',
        })
      : undefined
    let started = false
    const t = this.theme
    const run = await runTests(bundles, {
      engine: engineOptions(config, stages, runOptions),
      ...(pool !== undefined ? { pool } : {}),
      ...(shard !== undefined ? { shard } : {}),
      keepAll: f.reporter === 'junit',
      now: Date.now,
      onBundle: (path, n) => {
        if (bar === undefined) return
        if (!started) bar.start(n, 0, { bundle: path })
        else bar.setTotal(bar.getTotal() + n)
        started = true
        bar.update({ bundle: path })
      },
      onRecord: () => bar?.increment(),
      ...(f.update
        ? {
            update: (path: string, rows: Parameters<typeof pinExpectations>[1]) =>
              pinExpectations(path, rows, version),
          }
        : {}),
    })
    bar?.stop()
    const report = this.report(run, f.reporter)
    if (output !== undefined) {
      writeOutput(output.path, report)
      this.note(`${renderSummary(run.summary, t, 'tested')}; report written to ${output.shown}`)
    } else out(report)
    // What the summary says: records re-pinned by --update are counted as updated, not failed.
    process.exitCode = run.summary.diverged + run.summary.errors > 0 ? 1 : 0
  }

  private report(run: TestRun, reporter: 'default' | 'json' | 'junit'): string {
    if (reporter === 'junit') return renderJunit(run)
    if (reporter === 'json') {
      return `${safeJson(
        {
          bundles: run.bundles.map((b) => ({
            path: b.path,
            summary: b.summary,
            ...(b.notUpdated !== undefined ? { notUpdated: b.notUpdated } : {}),
            failures: b.failures.map(({ outputs: _o, ...r }) =>
              b.updated.has(r.recordId) ? { ...r, updated: true } : r,
            ),
          })),
          summary: run.summary,
          stale: run.stale,
          updated: run.updated,
        },
        2,
      )}\n`
    }
    const t = this.theme
    const out: string[] = []
    for (const b of run.bundles) {
      const ok = b.summary.diverged + b.summary.errors === 0
      out.push(
        `${ok ? t.ok('✓') : t.bad('✗')} ${visibleLine(relative(process.cwd(), b.path) || b.path)}  ${renderSummary(b.summary, t, 'tested')}`,
      )
      if (b.notUpdated !== undefined) out.push(t.bad(`    not updated: ${visibleLine(b.notUpdated)}`))
      for (const r of b.failures) {
        out.push(
          renderRecordResult(r, t, { width: 120, verbose: false, maxChanges: 8 }).replace(/^/gm, '    '),
        )
        if (b.updated.has(r.recordId)) out.push(t.ok('      updated: re-pinned from the local build'))
      }
    }
    if (run.stale.length > 0) {
      out.push(t.warn(`stale: ${run.stale.length}`))
      for (const s of run.stale.slice(0, 20))
        out.push(t.warn(`  ${visibleLine(s.bundle)} ${s.recordId} ${visibleName(s.stage)}: ${s.why}`))
    }
    if (run.updated > 0) out.push(t.ok(`updated ${run.updated} expectations from the local build`))
    out.push(renderSummary(run.summary, t, 'tested'))
    return `${out.join('\n')}\n`
  }
}
