import { describe, expect, it } from 'vitest'
import { openBundle } from '../../src/bundle/reader.js'
import type { RecordUnit } from '../../src/bundle/types.js'
import { BundleWriter } from '../../src/bundle/writer.js'
import { okRecord, withDb } from '../helpers/bundle-db.js'
import { tempPath } from '../helpers/tmp.js'

/** A record part whose every effect names its record, capture and place. */
function part(id: string, stages: string[], effectsPer: (stage: string) => number): RecordUnit {
  return {
    record: okRecord(id),
    captures: stages.map((stage, seq) => ({
      seq,
      stage,
      attempt: 1,
      input: '{}',
      output: '1',
      error: null,
      startedAt: 1000 + seq,
      durationMs: 0.5,
      effects: Array.from({ length: effectsPer(stage) }, (_, k) => ({
        seq: k,
        kind: 'effect' as const,
        name: 'kv.get',
        args: JSON.stringify([id, stage]),
        result: JSON.stringify(`${id}/${stage}/${k}`),
        error: null,
      })),
    })),
  }
}

describe('BundleReader.loadRecords', () => {
  it("gives each capture its own effects, whether the record's capture ids run without a gap or not", () => {
    const path = tempPath()
    const writer = BundleWriter.open(path, {
      manifest: {
        pipeline: 'p',
        recorderVersion: '0.0.0-test',
        builds: ['b1'],
        redaction: { rules: ['defaults'], equalityPreserving: false },
      },
    })
    const two = (): number => 2
    // `a` is continued after `b` was written: its capture ids have a gap, `b`'s do not.
    writer.write([part('a', ['s1', 's2', 's3'], (s) => (s === 's2' ? 0 : 2))])
    writer.write([part('b', ['t1', 't2'], two)])
    writer.write([part('a', ['s4', 's5'], two)])
    writer.close()
    withDb(path, (db) => {
      const ids = db.prepare("SELECT id FROM captures WHERE record_id = 'a' ORDER BY id").pluck().all()
      expect(ids).toEqual([1, 2, 3, 6, 7])
    })
    const reader = openBundle(path)
    try {
      const [a, b, missing] = [...reader.loadRecords(['a', 'b', 'nope'])]
      expect(missing).toBeUndefined()
      const seen = (chain: typeof a) =>
        chain!.captures
          .map((c) => [c.stage, c.effects.map((e) => JSON.parse(e.result!))])
          .sort((x, y) => String(x[0]).localeCompare(String(y[0])))
      expect(seen(a)).toEqual([
        ['s1', ['a/s1/0', 'a/s1/1']],
        ['s2', []],
        ['s3', ['a/s3/0', 'a/s3/1']],
        ['s4', ['a/s4/0', 'a/s4/1']],
        ['s5', ['a/s5/0', 'a/s5/1']],
      ])
      expect(seen(b)).toEqual([
        ['t1', ['b/t1/0', 'b/t1/1']],
        ['t2', ['b/t2/0', 'b/t2/1']],
      ])
    } finally {
      reader.close()
    }
  })
})
