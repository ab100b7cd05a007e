/**
 * Hostile payloads inside a well-formed bundle: terminal escape sequences in keys, values,
 * stage names and metadata never reach the terminal raw; `__proto__` and
 * `constructor.prototype` keys and absurdly deep nesting do not crash the CLI.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { beforeAll, describe, expect, it } from 'vitest'
import { createRecorder, type StageContext } from '../../src/index.js'
import {
  type CliResult,
  listDir,
  parseJsonOut,
  recordPayloads,
  runCli,
  sharedTempDir,
} from '../helpers/cli.js'

/** CSI (red), OSC (set title) ended by BEL, a C1 CSI, a carriage return, a bidi override. */
const EVIL = 'A\u001b[31mRED\u001b]0;pwned\u0007B\u009b2JC\rD\u202eE'
/** Characters that must never be printed raw. */
const RAW = /[\u001b\u0007\u009b\r\u202e]/

const dir = sharedTempDir('retrace-e2e-payloads-')
let evilPath: string
let evilOk: string
let evilFailed: string
let protoPath: string
let deepPath: string
let deepDiffPath: string

function expectNoRawControls(r: CliResult, label: string): void {
  expect(r.stdout, `${label} (stdout)`).not.toMatch(RAW)
  expect(r.stderr, `${label} (stderr)`).not.toMatch(RAW)
}

/** Records two records whose every recorded string carries escape sequences. */
async function recordEvil(path: string): Promise<{ ok: string; failed: string }> {
  const recorder = createRecorder({
    path,
    pipeline: `pipe${EVIL}`,
    build: `build${EVIL}`,
    origin: { host: `host${EVIL}`, pid: 7 },
    clock: () => Date.parse('2026-01-10T12:00:00Z'),
    flushIntervalMs: 5,
  })
  const ids = { ok: '', failed: '' }
  try {
    const parse = recorder.stage(`parse${EVIL}`, (raw: string, ctx: StageContext) => {
      const seen = ctx.effect(`kv${EVIL}`, { [`arg${EVIL}`]: EVIL }, () => `result${EVIL}`)
      return { [`key${EVIL}`]: raw, note: EVIL, seen, n: 1 }
    })
    const store = recorder.stage('store', (v: Record<string, unknown>) => {
      if (v.n === 2) throw new TypeError(`refused ${EVIL}`)
      return { ...v, stored: EVIL }
    })
    await recorder.record(`sku:${EVIL}`, async () => {
      ids.ok = recorder.current()!.recordId
      await store(await parse(EVIL))
    })
    await recorder
      .record(`sku:${EVIL}:2`, async () => {
        ids.failed = recorder.current()!.recordId
        const v = await parse(EVIL)
        await store({ ...v, n: 2 })
      })
      .catch(() => {})
  } finally {
    await recorder.close()
  }
  return ids
}

/** Changes a recorder-made bundle in place through SQLite, as a stranger could. */
function alter(path: string, fn: (db: Database.Database) => void): void {
  const db = new Database(path)
  try {
    fn(db)
  } finally {
    db.close()
  }
}

