/**
 * Secrets, counted: unique canary values in every place a payload can hold one (stage
 * inputs on the plain and the tagged path, outputs, effect arguments and results, sync and
 * async, nested arrays, Map values, Set members), under each kind of rule (default secret
 * key names, path rules, a function rule). After recording with redaction, no canary byte
 * is in the bundle, in its WAL while the recorder is still open, or in the closed file
 * (free pages included: the scan reads every byte of the file).
 *
 * Two places are not redacted by design and serve as the control that the scan sees the
 * data: Map keys (keys are structure, like object keys) and thrown errors' messages.
 * test/recorder/redaction.test.ts pins the token format and equality; this is the count form.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { Recorder } from '../../src/index.js'
import { bundleFiles, countBytes, withDb } from '../helpers/bundle-db.js'
import { testRecorder } from '../helpers/recorder.js'
import { reportFault, scale } from './kit.js'

const records = scale(3000, 300)

/** Places a canary goes, per rule family; the recorder is told all rules at once. */
const places = [
  'input (plain JSON)',
  'input (tagged, beside a BigInt)',
  'output',
  'effect args',
  'effect result',
  'async effect args',
  'async effect result',
  'nested arrays',
  'Map value',
  'Set member',
  'object inside a Map value',
] as const

type Family = 'A' | 'B' | 'C'

/**
 * The payload of one family: A puts canaries under default secret key names, B under
 * paths named by rules, C under innocuous keys where only the function rule finds them.
 */
function secretsFor(
  family: Family,
  i: number,
): { input: unknown; tagged: unknown; output: unknown; args: unknown; result: unknown } {
  const c = (place: string): string => `CANARY-${family}-${place}-${i}`
  switch (family) {
    case 'A':
      return {
        input: { password: c('in'), nested: [[{ token: c('nest') }]], ok: 'VISIBLE-MARKER' },
        tagged: {
          big: BigInt(i),
          apiKey: c('tag'),
          m: new Map<string, unknown>([
            ['secret', c('map')],
            ['x', { authorization: c('mapobj') }],
          ]),
          s: { password: new Set([c('set')]) },
        },
        output: { refresh_token: c('out') },
        args: { client_secret: c('args') },
        result: { cookie: c('res') },
      }
    case 'B':
      return {
        input: { customer: { phone: c('in') }, items: [{ cvv: c('nest') }, { cvv: c('nest2') }] },
        tagged: {
          big: BigInt(i),
          card: c('tag'),
          m: new Map<string, unknown>([
            ['card', c('map')],
            ['x', { card: c('mapobj') }],
          ]),
          tags: new Set([c('set')]),
        },
        output: { customer: { phone: c('out') } },
        args: { card: c('args') },
        result: { items: [{ cvv: c('res') }] },
      }
    default:
      return {
        input: { note: c('in'), list: [[c('nest')]] },
        tagged: {
          big: BigInt(i),
          memo: c('tag'),
          m: new Map<string, unknown>([
            ['k', c('map')],
            ['x', { y: c('mapobj') }],
          ]),
          s: new Set([c('set')]),
        },
        output: { text: c('out') },
        args: [c('args')],
        result: c('res'),
      }
  }
}

async function recordSecrets(recorder: Recorder): Promise<void> {
  const ingest = recorder.stage('ingest', (p: { input: unknown; tagged: unknown }) => ({
    a: p.input,
    b: p.tagged,
  }))
  const enrich = recorder.stage('enrich', async (v: unknown, ctx) => {
    const sync = ctx.effect('kv.get', current.args, () => current.result)
    const remote = await ctx.effect('http.get', current.args, async () => current.result)
    return { v, sync, remote }
  })
  const emit = recorder.stage('emit', () => current.output)
  let current = secretsFor('A', 0)
  for (let i = 0; i < records; i++) {
    const family = (['A', 'B', 'C'] as const)[i % 3]!
    current = secretsFor(family, i)
    await recorder
      .record(`order:${i}`, async () => {
        await emit(await enrich(await ingest({ input: current.input, tagged: current.tagged })))
        // Not redacted by design: a Map key, and the message of what a stage throws.
        await recorder.stage('control', () => {
          if (i % 10 === 0) throw new Error(`KEPT-error-${i}`)
          return new Map<string, unknown>([[`KEPT-mapkey-${i}`, 1]])
        })(null)
      })
      .catch(() => undefined)
    // Let the writer's acknowledgements in, as a service's event loop would; a loop that
    // never yields fills the queue (10,000 captures) and the recorder drops, by design.
    if (i % 50 === 49) await new Promise((resolve) => setImmediate(resolve))
  }
}

