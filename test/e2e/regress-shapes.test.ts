/**
 * The regression workflow on pipelines that are not a line, as a user types it: a stage
 * called inside another (`handle` awaiting `parse` then `price`, then `notify` after it), a
 * stage retried by `ctx.attempt` and a stage called once per item, each recorded with a bug
 * by the SDK. Replay shows the
 * bug, the local stage is fixed, `accept --note BUG-1 --yes` pins the fix, `extract` keeps
 * the one record, `retrace test` passes on it and fails naming the stage once the bug is
 * back (in the default, JUnit and JSON reporters), and `test --update` re-pins. Then
 * `accept --stage` on one stage, `show` and `replay` of an extract holding nested and
 * per-item calls, and `describeRecordings` over an extract in a vitest child process.
 */
import { spawn } from 'node:child_process'
import { copyFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Recorder } from '../../src/index.js'
import { withDb } from '../helpers/bundle-db.js'
import { runCli as spawnCli } from '../helpers/cli.js'
import {
  type CliResult,
  parseReplayJson,
  repoRoot,
  runCli,
  statuses,
  type Workspace,
  workspace,
} from '../replay/fixture.js'

const sdk = pathToFileURL(join(repoRoot, 'dist/index.js')).href

/** Where a build carries a bug: production has all three. */
type Bug = 'price' | 'each' | 'flaky'

const names = ['handle', 'parse', 'price', 'notify', 'split', 'each', 'sum', 'prep', 'flaky', 'post']

/** The service's stages, with the bugs named planted. */
function stagesSource(unused: string, bugs: readonly Bug[]): string {
  const b = (stage: Bug, healthy: string, buggy: string): string => (bugs.includes(stage) ? buggy : healthy)
  return `import { createRecorder } from ${JSON.stringify(sdk)}
export const recorder = createRecorder({ path: process.env.SHAPES_BUNDLE ?? ${JSON.stringify(unused)}, onError: () => {} })
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
// Nested: handle awaits parse, then price; notify after it.
export const parse = recorder.stage('parse', (o) => ({ id: o.id, sku: o.sku, qty: o.qty }))
export const price = recorder.stage('price', async (p, ctx) => {
  const unit = await ctx.effect('rate.get', { sku: p.sku }, async () => { await sleep(1); return 10 })
  return { id: p.id, total: p.qty * unit${b('price', '', ' + 1')} }
})
export const handle = recorder.stage('handle', async (o) => {
  const p = await parse(o)
  const pr = await price(p)
  return { id: o.id, charged: pr.total }
})
export const notify = recorder.stage('notify', (h) => ({ msg: h.id + ':' + h.charged }))
// Once per item.
export const split = recorder.stage('split', (o) => o.items)
export const each = recorder.stage('each', async (it, ctx) => {
  const unit = await ctx.effect('rate.get', { sku: it.sku }, async () => { await sleep(1); return it.sku === 'b' ? 7 : 3 })
  return { sku: it.sku, c: it.q * unit${b('each', '', " + (it.sku === 'c' ? 1 : 0)")} }
})
export const sum = recorder.stage('sum', (list) => ({ total: list.reduce((s, x) => s + x.c, 0) }))
// Retried: the first attempt throws.
export const prep = recorder.stage('prep', (x) => ({ v: x.v + 1 }))
export const flaky = recorder.stage('flaky', async (x, ctx) => {
  await sleep(1)
  if (ctx.attempt === 1) throw Object.assign(new Error('transient'), { code: 'ETIMEDOUT' })
  return { v: x.v * 10${b('flaky', '', ' + 1')} }
})
export const post = recorder.stage('post', (x) => ({ posted: x.v }))
`
}

let ws: Workspace
const ids: Record<string, string> = {}

/** The local build: the production code with these bugs (none: fixed). */
function localBuild(...bugs: Bug[]): void {
  ws.write('stages/local.mjs', stagesSource(ws.path('local-unused.sqlite'), bugs))
}

