/**
 * Structural diff of two JSON-shaped values (typed-JSON tags are compared as data, except
 * typed arrays, compared element by element).
 * Pure: rules and the clock come in as parameters. Every difference a rule hides is
 * returned as `suppressed` with its reason, never dropped.
 */
import {
  formatPath,
  matchPath,
  type PathPart,
  type PathPattern,
  shortestFloat32,
  TAG,
  typedArrayFrom,
} from '../codec/index.js'
import { isRedactionToken } from './redacted.js'

export type ChangeKind = 'added' | 'removed' | 'changed'

export interface Change {
  path: string
  kind: ChangeKind
  /** The value production recorded (absent for `added`). */
  recorded?: unknown
  /** The value the local build produced (absent for `removed`). */
  local?: unknown
}

export type SuppressReason = 'ignored' | 'within-tolerance' | 'redacted'

export interface Suppressed {
  path: string
  reason: SuppressReason
  recorded?: unknown
  local?: unknown
}

export interface CompiledRules {
  ignore: readonly PathPattern[]
  tolerance: readonly { pattern: PathPattern; within: number }[]
  arrayKeys: readonly { pattern: PathPattern; field: string }[]
}

export const noRules: CompiledRules = { ignore: [], tolerance: [], arrayKeys: [] }

export interface DiffLimits {
  /** Most changes reported before the diff stops and says it was cut short. */
  maxChanges: number
  /** Absolute time (by `now`) after which the diff stops and says so. */
  deadline: number
  now: () => number
}

export interface DiffResult {
  changes: Change[]
  suppressed: Suppressed[]
  /** Set when the diff stopped early (too many changes, or past its deadline). */
  truncated: { reason: 'max-changes' | 'deadline'; compared: number } | null
}

class Stop extends Error {
  constructor(readonly reason: 'max-changes' | 'deadline') {
    super(reason)
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/** Deep equality as `walk` sees it (NaN equals NaN), for subtrees a rule would hide. */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) && Number.isNaN(b)
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]))
    )
  }
  if (!isObject(a) || !isObject(b)) return false
  const keys = Object.keys(a)
  return (
    keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && sameValue(a[k], b[k]))
  )
}

const isTypedArrayTag = (v: unknown): v is Record<string, unknown> => isObject(v) && v[TAG] === 'typedarray'

/**
 * The elements of a well-formed typed-array tag as typed JSON (numbers JSON cannot hold,
 * and bigints, tagged as the codec writes them; float32 elements as the shortest decimal
 * that is the same float32), so the diff can walk them like an array and say which element
 * changed; undefined for anything else.
 */
function typedElements(v: unknown): unknown[] | undefined {
  if (!isTypedArrayTag(v)) return undefined
  const a = typedArrayFrom(v.k, v.v)
  if (a === undefined) return undefined
  const float32 = a instanceof Float32Array
  const out: unknown[] = new Array(a.length)
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!
    out[i] =
      typeof x === 'bigint'
        ? { [TAG]: 'bigint', v: x.toString() }
        : Number.isFinite(x) && !Object.is(x, -0)
          ? float32
            ? shortestFloat32(x)
            : x
          : { [TAG]: 'num', v: Object.is(x, -0) ? '-0' : String(x) }
  }
  return out
}

