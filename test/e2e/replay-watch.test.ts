import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.js'
import { importStage, record, repoRoot, runChain, type Workspace, workspace } from '../replay/fixture.js'

const stageSource = (extra: number): string => `
export function parse(x) { return { sku: x.sku, qty: x.qty } }
export function compute(x) { return { sku: x.sku, available: 10 - x.qty + ${extra} } }
`

/** Waits until `text` has `count` occurrences of `needle`, or fails after `ms`. */
async function waitFor(read: () => string, needle: string, count: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (read().split(needle).length - 1 >= count) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${count}x ${JSON.stringify(needle)} in:\n${read()}`)
}

describe('replay --watch', () => {
  let ws: Workspace
  beforeAll(async () => {
    ws = workspace('retrace-watch-')
    const prod = ws.write('prod.mjs', stageSource(80))
    const parse = await importStage(prod, 'parse')
    const compute = await importStage(prod, 'compute')
    await record(ws.path('b.sqlite'), async (r) => {
      await runChain(r, 'sku:1', { sku: 'sku:1', qty: 3 }, [
        ['parse', parse],
        ['compute', compute],
      ])
    })
    ws.write('stages.mjs', stageSource(0))
    ws.write(
      'retrace.config.json',
      JSON.stringify({ stages: { parse: './stages.mjs#parse', compute: './stages.mjs#compute' } }),
    )
  })
  afterAll(() => ws.remove())

  it('replays again with the edited stage module when a file changes', async () => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin/run.js'), 'replay', 'b.sqlite', '--watch'], {
      cwd: ws.dir,
      env: { ...process.env, NO_COLOR: '1' },
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString()
    })
    try {
      await waitFor(() => out, 'replayed, ', 1, 30_000)
      expect(out).toContain('1 record replayed, 0 matched, 1 diverged')
      // Edits are seen once the watcher says it is watching.
      await waitFor(() => out, 'watching ', 1, 30_000)
      // The fix: the local build now gives what production recorded.
      ws.write('stages.mjs', stageSource(80))
      await waitFor(() => out, 'replayed, ', 2, 30_000)
      const runs = out.split('── replay at')
      expect(runs).toHaveLength(2)
      expect(runs[1]).toContain('1 record replayed, 1 matched, 0 diverged')
    } finally {
      child.kill('SIGTERM')
    }
  })

  it('refuses at once, exit 2, a selection or bundle no edit can fix, instead of watching', async () => {
    const [key, where, gone] = await Promise.all([
      runCli(['replay', 'b.sqlite', '--key', 'sku:typo', '--watch'], { cwd: ws.dir, timeoutMs: 20_000 }),
      runCli(['replay', 'b.sqlite', '--where', 'compute.available = 999', '--watch'], {
        cwd: ws.dir,
        timeoutMs: 20_000,
      }),
      runCli(['replay', 'missing.sqlite', '--watch'], { cwd: ws.dir, timeoutMs: 20_000 }),
    ])
    expect(key.code).toBe(2)
    expect(key.stderr).toBe('retrace: no record with key "sku:typo" in b.sqlite\n')
    expect(where.code).toBe(2)
    expect(where.stderr).toMatch(/^retrace: no record .*\n$/)
    expect(gone.code).toBe(2)
    expect(gone.stderr).toBe('retrace: missing.sqlite: no such file\n')
    for (const r of [key, where, gone]) expect(r.stderr).not.toContain('watching')
  })

  it('--json writes each run as one compact JSON document on its own line (NDJSON)', async () => {
    ws.write('stages.mjs', stageSource(0))
    const child = spawn(
      process.execPath,
      [join(repoRoot, 'bin/run.js'), 'replay', 'b.sqlite', '--watch', '--json'],
      { cwd: ws.dir, env: { ...process.env, NO_COLOR: '1' } },
    )
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    try {
      await waitFor(() => stdout, '\n', 1, 30_000)
      // The watcher is armed before the first run starts: an edit now starts a second run.
      ws.write('stages.mjs', stageSource(80))
      await waitFor(() => stdout, '\n', 2, 30_000)
      const lines = stdout.split('\n')
      expect(lines.at(-1)).toBe('')
      const docs = lines.slice(0, -1).map((l) => JSON.parse(l) as { summary: Record<string, number> })
      expect(docs.map((d) => d.summary)).toEqual([
        { records: 1, matched: 0, diverged: 1, errors: 0 },
        { records: 1, matched: 1, diverged: 0, errors: 0 },
      ])
    } finally {
      child.kill('SIGTERM')
    }
  })
})
