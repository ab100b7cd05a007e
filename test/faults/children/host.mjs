// The host-safety scenario's host: runs the same deterministic workload twice, once through
// the recorder (with a fault injected) and once with the bare stage functions, and prints
// one JSON report comparing them. Nothing the recorder does may change what the host sees.
//
// argv: variant, bundle path, number of records, number of 50 MB payloads (variant huge).
// variants: plain, disk-full (run under `ulimit -f`), busy, vanished, cyclic, bigint, huge,
// deep, hostile, redact-throws.
import { rmSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { createRecorder } from '../../../dist/index.js'

const [variant, path, recordsArg, hugeArg] = process.argv.slice(2)
const records = Number(recordsArg)
const hugeCount = Number(hugeArg ?? 1)

// Anything that escapes the recorder shows up here (and would otherwise end the process).
const escaped = []
process.on('uncaughtException', (err) => escaped.push(`uncaughtException: ${describe(err)}`))
process.on('unhandledRejection', (err) => escaped.push(`unhandledRejection: ${describe(err)}`))
// Under `ulimit -f` a write past the limit raises SIGXFSZ, which would kill the process;
// a service that sets a file-size limit ignores it so the write fails with EFBIG instead.
process.on('SIGXFSZ', () => {})

function describe(v) {
  try {
    return v instanceof Error ? `${v.name}: ${v.message}` : String(v)
  } catch {
    return 'unprintable'
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ---- hostile values: each one is something a real host could pass or throw --------------

function revoked() {
  const p = Proxy.revocable({}, {})
  p.revoke()
  return p.proxy
}

function throwingProxy() {
  const trap = () => {
    throw new Error('proxy trap')
  }
  return new Proxy(
    {},
    { get: trap, ownKeys: trap, getPrototypeOf: trap, has: trap, getOwnPropertyDescriptor: trap },
  )
}

function hostileValue(i) {
  switch (i % 8) {
    case 0:
      return {
        i,
        get boom() {
          throw new Error('getter throws')
        },
      }
    case 1:
      return { i, inner: revoked() }
    case 2:
      return { i, inner: throwingProxy() }
    case 3:
      return {
        i,
        toJSON() {
          throw new Error('toJSON throws')
        },
      }
    case 4: {
      const m = new Map([['a', 1]])
      m[Symbol.iterator] = () => {
        throw new Error('iterator throws')
      }
      return { i, m }
    }
    case 5: {
      const arr = [1, 2]
      Object.defineProperty(arr, 1, {
        get() {
          throw new Error('index getter throws')
        },
        enumerable: true,
      })
      return { i, arr }
    }
    case 6:
      return revoked()
    default: {
      const o = Object.create(null)
      o.i = i
      o[Symbol('s')] = 1
      return o
    }
  }
}

/** Things thrown by a stage or an effect: the host must get back the very same thing. */
function hostileThrowable(i) {
  switch (i % 6) {
    case 0:
      return revoked()
    case 1: {
      const e = new Error('x')
      Object.defineProperty(e, 'message', {
        get() {
          throw new Error('message getter throws')
        },
      })
      return e
    }
    case 2:
      return {
        toString() {
          throw new Error('toString throws')
        },
      }
    case 3:
      return Object.freeze(new TypeError(`frozen ${i}`))
    case 4:
      return throwingProxy()
    default:
      return undefined
  }
}

/** An effect name that is not a string and cannot be turned into one. */
const hostileName = {
  toString() {
    throw new Error('name toString throws')
  },
}

function deepObject(depth, i) {
  let o = { leaf: i }
  for (let d = 0; d < depth; d++) o = { d, next: o }
  return o
}

// ---- the workload --------------------------------------------------------------------

const padBytes = variant === 'disk-full' ? 4000 : 200

function payloadFor(i) {
  switch (variant) {
    case 'cyclic': {
      const o = { i, list: [] }
      o.self = o
      o.list.push(o, new Map([['me', o]]))
      return o
    }
    case 'bigint':
      return { i, big: BigInt(i) ** 20n, nested: [1n, { x: -5n, m: new Map([[2n, 3n]]) }] }
    case 'huge':
      return i % 40 === 5 && i < 40 * hugeCount ? { i, blob: 'h'.repeat(50 * 1024 * 1024) } : { i }
    case 'deep':
      return i % 20 === 7 ? deepObject(10_000, i) : { i }
    case 'hostile':
      return hostileValue(i)
    case 'redact-throws':
      return { i, card: `4111-${i}`, customer: { phone: `555-${i}` } }
    default:
      return { i, pad: 'x'.repeat(padBytes + (i % 5)) }
  }
}

function thrownFor(i) {
  return variant === 'hostile' ? hostileThrowable(i) : new Error(`compute failed for ${i}`)
}

function makeStages(log, seen) {
  const check = (ok, what) => {
    if (!ok) log.push(`MISMATCH ${what}`)
  }
  return {
    ingest(input, ctx) {
      log.push('ingest')
      const result = { echo: input, n: 1 }
      const got = ctx.effect('kv.get', input, () => result)
      check(got === result, 'kv.get result is not the object the effect returned')
      const failure = thrownFor(ctx.n)
      try {
        ctx.effect(variant === 'hostile' ? hostileName : 'kv.fail', input, () => {
          throw failure
        })
        log.push('MISMATCH a throwing effect returned')
      } catch (err) {
        check(err === failure, 'a throwing effect threw something else')
      }
      return { input, got }
    },
    async compute(value, ctx) {
      log.push('compute')
      const remote = { remote: true }
      const got = await ctx.effect('remote.get', value.input, async () => remote)
      check(got === remote, 'an async effect resolved to another value')
      const failure = thrownFor(ctx.n + 1)
      try {
        await ctx.effect('remote.fail', [value], async () => {
          throw failure
        })
        log.push('MISMATCH a rejecting effect resolved')
      } catch (err) {
        check(err === failure, 'a rejecting effect rejected with something else')
      }
      ctx.now()
      ctx.random()
      if (ctx.n % 7 === 3) {
        const thrown = thrownFor(ctx.n + 2)
        seen.thrown.set(ctx.n, thrown)
        throw thrown
      }
      return { ...value, remote: got }
    },
    store(value, ctx) {
      log.push('store')
      const out = { stored: value, last: true }
      seen.returned.set(ctx.n, out)
      return out
    },
  }
}

/** One record through the three stages; the log says what the host saw, in order. */
async function runRecord(i, call, log, seen) {
  const check = (ok, what) => {
    if (!ok) log.push(`MISMATCH ${what}`)
  }
  const input = payloadFor(i)
  try {
    const a = await call('ingest', input)
    check(a.input === input, 'ingest output does not hold the input it was given')
    const b = await call('compute', a)
    const out = await call('store', b)
    check(out === seen.returned.get(i), 'the host got another value than store returned')
    log.push('ok')
  } catch (err) {
    check(err === seen.thrown.get(i), 'the host got another exception than the stage threw')
    log.push('threw')
  }
}

// ---- recorded run, with the fault --------------------------------------------------------

const errorCodes = new Set()
const recorder = createRecorder({
  path,
  pipeline: `host-${variant}`,
  flushIntervalMs: 20,
  closeTimeoutMs: 15_000,
  onError: (e) => errorCodes.add(e.code),
  ...(variant === 'redact-throws'
    ? {
        redact: [
          (p) => {
            if (p.at(-1) === 'card') throw new Error('rule broke')
            if (p.at(-1) === 'phone') throw revoked()
            return false
          },
        ],
      }
    : {}),
})

const recordedLogs = []
let attempts = 0
{
  const log = []
  const seen = { thrown: new Map(), returned: new Map() }
  const stages = makeStages(log, seen)
  let current = 0
  const wrapped = {}
  for (const [name, fn] of Object.entries(stages)) {
    wrapped[name] = recorder.stage(name, (input, ctx) => {
      attempts++
      return fn(input, Object.assign(Object.create(ctx), { n: current }))
    })
  }
  let faultDone = !['busy', 'vanished'].includes(variant)
  let lock
  for (let i = 0; i < records || !faultDone; i++) {
    current = i
    log.length = 0
    const key = variant === 'hostile' && i % 9 === 4 ? { toString: () => `obj-key:${i}` } : `k:${i}`
    await recorder
      .record(key, () => runRecord(i, (name, input) => wrapped[name](input), log, seen))
      .catch((err) => log.push(`MISMATCH record() rejected with ${describe(err)}`))
    recordedLogs.push(log.join(' '))
    if (i === Math.floor(records / 4) && !faultDone) {
      await recorder.flush()
      if (variant === 'busy') {
        // Another writer takes the write lock and holds it well past the busy timeout.
        lock = new Database(path, { timeout: 5000 })
        lock.exec('BEGIN EXCLUSIVE')
        setTimeout(() => {
          lock.exec('COMMIT')
          lock.close()
          faultDone = true
        }, 3000)
      } else if (variant === 'vanished') {
        rmSync(dirname(path), { recursive: true, force: true })
        setTimeout(() => {
          faultDone = true
        }, 1000)
      }
    }
    await sleep(i % 4 === 0 ? 1 : 0)
  }
}
const recordedCount = recordedLogs.length
await recorder.close()
const stats = recorder.stats()

// ---- bare run: the same stage functions, no retrace ------------------------------------

const bareLogs = []
{
  const log = []
  const seen = { thrown: new Map(), returned: new Map() }
  const stages = makeStages(log, seen)
  let current = 0
  const call = async (name, input) =>
    stages[name](input, {
      key: `k:${current}`,
      recordId: '',
      stage: name,
      attempt: 1,
      n: current,
      now: Date.now,
      random: Math.random,
      effect: (_name, _args, fn) => fn(),
    })
  for (let i = 0; i < recordedCount; i++) {
    current = i
    log.length = 0
    await runRecord(i, call, log, seen)
    bareLogs.push(log.join(' '))
  }
}

const differences = []
for (let i = 0; i < recordedCount; i++) {
  if (recordedLogs[i] !== bareLogs[i]) differences.push({ i, recorded: recordedLogs[i], bare: bareLogs[i] })
}

process.stdout.write(
  `${JSON.stringify({
    variant,
    records: recordedCount,
    attempts,
    threw: bareLogs.filter((l) => l.endsWith('threw')).length,
    differences: differences.slice(0, 5),
    differenceCount: differences.length,
    escaped,
    stats,
    errorCodes: [...errorCodes].sort(),
  })}\n`,
)
