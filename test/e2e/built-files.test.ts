/**
 * What `npm run build` leaves in dist/ for the CLI (scripts/bundle.mjs): oclif, each
 * command, the command_not_found hook and the replay worker are one file each; they import
 * only node's built-ins, the packages left out on purpose, and the modules bin/run.js loads
 * itself, which hold state one process keeps once (oclif, the workers started early, the
 * watchdog).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot } from '../helpers/cli.js'

const dist = join(repoRoot, 'dist')
const entries = [
  'cli/oclif.js',
  ...readdirSync(join(dist, 'commands'))
    .filter((n) => n.endsWith('.js'))
    .map((n) => `commands/${n}`),
  'hooks/command-not-found.js',
  'replay/worker.js',
]
const packages = new Set(['better-sqlite3', 'jiti', 'typescript'])
const sharedFrom: Record<string, readonly string[]> = {
  cli: [],
  commands: ['../cli/oclif.js', '../replay/prestart.js', '../replay/watchdog.js', '../worker-url.js'],
  hooks: ['../cli/oclif.js', '../replay/prestart.js', '../replay/watchdog.js', '../worker-url.js'],
  replay: ['../cli/oclif.js', './prestart.js', './watchdog.js', '../worker-url.js'],
}

/** Every module specifier a file imports, statically or with import(). */
function specifiers(source: string): string[] {
  const found: string[] = []
  for (const m of source.matchAll(/^\s*(?:import|export)\b[^'"`;]*?\bfrom\s*["']([^"']+)["']/gm))
    found.push(m[1]!)
  for (const m of source.matchAll(/^\s*import\s*["']([^"']+)["']/gm)) found.push(m[1]!)
  for (const m of source.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) found.push(m[1]!)
  return found
}

describe('the built CLI files', () => {
  it('has every command of the manifest, the hook and the worker', () => {
    const manifest = JSON.parse(readFileSync(join(repoRoot, 'oclif.manifest.json'), 'utf8')) as {
      commands: Record<string, unknown>
    }
    for (const id of Object.keys(manifest.commands)) expect(entries).toContain(`commands/${id}.js`)
    expect(entries.length).toBeGreaterThanOrEqual(Object.keys(manifest.commands).length + 3)
  })

  it('bin/run.js runs the oclif every command imports', () => {
    const run = readFileSync(join(repoRoot, 'bin/run.js'), 'utf8')
    expect(specifiers(run).filter((s) => !s.startsWith('node:'))).toEqual([
      '../dist/replay/prestart.js',
      '../dist/cli/oclif.js',
    ])
  })

  it.each(entries)('%s imports only built-ins, the packages left out and the shared modules', (entry) => {
    const source = readFileSync(join(dist, entry), 'utf8')
    const allowed = sharedFrom[entry.split('/')[0]!]!
    const strays = specifiers(source).filter((s) => {
      if (s.startsWith('node:')) return false
      if (s.startsWith('.')) return !allowed.includes(s)
      const pkg = s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!
      return !packages.has(pkg)
    })
    expect(strays).toEqual([])
    // The shared modules are imported, not copied in.
    expect(source).not.toMatch(/function takeWorkers\(|function watchChild\(|function workerUrl\(/)
    // tsc's map of the file as it was is gone with it.
    expect(existsSync(join(dist, `${entry}.map`))).toBe(false)
  })
})
