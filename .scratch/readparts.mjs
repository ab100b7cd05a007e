import { performance } from 'node:perf_hooks'
import Database from 'better-sqlite3'
const db = new Database(process.argv[2], { readonly: true })
const ids = db.prepare('SELECT id FROM records ORDER BY started_at, id').pluck().all()
const qs = {
  full: db.prepare('SELECT id, record_id, seq, stage, attempt, input, output, error, started_at, duration_ms, build, host, pid FROM captures WHERE record_id = ? ORDER BY seq, id').raw(),
  noInput: db.prepare('SELECT id, record_id, seq, stage, attempt, output, error, started_at, duration_ms, build, host, pid FROM captures WHERE record_id = ? ORDER BY seq, id').raw(),
  firstInput: db.prepare("SELECT id, record_id, seq, stage, attempt, CASE WHEN seq = 0 THEN input END, output, error, started_at, duration_ms, build, host, pid FROM captures WHERE record_id = ? ORDER BY seq, id").raw(),
  effects: db.prepare('SELECT e.capture_id, e.seq, e.kind, e.name, e.args, e.result, e.error FROM captures c JOIN effects e ON e.capture_id = c.id WHERE c.record_id = ? ORDER BY e.capture_id, e.seq').raw(),
  rec: db.prepare('SELECT * FROM records WHERE id = ?'),
  exp: db.prepare('SELECT record_id, stage, output, error, note, build, accepted_at FROM expectations WHERE record_id = ?'),
}
const res = {}
for (let r = 0; r < 5; r++) for (const [k, q] of Object.entries(qs)) {
  const t = performance.now(); let s = 0
  db.transaction(() => { for (const id of ids) s += q.all(id).length })()
  const us = (performance.now() - t) / ids.length * 1000
  if (r >= 1) (res[k] ??= []).push(us)
}
for (const [k, v] of Object.entries(res)) console.log(k.padEnd(10), v.sort((a, b) => a - b)[2].toFixed(1), 'us/rec')
