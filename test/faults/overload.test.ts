/**
 * Overload: a host producing records flat out, faster than the writer thread can commit
 * them, for a bounded time. The queue bound holds memory flat; what does not fit is
 * dropped and counted (queue full), and every capture attempted is either written or
 * counted as dropped. test/recorder/resilience.test.ts checks the queue bound with a tiny
 * queue in-process; this is the sustained form, with the process's RSS measured.
 */
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { withDb } from '../helpers/bundle-db.js'
import { tempDir } from '../helpers/tmp.js'
import { full, reportFault, requireBuild, runNode, scale } from './kit.js'

beforeAll(requireBuild)

const seconds = scale(15, 3)

interface Stats {
  captured: number
  dropped: number
  written: number
  errors: number
  droppedBy: { queueFull: number; writeFailed: number; closed: number }
}

interface OverloadReport {
  records: number
  attempts: number
  produceMs: number
  atStop: Stats
  stats: Stats
  errorCodes: string[]
  escaped: string[]
  rssMiB: { baseline: number; peak: number; quarters: number[] }
}

describe('a producer faster than the writer', () => {
  // The default queue (10,000) at full size only: in a short run on a loaded machine it may
  // not fill before the time is up.
  for (const maxQueue of full ? [1_000, 10_000] : [1_000]) {
    it(`drops and counts, with memory bounded by the queue (maxQueue ${maxQueue}, ${seconds} s)`, {
      timeout: (4 * seconds + 180) * 1000,
    }, async () => {
      const path = join(tempDir('retrace-faults-overload-'), 'b.sqlite')
      const run = await runNode('overload.mjs', [path, String(seconds), String(maxQueue)], {
        timeoutMs: (4 * seconds + 120) * 1000,
      })
      expect(run.stderr).toBe('')
      expect(run.code).toBe(0)
      const r = JSON.parse(run.stdout) as OverloadReport
      expect(r.escaped).toEqual([])
      expect(r.stats.dropped).toBeGreaterThan(0)
      expect(r.stats.droppedBy.queueFull).toBe(r.stats.dropped)
      expect(r.stats.written + r.stats.dropped).toBe(r.attempts)
      expect(r.errorCodes).toEqual(['E_QUEUE_FULL'])
      // Far above anything the queue bound allows; the figure itself goes in the report.
      expect(r.rssMiB.peak - r.rssMiB.baseline).toBeLessThan(1024)
      // Whole records only, and exactly what the counters say was written.
      const [records, captures] = withDb(path, (db) => [
        db.prepare('SELECT count(*) FROM records').pluck().get() as number,
        db.prepare('SELECT count(*) FROM captures').pluck().get() as number,
      ])
      expect(captures).toBe(r.stats.written)
      expect(captures).toBe(records * 3)

      const offeredPerS = Math.round(r.attempts / (r.produceMs / 1000))
      const writtenPerS = Math.round(r.atStop.written / (r.produceMs / 1000))
      reportFault(
        'overload',
        `maxQueue ${maxQueue}, ${(r.produceMs / 1000).toFixed(1)} s: ${r.attempts} captures offered (${offeredPerS}/s), writer committed ` +
          `${writtenPerS}/s while producing (producer at ${(offeredPerS / writtenPerS).toFixed(1)}x the writer), ` +
          `${r.stats.dropped} dropped as queue full (${((100 * r.stats.dropped) / r.attempts).toFixed(1)}%), ` +
          `written ${r.stats.written} + dropped ${r.stats.dropped} = ${r.attempts} attempted; ` +
          `RSS ${r.rssMiB.baseline} MiB before, peak ${r.rssMiB.peak} MiB (growth ${r.rssMiB.peak - r.rssMiB.baseline} MiB), ` +
          `by quarter ${r.rssMiB.quarters.join('/')} MiB`,
      )
    })
  }
})
