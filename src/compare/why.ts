/**
 * `why`: where did this value come from? From a path in a stage's output, walk back
 * through the recorded chain to the stage that produced or last changed it, and gather
 * the evidence around it: what its input held, what its effects returned (and which of
 * those numbers add up to the value), the retry or degraded path it took, and any seam
 * where the value changed in transit. Provenance by evidence, not a proof.
 */
import type { RecordChain } from '../bundle/types.js'
import { formatPath, type PathPart, parsePath, TAG } from '../codec/index.js'
import { UsageError } from '../errors.js'
import { briefPair } from './brief.js'
import { keyedItemLabel } from './diff.js'
import { handoffs } from './handoff.js'
import { finalCaptures, readError, readPayload } from './scene.js'
import { parseStagePath as parseAnyStagePath, type StagePath, writeStageName } from './stage-path.js'
import { childrenOf, isUndefinedValue, readPath, shapeOf } from './typed.js'

export type { StagePath }

/** Parses the PATH argument of `why`. */
export function parseStagePath(text: string): StagePath {
  return parseAnyStagePath(text, 'why')
}

export interface Evidence {
  kind: 'input' | 'effect' | 'arithmetic' | 'retry' | 'degraded' | 'seam' | 'error'
  text: string
}

export interface TrailStep {
  stage: string
  attempt: number
  value: unknown
  /** On the step that changed the value: what it was before. */
  before?: unknown
  note: string
}

export interface WhyReport {
  recordId: string
  key: string
  start: { stage: string; side: 'input' | 'output'; path: string; value: unknown }
  /** The stage where the value was produced or last changed (or a seam). */
  origin: {
    stage: string
    attempt: number
    how: 'produced' | 'changed' | 'in-transit' | 'recorded-input'
  } | null
  trail: TrailStep[]
  evidence: Evidence[]
  caveat: string
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

/**
 * A recorded quantity: a finite number, a BigInt or a Date (its milliseconds), read from
 * the typed JSON that stores the last two (`{"$t":"bigint","v":"1025"}`).
 */
type Quantity =
  | { kind: 'number'; value: number }
  | { kind: 'bigint'; value: bigint }
  | { kind: 'date'; value: number }

interface Leaf {
  where: string
  quantity: Quantity
}

function quantityOf(v: unknown): Quantity | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? { kind: 'number', value: v } : undefined
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined
  const o = v as Record<string, unknown>
  if (typeof o.v !== 'string') return undefined
  if (o[TAG] === 'bigint' && /^-?\d+$/.test(o.v)) return { kind: 'bigint', value: BigInt(o.v) }
  if (o[TAG] === 'date') {
    const ms = Date.parse(o.v)
    return Number.isNaN(ms) ? undefined : { kind: 'date', value: ms }
  }
  return undefined
}

function quantityText(q: Quantity): string {
  if (q.kind === 'bigint') return `${q.value}n`
  if (q.kind === 'date') return `Date(${new Date(q.value).toISOString()})`
  return String(q.value)
}

/** A BigInt, or a number that is an integer exactly: what BigInt arithmetic can take. */
function exact(q: Quantity): bigint | undefined {
  if (q.kind === 'bigint') return q.value
  if (q.kind === 'number' && Number.isSafeInteger(q.value)) return BigInt(q.value)
  return undefined
}

/**
 * Whether `a op b` gives `target`, as the stage would have computed it: numbers as
 * numbers, BigInts (with whole numbers beside them) exactly, a date less a date as the
 * milliseconds between, a date plus or less milliseconds as a date.
 */
