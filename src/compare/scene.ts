/**
 * The recorded scene of one record: each capture with its payloads and effects, how the
 * payload changed inside each stage, and the seams where the recorded output a stage handed
 * on is not the recorded input of the stage that received it. Pure: built from a RecordChain already read.
 */
import type { CaptureRow, EffectRow, RecordChain } from '../bundle/types.js'
import { DecodeError, decodeRaw, isUnrecorded } from '../codec/index.js'
import { type CompiledRules, type DiffLimits, type DiffResult, diffValues, noRules } from './diff.js'
import { calledPerItem, handoffs } from './handoff.js'

export interface SceneError {
  name: string
  message: string
  code?: string | number
  stack?: string
}

export interface SceneEffect {
  seq: number
  kind: EffectRow['kind']
  name: string
  args?: unknown
  result?: unknown
  error?: SceneError
}

export interface SceneCapture {
  seq: number
  stage: string
  attempt: number
  status: 'ok' | 'error'
  startedAt: number
  durationMs: number
  build: string | null
  host: string | null
  pid: number | null
  input: unknown
  output?: unknown
  error?: SceneError
  effects: SceneEffect[]
  /** What the stage changed: its input diffed against its output. */
  transform: DiffResult | null
  /** True when this is the last attempt of its stage (the one that fed downstream). */
  final: boolean
  /**
   * Its stage was called with different inputs in this record (once per item): a later call
   * is the next item, not a retry, and supersedes nothing. How many calls, else absent.
   */
  perItem?: number
}

export interface Seam {
  from: string
  to: string
  matches: boolean
  diff: DiffResult
}

export interface Scene {
  recordId: string
  key: string
  status: 'ok' | 'error'
  error?: SceneError
  startedAt: number
  endedAt: number | null
  build: string | null
  host: string | null
  pid: number | null
  source: string
  stages: string[]
  captures: SceneCapture[]
  seams: Seam[]
  /**
   * Stages after the first that no stage handed its output to: called inside or beside
   * another stage, or once per item. Their recorded input came from the code around them.
   */
  loose: string[]
  retries: number
}

/**
 * Deeper payloads than this are shown as unreadable. The recorder never writes deeper
 * than its encode limit (512), and diffing, --expand and --json all recurse, so a hostile
 * bundle nesting 100,000 levels would otherwise overflow the stack.
 */
export const maxPayloadDepth = 2000

/**
 * True when `value` nests deeper than `max`; iterative, so any depth is safe to ask about.
 * Replay asks about every recorded output that differs from the local one, so it pushes
 * containers only and allocates nothing per node.
 */
function nestsDeeperThan(value: unknown, max: number): boolean {
  const nodes: unknown[] = [value]
  const depths: number[] = [0]
  while (nodes.length > 0) {
    const v = nodes.pop()
    const depth = depths.pop()!
    if (typeof v !== 'object' || v === null) continue
    if (depth >= max) return true
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const child: unknown = v[i]
        if (typeof child === 'object' && child !== null) {
          nodes.push(child)
          depths.push(depth + 1)
        }
      }
      continue
    }
    const o = v as Record<string, unknown>
    for (const k in o) {
      const child = o[k]
      if (typeof child === 'object' && child !== null) {
        nodes.push(child)
        depths.push(depth + 1)
      }
    }
  }
  return false
}

/**
 * A decoded payload, or the unreadable marker when it nests deeper than maxPayloadDepth:
 * what every reader shows, diffs and serialises in its place.
 */
export function boundPayloadDepth(value: unknown): unknown {
  return nestsDeeperThan(value, maxPayloadDepth)
    ? { $t: 'unreadable', message: `payload nests deeper than ${maxPayloadDepth} levels` }
    : value
}

/** Decodes payload text to its JSON shape; a corrupt payload becomes a visible marker. */
export function readPayload(text: string | null): unknown {
  if (text === null) return undefined
  try {
    return boundPayloadDepth(decodeRaw(text))
  } catch (err) {
    return { $t: 'unreadable', message: err instanceof DecodeError ? err.message : String(err) }
  }
}

