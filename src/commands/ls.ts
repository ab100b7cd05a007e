import { BundleSet, type RecordFilter, type RecordSummary } from '../bundle/index.js'
import { positionals } from '../cli/argv.js'
import { RetraceCommand } from '../cli/base-command.js'
import { bundlePaths } from '../cli/bundles.js'
import { bundlesArg, keyFlag } from '../cli/flags.js'
import { Flags } from '../cli/oclif.js'
import { parseTime } from '../cli/time.js'
import { renderRecordList } from '../render/listing.js'

export interface LsResult {
  records: RecordSummary[]
  /** How many records match, listed or not. */
  total: number
  /** Whether --limit left some out (`total` > `records.length`). */
  truncated: boolean
}

export default class Ls extends RetraceCommand<typeof Ls> {
  static override args = {
    bundles: bundlesArg,
  }
  static override description =
    'One line per record: id, key, status, start time and the stages it went through, newest first. Several bundles (one per process) are read as one.'
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> recordings/inventory.sqlite --key sku:1001',
    '<%= config.bin %> <%= command.id %> prod-*.sqlite --status error --since 2h',
  ]
  static override flags = {
    key: keyFlag,
    limit: Flags.integer({ char: 'n', default: 50, description: 'Most records to list (0: all).', min: 0 }),
    since: Flags.string({
      description: 'Only records started at or after (ISO time, epoch ms, or an age: 30m, 2h, 7d).',
    }),
    stage: Flags.string({ char: 's', description: 'Only records that went through this stage.' }),
    status: Flags.option({ description: 'Only records that ended so.', options: ['ok', 'error'] as const })(),
    until: Flags.string({ description: 'Only records started at or before.' }),
  }
  static override strict = false
  static override summary = 'List the records in one or more bundles.'

  async run(): Promise<LsResult> {
    const paths = bundlePaths(
      positionals(this.argv, [
        '--key',
        '-k',
        '--limit',
        '-n',
        '--since',
        '--stage',
        '-s',
        '--status',
        '--until',
      ]),
    )
    const now = Date.now()
    const f = this.flags
    const set = BundleSet.open(paths)
    try {
      const filter: RecordFilter = {
        ...(f.key !== undefined ? { key: f.key } : {}),
        ...(f.stage !== undefined ? { stage: f.stage } : {}),
        ...(f.status !== undefined ? { status: f.status } : {}),
        ...(f.since !== undefined ? { since: parseTime(f.since, now, '--since') } : {}),
        ...(f.until !== undefined ? { until: parseTime(f.until, now, '--until') } : {}),
      }
      const records = [...set.records({ ...filter, ...(f.limit > 0 ? { limit: f.limit } : {}) })]
      // Counted only when the limit was reached: a short listing is the whole of it.
      const total = f.limit > 0 && records.length === f.limit ? set.countRecords(filter) : records.length
      const result = { records, total, truncated: total > records.length }
      if (!this.jsonEnabled()) this.log(renderRecordList(result, this.theme, paths.length > 1))
      return result
    } finally {
      set.close()
    }
  }
}