/** A few canaries found, with the bytes before them, to say where they leaked. */
function canarySamples(path: string): string[] {
  const out: string[] = []
  for (const file of bundleFiles(path)) {
    const text = readFileSync(file, 'latin1')
    for (const m of text.matchAll(/CANARY-[\w-]+/g)) {
      if (out.length >= 8) return out
      out.push(
        `${m[0]} after ${JSON.stringify(text.slice(Math.max(0, m.index - 60), m.index).replace(/[^\x20-\x7e]/g, '.'))}`,
      )
    }
  }
  return out
}

describe('canaries in every place a payload holds them', () => {
  it(`leave no byte in the bundle, its WAL or the closed file (${records} records)`, {
    timeout: 30 * 60_000,
  }, async () => {
    const { path, recorder, errors } = testRecorder({
      redact: [
        '$..customer.phone',
        '$.items[*].cvv',
        '$..items[*].cvv',
        '$..card',
        '$..tags[*]',
        (_p, v) => typeof v === 'string' && v.startsWith('CANARY-C-'),
      ],
      redactKey: 'fault-suite-key-of-32-characters',
      flushIntervalMs: 20,
    })
    await recordSecrets(recorder)
    await recorder.flush()
    const openFiles = bundleFiles(path).map((f) => f.slice(path.length) || 'bundle')
    const inOpen = countBytes(path, 'CANARY-')
    const visibleOpen = countBytes(path, 'VISIBLE-MARKER')
    await recorder.close()
    const inClosed = countBytes(path, 'CANARY-')
    const keptClosed = countBytes(path, 'KEPT-')
    const visibleClosed = countBytes(path, 'VISIBLE-MARKER')
    const stats = recorder.stats()
    const free = withDb(path, (db) => db.pragma('freelist_count', { simple: true }) as number, true)
    const tokens = withDb(
      path,
      (db) =>
        db
          .prepare(
            "SELECT count(*) FROM captures WHERE instr(coalesce(input, '') || coalesce(output, ''), '[redacted:') > 0",
          )
          .pluck()
          .get() as number,
      true,
    )

    expect(errors).toEqual([])
    expect(stats.dropped).toBe(0)
    expect(openFiles).toContain('-wal')
    expect(visibleOpen).toBeGreaterThan(0)
    expect(visibleClosed).toBeGreaterThanOrEqual(records / 3)
    // Every record holds one (a Map key) or two (an error, on the capture and the record).
    expect(keptClosed).toBe(records + records / 10)
    expect(tokens).toBeGreaterThan(0)
    expect({ inOpen, samples: inOpen > 0 ? canarySamples(path) : [] }).toEqual({ inOpen: 0, samples: [] })
    expect({ inClosed, samples: inClosed > 0 ? canarySamples(path) : [] }).toEqual({
      inClosed: 0,
      samples: [],
    })
    const placed = records * places.length
    reportFault(
      'secrets',
      `${placed} canaries (${records} records x ${places.length} places: ${places.join(', ')}; rules: default secret ` +
        `key names, path rules, a function rule): ${inOpen} canary bytes in bundle + WAL while open ` +
        `(${openFiles.join(', ')}), ${inClosed} in the closed file (${free} free pages); control, not redacted ` +
        `by design: ${keptClosed} Map-key and error-message markers found, as expected`,
    )
  })
})
