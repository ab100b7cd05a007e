/**
 * The production recorder: wraps stage functions, captures what each stage received,
 * produced and observed, and streams whole records to a bundle.
 *
 * Rule one: the recorder never throws into, blocks, or crashes the host. Everything it
 * does around a stage call is guarded; when it cannot keep up it drops and counts.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { CaptureWrite, EffectRow, RecordUnit } from '../bundle/types.js'
import {
  compilePath,
  type EncodeLimits,
  encode,
  PayloadError,
  RedactionFailed,
  Redactor,
  type RedactRule,
  thrownFields,
  thrownMessage,
  unfinishedMarker,
  unrecordedMarker,
} from '../codec/index.js'
import { type ReplayHook, replayHook, wrappedStage } from '../stage-mark.js'
import { ignoreRejection, isThenable, observe } from '../thenable.js'
import { version as recorderVersion } from '../version.js'
import { newRecordId } from './ids.js'
import { keySampler } from './sampling.js'
import { WriterLink } from './writer-link.js'

/** What a stage sees besides its input. Replay provides the same shape. */
export interface StageContext {
  /** The record's business key (`sku:1001`). */
  readonly key: string
  readonly recordId: string
  readonly stage: string
  /** 1 for the first call of this stage in the record, 2 for its first retry, ... */
  readonly attempt: number
  /** The current time in ms; recorded, and played back on replay. */
  now(): number
  /** A random number in [0, 1); recorded, and played back on replay. */
  random(): number
  /**
   * Runs `fn` (a KV read, a cache lookup, an HTTP call) and records `args` and its result
   * or error. On replay `fn` is not called: the recorded result is returned.
   */
  effect<T>(name: string, args: unknown, fn: () => T): T
}

export type StageFn<I = unknown, O = unknown> = (input: I, ctx: StageContext) => O | Promise<O>

export interface StageOptions<I> {
  /** Starts a record keyed by this when the stage is called outside one. */
  key?: (input: I) => string
}

export interface RecordOptions {
  /**
   * Continue a record begun in another process (propagate `current().recordId`). A key
   * sampled out takes no id, so the `''` a record sampled out hands out is passed on freely.
   */
  recordId?: string
}

export interface RecorderStats {
  /** Captures handed to the writer. */
  captured: number
  /** Stage calls not captured because their record's key was sampled out. */
  sampledOut: number
  /** Captures lost: queue full, writer failed or closed. */
  dropped: number
  /** Captures committed to the bundle. */
  written: number
  /** Problems the recorder absorbed (see onError). */
  errors: number
  /**
   * Calls that ran but could not be recorded: a stage called outside any record (with no
   * `key` option, or one that gave no key), or after its record had ended; `ctx.now()`,
   * `ctx.random()` or `ctx.effect()` called after its stage returned or its record ended.
   * A stage still running when its record ends is captured, its output recorded as an
   * `unfinished` marker.
   */
  unrecorded: number
  /**
   * Why captures were dropped. `unfinished`: records still open held more than
   * `maxOpenBytes`, and the oldest of them were dropped (records that never end?).
   */
  droppedBy: { queueFull: number; writeFailed: number; closed: number; unfinished: number }
}

