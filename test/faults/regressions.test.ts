/**
 * Regression tests for the defects the fault suite found, one `describe` each, small and
 * in-process, so each fix stays pinned even when the suite runs at its bounded size.
 * docs/reliability.md lists them with the scenario that found them.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { openBundle } from '../../src/bundle/index.js'
import { decode, encode, PayloadError, RedactionFailed, Redactor } from '../../src/codec/index.js'
import { diffValues } from '../../src/compare/diff.js'
import { compileRules } from '../../src/compare/rules.js'
import type { StageContext } from '../../src/index.js'
import { compact } from '../../src/render/format.js'
import { installNetworkGuard, NetworkBlocked, offline } from '../../src/replay/network-guard.js'
import { readBundle } from '../helpers/bundle-db.js'
import { testRecorder } from '../helpers/recorder.js'
import { tempDir } from '../helpers/tmp.js'

function revoked(): object {
  const p = Proxy.revocable({}, {})
  p.revoke()
  return p.proxy
}

function errorWithThrowingMessage(): Error {
  const e = new Error('x')
  Object.defineProperty(e, 'message', {
    get() {
      throw new Error('message getter throws')
    },
  })
  return e
}

function thrownBy(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

describe('encode: a value whose reading throws is unserialisable, not a redaction failure', () => {
  const hostile: [string, unknown][] = [
    [
      'a throwing getter (plain path)',
      {
        get boom() {
          throw new Error('getter')
        },
      },
    ],
    ['a revoked Proxy beside a BigInt (tagged path)', { big: 1n, inner: revoked() }],
    [
      'a throwing toJSON',
      {
        toJSON() {
          throw new Error('toJSON')
        },
      },
    ],
    ['a revoked Proxy at the top', revoked()],
  ]

  for (const [name, value] of hostile) {
    it(`${name}: PayloadError(unserialisable), with and without redaction rules`, () => {
      for (const redactor of [undefined, new Redactor({ rules: ['$.x'] })]) {
        const err = thrownBy(() => encode(value, undefined, redactor))
        expect(err).toBeInstanceOf(PayloadError)
        expect((err as PayloadError).problem).toBe('unserialisable')
      }
    })
  }

  it('a rule that throws is still RedactionFailed, also when it throws a revoked Proxy', () => {
    for (const thrown of [new Error('rule bug'), revoked()]) {
      const redactor = new Redactor({
        rules: [
          () => {
            throw thrown
          },
        ],
      })
      const err = thrownBy(() => encode({ a: 1 }, undefined, redactor))
      expect(err).toBeInstanceOf(RedactionFailed)
    }
  })
})

describe('redaction: function rules see the top-level value', () => {
  it('redacts a payload that is itself the secret; path rules still name places inside', () => {
    const byValue = new Redactor({
      rules: [(_p, v) => typeof v === 'string' && v.startsWith('sk_')],
      defaults: false,
    })
    expect(encode('sk_live_secret', undefined, byValue)).toBe('"[redacted]"')
    expect(encode(['sk_live_secret'], undefined, byValue)).toBe('["[redacted]"]')
    const byPath = new Redactor({ rules: ['$..*'], defaults: false })
    expect(encode('kept', undefined, byPath)).toBe('"kept"')
  })

  it('an effect result that is a bare secret string never reaches the bundle', async () => {
    const { path, recorder } = testRecorder({
      redact: [(_p, v) => typeof v === 'string' && v.startsWith('sk_')],
      flushIntervalMs: 5,
    })
    const s = recorder.stage('s', (_: unknown, ctx: StageContext) =>
      ctx.effect('vault.read', 'api', () => 'sk_live_123'),
    )
    expect(await recorder.record('k', () => s(null))).toBe('sk_live_123')
    await recorder.close()
    expect(JSON.stringify(readBundle(path))).not.toContain('sk_live_123')
  })
})

describe('recorder: what the host throws and names comes back untouched', () => {
  it('an effect that throws a revoked Proxy or an Error with a throwing getter rethrows that very value', async () => {
    const { recorder } = testRecorder({ flushIntervalMs: 5 })
    const failures = [revoked(), errorWithThrowingMessage(), revoked()]
    const seen: unknown[] = []
    const s = recorder.stage('s', async (_: unknown, ctx: StageContext) => {
      try {
        ctx.effect('sync', 1, () => {
          throw failures[0]
        })
      } catch (err) {
        seen.push(err)
      }
      for (const f of failures.slice(1)) {
        try {
          await ctx.effect('async', 1, async () => {
            throw f
          })
        } catch (err) {
          seen.push(err)
        }
      }
      return 'ok'
    })
    expect(await recorder.record('k', () => s(null))).toBe('ok')
    expect(seen).toHaveLength(3)
    expect(seen.map((err, i) => err === failures[i])).toEqual([true, true, true])
  })

  it('an effect name whose toString throws: the effect still runs and returns', async () => {
    const { recorder } = testRecorder({ flushIntervalMs: 5 })
    const name = {
      toString(): string {
        throw new Error('no name')
      },
    }
    const s = recorder.stage('s', (_: unknown, ctx: StageContext) =>
      ctx.effect(name as unknown as string, 1, () => 42),
    )
    expect(await recorder.record('k', () => s(null))).toBe(42)
  })

  it('a record key or stage name that is not a string does not lose the batch or stop the recorder', async () => {
    const { path, recorder, errors } = testRecorder({ flushIntervalMs: 5 })
    const named = recorder.stage(Symbol('stage') as unknown as string, (n: number) => n)
    const plain = recorder.stage('plain', (n: number) => n)
    await recorder.record({ id: 1 } as unknown as string, () => named(1))
    await recorder.record(Symbol('key') as unknown as string, () => plain(2))
    await recorder.record('k:3', () => plain(3))
    await recorder.close()
    expect(errors).toEqual([])
    expect(recorder.stats()).toMatchObject({ captured: 3, written: 3, dropped: 0 })
    const { records, captures } = readBundle(path)
    expect(records.map((r) => r.key).sort()).toEqual(['Symbol(key)', '[object Object]', 'k:3'])
    expect(captures.map((c) => c.stage).sort()).toEqual(['Symbol(stage)', 'plain', 'plain'])
  })

  it('a stage key function that throws a revoked Proxy: the stage still runs, unrecorded', async () => {
    const { recorder, errors } = testRecorder({ flushIntervalMs: 5 })
    const s = recorder.stage('s', (n: number) => n * 2, {
      key: () => {
        throw revoked()
      },
    })
    expect(await s(21)).toBe(42)
    expect(errors.map((e) => e.code)).toEqual(['E_KEY'])
  })

  it('a stage that returns a revoked Proxy rejects as `await` would, without throwing synchronously', async () => {
    const { recorder } = testRecorder({ flushIntervalMs: 5 })
    const s = recorder.stage('s', () => revoked())
    let sync: unknown
    let promise: Promise<unknown> | undefined
    await recorder.record('k', () => {
      try {
        promise = s(null)
      } catch (err) {
        sync = err
      }
    })
    expect(sync).toBeUndefined()
    await expect(promise).rejects.toThrow(TypeError)
  })
})

describe('writer: a bundle deleted while recording', () => {
  it('stops writing into the unlinked file and counts what it could not write as dropped', async () => {
    const dir = join(tempDir(), 'gone')
    mkdirSync(dir)
    const { recorder, errors } = testRecorder({ path: join(dir, 'b.sqlite'), flushIntervalMs: 5 })
    const s = recorder.stage('s', (n: number) => n)
    await recorder.record('first', () => s(0))
    await recorder.flush()
    rmSync(dir, { recursive: true, force: true })
    for (let i = 0; i < 5; i++) await recorder.record(`k:${i}`, () => s(i))
    await recorder.close()
    const stats = recorder.stats()
    expect(errors.map((e) => e.code)).toContain('E_BUNDLE_GONE')
    expect(stats.written + stats.dropped).toBe(6)
    expect(stats.droppedBy.writeFailed).toBeGreaterThanOrEqual(5)
  })
})

describe('diff: an ignored subtree that did not change', () => {
  it('is not listed as suppressed (a Date tag is an object, so identity does not tell)', () => {
    const rules = compileRules({ ignore: ['$..updatedAt'] })
    const at = () => ({ $t: 'date', v: '2026-01-01T00:00:00.000Z' })
    expect(diffValues({ updatedAt: at(), n: 1 }, { updatedAt: at(), n: 1 }, rules)).toEqual({
      changes: [],
      suppressed: [],
      truncated: null,
    })
    const changed = diffValues(
      { updatedAt: at() },
      { updatedAt: { $t: 'date', v: '2027-01-01T00:00:00.000Z' } },
      rules,
    )
    expect(changed.suppressed.map((x) => [x.path, x.reason])).toEqual([['$.updatedAt', 'ignored']])
  })
})

describe('reader: a stage name holding the unit separator', () => {
  it('is listed as one stage, not split in two', async () => {
    const { path, recorder } = testRecorder({ flushIntervalMs: 5 })
    const s = recorder.stage('a\u001fb', (n: number) => n)
    const t = recorder.stage('c', (n: number) => n)
    await recorder.record('k', async () => t(await s(1)))
    await recorder.close()
    const reader = openBundle(path)
    try {
      expect([...reader.records()].map((r) => r.stages)).toEqual([['a\u001fb', 'c']])
    } finally {
      reader.close()
    }
  })
})

describe('network guard: references a module kept while it loaded', () => {
  it('are refused too, once the guard is installed before the module loads', async () => {
    installNetworkGuard()
    // What `const { spawn } = require('node:child_process')` at the top of a stage keeps.
    const { spawn } = createRequire(import.meta.url)(
      'node:child_process',
    ) as typeof import('node:child_process')
    const spawned = vi.fn()
    const { outcome, blocked } = await offline('s', async () => {
      spawned(spawn(process.execPath, ['-e', '0']))
    })
    expect(outcome.ok).toBe(false)
    expect(blocked[0]).toBeInstanceOf(NetworkBlocked)
    expect(spawned).not.toHaveBeenCalled()
  })
})

describe("typed-JSON tags whose fields are objects (a stranger's file)", () => {
  const trap = { toString: '' }

  it('decode gives the value it can, never a TypeError', () => {
    expect(decode('{"$t":"num","v":{"toString":""}}')).toBeNaN()
    expect(decode('{"$t":"bigint","v":{"toString":""}}')).toBeNaN()
    const err = decode('{"$t":"error","v":{"message":{"toString":""},"name":{"valueOf":""}}}') as Error
    expect([err.name, err.message]).toEqual(['Error', ''])
  })

  it('the one-line renderer shows them as JSON instead of calling their toString', () => {
    expect(compact({ $t: 'unrecorded', reason: trap, size: trap })).toBe(
      '<unrecorded: {"toString":""}, {"toString":""} bytes>',
    )
    expect(compact({ $t: 'date', v: trap })).toBe('Date({"toString":""})')
    expect(compact({ $t: 'unreadable', message: trap })).toBe('<unreadable payload: {"toString":""}>')
  })
})
