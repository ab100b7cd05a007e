/**
 * Host safety: the recorder inside a real host process (test/faults/children/host.mjs)
 * under each fault, compared with the same stage functions run bare in the same process.
 * For every fault: the host's results and exceptions are exactly those of the bare run
 * (the very objects the stages returned and threw), nothing escapes as an uncaught
 * exception or unhandled rejection, the process exits normally, and the counters add up
 * (written + dropped = captures attempted) and say why something was dropped.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { integrityCheck, withDb } from '../helpers/bundle-db.js'
import { tempDir } from '../helpers/tmp.js'
import { mapLimit, reportFault, requireBuild, runNode, scale } from './kit.js'

beforeAll(requireBuild)

const records = scale(2000, 200)
/** `ulimit -f` in 1 KiB blocks: room for the schema and a few batches, not for the run. */
const fileLimitKiB = 2048
const root = process.getuid?.() === 0

interface HostReport {
  variant: string
  records: number
  attempts: number
  threw: number
  differences: { i: number; recorded: string; bare: string }[]
  differenceCount: number
  escaped: string[]
  stats: {
    captured: number
    dropped: number
    written: number
    errors: number
    droppedBy: { queueFull: number; writeFailed: number; closed: number }
  }
  errorCodes: string[]
}

interface Variant {
  name: string
  /** What the fault is, for the report. */
  fault: string
  /** Where the bundle goes (the directory exists unless the variant says otherwise). */
  path: (dir: string) => string
  shellPrefix?: string
  hugeCount?: number
  /** Marker reasons the bundle must hold (payload faults). */
  markers?: string[]
  check: (r: HostReport, path: string) => void
}

const sqliteCode = /^SQLITE_/

const variants: Variant[] = [
  {
    name: 'plain',
    fault: 'none (control)',
    path: (d) => join(d, 'b.sqlite'),
    check: (r) => {
      expect(r.stats).toMatchObject({ dropped: 0, errors: 0, written: r.attempts })
    },
  },
  {
    name: 'disk-full',
    fault: `file-size limit (ulimit -f ${fileLimitKiB})`,
    path: (d) => join(d, 'b.sqlite'),
    shellPrefix: `ulimit -f ${fileLimitKiB};`,
    check: (r, path) => {
      expect(r.stats.droppedBy.writeFailed).toBeGreaterThan(0)
      expect(r.errorCodes.some((c) => sqliteCode.test(c))).toBe(true)
      for (const f of [path, `${path}-wal`]) {
        if (existsSync(f)) expect(statSync(f).size).toBeLessThanOrEqual(fileLimitKiB * 1024)
      }
      // What did commit is still a sound file.
      expect(integrityCheck(path)).toBe('ok')
    },
  },
  {
    name: 'busy',
    fault: 'another connection holds BEGIN EXCLUSIVE for 3 s',
    path: (d) => join(d, 'b.sqlite'),
    check: (r, path) => {
      expect(r.stats.droppedBy.writeFailed).toBeGreaterThan(0)
      expect(r.errorCodes).toContain('SQLITE_BUSY')
      // Writing resumed once the lock was gone.
      expect(r.stats.written).toBeGreaterThan(0)
      expect(integrityCheck(path)).toBe('ok')
    },
  },
  {
    name: 'vanished',
    fault: 'the bundle directory is removed (rm -rf) mid-run',
    path: (d) => join(d, 'gone', 'b.sqlite'),
    check: (r, path) => {
      expect(existsSync(path)).toBe(false)
      expect(r.stats.droppedBy.writeFailed).toBeGreaterThan(0)
      expect(r.errorCodes).toContain('E_BUNDLE_GONE')
    },
  },
  {
    name: 'unwritable',
    // Root ignores directory modes; /proc refuses new files even to root.
    fault: root ? 'bundle path in /proc/self (not writable, even for root)' : 'directory mode 0500',
    path: (d) => (root ? join('/proc/self', 'retrace-fault.sqlite') : join(d, 'ro', 'b.sqlite')),
    check: (r) => {
      expect(r.stats.written).toBe(0)
      expect(r.stats.droppedBy.writeFailed).toBe(r.attempts)
      expect(r.errorCodes.length).toBeGreaterThan(0)
    },
  },
  {
    name: 'cyclic',
    fault: 'cyclic inputs, outputs and effect arguments',
    path: (d) => join(d, 'b.sqlite'),
    markers: ['cyclic'],
    check: (r) => {
      expect(r.stats.dropped).toBe(0)
      expect(r.errorCodes).toEqual(['E_PAYLOAD'])
    },
  },
  {
    name: 'bigint',
    fault: 'BigInt values (also as Map keys)',
    path: (d) => join(d, 'b.sqlite'),
    markers: [],
    check: (r) => {
      expect(r.stats).toMatchObject({ dropped: 0, errors: 0 })
    },
  },
  {
    name: 'huge',
    fault: '50 MB string payloads',
    path: (d) => join(d, 'b.sqlite'),
    hugeCount: scale(3, 1),
    markers: ['too-large'],
    check: (r) => {
      expect(r.stats.dropped).toBe(0)
      expect(r.errorCodes).toEqual(['E_PAYLOAD'])
    },
  },
  {
    name: 'deep',
    fault: '10,000-deep objects',
    path: (d) => join(d, 'b.sqlite'),
    markers: ['too-deep'],
    check: (r) => {
      expect(r.stats.dropped).toBe(0)
      expect(r.errorCodes).toEqual(['E_PAYLOAD'])
    },
  },
  {
    name: 'hostile',
    fault:
      'throwing getters, revoked and throwing Proxies, throwing toJSON/iterators; revoked Proxies and ' +
      'errors with throwing getters thrown by stages and effects; an effect name whose toString throws; object keys',
    path: (d) => join(d, 'b.sqlite'),
    markers: ['unserialisable'],
    check: (r) => {
      expect(r.stats.dropped).toBe(0)
      expect(r.errorCodes).toEqual(['E_PAYLOAD'])
    },
  },
  {
    name: 'redact-throws',
    fault: 'a redaction rule that throws (an Error, and a revoked Proxy)',
    path: (d) => join(d, 'b.sqlite'),
    markers: ['redaction-failed'],
    check: (r) => {
      expect(r.stats.dropped).toBe(0)
      expect(r.errorCodes).toEqual(['E_REDACT'])
    },
  },
]