beforeAll(async () => {
  ws = workspace('retrace-regress-shapes-')
  const prod = ws.write(
    'prod/stages.mjs',
    stagesSource(ws.path('prod-unused.sqlite'), ['price', 'each', 'flaky']),
  )
  localBuild('price', 'each', 'flaky')
  ws.write(
    'retrace.config.json',
    JSON.stringify({ stages: Object.fromEntries(names.map((n) => [n, `./stages/local.mjs#${n}`])) }),
  )
  process.env.SHAPES_BUNDLE = ws.path('prod.sqlite')
  try {
    type Stage = (x: unknown) => Promise<unknown>
    const m = (await import(pathToFileURL(prod).href)) as Record<string, Stage> & { recorder: Recorder }
    const r = m.recorder
    const record = (key: string, fn: () => Promise<unknown>): Promise<unknown> =>
      r.record(key, () => {
        ids[key] = r.current()!.recordId
        return fn()
      })
    await record('nested', async () => m.notify!(await m.handle!({ id: 'o1', sku: 's', qty: 2 })))
    await record('items', async () => {
      const items = (await m.split!({
        items: [
          { sku: 'a', q: 1 },
          { sku: 'b', q: 2 },
          { sku: 'c', q: 3 },
        ],
      })) as unknown[]
      const out: unknown[] = []
      for (const item of items) out.push(await m.each!(item))
      return m.sum!(out)
    })
    await record('retry', async () => {
      const x = await m.prep!({ v: 1 })
      let y: unknown
      try {
        y = await m.flaky!(x)
      } catch {
        y = await m.flaky!(x)
      }
      return m.post!(y)
    })
    await r.close()
    expect(r.stats()).toMatchObject({ written: 13, dropped: 0 })
  } finally {
    delete process.env.SHAPES_BUNDLE
  }
})

afterAll(() => ws?.remove())

const cli = (...args: string[]): Promise<CliResult> => runCli(args, ws.dir)

function expectCode(r: CliResult, code: number): void {
  if (r.code !== code) {
    throw new Error(`expected exit ${code}, got ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`)
  }
}

interface TestJson {
  summary: { records: number; matched: number; diverged: number; errors: number; updated?: number }
  bundles: {
    failures: {
      recordId: string
      firstDivergence: { stage: string } | null
      stages: { stage: string; status: string; inheritedFrom?: string }[]
    }[]
  }[]
}

/**
 * The whole story on one record: replay shows the bug with the fixed local build, accept,
 * extract, test passes, the bug back, test fails naming `stage` in every reporter, and
 * `test --update` re-pins so it passes again.
 */
async function story(
  key: string,
  bug: Bug,
  stage: string,
  change: string,
  inheritors: string[],
  fixed: Record<string, string>,
): Promise<void> {
  const id = ids[key]!
  copyFileSync(ws.path('prod.sqlite'), ws.path(`${key}.sqlite`))
  localBuild()
  const shown = await cli('replay', `${key}.sqlite`, id, '--json')
  expectCode(shown, 1)
  const rec = parseReplayJson(shown).records[0]!
  expect(rec.firstDivergence).toEqual({ stage, status: 'diverged' })
  expect(statuses(rec)).toEqual(fixed)

  const accepted = await cli('accept', `${key}.sqlite`, id, '--note', 'BUG-1', '--yes')
  expectCode(accepted, 0)
  expect(accepted.stderr).toContain(`pinned ${Object.keys(fixed).length} expectations`)
  const extracted = await cli('extract', `${key}.sqlite`, id, '-o', `recordings/${key}.sqlite`)
  expectCode(extracted, 0)
  const small = `recordings/${key}.sqlite`

  const passing = await cli('test', small)
  expectCode(passing, 0)
  expect(passing.stdout).toContain('1 record tested, 1 matched, 0 diverged, 0 errors')

  localBuild(bug)
  const failing = await cli('test', small)
  expectCode(failing, 1)
  expect(failing.stdout).toContain(`record ${id}  key ${key}  diverged at ${stage}`)
  expect(failing.stdout).toContain(`first divergence: ${stage} (diverged): the pinned expectation is`)
  expect(failing.stdout).toContain(change)
  for (const s of inheritors) expect(failing.stdout).toMatch(new RegExp(`${s} +↳ inherited from ${stage}`))

  const junit = await cli('test', small, '--reporter', 'junit')
  expectCode(junit, 1)
  expect(junit.stdout).toContain('tests="1" failures="1" errors="0"')
  expect(junit.stdout).toContain(`<failure message="diverged at stage ${stage}" type="diverged">`)
  const json = await cli('test', small, '--reporter', 'json')
  expectCode(json, 1)
  const report = JSON.parse(json.stdout) as TestJson
  expect(report.summary).toMatchObject({ records: 1, matched: 0, diverged: 1, errors: 0 })
  const failure = report.bundles[0]!.failures[0]!
  expect([failure.recordId, failure.firstDivergence?.stage]).toEqual([id, stage])
  for (const s of inheritors)
    expect(failure.stages.find((x) => x.stage === s)).toMatchObject({
      status: 'inherited',
      inheritedFrom: stage,
    })

  const updated = await spawnCli(['test', small, '--update'], { cwd: ws.dir, env: { CI: undefined } })
  expectCode(updated, 0)
  expect(updated.stdout).toContain('1 record tested, 0 matched, 0 diverged, 0 errors, 1 updated')
  const again = await cli('test', small)
  expectCode(again, 0)
  expect(again.stdout).toContain('1 record tested, 1 matched, 0 diverged, 0 errors')
}

