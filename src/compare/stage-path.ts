/**
 * `<stage>[.input|.output].<path>`: one value in a record's chain, as `find --where`,
 * `why` and invariant messages name it. The output side is the default.
 */
import { parsePath, type Segment } from '../codec/index.js'
import { UsageError } from '../errors.js'

export interface StagePath {
  stage: string
  side: 'input' | 'output'
  /** Keys and indexes only: one concrete value. */
  segments: Segment[]
  /** The path as written after the stage and side, `$.available`. */
  path: string
}

/** A stage name written bare: letters, digits, `_` and `-`, starting with a letter or `_`. */
const bareName = '[\\p{L}_][\\p{L}\\p{M}\\p{Nd}\\p{Pc}-]*'
const bare = new RegExp(`^${bareName}$`, 'u')

/**
 * A stage name as written at the start of a stage path: a name (`compute`), or any name in
 * double quotes, as JSON writes a string (`"orders.parse"`, `"step 2"`): the recorder takes
 * any text as a stage name, and one holding a dot or a space could not be named otherwise.
 */
export const STAGE_NAME = new RegExp(`"(?:[^"\\\\]|\\\\.)*"|${bareName}`, 'u')
const stagePath = new RegExp(`^\\s*(${STAGE_NAME.source})(.*?)\\s*$`, 'u')

/** A stage name as a stage path writes it: quoted when it is not a plain name. */
export function writeStageName(stage: string): string {
  return bare.test(stage) ? stage : JSON.stringify(stage)
}

/** Parses a stage path; `what` names the flag or command in error messages. */
export function parseStagePath(text: string, what: string): StagePath {
  const m = stagePath.exec(text)
  if (!m) {
    throw new UsageError(
      `${what}: cannot read ${JSON.stringify(text)}: write <stage>[.input|.output].<path>, e.g. compute.output.available`,
    )
  }
  let rest = m[2] ?? ''
  let side: StagePath['side'] = 'output'
  const sideMatch = /^\.(input|output)(?=$|[.[])/.exec(rest)
  if (sideMatch) {
    side = sideMatch[1] as StagePath['side']
    rest = rest.slice(sideMatch[0].length)
  }
  let segments: Segment[]
  try {
    segments = parsePath(`$${rest}`)
  } catch (err) {
    throw new UsageError(`${what}: ${(err as Error).message}`)
  }
  if (segments.some((s) => s.kind !== 'key' && s.kind !== 'index')) {
    throw new UsageError(`${what}: wildcards and .. are not supported here; name one path`)
  }
  return { stage: stageName(m[1]!, what), side, segments, path: `$${rest}` }
}

function stageName(written: string, what: string): string {
  if (!written.startsWith('"')) return written
  try {
    return JSON.parse(written) as string
  } catch {
    throw new UsageError(`${what}: cannot read the stage name ${written}: write it as a JSON string`)
  }
}