function adds(a: Quantity, op: '+' | '-', b: Quantity, target: Quantity): boolean {
  if (a.kind === 'date' || b.kind === 'date' || target.kind === 'date') {
    if (target.kind === 'date') {
      if (a.kind !== 'date' || b.kind !== 'number') return false
      return (op === '+' ? a.value + b.value : a.value - b.value) === target.value
    }
    return op === '-' && a.kind === 'date' && b.kind === 'date' && a.value - b.value === target.value
  }
  if (a.kind === 'number' && b.kind === 'number' && target.kind === 'number')
    return (op === '+' ? a.value + b.value : a.value - b.value) === target.value
  const [x, y, t] = [exact(a), exact(b), exact(target)]
  if (x === undefined || y === undefined || t === undefined) return false
  return (op === '+' ? x + y : x - y) === t
}

function numericLeaves(value: unknown, prefix: string, limit = 300): Leaf[] {
  const out: Leaf[] = []
  const path: PathPart[] = []
  const walk = (v: unknown, depth: number): void => {
    if (out.length >= limit || depth > 32) return
    const quantity = quantityOf(v)
    if (quantity !== undefined) {
      out.push({ where: `${prefix}${formatPath(path).slice(1)}`, quantity })
      return
    }
    for (const [part, item] of childrenOf(v)) {
      path.push(part)
      walk(item, depth + 1)
      path.pop()
    }
  }
  walk(value, 0)
  return out
}

/**
 * A BigInt and a whole number of the same value (`BigInt(order.qty)`): the same value as
 * evidence, though a seam between them is a change.
 */
function sameNumber(a: unknown, b: unknown): boolean {
  const [qa, qb] = [quantityOf(a), quantityOf(b)]
  if (qa === undefined || qb === undefined || qa.kind === qb.kind) return false
  const [x, y] = [exact(qa), exact(qb)]
  return x !== undefined && x === y
}

function leavesEqual(value: unknown, target: unknown, prefix: string, limit = 5): string[] {
  const out: string[] = []
  const path: PathPart[] = []
  const walk = (v: unknown, depth: number): void => {
    if (out.length >= limit || depth > 32) return
    if ((same(v, target) || sameNumber(v, target)) && path.length > 0) {
      out.push(`${prefix}${formatPath(path).slice(1)}`)
      return
    }
    for (const [part, item] of childrenOf(v)) {
      path.push(part)
      walk(item, depth + 1)
      path.pop()
    }
  }
  // Two undefined values are the same by default, not by evidence.
  if (isUndefinedValue(target)) return out
  walk(value, 0)
  return out
}

/** How many numbers of a stage's effect results (and, apart, of its input) sums are looked for among. */
const maxArithmeticLeaves = 300

/**
 * Pairs of recorded quantities (from the stage's input and its effects' results) whose
 * sum or difference is the value; pairs whose fields are named like the value's own come
 * first, then those holding an effect's result.
 */
function arithmetic(target: Quantity, name: string, effects: Leaf[], inputs: Leaf[]): string[] {
  const found: { text: string; score: number; effect: boolean }[] = []
  const named = (l: Leaf): number => (l.where.endsWith(`.${name}`) ? 1 : 0)
  const shown = quantityText(target)
  const leaves = [...effects, ...inputs]
  for (const [i, a] of leaves.entries()) {
    if (found.length >= 200) break
    for (const [j, b] of leaves.entries()) {
      if (i === j || b.quantity.value === 0 || b.quantity.value === 0n || found.length >= 200) continue
      const score = named(a) + named(b)
      const effect = i < effects.length || j < effects.length
      const text = (op: string): string =>
        `${a.where} (${quantityText(a.quantity)}) ${op} ${b.where} (${quantityText(b.quantity)}) = ${shown}`
      // A sum is found once, whichever of the two comes first.
      if (i < j && adds(a.quantity, '+', b.quantity, target)) found.push({ text: text('+'), score, effect })
      else if (adds(a.quantity, '-', b.quantity, target)) found.push({ text: text('-'), score, effect })
    }
  }
  return found
    .sort((x, y) => y.score - x.score || Number(y.effect) - Number(x.effect))
    .slice(0, 3)
    .map((f) => f.text)
}

