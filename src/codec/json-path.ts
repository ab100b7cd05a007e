/**
 * The small JSONPath subset retrace speaks everywhere a path is written by a person:
 * redaction rules, diff rules and `find --where`.
 *
 *     $                 the root
 *     .name  ['name']   a key
 *     [3]               an array index
 *     .*  [*]           any key or index
 *     ..name  ..*       at any depth below
 */

export type PathPart = string | number

export type Segment =
  | { kind: 'key'; name: string }
  | { kind: 'index'; index: number }
  | { kind: 'wild' }
  | { kind: 'descend' }

export class PathSyntaxError extends Error {
  override readonly name = 'PathSyntaxError'
  constructor(
    readonly path: string,
    readonly column: number,
    reason: string,
  ) {
    super(`bad path ${JSON.stringify(path)} at column ${column + 1}: ${reason}`)
  }
}

// Key names as JavaScript spells them, in any script (`préavis`, `κωδικός`, `数量`).
const identifier = /^[\p{L}\p{Nl}_$][\p{L}\p{Nl}\p{M}\p{Nd}\p{Pc}$-]*/u

/** Parses a path expression; throws PathSyntaxError pointing at the column. */
export function parsePath(source: string): Segment[] {
  const segments: Segment[] = []
  let text = source
  let i = 0
  // Columns are reported against `source`, also when a bare path was rewritten.
  let shift = 0
  const syntaxError = (at: number, reason: string): PathSyntaxError =>
    new PathSyntaxError(source, Math.max(0, at - shift), reason)
  if (text.startsWith('$')) i = 1
  else if (text.length > 0 && text[0] !== '.' && text[0] !== '[') {
    // A bare `a.b` is accepted as `$.a.b`.
    text = `$.${text}`
    shift = 2
    i = 1
  }
  while (i < text.length) {
    const ch = text[i]
    if (ch === '.') {
      if (text[i + 1] === '.') {
        segments.push({ kind: 'descend' })
        i += 2
        if (text[i] === '[') continue
      } else {
        i += 1
      }
      if (text[i] === '*') {
        segments.push({ kind: 'wild' })
        i += 1
        continue
      }
      const m = identifier.exec(text.slice(i))
      if (!m) throw syntaxError(i, 'expected a key name')
      segments.push({ kind: 'key', name: m[0] })
      i += m[0].length
    } else if (ch === '[') {
      let j = i + 1
      while (text[j] === ' ') j++
      const quote = text[j]
      if (quote === "'" || quote === '"') {
        // Scan the quoted key itself, so a `]` inside the quotes does not end the bracket.
        let k = j + 1
        let name = ''
        while (k < text.length && text[k] !== quote) {
          if (text[k] === '\\' && k + 1 < text.length) k++
          name += text[k]
          k++
        }
        if (k >= text.length) throw syntaxError(j, `missing closing ${quote}`)
        // A double-quoted key is read as a JSON string when it is one, so that what
        // formatPath writes (`["tab\t"]`) parses back to the same key.
        if (quote === '"') name = jsonString(text.slice(j, k + 1)) ?? name
        k++
        while (text[k] === ' ') k++
        if (text[k] !== ']') throw syntaxError(k, "missing ']'")
        segments.push({ kind: 'key', name })
        i = k + 1
        continue
      }
      const rest = text.slice(i + 1)
      const close = rest.indexOf(']')
      if (close < 0) throw syntaxError(i, "missing ']'")
      const inner = rest.slice(0, close).trim()
      if (inner === '*') segments.push({ kind: 'wild' })
      else if (/^\d+$/.test(inner)) segments.push({ kind: 'index', index: Number(inner) })
      else throw syntaxError(i + 1, 'expected *, an index or a quoted key')
      i += close + 2
    } else {
      throw syntaxError(i, "expected '.' or '['")
    }
  }
  if (segments.at(-1)?.kind === 'descend') throw syntaxError(text.length, "'..' needs a key after it")
  return segments
}

function jsonString(quoted: string): string | undefined {
  try {
    const v: unknown = JSON.parse(quoted)
    return typeof v === 'string' ? v : undefined
  } catch {
    return undefined
  }
}

function matchFrom(segs: readonly Segment[], si: number, path: readonly PathPart[], pi: number): boolean {
  if (si === segs.length) return pi === path.length
  const seg = segs[si]!
  if (seg.kind === 'descend') {
    for (let k = pi; k <= path.length; k++) if (matchFrom(segs, si + 1, path, k)) return true
    return false
  }
  if (pi >= path.length) return false
  const part = path[pi]!
  switch (seg.kind) {
    case 'wild':
      break
    case 'key':
      if (String(part) !== seg.name) return false
      break
    case 'index':
      if (part !== seg.index) return false
      break
  }
  return matchFrom(segs, si + 1, path, pi + 1)
}

/** True when the concrete path (keys and indexes from the root) matches the pattern. */
export function matchPath(segments: readonly Segment[], path: readonly PathPart[]): boolean {
  return matchFrom(segments, 0, path, 0)
}

/** A compiled pattern and the text it came from. */
export interface PathPattern {
  readonly source: string
  readonly segments: readonly Segment[]
}

export function compilePath(source: string): PathPattern {
  return { source, segments: parsePath(source) }
}

/** Formats a concrete path as `$.a.b[0]["odd key"]`. */
export function formatPath(path: readonly PathPart[]): string {
  let out = '$'
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else if (/^[A-Za-z_$][\w$]*$/.test(part)) out += `.${part}`
    else out += `[${JSON.stringify(part)}]`
  }
  return out
}

/** Reads the value at a concrete (wildcard-free) pattern; undefined when absent. */
export function getAt(value: unknown, segments: readonly Segment[]): unknown {
  let cur = value
  for (const seg of segments) {
    if (cur === null || typeof cur !== 'object') return undefined
    if (seg.kind === 'key') {
      if (!Object.hasOwn(cur, seg.name)) return undefined
      cur = (cur as Record<string, unknown>)[seg.name]
    } else if (seg.kind === 'index') {
      if (!Array.isArray(cur)) return undefined
      cur = cur[seg.index]
    } else return undefined
  }
  return cur
}
