/**
 * The replay engine: one recorded record through the local builds of its stages.
 *
 * cascade (default): the first stage gets its recorded input, every later stage the
 * local output of the stage before, so the local chain runs end to end.
 * isolated: every stage gets its own recorded input, so each is judged on its own.
 *
 * A stage whose local output differs from the oracle (the pinned expectation, else the
 * production recording) is `diverged`; in cascade, when its input already differed, it
 * is re-run on its recorded input, and if that matches it is `inherited` instead.
 */
import type { CaptureRow, EffectRow, ExpectationRow, RecordChain } from '../bundle/types.js'
import {
  DecodeError,
  decode,
  decodeRaw,
  type EncodeLimits,
  encode,
  isUnrecorded,
  plainObjectText,
  thrownFields,
} from '../codec/index.js'
import { recordedChain, replayedChain } from '../compare/chain.js'
import {
  type Change,
  type CompiledRules,
  type DiffLimits,
  diffValues,
  type Suppressed,
} from '../compare/diff.js'
import { handoffs } from '../compare/handoff.js'
import { type CompiledInvariant, type InvariantStatus, runInvariants } from '../compare/invariants.js'
import { boundPayloadDepth, readError, stageOrder } from '../compare/scene.js'
import { BundleError } from '../errors.js'
import type { StageFn } from '../recorder/recorder.js'
import { isThenable } from '../thenable.js'
import { holdYoungGeneration } from './heap.js'
import { NestedCalls, type SplicedResult } from './nested.js'
import { callStage, NetworkBlocked, type Outcome } from './network-guard.js'
import { EffectDivergence, PlaybackContext } from './playback.js'
import { stageEnded, stageStarted } from './watchdog.js'

export type StageStatus = 'matched' | 'diverged' | 'inherited' | 'error' | 'skipped'
export type Verdict = 'matched' | 'diverged' | 'error'
export type ReplayMode = 'cascade' | 'isolated'

export interface StageError {
  message: string
  code: string
  name?: string
}

export interface AttemptResult {
  attempt: number
  status: StageStatus
  /** What the local build was judged against. */
  oracle: 'recorded' | 'expected'
  changes: Change[]
  suppressed: Suppressed[]
  error: StageError | null
  /** Recorded effects the local build did not ask for. */
  unusedEffects: { seq: number; kind: string; name: string }[]
  /** Why it was skipped, or why it was judged inherited. */
  reason?: string
  truncated?: boolean
  /** Effects the local build called with other args (its input already differed). */
  effectChanges?: { seq: number; name: string; recorded: unknown; local: unknown }[]
}

export interface StageResult {
  stage: string
  status: StageStatus
  changes: Change[]
  suppressed: Suppressed[]
  error: StageError | null
  attempts: AttemptResult[]
  /** For `inherited`: the first stage upstream that diverged or failed. */
  inheritedFrom?: string
  reason?: string
  /** The local output of the last attempt (JSON shape), for reports and `accept`. */
  local?: unknown
}

export interface RecordResult {
  recordId: string
  key: string
  verdict: Verdict
  firstDivergence: { stage: string; status: 'diverged' | 'error' } | null
  stages: StageResult[]
  mode: ReplayMode
  /** Invariants on the recorded and on the replayed chain (when the config has any). */
  invariants?: InvariantCheck[]
  /** Typed-JSON text of each stage's local output (last attempt); not part of --json. */
  outputs?: Record<string, string>
}

export interface ReplayOptions {
  mode: ReplayMode
  stages: ReadonlyMap<string, StageFn<unknown, unknown>>
  rules: CompiledRules
  /** Stages whose recorded output is used instead of running them. */
  splice?: ReadonlySet<string>
  /** Replay only this stage (the others are skipped). */
  only?: string
  allowNet?: boolean
  /** Longest a stage may run before it is failed (ms). */
  timeoutMs?: number
  /** Longest one diff may take before it falls back to a summary (ms). */
  diffBudgetMs?: number
  limits?: EncodeLimits
  /** Checks run on the recorded and the replayed chain of every record. */
  invariants?: readonly CompiledInvariant[]
  /** Monotonic clock for deadlines (performance.now). */
  now: () => number
}