export function explain(chain: RecordChain, start: StagePath): WhyReport {
  const finals = finalCaptures(chain.captures)
  const fed = handoffs(chain.captures)
  const index = finals.findIndex((c) => c.stage === start.stage)
  if (index < 0) {
    throw new UsageError(
      `record ${chain.record.id} has no stage ${JSON.stringify(start.stage)} (stages: ${finals.map((c) => c.stage).join(', ')})`,
    )
  }
  const startCapture = finals[index]!
  const startPayload = readPayload(start.side === 'output' ? startCapture.output : startCapture.input)
  const value = readPath(startPayload, start.segments)
  if (value === undefined) {
    throw new UsageError(
      `${start.stage}.${start.side} has nothing at ${start.path} in record ${chain.record.id}`,
    )
  }
  const report: WhyReport = {
    recordId: chain.record.id,
    key: chain.record.key,
    start: { stage: start.stage, side: start.side, path: start.path, value },
    origin: null,
    trail: [],
    evidence: [],
    caveat:
      'Provenance by evidence: values equal to or adding up to the one asked about. A match can be a coincidence; read the stage to confirm.',
  }
  let i = index
  let side = start.side
  while (i >= 0) {
    const c = finals[i]!
    const input = readPayload(c.input)
    const output = readPayload(c.output)
    const here = readPath(side === 'output' ? output : input, start.segments)
    if (side === 'output') {
      const before = readPath(input, start.segments)
      if (before !== undefined && same(before, here)) {
        report.trail.push({
          stage: c.stage,
          attempt: c.attempt,
          value: here,
          note: 'passed through unchanged',
        })
        side = 'input'
        continue
      }
      // This stage produced or changed the value.
      const step: TrailStep = { stage: c.stage, attempt: c.attempt, value: here, note: 'produced here' }
      if (before !== undefined) {
        const p = briefPair(before, here)
        step.before = before
        step.note = `changed here from ${p.recorded}${p.at === undefined ? '' : ` (${p.at})`}`
      }
      report.trail.push(step)
      report.origin = {
        stage: c.stage,
        attempt: c.attempt,
        how: before === undefined ? 'produced' : 'changed',
      }
      gather(report, chain, c, input, here)
      return report
    }
    // side === 'input': compare with what the stage that handed it its input produced.
    const feeder = fed.get(c.stage)
    const prevIndex = feeder === undefined ? -1 : finals.findIndex((f) => f.stage === feeder)
    const prev = finals[prevIndex]
    if (prev === undefined) {
      report.origin = { stage: c.stage, attempt: c.attempt, how: 'recorded-input' }
      report.evidence.push({
        kind: 'input',
        text:
          i === 0
            ? `the value was already in ${c.stage}'s recorded input: it entered the pipeline this way`
            : `the value was already in ${c.stage}'s recorded input, which no stage handed it whole (it was called inside or beside another stage, or once per item): look at the code that called it`,
      })
      return report
    }
    const prevOut = readPath(readPayload(prev.output), start.segments)
    if (!same(prevOut, here)) {
      report.origin = { stage: `${prev.stage} → ${c.stage}`, attempt: c.attempt, how: 'in-transit' }
      const p = briefPair(prevOut, here)
      report.evidence.push({
        kind: 'seam',
        text: `${prev.stage} produced ${p.recorded} at ${start.path}, ${c.stage} received ${p.local}${p.at === undefined ? '' : ` (${p.at})`}: the data changed in transit (stale cache, lossy serialisation, another writer)`,
      })
      return report
    }
    i = prevIndex
    side = 'output'
  }
  return report
}