/** What `onError` receives. The recorder never throws it at the host. */
export class RecorderError extends Error {
  override readonly name = 'RecorderError'
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

export interface RecorderOptions {
  /**
   * Bundle file. `{pid}` and `{host}` are replaced, for one file per process; a relative
   * path is taken from the working directory when the recorder is created.
   */
  path: string
  pipeline?: string
  /** Build id of this deployment (a git sha, an image tag). */
  build?: string
  /** Fraction of record keys to record, 0..1 (default 1). */
  sample?: number
  /** Redaction rules: paths (`$.customer.phone`, `$..password`) or functions. */
  redact?: RedactRule[]
  /**
   * Secret for equality-preserving redaction tokens. An empty key is refused (reported as
   * `E_REDACT_KEY`; redaction then uses plain tokens): anyone could recompute its tokens.
   */
  redactKey?: string | Buffer
  /** Also redact common secret key names (default true). */
  redactDefaults?: boolean
  /** Longest a capture waits in memory before it is written (default 200 ms). */
  flushIntervalMs?: number
  /**
   * Most captures waiting to be written; more are dropped and counted (default 10,000). A
   * record that meets a full queue is dropped whole, and its later payloads are not encoded.
   */
  maxQueue?: number
  /**
   * Most bytes of encoded payloads waiting to be written (default 16 MiB); a record that
   * would go over it is dropped and counted as queue-full, like one over `maxQueue`. One
   * record is always taken when nothing is waiting, whatever its size.
   */
  maxQueueBytes?: number
  /**
   * Most bytes of encoded payloads held by records not yet ended (default 64 MiB). A record
   * stays in memory until its function settles; past this bound the oldest open records are
   * dropped and counted (`droppedBy.unfinished`), so records that never end cannot grow the
   * host without limit.
   */
  maxOpenBytes?: number
  /** Largest payload recorded; larger ones become a marker with their size (default 1 MiB). */
  maxPayloadBytes?: number
  /**
   * Longest `flush()` and `close()` wait for the last writes (default 5,000 ms). A writer still waiting
   * then on a lock another connection holds is given up to 1 s more to stop, so that nothing
   * it was writing lands after close() has counted it as dropped.
   */
  closeTimeoutMs?: number
  /**
   * Told of absorbed problems, at most once per code every 10 s. What it throws, or the
   * promise it returns rejects with, is ignored.
   */
  onError?: (err: RecorderError) => void
  /** Time source (default Date.now), for deterministic recordings. */
  clock?: () => number
  /** Random source (default Math.random), for deterministic recordings. */
  random?: () => number
  /**
   * Record id source (default: time-ordered random ids). Each id must be a string of 1 to
   * 256 characters, unique to its record; one that is not is reported and replaced.
   */
  ids?: () => string
  /**
   * Record error stacks (default false): they hold absolute paths of the machine and
   * change with every edit, so they are off unless asked for.
   */
  recordStacks?: boolean
  /** Host name and pid to record (default: this process). */
  origin?: { host?: string; pid?: number }
}

export interface Recorder {
  stage<I, O>(name: string, fn: StageFn<I, O>, options?: StageOptions<I>): (input: I) => Promise<O>
  record<T>(key: string, fn: () => T | Promise<T>, options?: RecordOptions): Promise<T>
  current(): { recordId: string; key: string } | undefined
  stats(): RecorderStats
  flush(): Promise<void>
  close(): Promise<void>
}

interface ActiveRecord {
  id: string
  key: string
  sampled: boolean
  startedAt: number
  /** elapsed() when it started: its captures start at `wallAt` plus the time since. */
  elapsedAt: number
  /** The wall clock to the microsecond when it started (processWall), 0 with an injected clock. */
  wallAt: number
  seq: number
  /** Calls so far per stage name, by the name's slot (`slotOf`): an array read, not a map lookup, on every call. */
  attempts: number[]
  captures: CaptureWrite[]
  /**
   * Captures of this record shed because the writer's queue was full, or because records
   * still open held too much; once above 0 the record is dropped whole at its end,
   * `captures` is empty and nothing more is encoded.
   */
  shed: number
  /** Of `shed`, how many are already counted as dropped (`unfinished`, when shed). */
  shedCounted: number
  /** Encoded bytes its captures hold (counted in the recorder's open bytes). */
  bytes: number
  /** Its function has settled: later calls in its context are not recorded. */
  ended: boolean
  /**
   * Its captures whose stage returned a promise that has not settled yet, with when each
   * started (elapsed()). Made at the first such stage: a stage that returns at once is done
   * before its record can end, so it is never tracked.
   */
  running: Map<CaptureWrite, number> | undefined
  /** Its async effects not settled yet; made at the first one. */
  pending: Set<EffectRow> | undefined
}

/** A capture's start: its record's start on the wall clock plus the time since, in µs. */
function preciseStart(rec: ActiveRecord, elapsedNow: number): number {
  return Math.round((rec.wallAt + (elapsedNow - rec.elapsedAt)) * 1000) / 1000
}

/**
 * The wall clock at `performance.now()` reading `at`, to the microsecond, on one line for the
 * whole process: every recorder in it and every part of a record continued in it (a second
 * `record(key, fn, { recordId })`) times its captures on the same clock, so which ended before
 * the next started can be read across parts (src/compare/handoff.ts). `Date.now()` at each
 * record's start would not do: it drops up to a millisecond, differently for each part. The
 * line is drawn again when it has drifted from `Date.now()` (the wall clock was stepped).
 */
let wallLine = { wall: performance.timeOrigin, at: 0 }
const wallDriftMs = 5

function processWall(at: number): number {
  const wall = wallLine.wall + (at - wallLine.at)
  const now = Date.now()
  if (Math.abs(wall - now) <= wallDriftMs) return wall
  wallLine = { wall: now, at }
  return now
}

const errorLimitMs = 10_000
const exitFlushMs = 2_000

/**
 * The records open in an async context, innermost first, at most one per recorder. A record
 * of one recorder entered inside a record of another does not hide the outer one from its
 * own recorder's stages.
 */
interface OpenRecord {
  readonly owner: object
  readonly rec: ActiveRecord
  readonly outer: OpenRecord | undefined
  /** Set while the function of one of this capture's `ctx.effect` calls runs (see `effect`). */
  readonly inEffectOf?: CaptureWrite
}

/**
 * One storage for every recorder of the process. Each AsyncLocalStorage that has been
 * entered stays enabled for good (close() cannot turn it off without hiding records still
 * in flight), and on Node 20 each enabled one makes every promise of the host dearer.
 */
const openRecords = new AsyncLocalStorage<OpenRecord>()

interface ExitHooks {
  beforeExit(): void
  exit(code: unknown): void
}

/**
 * The exit hooks of every open recorder, behind one listener per process event: a service
 * that opens a recorder per tenant or per bundle would otherwise add a listener each, and
 * Node warns of a leak past ten.
 */
const exitHooks = new Set<ExitHooks>()
const onProcessBeforeExit = (): void => {
  for (const h of exitHooks) h.beforeExit()
}
const onProcessExit = (code: unknown): void => {
  // Each flushes its own bundle; one that fails must not keep the next from flushing.
  for (const h of exitHooks) {
    try {
      h.exit(code)
    } catch {
      // The process is exiting; never turn that into a crash.
    }
  }
}

function addExitHooks(hooks: ExitHooks): void {
  if (exitHooks.size === 0) {
    process.on('beforeExit', onProcessBeforeExit)
    process.on('exit', onProcessExit)
  }
  exitHooks.add(hooks)
}

function removeExitHooks(hooks: ExitHooks): void {
  if (!exitHooks.delete(hooks) || exitHooks.size > 0) return
  process.off('beforeExit', onProcessBeforeExit)
  process.off('exit', onProcessExit)
}

/** `ctx.effect` where nothing is recorded: runs the effect, and is one function for every call. */
const runEffect: StageContext['effect'] = (_name, _args, fn) => fn()

/** The open record of `owner` in the current async context. */
function openRecordOf(owner: object): ActiveRecord | undefined {
  return openLayerOf(owner)?.rec
}

function openLayerOf(owner: object): OpenRecord | undefined {
  for (let o = openRecords.getStore(); o !== undefined; o = o.outer) if (o.owner === owner) return o
  return undefined
}

/**
 * `open` without the record of `owner`. A record nested in another of the same recorder
 * replaces it for good, so the inner context must not keep the outer one alive.
 */
function withoutOwner(open: OpenRecord | undefined, owner: object): OpenRecord | undefined {
  if (open === undefined) return undefined
  if (open.owner === owner) return open.outer
  const outer = withoutOwner(open.outer, owner)
  return outer === open.outer ? open : { owner: open.owner, rec: open.rec, outer }
}

/**
 * The recorded form of something thrown. Never throws itself: it runs on the host's error
 * path, where what was thrown may be a revoked Proxy or an Error whose getters throw, and
 * the host must get back exactly what its code threw.
 */
function describeError(err: unknown, withStack: boolean): string {
  try {
    return describeThrown(err, withStack)
  } catch {
    return JSON.stringify({ name: 'NonError', message: 'unprintable error' })
  }
}

/**
 * A string the host gave as a name or key, coerced without throwing; a symbol or an object
 * would otherwise fail the whole batch it travels in (structured clone, SQLite binding).
 */
/**
 * Whether `work` settled within `ms` (false: the time ran out first; `work` goes on). Its
 * rejection is rethrown. `keepAlive`: the timer holds the process open meanwhile.
 */
async function doneWithin(work: Promise<unknown>, ms: number, keepAlive: boolean): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms)
    if (!keepAlive) timer.unref()
  })
  try {
    return await Promise.race([work.then(() => true as const), timedOut])
  } finally {
    clearTimeout(timer)
  }
}