interface LocalRun {
  ok: boolean
  value?: unknown
  text?: string
  error?: StageError
  /** The local build threw the recorded error itself (not an effect or network failure). */
  threw?: boolean
  /** What it threw was an object but no Error. */
  plainThrow?: boolean
  unused: EffectRow[]
  argChanges?: PlaybackContext['argChanges']
  /** Stages it called whose recorded calls it took (stages called inside it), in order. */
  nestedStages?: string[]
}

const severity: Record<StageStatus, number> = { skipped: 0, matched: 1, inherited: 2, diverged: 3, error: 4 }

const defaultLimits: EncodeLimits = { maxBytes: 64 * 1024 * 1024, maxDepth: 512 }

function stageError(err: unknown): StageError {
  const { name, message, code } = thrownFields(err)
  return { name, message, code: typeof code === 'string' ? code : 'E_STAGE_THREW' }
}

/** A thrown value that is an object but no Error (`throw {code, message}`). */
function isPlainThrow(thrown: unknown): boolean {
  try {
    return typeof thrown === 'object' && thrown !== null && !(thrown instanceof Error)
  } catch {
    return false
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, stage: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new Error(`stage ${stage} did not finish within ${ms} ms under replay`)
      Object.assign(err, { code: 'E_STAGE_TIMEOUT' })
      reject(err)
    }, ms)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** The options as the engine passes them to `runStage` while it replays one record. */
interface RecordOptions extends ReplayOptions {
  /** The captures of the record, played back to wrapped stages the replayed stage calls. */
  recordCaptures?: RecordChain['captures']
}

async function runStage(
  fn: StageFn<unknown, unknown>,
  input: unknown,
  capture: CaptureRow & { effects: EffectRow[] },
  key: string,
  o: RecordOptions,
  lenient = false,
  /** Stages it calls give their recorded results without running (nested.ts). */
  spliceNested = false,
  /** By capture seq, the pinned results those give instead of their recorded ones. */
  nestedPins?: ReadonlyMap<number, SplicedResult>,
): Promise<LocalRun> {
  const limits = o.limits ?? defaultLimits
  const encodeArgs = (v: unknown): string => encode(v, limits)
  const ctx = new PlaybackContext(
    key,
    capture.recordId,
    capture.stage,
    capture.attempt,
    capture.effects,
    encodeArgs,
    lenient,
  )
  // Wrapped stages it calls play back their recorded calls in this record (see nested.ts).
  // A stage spliced (--splice) or not selected (--stage) gives its recorded result wherever it
  // is called, inside another stage too.
  const { splice, only } = o
  const nested = new NestedCalls(
    o.recordCaptures ?? [],
    capture,
    key,
    encodeArgs,
    spliceNested,
    nestedPins,
    splice === undefined && only === undefined
      ? undefined
      : (stage) => splice?.has(stage) === true || (only !== undefined && stage !== only),
  )
  const timeoutMs = o.timeoutMs ?? 10_000
  // The stage is called synchronously; only a stage that returns a promise (or any
  // thenable) is raced against the timeout, so a synchronous stage pays for no timer.
  // A thenable is adopted here, inside the network guard's scope: a lazy query builder
  // does its work in `then`, which must run as the stage, not after it.
  const call = (): unknown =>
    nested.run(() => {
      const value = fn(input, ctx)
      return isThenable(value, true) ? Promise.resolve(value) : value
    })
  // Watched until it settles: a stage stuck in code that never yields stops the process.
  const watched = stageStarted(capture.stage, timeoutMs)
  const r = callStage(capture.stage, call, o.allowNet === true)
  let outcome: Outcome<unknown> = r.outcome
  let blocked: NetworkBlocked[] = r.blocked
  if (outcome.ok && isThenable(outcome.value, true)) {
    try {
      outcome = {
        ok: true,
        value: await withTimeout(Promise.resolve(outcome.value), timeoutMs, capture.stage),
      }
    } catch (error) {
      outcome = { ok: false, error }
    }
  }
  stageEnded(watched)
  // Copied once the stage has settled: async work it left running is not counted.
  blocked = [...blocked]
  if (blocked.length > 0) {
    const b = blocked[0]!
    return { ok: false, error: { name: b.name, message: b.message, code: b.code }, unused: ctx.unused }
  }
  // A recorded effect that cannot be read fails the stage as damage, whatever it caught.
  const damaged = ctx.damaged ?? nested.damaged
  if (damaged !== undefined) throw damaged
  // A nested call that diverged fails the stage that made it, as its own effect would.
  const d = ctx.divergence ?? nested.divergence
  if (d !== undefined) {
    return { ok: false, error: { name: d.name, message: d.message, code: d.code }, unused: ctx.unused }
  }
  if (!outcome.ok) {
    const e = outcome.error
    const threw = !(e instanceof EffectDivergence) && !(e instanceof NetworkBlocked)
    return { ok: false, error: stageError(e), threw, plainThrow: isPlainThrow(e), unused: ctx.unused }
  }
  let text: string
  try {
    text = encode(outcome.value, limits)
  } catch (err) {
    return { ok: false, error: { ...stageError(err), code: 'E_OUTPUT_UNRECORDABLE' }, unused: ctx.unused }
  }
  const run: LocalRun = {
    ok: true,
    value: outcome.value,
    text,
    unused: ctx.unused,
    argChanges: ctx.argChanges,
  }
  const nestedStages = nested.takenStages
  if (nestedStages.length > 0) run.nestedStages = nestedStages
  return run
}

