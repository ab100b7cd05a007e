/**
 * Structural diff of two typed-JSON values, walked as the user's data (src/compare/typed.ts):
 * a Date, BigInt or undefined is one value, Sets and Maps are walked by item and by key, so
 * every path names a place in what the stage returned and never a tag that stores it.
 * Values are reported as stored (typed JSON); renderers show them as what they stand for.
 * Pure: rules and the clock come in as parameters. Every difference a rule hides is
 * returned as `suppressed` with its reason, never dropped.
 */
import { diffArrays } from 'diff'
import { compact } from '../codec/display.js'
import { formatPath, matchPath, type PathPart, type PathPattern } from '../codec/index.js'
import { isRedactionToken } from './redacted.js'
import { isArrayTag, type Shape, shapeOf, typedArrayOf, typedElement } from './typed.js'

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

/** How a diff path names an array item matched by `arrayKeys`: its field and value, `id="p0"`. */
export function keyedItemLabel(fieldValue: unknown, field: string): string {
  return `${field}=${compact(fieldValue)}`
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

/** A number as tolerance reads it: -0 is stored as a `num` tag, and is 0 away from 0. */
function numberOf(v: unknown): number | undefined {
  if (typeof v === 'number') return v
  return isObject(v) && v.$t === 'num' && v.v === '-0' && Object.keys(v).length === 2 ? -0 : undefined
}

/** A BigInt as typed JSON stores it (`{"$t":"bigint","v":"1025"}`). */
function bigintOf(v: unknown): bigint | undefined {
  return isObject(v) && v.$t === 'bigint' && typeof v.v === 'string' && /^-?\d+$/.test(v.v)
    ? BigInt(v.v)
    : undefined
}

/** A Date as typed JSON stores it (`{"$t":"date","v":"2026-03-01T10:00:00.000Z"}`), in ms. */
function dateOf(v: unknown): number | undefined {
  if (!isObject(v) || v.$t !== 'date' || typeof v.v !== 'string') return undefined
  const ms = Date.parse(v.v)
  return Number.isNaN(ms) ? undefined : ms
}

/**
 * How far apart two values are, as tolerance reads them: two numbers, two BigInts (cents
 * kept as BigInt), or two Dates (in milliseconds); undefined for any other pair. `slack` is
 * how far the gap between two decimals can be from the gap between the doubles that stand
 * for them (4.36 - 4.35 is 0.010000000000000675): each double is within half a unit in
 * the last place of its decimal, and that unit is at most EPSILON times the value. So a
 * difference of exactly the tolerance, as the user wrote all three in decimal, is within
 * it, and one more than EPSILON times the larger value over it is not.
 */
function gapOf(a: unknown, b: unknown): { gap: number; slack: number } | undefined {
  const na = numberOf(a)
  const nb = na === undefined ? undefined : numberOf(b)
  if (na !== undefined && nb !== undefined) {
    return { gap: Math.abs(na - nb), slack: Number.EPSILON * Math.max(Math.abs(na), Math.abs(nb)) }
  }
  const ba = bigintOf(a)
  const bb = ba === undefined ? undefined : bigintOf(b)
  if (ba !== undefined && bb !== undefined) return { gap: Number(ba > bb ? ba - bb : bb - ba), slack: 0 }
  const da = dateOf(a)
  const db = da === undefined ? undefined : dateOf(b)
  return da !== undefined && db !== undefined ? { gap: Math.abs(da - db), slack: 0 } : undefined
}

/**
 * JSON text of a value with every object's keys in sorted order: two items equal as
 * `sameValue` sees them (key order aside) get the same text, and are lined up as one.
 */
function canonicalText(v: unknown): string {
  return (
    JSON.stringify(v, (_key, value: unknown) => {
      if (!isObject(value)) return value
      const sorted: Record<string, unknown> = {}
      for (const k of Object.keys(value).sort()) sorted[k] = value[k]
      return sorted
    }) ?? 'undefined'
  )
}

/** Most insertions plus removals `alignItems` looks for, and the longest it may take (ms). */
const maxEdits = 256
const maxAlignMs = 20

/**
 * Two arrays of different lengths lined up item by item, as the shortest run of insertions
 * and removals that turns one into the other (jsdiff's Myers diff over the items' typed-JSON
 * text), with the items that differ paired where a removal meets an insertion: pairs
 * `[recordedIndex, localIndex]`, -1 for the side an item is missing from. Items equal on
 * both sides are left out. Undefined when no alignment within `maxEdits` is found in
 * `timeoutMs`, and the arrays are then compared by position.
 */
function alignItems(
  a: readonly unknown[],
  b: readonly unknown[],
  timeoutMs: number,
  /** Whether the diff's own deadline has passed: reading the items gives up then. */
  late: () => boolean,
): [number, number][] | undefined {
  const ids = new Map<string, number>()
  const idOf = (v: unknown): number => {
    let text: string
    try {
      text = canonicalText(v)
    } catch {
      return -1 - ids.size // never equal to another item
    }
    let id = ids.get(text)
    if (id === undefined) {
      id = ids.size
      ids.set(text, id)
    }
    return id
  }
  // Reading the items is bounded by the diff's deadline, as the walk is (megabytes of items
  // give up as a diff that runs out of time does); the search for an alignment by its own.
  const idsOf = (arr: readonly unknown[]): number[] | undefined => {
    const out = new Array<number>(arr.length)
    for (let i = 0; i < arr.length; i++) {
      if ((i & 15) === 15 && late()) return undefined
      out[i] = idOf(arr[i])
    }
    return out
  }
  const ia0 = idsOf(a)
  const ib0 = ia0 === undefined ? undefined : idsOf(b)
  if (ia0 === undefined || ib0 === undefined) return undefined
  const edits = diffArrays(ia0, ib0, {
    comparator: (x, y) => x === y && x >= 0,
    maxEditLength: maxEdits,
    timeout: timeoutMs,
  })
  if (edits === undefined) return undefined
  // Each run of removals and insertions between equal items: paired in order as changes,
  // the rest added or removed.
  const out: [number, number][] = []
  const removed: number[] = []
  const added: number[] = []
  const flush = (): void => {
    const both = Math.min(removed.length, added.length)
    for (let q = 0; q < both; q++) out.push([removed[q]!, added[q]!])
    for (let q = both; q < removed.length; q++) out.push([removed[q]!, -1])
    for (let q = both; q < added.length; q++) out.push([-1, added[q]!])
    removed.length = 0
    added.length = 0
  }
  let ia = 0
  let ib = 0
  for (const edit of edits) {
    const n = edit.count
    if (edit.removed) for (let q = 0; q < n; q++) removed.push(ia++)
    else if (edit.added) for (let q = 0; q < n; q++) added.push(ib++)
    else {
      flush()
      ia += n
      ib += n
    }
  }
  flush()
  return out
}

/** Deep equality as `walk` sees it (NaN equals NaN), for subtrees a rule would hide. */
function sameValue(a: unknown, b: unknown, levels = Number.POSITIVE_INFINITY): boolean {
  if (a === b) return true
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) && Number.isNaN(b)
  if (levels <= 0) return false
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i], b[i], levels - 1)) return false
    return true
  }
  if (!isObject(a) || !isObject(b)) return false
  const keys = Object.keys(a)
  if (keys.length !== Object.keys(b).length) return false
  for (const k of keys) if (!Object.hasOwn(b, k) || !sameValue(a[k], b[k], levels - 1)) return false
  return true
}

