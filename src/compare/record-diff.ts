/**
 * `diff`: two records stage by stage (yesterday's good record against today's bad one
 * for the same key), or two bundles matched by key.
 */
import type { RecordChain } from '../bundle/types.js'
import { briefPair } from './brief.js'
import {
  type Change,
  type CompiledRules,
  type DiffResult,
  diffValues,
  noRules,
  type Suppressed,
} from './diff.js'
import { finalCaptures, readPayload, stageOrder } from './scene.js'

export interface StageDiff {
  stage: string
  status: 'same' | 'differs' | 'only-in-a' | 'only-in-b'
  input: Change[]
  output: Change[]
  /** Differences the config's rules hid (ignored, within tolerance, redacted), each labelled. */
  suppressed: { input: Suppressed[]; output: Suppressed[] }
  /** True when a diff stopped at its most changes: the lists hold the first ones only. */
  truncated: boolean
}

export interface RecordDiff {
  a: { recordId: string; key: string; source: string }
  b: { recordId: string; key: string; source: string }
  /** The first stage whose output differs. */
  firstDifference: string | null
  stages: StageDiff[]
}

export function diffRecords(a: RecordChain, b: RecordChain, rules: CompiledRules = noRules): RecordDiff {
  const fa = new Map(finalCaptures(a.captures).map((c) => [c.stage, c]))
  const fb = new Map(finalCaptures(b.captures).map((c) => [c.stage, c]))
  const order = stageOrder([...a.captures, ...b.captures])
  const stages: StageDiff[] = order.map((stage) => {
    const ca = fa.get(stage)
    const cb = fb.get(stage)
    const none = { suppressed: { input: [], output: [] }, truncated: false }
    if (ca === undefined) return { stage, status: 'only-in-b', input: [], output: [], ...none }
    if (cb === undefined) return { stage, status: 'only-in-a', input: [], output: [], ...none }
    const same: DiffResult = { changes: [], suppressed: [], truncated: null }
    const input =
      ca.input === cb.input ? same : diffValues(readPayload(ca.input), readPayload(cb.input), rules)
    const outA = ca.output ?? ca.error
    const outB = cb.output ?? cb.error
    const output = outA === outB ? same : diffValues(readPayload(outA), readPayload(outB), rules)
    return {
      stage,
      status: input.changes.length + output.changes.length === 0 ? 'same' : 'differs',
      input: input.changes,
      output: output.changes,
      suppressed: { input: input.suppressed, output: output.suppressed },
      truncated: input.truncated !== null || output.truncated !== null,
    }
  })
  const first = stages.find((s) => s.status !== 'same' && (s.output.length > 0 || s.status !== 'differs'))
  return {
    a: { recordId: a.record.id, key: a.record.key, source: a.source },
    b: { recordId: b.record.id, key: b.record.key, source: b.source },
    firstDifference: first?.stage ?? null,
    stages,
  }
}

export interface BundleDiff {
  keys: number
  same: number
  differing: number
  onlyInA: number
  onlyInB: number
  /** Keys whose latest records differ, by the first stage that differs. */
  byStage: {
    stage: string
    keys: number
    examples: { key: string; a: string; b: string; change: string }[]
  }[]
}

/** One change as one line of text: `$.path: recorded → local`, `-` for a side that has nothing. */
function changeText(c: Change): string {
  const p = briefPair(c.recorded, c.local, 80)
  const side = (present: boolean, text: string): string => (present ? text : '-')
  return `${c.path}: ${side(c.kind !== 'added', p.recorded)} → ${side(c.kind !== 'removed', p.local)}${p.at === undefined ? '' : ` (${p.at})`}`
}

export class BundleDiffer {
  private readonly tally = new Map<string, BundleDiff['byStage'][number]>()
  private readonly counts = { keys: 0, same: 0, differing: 0, onlyInA: 0, onlyInB: 0 }

  constructor(private readonly rules: CompiledRules = noRules) {}

  /** A key only one of the bundles has. */
  addOnly(side: 'a' | 'b'): void {
    this.counts.keys++
    if (side === 'a') this.counts.onlyInA++
    else this.counts.onlyInB++
  }

  /** A key both bundles have, with its latest record in each. */
  add(key: string, a: RecordChain, b: RecordChain): void {
    this.counts.keys++
    const d = diffRecords(a, b, this.rules)
    if (d.firstDifference === null) {
      this.counts.same++
      return
    }
    this.counts.differing++
    let t = this.tally.get(d.firstDifference)
    if (t === undefined) {
      t = { stage: d.firstDifference, keys: 0, examples: [] }
      this.tally.set(d.firstDifference, t)
    }
    t.keys++
    if (t.examples.length < 5) {
      const s = d.stages.find((x) => x.stage === d.firstDifference)!
      const c = s.output[0] ?? s.input[0]
      t.examples.push({
        key,
        a: a.record.id,
        b: b.record.id,
        change: c ? changeText(c) : s.status,
      })
    }
  }

  result(): BundleDiff {
    return { ...this.counts, byStage: [...this.tally.values()].sort((x, y) => y.keys - x.keys) }
  }
}
