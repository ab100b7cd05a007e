/**
 * `verify`: cross-stage checks over recorded chains (seams and invariants), tallied by
 * check with a few example records each, in constant memory.
 */
import type { RecordChain } from '../bundle/types.js'
import { briefPair } from './brief.js'
import { recordedChain } from './chain.js'
import { type CompiledRules, diffValues, noRules } from './diff.js'
import { handoffs } from './handoff.js'
import { type CompiledInvariant, runInvariants } from './invariants.js'
import { finalCaptures, readPayload } from './scene.js'
import { isUndefinedValue } from './typed.js'

export interface Violation {
  check: string
  kind: 'seam' | 'invariant'
  /** The stage the violation is attributed to (the receiving stage of a seam). */
  stage: string
  recordId: string
  key: string
  message: string
}

export interface CheckTally {
  check: string
  kind: 'seam' | 'invariant'
  stage: string
  violations: number
  examples: { recordId: string; key: string; message: string }[]
}

export interface VerifySummary {
  records: number
  violations: number
  recordsWithViolations: number
  checks: CheckTally[]
}

const maxExamples = 5

/** Seams of one record: the recorded output each stage handed on against the input received. */
export function seamViolations(chain: RecordChain, rules: CompiledRules = noRules): Violation[] {
  const finalOf = new Map(finalCaptures(chain.captures).map((c) => [c.stage, c]))
  const firstInput = new Map<string, string>()
  for (const c of chain.captures) if (!firstInput.has(c.stage)) firstInput.set(c.stage, c.input)
  const out: Violation[] = []
  // Only where production handed one stage's output to the next (src/compare/handoff.ts).
  for (const [stage, feeder] of handoffs(chain.captures)) {
    if (feeder === undefined) continue
    const from = finalOf.get(feeder)!
    const to = finalOf.get(stage)!
    if (from.output === null) continue
    const input = firstInput.get(to.stage)!
    if (from.output === input) continue
    const d = diffValues(readPayload(from.output), readPayload(input), rules)
    if (d.changes.length === 0) continue
    const c = d.changes[0]!
    const p = briefPair(c.recorded, c.local)
    // A field holding undefined does not survive a JSON round trip: say so, it is the usual cause.
    const dropped =
      c.kind === 'removed' && isUndefinedValue(c.recorded)
        ? ' (a field holding undefined, dropped in transit)'
        : ''
    out.push({
      check: `seam ${from.stage} → ${to.stage}`,
      kind: 'seam',
      stage: to.stage,
      recordId: chain.record.id,
      key: chain.record.key,
      message: `${c.path}: ${from.stage} produced ${p.recorded}, ${to.stage} received ${p.local}${p.at === undefined ? '' : ` (${p.at})`}${dropped}${d.changes.length > 1 ? ` (+${d.changes.length - 1} more)` : ''}`,
    })
  }
  return out
}

/** What tells one violation of a record from another. */
export function violationId(v: Violation): string {
  return `${v.kind}\u0000${v.check}\u0000${v.stage}\u0000${v.message}`
}

export class Verifier {
  private readonly tallies = new Map<string, CheckTally>()
  private records = 0
  private violations = 0
  private recordsWithViolations = 0

  constructor(
    private readonly invariants: readonly CompiledInvariant[],
    private readonly rules: CompiledRules,
  ) {}

  /**
   * Checks one record; returns its violations and adds them to the tally. `reported` is
   * for a record checked again because more of it landed (continued in another process):
   * what it holds was reported before and is left out, the violations returned are added
   * to it, and the record is not counted twice.
   */
  check(chain: RecordChain, reported?: Set<string>): Violation[] {
    const all = this.violationsOf(chain)
    const found = reported === undefined ? all : all.filter((v) => !reported.has(violationId(v)))
    if (reported === undefined) this.records++
    if (found.length > 0 && (reported === undefined || reported.size === 0)) this.recordsWithViolations++
    for (const v of found) {
      reported?.add(violationId(v))
      this.violations++
      const id = `${v.kind}\u0000${v.check}`
      let t = this.tallies.get(id)
      if (t === undefined) {
        t = { check: v.check, kind: v.kind, stage: v.stage, violations: 0, examples: [] }
        this.tallies.set(id, t)
      }
      t.violations++
      if (t.examples.length < maxExamples)
        t.examples.push({ recordId: v.recordId, key: v.key, message: v.message })
    }
    return found
  }

  private violationsOf(chain: RecordChain): Violation[] {
    const found = seamViolations(chain, this.rules)
    for (const r of runInvariants(this.invariants, recordedChain(chain))) {
      if (r.status !== 'violated' && r.status !== 'error') continue
      found.push({
        check: r.name,
        kind: 'invariant',
        stage: r.stages.at(-1) ?? '-',
        recordId: chain.record.id,
        key: chain.record.key,
        message: r.message ?? r.status,
      })
    }
    return found
  }

  summary(): VerifySummary {
    return {
      records: this.records,
      violations: this.violations,
      recordsWithViolations: this.recordsWithViolations,
      checks: [...this.tallies.values()].sort((a, b) => b.violations - a.violations),
    }
  }
}