interface Judgement {
  status: 'matched' | 'diverged' | 'error' | 'skipped'
  changes: Change[]
  suppressed: Suppressed[]
  error: StageError | null
  truncated: boolean
  reason?: string
}

function judge(
  run: LocalRun,
  oracleOutput: string | null,
  oracleError: string | null,
  o: ReplayOptions,
): Judgement {
  const none = { changes: [], suppressed: [], truncated: false }
  const recordedError = readError(oracleError)
  if (!run.ok) {
    const local = run.error!
    if (recordedError !== undefined && run.threw) {
      // Older recordings hold nothing of a plain object thrown but `[object Object]`.
      const keptNothing =
        run.plainThrow === true &&
        recordedError.name === 'NonError' &&
        recordedError.message === plainObjectText
      if ((recordedError.message === local.message && recordedError.name === local.name) || keptNothing) {
        return { status: 'matched', ...none, error: null }
      }
      return {
        status: 'diverged',
        changes: [{ path: '$error', kind: 'changed', recorded: recordedError, local }],
        suppressed: [],
        error: local,
        truncated: false,
      }
    }
    return { status: 'error', ...none, error: local }
  }
  if (recordedError !== undefined) {
    return {
      status: 'diverged',
      changes: [
        { path: '$', kind: 'changed', recorded: { $error: recordedError }, local: decodeRaw(run.text!) },
      ],
      suppressed: [],
      error: null,
      truncated: false,
    }
  }
  if (oracleOutput !== null && run.text === oracleOutput) return { status: 'matched', ...none, error: null }
  const budget = o.diffBudgetMs ?? 50
  const limits: DiffLimits = { maxChanges: 500, deadline: o.now() + budget, now: o.now }
  // A bundle can hold output no recorder wrote, nested deeper than the diff, --json and the
  // report can recurse: it is compared as the unreadable marker every other reader shows.
  const recorded = oracleOutput === null ? undefined : boundPayloadDepth(decodeRaw(oracleOutput))
  // Production could not record this output (too large, cyclic, redaction failed): there is
  // nothing to compare the local output with, and that is not a divergence.
  if (isUnrecorded(recorded)) {
    const why = `output was not recorded (${reasonText(recorded.reason)}): nothing to compare the local output with`
    return { status: 'skipped', ...none, error: null, reason: why }
  }
  const d = diffValues(recorded, decodeRaw(run.text!), o.rules, limits)
  const differs = d.changes.length > 0 || d.truncated !== null
  return {
    status: differs ? 'diverged' : 'matched',
    changes: d.changes,
    suppressed: d.suppressed,
    error: null,
    truncated: d.truncated !== null,
  }
}

/** The reason in a marker read from a bundle; a stranger's file may put an object there. */
function reasonText(reason: unknown): string {
  return typeof reason === 'string' ? reason : (JSON.stringify(reason) ?? 'unknown')
}

/**
 * Whether recorded text may be an unrecorded marker, before paying to parse it: a marker
 * spells `unrecorded`, literally or with `\u` escapes.
 */
function mayBeMarker(text: string): boolean {
  return text.includes('unrecorded') || text.includes('\\u')
}

