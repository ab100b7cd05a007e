/**
 * `retrace/vitest` in a user's own suite: a temp project whose test file calls
 * describeRecordings over its recordings folder (and a hand-written test using the
 * toReplayCleanly matcher), run by vitest in a child process exactly as a user runs it.
 * It passes while the local build matches, fails naming the stage when it does not, and
 * `vitest -u` re-pins so the next run passes.
 */
import { spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withDb } from '../helpers/bundle-db.js'
import {
  inventoryChain,
  inventorySources,
  record,
  repoRoot,
  runChain,
  type Workspace,
  workspace,
} from '../replay/fixture.js'

let ws: Workspace
const ids: string[] = []
const vitestBin = join(repoRoot, 'node_modules', 'vitest', 'vitest.mjs')
const integration = join(repoRoot, 'src', 'vitest', 'index.ts')

beforeAll(async () => {
  ws = workspace('retrace-vitest-')
  const chain = await inventoryChain(ws)
  ws.write(
    'retrace.config.mjs',
    `export default { stages: { parse: './stages/parse.mjs#parse', compute: './stages/compute.mjs#compute', format: './stages/format.mjs#format' } }\n`,
  )
  mkdirSync(ws.path('recordings'))
  await record(ws.path('recordings/inventory.sqlite'), async (recorder) => {
    for (const [sku, onHand, reserved] of [
      ['sku:1001', 46, 41],
      ['sku:2002', 5, 1],
    ] as const) {
      ids.push((await runChain(recorder, sku, { sku, onHand, reserved }, chain)).recordId)
    }
  })
  // No import of vitest in the project itself: globals, and a plain config object.
  ws.write(
    'vitest.config.mjs',
    `export default { test: { globals: true, include: ['tests/**/*.test.mjs'], testTimeout: 20000 } }\n`,
  )
  ws.write(
    'tests/recordings.test.mjs',
    `import { describeRecordings } from ${JSON.stringify(integration)}
describeRecordings(${JSON.stringify(ws.path('recordings'))}, { config: ${JSON.stringify(ws.path('retrace.config.mjs'))} })
`,
  )
})

afterAll(() => ws?.remove())

interface Run {
  code: number | null
  output: string
}

/** `vitest run` in the temp project, in a child process; stdout and stderr together. */
function vitest(...args: string[]): Promise<Run> {
  return vitestWith({}, ...args)
}

/** `vitest run` with these variables set in its environment (CI is otherwise unset). */
function vitestWith(extra: Record<string, string>, ...args: string[]): Promise<Run> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    // The child is a vitest of its own, not a worker of this one.
    if (v !== undefined && !k.startsWith('VITEST') && k !== 'TEST' && k !== 'NODE_ENV') env[k] = v
  }
  env.NO_COLOR = '1'
  delete env.FORCE_COLOR
  delete env.CI
  Object.assign(env, extra)
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        vitestBin,
        'run',
        '--root',
        ws.dir,
        '--config',
        ws.path('vitest.config.mjs'),
        '--reporter',
        'verbose',
        ...args,
      ],
      { cwd: ws.dir, env, stdio: ['ignore', 'pipe', 'pipe'] },
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

function expectCode(r: Run, code: number): void {
  if (r.code !== code) throw new Error(`vitest exited ${r.code}, expected ${code}:\n${r.output}`)
}

function pinned(): { record_id: string; stage: string; note: string | null }[] {
  return withDb(
    ws.path('recordings/inventory.sqlite'),
    (db) =>
      db.prepare('SELECT record_id, stage, note FROM expectations ORDER BY record_id, stage').all() as {
        record_id: string
        stage: string
        note: string | null
      }[],
    true,
  )
}