beforeAll(async () => {
  evilPath = join(dir(), 'evil.sqlite')
  const ids = await recordEvil(evilPath)
  evilOk = ids.ok
  evilFailed = ids.failed

  // Prototype keys can only come from a hand-made file: the recorder itself drops them.
  protoPath = join(dir(), 'proto.sqlite')
  await recordPayloads(protoPath, 'sku:proto', [
    { name: 'parse', output: { a: 1 } },
    { name: 'store', output: { a: 2 } },
  ])
  const protoJson =
    '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"a":1,"nested":{"__proto__":{"polluted":"yes"}}}'
  alter(protoPath, (db) => {
    db.prepare("UPDATE captures SET output = ? WHERE stage = 'parse'").run(protoJson)
    db.prepare("UPDATE captures SET input = ? WHERE stage = 'store'").run(protoJson)
    db.prepare("UPDATE records SET key = '__proto__'").run()
    db.prepare('INSERT INTO manifest (key, value) VALUES (?, ?)').run('__proto__', '{"polluted":"yes"}')
    db.prepare('INSERT INTO manifest (key, value) VALUES (?, ?)').run(
      'constructor',
      '{"prototype":{"polluted":"yes"}}',
    )
    db.prepare("UPDATE manifest SET value = ? WHERE key = 'redaction'").run(
      '{"__proto__":{"rules":["$.x"]},"rules":["$.card"],"equalityPreserving":false}',
    )
  })

  // Nesting far beyond anything the recorder writes (it caps at 512 levels).
  deepPath = join(dir(), 'deep.sqlite')
  await recordPayloads(deepPath, 'sku:deep', [
    { name: 'parse', output: { a: 1 } },
    { name: 'store', output: { a: 2 } },
  ])
  const depth = 100_000
  const deep = `${'['.repeat(depth)}1${']'.repeat(depth)}`
  const deepObject = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
  alter(deepPath, (db) => {
    db.prepare("UPDATE captures SET output = ? WHERE stage = 'parse'").run(deep)
    db.prepare("UPDATE captures SET input = ? WHERE stage = 'store'").run(deep)
    db.prepare("UPDATE captures SET output = ? WHERE stage = 'store'").run(deepObject)
  })

  // Deep enough to parse and to diff, too deep to serialise: the diff reaches it only
  // through a field the local build also returns.
  deepDiffPath = join(dir(), 'deep-diff.sqlite')
  await recordPayloads(deepDiffPath, 'sku:deep', [{ name: 'parse', output: { v: [], s: 'x' } }])
  const nested = 20_000
  alter(deepDiffPath, (db) => {
    db.prepare("UPDATE captures SET output = ? WHERE stage = 'parse'").run(
      `{"v":${'['.repeat(nested)}${']'.repeat(nested)},"s":"x"}`,
    )
  })
  writeFileSync(
    join(dir(), 'deep.config.mjs'),
    "export default { stages: { parse: () => ({ v: [], s: 'y' }) } }\n",
  )
})