/** A stage whose recorded input, output, expectation or effect is not typed JSON. */
function unreadableAttempt(c: CaptureRow, err: DecodeError): AttemptResult {
  return {
    attempt: c.attempt,
    status: 'error',
    oracle: 'recorded',
    changes: [],
    suppressed: [],
    error: {
      name: 'DecodeError',
      message: `the recording of ${c.stage} holds a value that cannot be read (${err.message}); the bundle is damaged here`,
      code: 'E_BUNDLE_CORRUPT',
    },
    unusedEffects: [],
  }
}

function skipped(attempt: number, reason: string): AttemptResult {
  return {
    attempt,
    status: 'skipped',
    oracle: 'recorded',
    changes: [],
    suppressed: [],
    error: null,
    unusedEffects: [],
    reason,
  }
}

/**
 * Replays one record. Never throws for anything a stage does; a recorded value that is not
 * typed JSON (the bundle is damaged, or was made by hand) is a BundleError naming the record.
 */
export async function replayRecord(chain: RecordChain, o: ReplayOptions): Promise<RecordResult> {
  holdYoungGeneration()
  try {
    const inRecord: RecordOptions = { ...o, recordCaptures: chain.captures }
    return await replayChain(chain, inRecord)
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err
    throw new BundleError(
      'E_BUNDLE_CORRUPT',
      `${chain.source}: record ${chain.record.id} holds a recorded value that cannot be read (${err.message})`,
      undefined,
      { cause: err },
    )
  }
}

/**
 * Replays the captures of one record in order, each stage judged against its oracle. The
 * work is split into methods so that V8 optimises each on its own: one function holding it
 * all took ~50 ms of the optimising compiler's time per compile, and was compiled three
 * times in a run as new object shapes reached it.
 */
async function replayChain(chain: RecordChain, o: ReplayOptions): Promise<RecordResult> {
  const replay = new ChainReplay(chain, o)
  for (const c of chain.captures) await replay.capture(c)
  return replay.result()
}

/** The local output of a stage's latest attempt: its text and value, or undefined if it failed. */
type LocalOutput = { text: string; value: unknown; recorded?: true } | undefined

/** How a stage that differs on the input it was handed is judged on its recorded one. */
interface AloneJudgement {
  status: StageStatus
  reason: string
  /** The stage upstream whose hand-off does not line up in the recording. */
  seamFrom?: string
  /** The run and judgement to keep (the stage failed on its recorded input too). */
  run?: LocalRun
  j?: Judgement
  /** It differs on its recorded input too: what it is judged on from here is that input. */
  onRecordedInput?: true
}

/** What replaying one record's captures builds up, capture by capture. */
class ChainReplay {
  private readonly order: string[]
  /** Which stage handed each its input in production: the cascade follows only those. */
  private readonly fed: Map<string, string | undefined>
  private readonly expected: Map<string, ExpectationRow>
  private readonly lastAttempt = new Map<string, number>()
  /** Each pin by the capture it stands for (its stage's last call), for nested calls spliced in. */
  private readonly pinBySeq = new Map<number, ExpectationRow>()
  /**
   * Stages whose local output differs from the recording because it was pinned so: each with
   * the pinned stage it comes from (itself, for one that matched a pin production did not
   * record). What takes its input from them, or calls them, differs from the recording on purpose.
   */
  private readonly pinnedAway = new Map<string, string>()
  /** Stages judged inherited from a hand-off before any stage diverged, with their feeder. */
  private readonly viaSeam: { stage: string; attempt: AttemptResult; upstream: string }[] = []
  /** Inherited stages whose difference comes from a pin: the pinned stage. */
  private readonly pinFrom = new Map<string, string>()
  private readonly localOut = new Map<string, LocalOutput>()
  private readonly attempts = new Map<string, AttemptResult[]>()
  private readonly lastLocal = new Map<string, string>()
  private firstBad: string | undefined
  /** Attempts judged inherited from stages called inside them, settled at the end. */
  private readonly viaNested: {
    stage: string
    attempt: AttemptResult
    stages: string[]
    status: StageStatus
    reason: string | undefined
  }[] = []
  /** Stages whose recording could not be read (the bundle is damaged there). */
  private readonly unreadable = new Set<string>()
  /** Stages skipped in cascade for want of an input: the stage upstream that failed. */
  private readonly brokenAt = new Map<string, string>()
  /** Stages inherited from a recorded seam that does not line up: that seam's two stages. */
  private readonly seamOf = new Map<string, { from: string; to: string }>()
  /** Each stage's recorded output (of its last attempt): null when it handed nothing on. */
  private readonly recordedOut = new Map<string, string | null>()

