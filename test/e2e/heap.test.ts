import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { repoRoot } from '../helpers/cli.js'
import { tempDir } from '../helpers/tmp.js'

/**
 * A process that holds its young generation (src/replay/heap.ts), then starts a worker
 * thread (as the CLI starts its watchdog) and allocates as replay does; prints the size of
 * the young generation in MiB at the end.
 */
function youngGenerationAfterLoad(hold: boolean): number {
  const heap = pathToFileURL(join(repoRoot, 'dist/replay/heap.js')).href
  const script = join(tempDir(), 'heap.mjs')
  writeFileSync(
    script,
    `import { keepYoungGenerationSmall, holdYoungGeneration } from ${JSON.stringify(heap)}
import { Worker } from 'node:worker_threads'
import { getHeapSpaceStatistics } from 'node:v8'
keepYoungGenerationSmall()
const w = new Worker('setInterval(() => {}, 1000)', { eval: true })
await new Promise((r) => w.once('online', r))
let keep = []
for (let i = 0; i < 4e6; i++) {
  keep.push({ i, s: 'x' + i })
  if (keep.length > 30000) keep = []
  if (${hold} && i % 1000 === 0) holdYoungGeneration()
}
process.stdout.write(String(getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1048576))
process.exit(0)
`,
  )
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8' })
  expect(r.stderr).toBe('')
  return Number(r.stdout)
}

describe('the young generation replay holds', () => {
  it('stays at 4 MiB semi-spaces although a worker thread put the growth factor back', () => {
    // Without the holds between records, the worker thread's isolate undoes the first one.
    expect(youngGenerationAfterLoad(false)).toBeGreaterThan(8)
    const held = youngGenerationAfterLoad(true)
    expect(held).toBeGreaterThan(0)
    expect(held).toBeLessThanOrEqual(8)
  }, 60_000)
})