/**
 * How deep the look before a walk (`sameLengthPairs`, `shifted`) compares items: the walk
 * itself may already be 2,000 levels down a payload, and a look as deep again on top of it
 * would run out of stack. Items equal only below this depth count as differing, and the
 * walk, which compares them anyway, finds nothing there.
 */
const lookLevels = 64

/**
 * Whether lining up may help arrays of one length: an object or array that differs by
 * position (the first, middle or last such) equals an item of the other side a few places
 * away, either way. Items that changed in place (the usual case) fail at their first
 * differing field, so this costs little, and lining up (which reads every item) is paid
 * only when it may help.
 */
function shifted(
  a: readonly unknown[],
  b: readonly unknown[],
  differ: readonly [number, number][],
  late: () => boolean,
): boolean {
  const reach = maxEdits / 2
  const same = (x: unknown, y: unknown): boolean => sameValue(x, y, lookLevels)
  for (const i of new Set([differ[0]![0], differ[differ.length >> 1]![0], differ[differ.length - 1]![0]])) {
    // Scalars repeat (zeros, flags, counters that all went up by one): one found a few
    // places away says nothing of a shift, and lining them up would misname what changed.
    if (typeof a[i] !== 'object' || a[i] === null || typeof b[i] !== 'object' || b[i] === null) continue
    for (let d = 1; d <= reach && (i + d < a.length || i - d >= 0); d++) {
      if ((d & 15) === 0 && late()) return false
      if (i + d < a.length && (same(a[i], b[i + d]) || same(a[i + d], b[i]))) return true
      if (i - d >= 0 && (same(a[i], b[i - d]) || same(a[i - d], b[i]))) return true
    }
  }
  return false
}

