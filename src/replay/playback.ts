/**
 * The stage context under replay: `now()`, `random()` and `effect()` hand back what
 * production saw, in order, without calling the effect's function. A call that does not
 * match the recording (another name, other args, one too many) is an effect divergence:
 * it is thrown into the stage and remembered, so a stage that swallows it still fails.
 * The one exception to the order: in a stage with async effects in flight at once, a call
 * may take a later recorded effect it matches (see `takeAhead`).
 */
import type { EffectRow } from '../bundle/types.js'
import { DecodeError, decode, decodeRaw, isUnrecorded } from '../codec/index.js'
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

/** A recorded error as an Error to throw: its name, message and code. */
export function revivedError(text: string | null): Error {
  const raw = text === null ? {} : (decodeRaw(text) as Record<string, unknown>)
  const err = new Error(String(raw?.message ?? 'recorded error'))
  err.name = String(raw?.name ?? 'Error')
  if (raw?.code !== undefined) Object.defineProperty(err, 'code', { value: raw.code, enumerable: true })
  return err
}

function safeRaw(encodeArgs: (v: unknown) => string, v: unknown): unknown {
  try {
    return decodeRaw(encodeArgs(v))
  } catch {
    return String(v)
  }
}

export class PlaybackContext implements StageContext {
  /** The first recorded effect not yet taken. */
  private next = 0
  /** Recorded effects past `next` already taken out of order (see `takeAhead`). */
  private readonly ahead = new Set<number>()
  /** The seq of the effect the last call took. */
  private taken = 0
  /**
   * The stage has had two async effects in flight at once (called in one synchronous run,
   * as `Promise.all` over `ctx.effect` does). From then on the order in which their
   * continuations call `ctx` is the order their results came back in production, which
   * playback cannot reproduce: a call may take a later recorded effect it matches exactly.
   */
  private concurrent = false
  /** An async effect was called in the synchronous run now going on. */
  private asyncInRun = false
  /** The first divergence seen, even if the stage caught it. */
  divergence: EffectDivergence | undefined
  /** The first recorded effect that could not be read (a damaged bundle), even if caught. */
  damaged: DecodeError | undefined
  /** Effects called with other args than recorded, when playing back leniently. */
  readonly argChanges: { seq: number; name: string; recorded: unknown; local: unknown }[] = []

  constructor(
    readonly key: string,
    readonly recordId: string,
    readonly stage: string,
    readonly attempt: number,
    private readonly effects: readonly EffectRow[],
    private readonly encodeArgs: (v: unknown) => string,
    /**
     * Lenient playback matches effects by name and position only. Used when the stage's
     * input already differs from production (cascade): it then writes other values, and
     * the recorded results are still the best stand-in for the world it reads.
     */
    private readonly lenient = false,
  ) {}

  /** Args match when equal, with recorded redaction tokens matching any local value. */
  private argsMatch(recordedText: string | null, local: unknown, seq = this.next): boolean {
    let localText: string
    try {
      localText = this.encodeArgs(local)
    } catch {
      return false
    }
    if (recordedText === null || recordedText === localText)
      return recordedText === localText || local === undefined
    const recorded = this.read(seq, 'the args', () => decodeRaw(recordedText))
    // Production could not record these args (too large, cyclic, redaction failed): like a
    // redaction token, there is nothing to compare the local args with.
    if (isUnrecorded(recorded)) return true
    const d = diffValues(recorded, decodeRaw(localText), noRules)
    return d.changes.every((c) => c.kind === 'changed' && isRedactionToken(c.recorded))
  }

  /** Local args as text for a message; never throws (they may be cyclic). */
  private argsText(args: unknown): string {
    try {
      return this.encodeArgs(args)
    } catch (err) {
      return `(args that cannot be recorded: ${(err as Error)?.message ?? String(err)})`
    }
  }

  /** Reads a recorded value of effect #seq; damage is remembered, then thrown into the stage. */
  private read<T>(seq: number, what: string, read: () => T): T {
    try {
      return read()
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err
      this.damaged ??= new DecodeError(`${what} of effect #${seq}: ${err.message}`)
      throw this.damaged
    }
  }

