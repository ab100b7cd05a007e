import { AsyncLocalStorage } from 'node:async_hooks'
const als = new AsyncLocalStorage()
const N = 200000
let sink = 0
const fn = async (input, ctx) => ({ qty: input.qty + 1, at: ctx.attempt })
const inputs = Array.from({ length: 1024 }, (_, i) => ({ qty: i }))
const ctx0 = { key: 'k', recordId: '', stage: 's', attempt: 1, now: Date.now, random: Math.random, effect: (_n, _a, f) => f() }
const owner = {}
const rec = { owner, key: 'k', id: 'r', sampled: false, ended: false, attempts: new Map() }
const stats = { sampledOut: 0 }
const passEff = (_n, _a, f) => f()
function openRecordOf(o) { for (let x = als.getStore(); x !== undefined; x = x.outer) if (x.owner === o) return x.rec; return undefined }
function ctxA(rec, stage, attempt) { return { key: rec?.key ?? '', recordId: rec?.id ?? '', stage, attempt, now: Date.now, random: Math.random, effect: (_n, _a, f) => f() } }
function ctxB(rec, stage, attempt) { return { key: rec?.key ?? '', recordId: rec?.id ?? '', stage, attempt, now: Date.now, random: Math.random, effect: passEff } }
const variants = {
  bare: (x) => fn(x, ctx0),
  full: function (x) { const f = this === undefined ? fn : (i, c) => fn.call(this, i, c); const r = openRecordOf(owner); if (r === undefined || r.ended) return null; if (!r.sampled) { stats.sampledOut++; const a = (r.attempts.get('s') ?? 0) + 1; r.attempts.set('s', a); try { return Promise.resolve(f(x, ctxA(r, 's', a))) } catch (e) { return Promise.reject(e) } } },
  hoisted: function (x) { const f = this === undefined ? fn : (i, c) => fn.call(this, i, c); const r = openRecordOf(owner); if (r === undefined || r.ended) return null; if (!r.sampled) { stats.sampledOut++; const a = (r.attempts.get('s') ?? 0) + 1; r.attempts.set('s', a); try { return Promise.resolve(f(x, ctxB(r, 's', a))) } catch (e) { return Promise.reject(e) } } },
  noMap: function (x) { const f = this === undefined ? fn : (i, c) => fn.call(this, i, c); const r = openRecordOf(owner); if (r === undefined || r.ended) return null; if (!r.sampled) { stats.sampledOut++; try { return Promise.resolve(f(x, ctxB(r, 's', 1))) } catch (e) { return Promise.reject(e) } } },
  noAls: function (x) { const f = this === undefined ? fn : (i, c) => fn.call(this, i, c); const r = rec; if (!r.sampled) { stats.sampledOut++; const a = (r.attempts.get('s') ?? 0) + 1; r.attempts.set('s', a); try { return Promise.resolve(f(x, ctxB(r, 's', a))) } catch (e) { return Promise.reject(e) } } },
}
async function chunk(v) { const t = performance.now(); for (let i = 0; i < N; i++) sink += (await v(inputs[i & 1023])).qty; return performance.now() - t }
await als.run({ owner, rec, outer: undefined }, async () => {
  const res = Object.fromEntries(Object.keys(variants).map((k) => [k, []]))
  for (let r = 0; r < 30; r++) for (const k of Object.keys(variants)) { const ms = await chunk(variants[k]); if (r >= 5) res[k].push(ms * 1e6 / N) }
  const med = (a) => a.sort((x, y) => x - y)[a.length >> 1]
  const b = med(res.bare)
  for (const k of Object.keys(res)) console.log(k, med(res[k]).toFixed(1), (med(res[k]) - b).toFixed(1))
})
