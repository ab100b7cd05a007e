/**
 * `retrace verify` as a user runs it: on the shipped example (its config's invariants
 * find the bad record without being told which), and on bundles the SDK records in a
 * temp dir (a hand-off that changes the value is a seam violation).
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { createRecorder, type RecorderError } from '../../src/index.js'
import { expectUsageFailure, parseJsonOut, repoRoot, runCli, sharedTempDir } from '../helpers/cli.js'

const example = join(repoRoot, 'recordings', 'inventory.sqlite')
const exampleConfig = join(repoRoot, 'examples', 'inventory', 'retrace.config.ts')
/** The incident of the example (examples/inventory/README.md): the last record of sku:1001. */
const BAD = '01KJPWGBPCP1NHCKVZ736JA1KR'

interface VerifyJson {
  records: number
  violations: number
  recordsWithViolations: number
  checks: {
    check: string
    kind: 'seam' | 'invariant'
    stage: string
    violations: number
    examples: { recordId: string; key: string; message: string }[]
  }[]
}

const dir = sharedTempDir('retrace-e2e-verify-')

interface Made {
  path: string
  ids: string[]
  errors: RecorderError[]
}

/**
 * Records parse -> compute -> store for each entry with the SDK. `available` is what
 * compute produces; where `handOff` is set, the pipeline passes store that value instead
 * (the data changes in transit between two stages).
 */
async function recordOrders(
  path: string,
  orders: readonly { key: string; available: number; handOff?: number }[],
): Promise<Made> {
  const errors: RecorderError[] = []
  // Records a second apart, so they are listed (and checked) in the order they were made.
  let now = 1_767_000_000_000
  const recorder = createRecorder({
    path,
    pipeline: 'orders',
    clock: () => now,
    flushIntervalMs: 5,
    onError: (e) => errors.push(e),
  })
  const ids: string[] = []
  try {
    for (const o of orders) {
      now += 1000
      const parse = recorder.stage('parse', (raw: string) => ({ sku: raw, onHand: 10, reserved: 6 }))
      const compute = recorder.stage('compute', (p: { sku: string; onHand: number; reserved: number }) => ({
        ...p,
        available: o.available,
      }))
      const store = recorder.stage('store', (c: { available: number }) => ({ ...c, stored: true }))
      await recorder.record(o.key, async () => {
        ids.push(recorder.current()?.recordId ?? '')
        const computed = await compute(await parse(o.key))
        await store(o.handOff === undefined ? computed : { ...computed, available: o.handOff })
      })
    }
  } finally {
    await recorder.close()
  }
  return { path, ids, errors }
}

/**
 * Records each order in two processes' bundles, as two services do: `a` parses and
 * computes, then hands the record on (its id) to `b`, which stores what it received.
 */
async function recordSplit(
  a: string,
  b: string,
  orders: readonly { key: string; available: number; received: number }[],
): Promise<string[]> {
  const errors: RecorderError[] = []
  let now = 1_767_000_000_000
  const options = {
    pipeline: 'orders',
    clock: () => now,
    flushIntervalMs: 5,
    onError: (e: RecorderError) => errors.push(e),
  }
  const first = createRecorder({ ...options, path: a })
  const second = createRecorder({ ...options, path: b })
  const ids: string[] = []
  try {
    for (const o of orders) {
      now += 1000
      const parse = first.stage('parse', (raw: string) => ({
        sku: raw,
        onHand: 10,
        reserved: 10 - o.available,
      }))
      const compute = first.stage('compute', (p: { sku: string; onHand: number; reserved: number }) => ({
        ...p,
        available: p.onHand - p.reserved,
      }))
      const store = second.stage('store', (c: { available: number }) => ({ ...c, stored: true }))
      let computed: { available: number } = { available: 0 }
      await first.record(o.key, async () => {
        ids.push(first.current()?.recordId ?? '')
        computed = await compute(await parse(o.key))
      })
      now += 10
      await second.record(o.key, () => store({ ...computed, available: o.received }), {
        recordId: ids.at(-1)!,
      })
    }
  } finally {
    await first.close()
    await second.close()
  }
  expect(errors).toEqual([])
  return ids
}

let clean: Made
let seam: Made

