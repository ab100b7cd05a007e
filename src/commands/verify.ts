import { statSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { Args, Flags } from '@oclif/core'
import { BundleSet } from '../bundle/index.js'
import { positionals } from '../cli/argv.js'
import { RetraceCommand } from '../cli/base-command.js'
import { bundlePaths } from '../cli/bundles.js'
import { configFlag } from '../cli/flags.js'
import { out } from '../cli/stdout.js'
import { openWhenPresent } from '../cli/watch.js'
import { noRules } from '../compare/diff.js'
import { type CompiledInvariant, compileInvariants } from '../compare/invariants.js'
import { Verifier, type VerifySummary, type Violation, violationId } from '../compare/verify.js'
import { safeJson } from '../render/format.js'
import { renderVerify, violationLine } from '../render/verify.js'
import { findConfig, loadConfig } from '../replay/config.js'

/**
 * Records whose reports `verify --follow` keeps, to tell a continued record's new
 * violations from those already reported.
 */
const followMemory = 100_000

export default class Verify extends RetraceCommand<typeof Verify> {
  static override args = {
    bundles: Args.string({ description: 'Bundle files; several read as one.', required: true }),
  }
  static override description =
    `Checks every recorded record for seams (a stage's recorded output is not the recorded input of the stage it handed it to: the data changed in transit; stages called inside or beside another, or once per item, are handed nothing) and for the invariants in the config (monitoring formulas such as "compute.output.available == compute.output.onHand - compute.output.reserved"). Prints a summary by check and stage with example records. Streams; memory stays flat.

--follow keeps watching bundles a recorder is still writing and prints each violation as it lands, without blocking the writer; a bundle not created yet is waited for. The bundles are opened only for each look, so a recorder that closes while followed leaves one file (no -wal or -shm beside it), and a bundle made again at its path (after log rotation) is followed from its first record. With --json, --follow writes one JSON object per line (NDJSON), one per violation as it lands, and no summary. Exit codes: 0 no violation, 1 violations found, 2 usage or input error, 3 the config cannot be loaded.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> recordings/inventory.sqlite --config examples/inventory/retrace.config.ts',
    '<%= config.bin %> <%= command.id %> bundles/prod-*.sqlite --follow',
  ]
  static override flags = {
    config: configFlag,
    follow: Flags.boolean({
      char: 'f',
      description: 'Keep watching for new records and report violations as they land.',
    }),
    interval: Flags.integer({
      default: 500,
      description: 'With --follow: milliseconds between looks for new records.',
      min: 50,
    }),
  }
  static override strict = false
  static override summary = 'Check seams and invariants over every recorded record.'

  async run(): Promise<VerifySummary | undefined> {
    const paths = bundlePaths(positionals(this.argv, ['--config', '-c', '--interval']))
    const { invariants, rules, note } = await this.loadChecks()
    if (note) this.note(this.theme.dim(note))
    const verifier = new Verifier(invariants, rules)
    if (this.flags.follow) return this.follow(paths, verifier)
    const set = BundleSet.open(paths)
    try {
      for (const [i, reader] of set.readers.entries()) {
        const before = set.readers.slice(0, i)
        for (const id of reader.recordIds()) {
          // A record continued in another process is checked once, whole (its seams across
          // processes included), from the first bundle that holds part of it.
          if (before.some((r) => r.hasRecord(id))) continue
          verifier.check(set.loadRecord(id))
        }
      }
    } finally {
      set.close()
    }
    const summary = verifier.summary()
    if (!this.jsonEnabled()) this.log(renderVerify(summary, this.theme))
    this.found(summary.violations > 0)
    return summary
  }

  private async loadChecks(): Promise<{
    invariants: CompiledInvariant[]
    rules: typeof noRules
    note?: string
  }> {
    if (this.flags.config === undefined && findConfig(process.cwd()) === undefined) {
      return {
        invariants: [],
        rules: noRules,
        note: 'no config found: checking seams only (pass --config for invariants)',
      }
    }
    const config = await loadConfig(this.flags.config, process.cwd())
    const invariants = compileInvariants(config.config.invariants)
    if (invariants.length === 0 && config.config.invariants === undefined) {
      return {
        invariants,
        rules: config.rules,
        note: `${config.path} defines no invariants: checking seams only`,
      }
    }
    return { invariants, rules: config.rules }
  }

  /**
   * Checks what is there, then every record committed afterwards, until interrupted. A
   * record continued in another process lands in each bundle on its own: each time more of
   * it lands it is checked again, whole, and only what was not reported before is.
   */
  private async follow(paths: string[], verifier: Verifier): Promise<undefined> {
    let stop = false
    const onSignal = (): void => {
      stop = true
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    try {
      await this.followOpen(paths, verifier, () => stop)
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
    const summary = verifier.summary()
    if (!this.jsonEnabled()) this.note(renderVerify(summary, this.theme))
    return undefined
  }

  /**
   * Looks at the bundles once an interval. They are opened for each look and closed
   * between looks: a connection held open would keep a recorder that closes its bundle
   * from checkpointing it back into one file, leaving its -wal and -shm beside it. A
   * bundle replaced at its path (a recorder that found its file moved away by rotation
   * starts a new one there) is followed from its first record.
   */
  private async followOpen(paths: string[], verifier: Verifier, stopped: () => boolean): Promise<void> {
    const cursors = paths.map(() => ({ after: 0, file: '' }))
    /** What was reported for records seen lately, by id (only with several bundles). */
    const reported = new Map<string, Set<string>>()
    const report = (found: Violation[]): void => {
      for (const v of found) {
        if (this.jsonEnabled()) out(`${safeJson(v)}\n`)
        else this.log(violationLine(v, this.theme))
      }
      if (found.length > 0) this.found(true)
    }
    let looked = false
    let files: string[] = []
    while (!stopped()) {
      // A bundle not created yet (or moved away and not made again yet) is waited for.
      const set = await openWhenPresent(
        paths,
        () => {
          // Before opening: a file replaced in between is read again from its start, not missed.
          files = paths.map(fileIdentity)
          // The first look checks the files whole; later ones only that they are still bundles.
          return BundleSet.open(paths, { live: true, ...(looked ? { checkUpToBytes: 0 } : {}) })
        },
        {
          intervalMs: this.flags.interval,
          note: (message) => this.note(this.theme.dim(message)),
          stopped,
        },
      )
      if (set === undefined) return
      if (!looked) this.note(this.theme.dim(`following ${paths.join(', ')} (Ctrl-C to stop)`))
      looked = true
      try {
        for (const [i, reader] of set.readers.entries()) {
          const cursor = cursors[i]!
          if (files[i] !== cursor.file) cursor.after = 0
          cursor.file = files[i]!
          for (const { rowid, id } of reader.recordsAfter(cursor.after)) {
            cursor.after = rowid
            if (set.readers.length === 1) {
              const chain = reader.loadRecord(id)
              if (chain !== undefined) report(verifier.check(chain))
              continue
            }
            const seen = reported.get(id)
            const found = verifier.check(set.loadRecord(id), seen)
            if (seen === undefined) {
              reported.set(id, new Set(found.map(violationId)))
              // Parts of one record land close together; memory stays bounded.
              if (reported.size > followMemory) reported.delete(reported.keys().next().value!)
            }
            report(found)
          }
        }
      } finally {
        set.close()
      }
      await sleep(this.flags.interval)
    }
  }
}

/** Which file is at `path` now (device and inode), to notice one replaced under it. */
function fileIdentity(path: string): string {
  try {
    const st = statSync(path)
    return `${st.dev}:${st.ino}`
  } catch {
    return ''
  }
}
