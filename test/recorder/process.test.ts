/**
 * The recorder inside a real child process: killed with SIGKILL mid-stream, exiting with
 * process.exit() without close(), and ending because its event loop drained. The child
 * imports the built SDK (dist/), as a production service would.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { integrityCheck, withDb } from '../helpers/bundle-db.js'
import { tempDir } from '../helpers/tmp.js'

const sdkUrl = new URL('../../dist/index.js', import.meta.url).href

beforeAll(() => {
  if (!existsSync(fileURLToPath(sdkUrl))) throw new Error('dist/ is missing: run `npm run build` first')
})

const STAGES = ['parse', 'compute', 'store']

/** Three stages per record; compute records two effects (now and kv.get). */
const pipeline = `
import { createRecorder } from ${JSON.stringify(sdkUrl)}
export function makePipeline(options) {
  const recorder = createRecorder({
    pipeline: 'child',
    onError: (e) => process.stderr.write('recorder: ' + e.code + ' ' + e.message + '\\n'),
    ...options,
  })
  const parse = recorder.stage('parse', (n) => ({ n, pad: 'x'.repeat(300) }))
  const compute = recorder.stage('compute', async (o, ctx) => ({
    ...o,
    at: ctx.now(),
    kv: await ctx.effect('kv.get', { n: o.n }, async () => o.n * 2),
  }))
  const store = recorder.stage('store', (o) => ({ stored: o.n, kv: o.kv }))
  const run = (i) => recorder.record('k:' + i, async () => store(await compute(await parse(i))))
  return { recorder, run }
}
`

interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

function collect(child: ChildProcess): { exited: Promise<Exit>; stdout: () => string } {
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString()
  })
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  const exited = new Promise<Exit>((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return { exited, stdout: () => stdout }
}

async function runScript(dir: string, name: string, body: string, args: string[], timeoutMs = 20_000) {
  writeFileSync(join(dir, 'pipeline.mjs'), pipeline)
  const script = join(dir, name)
  writeFileSync(script, body)
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  try {
    const { exited } = collect(child)
    return await exited
  } finally {
    clearTimeout(timer)
  }
}

interface Landed {
  records: number
  captures: number
  /** Records whose captures are not exactly parse, compute, store with their effects. */
  partial: string[]
  /** Captures whose record row is missing. */
  orphans: number
}

function landed(path: string): Landed {
  return withDb(path, (db) => {
    const records = db.prepare('SELECT id FROM records').pluck().all() as string[]
    const partial: string[] = []
    const captureOf = db.prepare(
      'SELECT id, seq, stage, attempt FROM captures WHERE record_id = ? ORDER BY seq',
    )
    const effectsOf = db.prepare('SELECT kind, name FROM effects WHERE capture_id = ? ORDER BY seq')
    for (const id of records) {
      const caps = captureOf.all(id) as { id: number; seq: number; stage: string; attempt: number }[]
      const whole =
        caps.length === 3 &&
        caps.every((c, i) => c.seq === i && c.stage === STAGES[i] && c.attempt === 1) &&
        (effectsOf.all(caps[1]!.id) as { kind: string; name: string }[]).map((e) => e.name).join() ===
          'now,kv.get'
      if (!whole) partial.push(id)
    }
    const orphans = db
      .prepare('SELECT count(*) FROM captures WHERE record_id NOT IN (SELECT id FROM records)')
      .pluck()
      .get() as number
    const captures = db.prepare('SELECT count(*) FROM captures').pluck().get() as number
    return { records: records.length, captures, partial, orphans }
  })
}

describe('a child process killed with SIGKILL mid-stream', () => {
  it('leaves a sound bundle holding only whole records, every time', { timeout: 90_000 }, async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'pipeline.mjs'), pipeline)
    const script = join(dir, 'stream.mjs')
    writeFileSync(
      script,
      `
import { makePipeline } from './pipeline.mjs'
const { recorder, run } = makePipeline({ path: process.argv[2], flushIntervalMs: 5 })
let told = false
setInterval(() => {
  if (!told && recorder.stats().written >= 30) {
    told = true
    process.stdout.write('written\\n')
  }
}, 2)
for (let i = 0; ; i++) {
  await run(i)
  // Let timers (the flush and the report above) run between records.
  if (i % 5 === 0) await new Promise((resolve) => setImmediate(resolve))
}
`,
    )

    const kills = 5
    for (let round = 0; round < kills; round++) {
      const path = join(dir, `crash-${round}.sqlite`)
      const child = spawn(process.execPath, [script, path], { stdio: ['ignore', 'pipe', 'pipe'] })
      const { exited, stdout } = collect(child)
      const deadline = Date.now() + 15_000
      while (!stdout().includes('written') && Date.now() < deadline && child.exitCode === null) await sleep(5)
      expect(stdout(), 'the child reported written records before the kill').toContain('written')
      // Kill at a different point of the stream each round.
      await sleep(15 + round * 37)
      child.kill('SIGKILL')
      const exit = await exited
      expect(exit.signal).toBe('SIGKILL')

      expect(integrityCheck(path)).toBe('ok')
      const got = landed(path)
      expect(got.records).toBeGreaterThan(0)
      expect(got.partial).toEqual([])
      expect(got.orphans).toBe(0)
      expect(got.captures).toBe(got.records * 3)
    }
  })
})