/** Unrecorded markers in the bundle, by reason, over every payload column. */
function markerReasons(path: string): Record<string, number> {
  return withDb(
    path,
    (db) => {
      const out: Record<string, number> = {}
      const sources = [
        'SELECT input AS p FROM captures UNION ALL SELECT output FROM captures',
        'SELECT args AS p FROM effects UNION ALL SELECT result FROM effects',
      ]
      for (const sql of sources) {
        const rows = db
          .prepare(
            `SELECT json_extract(p, '$.reason') AS reason, count(*) AS n FROM (${sql})
             WHERE json_valid(p) AND json_type(p) = 'object' AND json_extract(p, '$."$t"') = 'unrecorded'
             GROUP BY reason`,
          )
          .all() as { reason: string; n: number }[]
        for (const r of rows) out[r.reason] = (out[r.reason] ?? 0) + r.n
      }
      return out
    },
    true,
  )
}

describe('the host under faults', () => {
  it(`sees exactly what its stages return and throw, ${records} records per fault`, {
    timeout: 30 * 60_000,
  }, async () => {
    const dir = tempDir('retrace-faults-host-')
    const results = await mapLimit(variants, 2, async (v) => {
      const vdir = join(dir, v.name)
      mkdirSync(vdir)
      if (v.name === 'vanished') mkdirSync(join(vdir, 'gone'))
      if (v.name === 'unwritable' && !root) mkdirSync(join(vdir, 'ro'), { mode: 0o500 })
      const path = v.path(vdir)
      const run = await runNode('host.mjs', [v.name, path, String(records), String(v.hugeCount ?? 0)], {
        timeoutMs: 10 * 60_000,
        ...(v.shellPrefix !== undefined ? { shellPrefix: v.shellPrefix } : {}),
      })
      return { v, path, run }
    })

    const lines: string[] = []
    let differences = 0
    let escapes = 0
    for (const { v, path, run } of results) {
      const label = `${v.name}: ${run.stderr}`
      expect(run.timedOut, label).toBe(false)
      expect(run.signal, label).toBeNull()
      expect(run.code, label).toBe(0)
      expect(run.stderr, label).toBe('')
      const r = JSON.parse(run.stdout) as HostReport
      differences += r.differenceCount
      escapes += r.escaped.length
      expect({ variant: v.name, differences: r.differences, escaped: r.escaped }).toEqual({
        variant: v.name,
        differences: [],
        escaped: [],
      })
      expect(r.records, v.name).toBeGreaterThanOrEqual(records)
      expect(r.threw, `${v.name}: the workload includes failing records`).toBeGreaterThan(0)
      // Every capture attempted is accounted for, once.
      expect(r.stats.written + r.stats.dropped, v.name).toBe(r.attempts)
      v.check(r, path)
      let markers = ''
      if (v.markers !== undefined) {
        const reasons = markerReasons(path)
        expect(
          Object.keys(reasons).sort(),
          `${v.name}: unrecorded markers and only the expected reasons`,
        ).toEqual([...v.markers].sort())
        markers = `; markers ${JSON.stringify(reasons)}`
      }
      const s = r.stats
      lines.push(
        `${v.name} [${v.fault}]: ${r.records} records, ${r.attempts} captures attempted, ${r.threw} records threw; ` +
          `written ${s.written}, dropped ${s.dropped} (write failed ${s.droppedBy.writeFailed}, queue full ` +
          `${s.droppedBy.queueFull}), errors ${s.errors}, codes ${r.errorCodes.join(',') || '-'}${markers}; ` +
          `host took ${run.ms} ms`,
      )
    }
    reportFault(
      'host',
      `${variants.length} faults x ${records}+ records: ${differences} differences from the bare run in ` +
        `results or exceptions, ${escapes} uncaught exceptions or unhandled rejections`,
    )
    for (const line of lines) reportFault('host', line)
  })
})
