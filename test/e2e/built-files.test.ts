/**
 * What `npm run build` leaves in dist/ for the CLI (scripts/bundle.mjs): each command, the
 * command_not_found hook and the replay worker are one file each; they import only node's
 * built-ins, the packages left out on purpose, and the modules bin/run.js loads itself,
 * which hold state one process keeps once (the workers started early, the watchdog).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot } from '../helpers/cli.js'

const dist = join(repoRoot, 'dist')
const entries = [
  ...readdirSync(join(dist, 'commands'))
    .filter((n) => n.endsWith('.js'))
    .map((n) => `commands/${n}`),
  'hooks/command-not-found.js',
  'replay/worker.js',
]
const packages = new Set(['@oclif/core', 'better-sqlite3', 'jiti', 'typescript'])
const sharedFrom: Record<string, readonly string[]> = {
  commands: ['../replay/prestart.js', '../replay/watchdog.js', '../worker-url.js'],
  hooks: ['../replay/prestart.js', '../replay/watchdog.js', '../worker-url.js'],
  replay: ['./prestart.js', './watchdog.js', '../worker-url.js'],
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
    expect(entries.length).toBeGreaterThanOrEqual(Object.keys(manifest.commands).length + 2)
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