  /** A recorded clock or random value; anything but a finite number is damage. */
  private number(kind: 'now' | 'random'): number {
    const row = this.take(kind, kind)
    const seq = this.taken
    const value = row.result === null ? Number.NaN : Number(row.result)
    if (!Number.isFinite(value)) {
      const shown = row.result === null ? 'nothing' : JSON.stringify(row.result.slice(0, 40))
      return this.read(seq, 'the result', () => {
        throw new DecodeError(`ctx.${kind}() was recorded as ${shown}, not a number`)
      })
    }
    return value
  }

  /** Recorded effects the stage never asked for. */
  get unused(): EffectRow[] {
    return this.effects.slice(this.next).filter((_, i) => !this.ahead.has(this.next + i))
  }

  /** Whether recorded effect #seq is the call the local build makes. */
  private fits(seq: number, kind: 'now' | 'random' | 'effect', name: string, args?: unknown): boolean {
    const row = this.effects[seq]
    if (row === undefined) return false
    const rowKind = row.kind === 'async-effect' ? 'effect' : row.kind
    if (rowKind !== kind || (kind === 'effect' && row.name !== name)) return false
    return kind !== 'effect' || this.argsMatch(row.args, args, seq)
  }

  /**
   * In a stage with effects in flight at once, a call that does not fit the next recorded
   * effect takes the first later one it fits exactly, if any: production's continuations
   * ran in the order its results arrived, not the order they were asked for.
   */
  private takeAhead(kind: 'now' | 'random' | 'effect', name: string, args?: unknown): EffectRow | undefined {
    if (!this.concurrent || this.fits(this.next, kind, name, args)) return undefined
    for (let seq = this.next + 1; seq < this.effects.length; seq++) {
      if (this.ahead.has(seq) || !this.fitsLater(seq, kind, name, args)) continue
      this.ahead.add(seq)
      this.taken = seq
      return this.effects[seq]
    }
    return undefined
  }

  /** `fits` for a recorded effect further on: one that cannot be read is no match (yet). */
  private fitsLater(seq: number, kind: 'now' | 'random' | 'effect', name: string, args?: unknown): boolean {
    const damaged = this.damaged
    try {
      return this.fits(seq, kind, name, args)
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err
      this.damaged = damaged
      return false
    }
  }

  /** Moves past the effect at `next`, and past those already taken out of order. */
  private advance(): void {
    this.taken = this.next
    this.next++
    while (this.ahead.delete(this.next)) this.next++
  }

  private take(kind: 'now' | 'random' | 'effect', name: string, args?: unknown): EffectRow {
    const early = this.takeAhead(kind, name, args)
    if (early !== undefined) return early
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
      const expectedArgs =
        row.args === null ? undefined : this.read(this.next, 'the args', () => decodeRaw(row.args!))
      if (this.lenient) {
        this.argChanges.push({
          seq: this.next,
          name,
          recorded: expectedArgs,
          local: safeRaw(this.encodeArgs, args),
        })
        this.advance()
        return row
      }
      this.fail(
        new EffectDivergence(
          `${this.stage}: effect #${this.next} ${JSON.stringify(name)} was called with other args than in production: recorded ${row.args ?? 'no args'}, local ${this.argsText(args)}`,
          { kind: row.kind, name: row.name, args: expectedArgs },
          actual,
        ),
      )
    }
    this.advance()
    return row
  }

  private fail(err: EffectDivergence): never {
    this.divergence ??= err
    throw err
  }

  /** Two async effects called in one synchronous run are in flight at once. */
  private noteAsync(): void {
    if (this.asyncInRun) {
      this.concurrent = true
      return
    }
    this.asyncInRun = true
    // Runs once the synchronous code that made the call has finished, before the
    // continuation of any `await` on what the call returned.
    queueMicrotask(() => {
      this.asyncInRun = false
    })
  }

  now(): number {
    return this.number('now')
  }

  random(): number {
    return this.number('random')
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
    const seq = this.taken
    if (async) this.noteAsync()
    if (row.error !== null) {
      const err = this.read(seq, 'the error', () => revivedError(row.error))
      if (async) return Promise.reject(err) as T
      throw err
    }
    const value = row.result === null ? undefined : this.read(seq, 'the result', () => decode(row.result!))
    return (async ? Promise.resolve(value) : value) as T
  }
}
