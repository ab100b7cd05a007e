import { createRecorder } from '/work/main/dist/index.js'
import Database from 'better-sqlite3'
const path = '/tmp/urltest.sqlite'
import { rmSync } from 'node:fs'
rmSync(path, { force: true })
const r = createRecorder({ path })
const s = r.stage('fetch', (input) => ({ ok: true, url: new URL('https://api.example.com/v1?token=SECRET1&q=2'), u2: 'https://x/?api_key=SECRET2', params: new URLSearchParams('password=SECRET3') }))
await r.record('k', () => s({ url: new URL('https://u:SECRET4@h/p?access_token=SECRET5') }))
await r.close()
const db = new Database(path)
console.log(db.prepare('select input, output from captures').all())