describe('the regression workflow on pipelines that are not a line', { timeout: 120_000 }, () => {
  it('a bug in a stage called inside another is pinned, kept and named there when it comes back', async () => {
    await story('nested', 'price', 'price', '~ $.total 20 → 21', ['handle', 'notify'], {
      handle: 'inherited',
      parse: 'matched',
      price: 'diverged',
      notify: 'inherited',
    })
  })

  it('a retried stage whose last attempt is fixed is pinned, kept and named there when it comes back', async () => {
    await story('retry', 'flaky', 'flaky', '~ $.v 20 → 21', ['post'], {
      prep: 'matched',
      flaky: 'diverged',
      post: 'inherited',
    })
  })

  it('a stage called once per item whose fix changes its last item is pinned, kept and named there when it comes back', async () => {
    await story('items', 'each', 'each', '~ $.c 9 → 10', [], {
      split: 'matched',
      each: 'diverged',
      sum: 'matched',
    })
  })

  it('accept --stage on a stage called inside another: the stage calling it and the one after pass against the recording', async () => {
    const id = ids.nested!
    localBuild()
    const one = await cli('extract', 'prod.sqlite', id, '-o', 'only-price.sqlite')
    expectCode(one, 0)
    const accepted = await cli('accept', 'only-price.sqlite', id, '--stage', 'price', '--yes')
    expectCode(accepted, 0)
    expect(accepted.stderr).toContain('pinned 1 expectation in only-price.sqlite')
    const passing = await cli('test', 'only-price.sqlite')
    expectCode(passing, 0)
    const replayed = await cli('replay', 'only-price.sqlite', id, '--json')
    expectCode(replayed, 0)
    const stages = parseReplayJson(replayed).records[0]!.stages
    expect(stages.map((s) => [s.stage, s.status, s.inheritedFrom, s.reason])).toEqual([
      [
        'handle',
        'inherited',
        'price',
        'differs only through price, called inside it, whose pinned expectation is not what production recorded: with the recorded results it matches',
      ],
      ['parse', 'matched', undefined, undefined],
      ['price', 'matched', undefined, undefined],
      [
        'notify',
        'inherited',
        'price',
        'its input differed because price is pinned to an output production did not record; on its recorded input it matches',
      ],
    ])
    // The bug back: named at the pinned stage; what calls it and follows it match the recording.
    localBuild('price')
    const failing = await cli('test', 'only-price.sqlite', '--reporter', 'json')
    expectCode(failing, 1)
    const f = (JSON.parse(failing.stdout) as TestJson).bundles[0]!.failures[0]!
    expect(f.firstDivergence?.stage).toBe('price')
    expect(f.stages.map((s) => [s.stage, s.status])).toEqual([
      ['handle', 'matched'],
      ['parse', 'matched'],
      ['price', 'diverged'],
      ['notify', 'matched'],
    ])
  })

  it('accept --stage on a line: the stage after it passes, inherited from the pin rather than a seam', async () => {
    const id = ids.retry!
    localBuild()
    expectCode(await cli('extract', 'prod.sqlite', id, '-o', 'only-flaky.sqlite'), 0)
    expectCode(await cli('accept', 'only-flaky.sqlite', id, '--stage', 'flaky', '--yes'), 0)
    const replayed = await cli('replay', 'only-flaky.sqlite', id, '--json')
    expectCode(replayed, 0)
    const post = parseReplayJson(replayed).records[0]!.stages.find((s) => s.stage === 'post')!
    expect([post.status, post.inheritedFrom, post.reason]).toEqual([
      'inherited',
      'flaky',
      'its input differed because flaky is pinned to an output production did not record; on its recorded input it matches',
    ])
    expectCode(await cli('test', 'only-flaky.sqlite'), 0)
  })

  it('an extract of records with nested and per-item calls shows and replays as the original does', async () => {
    localBuild()
    const both = [ids.nested!, ids.items!]
    expectCode(await cli('extract', 'prod.sqlite', ...both, '-o', 'shapes.sqlite'), 0)
    for (const id of both) {
      const [a, b] = await Promise.all([cli('show', 'prod.sqlite', id), cli('show', 'shapes.sqlite', id)])
      expectCode(a, 0)
      expect(b).toEqual(a)
      const [ra, rb] = await Promise.all([
        cli('replay', 'prod.sqlite', id, '--json'),
        cli('replay', 'shapes.sqlite', id, '--json'),
      ])
      expectCode(ra, 1)
      expect(rb.code).toBe(1)
      expect(parseReplayJson(rb).records).toEqual(parseReplayJson(ra).records)
    }
    const shown = await cli('show', 'shapes.sqlite', ids.items!)
    expect(shown.stdout).toContain('each call 3 of 3 (once per item)')
    expect(shown.stdout).toContain('not handed on: each, sum')
    const verified = await cli('verify', 'shapes.sqlite')
    expectCode(verified, 0)
  })
})

