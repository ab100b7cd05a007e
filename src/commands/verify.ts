import { existsSync, statSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { BundleSet } from '../bundle/index.js'
import { positionals } from '../cli/argv.js'
import { RetraceCommand } from '../cli/base-command.js'
import { bundlePaths } from '../cli/bundles.js'
import { bundlesArg, configFlag } from '../cli/flags.js'
import { Flags } from '../cli/oclif.js'
import { out } from '../cli/stdout.js'
import { openWhenPresent } from '../cli/watch.js'
import { noRules } from '../compare/diff.js'
import { type CompiledInvariant, compileInvariants } from '../compare/invariants.js'
import { Verifier, type VerifySummary, type Violation, violationId } from '../compare/verify.js'
import { RetraceError } from '../errors.js'
import { safeJson, visibleLine } from '../render/format.js'
import { renderVerify, violationLine } from '../render/verify.js'
import { findConfig, loadConfig } from '../replay/config.js'

/**
 * Records whose reports `verify --follow` keeps, to tell a continued record's new
 * violations from those already reported.
 */
const followMemory = 100_000

export default class Verify extends RetraceCommand<typeof Verify> {
  static override args = {
    bundles: bundlesArg,
  }
  static override description =
    `Checks every recorded record for seams (a stage's recorded output is not the recorded input of the stage it handed it to: the data changed in transit; stages called inside or beside another, or once per item, are handed nothing) and for the invariants in the config (monitoring formulas such as "compute.output.available == compute.output.onHand - compute.output.reserved"). Prints a summary by check and stage with example records. Streams; memory stays flat.

--follow keeps watching bundles a recorder is still writing and prints each violation as it lands, without blocking the writer; a bundle not created yet is waited for. The bundles are opened only for each look, so a recorder that closes while followed leaves one file (no -wal or -shm beside it), and a bundle made again at its path (after log rotation) is followed from its first record. A folder is listed again on each look: a bundle that appears in it (a process started later) is followed from its first record, and a folder with no bundle yet is waited for. With --json, --follow writes one JSON object per line (NDJSON), one per violation as it lands, and no summary. Exit codes: 0 no violation, 1 violations found, 2 usage or input error, 3 the config cannot be loaded.`
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
    const words = positionals(this.argv, ['--config', '-c', '--interval'])
    // Followed, a folder is listed again on each look: a process started later adds its bundle.
    const paths = bundlePaths(words, { emptyFolders: this.flags.follow })
    const { invariants, rules, note } = await this.loadChecks()
    if (note) this.note(this.theme.dim(note))
    const verifier = new Verifier(invariants, rules)
    if (this.flags.follow) return this.follow(words, paths, verifier)
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
  private async follow(words: string[], paths: string[], verifier: Verifier): Promise<undefined> {
    let stop = false
    const onSignal = (): void => {
      stop = true
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    try {
      await this.followOpen(words, paths, verifier, () => stop)
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
   * starts a new one there) is followed from its first record. A folder is listed again
   * on each look: a bundle that appears in it is followed from its first record once it
   * opens, one renamed within it is followed on from where it was, and one gone from it
   * is no longer looked for.
   */
  private async followOpen(
    words: string[],
    named: string[],
    verifier: Verifier,
    stopped: () => boolean,
  ): Promise<void> {
    /** How far each bundle has been read, and which file that was (device and inode). */
    const cursors = new Map<string, { after: number; file: string }>()
    /** Bundles new in a folder that did not open yet, with when they were first seen. */
    const pending = new Map<string, number>()
    /**
     * Files found replaced at a followed path (device and inode), with when each was first
     * seen: a recorder making a bundle there again writes its header before its schema.
     */
    const replaced = new Map<string, number>()
    const stillMaking = (): boolean => {
      const now = Date.now()
      let making = false
      for (const [i, path] of paths.entries()) {
        const was = cursors.get(path)?.file
        const file = files[i]!
        if (was === undefined || was === '' || file === '' || file === was) continue
        const since = replaced.get(file) ?? now
        replaced.set(file, since)
        if (now - since < settleMs) making = true
      }
      return making
    }
    /** What was reported for records seen lately, by id (only with several bundles, or a folder). */
    const reported = new Map<string, Set<string>>()
    const report = (found: Violation[]): void => {
      for (const v of found) {
        if (this.jsonEnabled()) out(`${safeJson(v)}\n`)
        else this.log(violationLine(v, this.theme))
      }
      if (found.length > 0) this.found(true)
    }
    // Paths listed from a folder are a stranger's file names: shown with their controls escaped.
    const note = (message: string): void => this.note(this.theme.dim(visibleLine(message)))
    // With a folder, more bundles may come, holding more of a record already checked.
    const grows = words.some((w) => isFolder(w))
    let paths = named
    let looked = false
    let saidEmpty = false
    let files: string[] = []
    while (!stopped()) {
      if (looked || paths.length === 0) paths = relist(words, paths, pending, note)
      if (paths.length === 0) {
        if (!saidEmpty) note(`waiting for a bundle to appear in ${words.join(', ')} (Ctrl-C to stop)`)
        saidEmpty = true
        await sleep(this.flags.interval)
        continue
      }
      // A bundle not created yet (or moved away and not made again yet) is waited for.
      const set = await openWhenPresent(
        paths,
        () => {
          // Before opening: a file replaced in between is read again from its start, not missed.
          files = paths.map(fileIdentity)
          try {
            // The first look checks the files whole; later ones only that they are still bundles.
            return BundleSet.open(paths, { live: true, ...(looked ? { checkUpToBytes: 0 } : {}) })
          } catch (err) {
            // Moved out of its folder since it was listed: the next look lists the folder again.
            if (grows && looked && err instanceof RetraceError && err.code === 'E_BUNDLE_MISSING') return null
            // Made again at its path and not whole yet: looked at again, for a few seconds.
            if (looked && err instanceof RetraceError && stillMaking()) return null
            throw err
          }
        },
        { intervalMs: this.flags.interval, note, stopped },
      )
      if (set === undefined) return
      if (set === null) {
        await sleep(this.flags.interval)
        continue
      }
      if (!looked) note(`following ${paths.join(', ')} (Ctrl-C to stop)`)
      looked = true
      replaced.clear()
      keepCursors(cursors, paths, files)
      try {
        for (const [i, reader] of set.readers.entries()) {
          const cursor = cursors.get(paths[i]!)!
          if (files[i] !== cursor.file) cursor.after = 0
          cursor.file = files[i]!
          for (const { rowid, id } of reader.recordsAfter(cursor.after)) {
            cursor.after = rowid
            if (set.readers.length === 1 && !grows) {
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

/**
 * The bundles to look at now: those followed so far that are still named (a file named
 * on the command line always is; one found in a folder while it is there), then those
 * new in a folder that open on their own. A new file may be one a recorder is still
 * making: it is let in once it opens, and fails the follower only if it still does not
 * open after a few seconds, as a bundle waited for does.
 */
function relist(
  words: readonly string[],
  followed: readonly string[],
  pending: Map<string, number>,
  note: (message: string) => void,
): string[] {
  let listed: string[]
  try {
    listed = bundlePaths(words, { emptyFolders: true })
  } catch {
    // A file removed while the folder was read: the next look lists it again.
    return [...followed]
  }
  const now = new Set(listed)
  const next = followed.filter((p) => now.has(p))
  for (const p of pending.keys()) if (!now.has(p)) pending.delete(p)
  for (const p of listed) {
    if (next.includes(p)) continue
    const since = pending.get(p) ?? Date.now()
    pending.set(p, since)
    try {
      if (statSync(p).size === 0) continue
      BundleSet.open([p], { live: true }).close()
    } catch (err) {
      if (err instanceof RetraceError && Date.now() - since < settleMs) continue
      if (!(err instanceof RetraceError) && !existsSync(p)) continue
      throw err
    }
    pending.delete(p)
    if (followed.length > 0) note(`following ${p} too`)
    next.push(p)
  }
  return next
}

/** How long a bundle new in a followed folder may take to open before it is an error. */
const settleMs = 5000

/**
 * One cursor per bundle looked at. A bundle new in a folder that is a file already read
 * under another name (renamed within the folder) goes on from where that name was; the
 * cursors of names no longer looked at are dropped.
 */
function keepCursors(
  cursors: Map<string, { after: number; file: string }>,
  paths: readonly string[],
  files: readonly string[],
): void {
  for (const [i, path] of paths.entries()) {
    if (cursors.has(path)) continue
    const file = files[i]!
    const renamed = [...cursors].find(([p, c]) => !paths.includes(p) && file !== '' && c.file === file)
    if (renamed !== undefined) cursors.delete(renamed[0])
    cursors.set(path, renamed?.[1] ?? { after: 0, file: '' })
  }
  for (const path of [...cursors.keys()]) if (!paths.includes(path)) cursors.delete(path)
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

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}