  constructor(
    private readonly chain: RecordChain,
    private readonly o: ReplayOptions,
  ) {
    this.order = stageOrder(chain.captures)
    this.fed = handoffs(chain.captures)
    this.expected = new Map(chain.expectations.map((x) => [x.stage, x]))
    for (const c of chain.captures) {
      this.lastAttempt.set(c.stage, c.seq)
      this.recordedOut.set(c.stage, c.output)
    }
    for (const [stage, x] of this.expected) {
      const seq = this.lastAttempt.get(stage)
      if (seq !== undefined) this.pinBySeq.set(seq, x)
    }
  }

  /** Replays one capture (one attempt of one stage) and records how it went. */
  async capture(c: RecordChain['captures'][number]): Promise<void> {
    const list = this.attempts.get(c.stage) ?? []
    this.attempts.set(c.stage, list)
    try {
      await this.attempt(c, list)
    } catch (err) {
      // One damaged value fails its stage of this record; the other records still replay.
      if (!(err instanceof DecodeError)) throw err
      list.push(unreadableAttempt(c, err))
      this.unreadable.add(c.stage)
      this.localOut.set(c.stage, undefined)
      this.lastLocal.delete(c.stage)
      this.firstBad ??= c.stage
    }
  }

  /** The recorded output stands in for the stage's local one. */
  private recordedAsLocal(c: CaptureRow): void {
    this.localOut.set(
      c.stage,
      c.output === null ? undefined : { text: c.output, value: decode(c.output), recorded: true },
    )
  }

