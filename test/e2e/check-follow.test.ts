/**
 * `retrace verify --follow` as a user runs it beside a live recorder: the recorder (in
 * this test process) keeps its bundle open and writing; the CLI (a child process) reports
 * violations in records written after it started, without holding the writer up.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process'
import { readdirSync, renameSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import Database from 'better-sqlite3'
import { describe, expect, it, onTestFinished } from 'vitest'
import { APPLICATION_ID, FORMAT_VERSION } from '../../src/bundle/schema.js'
import type { Recorder } from '../../src/index.js'
import { binPath, repoRoot } from '../helpers/cli.js'
import { testRecorder } from '../helpers/recorder.js'
import { tempDir, tempPath } from '../helpers/tmp.js'

interface Follower {
  child: ChildProcessByStdio<Writable, Readable, Readable>
  stdout: () => string
  stderr: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Starts `bin/run.js ...args` and keeps it running; killed when the test ends if still alive. */
function start(args: readonly string[]): Follower {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v
  delete env.DEBUG
  delete env.FORCE_COLOR
  env.NO_COLOR = '1'
  const child = spawn(process.execPath, [binPath, ...args], {
    cwd: repoRoot,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString('utf8')
  })
  child.stderr.on('data', (b: Buffer) => {
    err += b.toString('utf8')
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }))
  })
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return { child, stdout: () => out, stderr: () => err, exited }
}

/** Waits until `ok()` holds, at most `ms`; the failure says what it was waiting for. */
async function waitFor(what: string, ok: () => boolean, f: Follower, ms = 20_000): Promise<void> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) {
      throw new Error(`gave up waiting for ${what}\nstdout:\n${f.stdout()}\nstderr:\n${f.stderr()}`)
    }
    await sleep(50)
  }
}

/** Records one order through compute -> store; `available` is what compute makes of it. */
async function order(recorder: Recorder, key: string, available: number): Promise<string> {
  const compute = recorder.stage('compute', (sku: string) => ({ sku, available }))
  const store = recorder.stage('store', (c: { sku: string; available: number }) => ({ ...c, stored: true }))
  let id = ''
  await recorder.record(key, async () => {
    id = recorder.current()?.recordId ?? ''
    await store(await compute(key))
  })
  return id
}

function config(dir: string): string {
  const path = join(dir, 'follow.config.json')
  writeFileSync(
    path,
    JSON.stringify({
      stages: {},
      invariants: [{ name: 'never-negative', check: 'store.output.available >= 0' }],
    }),
  )
  return path
}

const line = (id: string, key: string, n: number): string =>
  `✗ ${id} ${key}  never-negative (invariant at store): store.output.available >= 0 is false: left ${n}, right 0`

