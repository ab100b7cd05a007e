import { existsSync, lstatSync } from 'node:fs'
import { resolve } from 'node:path'
import { BundleSet, type ExtractResult, extractRecords, safeFileName } from '../bundle/index.js'
import { positionals } from '../cli/argv.js'
import { RetraceCommand } from '../cli/base-command.js'
import { splitBundleWords } from '../cli/bundles.js'
import { bundlesArg } from '../cli/flags.js'
import { Args, Flags } from '../cli/oclif.js'
import { prepareOutput } from '../cli/output.js'
import { UsageError } from '../errors.js'
import { version } from '../version.js'

export default class Extract extends RetraceCommand<typeof Extract> {
  static override args = {
    bundle: bundlesArg,
    records: Args.string({ description: 'Record ids or unique prefixes.', required: true }),
  }
  static override description =
    `Writes a new standalone bundle holding only the named records: their captures, effects, expectations and the manifest. The file is built fresh (no bytes of other records survive in it), written to a temporary name and renamed, with extra redaction rules applied on the way out and recorded in the manifest. A value nested too deeply for --redact to walk (only a hand-made bundle has one) is left out, written as a too-deep marker, and counted in the summary (tooDeepValues in --json). Attach it to the bug report and commit it under recordings/.

-o may name a file or a folder (an existing one, or a path ending in /); in a folder the file is named from the record's key, made safe for any file system. Missing folders are made.

Several bundles (files, or a folder for every bundle under it) are read as one: a record continued in another process is extracted whole, every part's captures, effects and expectations in the order they ran, and the manifest names the bundles it came from.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> prod.sqlite 01JD3Q -o recordings/sku-1001-bug.sqlite --redact "$..customer.email"',
    '<%= config.bin %> <%= command.id %> prod.sqlite 01JD3Q 01JD3R -o recordings/',
  ]
  static override flags = {
    force: Flags.boolean({ description: 'Replace the output file if it exists.' }),
    output: Flags.string({
      char: 'o',
      description: 'Output file, or a folder (existing, or ending in /).',
      required: true,
    }),
    redact: Flags.string({
      description: 'Extra path to redact on the way out (repeatable), e.g. "$..email".',
      multiple: true,
      // One value per --redact, as positionals() reads argv: record ids after it stay records.
      multipleNonGreedy: true,
    }),
  }
  static override strict = false
  static override summary =
    'Write a small standalone bundle of chosen records (for a bug report or a regression test).'

  async run(): Promise<ExtractResult> {
    const { bundles, rest: refs } = splitBundleWords(positionals(this.argv, ['--output', '-o', '--redact']))
    if (refs.length === 0) throw new UsageError('name the records to extract: RECORD... after the bundles')
    if ((this.flags.redact ?? []).some((rule) => rule.trim() === ''))
      throw new UsageError('--redact needs a path to redact, e.g. --redact "$..email"', 'E_REDACT_PATH')
    const set = BundleSet.open(bundles)
    try {
      const ids = [...new Set(refs.map((r) => set.resolveRecordId(r)))]
      const { path: target } = prepareOutput(this.flags.output, () => {
        const first = set.loadRecord(ids[0]!)
        return `${safeFileName(first.record.key)}-${safeFileName(ids[0]!.slice(0, 10))}.sqlite`
      })
      if (set.paths.some((p) => resolve(p) === target))
        throw new UsageError('the output would overwrite the input bundle')
      if (existsSync(target) && !this.flags.force)
        throw new UsageError(`${target} exists; pass --force to replace it`)
      // --force replaces a file, never a device, a pipe or a folder it would be renamed over.
      const kind = lstatSync(target, { throwIfNoEntry: false })
      if (kind !== undefined && !kind.isFile() && !kind.isSymbolicLink())
        throw new UsageError(`${target} is not a regular file; refusing to replace it`)
      const result = extractRecords(set, ids, target, {
        redact: this.flags.redact ?? [],
        recorderVersion: version,
        now: Date.now,
      })
      const tooDeep = result.tooDeepValues
        ? `, ${result.tooDeepValues} value${result.tooDeepValues === 1 ? '' : 's'} nested too deeply to redact left out`
        : ''
      this.note(
        this.theme.ok(
          `wrote ${result.path}: ${result.records} record${result.records === 1 ? '' : 's'}, ${result.captures} captures${result.redactedValues ? `, ${result.redactedValues} values redacted` : ''}${tooDeep}`,
        ),
      )
      if (!this.jsonEnabled()) this.log(result.path)
      return result
    } finally {
      set.close()
    }
  }
}
