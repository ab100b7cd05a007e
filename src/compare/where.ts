/**
 * `find --where` predicates: `<stage>[.input|.output].<path> <op> <value>`, for example
 * `store.available = 87`, `compute.input.delta < 0`, `query.output.source contains "cache"`.
 * Parsed here into values bound as SQL parameters; user text never becomes SQL.
 */
import { UsageError } from '../errors.js'
import { parseStagePath, STAGE_NAME } from './stage-path.js'

export type WhereOp = '=' | '!=' | '<' | '>' | '<=' | '>=' | 'contains'

export interface Where {
  stage: string
  side: 'input' | 'output'
  /** SQLite JSON path (`$."available"`). */
  jsonPath: string
  /** The path as the user wrote it, normalised (`$.available`). */
  path: string
  op: WhereOp
  value: string | number | boolean | null
}

const pattern = new RegExp(
  `^\\s*(${STAGE_NAME.source})((?:\\.|\\[)[^\\s!=<>]*)?\\s*(==|=|!=|<=|>=|<|>|\\s+contains\\s+)\\s*(.*?)\\s*$`,
  'u',
)

function parseValue(text: string): Where['value'] {
  if (text === '')
    throw new UsageError('--where needs a value after the operator, e.g. "store.available = 87"')
  if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(text)) return Number(text)
  if (text === 'true') return true
  if (text === 'false') return false
  if (text === 'null') return null
  const quote = text[0]
  if (quote === '"' || quote === "'") {
    if (text.length < 2 || !text.endsWith(quote))
      throw new UsageError(`--where: the quote that opens ${JSON.stringify(text)} is not closed`)
    return text.slice(1, -1)
  }
  // Unquoted text is a string, and SQLite ranks every string above every number: a number
  // written another way (`.5`, `1,000`, `+5`) or a second predicate (`< 87 and qty > 1`)
  // taken as text would list every record for `<` and none for `>`, as if it were an answer.
  if (/\s/.test(text)) {
    throw new UsageError(
      `--where takes one predicate, and a value with spaces is quoted: ${JSON.stringify(text)} is neither`,
    )
  }
  if (/^[-+]?(\d[\d,_]*)?(\.\d*)?([eE][-+]?\d+)?$/.test(text)) {
    throw new UsageError(
      `--where: cannot read ${JSON.stringify(text)} as a number; write it as digits (1000, 0.5, -3, 1e6), or quote it to compare as text`,
    )
  }
  return text
}

export function parseWhere(text: string): Where {
  const m = pattern.exec(text)
  if (!m) {
    throw new UsageError(
      `cannot read --where ${JSON.stringify(text)}: write <stage>[.input|.output].<path> <op> <value>, op one of = != < > <= >= contains`,
    )
  }
  const target = parseStagePath(`${m[1]!}${m[2] ?? ''}`, '--where')
  let jsonPath = '$'
  for (const seg of target.segments) {
    if (seg.kind === 'key') {
      if (seg.name.includes('"')) throw new UsageError('--where: keys containing " cannot be searched')
      jsonPath += `."${seg.name}"`
    } else if (seg.kind === 'index') jsonPath += `[${seg.index}]`
  }
  const rawOp = m[3]!.trim()
  const op = (rawOp === '==' ? '=' : rawOp) as WhereOp
  return { stage: target.stage, side: target.side, jsonPath, path: target.path, op, value: parseValue(m[4]!) }
}
