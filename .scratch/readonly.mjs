import { performance } from 'node:perf_hooks'
import { BundleSet } from '../dist/bundle/index.js'
import Database from 'better-sqlite3'
const path = process.argv[2]
for (let r = 0; r < 3; r++) {
  const set = BundleSet.open([path])
  const reader = set.readers?.[0] ?? set.bundles?.[0]
  const t0 = performance.now()
  const db = new Database(path, { readonly: true })
  const ids = db.prepare('SELECT id FROM records ORDER BY started_at, id').pluck().all()
  let n = 0, bytes = 0
  const t1 = performance.now()
  const q = db.prepare('SELECT id, record_id, seq, stage, attempt, input, output, error, started_at, duration_ms, build, host, pid FROM captures WHERE record_id = ? ORDER BY seq').raw()
  const qe = db.prepare('SELECT capture_id, seq, kind, name, args, result, error FROM effects WHERE capture_id IN (SELECT id FROM captures WHERE record_id = ?) ORDER BY capture_id, seq').raw()
  for (const id of ids) { for (const c of q.all(id)) bytes += c[5].length + c[6].length; n += qe.all(id).length }
  const t2 = performance.now()
  const q2 = db.prepare('SELECT output FROM captures WHERE record_id = ? ORDER BY seq').pluck()
  for (const id of ids) for (const c of q2.all(id)) bytes += c.length
  const t3 = performance.now()
  console.log('ids', (t1 - t0).toFixed(0), 'caps+effects', ((t2 - t1) / ids.length * 1000).toFixed(1), 'us/rec', 'outputs only', ((t3 - t2) / ids.length * 1000).toFixed(1), 'us/rec', n)
  db.close(); set.close()
}