describe('normal process exit flushes', () => {
  const records = 60

  it('process.exit(0) without close() still writes every record', async () => {
    const dir = tempDir()
    const path = join(dir, 'exit.sqlite')
    // The flush timer is far away and the event loop never turns before exit: only the
    // exit hook can get these records into the file.
    const exit = await runScript(
      dir,
      'exit.mjs',
      `
import { makePipeline } from './pipeline.mjs'
const { recorder, run } = makePipeline({ path: process.argv[2], flushIntervalMs: 60000 })
for (let i = 0; i < ${records}; i++) await run(i)
process.stdout.write(JSON.stringify(recorder.stats()))
process.exit(0)
`,
      [path],
    )
    expect(exit.stderr).toBe('')
    expect(exit.code).toBe(0)
    expect(JSON.parse(exit.stdout)).toMatchObject({ captured: records * 3, dropped: 0 })
    expect(integrityCheck(path)).toBe('ok')
    expect(landed(path)).toEqual({ records, captures: records * 3, partial: [], orphans: 0 })
  })

  it('a process whose event loop drains (no close, no exit call) writes every record and ends', async () => {
    const dir = tempDir()
    const path = join(dir, 'drain.sqlite')
    const exit = await runScript(
      dir,
      'drain.mjs',
      `
import { makePipeline } from './pipeline.mjs'
const { run } = makePipeline({ path: process.argv[2], flushIntervalMs: 60000 })
for (let i = 0; i < ${records}; i++) await run(i)
`,
      [path],
    )
    expect(exit.signal).toBeNull()
    expect(exit.stderr).toBe('')
    expect(exit.code).toBe(0)
    expect(integrityCheck(path)).toBe('ok')
    expect(landed(path)).toEqual({ records, captures: records * 3, partial: [], orphans: 0 })
  })

  it('a process with a dozen recorders open exits without a listener-leak warning, each bundle flushed', async () => {
    const dir = tempDir()
    const paths = Array.from({ length: 12 }, (_, i) => join(dir, `tenant-${i}.sqlite`))
    const exit = await runScript(
      dir,
      'many.mjs',
      `
import { makePipeline } from './pipeline.mjs'
const pipelines = process.argv.slice(2).map((path) => makePipeline({ path, flushIntervalMs: 60000 }))
// One closed and reopened at its path: its hooks go, and the process keeps the others'.
await pipelines[0].recorder.close()
pipelines[0] = makePipeline({ path: process.argv[2], flushIntervalMs: 60000 })
for (const { run } of pipelines) for (let i = 0; i < 3; i++) await run(i)
process.exit(0)
`,
      paths,
    )
    expect(exit.stderr).toBe('')
    expect(exit.code).toBe(0)
    for (const path of paths) {
      expect(integrityCheck(path)).toBe('ok')
      expect(landed(path)).toEqual({ records: 3, captures: 9, partial: [], orphans: 0 })
    }
  })

  it('close() in a child leaves a single file and lets the process end', async () => {
    const dir = tempDir()
    const path = join(dir, 'closed.sqlite')
    const exit = await runScript(
      dir,
      'close.mjs',
      `
import { makePipeline } from './pipeline.mjs'
const { recorder, run } = makePipeline({ path: process.argv[2] })
for (let i = 0; i < ${records}; i++) await run(i)
await recorder.close()
`,
      [path],
    )
    expect(exit.code).toBe(0)
    expect(exit.stderr).toBe('')
    expect(existsSync(`${path}-wal`)).toBe(false)
    expect(existsSync(`${path}-shm`)).toBe(false)
    expect(landed(path)).toEqual({ records, captures: records * 3, partial: [], orphans: 0 })
  })
})

