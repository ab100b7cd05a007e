/**
 * The production recorder: wraps stage functions, captures what each stage received,
 * produced and observed, and streams whole records to a bundle.
 *
 * Rule one: the recorder never throws into, blocks, or crashes the host. Everything it
 * does around a stage call is guarded; when it cannot keep up it drops and counts.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { hostname } from 'node:os'
import { performance } from 'node:perf_hooks'
import type { CaptureWrite, EffectRow, RecordUnit } from '../bundle/types.js'
import {
  type EncodeLimits,
  encode,
  PayloadError,
  RedactionFailed,
  Redactor,
  type RedactRule,
  thrownMessage,
  unrecordedMarker,
} from '../codec/index.js'
import { isThenable } from '../thenable.js'
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
  /** Continue a record begun in another process (propagate `current().recordId`). */
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
  /** Why captures were dropped. */
  droppedBy: { queueFull: number; writeFailed: number; closed: number }
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
  /** Bundle file. `{pid}` and `{host}` are replaced, for one file per process. */
  path: string
  pipeline?: string
  /** Build id of this deployment (a git sha, an image tag). */
  build?: string
  /** Fraction of record keys to record, 0..1 (default 1). */
  sample?: number
  /** Redaction rules: paths (`$.customer.phone`, `$..password`) or functions. */
  redact?: RedactRule[]
  /** Secret for equality-preserving redaction tokens. */
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
  /** Largest payload recorded; larger ones become a marker with their size (default 1 MiB). */
  maxPayloadBytes?: number
  /** Longest `close()` waits for the last writes (default 5,000 ms). */
  closeTimeoutMs?: number
  /** Told of absorbed problems, at most once per code every 10 s. */
  onError?: (err: RecorderError) => void
  /** Time source (default Date.now), for deterministic recordings. */
  clock?: () => number
  /** Random source (default Math.random), for deterministic recordings. */
  random?: () => number
  /** Record id source (default: time-ordered random ids). */
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
  seq: number
  attempts: Map<string, number>
  captures: CaptureWrite[]
  /**
   * Captures of this record shed because the writer's queue was full; once above 0 the
   * record is dropped whole at its end, `captures` is empty and nothing more is encoded.
   */
  shed: number
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
}

/**
 * One storage for every recorder of the process. Each AsyncLocalStorage that has been
 * entered stays enabled for good (close() cannot turn it off without hiding records still
 * in flight), and on Node 20 each enabled one makes every promise of the host dearer.
 */
const openRecords = new AsyncLocalStorage<OpenRecord>()

/** The open record of `owner` in the current async context. */
function openRecordOf(owner: object): ActiveRecord | undefined {
  for (let o = openRecords.getStore(); o !== undefined; o = o.outer) if (o.owner === owner) return o.rec
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
  let message: string
  try {
    message = String(err)
  } catch {
    message = 'unprintable error'
  }
  return JSON.stringify({ name: 'NonError', message: message.slice(0, 4096) })
}

function expandPath(pattern: string, host: string, pid: number): string {
  return pattern.replaceAll('{pid}', String(pid)).replaceAll('{host}', host.replace(/[^\w.-]/g, '_'))
}

