/**
 * The stage context under replay: `now()`, `random()` and `effect()` hand back what
 * production saw, in order, without calling the effect's function. A call that does not
 * match the recording (another name, other args, one too many) is an effect divergence:
 * it is thrown into the stage and remembered, so a stage that swallows it still fails.
 */
import type { EffectRow } from '../bundle/types.js'
import { decode, decodeRaw } from '../codec/index.js'
import { diffValues, noRules } from '../compare/diff.js'
import { isRedactionToken } from '../compare/redacted.js'
import type { StageContext } from '../recorder/recorder.js'

export class EffectDivergence extends Error {
  override readonly name = 'EffectDivergence'
  readonly code = 'E_EFFECT_DIVERGED'
  constructor(
    message: string,
    readonly expected: { kind: string; name: string; args?: unknown } | null,
    readonly actual: { kind: string; name: string; args?: unknown },
  ) {
    super(message)
  }
}

function describe(kind: string, name: string): string {
  return kind === 'now' || kind === 'random' ? `ctx.${kind}()` : `ctx.effect(${JSON.stringify(name)})`
}

function revivedError(text: string | null): Error {
  const raw = text === null ? {} : (decodeRaw(text) as Record<string, unknown>)
  const err = new Error(String(raw?.message ?? 'recorded error'))
  err.name = String(raw?.name ?? 'Error')
  if (raw?.code !== undefined) Object.defineProperty(err, 'code', { value: raw.code, enumerable: true })
  return err
}

export class PlaybackContext implements StageContext {
  private next = 0
  /** The first divergence seen, even if the stage caught it. */
  divergence: EffectDivergence | undefined

  constructor(
    readonly key: string,
    readonly recordId: string,
    readonly stage: string,
    readonly attempt: number,
    private readonly effects: readonly EffectRow[],
    private readonly encodeArgs: (v: unknown) => string,
  ) {}

  /** Args match when equal, with recorded redaction tokens matching any local value. */
  private argsMatch(recordedText: string | null, local: unknown): boolean {
    let localText: string
    try {
      localText = this.encodeArgs(local)
    } catch {
      return false
    }
    if (recordedText === null || recordedText === localText)
      return recordedText === localText || local === undefined
    const d = diffValues(decodeRaw(recordedText), decodeRaw(localText), noRules)
    return d.changes.every((c) => c.kind === 'changed' && isRedactionToken(c.recorded))
  }

  /** Recorded effects the stage never asked for. */
  get unused(): EffectRow[] {
    return this.effects.slice(this.next)
  }

  private take(kind: 'now' | 'random' | 'effect', name: string, args?: unknown): EffectRow {
    const row = this.effects[this.next]
    const actual = args === undefined ? { kind, name } : { kind, name, args }
    if (row === undefined) {
      this.fail(
        new EffectDivergence(
          `${this.stage}: ${describe(kind, name)} was not recorded (production made ${this.effects.length} effect calls here)`,
          null,
          actual,
        ),
      )
    }
    const rowKind = row.kind === 'async-effect' ? 'effect' : row.kind
    if (rowKind !== kind || (kind === 'effect' && row.name !== name)) {
      this.fail(
        new EffectDivergence(
          `${this.stage}: effect #${this.next} was ${describe(row.kind, row.name)} in production, the local build called ${describe(kind, name)}`,
          { kind: row.kind, name: row.name },
          actual,
        ),
      )
    }
    if (kind === 'effect' && !this.argsMatch(row.args, args)) {
      const expectedArgs = row.args === null ? undefined : decodeRaw(row.args)
      this.fail(
        new EffectDivergence(
          `${this.stage}: effect #${this.next} ${JSON.stringify(name)} was called with other args than in production: recorded ${this.encodeArgs(expectedArgs)}, local ${this.encodeArgs(args)}`,
          { kind: row.kind, name: row.name, args: expectedArgs },
          actual,
        ),
      )
    }
    this.next++
    return row
  }

  private fail(err: EffectDivergence): never {
    this.divergence ??= err
    throw err
  }

  now(): number {
    return Number(this.take('now', 'now').result)
  }

  random(): number {
    return Number(this.take('random', 'random').result)
  }

  effect<T>(name: string, args: unknown, _fn: () => T): T {
    let row: EffectRow
    try {
      row = this.take('effect', String(name), args)
    } catch (err) {
      // An async effect that diverges rejects, as the real call would have.
      const prior = this.effects[this.next]
      if (prior?.kind === 'async-effect') return Promise.reject(err) as T
      throw err
    }
    const async = row.kind === 'async-effect'
    if (row.error !== null) {
      const err = revivedError(row.error)
      if (async) return Promise.reject(err) as T
      throw err
    }
    const value = row.result === null ? undefined : decode(row.result)
    return (async ? Promise.resolve(value) : value) as T
  }
}