describe('host callbacks that are async and reject', () => {
  it('never end the host with an unhandled rejection: onError, a key function, an ids source, a redaction rule', async () => {
    const dir = tempDir()
    const exit = await runScript(
      dir,
      'async-onerror.mjs',
      `
import { makePipeline } from './pipeline.mjs'
import { createRecorder } from ${JSON.stringify(sdkUrl)}
const { recorder } = makePipeline({
  path: process.argv[2],
  // The error tracker is down.
  onError: async (e) => {
    throw new Error('tracker unreachable: ' + e.code)
  },
})
const echo = recorder.stage('echo', (x) => x)
const cyclic = {}
cyclic.self = cyclic
await recorder.record('k', () => echo(cyclic))
const keyed = recorder.stage('keyed', (x) => x, { key: async () => { throw new Error('no key') } })
await keyed(1)
const fail = async () => { throw new Error('async callback failed') }
const other = createRecorder({ path: process.argv[3], ids: fail, redact: [fail], onError: fail })
const echoed = await other.record('k', () => other.stage('echo', (x) => x)({ card: '4111' }))
await new Promise((resolve) => setTimeout(resolve, 50))
await recorder.close()
await other.close()
process.stdout.write(JSON.stringify([recorder.stats(), other.stats(), echoed]))
`,
      [join(dir, 'async-onerror.sqlite'), join(dir, 'async-rules.sqlite')],
    )
    expect(exit.stderr).toBe('')
    expect(exit.code).toBe(0)
    const [first, second, echoed] = JSON.parse(exit.stdout)
    // The cyclic input and output, and the key function's promise.
    expect(first).toMatchObject({ written: 1, errors: 3, unrecorded: 1 })
    expect(second).toMatchObject({ written: 1 })
    expect(echoed).toEqual({ card: '4111' })
    // An async redaction rule cannot answer: the payload is recorded redacted, never in clear.
    const stored = withDb(join(dir, 'async-rules.sqlite'), (db) =>
      db.prepare('SELECT input, output FROM captures').get(),
    ) as { input: string; output: string }
    expect(JSON.parse(stored.input)).toMatchObject({ $t: 'unrecorded', reason: 'redaction-failed' })
    expect(stored.output).not.toContain('4111')
  })
})

describe('a relative bundle path', () => {
  it('is taken from the working directory the recorder was created in, whatever the process does later', async () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'elsewhere'))
    const exit = await runScript(
      dir,
      'chdir.mjs',
      `
import { makePipeline } from './pipeline.mjs'
process.chdir(process.argv[2])
const { recorder, run } = makePipeline({ path: 'bundles-{pid}.sqlite' })
// A daemon changes directory once it has set up; the writer opens the file after that.
process.chdir('elsewhere')
for (let i = 0; i < 3; i++) await run(i)
await recorder.close()
process.stdout.write(String(process.pid))
`,
      [dir],
    )
    expect(exit.stderr).toBe('')
    expect(exit.code).toBe(0)
    expect(readdirSync(join(dir, 'elsewhere'))).toEqual([])
    expect(landed(join(dir, `bundles-${exit.stdout}.sqlite`))).toEqual({
      records: 3,
      captures: 9,
      partial: [],
      orphans: 0,
    })
  })
})

describe('a process that exits without waiting for close()', () => {
  it('still has every record written: close() keeps the exit flush until it is done', async () => {
    const dir = tempDir()
    const path = join(dir, 'close-exit.sqlite')
    const exit = await runScript(
      dir,
      'close-exit.mjs',
      `
import { makePipeline } from './pipeline.mjs'
const { recorder, run } = makePipeline({ path: process.argv[2], flushIntervalMs: 60000 })
for (let i = 0; i < 400; i++) await run(i)
void recorder.close()
process.exit(0)
`,
      [path],
    )
    expect(exit.stderr).toBe('')
    expect(exit.code).toBe(0)
    expect(integrityCheck(path)).toBe('ok')
    expect(landed(path)).toEqual({ records: 400, captures: 1200, partial: [], orphans: 0 })
  })
})