/** Diffs `recorded` against `local`. */
export function diffValues(
  recorded: unknown,
  local: unknown,
  rules: CompiledRules = noRules,
  limits: DiffLimits = { maxChanges: 1000, deadline: Number.POSITIVE_INFINITY, now: () => 0 },
): DiffResult {
  const changes: Change[] = []
  const suppressed: Suppressed[] = []
  const path: PathPart[] = []
  let visited = 0
  const hasRules = rules.ignore.length + rules.tolerance.length + rules.arrayKeys.length > 0

  const ignored = (): boolean => hasRules && rules.ignore.some((p) => matchPath(p.segments, path))

  const emit = (kind: ChangeKind, a: unknown, b: unknown): void => {
    const p = formatPath(path)
    if (kind === 'changed' && isRedactionToken(a)) {
      suppressed.push({ path: p, reason: 'redacted', recorded: a })
      return
    }
    if (kind === 'changed' && typeof a === 'number' && typeof b === 'number' && hasRules) {
      const tol = rules.tolerance.find((t) => matchPath(t.pattern.segments, path))
      if (tol !== undefined && Math.abs(a - b) <= tol.within) {
        suppressed.push({ path: p, reason: 'within-tolerance', recorded: a, local: b })
        return
      }
    }
    if (changes.length >= limits.maxChanges) throw new Stop('max-changes')
    const c: Change = { path: p, kind }
    if (kind !== 'added') c.recorded = a
    if (kind !== 'removed') c.local = b
    changes.push(c)
  }

  const walk = (a: unknown, b: unknown): void => {
    if ((++visited & 1023) === 0 && limits.now() > limits.deadline) throw new Stop('deadline')
    if (a === b) return
    if (ignored()) {
      // An ignored subtree that did not change is not worth a line (a Date tag is an object).
      if (sameValue(a, b)) return
      const s: Suppressed = { path: formatPath(path), reason: 'ignored' }
      if (a !== undefined) s.recorded = a
      if (b !== undefined) s.local = b
      suppressed.push(s)
      return
    }
    if (a === undefined) {
      emit('added', a, b)
      return
    }
    if (b === undefined) {
      emit('removed', a, b)
      return
    }
    if (Array.isArray(a) && Array.isArray(b)) {
      walkArrays(a, b)
      return
    }
    if ((isTypedArrayTag(a) || isTypedArrayTag(b)) && walkTyped(a, b)) return
    if (isObject(a) && isObject(b)) {
      for (const key of Object.keys(a)) {
        path.push(key)
        walk(a[key], Object.hasOwn(b, key) ? b[key] : undefined)
        path.pop()
      }
      for (const key of Object.keys(b)) {
        if (Object.hasOwn(a, key)) continue
        path.push(key)
        walk(undefined, b[key])
        path.pop()
      }
      return
    }
    if (typeof a === 'number' && typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b)) return
    emit('changed', a, b)
  }

  // Two typed arrays of one kind: the elements that changed, as if they were arrays. A typed
  // array against anything else (another kind, a plain array) is one change. False when
  // neither is a well-formed typed array: such tags are compared as the data they are.
  const walkTyped = (a: unknown, b: unknown): boolean => {
    const ea = typedElements(a)
    const eb = typedElements(b)
    if (ea === undefined && eb === undefined) return false
    if (ea !== undefined && eb !== undefined && (a as { k: unknown }).k === (b as { k: unknown }).k)
      walkArrays(ea, eb)
    else emit('changed', a, b)
    return true
  }

  const walkArrays = (a: unknown[], b: unknown[]): void => {
    const keyed = hasRules ? rules.arrayKeys.find((k) => matchPath(k.pattern.segments, path)) : undefined
    if (keyed !== undefined) {
      const identity = (v: unknown): string | undefined =>
        isObject(v) && Object.hasOwn(v, keyed.field) ? JSON.stringify(v[keyed.field]) : undefined
      const ids = (arr: unknown[]): Map<string, unknown> | undefined => {
        const m = new Map<string, unknown>()
        for (const v of arr) {
          const id = identity(v)
          if (id === undefined || m.has(id)) return undefined
          m.set(id, v)
        }
        return m
      }
      const ma = ids(a)
      const mb = ids(b)
      if (ma !== undefined && mb !== undefined) {
        for (const [id, va] of ma) {
          path.push(`${keyed.field}=${id}`)
          walk(va, mb.get(id))
          path.pop()
        }
        for (const [id, vb] of mb) {
          if (ma.has(id)) continue
          path.push(`${keyed.field}=${id}`)
          walk(undefined, vb)
          path.pop()
        }
        return
      }
    }
    const n = Math.max(a.length, b.length)
    for (let i = 0; i < n; i++) {
      path.push(i)
      walk(i < a.length ? a[i] : undefined, i < b.length ? b[i] : undefined)
      path.pop()
    }
  }

  let truncated: DiffResult['truncated'] = null
  try {
    walk(recorded, local)
  } catch (err) {
    if (!(err instanceof Stop)) throw err
    truncated = { reason: err.reason, compared: visited }
  }
  return { changes, suppressed, truncated }
}