describe('retrace verify --follow', () => {
  it('reports violations in records written after it started, while the recorder keeps writing', async () => {
    const { path, recorder, errors } = testRecorder({ pipeline: 'orders', flushIntervalMs: 10 })
    const before = await order(recorder, 'sku:1', 4)
    const badBefore = await order(recorder, 'sku:2', -1)
    await recorder.flush()

    const f = start(['verify', path, '--follow', '--interval', '100', '--config', config(dirname(path))])
    await waitFor('it to start following', () => f.stderr().includes(`following ${path} (Ctrl-C to stop)`), f)
    // It has looked once: the violation already in the bundle is reported.
    await waitFor('the violation already recorded', () => f.stdout().includes(badBefore), f)

    const good = await order(recorder, 'sku:3', 5)
    const bad1 = await order(recorder, 'sku:4', -7)
    const bad2 = await order(recorder, 'sku:5', -9)
    await recorder.flush()
    await waitFor('the new violations', () => f.stdout().includes(bad1) && f.stdout().includes(bad2), f)

    expect(f.stdout().split('\n').filter(Boolean)).toEqual([
      line(badBefore, 'sku:2', -1),
      line(bad1, 'sku:4', -7),
      line(bad2, 'sku:5', -9),
    ])
    expect(f.stdout()).not.toContain(before)
    expect(f.stdout()).not.toContain(good)

    // The writer was never held up: everything captured was written, nothing dropped.
    const stats = recorder.stats()
    expect(stats).toMatchObject({ captured: 10, written: 10, dropped: 0, errors: 0 })
    expect(errors).toEqual([])

    // Still following: one more after a while is reported too.
    const bad3 = await order(recorder, 'sku:6', -2)
    await recorder.flush()
    await waitFor('a violation written later still', () => f.stdout().includes(bad3), f)
    expect(recorder.stats()).toMatchObject({ captured: 12, written: 12, dropped: 0, errors: 0 })

    f.child.kill('SIGTERM')
    const exit = await Promise.race([f.exited, sleep(20_000).then(() => 'still running' as const)])
    expect(exit).toEqual({ code: 1, signal: null })
    // On the way out it sums up what it saw, on stderr.
    expect(f.stderr()).toContain('✗ 4 violations in 4 of 6 records')
    expect(f.stderr()).toContain('never-negative invariant at stage store: 4')
  })

  it('--json writes one JSON line per violation; two followers can watch one bundle', async () => {
    const { path, recorder, errors } = testRecorder({ pipeline: 'orders', flushIntervalMs: 10 })
    await order(recorder, 'sku:1', 4)
    await recorder.flush()
    const cfg = config(dirname(path))

    const quiet = start(['verify', path, '--follow', '--interval', '100', '--config', cfg])
    await waitFor('it to start following', () => quiet.stderr().includes('following'), quiet)

    const json = start(['verify', path, '--follow', '--interval', '100', '--config', cfg, '--json'])
    const bad = await order(recorder, 'sku:2', -4)
    await recorder.flush()
    await waitFor('the JSON line', () => json.stdout().includes(bad), json)
    expect(
      json
        .stdout()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
    ).toEqual([
      {
        check: 'never-negative',
        kind: 'invariant',
        stage: 'store',
        recordId: bad,
        key: 'sku:2',
        message: 'store.output.available >= 0 is false: left -4, right 0',
      },
    ])
    expect(json.stderr()).toBe('')
    json.child.kill('SIGTERM')
    expect(await json.exited).toEqual({ code: 1, signal: null })
    // Nothing after the violations: no summary document mixed into the JSON lines.
    expect(json.stdout().trim().split('\n')).toHaveLength(1)

    // The first follower saw the bad record too; stop it once it has, and it exits 1.
    await waitFor('the first follower to see it', () => quiet.stdout().includes(bad), quiet)
    quiet.child.kill('SIGTERM')
    expect(await quiet.exited).toEqual({ code: 1, signal: null })
    expect(errors).toEqual([])
  })

  it('a record continued in another bundle is checked again as its parts land, each violation reported once', async () => {
    // Two services, one bundle each: A computes, B stores what it received from A.
    const a = testRecorder({ pipeline: 'orders', flushIntervalMs: 10 })
    const b = testRecorder({ pipeline: 'orders', flushIntervalMs: 10, path: `${a.path}.b.sqlite` })
    const cfg = join(dirname(a.path), 'split.config.json')
    writeFileSync(
      cfg,
      JSON.stringify({
        stages: {},
        invariants: [
          { name: 'computed-non-negative', check: 'compute.output.available >= 0' },
          { name: 'never-negative', check: 'store.output.available >= 0' },
        ],
      }),
    )
    const partA = async (key: string, available: number): Promise<string> => {
      const compute = a.recorder.stage('compute', (sku: string) => ({ sku, available }))
      let id = ''
      await a.recorder.record(key, async () => {
        id = a.recorder.current()?.recordId ?? ''
        await compute(key)
      })
      await a.recorder.flush()
      return id
    }
    const partB = async (id: string, key: string, received: number): Promise<void> => {
      const store = b.recorder.stage('store', (c: { sku: string; available: number }) => ({
        ...c,
        stored: true,
      }))
      await b.recorder.record(key, () => store({ sku: key, available: received }), { recordId: id })
      await b.recorder.flush()
    }
    await partB('01ZZZZZZZZZZZZZZZZZZZZZZZZ', 'sku:0', 1)

    const f = start(['verify', a.path, b.path, '--follow', '--interval', '50', '--config', cfg, '--json'])
    const lines = (): { recordId: string; check: string; message: string }[] =>
      f
        .stdout()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    // Changed between the services: seen only once B's part has landed.
    const one = await partA('sku:1', 4)
    await sleep(300)
    expect(lines()).toEqual([])
    await partB(one, 'sku:1', 40)
    await waitFor('the seam between the bundles', () => lines().length === 1, f)
    expect(lines()[0]).toMatchObject({
      recordId: one,
      check: 'seam compute → store',
      message: '$.available: compute produced 4, store received 40',
    })
    // Wrong in A already: reported when A's part lands, and not again when B's does.
    const two = await partA('sku:2', -1)
    await waitFor("the violation in A's part", () => lines().length === 2, f)
    await partB(two, 'sku:2', -1)
    await waitFor("the violation in B's part", () => lines().length === 3, f)
    await sleep(300)
    expect(lines().map((l) => `${l.recordId} ${l.check}`)).toEqual([
      `${one} seam compute → store`,
      `${two} computed-non-negative`,
      `${two} never-negative`,
    ])
    f.child.kill('SIGTERM')
    expect(await f.exited).toEqual({ code: 1, signal: null })
    expect(a.errors).toEqual([])
    expect(b.errors).toEqual([])
  })

  it('waits for a bundle that does not exist yet, saying so once, then follows it', async () => {
    const path = tempPath('later.sqlite')
    const cfg = config(dirname(path))
    const f = start(['verify', path, '--follow', '--interval', '50', '--config', cfg])
    const json = start(['verify', path, '--follow', '--interval', '50', '--config', cfg, '--json'])
    await waitFor('it to say it waits', () => f.stderr().includes(`waiting for ${path} to appear`), f)
    // Several looks later it is still waiting, and has said so once.
    await sleep(500)
    expect(f.child.exitCode).toBeNull()
    expect(json.child.exitCode).toBeNull()
    expect(f.stderr().split('waiting for').length - 1).toBe(1)

    const { recorder, errors } = testRecorder({ pipeline: 'orders', flushIntervalMs: 10, path })
    const bad = await order(recorder, 'sku:1', -3)
    await recorder.flush()
    await waitFor('the violation in the new bundle', () => f.stdout().includes(bad), f)
    await waitFor('the JSON line', () => json.stdout().includes(bad), json)
    expect(f.stderr()).toContain(`following ${path} (Ctrl-C to stop)`)
    expect(f.stdout().trim()).toBe(line(bad, 'sku:1', -3))
    expect(JSON.parse(json.stdout())).toMatchObject({ recordId: bad, check: 'never-negative' })
    for (const p of [f, json]) p.child.kill('SIGTERM')
    expect(await f.exited).toEqual({ code: 1, signal: null })
    expect(await json.exited).toEqual({ code: 1, signal: null })
    expect(errors).toEqual([])
  })

  it('a follower stopped while it waits exits 0; a file that is there but no bundle fails at once', async () => {
    const dir = tempDir()
    const f = start(['verify', join(dir, 'never.sqlite'), '--follow', '--interval', '50'])
    await waitFor('it to say it waits', () => f.stderr().includes('waiting for'), f)
    f.child.kill('SIGTERM')
    expect(await f.exited).toEqual({ code: 0, signal: null })
    writeFileSync(join(dir, 'text.sqlite'), 'not a bundle at all, just text of some length\n'.repeat(10))
    const bad = start(['verify', join(dir, 'text.sqlite'), '--follow', '--interval', '50'])
    expect(await bad.exited).toEqual({ code: 2, signal: null })
    expect(bad.stderr()).toMatch(/\nretrace: [^\n]*text\.sqlite: is not a SQLite file[^\n]*\n$/)
    expect(bad.stderr()).not.toContain('waiting for')
  })

  it('a recorder that closes while followed leaves one file; a bundle made again at the path is followed', async () => {
    const { path, recorder, errors } = testRecorder({ pipeline: 'orders', flushIntervalMs: 10 })
    await order(recorder, 'sku:1', 4)
    await recorder.flush()
    const cfg = config(dirname(path))
    const f = start(['verify', path, '--follow', '--interval', '100', '--config', cfg])
    await waitFor('it to start following', () => f.stderr().includes('following'), f)
    const bad = await order(recorder, 'sku:2', -1)
    await recorder.flush()
    await waitFor('the violation', () => f.stdout().includes(bad), f)
    // The follower is still running: the recorder's close folds the WAL back into the file.
    await recorder.close()
    expect(errors).toEqual([])
    expect(f.child.exitCode).toBeNull()
    const left = (): string[] =>
      readdirSync(dirname(path)).filter((n) => n.startsWith(basename(path)) && n !== basename(path))
    expect(left()).toEqual([])

    // Log rotation: the file is moved away and a recorder makes a new one at the path. A
    // recorder writes the new file's header before its schema; a follower that looks in
    // between waits for the rest.
    renameSync(path, join(dirname(path), `rotated-${basename(path)}`))
    const half = new Database(path)
    half.pragma(`application_id = ${APPLICATION_ID}`)
    half.pragma(`user_version = ${FORMAT_VERSION}`)
    half.close()
    await sleep(500)
    expect(f.child.exitCode).toBeNull()
    expect(f.stderr()).not.toContain('retrace:')
    const again = testRecorder({ pipeline: 'orders', flushIntervalMs: 10, path })
    const later = await order(again.recorder, 'sku:3', -5)
    await again.recorder.flush()
    await waitFor('the violation in the new file', () => f.stdout().includes(later), f)
    expect(f.stdout().split('\n').filter(Boolean)).toEqual([line(bad, 'sku:2', -1), line(later, 'sku:3', -5)])
    f.child.kill('SIGTERM')
    expect(await f.exited).toEqual({ code: 1, signal: null })
    await again.recorder.close()
    expect(left()).toEqual([])
    expect(again.errors).toEqual([])
  })

  it('a file made again at a followed path that never becomes a bundle fails after a few seconds, naming it', async () => {
    const { path, recorder, errors } = testRecorder({ pipeline: 'orders', flushIntervalMs: 10 })
    await order(recorder, 'sku:1', 4)
    await recorder.close()
    const f = start(['verify', path, '--follow', '--interval', '100', '--config', config(dirname(path))])
    await waitFor('it to start following', () => f.stderr().includes('following'), f)
    renameSync(path, join(dirname(path), `rotated-${basename(path)}`))
    writeFileSync(path, 'not a bundle at all, just text of some length\n'.repeat(10))
    await sleep(1000)
    expect(f.child.exitCode).toBeNull()
    expect(await f.exited).toEqual({ code: 2, signal: null })
    expect(f.stderr()).toMatch(/\nretrace: [^\n]*\.sqlite: is not a SQLite file[^\n]*\n$/)
    expect(errors).toEqual([])
  })

  it('follows a bundle that appears in a followed folder from its first record, and one renamed in it from where it was', async () => {
    const dir = tempDir()
    const cfg = config(tempDir())
    const first = testRecorder({
      pipeline: 'orders',
      flushIntervalMs: 10,
      path: join(dir, 'orders-1.sqlite'),
    })
    const bad1 = await order(first.recorder, 'sku:1', -1)
    await first.recorder.flush()
    const f = start(['verify', dir, '--follow', '--interval', '100', '--config', cfg])
    await waitFor('the violation already recorded', () => f.stdout().includes(bad1), f)

    // A process started later writes a bundle of its own beside the first.
    const second = testRecorder({
      pipeline: 'orders',
      flushIntervalMs: 10,
      path: join(dir, 'orders-2.sqlite'),
    })
    const bad2 = await order(second.recorder, 'sku:2', -2)
    await second.recorder.flush()
    await waitFor('the violation in the new bundle', () => f.stdout().includes(bad2), f)
    expect(f.stderr()).toContain(`following ${join(dir, 'orders-2.sqlite')} too`)

    // Renamed within the folder: the same file, not read again from its start.
    await second.recorder.close()
    renameSync(join(dir, 'orders-2.sqlite'), join(dir, 'orders-2.old.sqlite'))
    await waitFor('the renamed bundle', () => f.stderr().includes('orders-2.old.sqlite too'), f)
    const bad3 = await order(first.recorder, 'sku:3', -3)
    await first.recorder.flush()
    await waitFor('a violation written later', () => f.stdout().includes(bad3), f)
    expect(f.stdout().split('\n').filter(Boolean)).toEqual([
      line(bad1, 'sku:1', -1),
      line(bad2, 'sku:2', -2),
      line(bad3, 'sku:3', -3),
    ])
    f.child.kill('SIGTERM')
    expect(await f.exited).toEqual({ code: 1, signal: null })
    expect([...first.errors, ...second.errors]).toEqual([])
  })

  it('waits for a first bundle to appear in a followed folder that has none yet', async () => {
    const dir = tempDir()
    const f = start(['verify', dir, '--follow', '--interval', '50', '--config', config(tempDir())])
    await waitFor(
      'it to say it waits',
      () => f.stderr().includes(`waiting for a bundle to appear in ${dir}`),
      f,
    )
    expect(f.child.exitCode).toBeNull()
    const { recorder, errors } = testRecorder({
      pipeline: 'orders',
      flushIntervalMs: 10,
      path: join(dir, 'a.sqlite'),
    })
    const bad = await order(recorder, 'sku:1', -3)
    await recorder.flush()
    await waitFor('the violation in the new bundle', () => f.stdout().includes(bad), f)
    expect(f.stdout().trim()).toBe(line(bad, 'sku:1', -3))
    f.child.kill('SIGTERM')
    expect(await f.exited).toEqual({ code: 1, signal: null })
    expect(errors).toEqual([])
  })

  it('a follower that saw nothing wrong exits 0 on SIGTERM', async () => {
    const { path, recorder } = testRecorder({ pipeline: 'orders', flushIntervalMs: 10 })
    await order(recorder, 'sku:1', 4)
    await recorder.flush()
    const f = start(['verify', path, '--follow', '--interval', '100', '--config', config(dirname(path))])
    await waitFor('it to start following', () => f.stderr().includes('following'), f)
    const good = await order(recorder, 'sku:2', 3)
    await recorder.flush()
    expect(good).not.toBe('')
    f.child.kill('SIGTERM')
    expect(await f.exited).toEqual({ code: 0, signal: null })
    expect(f.stdout()).toBe('')
    expect(f.stderr()).toMatch(/✓ \d records checked: every seam matches and every invariant holds/)
  })
})