function gather(
  report: WhyReport,
  chain: RecordChain,
  c: (typeof chain.captures)[number],
  input: unknown,
  value: unknown,
): void {
  const attempts = chain.captures.filter((x) => x.stage === c.stage)
  if (attempts.length > 1) {
    const failed = attempts
      .filter((x) => x.error !== null)
      .map((x) => `attempt ${x.attempt}: ${readError(x.error)?.message ?? 'failed'}`)
    report.evidence.push({
      kind: 'retry',
      text: `${c.stage} ran ${attempts.length} times; the value comes from attempt ${c.attempt}${failed.length ? ` after ${failed.join('; ')}` : ''}`,
    })
  }
  const failedEffects = c.effects.filter((e) => e.error !== null)
  if (failedEffects.length > 0) {
    const later = c.effects.filter(
      (e) => e.error === null && e.seq > failedEffects[0]!.seq && e.kind !== 'now' && e.kind !== 'random',
    )
    report.evidence.push({
      kind: 'degraded',
      text: `${failedEffects.map((e) => `${e.name} failed (${readError(e.error)?.message ?? 'error'})`).join('; ')}${later.length ? `; the stage went on with ${later.map((e) => e.name).join(', ')}: a fallback path` : ''}`,
    })
  }
  for (const where of leavesEqual(input, value, 'input')) {
    report.evidence.push({ kind: 'input', text: `${where} in ${c.stage}'s input holds the same value` })
  }
  const effectLeaves: Leaf[] = []
  for (const e of c.effects) {
    if (e.result === null) continue
    const result = readPayload(e.result)
    for (const where of leavesEqual(result, value, `${e.name}#${e.seq}`)) {
      report.evidence.push({ kind: 'effect', text: `effect ${where} returned the same value` })
    }
    if (same(result, value) && !isUndefinedValue(value))
      report.evidence.push({ kind: 'effect', text: `effect ${e.name}#${e.seq} returned exactly this value` })
    // Sums of two are looked for among every pair: the candidates are bounded as a whole
    // (a stage of 100,000 effects), not per value only.
    const room = maxArithmeticLeaves - effectLeaves.length
    if (room > 0)
      for (const leaf of numericLeaves(result, `${e.name}#${e.seq}`, room)) effectLeaves.push(leaf)
  }
  const target = quantityOf(value)
  if (target !== undefined) {
    const last = [...report.start.path.matchAll(/[\p{L}_$][\p{L}\p{M}\p{Nd}\p{Pc}$]*/gu)].at(-1)?.[0] ?? ''
    for (const text of arithmetic(
      target,
      last,
      effectLeaves,
      numericLeaves(input, 'input', maxArithmeticLeaves),
    )) {
      report.evidence.push({ kind: 'arithmetic', text })
    }
  }
}

/**
 * A diff path names an item of an array matched by `arrayKeys` by its identity
 * (`$.lines["id=\"p0\""].kg`); the recorded value holds it at an index (`$.lines[0].kg`),
 * which is what a stage path reads. Left as it is where the value does not hold it.
 */
export function indexedPath(value: unknown, path: string): string {
  let segments: ReturnType<typeof parsePath>
  try {
    segments = parsePath(path)
  } catch {
    return path
  }
  const parts: PathPart[] = []
  let cur = value
  for (const seg of segments) {
    if (seg.kind !== 'key' && seg.kind !== 'index') return path
    const want = seg.kind === 'key' ? seg.name : seg.index
    const children = childrenOf(cur)
    let found = children.find(([part]) => part === want || String(part) === String(want))
    if (found === undefined && typeof want === 'string' && shapeOf(cur).kind === 'array') {
      found = children.find(([, item]) => {
        const s = shapeOf(item)
        if (s.kind !== 'object') return false
        return Object.keys(s.fields).some(
          (f) => want.startsWith(`${f}=`) && keyedItemLabel(s.fields[f], f) === want,
        )
      })
    }
    if (found === undefined) return path
    parts.push(found[0])
    cur = found[1]
  }
  return formatPath(parts)
}

/** The stage path of the first change a replay found, as `why` reads it from the recording. */
export function changeStagePath(chain: RecordChain, stage: string, changePath: string): string {
  const capture = finalCaptures(chain.captures).find((c) => c.stage === stage)
  const recorded = capture === undefined ? undefined : readPayload(capture.output)
  return `${writeStageName(stage)}.output${indexedPath(recorded, changePath).slice(1)}`
}