  /** Runs and judges one capture, listing its attempt in `list`. */
  private async attempt(c: RecordChain['captures'][number], list: AttemptResult[]): Promise<void> {
    const o = this.o
    const isFinal = this.lastAttempt.get(c.stage) === c.seq
    const expectation = isFinal ? this.expected.get(c.stage) : undefined
    const oracleOutput = expectation ? expectation.output : c.output
    const oracleError = expectation ? expectation.error : c.error
    if (o.only !== undefined && c.stage !== o.only) {
      list.push(skipped(c.attempt, 'not selected (--stage)'))
      this.recordedAsLocal(c)
      return
    }
    if (o.splice?.has(c.stage)) {
      list.push(skipped(c.attempt, 'spliced: recorded output used'))
      this.recordedAsLocal(c)
      return
    }
    const fn = o.stages.get(c.stage)
    if (fn === undefined) {
      list.push(skipped(c.attempt, 'not in the config: recorded output used'))
      this.recordedAsLocal(c)
      return
    }
    const upstream = this.fed.get(c.stage)
    // Text a local build's output encoded to is never a marker (an object spelling one is
    // written escaped): an input equal to it needs no look.
    const up0 = upstream === undefined ? undefined : this.localOut.get(upstream)
    const handedOn = up0 !== undefined && up0.recorded !== true && up0.text === c.input
    const recordedInput = !handedOn && mayBeMarker(c.input) ? decodeRaw(c.input) : undefined
    if (isUnrecorded(recordedInput)) {
      list.push(
        skipped(
          c.attempt,
          `input was not recorded (${reasonText((recordedInput as { reason?: unknown }).reason)})`,
        ),
      )
      this.recordedAsLocal(c)
      return
    }
    // The input that goes with this stage's oracle: production's input for a recorded
    // output; for a pinned expectation, the pinned output of the stage before if it has
    // one (both were accepted from the same fixed chain).
    const pinnedUpstream = upstream !== undefined ? this.expected.get(upstream)?.output : undefined
    const oracleInput = (expectation !== undefined ? pinnedUpstream : undefined) ?? c.input
    let input: unknown
    let inputDiffers = false
    // Effects were recorded with production's input: play them back leniently whenever the
    // input given differs from it (the oracle input may be a pinned one).
    let offRecorded = oracleInput !== c.input
    // A stage that failed in production handed nothing on: what ran after it got its
    // recorded input, whatever the stage does locally (a fallback on the failed stage's own
    // input is fed by what fed that one, handoff.ts).
    const handed = upstream !== undefined && this.recordedOut.get(upstream) !== null
    if (o.mode === 'cascade' && handed && this.localOut.has(upstream)) {
      const up = this.localOut.get(upstream)
      if (up === undefined) {
        // Named by the stage where the chain broke, not the skipped one just before.
        const root = this.brokenAt.get(upstream) ?? upstream
        this.brokenAt.set(c.stage, root)
        const why = this.unreadable.has(root)
          ? 'could not be replayed (its recording cannot be read)'
          : 'failed locally'
        const via = root === upstream ? '' : `, so ${upstream} did not run`
        list.push(skipped(c.attempt, `upstream stage ${root} ${why}${via}`))
        this.localOut.set(c.stage, undefined)
        return
      }
      input = up.value
      inputDiffers = up.text !== oracleInput
      offRecorded = up.text !== c.input
    } else {
      input = decode(oracleInput)
    }
    let run = await runStage(fn, input, c, this.chain.record.key, o, offRecorded)
    let j = judge(run, oracleOutput, oracleError, o)
    let status: StageStatus = j.status
    let reason: string | undefined = j.reason
    let seamFrom: string | undefined
    let onRecordedInput = false
    if (j.status !== 'matched' && j.status !== 'skipped' && inputDiffers) {
      const alone = await this.alone(c, fn, oracleInput, oracleOutput, oracleError, upstream)
      status = alone.status
      reason = alone.reason
      seamFrom = alone.seamFrom
      onRecordedInput = alone.onRecordedInput === true
      if (alone.run !== undefined && alone.j !== undefined) {
        run = alone.run
        j = alone.j
      }
    }
    // A stage that called other stages may differ only through what they gave it: judged
    // again with their recorded results, on the same input; settled once they are judged.
    let throughNested: { stages: string[]; status: StageStatus; reason: string | undefined } | undefined
    const calledInside =
      status === 'diverged' && run.nestedStages !== undefined
        ? [...new Set(run.nestedStages)].filter((n) => o.stages.has(n))
        : []
    if (calledInside.length > 0) {
      // The recorded input is decoded again: the stage may have changed the copy it was given.
      const usedInput = onRecordedInput ? decode(oracleInput) : input
      const lenient = onRecordedInput ? oracleInput !== c.input : offRecorded
      if (
        await this.matchesThroughNested(c, fn, usedInput, lenient, expectation, oracleOutput, oracleError)
      ) {
        throughNested = { stages: calledInside, status, reason }
        status = 'inherited'
        reason = `differs only through ${calledInside.join(', ')}, called inside it: with ${calledInside.length === 1 ? 'its' : 'their'} recorded ${calledInside.length === 1 ? 'result' : 'results'} it matches`
      }
    }
    if ((status === 'diverged' || status === 'error') && this.firstBad === undefined) this.firstBad = c.stage
    if (
      status === 'matched' &&
      expectation !== undefined &&
      (expectation.output !== c.output || expectation.error !== c.error)
    )
      this.pinnedAway.set(c.stage, c.stage)
    this.localOut.set(c.stage, run.ok ? { text: run.text!, value: run.value } : undefined)
    if (run.ok) this.lastLocal.set(c.stage, run.text!)
    else this.lastLocal.delete(c.stage)
    const a: AttemptResult = {
      attempt: c.attempt,
      status,
      oracle: expectation ? 'expected' : 'recorded',
      changes: j.changes,
      suppressed: j.suppressed,
      error: j.error,
      unusedEffects: run.ok ? run.unused.map((e) => ({ seq: e.seq, kind: e.kind, name: e.name })) : [],
    }
    if (reason !== undefined) a.reason = reason
    if (j.truncated) a.truncated = true
    if (run.argChanges !== undefined && run.argChanges.length > 0) a.effectChanges = run.argChanges
    if (throughNested !== undefined) this.viaNested.push({ stage: c.stage, attempt: a, ...throughNested })
    if (seamFrom !== undefined) this.viaSeam.push({ stage: c.stage, attempt: a, upstream: seamFrom })
    list.push(a)
  }

