import { BundleSet } from '../bundle/index.js'
import { RetraceCommand } from '../cli/base-command.js'
import { bundleArg } from '../cli/flags.js'
import { Flags } from '../cli/oclif.js'
import { parseJson } from '../codec/index.js'
import { parseWhere, type Where } from '../compare/where.js'
import { visibleLine, visibleName } from '../render/format.js'
import { type FindRow, renderFind } from '../render/listing.js'

export interface FindResult {
  where: Where
  records: FindRow[]
  /** How many records match, listed or not. */
  total: number
  /** Whether --limit left some out (`total` > `records.length`). */
  truncated: boolean
}

export default class Find extends RetraceCommand<typeof Find> {
  static override args = { bundle: bundleArg }
  static override description =
    `Finds records by a value a stage produced (or received): <stage>[.input|.output].<path> <op> <value>, with op one of = != < > <= >= contains. Paths are JSON paths into the payload; the output side is the default. A stage whose name holds a dot or a space is written in double quotes ('"orders.parse".qty = 2'). A value is a number (as digits: 1000, 0.5, -3), true, false, null, or text: quoted, or one word unquoted; one predicate per --where. Values are bound as parameters to SQLite's JSON functions, never pasted into SQL.

Values JSON cannot hold compare as what they stand for: a BigInt by its integer value, a Date by its ISO text against a string ("parse.receivedAt > '2030-01-01'") and by epoch milliseconds against a number, -0 and the infinities as numbers, NaN equal to nothing, undefined as a missing value. contains looks inside text, inside the JSON text of an object or array, and among a Set's items or a Map's entries ("parse.tags contains 'vip'").`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> recordings/inventory.sqlite --where "store.available = 87"',
    '<%= config.bin %> <%= command.id %> recordings/inventory.sqlite --where "compute.input.change.delta.available < 0"',
  ]
  static override flags = {
    limit: Flags.integer({ char: 'n', default: 50, description: 'Most records to list (0: all).', min: 0 }),
    where: Flags.string({
      char: 'w',
      description: 'The predicate, e.g. "store.available = 87".',
      required: true,
    }),
  }
  static override summary = 'Find records by value.'

  async run(): Promise<FindResult> {
    const where = parseWhere(this.flags.where)
    const set = BundleSet.open([this.args.bundle])
    try {
      const reader = set.readers[0]!
      const rows: FindRow[] = []
      const limit = this.flags.limit > 0 ? this.flags.limit : undefined
      for (const hit of reader.find(where, limit))
        rows.push({ ...hit, value: jsonValue(hit.value), source: reader.path })
      // Counted only when the limit was reached: a short listing is the whole of it.
      const total = limit !== undefined && rows.length === limit ? reader.countFound(where) : rows.length
      const result = { where, records: rows, total, truncated: total > rows.length }
      if (!this.jsonEnabled()) this.log(renderFind(result, this.flags.where, this.theme))
      if (rows.length === 0) {
        // A misspelt stage finds nothing, as a value nobody has does: say which it is.
        const stages = reader.stageNames()
        if (!stages.includes(where.stage)) {
          this.note(
            this.theme.dim(
              `the bundle has no stage ${visibleLine(JSON.stringify(where.stage))}; its stages: ${stages.map(visibleName).join(', ') || 'none'}`,
            ),
          )
        }
      }
      return result
    } finally {
      set.close()
    }
  }
}

/** SQLite returns objects and arrays from json_extract as JSON text; show them as values. */
function jsonValue(v: unknown): unknown {
  if (typeof v !== 'string' || !/^[[{]/.test(v)) return v
  try {
    return parseJson(v)
  } catch {
    return v
  }
}
