/**
 * Output conventions of the read commands: --json is one document on stdout and nothing
 * else; colour only when asked for (FORCE_COLOR) and never with NO_COLOR or --no-color.
 */
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { makeSampleBundle, runCli, type SampleBundle, sharedTempDir } from '../helpers/cli.js'

const ANSI = /\u001b\[[0-9;]*m/
const dir = sharedTempDir('retrace-e2e-output-')
let s: SampleBundle

/** The read commands, as argv after `retrace`. */
const commands = (): [string, string[]][] => [
  ['ls', ['ls', s.path]],
  ['show', ['show', s.path, s.records[1]!.id]],
  ['find', ['find', s.path, '--where', 'store.available > 0']],
  ['inspect', ['inspect', s.path]],
  ['doctor', ['doctor']],
]

beforeAll(async () => {
  s = await makeSampleBundle(join(dir(), 'output.sqlite'))
})

describe('--json', () => {
  it('prints exactly one JSON document on stdout and nothing on stderr, for every read command', async () => {
    const results = await Promise.all(commands().map(([, argv]) => runCli([...argv, '--json'])))
    for (const [i, r] of results.entries()) {
      const name = commands()[i]![0]
      expect(r.code, name).toBe(0)
      expect(r.stderr, name).toBe('')
      expect(r.stdout.endsWith('}\n'), name).toBe(true)
      const doc: unknown = JSON.parse(r.stdout)
      expect(typeof doc, name).toBe('object')
      expect(doc, name).not.toBeNull()
    }
  })

  it('has no colour even when colour is forced', async () => {
    const results = await Promise.all(
      commands().map(([, argv]) =>
        runCli([...argv, '--json'], { env: { NO_COLOR: undefined, FORCE_COLOR: '1' } }),
      ),
    )
    for (const r of results) {
      expect(r.code).toBe(0)
      expect(r.stdout).not.toMatch(ANSI)
      expect(() => JSON.parse(r.stdout)).not.toThrow()
    }
  })
})

describe('colour', () => {
  const forced = { NO_COLOR: undefined, FORCE_COLOR: '1' }

  it('is on with FORCE_COLOR=1 when NO_COLOR is unset', async () => {
    const results = await Promise.all(commands().map(([, argv]) => runCli(argv, { env: forced })))
    for (const [i, r] of results.entries()) {
      const name = commands()[i]![0]
      expect(r.code, name).toBe(0)
      expect(r.stdout, name).toMatch(ANSI)
    }
  })

  it('is off with --no-color, even when forced', async () => {
    const results = await Promise.all(
      commands().map(([, argv]) => runCli([...argv, '--no-color'], { env: forced })),
    )
    for (const [i, r] of results.entries()) {
      const name = commands()[i]![0]
      expect(r.code, name).toBe(0)
      expect(r.stdout.length, name).toBeGreaterThan(0)
      expect(r.stdout, name).not.toMatch(ANSI)
    }
  })

  it('is off with NO_COLOR=1', async () => {
    const results = await Promise.all(
      commands().map(([, argv]) => runCli(argv, { env: { NO_COLOR: '1', FORCE_COLOR: undefined } })),
    )
    for (const r of results) {
      expect(r.code).toBe(0)
      expect(r.stdout).not.toMatch(ANSI)
    }
  })

  it('is off when stdout is not a terminal and nothing forces it', async () => {
    const r = await runCli(['show', s.path, s.records[1]!.id], { env: { NO_COLOR: undefined } })
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('seam price → store')
    expect(r.stdout).not.toMatch(ANSI)
  })

  it('never colours the error line on stderr', async () => {
    const r = await runCli(['show', s.path, 'ZZZZZZZZ'], { env: forced })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^retrace: no record "ZZZZZZZZ" in [^\n]+\n$/)
  })
})