describe('escape sequences in recorded strings', () => {
  it('ls shows keys and stage names with the controls made visible', async () => {
    const r = await runCli(['ls', evilPath])
    expect(r.code).toBe(0)
    expectNoRawControls(r, 'ls')
    expect(r.stdout).toContain('sku:A\\x1b[31mRED\\x1b]0;pwned\\x07B\\x9b2JC\\x0dD\\u202eE')
    expect(r.stdout).toContain('parseA\\x1b[31m')
  })

  it('show shows payload keys and values, effects, errors and metadata escaped', async () => {
    const [ok, expanded, failed] = await Promise.all([
      runCli(['show', evilPath, evilOk]),
      runCli(['show', evilPath, evilOk, '--expand']),
      runCli(['show', evilPath, evilFailed]),
    ])
    for (const [label, r] of [
      ['show', ok],
      ['show --expand', expanded],
      ['show (failed record)', failed],
    ] as const) {
      expect(r.code, label).toBe(0)
      expectNoRawControls(r, label)
    }
    // Key, stage, build and host on the header lines.
    expect(ok.stdout).toContain('key sku:A\\x1b[31mRED')
    expect(ok.stdout).toContain('build buildA\\x1b[31m')
    expect(ok.stdout).toContain('host hostA\\x1b[31m')
    // Payload keys and values, and the effect's name, arguments and result.
    expect(ok.stdout).toContain('"keyA\\u001b[31mRED')
    expect(ok.stdout).toContain('\\x9b2JC')
    expect(ok.stdout).toContain('\\u202eE')
    expect(ok.stdout).toContain('kvA\\x1b[31mRED')
    expect(expanded.stdout).toContain('"note": "A\\u001b[31mRED')
    // The error that ended a record and the stage that threw.
    expect(failed.stdout).toContain('record failed: TypeError: refused A\\x1b[31mRED')
    expect(failed.stdout).toContain('threw TypeError: refused A\\x1b[31mRED')
  })

  it('find prints matching values escaped', async () => {
    const [human, json] = await Promise.all([
      runCli(['find', evilPath, '--where', 'store.stored contains RED']),
      runCli(['find', evilPath, '--where', 'store.stored contains RED', '--json']),
    ])
    expect(human.code).toBe(0)
    expectNoRawControls(human, 'find')
    expect(human.stdout).toContain('1 record where store.stored contains RED')
    expect(human.stdout).toContain('"A\\u001b[31mRED')
    expectNoRawControls(json, 'find --json')
    expect(parseJsonOut<{ records: { value: unknown }[] }>(json).records.map((x) => x.value)).toEqual([EVIL])
  })

  it('inspect prints pipeline, builds and stage names escaped', async () => {
    const r = await runCli(['inspect', evilPath])
    expect(r.code).toBe(0)
    expectNoRawControls(r, 'inspect')
    expect(r.stdout).toContain('pipeA\\x1b[31mRED')
    expect(r.stdout).toContain('buildA\\x1b[31mRED')
    expect(r.stdout).toContain('parseA\\x1b[31mRED')
  })

  it('--json escapes them too, and the strings come back intact when parsed', async () => {
    const [ls, show, inspect] = await Promise.all([
      runCli(['ls', evilPath, '--json']),
      runCli(['show', evilPath, evilOk, '--json']),
      runCli(['inspect', evilPath, '--json']),
    ])
    for (const [label, r] of [
      ['ls --json', ls],
      ['show --json', show],
      ['inspect --json', inspect],
    ] as const) {
      expect(r.code, label).toBe(0)
      expectNoRawControls(r, label)
    }
    const records = parseJsonOut<{ records: { key: string; stages: string[] }[] }>(ls).records
    expect(records.map((x) => x.key).sort()).toEqual([`sku:${EVIL}`, `sku:${EVIL}:2`])
    expect(records[0]!.stages).toEqual([`parse${EVIL}`, 'store'])
    const scene = parseJsonOut<{ captures: { output?: Record<string, unknown> }[] }>(show)
    expect(scene.captures[0]!.output).toEqual({
      [`key${EVIL}`]: EVIL,
      note: EVIL,
      seen: `result${EVIL}`,
      n: 1,
    })
    expect(parseJsonOut<{ manifest: { pipeline: string } }>(inspect).manifest.pipeline).toBe(`pipe${EVIL}`)
  })

  it("notes on stderr are escaped: replay's stages not in the config, the bundles verify --follow follows", async () => {
    const cwd = join(dir(), 'notes')
    mkdirSync(cwd)
    writeFileSync(join(cwd, 'stages.mjs'), 'export const store = (v) => ({ ...v, stored: v.note })\n')
    writeFileSync(
      join(cwd, 'retrace.config.mjs'),
      "export default { stages: { store: './stages.mjs#store' } }\n",
    )
    const follow = join(cwd, 'bundles')
    mkdirSync(follow)
    copyFileSync(evilPath, join(follow, `bundle${EVIL}.sqlite`))
    const [replay, following] = await Promise.all([
      runCli(['replay', evilPath, evilOk], { cwd }),
      // Killed once it has said what it follows: it follows until stopped.
      runCli(['verify', '--follow', 'bundles', '--interval', '200'], { cwd, timeoutMs: 10_000 }),
    ])
    expect(replay.code).toBe(0)
    expectNoRawControls(replay, 'replay')
    expect(replay.stderr).toContain(
      'stages in the recording but not in the config (recorded output used): parseA\\x1b[31mRED',
    )
    expectNoRawControls(following, 'verify --follow')
    expect(following.stderr).toContain('/bundles/bundleA\\x1b[31mRED')
  })

  it('error messages that quote user input or file names are escaped', async () => {
    const evilDir = join(dir(), 'names')
    mkdirSync(evilDir)
    const evilFile = join(evilDir, `bundle${EVIL}.sqlite`)
    copyFileSync(evilPath, evilFile)
    const [noKey, noRecord, missingFile, twoBundles] = await Promise.all([
      runCli(['show', evilPath, '--key', `nope${EVIL}`]),
      runCli(['show', evilPath, `ZZZZ${EVIL}`]),
      runCli(['ls', join(evilDir, `missing${EVIL}.sqlite`)]),
      runCli(['ls', evilFile, evilPath]),
    ])
    for (const [label, r] of [
      ['unknown key', noKey],
      ['unknown record', noRecord],
      ['missing file', missingFile],
    ] as const) {
      expect(r.code, label).toBe(2)
      expect(r.stderr, label).toMatch(/^retrace: [^\n]+\n$/)
      expectNoRawControls(r, label)
    }
    expect(missingFile.stderr).toContain('missingA\\x1b[31mRED')
    // The file name is printed as each record's source.
    expect(twoBundles.code).toBe(0)
    expectNoRawControls(twoBundles, 'ls of a file with controls in its name')
    expect(twoBundles.stdout).toContain('bundleA\\x1b[31mRED')
    expect(listDir(evilDir)).toEqual([`bundle${EVIL}.sqlite`])
  })
})

