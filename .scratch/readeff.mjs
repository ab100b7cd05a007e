import { performance } from 'node:perf_hooks'
import Database from 'better-sqlite3'
const db = new Database(process.argv[2], { readonly: true })
const ids = db.prepare('SELECT id FROM records ORDER BY started_at, id').pluck().all()
const caps = db.prepare('SELECT id FROM captures WHERE record_id = ? ORDER BY seq, id').pluck()
const capIds = ids.map((id) => caps.all(id))
const join = db.prepare('SELECT e.capture_id, e.seq, e.kind, e.name, e.args, e.result, e.error FROM captures c JOIN effects e ON e.capture_id = c.id WHERE c.record_id = ? ORDER BY e.capture_id, e.seq').raw()
const range = db.prepare('SELECT capture_id, seq, kind, name, args, result, error FROM effects WHERE capture_id BETWEEN ? AND ? ORDER BY capture_id, seq').raw()
const one = db.prepare('SELECT capture_id, seq, kind, name, args, result, error FROM effects WHERE capture_id = ? ORDER BY seq').raw()
const res = {}
for (let r = 0; r < 5; r++) {
  const runs = {
    join: () => { let s = 0; for (const id of ids) s += join.all(id).length; return s },
    range: () => { let s = 0; for (const c of capIds) s += range.all(c[0], c[c.length - 1]).length; return s },
    perCapture: () => { let s = 0; for (const c of capIds) for (const x of c) s += one.all(x).length; return s },
  }
  for (const [k, f] of Object.entries(runs)) { const t = performance.now(); const n = db.transaction(f)(); const us = (performance.now() - t) / ids.length * 1000; if (r) (res[k] ??= []).push(us); if (r === 1) console.log(k, n) }
}
for (const [k, v] of Object.entries(res)) console.log(k.padEnd(10), v.sort((a, b) => a - b)[2].toFixed(1), 'us/rec')
