/**
 * Stages called inside a replayed stage. A stage that calls other wrapped stages
 * (`handle` awaiting `parse` and `store`) reaches them through their recorder wrappers;
 * under replay no record is open, so they would run with the real clock, real random and
 * real effects (a database write during a replay). Instead, while the engine runs a stage,
 * such a call plays back the recording of that nested call: the next capture of that stage
 * in the same record not yet taken by a nested call of this run.
 *
 * The wrappers find this through `globalThis[Symbol.for('retrace.replay')]` (see
 * stage-mark.ts): the service's module may import its own copy of retrace. The hook stays
 * once published and answers only inside the async context of a stage the engine runs, so
 * a stage that timed out and goes on in the background is still played back, and a call
 * made anywhere else (a module's top level while it loads) is left alone.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { CaptureRow, EffectRow } from '../bundle/types.js'
import { DecodeError, decode } from '../codec/index.js'
import type { StageContext, StageFn } from '../recorder/recorder.js'
import { type ReplayHook, replayHook } from '../stage-mark.js'
import { EffectDivergence, PlaybackContext, revivedError } from './playback.js'

type Capture = CaptureRow & { effects: EffectRow[] }

/** What a spliced nested call gives instead of its recording: a pinned output or error. */
export type SplicedResult = Pick<CaptureRow, 'output' | 'error'>

/** The run a nested call belongs to, and the capture whose code made it. */
interface Scope {
  readonly calls: NestedCalls
  /** Seq of the capture being played back where the call was made. */
  readonly after: number
  /** Its stage name. */
  readonly caller: string
}

const scopes = new AsyncLocalStorage<Scope>()

function describe(kind: string, name: string): string {
  return kind === 'now' || kind === 'random' ? `ctx.${kind}()` : `ctx.effect(${JSON.stringify(name)})`
}

/**
 * The context of a nested call production did not make (the local build calls the stage
 * more often): every `ctx` call is an effect divergence, never the real clock or effect.
 */
class UnrecordedContext implements StageContext {
  divergence: EffectDivergence | undefined
  constructor(
    readonly key: string,
    readonly recordId: string,
    readonly stage: string,
    readonly attempt: number,
    private readonly caller: string,
  ) {}

  private fail(kind: 'now' | 'random' | 'effect', name: string): never {
    const err = new EffectDivergence(
      `stage ${this.stage} called inside ${this.caller} was not recorded in this record: its ${describe(kind, name)} has nothing to play back`,
      null,
      { kind, name },
    )
    this.divergence ??= err
    throw err
  }

  now(): number {
    return this.fail('now', 'now')
  }

  random(): number {
    return this.fail('random', 'random')
  }

  effect<T>(name: string, _args: unknown, _fn: () => T): T {
    return this.fail('effect', String(name))
  }
}

/** One nested call played back, to report what went wrong in it on the outer stage. */
interface Played {
  ctx: PlaybackContext | UnrecordedContext
  caller: string
}

/**
 * The nested calls of one run of one stage by the engine. Each run starts afresh: a stage
 * run twice (again on its recorded input, or its next attempt) takes the same or its own
 * nested captures, never ones an earlier run used.
 */
export class NestedCalls {
  /** Seqs of captures taken by a nested call of this run (and the outer one itself). */
  private readonly used: Set<number>
  private readonly played: Played[] = []

  constructor(
    /** The captures of the record being replayed. */
    private readonly captures: readonly Capture[],
    /** The capture the engine is replaying. */
    private readonly outer: Capture,
    private readonly key: string,
    private readonly encodeArgs: (v: unknown) => string,
    /**
     * Nested calls give their recorded output (or throw their recorded error) without
     * running: the outer stage is judged on its own code alone.
     */
    private readonly splice = false,
    /**
     * By capture seq, what a spliced call gives in place of its recording: the pins of the
     * nested stages, when the outer stage is judged on its own pin (both were accepted from
     * the same fixed build, as the engine pairs a pinned stage with its feeder's pin).
     */
    private readonly pinned: ReadonlyMap<number, SplicedResult> = new Map(),
    /** Stages whose nested calls give their recorded results (`--splice`, `--stage`). */
    private readonly spliced?: (stage: string) => boolean,
  ) {
    this.used = new Set([outer.seq])
  }

  /** Stage names of the recorded calls nested calls of this run took, in the order taken. */
  get takenStages(): string[] {
    const names: string[] = []
    for (const c of this.captures) if (c.seq !== this.outer.seq && this.used.has(c.seq)) names.push(c.stage)
    return names
  }

  /** Calls `fn` (the engine calling the outer stage); nested calls in it are played back. */
  run<T>(fn: () => T): T {
    publishHook()
    return scopes.run({ calls: this, after: this.outer.seq, caller: this.outer.stage }, fn)
  }

