import { existsSync } from 'node:fs'
import { BundleSet } from '../bundle/index.js'
import { RetraceCommand } from '../cli/base-command.js'
import { configFlag, keyFlag } from '../cli/flags.js'
import { Args } from '../cli/oclif.js'
import { type CompiledRules, noRules } from '../compare/diff.js'
import { type BundleDiff, BundleDiffer, diffRecords, type RecordDiff } from '../compare/record-diff.js'
import { UsageError } from '../errors.js'
import { renderBundleDiff, renderRecordDiff } from '../render/diff.js'
import { findConfig, loadConfig } from '../replay/config.js'

/**
 * `bundle.sqlite#RECORD`, `#RECORD` (same bundle as A) or `bundle.sqlite`. A file name may
 * hold `#` itself (`bug#4711.sqlite`, named after a ticket): a word naming an existing file
 * is that bundle, and a record is split off at the last `#` that leaves a file before it
 * (a record id may hold `#` too), or else at the last `#` unless the word ends in `.sqlite`
 * or `.bundle`.
 */
function parseSide(text: string, fallbackBundle?: string): { bundle: string; record?: string } {
  if (!text.startsWith('#') && existsSync(text)) return { bundle: text }
  let hash = text.lastIndexOf('#')
  if (hash < 0) return { bundle: text }
  let found = false
  for (let at = hash; at > 0 && !found; at = text.lastIndexOf('#', at - 1)) {
    found = existsSync(text.slice(0, at))
    if (found) hash = at
  }
  // A missing `bug#4711.sqlite` is named whole in the error, not as a file `bug`.
  if (!found && /\.(sqlite|bundle)$/i.test(text)) return { bundle: text }
  const bundle = hash === 0 ? fallbackBundle : text.slice(0, hash)
  if (bundle === undefined) throw new UsageError(`${text}: name the bundle before #`)
  return { bundle, record: text.slice(hash + 1) }
}

export default class Diff extends RetraceCommand<typeof Diff> {
  static override args = {
    a: Args.string({ description: 'BUNDLE#RECORD, or a whole BUNDLE.', required: true }),
    b: Args.string({
      description: 'BUNDLE#RECORD, #RECORD (same bundle as A), or a whole BUNDLE.',
      required: true,
    }),
  }
  static override description =
    `Two records (from one bundle or two): stage by stage, which inputs and outputs differ and where they first part. Two bundles: records matched by key (the latest record of each key), which keys differ, at which stage first, how often. With --key and two bundles, compares that key's latest records.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> prod.sqlite#01JD3Q "#01JD4R"',
    '<%= config.bin %> <%= command.id %> monday.sqlite tuesday.sqlite',
    '<%= config.bin %> <%= command.id %> monday.sqlite tuesday.sqlite --key sku:1001',
  ]
  static override flags = { config: configFlag, key: keyFlag }
  static override summary = 'Compare two records, or two bundles by key.'

  async run(): Promise<RecordDiff | BundleDiff> {
    const a = parseSide(this.args.a)
    const b = parseSide(this.args.b, a.bundle)
    const rules = await this.rules()
    const setA = BundleSet.open([a.bundle])
    const setB = b.bundle === a.bundle ? setA : BundleSet.open([b.bundle])
    try {
      if (a.record !== undefined || b.record !== undefined || this.flags.key !== undefined) {
        const pick = (set: BundleSet, record: string | undefined): string => {
          if (record !== undefined) return set.resolveRecordId(record)
          if (this.flags.key !== undefined) return set.latestRecordIdForKey(this.flags.key)
          throw new UsageError('compare a record with a record: give both as BUNDLE#RECORD (or --key)')
        }
        const d = diffRecords(
          setA.loadRecord(pick(setA, a.record)),
          setB.loadRecord(pick(setB, b.record)),
          rules,
        )
        if (!this.jsonEnabled()) this.log(renderRecordDiff(d, this.theme))
        this.found(d.firstDifference !== null)
        return d
      }
      const differ = new BundleDiffer(rules)
      const readerA = setA.readers[0]!
      const readerB = setB.readers[0]!
      const seen = new Set<string>()
      for (const { key, id } of readerA.latestByKey()) {
        seen.add(key)
        const idB = readerB.latestRecordIdForKey(key)
        const chainA = readerA.loadRecord(id)
        const chainB = idB === undefined ? undefined : readerB.loadRecord(idB)
        if (chainA === undefined || chainB === undefined) differ.addOnly(chainA === undefined ? 'b' : 'a')
        else differ.add(key, chainA, chainB)
      }
      for (const { key } of readerB.latestByKey()) if (!seen.has(key)) differ.addOnly('b')
      const d = differ.result()
      if (!this.jsonEnabled()) this.log(renderBundleDiff(d, this.theme))
      this.found(d.differing + d.onlyInA + d.onlyInB > 0)
      return d
    } finally {
      setA.close()
      if (setB !== setA) setB.close()
    }
  }

  private async rules(): Promise<CompiledRules> {
    if (this.flags.config === undefined && findConfig(process.cwd()) === undefined) return noRules
    return (await loadConfig(this.flags.config, process.cwd())).rules
  }
}