function nameText(value: unknown, fallback: string): string {
  if (typeof value === 'string') return value
  try {
    return String(value)
  } catch {
    return fallback
  }
}

function describeThrown(err: unknown, withStack: boolean): string {
  if (err instanceof Error) {
    const e: Record<string, unknown> = { name: err.name, message: err.message }
    const code = (err as { code?: unknown }).code
    if (typeof code === 'string' || typeof code === 'number') e.code = code
    if (withStack && typeof err.stack === 'string')
      e.stack = err.stack.split('\n').slice(0, 12).join('\n').slice(0, 4096)
    return JSON.stringify(e)
  }
  // A plain object thrown in an Error's place is read by its own name, message and code.
  const e = thrownFields(err)
  return JSON.stringify({ ...e, name: e.name.slice(0, 256), message: e.message.slice(0, 4096) })
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * A record id given as bytes (a message header): its UTF-8 text, or `x'<hex>'` when the
 * bytes are not UTF-8 text or hold control characters (a binary trace id), as readers of
 * the bundle name a BLOB of such bytes. Decoding with replacement characters would give
 * different ids the same text, and merge their records.
 */
function bytesId(bytes: Uint8Array): string {
  try {
    const text = strictUtf8.decode(bytes)
    if (!/[\u0000-\u001f\u007f]/.test(text)) return text
  } catch {
    // Not UTF-8: named by its bytes.
  }
  return `x'${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}'`
}

/**
 * The bundle's absolute path. A relative path is taken from the working directory when the
 * recorder is created: the writer thread opens the file later (and again after the file is
 * moved away), and a service that changes directory meanwhile (`process.chdir('/')` as a
 * daemon does) would otherwise record somewhere else.
 */
function expandPath(pattern: string, host: string, pid: number): string {
  return resolve(pattern.replaceAll('{pid}', String(pid)).replaceAll('{host}', host.replace(/[^\w.-]/g, '_')))
}

/** The options as the recorder uses them, each checked. */
interface CheckedOptions {
  path: string | undefined
  pipeline: string | null
  build: string | undefined
  sample: number
  redact: RedactRule[]
  redactKey: string | Buffer | undefined
  redactDefaults: boolean | undefined
  flushIntervalMs: number
  maxQueue: number
  maxQueueBytes: number
  maxOpenBytes: number
  maxPayloadBytes: number
  closeTimeoutMs: number
  clock: (() => number) | undefined
  random: (() => number) | undefined
  ids: (() => string) | undefined
  recordStacks: boolean | undefined
  origin: { host?: string; pid?: number }
}

function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value)
  return `(a ${typeof value})`
}

/** The redaction rule that stands in for rules that cannot be used: every payload whole. */
function redactEverything(): boolean {
  return true
}

/**
 * Checks the host's options. A value that cannot be meant (NaN from an unset environment
 * variable, a negative size, a timer longer than node allows, an empty path) is reported
 * as `E_OPTIONS` with what is used instead: misconfiguration never fails silently, and
 * never throws into the host.
 */
function checkedOptions(
  given: RecorderOptions,
  report: (code: string, message: string) => void,
): CheckedOptions {
  const options: Partial<RecorderOptions> = given !== null && typeof given === 'object' ? given : {}
  const bad = (name: string, value: unknown, instead: string): void =>
    report('E_OPTIONS', `recorder option ${name} ${shown(value)} cannot be used; ${instead}`)
  const whole = (name: string, value: unknown, fallback: number, min: number, max: number): number => {
    if (value === undefined) return fallback
    if (typeof value === 'number' && value >= min && value <= max) return Math.floor(value)
    bad(name, value, `it must be a number from ${min} to ${max}; using ${fallback}`)
    return fallback
  }
  const fn = <F>(name: string, value: unknown): F | undefined => {
    if (value === undefined || typeof value === 'function') return value as F | undefined
    bad(name, value, 'it must be a function; using the default')
    return undefined
  }
  const big = Number.MAX_SAFE_INTEGER
  let sample = 1
  if (options.sample !== undefined) {
    if (typeof options.sample === 'number' && options.sample >= 0 && options.sample <= 1)
      sample = options.sample
    else bad('sample', options.sample, 'it must be a number from 0 to 1; recording every record')
  }
  let redact: RedactRule[] = []
  const rules: unknown = options.redact
  if (Array.isArray(rules)) redact = rules as RedactRule[]
  else if (typeof rules === 'string' || typeof rules === 'function') redact = [rules as RedactRule]
  else if (rules !== undefined) bad('redact', rules, 'it must be a list of rules; no extra rules used')
  // A rule that cannot be used was meant to hide something, and what it names cannot be
  // told: every payload is redacted whole rather than let that secret through.
  let unusable = false
  for (const rule of redact) {
    if (typeof rule === 'function') continue
    let problem: string
    if (typeof rule === 'string') {
      try {
        compilePath(rule)
        continue
      } catch (err) {
        problem = `is not a path: ${thrownMessage(err)}`
      }
    } else problem = 'is neither a path nor a function'
    unusable = true
    report(
      'E_OPTIONS',
      `recorder option redact: rule ${shown(rule)} ${problem}; every payload is recorded redacted whole until it is fixed`,
    )
  }
  if (unusable) redact = [redactEverything]
  const origin: { host?: string; pid?: number } = {}
  const from: unknown = options.origin
  if (from !== null && typeof from === 'object') {
    const { host, pid } = from as Record<string, unknown>
    if (typeof host === 'string') origin.host = host
    else if (host !== undefined) bad('origin.host', host, 'it must be a string; using the host name')
    if (typeof pid === 'number' && Number.isSafeInteger(pid)) origin.pid = pid
    else if (pid !== undefined) bad('origin.pid', pid, "it must be a whole number; using this process's pid")
  } else if (from !== undefined) bad('origin', from, 'it must be {host, pid}; using this process')
  let path: string | undefined
  const p: unknown = options.path
  if (
    typeof p === 'string' &&
    p.trim() !== '' &&
    !p.includes('\0') &&
    p !== ':memory:' &&
    !p.startsWith('file:')
  )
    path = p
  else
    report(
      'E_BUNDLE_OPEN',
      `recorder option path ${shown(p)} does not name a bundle file; nothing will be recorded`,
    )
  let redactKey: string | Buffer | undefined
  const key: unknown = options.redactKey
  if (key !== undefined) {
    const length = typeof key === 'string' ? key.length : key instanceof Uint8Array ? key.byteLength : -1
    if (length > 0) {
      redactKey = (typeof key === 'string' ? key : Buffer.from(key as Uint8Array)) as string | Buffer
      if (Buffer.byteLength(redactKey) < 16)
        report(
          'E_REDACT_KEY',
          'recorder option redactKey is shorter than 16 bytes: tokens made with it can be matched by guessing it; use 32 random bytes',
        )
    } else
      report(
        'E_REDACT_KEY',
        `recorder option redactKey ${length === 0 ? 'is empty' : `is ${shown(key)}, not a string or bytes`}: anyone could recompute its tokens, so redacted values get plain tokens instead`,
      )
  }
  return {
    path,
    pipeline: options.pipeline === undefined ? null : nameText(options.pipeline, 'unprintable pipeline'),
    build: options.build === undefined ? undefined : nameText(options.build, 'unprintable build'),
    sample,
    redact,
    redactKey,
    redactDefaults: options.redactDefaults,
    flushIntervalMs: whole('flushIntervalMs', options.flushIntervalMs, 200, 1, 2 ** 31 - 1),
    maxQueue: whole('maxQueue', options.maxQueue, 10_000, 1, big),
    maxQueueBytes: whole('maxQueueBytes', options.maxQueueBytes, 16 * 1024 * 1024, 1, big),
    maxOpenBytes: whole('maxOpenBytes', options.maxOpenBytes, 64 * 1024 * 1024, 1, big),
    maxPayloadBytes: whole('maxPayloadBytes', options.maxPayloadBytes, 1024 * 1024, 1, big),
    closeTimeoutMs: whole('closeTimeoutMs', options.closeTimeoutMs, 5_000, 0, 2 ** 31 - 1),
    clock: fn('clock', options.clock),
    random: fn('random', options.random),
    ids: fn('ids', options.ids),
    recordStacks: options.recordStacks,
    origin,
  }
}