/** Creates a recorder writing to `options.path`. Never throws for I/O problems. */
export function createRecorder(options: RecorderOptions): Recorder {
  const clock = options.clock ?? Date.now
  // With an injected clock durations come from it too, so a recording can be reproduced.
  const elapsed = options.clock ?? (() => performance.now())
  const stacks = options.recordStacks === true
  const random = options.random ?? Math.random
  const host = options.origin?.host ?? hostname()
  const pid = options.origin?.pid ?? process.pid
  const build = options.build ?? null
  const sampled = keySampler(options.sample ?? 1)
  const limits: EncodeLimits = { maxBytes: options.maxPayloadBytes ?? 1024 * 1024, maxDepth: 512 }
  const redactor = new Redactor({
    rules: options.redact ?? [],
    defaults: options.redactDefaults !== false,
    ...(options.redactKey !== undefined ? { key: options.redactKey } : {}),
  })
  const ids = options.ids ?? (() => newRecordId(clock()))
  /** Tags this recorder's records in the shared storage. */
  const owner = {}
  const stats: RecorderStats = {
    captured: 0,
    sampledOut: 0,
    dropped: 0,
    written: 0,
    errors: 0,
    droppedBy: { queueFull: 0, writeFailed: 0, closed: 0 },
  }
  const lastReported = new Map<string, number>()
  let closed = false

  function report(code: string, message: string, cause?: unknown): void {
    stats.errors++
    const onError = options.onError
    if (onError === undefined) return
    const now = Date.now()
    const last = lastReported.get(code)
    if (last !== undefined && now - last < errorLimitMs) return
    lastReported.set(code, now)
    try {
      onError(new RecorderError(code, message, cause === undefined ? undefined : { cause }))
    } catch {
      // The host's error handler failed; nothing more to do without risking the host.
    }
  }

  let link: WriterLink | undefined
  try {
    link = new WriterLink(
      {
        path: expandPath(options.path, host, pid),
        options: {
          manifest: {
            pipeline: options.pipeline ?? null,
            recorderVersion,
            created: new Date(clock()).toISOString(),
            builds: build === null ? [] : [build],
            redaction: { rules: redactor.describe(), equalityPreserving: redactor.equalityPreserving },
          },
        },
      },
      {
        captures: Math.max(1, options.maxQueue ?? 10_000),
        bytes: Math.max(1, options.maxQueueBytes ?? 16 * 1024 * 1024),
      },
      256,
      Math.max(1, options.flushIntervalMs ?? 200),
      {
        written: (n) => {
          stats.written += n
        },
        failed: (n, code, message) => {
          stats.dropped += n
          stats.droppedBy.writeFailed += n
          report(code, `recorder could not write ${n} captures: ${message}`)
        },
        openFailed: (code, message) => report(code, `recorder cannot open its bundle: ${message}`),
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

  function finishRecord(rec: ActiveRecord, status: 'ok' | 'error', error: unknown): void {
    if (!rec.sampled) return
    try {
      // A shed record is not built at all: it is dropped whatever happens next.
      const unit = rec.shed > 0 ? undefined : unitOf(rec, status, error)
      const n = rec.captures.length + rec.shed
      if (closed) {
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

  function record<T>(keyArg: string, fn: () => T | Promise<T>, opts?: RecordOptions): Promise<T> {
    const key = nameText(keyArg, 'unprintable key')
    const current = openRecordOf(owner)
    if (
      current !== undefined &&
      current.key === key &&
      (opts?.recordId === undefined || opts.recordId === current.id)
    ) {
      try {
        return Promise.resolve(fn())
      } catch (err) {
        return Promise.reject(err)
      }
    }
    let rec: ActiveRecord
    try {
      const keep = sampled(key)
      rec = {
        id: opts?.recordId ?? (keep ? ids() : ''),
        key,
        sampled: keep,
        startedAt: keep ? clock() : 0,
        seq: 0,
        attempts: new Map(),
        captures: [],
        shed: 0,
      }
    } catch (err) {
      report('E_INTERNAL', `recorder failed to start a record: ${thrownMessage(err)}`, err)
      rec = { id: '', key, sampled: false, startedAt: 0, seq: 0, attempts: new Map(), captures: [], shed: 0 }
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
      return Promise.resolve(result).then(
        (value) => {
          finishRecord(rec, 'ok', undefined)
          return value
        },
        (err: unknown) => {
          finishRecord(rec, 'error', err)
          throw err
        },
      )
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
      effect: (_name, _args, fn) => fn(),
    }
  }

  function recordedContext(rec: ActiveRecord, capture: CaptureWrite): StageContext {
    const push = (row: EffectRow): void => {
      capture.effects.push(row)
    }
    return {
      key: rec.key,
      recordId: rec.id,
      stage: capture.stage,
      attempt: capture.attempt,
      now() {
        const v = clock()
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
        // The record was shed while this stage ran: it will not be written.
        if (rec.shed > 0) return fn()
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
          out = fn()
        } catch (err) {
          row.error = describeError(err, stacks)
          throw err
        }
        if (isThenable(out, false)) {
          // Replay hands back a promise only where production got one.
          row.kind = 'async-effect'
          return Promise.resolve(out).then(
            (v) => {
              if (rec.shed === 0) row.result = safeEncode(v)
              return v
            },
            (err: unknown) => {
              row.error = describeError(err, stacks)
              throw err
            },
          ) as T
        }
        if (rec.shed === 0) row.result = safeEncode(out)
        return out
      },
    }
  }

  function callRecorded<I, O>(rec: ActiveRecord, name: string, fn: StageFn<I, O>, input: I): Promise<O> {
    let capture: CaptureWrite | undefined
    let t0 = 0
    let attempt = 1
    try {
      attempt = (rec.attempts.get(name) ?? 0) + 1
      rec.attempts.set(name, attempt)
      // A record that cannot fit the queue now is dropped whole before any more of it is
      // encoded: under overload the host pays for its stage calls, not for recording them.
      let shedding = rec.shed > 0
      if (!shedding && link !== undefined && !link.hasRoom(rec.captures.length + 1)) {
        rec.shed = rec.captures.length
        rec.captures = []
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
          startedAt: clock(),
          durationMs: 0,
          effects: [],
        }
        rec.captures.push(capture)
        t0 = elapsed()
      }
    } catch (err) {
      report('E_INTERNAL', `recorder failed to start a capture: ${thrownMessage(err)}`, err)
    }
    const done = (ok: boolean, value: unknown): void => {
      if (capture === undefined || rec.shed > 0) return
      try {
        capture.durationMs = Math.round((elapsed() - t0) * 1000) / 1000
        if (ok) capture.output = safeEncode(value)
        else capture.error = describeError(value, stacks)
      } catch (err) {
        report('E_INTERNAL', `recorder failed to finish a capture: ${thrownMessage(err)}`, err)
      }
    }
    const ctx = capture === undefined ? passthroughContext(rec, name, attempt) : recordedContext(rec, capture)
    let result: O | Promise<O>
    try {
      result = fn(input, ctx)
    } catch (err) {
      done(false, err)
      return Promise.reject(err)
    }
    if (!isThenable(result, false)) {
      done(true, result)
      return Promise.resolve(result)
    }
    return Promise.resolve(result).then(
      (value) => {
        done(true, value)
        return value
      },
      (err: unknown) => {
        done(false, err)
        throw err
      },
    )
  }

  function stage<I, O>(
    nameArg: string,
    fn: StageFn<I, O>,
    stageOptions?: StageOptions<I>,
  ): (input: I) => Promise<O> {
    const name = nameText(nameArg, 'unprintable stage name')
    const keyOf = stageOptions?.key
    const wrapped = (input: I): Promise<O> => {
      const rec = openRecordOf(owner)
      if (rec === undefined) {
        if (keyOf !== undefined) {
          let key: string | undefined
          try {
            key = String(keyOf(input))
          } catch (err) {
            report('E_KEY', `stage ${name}: the key function threw: ${thrownMessage(err)}`, err)
          }
          if (key !== undefined) return record(key, () => wrapped(input))
        }
        try {
          return Promise.resolve(fn(input, passthroughContext(undefined, name)))
        } catch (err) {
          return Promise.reject(err)
        }
      }
      if (!rec.sampled) {
        stats.sampledOut++
        try {
          return Promise.resolve(fn(input, passthroughContext(rec, name)))
        } catch (err) {
          return Promise.reject(err)
        }
      }
      return callRecorded(rec, name, fn, input)
    }
    return wrapped
  }

  async function flush(): Promise<void> {
    try {
      await link?.flush()
    } catch (err) {
      report('E_FLUSH', `recorder flush failed: ${thrownMessage(err)}`, err)
    }
  }

  const onBeforeExit = (): void => {
    if (link !== undefined && !link.isDead && link.pendingCaptures > 0) void flush()
  }
  const onExit = (): void => {
    try {
      if (link !== undefined && !link.flushSync(exitFlushMs)) {
        report('E_EXIT_FLUSH', 'recorder could not write everything before the process exited')
      }
    } catch {
      // The process is exiting; never turn that into a crash.
    }
  }
  process.on('beforeExit', onBeforeExit)
  process.on('exit', onExit)

  async function close(): Promise<void> {
    if (closed) return
    closed = true
    process.off('beforeExit', onBeforeExit)
    process.off('exit', onExit)
    if (link === undefined) return
    const timeoutMs = options.closeTimeoutMs ?? 5_000
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs)
    })
    try {
      const outcome = await Promise.race([link.close().then(() => 'closed' as const), timedOut])
      if (outcome === 'timeout') report('E_CLOSE_TIMEOUT', `recorder close timed out after ${timeoutMs} ms`)
    } catch (err) {
      report('E_CLOSE', `recorder close failed: ${thrownMessage(err)}`, err)
    } finally {
      clearTimeout(timer)
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