beforeAll(async () => {
  clean = await recordOrders(join(dir(), 'clean.sqlite'), [
    { key: 'sku:1', available: 4 },
    { key: 'sku:2', available: 4 },
  ])
  seam = await recordOrders(join(dir(), 'seam.sqlite'), [
    { key: 'sku:1', available: 4 },
    { key: 'sku:2', available: 4, handOff: 40 },
    { key: 'sku:3', available: 4 },
    { key: 'sku:4', available: -2, handOff: -1 },
  ])
  expect(clean.errors).toEqual([])
  expect(seam.errors).toEqual([])
  writeFileSync(
    join(dir(), 'orders.config.json'),
    JSON.stringify({
      stages: {},
      invariants: [
        {
          name: 'available-matches-stock',
          check: 'compute.output.available == compute.output.onHand - compute.output.reserved',
        },
        { name: 'never-negative', check: 'store.output.available >= 0' },
      ],
    }),
  )
})

describe('retrace verify on the shipped example', () => {
  it('finds the bad sku:1001 record through the config invariant, without being told the record', async () => {
    const r = await runCli(['verify', example, '--config', exampleConfig])
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('')
    const lines = r.stdout.split('\n')
    expect(lines[0]).toMatch(/^✗ 1 violation in 1 of \d+ records$/)
    expect(r.stdout).toContain('available-matches-stock invariant at stage compute: 1')
    const line = lines.find((l) => l.includes(BAD))
    expect(line).toBe(
      `  ${BAD} sku:1001  compute.output.available == compute.output.onHand - compute.output.reserved is false: left 87, right 4`,
    )
  })

  it('--json lists the record among the examples of the check that caught it', async () => {
    const r = await runCli(['verify', example, '--config', exampleConfig, '--json'])
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('')
    const doc = parseJsonOut<VerifyJson>(r)
    expect(Object.keys(doc).sort()).toEqual(['checks', 'records', 'recordsWithViolations', 'violations'])
    expect(doc.records).toBeGreaterThan(100)
    expect(doc).toMatchObject({ violations: 1, recordsWithViolations: 1 })
    expect(doc.checks).toEqual([
      {
        check: 'available-matches-stock',
        kind: 'invariant',
        stage: 'compute',
        violations: 1,
        examples: [
          {
            recordId: BAD,
            key: 'sku:1001',
            message:
              'compute.output.available == compute.output.onHand - compute.output.reserved is false: left 87, right 4',
          },
        ],
      },
    ])
  })

  it('without a config it checks seams only, says so, and the example has none: exit 0', async () => {
    const r = await runCli(['verify', example], { cwd: dir() })
    expect(r.stderr).toBe('no config found: checking seams only (pass --config for invariants)\n')
    expect(r.stdout).toMatch(/^✓ \d+ records checked: every seam matches and every invariant holds\n$/)
    expect(r.code).toBe(0)
    const json = await runCli(['verify', example, '--json'], { cwd: dir() })
    expect(json.stderr).toBe('')
    expect(parseJsonOut<VerifyJson>(json)).toMatchObject({
      violations: 0,
      recordsWithViolations: 0,
      checks: [],
    })
    expect(json.code).toBe(0)
  })
})