/** Index pairs comparing two arrays by position, -1 where one side has no item. */
function byPosition(n: number, m: number): [number, number][] {
  const out: [number, number][] = []
  for (let i = 0; i < Math.max(n, m); i++) out.push([i < n ? i : -1, i < m ? i : -1])
  return out
}

/**
 * The items to compare in arrays of one length. Most changed in place and are compared by
 * position; when two or more items differ and one of them, an object or array, equals an
 * item of the other side a few places away, the arrays are lined up as well, and the
 * alignment is taken instead when it pairs fewer items (a window that moved on by one: one
 * removed, one added, not a change at every index). Items equal at their position are left
 * out: nothing in them differs.
 */
function sameLengthPairs(
  a: readonly unknown[],
  b: readonly unknown[],
  budget: () => number,
  late: () => boolean,
): [number, number][] {
  const differ: [number, number][] = []
  for (let i = 0; i < a.length; i++) {
    // Out of time: the rest is compared by position, and the walk reports what it finds
    // before its own look at the clock stops it.
    if ((i & 255) === 255 && late()) {
      for (; i < a.length; i++) differ.push([i, i])
      return differ
    }
    if (!sameValue(a[i], b[i], lookLevels)) differ.push([i, i])
  }
  if (differ.length < 2 || !shifted(a, b, differ, late)) return differ
  const steps = alignItems(a, b, budget(), late)
  return steps !== undefined && steps.length < differ.length ? steps : differ
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
    const gap = kind === 'changed' && rules.tolerance.length > 0 ? gapOf(a, b) : undefined
    if (gap !== undefined) {
      const tol = rules.tolerance.find((t) => matchPath(t.pattern.segments, path))
      if (
        tol !== undefined &&
        (gap.gap <= tol.within ||
          (tol.within > 0 && gap.gap - tol.within <= gap.slack + Number.EPSILON * tol.within))
      ) {
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
    if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) {
      if (typeof a === 'number' && typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b)) return
      emit('changed', a, b)
      return
    }
    // Plain arrays and objects (nearly every node) before anything typed JSON can be.
    if (Array.isArray(a) && Array.isArray(b)) {
      walkArrays(a, b)
      return
    }
    if (isObject(a) && isObject(b) && typeof a.$t !== 'string' && typeof b.$t !== 'string') {
      walkObjects(a, b)
      return
    }
    if (isArrayTag(a) || isArrayTag(b)) {
      walkTyped(a, b)
      return
    }
    const sa = shapeOf(a)
    const sb = shapeOf(b)
    if (
      sa.kind === 'leaf' ||
      sa.kind !== sb.kind ||
      (sa.kind === 'typed' && sb.kind === 'typed' && sa.name !== sb.name)
    ) {
      // A tag stands for one value (a Date, a BigInt): equal tags are the same value.
      if (sameValue(a, b)) return
      emit('changed', a, b)
      return
    }
    if (
      (sa.kind === 'array' || sa.kind === 'set' || sa.kind === 'typed') &&
      (sb.kind === 'array' || sb.kind === 'set' || sb.kind === 'typed')
    ) {
      walkArrays(sa.items, sb.items)
      return
    }
    if (sa.kind === 'object' && sb.kind === 'object') {
      walkObjects(sa.fields, sb.fields)
      return
    }
    if (sa.kind === 'map' && sb.kind === 'map') walkMaps(a, b, sa, sb)
  }

  /**
   * Typed arrays element by element and binary data byte by byte, and only the elements
   * that differ become values and paths: equal tags are equal arrays, and a large array is
   * compared as numbers.
   */
  const walkTyped = (a: object, b: object): void => {
    const [ra, rb] = [a as Record<string, unknown>, b as Record<string, unknown>]
    if (ra.$t === rb.$t && ra.k === rb.k && ra.v === rb.v && sameValue(a, b)) return
    const ta = typedArrayOf(a)
    const tb = typedArrayOf(b)
    if (ta === undefined || tb === undefined || ta.name !== tb.name) {
      // A kind change, or a malformed tag, is one value.
      if (!sameValue(a, b)) emit('changed', a, b)
      return
    }
    const x = ta.elements
    const y = tb.elements
    const float32 = ta.name === 'Float32Array'
    const n = Math.max(x.length, y.length)
    for (let i = 0; i < n; i++) {
      if (i < x.length && i < y.length && Object.is(x[i], y[i])) {
        if ((i & 0xffff) === 0xffff && limits.now() > limits.deadline) throw new Stop('deadline')
        continue
      }
      path.push(i)
      walk(
        i < x.length ? typedElement(x[i]!, float32) : undefined,
        i < y.length ? typedElement(y[i]!, float32) : undefined,
      )
      path.pop()
    }
  }

  const walkObjects = (a: Record<string, unknown>, b: Record<string, unknown>): void => {
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
  }

  /** Entries by key when both Maps allow it, else `[key, value]` pairs by position. */
  const walkMaps = (
    a: unknown,
    b: unknown,
    sa: Extract<Shape, { kind: 'map' }>,
    sb: Extract<Shape, { kind: 'map' }>,
  ): void => {
    const ka = sa.keyed
    const kb = sb.keyed
    if (ka === null || kb === null) {
      walkArrays(sa.pairs as unknown[], sb.pairs as unknown[])
      return
    }
    for (const [key, va] of ka) {
      path.push(key)
      walk(va, kb.has(key) ? kb.get(key) : undefined)
      path.pop()
    }
    for (const [key, vb] of kb) {
      if (ka.has(key)) continue
      path.push(key)
      walk(undefined, vb)
      path.pop()
    }
    // A Map iterates in insertion order: the keys both hold, in another order, make it
    // differ as a whole, whatever the entries did (and whatever a rule hid in them).
    const order = (m: Map<PathPart, unknown>, other: Map<PathPart, unknown>): PathPart[] =>
      [...m.keys()].filter((k) => other.has(k))
    const oa = order(ka, kb)
    const ob = order(kb, ka)
    if (oa.some((k, i) => k !== ob[i])) emit('changed', a, b)
  }

  const walkArrays = (a: readonly unknown[], b: readonly unknown[]): void => {
    const keyed = hasRules ? rules.arrayKeys.find((k) => matchPath(k.pattern.segments, path)) : undefined
    if (keyed !== undefined) {
      // The identity is the field as the user's object holds it (through the wrapper of an
      // object with its own `$t` key), named as a diff line shows it (`id=1n`).
      const identity = (v: unknown): { id: string; label: string } | undefined => {
        const s = shapeOf(v)
        if (s.kind !== 'object' || !Object.hasOwn(s.fields, keyed.field)) return undefined
        const field = s.fields[keyed.field]
        return { id: JSON.stringify(field) ?? 'undefined', label: keyedItemLabel(field, keyed.field) }
      }
      // Items without the field (a total row among order lines) are matched with each other
      // in order and named by index; a duplicate identity leaves the array to positions.
      const ids = (
        arr: readonly unknown[],
      ): { m: Map<string, { label: string; item: unknown }>; rest: number[] } | undefined => {
        const m = new Map<string, { label: string; item: unknown }>()
        const rest: number[] = []
        for (let i = 0; i < arr.length; i++) {
          const key = identity(arr[i])
          if (key === undefined) rest.push(i)
          else if (m.has(key.id)) return undefined
          else m.set(key.id, { label: key.label, item: arr[i] })
        }
        return { m, rest }
      }
      const ka = ids(a)
      const kb = ids(b)
      if (ka !== undefined && kb !== undefined && ka.m.size + kb.m.size > 0) {
        const [ma, mb] = [ka.m, kb.m]
        for (const [id, ea] of ma) {
          path.push(ea.label)
          walk(ea.item, mb.get(id)?.item)
          path.pop()
        }
        for (const [id, eb] of mb) {
          if (ma.has(id)) continue
          path.push(eb.label)
          walk(undefined, eb.item)
          path.pop()
        }
        for (let q = 0; q < Math.max(ka.rest.length, kb.rest.length); q++) {
          const [ia, ib] = [ka.rest[q], kb.rest[q]]
          path.push((ia ?? ib)!)
          walk(ia === undefined ? undefined : a[ia], ib === undefined ? undefined : b[ib])
          path.pop()
        }
        return
      }
    }
    const alignBudget = (): number => Math.min(maxAlignMs, Math.max(1, limits.deadline - limits.now()))
    const late = (): boolean => limits.now() > limits.deadline
    // Which items to compare with which is settled first, and then walked here: a walk of
    // arrays nested 2,000 deep puts no more than walk and walkArrays on the stack per level.
    const pairs =
      a.length === b.length
        ? sameLengthPairs(a, b, alignBudget, late)
        : (alignItems(a, b, alignBudget(), late) ?? byPosition(a.length, b.length))
    // An item inserted or left out is one line, named by its index in the array that holds
    // it (local for added, recorded otherwise), not a change at every later index.
    for (const [i, j] of pairs) {
      path.push(i >= 0 ? i : j)
      walk(i >= 0 ? a[i] : undefined, j >= 0 ? b[j] : undefined)
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