export function readError(text: string | null): SceneError | undefined {
  if (text === null) return undefined
  const v = readPayload(text)
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>
    const e: SceneError = { name: String(o.name ?? 'Error'), message: String(o.message ?? '') }
    if (typeof o.code === 'string' || typeof o.code === 'number') e.code = o.code
    if (typeof o.stack === 'string') e.stack = o.stack
    return e
  }
  return { name: 'Error', message: String(v) }
}

function sceneEffect(e: EffectRow): SceneEffect {
  const out: SceneEffect = { seq: e.seq, kind: e.kind, name: e.name }
  if (e.args !== null) out.args = readPayload(e.args)
  if (e.result !== null) out.result = readPayload(e.result)
  const err = readError(e.error)
  if (err !== undefined) out.error = err
  return out
}

/** Stage names in the order they first ran. */
export function stageOrder(captures: readonly Pick<CaptureRow, 'stage'>[]): string[] {
  const seen = new Set<string>()
  for (const c of captures) seen.add(c.stage)
  return [...seen]
}

/** The last attempt of each stage, in stage order: the chain as it reached storage. */
export function finalCaptures<C extends Pick<CaptureRow, 'stage' | 'seq'>>(captures: readonly C[]): C[] {
  const last = new Map<string, C>()
  for (const c of captures) last.set(c.stage, c)
  return stageOrder(captures).map((s) => last.get(s)!)
}

export function buildScene(chain: RecordChain, rules: CompiledRules = noRules, limits?: DiffLimits): Scene {
  const finals = new Set(finalCaptures(chain.captures).map((c) => c.id))
  const perItem = calledPerItem(chain.captures)
  const captures: SceneCapture[] = chain.captures.map((c) => {
    const input = readPayload(c.input)
    const output = readPayload(c.output)
    const error = readError(c.error)
    const sc: SceneCapture = {
      seq: c.seq,
      stage: c.stage,
      attempt: c.attempt,
      status: error === undefined ? 'ok' : 'error',
      startedAt: c.startedAt,
      durationMs: c.durationMs,
      build: c.build,
      host: c.host,
      pid: c.pid,
      input,
      effects: c.effects.map(sceneEffect),
      transform:
        error === undefined && !isUnrecorded(input) && !isUnrecorded(output)
          ? diffValues(input, output, noRules, limits)
          : null,
      final: finals.has(c.id),
    }
    const calls = perItem.get(c.stage)
    if (calls !== undefined) sc.perItem = calls
    if (c.output !== null) sc.output = output
    if (error !== undefined) sc.error = error
    return sc
  })
  const finalOf = new Map<string, SceneCapture>()
  for (const c of captures) if (c.final) finalOf.set(c.stage, c)
  const firstAttempt = new Map<string, SceneCapture>()
  for (const c of captures) if (!firstAttempt.has(c.stage)) firstAttempt.set(c.stage, c)
  const seams: Seam[] = []
  const loose: string[] = []
  // Only where production handed one stage's output to the next (src/compare/handoff.ts).
  for (const [stage, feeder] of handoffs(chain.captures)) {
    if (feeder === undefined) {
      if (stage !== chain.captures[0]?.stage) loose.push(stage)
      continue
    }
    const from = finalOf.get(feeder)!
    const to = firstAttempt.get(stage)!
    if (from.status !== 'ok') continue
    const diff = diffValues(from.output, to.input, rules, limits)
    seams.push({ from: from.stage, to: to.stage, matches: diff.changes.length === 0, diff })
  }
  const scene: Scene = {
    recordId: chain.record.id,
    key: chain.record.key,
    status: chain.record.status,
    startedAt: chain.record.startedAt,
    endedAt: chain.record.endedAt,
    build: chain.record.build,
    host: chain.record.host,
    pid: chain.record.pid,
    source: chain.source,
    stages: stageOrder(chain.captures),
    captures,
    seams,
    loose,
    retries: captures.filter((c) => c.attempt > 1 && c.perItem === undefined).length,
  }
  const err = readError(chain.record.error)
  if (err !== undefined) scene.error = err
  return scene
}