/** `vitest run` in a project of its own under the workspace, in a child process. */
function vitest(project: string, ...args: string[]): Promise<{ code: number | null; output: string }> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    // The child is a vitest of its own, not a worker of this one.
    if (v !== undefined && !k.startsWith('VITEST') && k !== 'TEST' && k !== 'NODE_ENV') env[k] = v
  }
  env.NO_COLOR = '1'
  delete env.FORCE_COLOR
  delete env.CI
  const bin = join(repoRoot, 'node_modules', 'vitest', 'vitest.mjs')
  const config = join(project, 'vitest.config.mjs')
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [bin, 'run', '--root', project, '--config', config, '--reporter', 'verbose', ...args],
      { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const chunks: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => chunks.push(b))
    child.stderr.on('data', (b: Buffer) => chunks.push(b))
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, output: Buffer.concat(chunks).toString('utf8') })
    })
  })
}

describe('describeRecordings over an extract of a nested record', { timeout: 120_000 }, () => {
  it('passes with the fix pinned, and fails with the step diff naming the inner stage once the bug is back', async () => {
    const id = ids.nested!
    const project = ws.path('project')
    mkdirSync(join(project, 'recordings'), { recursive: true })
    localBuild()
    copyFileSync(ws.path('prod.sqlite'), ws.path('vt.sqlite'))
    expectCode(await cli('accept', 'vt.sqlite', id, '--note', 'BUG-1', '--yes'), 0)
    expectCode(await cli('extract', 'vt.sqlite', id, '-o', 'project/recordings/nested.sqlite'), 0)
    expect(
      withDb(
        join(project, 'recordings/nested.sqlite'),
        (db) => db.prepare('SELECT count(*) AS n FROM expectations').get(),
        true,
      ),
    ).toEqual({ n: 4 })
    ws.write(
      'project/vitest.config.mjs',
      `export default { test: { globals: true, include: ['tests/**/*.test.mjs'], testTimeout: 20000 } }\n`,
    )
    ws.write(
      'project/tests/recordings.test.mjs',
      `import { describeRecordings } from ${JSON.stringify(join(repoRoot, 'src', 'vitest', 'index.ts'))}
describeRecordings(${JSON.stringify(join(project, 'recordings'))}, { config: ${JSON.stringify(ws.path('retrace.config.json'))} })
`,
    )
    const passing = await vitest(project)
    if (passing.code !== 0) throw new Error(`vitest exited ${passing.code}:\n${passing.output}`)
    expect(passing.output).toContain(`nested ${id}`)
    expect(passing.output).toMatch(/Tests\s+1 passed \(1\)/)

    localBuild('price')
    const failing = await vitest(project)
    expect(failing.code).toBe(1)
    expect(failing.output).toMatch(/Tests\s+1 failed \(1\)/)
    expect(failing.output).toContain(`record nested ${id} did not replay cleanly`)
    expect(failing.output).toContain('diverged at price')
    expect(failing.output).toContain('~ $.total 20 → 21')
    expect(failing.output).toMatch(/handle +↳ inherited from price/)
  })
})