describe('prototype keys', () => {
  it('a manifest holding objects where text is expected: inspect and extract read it, never a crash', async () => {
    const path = join(dir(), 'manifest-objects.sqlite')
    await recordPayloads(path, 'sku:m', [{ name: 'parse', output: { a: 1 } }])
    // {"toString": 1} made String() throw "Cannot convert object to primitive value" (exit 5).
    alter(path, (db) => {
      const set = db.prepare('UPDATE manifest SET value = ? WHERE key = ?')
      set.run('{"toString":1}', 'pipeline')
      set.run('{"x":1}', 'created')
      set.run('[{"toString":1},"b1"]', 'builds')
      set.run('{"rules":[{"toString":1},"defaults"],"equalityPreserving":false}', 'redaction')
    })
    const out = join(dir(), 'manifest-objects-extract.sqlite')
    const id = parseJsonOut<{ records: { id: string }[] }>(await runCli(['ls', path, '--json'])).records[0]!
      .id
    const [inspect, extract] = await Promise.all([
      runCli(['inspect', path]),
      runCli(['extract', path, id, '-o', out]),
    ])
    expect(inspect.stderr).toBe('')
    expect(inspect.code).toBe(0)
    expect(inspect.stdout).toContain('pipeline  {"toString":1}\n')
    expect(inspect.stdout).toContain('created {"x":1}\n')
    expect(inspect.stdout).toContain('builds    {"toString":1}, b1\n')
    expect(inspect.stdout).toContain('redaction {"toString":1}, defaults\n')
    expect(extract.code).toBe(0)
    const extracted = await runCli(['inspect', out, '--json'])
    const m = parseJsonOut<{ manifest: { builds: string[]; redaction: { rules: string[] } } }>(
      extracted,
    ).manifest
    expect(m.builds).toContain('{"toString":1}')
    expect(m.redaction.rules).toEqual(['{"toString":1}', 'defaults'])
  })

  it('show --json parses, and the __proto__ / constructor.prototype keys are dropped', async () => {
    const r = await runCli(['show', protoPath, '--key', '__proto__', '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const scene = parseJsonOut<{
      key: string
      captures: { stage: string; input: unknown; output?: unknown }[]
      seams: { matches: boolean }[]
    }>(r)
    expect(scene.key).toBe('__proto__')
    const [parse, store] = scene.captures
    expect(parse!.output).toEqual({ a: 1, nested: {} })
    expect(store!.input).toEqual({ a: 1, nested: {} })
    expect(scene.seams).toEqual([expect.objectContaining({ matches: true })])
    expect(r.stdout).not.toContain('polluted')
  })

  it('show, ls, find and inspect do not crash on them', async () => {
    const [show, ls, find, inspect, inspectJson] = await Promise.all([
      runCli(['show', protoPath, '--key', '__proto__']),
      runCli(['ls', protoPath, '--json']),
      runCli(['find', protoPath, '--where', 'parse.a = 1', '--json']),
      runCli(['inspect', protoPath]),
      runCli(['inspect', protoPath, '--json']),
    ])
    for (const r of [show, ls, find, inspect, inspectJson]) {
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
    }
    expect(show.stdout).toContain('out {"a":1,"nested":{}}')
    expect(parseJsonOut<{ records: { key: string }[] }>(ls).records.map((x) => x.key)).toEqual(['__proto__'])
    expect(parseJsonOut<{ records: unknown[] }>(find).records).toHaveLength(1)
    const view = parseJsonOut<{ manifest: Record<string, unknown> }>(inspectJson)
    expect(Object.hasOwn(view.manifest, '__proto__')).toBe(false)
    expect(view.manifest.redaction).toMatchObject({ rules: ['$.card'] })
    expect(inspect.stdout).toMatch(/^redaction \$\.card$/m)
  })
})

describe('absurdly deep payloads', () => {
  it('show, show --expand and show --json print them as unreadable instead of overflowing', async () => {
    const [human, expanded, json] = await Promise.all([
      runCli(['show', deepPath, '--key', 'sku:deep']),
      runCli(['show', deepPath, '--key', 'sku:deep', '--expand']),
      runCli(['show', deepPath, '--key', 'sku:deep', '--json']),
    ])
    for (const [label, r] of [
      ['show', human],
      ['show --expand', expanded],
      ['show --json', json],
    ] as const) {
      expect(r.stderr, label).toBe('')
      expect(r.code, label).toBe(0)
    }
    expect(human.stdout).toContain('out <unreadable payload: payload nests deeper than')
    expect(expanded.stdout).toContain('payload nests deeper than')
    const scene = parseJsonOut<{ captures: { output?: unknown }[] }>(json)
    expect(scene.captures[0]!.output).toMatchObject({ $t: 'unreadable' })
    expect(json.stdout.length).toBeLessThan(100_000)
  })

  it('replay, replay --json and report compare a recorded output nested that deep as unreadable', async () => {
    const html = join(dir(), 'deep.html')
    const args = [deepDiffPath, '--config', 'deep.config.mjs']
    const [human, json, report] = await Promise.all([
      runCli(['replay', ...args], { cwd: dir() }),
      runCli(['replay', ...args, '--json'], { cwd: dir() }),
      runCli(['report', ...args, '--key', 'sku:deep', '-o', html], { cwd: dir() }),
    ])
    for (const [label, r] of [
      ['replay', human],
      ['replay --json', json],
      ['report', report],
    ] as const) {
      expect(r.stderr, label).not.toMatch(/bug in retrace|call stack/)
      expect(r.code, label).not.toBe(5)
    }
    expect(human.code).toBe(1)
    expect(human.stdout).toContain(
      '~ $ <unreadable payload: payload nests deeper than 2000 levels> → {"v":[],"s":"y"}',
    )
    const doc = parseJsonOut<{ records: { verdict: string; stages: { changes: unknown[] }[] }[] }>(json)
    expect(doc.records[0]!.verdict).toBe('diverged')
    expect(doc.records[0]!.stages[0]!.changes).toEqual([
      {
        path: '$',
        kind: 'changed',
        recorded: { $t: 'unreadable', message: 'payload nests deeper than 2000 levels' },
        local: { v: [], s: 'y' },
      },
    ])
    expect(readFileSync(html, 'utf8')).toContain('payload nests deeper than 2000 levels')
  })

  it('find and ls read past them', async () => {
    const [find, ls] = await Promise.all([
      runCli(['find', deepPath, '--where', 'store.input[0] = 1', '--json']),
      runCli(['ls', deepPath, '--json']),
    ])
    expect(find.code).toBe(0)
    expect(() => JSON.parse(find.stdout)).not.toThrow()
    expect(ls.code).toBe(0)
    expect(parseJsonOut<{ records: unknown[] }>(ls).records).toHaveLength(1)
  })
})