  /** Judges a stage that differs on the input it was handed on its own: the input it should have had, the recorded effects. */
  private async alone(
    c: RecordChain['captures'][number],
    fn: StageFn<unknown, unknown>,
    oracleInput: string,
    oracleOutput: string | null,
    oracleError: string | null,
    upstream: string | undefined,
  ): Promise<AloneJudgement> {
    const o = this.o
    const alone = await runStage(
      fn,
      decode(oracleInput),
      c,
      this.chain.record.key,
      o,
      oracleInput !== c.input,
    )
    const ja = judge(alone, oracleOutput, oracleError, o)
    if (ja.status !== 'matched') {
      const differs: AloneJudgement = {
        status: ja.status,
        reason: 'differs on its recorded input too',
        onRecordedInput: true,
      }
      if (ja.status === 'error') {
        differs.run = alone
        differs.j = ja
      }
      return differs
    }
    if (this.firstBad !== undefined) {
      return {
        status: 'inherited',
        reason: `its input differed because ${this.firstBad} diverged; on its recorded input it matches`,
      }
    }
    // Nothing upstream diverged: a hand-off in production did not line up, this one or,
    // when this one does, the one upstream took its different input from.
    const seam =
      upstream !== undefined && this.recordedOut.get(upstream) === c.input
        ? this.seamOf.get(upstream)
        : undefined
    const root = seam ?? { from: upstream!, to: c.stage }
    this.seamOf.set(c.stage, root)
    return {
      status: 'inherited',
      seamFrom: upstream!,
      reason:
        root.to === c.stage
          ? `its input differed from what production recorded for it (the seam from ${root.from} does not line up in the recording); on its recorded input it matches`
          : `its input differed from what production recorded for it (the seam ${root.from} → ${root.to} does not line up in the recording, and ${upstream} handed on what it made of it); on its recorded input it matches`,
    }
  }

  /** Whether a diverged stage that called other stages matches when run again with their recorded results. */
  private async matchesThroughNested(
    c: RecordChain['captures'][number],
    fn: StageFn<unknown, unknown>,
    usedInput: unknown,
    offRecorded: boolean,
    expectation: ExpectationRow | undefined,
    oracleOutput: string | null,
    oracleError: string | null,
  ): Promise<boolean> {
    // Judged on its pin, it is paired with the pins of the stages it calls, as a pinned
    // stage is with its feeder's pin: all were accepted from the same fixed build.
    const pins = expectation !== undefined ? this.pinBySeq : undefined
    const own = await runStage(fn, usedInput, c, this.chain.record.key, this.o, offRecorded, true, pins)
    return judge(own, oracleOutput, oracleError, this.o).status === 'matched'
  }

  /** The worst status among a stage's attempts. */
  private worstOf(stage: string): StageStatus {
    let worst: StageStatus = 'skipped'
    for (const a of this.attempts.get(stage) ?? []) if (severity[a.status] > severity[worst]) worst = a.status
    return worst
  }

  /**
   * Settles what could only be judged once every stage had run: stages inherited through
   * stages called inside them or through seams. Returns, for each stage judged inherited
   * from a stage called inside it, that stage.
   */
  private settle(): Map<string, string> {
    const nestedFrom = new Map<string, string>()
    // A stage judged inherited from stages called inside it is, unless one of them diverged
    // or failed on its own (the difference is then in what it passed them: its own).
    // Innermost first: a stage called inside starts after its caller, so settling them in
    // reverse order has a middle stage (`b` in a → b → c) back to `diverged`, when the bug is
    // in what it passed `c`, before `a` asks whether `b` diverged.
    for (const v of this.viaNested.toReversed()) {
      const bad = v.stages.find((n) => this.worstOf(n) === 'diverged' || this.worstOf(n) === 'error')
      // Judged on its recording, it differs through a stage it calls that gives its pin now.
      const away = v.attempt.oracle === 'recorded' ? v.stages.find((n) => this.pinnedAway.has(n)) : undefined
      if (bad !== undefined) nestedFrom.set(v.stage, bad)
      else if (away !== undefined) {
        const root = this.pinnedAway.get(away)!
        nestedFrom.set(v.stage, root)
        this.pinnedAway.set(v.stage, root)
        v.attempt.reason = `differs only through ${away}, called inside it, whose pinned expectation is not what production recorded: with the recorded ${v.stages.length === 1 ? 'result' : 'results'} it matches`
      } else {
        v.attempt.status = v.status
        if (v.reason === undefined) delete v.attempt.reason
        else v.attempt.reason = v.reason
      }
    }
    // A stage fed by one that gives its pin (or differs through one) took its input from the
    // pin, not from a seam that does not line up in the recording.
    for (const v of this.viaSeam) {
      const root = this.pinnedAway.get(v.upstream)
      if (root === undefined) continue
      this.pinnedAway.set(v.stage, root)
      this.pinFrom.set(v.stage, root)
      v.attempt.reason = `its input differed because ${root} is pinned to an output production did not record; on its recorded input it matches`
    }
    if (this.viaNested.length > 0) {
      // The first stage, in the order the record ran, that diverged or failed on its own.
      this.firstBad = undefined
      for (const c of this.chain.captures) {
        const a = (this.attempts.get(c.stage) ?? []).find((x) => x.attempt === c.attempt)
        if (a !== undefined && (a.status === 'diverged' || a.status === 'error')) {
          this.firstBad = c.stage
          break
        }
      }
    }
    return nestedFrom
  }