describe('retrace verify on recordings made with the SDK', () => {
  it('a value changed between compute and store is a seam violation at store', async () => {
    const r = await runCli(['verify', seam.path], { cwd: dir() })
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('✗ 2 violations in 2 of 4 records')
    expect(r.stdout).toContain('seam compute → store seam at stage store: 2')
    expect(r.stdout).toContain(`  ${seam.ids[1]} sku:2  $.available: compute produced 4, store received 40`)
    expect(r.stdout).toContain(`  ${seam.ids[3]} sku:4  $.available: compute produced -2, store received -1`)
    expect(r.stdout).not.toContain(seam.ids[0]!)
    expect(r.stdout).not.toContain(seam.ids[2]!)
  })

  it('--json: the seam check with its receiving stage, and the invariants beside it', async () => {
    const r = await runCli(['verify', seam.path, '--config', join(dir(), 'orders.config.json'), '--json'])
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('')
    const doc = parseJsonOut<VerifyJson>(r)
    expect(doc).toMatchObject({ records: 4, violations: 4, recordsWithViolations: 2 })
    const byCheck = Object.fromEntries(doc.checks.map((c) => [c.check, c]))
    expect(Object.keys(byCheck).sort()).toEqual([
      'available-matches-stock',
      'never-negative',
      'seam compute → store',
    ])
    expect(byCheck['seam compute → store']).toEqual({
      check: 'seam compute → store',
      kind: 'seam',
      stage: 'store',
      violations: 2,
      examples: [
        {
          recordId: seam.ids[1],
          key: 'sku:2',
          message: '$.available: compute produced 4, store received 40',
        },
        {
          recordId: seam.ids[3],
          key: 'sku:4',
          message: '$.available: compute produced -2, store received -1',
        },
      ],
    })
    expect(byCheck['available-matches-stock']).toMatchObject({
      kind: 'invariant',
      stage: 'compute',
      violations: 1,
    })
    expect(byCheck['available-matches-stock']!.examples.map((e) => e.recordId)).toEqual([seam.ids[3]])
    expect(byCheck['never-negative']).toMatchObject({ kind: 'invariant', stage: 'store', violations: 1 })
    // Most violated check first.
    expect(doc.checks[0]!.check).toBe('seam compute → store')
  })

  it('a clean recording passes with its invariants: exit 0', async () => {
    const r = await runCli(['verify', clean.path, '--config', join(dir(), 'orders.config.json')])
    expect(r.stderr).toBe('')
    expect(r.stdout).toBe('✓ 2 records checked: every seam matches and every invariant holds\n')
    expect(r.code).toBe(0)
  })

  it('several bundles read as one', async () => {
    const r = await runCli(['verify', clean.path, seam.path, '--json'], { cwd: dir() })
    expect(r.code).toBe(1)
    expect(parseJsonOut<VerifyJson>(r)).toMatchObject({ records: 6, violations: 2, recordsWithViolations: 2 })
  })

  it('a folder names every bundle under it, as for replay', async () => {
    const procs = join(dir(), 'procs')
    mkdirSync(procs)
    copyFileSync(clean.path, join(procs, 'orders-1.sqlite'))
    copyFileSync(seam.path, join(procs, 'orders-2.sqlite'))
    // Named by its folder and by name, a file is read once.
    const r = await runCli(['verify', procs, join(procs, 'orders-1.sqlite'), '--json'], { cwd: dir() })
    expect(r.code).toBe(1)
    expect(parseJsonOut<VerifyJson>(r)).toMatchObject({ records: 6, violations: 2, recordsWithViolations: 2 })
  })

  it('a record continued in another process is checked once, whole: the seam between the processes too', async () => {
    // Process A parses and computes; process B stores what it received from A, one file each.
    const a = join(dir(), 'split-a.sqlite')
    const b = join(dir(), 'split-b.sqlite')
    const ids = await recordSplit(a, b, [
      { key: 'sku:1', available: 4, received: 4 },
      { key: 'sku:2', available: 4, received: 40 },
      { key: 'sku:3', available: 5, received: 5 },
    ])
    const r = await runCli(['verify', a, b, '--json'], { cwd: dir() })
    expect(r.code).toBe(1)
    const doc = parseJsonOut<VerifyJson>(r)
    expect(doc).toMatchObject({ records: 3, violations: 1, recordsWithViolations: 1 })
    expect(doc.checks).toEqual([
      {
        check: 'seam compute → store',
        kind: 'seam',
        stage: 'store',
        violations: 1,
        examples: [
          { recordId: ids[1], key: 'sku:2', message: '$.available: compute produced 4, store received 40' },
        ],
      },
    ])
    // Either order of the bundles, the same record count.
    const back = await runCli(['verify', b, a, '--json'], { cwd: dir() })
    expect(parseJsonOut<VerifyJson>(back)).toMatchObject({ records: 3, violations: 1 })
  })

  it('TypeScript function invariants in a .ts config run too', async () => {
    const config = join(dir(), 'fn.config.ts')
    writeFileSync(
      config,
      [
        'type Chain = Record<string, { input: unknown; output: unknown }>',
        'export default {',
        '  stages: {},',
        '  invariants: [',
        '    {',
        "      name: 'stored-not-negative',",
        '      check: (chain: Chain): true | string => {',
        '        const n = (chain.store?.output as { available: number }).available',
        "        return n >= 0 || 'store kept ' + n",
        '      },',
        '    },',
        '  ],',
        '}',
        '',
      ].join('\n'),
    )
    const r = await runCli(['verify', seam.path, '--config', config, '--json'])
    expect(r.code).toBe(1)
    const doc = parseJsonOut<VerifyJson>(r)
    const check = doc.checks.find((c) => c.check === 'stored-not-negative')
    expect(check).toEqual({
      check: 'stored-not-negative',
      kind: 'invariant',
      stage: '-',
      violations: 1,
      examples: [{ recordId: seam.ids[3], key: 'sku:4', message: 'store kept -1' }],
    })
  })
})