describe('a process that exits while records are running', () => {
  const stagesOf = (path: string, key: string) =>
    withDb(path, (db) => {
      const rec = db.prepare('SELECT id, status, error FROM records WHERE key = ?').get(key) as
        | { id: string; status: string; error: string }
        | undefined
      const caps = db
        .prepare('SELECT stage, output, error, duration_ms FROM captures WHERE record_id = ? ORDER BY seq')
        .all(rec?.id) as { stage: string; output: string | null; error: string | null; duration_ms: number }[]
      return { rec, caps }
    })

  it('writes the record whose stage called process.exit(), as it stood, and every record before it', async () => {
    const dir = tempDir()
    const path = join(dir, 'exit-in-stage.sqlite')
    const exit = await runScript(
      dir,
      'exit-in-stage.mjs',
      `
import { createRecorder } from ${JSON.stringify(sdkUrl)}
const recorder = createRecorder({ path: process.argv[2], flushIntervalMs: 60000 })
const parse = recorder.stage('parse', (n) => ({ n }))
const store = recorder.stage('store', (o, ctx) => {
  ctx.now()
  if (o.n === 3) process.exit(7)
  return o
})
for (let i = 0; i < 5; i++) await recorder.record('k:' + i, async () => store(await parse(i)))
`,
      [path],
    )
    expect(exit.code).toBe(7)
    expect(exit.stderr).toBe('')
    expect(integrityCheck(path)).toBe('ok')
    const { rec, caps } = stagesOf(path, 'k:3')
    expect(rec?.status).toBe('error')
    expect(JSON.parse(rec!.error)).toMatchObject({
      name: 'ProcessExit',
      message: expect.stringContaining('code 7'),
    })
    expect(caps.map((c) => c.stage)).toEqual(['parse', 'store'])
    expect(caps[0]!.output).toBe('{"n":3}')
    expect(JSON.parse(caps[1]!.output!)).toMatchObject({ $t: 'unrecorded', reason: 'unfinished' })
    expect(caps[1]!.duration_ms).toBeGreaterThanOrEqual(0)
    expect(stagesOf(path, 'k:2').rec?.status).toBe('ok')
    expect(stagesOf(path, 'k:4').rec).toBeUndefined()
  })

  it('writes the records an uncaughtException handler that exits leaves running', async () => {
    const dir = tempDir()
    const path = join(dir, 'uncaught.sqlite')
    const exit = await runScript(
      dir,
      'uncaught.mjs',
      `
import { createRecorder } from ${JSON.stringify(sdkUrl)}
const recorder = createRecorder({
  path: process.argv[2],
  flushIntervalMs: 60000,
  onError: (e) => process.stderr.write(e.code + '\\n'),
})
process.on('uncaughtException', () => process.exit(1))
const fetch = recorder.stage('fetch', (n, ctx) =>
  ctx.effect('http.get', { n }, () => new Promise((resolve) => {
    // A callback of the client library throws outside any promise chain.
    setTimeout(() => { throw new Error('socket hang up') }, 5)
    setTimeout(resolve, 1000)
  })),
)
await Promise.all([1, 2].map((n) => recorder.record('k:' + n, () => fetch(n))))
`,
      [path],
    )
    expect(exit.code).toBe(1)
    expect(exit.stderr.split('\n').filter(Boolean).sort()).toEqual(['E_EXIT_OPEN', 'E_STAGE_UNFINISHED'])
    for (const key of ['k:1', 'k:2']) {
      const { rec, caps } = stagesOf(path, key)
      expect(rec?.status).toBe('error')
      expect(caps.map((c) => c.stage)).toEqual(['fetch'])
      expect(JSON.parse(caps[0]!.output!)).toMatchObject({ reason: 'unfinished' })
    }
    const effects = withDb(path, (db) => db.prepare('SELECT name, result FROM effects').all()) as {
      name: string
      result: string
    }[]
    expect(effects.map((e) => [e.name, JSON.parse(e.result).reason])).toEqual([
      ['http.get', 'unfinished'],
      ['http.get', 'unfinished'],
    ])
  })
})