  /**
   * The first effect divergence of a nested call, as the outer stage reports it. Set even
   * when the outer stage caught what the nested call threw.
   */
  get divergence(): EffectDivergence | undefined {
    for (const { ctx, caller } of this.played) {
      const d = ctx.divergence
      if (d === undefined) continue
      if (ctx instanceof UnrecordedContext) return d
      return new EffectDivergence(
        `${d.message} (stage ${ctx.stage} called inside ${caller})`,
        d.expected,
        d.actual,
      )
    }
    return undefined
  }

  /** A recorded effect of a nested call that could not be read (a damaged bundle). */
  get damaged(): DecodeError | undefined {
    for (const { ctx, caller } of this.played) {
      if (ctx instanceof PlaybackContext && ctx.damaged !== undefined)
        return new DecodeError(`${ctx.damaged.message} (stage ${ctx.stage} called inside ${caller})`)
    }
    return undefined
  }

  /**
   * The capture a nested call of `stage` plays back: the first one not yet taken whose
   * recorded input is the call's input (per-item calls under `Promise.all` need not run in
   * production's order: played-back effects settle at once, real ones did not); failing
   * that, the first one not yet taken. In both, one after the capture whose code made the
   * call comes before any before it.
   */
  private take(stage: string, after: number, input: string | undefined): Capture | undefined {
    let same: Capture | undefined
    let sameEarlier: Capture | undefined
    let next: Capture | undefined
    let earlier: Capture | undefined
    for (const c of this.captures) {
      if (c.stage !== stage || this.used.has(c.seq)) continue
      const isSame = input !== undefined && c.input === input
      if (c.seq > after) {
        next ??= c
        if (isSame) {
          same = c
          break
        }
      } else {
        earlier ??= c
        if (isSame) sameEarlier ??= c
      }
    }
    const taken = same ?? sameEarlier ?? next ?? earlier
    if (taken !== undefined) this.used.add(taken.seq)
    return taken
  }

  /** The call's input as the recorder encodes it, or `undefined` when it cannot be. */
  private encoded(input: unknown): string | undefined {
    try {
      return this.encodeArgs(input)
    } catch {
      return undefined
    }
  }

  /** Plays back one nested call made from `scope`. Never throws: a throw is a rejection. */
  play(scope: Scope, stage: string, input: unknown, fn: StageFn, self: unknown): Promise<unknown> {
    const encoded = this.encoded(input)
    const capture = this.take(stage, scope.after, encoded)
    if (capture !== undefined && (this.splice || this.spliced?.(stage) === true))
      return recordedResult(this.pinned.get(capture.seq) ?? capture)
    let ctx: PlaybackContext | UnrecordedContext
    if (capture === undefined) {
      const extra = this.played.filter((p) => p.ctx.stage === stage).length
      ctx = new UnrecordedContext(this.key, this.outer.recordId, stage, extra + 1, scope.caller)
    } else {
      // Effects were recorded with production's input: played back leniently when the
      // input differs, as the engine does for a stage's own input.
      ctx = new PlaybackContext(
        this.key,
        capture.recordId,
        stage,
        capture.attempt,
        capture.effects,
        this.encodeArgs,
        encoded === undefined || encoded !== capture.input,
      )
    }
    this.played.push({ ctx, caller: scope.caller })
    const inner: Scope = { calls: this, after: capture?.seq ?? scope.after, caller: stage }
    try {
      return Promise.resolve(scopes.run(inner, () => fn.call(self, input, ctx)))
    } catch (err) {
      return Promise.reject(err)
    }
  }
}

/**
 * What production's nested call gave (or what is pinned for it): its output, or its error
 * thrown (an Error with the recorded name and message). A value that cannot be read
 * rejects as the damage it is.
 */
function recordedResult(capture: SplicedResult): Promise<unknown> {
  try {
    if (capture.error !== null) return Promise.reject(revivedError(capture.error))
    return Promise.resolve(capture.output === null ? undefined : decode(capture.output))
  } catch (err) {
    return Promise.reject(err)
  }
}

/**
 * The hook the recorder's wrappers read: a nested call inside a stage the engine runs is
 * played back; anywhere else `undefined`, and the call goes on as it would without replay
 * (or to a hook another copy of retrace published before this one).
 */
function hookOver(previous: ReplayHook | undefined): ReplayHook {
  return (stage, input, fn, self) => {
    const scope = scopes.getStore()
    if (scope === undefined) return previous?.(stage, input, fn, self)
    return scope.calls.play(scope, stage, input, fn as StageFn, self)
  }
}

let published = false

function publishHook(): void {
  if (published) return
  published = true
  const host = globalThis as { [replayHook]?: ReplayHook }
  host[replayHook] = hookOver(host[replayHook])
}