describe('retrace verify: errors', () => {
  it('an invariant with bad syntax: exit 3, one line naming the invariant and the column', async () => {
    const config = join(dir(), 'bad-syntax.config.json')
    writeFileSync(
      config,
      JSON.stringify({
        stages: {},
        invariants: [{ name: 'never-negative', check: 'store.output.available >= = 0' }],
      }),
    )
    const r = await runCli(['verify', clean.path, '--config', config])
    const line = expectUsageFailure(r, 3)
    expect(line).toBe(
      'retrace: invariant "never-negative": Expected expression after >= at column 27 store.output.available >= = 0; ^',
    )
  })

  it('two expressions run together are bad syntax too, pointed at where the second starts', async () => {
    const config = join(dir(), 'two.config.json')
    writeFileSync(config, JSON.stringify({ stages: {}, invariants: ['store.output.available >= 0 compute'] }))
    const r = await runCli(['verify', clean.path, '--config', config])
    const line = expectUsageFailure(r, 3)
    expect(line).toContain('Unexpected "c" after the expression at column 29')
  })

  it('--json puts the syntax error in the JSON document, with its code', async () => {
    const config = join(dir(), 'bad-syntax-json.config.json')
    writeFileSync(config, JSON.stringify({ stages: {}, invariants: ['(store.output.available >= 0'] }))
    const r = await runCli(['verify', clean.path, '--config', config, '--json'])
    expect(r.code).toBe(3)
    expect(parseJsonOut(r)).toEqual({
      error: {
        code: 'E_INVARIANT_SYNTAX',
        message:
          'invariant "(store.output.available >= 0": Unclosed ( at column 29 (store.output.available >= 0; ^',
      },
    })
  })

  it('a missing bundle is exit 2', async () => {
    const r = await runCli([
      'verify',
      join(dir(), 'nope.sqlite'),
      '--config',
      join(dir(), 'orders.config.json'),
    ])
    const line = expectUsageFailure(r, 2)
    expect(line).toContain('no such file')
  })
})

describe('retrace verify: typed values at a seam', () => {
  it('a field holding undefined lost in a JSON hand-off is said as undefined, not as a tag', async () => {
    const path = join(dir(), 'undefined-seam.sqlite')
    const recorder = createRecorder({ path, pipeline: 'orders', flushIntervalMs: 5 })
    try {
      const price = recorder.stage('price', (id: string) => ({ id, cents: 5102n, blob: undefined }))
      const fx = recorder.stage('fx', (o: object) => ({ ...o, rate: 1 }))
      await recorder.record('order:0', async () => {
        const priced = await price('o-0')
        // The hand-off goes through JSON: the BigInt is sent as text, the undefined field is lost.
        await fx(JSON.parse(JSON.stringify({ ...priced, cents: String(priced.cents) })))
      })
    } finally {
      await recorder.close()
    }
    const r = await runCli(['verify', path], { cwd: dir() })
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('$.cents: price produced 5102n, fx received "5102" (+1 more)')
    expect(r.stdout).not.toContain('$t')
    const only = join(dir(), 'undefined-only.sqlite')
    const again = createRecorder({ path: only, pipeline: 'orders', flushIntervalMs: 5 })
    try {
      const price = again.stage('price', (id: string) => ({ id, blob: undefined }))
      const fx = again.stage('fx', (o: object) => ({ ...o, rate: 1 }))
      await again.record('order:1', async () => {
        await fx(JSON.parse(JSON.stringify(await price('o-1'))))
      })
    } finally {
      await again.close()
    }
    const json = parseJsonOut<VerifyJson>(await runCli(['verify', only, '--json'], { cwd: dir() }))
    expect(json.checks[0]!.examples[0]!.message).toBe(
      '$.blob: price produced undefined, fx received nothing (a field holding undefined, dropped in transit)',
    )
  })
})