/** Creates a recorder writing to `options.path`. Never throws for I/O problems. */
export function createRecorder(options: RecorderOptions): Recorder {
  const stats: RecorderStats = {
    captured: 0,
    sampledOut: 0,
    dropped: 0,
    written: 0,
    errors: 0,
    unrecorded: 0,
    droppedBy: { queueFull: 0, writeFailed: 0, closed: 0, unfinished: 0 },
  }
  const lastReported = new Map<string, number>()
  /** Each stage name's index in a record's `attempts`, given when a stage of that name is wrapped. */
  const slots = new Map<string, number>()
  let closed = false

  /** Tells `onError`, at most once per code (or `limitKey`) every 10 s. */
  function tell(code: string, message: string, cause?: unknown, limitKey = code): void {
    const onError = options?.onError
    if (typeof onError !== 'function') return
    const now = Date.now()
    const last = lastReported.get(limitKey)
    if (last !== undefined && now - last < errorLimitMs) return
    lastReported.set(limitKey, now)
    try {
      // An async handler may fail too (the error tracker is down).
      ignoreRejection(onError(new RecorderError(code, message, cause === undefined ? undefined : { cause })))
    } catch {
      // The host's error handler failed; nothing more to do without risking the host.
    }
  }

  /** A problem the recorder absorbed: counted, and told. */
  function report(code: string, message: string, cause?: unknown, limitKey = code): void {
    stats.errors++
    tell(code, message, cause, limitKey)
  }

  // Each option's problem is told, not only the first.
  const o = checkedOptions(options, (code, message) => report(code, message, undefined, message))
  const userClock = o.clock
  let clockWarned = false
  // A clock that gives something other than a finite number would break every timestamp
  // (and the writer with them): the real clock stands in, and the host is told once.
  const clock =
    userClock === undefined
      ? Date.now
      : (): number => {
          let v: unknown
          try {
            v = userClock()
            ignoreRejection(v)
          } catch (err) {
            v = err
          }
          if (typeof v === 'number' && Number.isFinite(v)) return v
          if (!clockWarned) {
            clockWarned = true
            report(
              'E_OPTIONS',
              'the clock option gave something other than a finite number; the real clock is used instead',
              undefined,
              'E_OPTIONS:clock',
            )
          }
          return Date.now()
        }
  // With an injected clock durations come from it too, so a recording can be reproduced.
  const elapsed = userClock !== undefined ? clock : () => performance.now()
  const stacks = o.recordStacks === true
  const random = o.random ?? Math.random
  const host = o.origin.host ?? hostname()
  const pid = o.origin.pid ?? process.pid
  const build = o.build ?? null
  const sampled = keySampler(o.sample)
  const limits: EncodeLimits = { maxBytes: o.maxPayloadBytes, maxDepth: 512 }
  const redactorOf = (rules: RedactRule[]): Redactor =>
    new Redactor({
      rules,
      defaults: o.redactDefaults !== false,
      ...(o.redactKey !== undefined ? { key: o.redactKey } : {}),
    })
  let redactor: Redactor
  try {
    redactor = redactorOf(o.redact)
  } catch (err) {
    report(
      'E_OPTIONS',
      `recorder option redact cannot be used (${thrownMessage(err)}); every payload is recorded redacted whole`,
      err,
    )
    redactor = redactorOf([redactEverything])
  }
  const userIds = o.ids
  /**
   * A new record's id. One the ids option gives that cannot be an id (empty, which would
   * merge every record into one, too long, not a string, or thrown) is told once, and a
   * generated id stands in.
   */
  const ids = (): string => {
    if (userIds === undefined) return newRecordId(clock())
    let v: unknown
    try {
      v = userIds()
      ignoreRejection(v)
    } catch (err) {
      v = err
    }
    if (typeof v === 'string' && v.length > 0 && v.length <= 256) return v
    report(
      'E_OPTIONS',
      'the ids option gave something other than a string of 1 to 256 characters; a generated id is used instead',
      undefined,
      'E_OPTIONS:ids',
    )
    return newRecordId(clock())
  }
  /** Tags this recorder's records in the shared storage. */
  const owner = {}
  /** Sampled records not yet ended, oldest first, and the bytes their captures hold. */
  const openRecs = new Set<ActiveRecord>()
  let openBytes = 0

  let link: WriterLink | undefined
  try {
    if (o.path !== undefined)
      link = new WriterLink(
        {
          path: expandPath(o.path, host, pid),
          options: {
            manifest: {
              pipeline: o.pipeline,
              recorderVersion,
              created: new Date(clock()).toISOString(),
              builds: build === null ? [] : [build],
              redaction: { rules: redactor.describe(), equalityPreserving: redactor.equalityPreserving },
            },
            sameManifest: true,
          },
        },
        {
          captures: o.maxQueue,
          bytes: o.maxQueueBytes,
        },
        256,
        o.flushIntervalMs,
        {
          written: (n) => {
            stats.written += n
          },
          failed: (n, code, message) => {
            stats.dropped += n
            if (code === 'E_CLOSED') {
              // Given up by a close() out of time, which reports them.
              stats.droppedBy.closed += n
              return
            }
            stats.droppedBy.writeFailed += n
            report(code, `recorder could not write ${n} captures: ${message}`)
          },
          openFailed: (code, message) => report(code, `recorder cannot open its bundle: ${message}`),
          notice: (code, message) => tell(code, message),
        },
      )
  } catch (err) {
    report('E_WRITER_START', `recorder could not start its writer: ${thrownMessage(err)}`, err)
  }

  function safeEncode(value: unknown): string {
    try {
      return encode(value, limits, redactor)
    } catch (err) {
      if (err instanceof PayloadError || err instanceof RedactionFailed) {
        report(err instanceof PayloadError ? 'E_PAYLOAD' : 'E_REDACT', err.message, err)
        return unrecordedMarker(err)
      }
      const wrapped = new PayloadError(
        'unserialisable',
        `payload could not be encoded: ${thrownMessage(err)}`,
      )
      report('E_PAYLOAD', wrapped.message, err)
      return unrecordedMarker(wrapped)
    }
  }

  function unitOf(rec: ActiveRecord, status: 'ok' | 'error', error: unknown): RecordUnit {
    return {
      record: {
        id: rec.id,
        key: rec.key,
        startedAt: rec.startedAt,
        endedAt: clock(),
        status,
        error: status === 'error' ? describeError(error, stacks) : null,
        host,
        pid,
        build,
      },
      captures: rec.captures,
    }
  }

  /** Counts `rec`'s encoded bytes in; drops the oldest open records past `maxOpenBytes`. */
  function grow(rec: ActiveRecord, bytes: number): void {
    // An ended record's bytes have left the open count already.
    if (rec.ended) return
    rec.bytes += bytes
    openBytes += bytes
    if (openBytes <= o.maxOpenBytes) return
    for (const old of openRecs) {
      if (openBytes <= o.maxOpenBytes) break
      if (old.shed === 0 && old.captures.length > 0) shedOpen(old)
    }
  }

  /** Drops an open record's captures now, to free what they hold; its later calls run unrecorded. */
  function shedOpen(rec: ActiveRecord): void {
    const n = rec.captures.length
    // The capture objects may still be referenced by calls in flight: empty them too.
    for (const c of rec.captures) {
      c.input = ''
      c.output = null
      c.effects = []
    }
    rec.captures = []
    rec.running = undefined
    rec.pending = undefined
    rec.shed = n
    rec.shedCounted = n
    openBytes -= rec.bytes
    rec.bytes = 0
    stats.dropped += n
    stats.droppedBy.unfinished += n
    report(
      'E_OPEN_FULL',
      `records not yet ended held more than ${o.maxOpenBytes} bytes; dropped the oldest (key ${rec.key}, ${n} captures): do some records never end?`,
    )
  }

  /**
   * A record ends when its function settles, and goes to the writer whole: a stage or an
   * async effect it started and did not wait for is recorded as unfinished (a marker, not
   * "returned nothing"), and what it gives later is not recorded.
   */
  function markUnfinished(rec: ActiveRecord): void {
    if (rec.running !== undefined && rec.running.size > 0) {
      const now = elapsed()
      // Named: the one that started first (a stage is tracked once it has returned a promise).
      let first: CaptureWrite | undefined
      for (const [capture, t0] of rec.running) {
        if (first === undefined || capture.seq < first.seq) first = capture
        capture.output = unfinishedMarker(`stage ${capture.stage} was still running when its record ended`)
        capture.durationMs = Math.round((now - t0) * 1000) / 1000
      }
      tell(
        'E_STAGE_UNFINISHED',
        `record ${rec.key} ended while stage ${first?.stage} was still running (a call it did not wait for); its output is recorded as unfinished`,
      )
    }
    if (rec.pending !== undefined) {
      for (const row of rec.pending)
        row.result = unfinishedMarker(`effect ${row.name} was still running when its record ended`)
    }
    rec.running = undefined
    rec.pending = undefined
  }

  function finishRecord(rec: ActiveRecord, status: 'ok' | 'error', error: unknown): void {
    if (rec.ended) return
    // A record sampled out ends too: a keyed stage called from it later starts its own.
    rec.ended = true
    if (!rec.sampled) return
    openRecs.delete(rec)
    openBytes -= rec.bytes
    rec.bytes = 0
    try {
      if (rec.shed === 0) markUnfinished(rec)
      // A shed record is not built at all: it is dropped whatever happens next.
      const unit = rec.shed > 0 ? undefined : unitOf(rec, status, error)
      const n = rec.captures.length + rec.shed - rec.shedCounted
      if (rec.shedCounted > 0) {
        // Shed while open: its later calls are counted the same way.
        stats.dropped += n
        stats.droppedBy.unfinished += n
      } else if (closed) {
        stats.dropped += n
        stats.droppedBy.closed += n
      } else if (link === undefined || link.isDead) {
        stats.dropped += n
        stats.droppedBy.writeFailed += n
      } else if (unit !== undefined && link.offer(unit)) {
        stats.captured += n
      } else {
        stats.dropped += n
        stats.droppedBy.queueFull += n
        report('E_QUEUE_FULL', `recorder queue is full; dropped a record of ${n} captures`)
      }
    } catch (err) {
      report('E_INTERNAL', `recorder failed to finish a record: ${thrownMessage(err)}`, err)
    }
  }

  /**
   * The id a record continued from another process is given. Ids travel in message
   * headers as bytes or numbers; anything else (an object, a symbol) cannot be an id, and
   * would otherwise fail the writer's batch, every record in it with it.
   */
  function continuedId(value: unknown, key: string): string | undefined {
    let id: string | undefined
    if (typeof value === 'string') id = value
    else if (typeof value === 'number' && Number.isFinite(value)) id = String(value)
    else if (typeof value === 'bigint') id = String(value)
    else if (value instanceof Uint8Array) id = bytesId(value)
    if (id !== undefined && id.length > 0 && id.length <= 256) return id
    if (id === '') {
      // The id a process hands on from a record it sampled out: the two sample differently.
      report(
        'E_RECORD_ID',
        `record ${key}: recordId '' is what current() gives in a record sampled out; this process samples the key in, so it is recorded as a new record (give both processes the same \`sample\` to keep or drop a key together)`,
      )
      return undefined
    }
    report(
      'E_RECORD_ID',
      `record ${key}: recordId ${id !== undefined ? `of ${id.length} characters` : shown(value)} cannot be a record id (a string of 1 to 256 characters); recorded as a new record`,
    )
    return undefined
  }

  function record<T>(keyArg: string, fn: () => T | Promise<T>, opts?: RecordOptions): Promise<T> {
    const key = nameText(keyArg, 'unprintable key')
    const keep = sampled(key)
    // A record sampled out takes no id: the one a process that sampled the same key out
    // passes on (current().recordId, '') is not a mistake to report.
    const givenId = opts?.recordId === undefined || !keep ? undefined : continuedId(opts.recordId, key)
    const current = openRecordOf(owner)
    if (
      current !== undefined &&
      !current.ended &&
      current.key === key &&
      (givenId === undefined || givenId === current.id)
    ) {
      try {
        return Promise.resolve(fn())
      } catch (err) {
        return Promise.reject(err)
      }
    }
    const fresh = (id: string, keep: boolean): ActiveRecord => {
      const precise = keep && userClock === undefined
      const elapsedAt = precise ? elapsed() : 0
      const wallAt = precise ? processWall(elapsedAt) : 0
      return {
        id,
        key,
        sampled: keep,
        // Not after its first capture, which starts on the process's line (processWall).
        startedAt: keep ? (precise ? Math.min(clock(), Math.floor(wallAt)) : clock()) : 0,
        elapsedAt,
        wallAt,
        seq: 0,
        attempts: [],
        captures: [],
        shed: 0,
        shedCounted: 0,
        bytes: 0,
        ended: false,
        running: undefined,
        pending: undefined,
      }
    }
    let rec: ActiveRecord
    try {
      rec = fresh(givenId ?? (keep ? ids() : ''), keep)
      if (keep) openRecs.add(rec)
    } catch (err) {
      report('E_INTERNAL', `recorder failed to start a record: ${thrownMessage(err)}`, err)
      rec = fresh('', false)
    }
    const open: OpenRecord = { owner, rec, outer: withoutOwner(openRecords.getStore(), owner) }
    return openRecords.run(open, () => {
      let result: T | Promise<T>
      try {
        result = fn()
      } catch (err) {
        finishRecord(rec, 'error', err)
        return Promise.reject(err)
      }
      if (!isThenable(result, false)) {
        finishRecord(rec, 'ok', undefined)
        return Promise.resolve(result)
      }
      return observe(result, (ok, v) => finishRecord(rec, ok ? 'ok' : 'error', ok ? undefined : v))
    })
  }

  /** The context of a call that is not recorded: real clock, random and effects. */
  function passthroughContext(rec: ActiveRecord | undefined, stage: string, attempt = 1): StageContext {
    return {
      key: rec?.key ?? '',
      recordId: rec?.id ?? '',
      stage,
      attempt,
      now: clock,
      random,
      effect: runEffect,
    }
  }

  /** A call that ran but cannot be recorded: counted, and the host told (not an error). */
  function unrecorded(code: string, message: string): void {
    stats.unrecorded++
    tell(code, message)
  }

  /**
   * The context of a recorded stage call. `call.ended` once the call has returned: a
   * `ctx` call after that (from a timer or a promise the stage left running) runs, and is
   * not recorded, since the capture may already be on its way to the writer.
   */
  function recordedContext(rec: ActiveRecord, capture: CaptureWrite, call: { ended: boolean }): StageContext {
    const late = (what: string): boolean => {
      if (rec.shed > 0) return true
      if (!call.ended && !rec.ended) return false
      unrecorded(
        'E_LATE_CALL',
        call.ended
          ? `stage ${capture.stage} called ctx.${what} after it had returned (from a timer or a promise it left running); not recorded`
          : `stage ${capture.stage} called ctx.${what} after its record (key ${rec.key}) had ended (the record did not wait for the stage); not recorded`,
      )
      return true
    }
    /** Whether this runs inside the function of one of this capture's effects. */
    const inOwnEffect = (): boolean => openLayerOf(owner)?.inEffectOf === capture
    const push = (row: EffectRow): void => {
      capture.effects.push(row)
      grow(rec, 48 + (row.args?.length ?? 0) + (row.result?.length ?? 0))
    }
    return {
      key: rec.key,
      recordId: rec.id,
      stage: capture.stage,
      attempt: capture.attempt,
      now() {
        const v = clock()
        if (inOwnEffect() || late('now()')) return v
        push({
          seq: capture.effects.length,
          kind: 'now',
          name: 'now',
          args: null,
          result: String(v),
          error: null,
        })
        return v
      },
      random() {
        const v = random()
        if (inOwnEffect() || late('random()')) return v
        push({
          seq: capture.effects.length,
          kind: 'random',
          name: 'random',
          args: null,
          result: String(v),
          error: null,
        })
        return v
      },
      effect<T>(name: string, args: unknown, fn: () => T): T {
        // Called from inside one of this stage's own effects (a cache that loads from the
        // database on a miss): the outer effect's result covers it, and a replay, which does
        // not run the outer effect's function, never makes this call.
        if (inOwnEffect()) return fn()
        // The record was shed while this stage ran (it will not be written), or the stage
        // has returned.
        if (late(`effect(${JSON.stringify(nameText(name, 'unprintable effect name'))})`)) return fn()
        const row: EffectRow = {
          seq: capture.effects.length,
          kind: 'effect',
          name: nameText(name, 'unprintable effect name'),
          args: safeEncode(args),
          result: null,
          error: null,
        }
        push(row)
        let out: T
        try {
          out = openRecords.run(
            { owner, rec, outer: withoutOwner(openRecords.getStore(), owner), inEffectOf: capture },
            fn,
          )
        } catch (err) {
          row.error = describeError(err, stacks)
          throw err
        }
        if (isThenable(out, false)) {
          // Replay hands back a promise only where production got one.
          row.kind = 'async-effect'
          rec.pending ??= new Set()
          rec.pending.add(row)
          // Once the record has ended the row is on its way to the writer, marked unfinished.
          return observe(out, (ok, v) => {
            if (ok && rec.shed === 0 && !rec.ended) {
              rec.pending?.delete(row)
              row.result = safeEncode(v)
              grow(rec, row.result.length)
            } else if (!ok && !rec.ended) {
              rec.pending?.delete(row)
              row.error = describeError(v, stacks)
            }
          }) as T
        }
        if (rec.shed === 0) {
          row.result = safeEncode(out)
          grow(rec, row.result.length)
        }
        return out
      },
    }
  }

  function callRecorded<I, O>(
    rec: ActiveRecord,
    name: string,
    slot: number,
    fn: StageFn<I, O>,
    input: I,
  ): Promise<O> {
    let capture: CaptureWrite | undefined
    let t0 = 0
    let attempt = 1
    try {
      attempt = (rec.attempts[slot] ?? 0) + 1
      rec.attempts[slot] = attempt
      // A record that cannot fit the queue now is dropped whole before any more of it is
      // encoded: under overload the host pays for its stage calls, not for recording them.
      // So is one that can never be written (the recorder closed, no bundle, the writer
      // gone): it is dropped and counted at its end as before, without encoding it first.
      let shedding = rec.shed > 0
      if (
        !shedding &&
        (closed || link === undefined || link.isDead || !link.hasRoom(rec.captures.length + 1))
      ) {
        rec.shed = rec.captures.length
        rec.captures = []
        rec.running = undefined
        rec.pending = undefined
        openBytes -= rec.bytes
        rec.bytes = 0
        shedding = true
      }
      // Counts this capture too, so a record shed at its first stage is above 0 from here on.
      if (shedding) rec.shed++
      else {
        capture = {
          seq: rec.seq++,
          stage: name,
          attempt,
          input: safeEncode(input),
          output: null,
          error: null,
          startedAt: userClock === undefined ? 0 : clock(),
          durationMs: 0,
          effects: [],
        }
        rec.captures.push(capture)
        grow(rec, 128 + capture.input.length)
        t0 = elapsed()
        // To the microsecond, so the calls of a record can be ordered: which stage ran inside
        // or beside another, and which handed its output to the next (src/compare/handoff.ts).
        // An injected clock gives the starts itself.
        if (userClock === undefined) capture.startedAt = preciseStart(rec, t0)
      }
    } catch (err) {
      report('E_INTERNAL', `recorder failed to start a capture: ${thrownMessage(err)}`, err)
    }
    const call = { ended: false }
    const done = (ok: boolean, value: unknown): void => {
      call.ended = true
      // Ended first, the record has gone to the writer with this capture marked unfinished.
      if (capture === undefined || rec.shed > 0 || rec.ended) return
      rec.running?.delete(capture)
      try {
        capture.durationMs = Math.round((elapsed() - t0) * 1000) / 1000
        if (ok) capture.output = safeEncode(value)
        else capture.error = describeError(value, stacks)
        grow(rec, (capture.output?.length ?? 0) + (capture.error?.length ?? 0))
      } catch (err) {
        report('E_INTERNAL', `recorder failed to finish a capture: ${thrownMessage(err)}`, err)
      }
    }
    // A stage that returns at once is done before its caller can take what it gave: under
    // `Promise.all([a(x), b(y)])` the next stage is called before the caller awaits. Its end is
    // read once the caller has gone on to its next microtask, so a stage called beside it
    // starts before it ends, and one called after awaiting it starts after (handoff.ts).
    const doneNow = (ok: boolean, value: unknown): void => {
      done(ok, value)
      if (capture === undefined || userClock !== undefined) return
      const c = capture
      queueMicrotask(() => {
        if (rec.shed === 0 && !rec.ended) c.durationMs = Math.round((elapsed() - t0) * 1000) / 1000
      })
    }
    const ctx =
      capture === undefined ? passthroughContext(rec, name, attempt) : recordedContext(rec, capture, call)
    let result: O | Promise<O>
    try {
      result = fn(input, ctx)
    } catch (err) {
      doneNow(false, err)
      return Promise.reject(err)
    }
    if (!isThenable(result, false)) {
      doneNow(true, result)
      return Promise.resolve(result)
    }
    // Still running: tracked until it settles, so a record that ends first marks it unfinished.
    if (capture !== undefined && rec.shed === 0) {
      rec.running ??= new Map()
      rec.running.set(capture, t0)
    }
    return observe(result, done)
  }

  /**
   * A stage call in a record sampled out: runs as usual, counted as sampledOut. Its
   * attempts are counted as in a recorded record: a stage that backs off or gives up by
   * `ctx.attempt` must behave the same whether its key is sampled in or out.
   */
  function passthrough<I, O>(
    rec: ActiveRecord,
    name: string,
    slot: number,
    fn: StageFn<I, O>,
    input: I,
  ): Promise<O> {
    stats.sampledOut++
    const attempt = (rec.attempts[slot] ?? 0) + 1
    rec.attempts[slot] = attempt
    try {
      return Promise.resolve(fn(input, passthroughContext(rec, name, attempt)))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  function stage<I, O>(
    nameArg: string,
    stageFn: StageFn<I, O>,
    stageOptions?: StageOptions<I>,
  ): (input: I) => Promise<O> {
    const name = nameText(nameArg, 'unprintable stage name')
    // Two wrappers of one name share its attempts, as retries of one stage.
    let slot = slots.get(name)
    if (slot === undefined) {
      slot = slots.size
      slots.set(name, slot)
    }
    const nameSlot = slot
    const keyOf = stageOptions?.key
    // A function, not an arrow: a method wrapped in place (`svc.price = recorder.stage('price',
    // svc.price)`) is called on its object, and `fn` must get that `this` as it did unwrapped.
    const wrapped = function (this: unknown, input: I): Promise<O> {
      const fn: StageFn<I, O> = this === undefined ? stageFn : (i, ctx) => stageFn.call(this, i, ctx)
      const rec = openRecordOf(owner)
      if (rec === undefined || rec.ended) {
        // Under replay (no record is open there), a stage called by the stage being replayed
        // plays back its recording. Looked up only here: a property of the global object
        // costs a call in a record tens of nanoseconds (R2 in bench/).
        const replay = (globalThis as { [replayHook]?: unknown })[replayHook]
        if (typeof replay === 'function') {
          const played = (replay as ReplayHook)(name, input, stageFn, this)
          if (played !== undefined) return played as Promise<O>
        }
        if (keyOf !== undefined) {
          let key: string | undefined
          try {
            const k: unknown = keyOf(input)
            if (isThenable(k, false)) {
              ignoreRejection(k)
              report(
                'E_KEY',
                `stage ${name}: the key function returned a promise; it must return the key itself`,
              )
            } else if ((typeof k === 'string' && k !== '') || typeof k === 'bigint')
              key = nameText(k, 'unprintable key')
            else if (typeof k === 'number' && Number.isFinite(k)) key = String(k)
            else
              report(
                'E_KEY',
                `stage ${name}: the key function gave ${k === undefined ? 'undefined' : shown(k)}, not a key (a non-empty string or a number); not recorded`,
              )
          } catch (err) {
            report('E_KEY', `stage ${name}: the key function threw: ${thrownMessage(err)}`, err)
          }
          if (key !== undefined) return record(key, () => wrapped.call(this, input))
        }
        // Its record was sampled out: it would not have been recorded in it either.
        if (rec !== undefined && !rec.sampled) return passthrough(rec, name, nameSlot, fn, input)
        // A key function that failed has been reported already.
        if (keyOf !== undefined && rec === undefined) stats.unrecorded++
        else
          unrecorded(
            'E_NO_RECORD',
            rec === undefined
              ? `stage ${name} was called outside any record${keyOf === undefined ? ' and has no key option' : ''}; not recorded`
              : `stage ${name} was called after its record (key ${rec.key}) had ended (from a timer or a promise left running); not recorded`,
          )
        try {
          return Promise.resolve(fn(input, passthroughContext(undefined, name)))
        } catch (err) {
          return Promise.reject(err)
        }
      }
      if (!rec.sampled) return passthrough(rec, name, nameSlot, fn, input)
      return callRecorded(rec, name, nameSlot, fn, input)
    }
    // For replay, when a config names this export: it runs the stage itself.
    Object.defineProperty(wrapped, wrappedStage, { value: stageFn })
    return wrapped
  }

  /**
   * At exit the records still open are the ones that explain it (a stage that called
   * `process.exit()`, an `uncaughtException` handler that exits): each is written as it
   * stands, status `error`, its stages still running recorded as unfinished, rather than
   * lost with nothing counted.
   */
  function finishAtExit(code: unknown): void {
    if (openRecs.size === 0) return
    // After close(), or with no writer, they are dropped and counted as any record ending then.
    const kept = !closed && link !== undefined && !link.isDead
    const exited = new Error(`the process exited (code ${nameText(code, '?')}) while the record was running`)
    exited.name = 'ProcessExit'
    const n = openRecs.size
    for (const rec of [...openRecs]) {
      try {
        // A stage that has not returned is not tracked as running (only one that returned a
        // promise is): it is the one that has neither output nor error yet.
        if (kept && rec.shed === 0)
          for (const c of rec.captures) {
            if (c.output !== null || c.error !== null || rec.running?.has(c)) continue
            c.output = unfinishedMarker(`stage ${c.stage} was still running when the process exited`)
            const since = userClock === undefined ? c.startedAt - rec.wallAt + rec.elapsedAt : c.startedAt
            c.durationMs = Math.max(0, Math.round((elapsed() - since) * 1000) / 1000)
          }
      } catch (err) {
        report('E_INTERNAL', `recorder failed to finish a record at exit: ${thrownMessage(err)}`, err)
      }
      finishRecord(rec, 'error', exited)
    }
    if (kept)
      tell(
        'E_EXIT_OPEN',
        `the process exited with ${n} record(s) still running; they are recorded as they stood, status error`,
      )
  }

  /**
   * Waits until what has been captured is written, or `closeTimeoutMs` has passed (a lock
   * another connection holds on the file): the captures are then still queued and written
   * later, and `E_FLUSH_TIMEOUT` says so.
   */
  async function flush(): Promise<void> {
    if (link === undefined) return
    const timeoutMs = o.closeTimeoutMs
    try {
      // The flush keeps the process alive itself while it waits: the timer does not.
      if (!(await doneWithin(link.flush(), timeoutMs, false)))
        report(
          'E_FLUSH_TIMEOUT',
          `recorder flush gave up waiting after ${timeoutMs} ms with ${link.pendingCaptures} captures not yet written; they stay queued`,
        )
    } catch (err) {
      report('E_FLUSH', `recorder flush failed: ${thrownMessage(err)}`, err)
    }
  }

  const onBeforeExit = (): void => {
    if (link !== undefined && !link.isDead && link.pendingCaptures > 0) void flush()
  }
  const onExit = (code: unknown): void => {
    try {
      finishAtExit(code)
      if (link !== undefined && !link.flushSync(exitFlushMs)) {
        report('E_EXIT_FLUSH', 'recorder could not write everything before the process exited')
      }
    } catch {
      // The process is exiting; never turn that into a crash.
    }
  }
  const exitHooks: ExitHooks = { beforeExit: onBeforeExit, exit: onExit }
  addExitHooks(exitHooks)

  /**
   * Every call gets the one close: a host that closes from a signal handler and again in a
   * `finally` must not exit before the flush the first one started.
   */
  let closing: Promise<void> | undefined
  function close(): Promise<void> {
    closing ??= closeOnce()
    return closing
  }

  async function closeOnce(): Promise<void> {
    closed = true
    try {
      await closeLink()
    } finally {
      // Only once closed: a host that exits without waiting for close() (`void
      // recorder.close(); process.exit(0)`) still has what close() was writing flushed.
      removeExitHooks(exitHooks)
    }
  }

  async function closeLink(): Promise<void> {
    if (link === undefined) return
    const timeoutMs = o.closeTimeoutMs
    try {
      if (!(await doneWithin(link.close(), timeoutMs, true))) {
        // The writer is stopped, not left writing after close() has returned: what it had
        // not written is counted as dropped, and the bundle holds whole records only.
        const before = stats.droppedBy.closed
        const lost = await link.abandon(1_000)
        stats.dropped += lost
        stats.droppedBy.closed += lost
        // Counted here, and as the writer thread failed the batches it had not written.
        report(
          'E_CLOSE_TIMEOUT',
          `recorder close timed out after ${timeoutMs} ms; ${stats.droppedBy.closed - before} captures not yet written were dropped`,
        )
      }
    } catch (err) {
      report('E_CLOSE', `recorder close failed: ${thrownMessage(err)}`, err)
    }
  }

  return {
    stage,
    record,
    current() {
      const rec = openRecordOf(owner)
      return rec === undefined ? undefined : { recordId: rec.id, key: rec.key }
    },
    stats() {
      return { ...stats, droppedBy: { ...stats.droppedBy } }
    },
    flush,
    close,
  }
}