  /** The record's result, once every capture has been replayed. */
  result(): RecordResult {
    const nestedFrom =
      this.viaNested.length > 0 || this.viaSeam.length > 0 ? this.settle() : new Map<string, string>()
    const stages: StageResult[] = this.order.map((stage) => {
      const list = this.attempts.get(stage) ?? []
      let worst = list[list.length - 1] ?? skipped(1, 'no capture')
      for (const a of list) if (severity[a.status] > severity[worst.status]) worst = a
      const r: StageResult = {
        stage,
        status: worst.status,
        changes: worst.changes,
        suppressed: worst.suppressed,
        error: worst.error,
        attempts: list,
      }
      if (worst.reason !== undefined) r.reason = worst.reason
      const from = nestedFrom.get(stage) ?? this.pinFrom.get(stage) ?? this.firstBad
      if (worst.status === 'inherited' && from !== undefined) r.inheritedFrom = from
      const text = this.lastLocal.get(stage)
      if (text !== undefined && (r.status === 'diverged' || r.status === 'inherited'))
        r.local = decodeRaw(text)
      return r
    })
    const first = stages.find((s) => s.status === 'diverged' || s.status === 'error')
    const outputs = Object.fromEntries(this.lastLocal)
    const invariants = checkInvariants(this.chain, this.fed, outputs, this.o)
    // A check production passed and the local build fails is a divergence of its own.
    const broken =
      first === undefined ? invariants.find((i) => i.recorded === 'ok' && i.local === 'violated') : undefined
    const brokenStage = broken?.stage ?? this.order.at(-1) ?? '-'
    return {
      recordId: this.chain.record.id,
      key: this.chain.record.key,
      verdict:
        first === undefined
          ? broken
            ? 'diverged'
            : 'matched'
          : first.status === 'error'
            ? 'error'
            : 'diverged',
      firstDivergence:
        first === undefined
          ? broken
            ? { stage: brokenStage, status: 'diverged' }
            : null
          : { stage: first.stage, status: first.status as 'diverged' | 'error' },
      stages,
      mode: this.o.mode,
      ...(invariants.length > 0 ? { invariants } : {}),
      outputs,
    }
  }
}

export interface InvariantCheck {
  name: string
  /** On the chain production recorded. */
  recorded: InvariantStatus
  /** On the chain the local build produced. */
  local: InvariantStatus
  /** Violated in production: a production data bug, whatever replay shows. */
  productionBug: boolean
  stage: string
  message?: string
}

function checkInvariants(
  chain: RecordChain,
  fed: ReadonlyMap<string, string | undefined>,
  outputs: Readonly<Record<string, string>>,
  o: ReplayOptions,
): InvariantCheck[] {
  const invariants = o.invariants ?? []
  if (invariants.length === 0) return []
  const recorded = recordedChain(chain)
  const rec = runInvariants(invariants, recorded)
  const loc = runInvariants(invariants, replayedChain(recorded, fed, outputs, o.mode === 'cascade'))
  return rec.map((r, i) => {
    const l = loc[i]!
    const check: InvariantCheck = {
      name: r.name,
      recorded: r.status,
      local: l.status,
      productionBug: r.status === 'violated',
      stage: r.stages.at(-1) ?? '-',
    }
    const message = l.status === 'violated' || l.status === 'error' ? l.message : r.message
    if (message !== undefined) check.message = message
    return check
  })
}

export interface ReplaySummary {
  records: number
  matched: number
  diverged: number
  errors: number
}

export function emptySummary(): ReplaySummary {
  return { records: 0, matched: 0, diverged: 0, errors: 0 }
}

export function addToSummary(s: ReplaySummary, r: Pick<RecordResult, 'verdict'>): void {
  s.records++
  if (r.verdict === 'matched') s.matched++
  else if (r.verdict === 'diverged') s.diverged++
  else s.errors++
}