describe('describeRecordings in a user project', { timeout: 120_000 }, () => {
  it('one passing test per record, named by key and record id, while the local build matches', async () => {
    const r = await vitest()
    expectCode(r, 0)
    expect(r.output).toContain(`sku:1001 ${ids[0]}`)
    expect(r.output).toContain(`sku:2002 ${ids[1]}`)
    expect(r.output).toMatch(/Tests\s+2 passed \(2\)/)
  })

  it('fails, naming the stage with the step diff, when the local build no longer matches', async () => {
    ws.write('stages/compute.mjs', inventorySources.computeOffByOne)
    const r = await vitest()
    expect(r.code).not.toBe(0)
    expect(r.code).not.toBeNull()
    expect(r.output).toMatch(/Tests\s+2 failed \(2\)/)
    expect(r.output).toContain(`record sku:1001 ${ids[0]} did not replay cleanly`)
    expect(r.output).toContain('diverged at compute')
    expect(r.output).toContain('~ $.available 5 → 4')
    expect(pinned()).toEqual([])
  })

  it('vitest -u re-pins the failing stages from the local build, and the next run passes', async () => {
    const u = await vitest('-u')
    expectCode(u, 0)
    const rows = pinned()
    expect(rows.map((x) => [x.record_id, x.stage]).sort()).toEqual(
      [
        [ids[0], 'compute'],
        [ids[0], 'format'],
        [ids[1], 'compute'],
        [ids[1], 'format'],
      ].sort(),
    )
    expect(new Set(rows.map((x) => x.note))).toEqual(new Set(['vitest -u']))
    const again = await vitest()
    expectCode(again, 0)
    expect(again.output).toMatch(/Tests\s+2 passed \(2\)/)
    // And the old build now fails against what was pinned.
    ws.write('stages/compute.mjs', inventorySources.compute)
    const old = await vitest()
    expect(old.code).not.toBe(0)
    expect(old.output).toContain('~ $.available 4 → 5')
  })

  it('toReplayCleanly in a hand-written test: passes for a clean record, fails with the diff otherwise', async () => {
    ws.write('stages/compute.mjs', inventorySources.compute)
    const bundle = ws.path('recordings/inventory.sqlite')
    const config = ws.path('retrace.config.mjs')
    ws.write(
      'tests/hand.test.mjs',
      `import { replayOne } from ${JSON.stringify(integration)}
const bundle = ${JSON.stringify(bundle)}
const options = { config: ${JSON.stringify(config)} }
test('a fresh recording replays cleanly', async () => {
  const fresh = ${JSON.stringify(ws.path('fresh.sqlite'))}
  expect(await replayOne(fresh, ${JSON.stringify(ids[0]!.slice(0, 12))}, options)).toReplayCleanly()
})
test('the pinned record does not (its expectation says 4)', async () => {
  expect(await replayOne(bundle, ${JSON.stringify(ids[0])}, options)).not.toReplayCleanly()
})
test('a non-result is refused with a message', () => {
  expect(() => expect({ verdict: 1 }).toReplayCleanly()).toThrow(/expected a replay result/)
})
test('the failure message carries the step diff', async () => {
  await expect(async () => expect(await replayOne(bundle, ${JSON.stringify(ids[1])}, options)).toReplayCleanly())
    .rejects.toThrow(/did not replay cleanly[\\s\\S]*diverged at compute[\\s\\S]*\\$\\.available 3 → 4/)
})
`,
    )
    // A copy of the recording without expectations, for the clean case.
    withDb(bundle, (db) => db.prepare('VACUUM INTO ?').run(ws.path('fresh.sqlite')), true)
    withDb(ws.path('fresh.sqlite'), (db) => db.prepare('DELETE FROM expectations').run())
    const r = await vitest('tests/hand.test.mjs')
    expectCode(r, 0)
    expect(r.output).toMatch(/Tests\s+4 passed \(4\)/)
  })

  it('vitest -u still fails a record its pins cannot mend (an invariant the local build breaks), as test --update does', async () => {
    // sku:1001 has 5 available in production and 4 under the off-by-one build, which
    // breaks the invariant; sku:2002 had 4 in production already, so only its output moved.
    ws.write('stages/compute-v2.mjs', inventorySources.computeOffByOne)
    ws.write(
      'inv.config.mjs',
      `export default { stages: { parse: './stages/parse.mjs#parse', compute: './stages/compute-v2.mjs#compute', format: './stages/format.mjs#format' }, invariants: ['compute.output.available >= 5'] }\n`,
    )
    mkdirSync(ws.path('inv'))
    const bundle = ws.path('inv/inventory.sqlite')
    withDb(ws.path('recordings/inventory.sqlite'), (db) => db.prepare('VACUUM INTO ?').run(bundle), true)
    withDb(bundle, (db) => db.prepare('DELETE FROM expectations').run())
    ws.write(
      'tests/inv.test.mjs',
      `import { describeRecordings } from ${JSON.stringify(integration)}
describeRecordings(${JSON.stringify(ws.path('inv'))}, { config: ${JSON.stringify(ws.path('inv.config.mjs'))} })
`,
    )
    const u = await vitest('tests/inv.test.mjs', '-u')
    expect(u.code).toBe(1)
    expect(u.output).toMatch(/Tests\s+1 failed \| 1 passed \(2\)/)
    expect(u.output).toContain(`record sku:1001 ${ids[0]} did not replay cleanly`)
    const rows = withDb(
      bundle,
      (db) =>
        db.prepare('SELECT record_id, stage FROM expectations ORDER BY stage').all() as {
          record_id: string
        }[],
      true,
    )
    expect(new Set(rows.map((x) => x.record_id))).toEqual(new Set([ids[1]]))
    // retrace test agrees: the same record fails, the other passes on its pins.
    const again = await vitest('tests/inv.test.mjs')
    expect(again.code).toBe(1)
    expect(again.output).toMatch(/Tests\s+1 failed \| 1 passed \(2\)/)
  })

  it('vitest -u is refused in CI, as test --update is, unless describeRecordings is given force', async () => {
    const bundle = ws.path('inv/inventory.sqlite')
    const before = withDb(bundle, (db) => db.prepare('SELECT count(*) AS n FROM expectations').get(), true)
    const r = await vitestWith({ CI: '1' }, 'tests/inv.test.mjs', '-u')
    expect(r.code).toBe(1)
    expect(r.output).toContain('refusing to re-pin (vitest -u) in CI')
    expect(withDb(bundle, (db) => db.prepare('SELECT count(*) AS n FROM expectations').get(), true)).toEqual(
      before,
    )
    ws.write(
      'tests/inv.test.mjs',
      `import { describeRecordings } from ${JSON.stringify(integration)}
describeRecordings(${JSON.stringify(ws.path('inv'))}, { config: ${JSON.stringify(ws.path('inv.config.mjs'))}, force: true })
`,
    )
    const forced = await vitestWith({ CI: '1' }, 'tests/inv.test.mjs', '-u')
    expect(forced.output).not.toContain('refusing to re-pin')
    expect(forced.output).toMatch(/Tests\s+1 failed \| 1 passed \(2\)/)
  })
})
