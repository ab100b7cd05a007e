#!/usr/bin/env node
// `retrace --version` and `retrace --help` answer from package.json and the oclif manifest
// without loading oclif: they run as often as any command, and oclif's import alone costs
// several times node's own start-up (C1 in bench/).
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'

const root = new URL('../', import.meta.url)

/** The oclif manifest (undefined if it cannot be read: oclif then finds the commands itself). */
function readManifest() {
  try {
    return JSON.parse(readFileSync(new URL('oclif.manifest.json', root), 'utf8'))
  } catch {
    return undefined
  }
}

/**
 * `retrace help COMMAND` is `retrace COMMAND --help`. Help asked for a command that does
 * not exist is answered as the command alone would be: one line naming the nearest
 * command, exit 2 (oclif's help would print its own error block instead).
 */
function normalise(argv) {
  const help = argv.length === 2 && argv[0] === 'help' && !argv[1].startsWith('-')
  const flag = argv.length >= 2 && !argv[0].startsWith('-') && argv.some((a) => a === '--help' || a === '-h')
  if (!help && !flag) return argv
  const word = help ? argv[1] : argv[0]
  const commands = readManifest()?.commands
  if (commands === undefined || Object.hasOwn(commands, word)) return help ? [word, '--help'] : argv
  return [word]
}

const args = normalise(process.argv.slice(2))

function fastPath() {
  if (args.length !== 1) return false
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'))
  const versionLine = `${pkg.name}/${pkg.version} ${process.platform}-${process.arch} node-${process.version}`
  if (args[0] === '--version' || args[0] === '-v' || args[0] === 'version') {
    process.stdout.write(`${versionLine}\n`)
    return true
  }
  if (args[0] === '--help' || args[0] === '-h' || args[0] === 'help') {
    const manifest = readManifest()
    if (manifest === undefined) return false
    const commands = Object.values(manifest.commands ?? {})
      .filter((c) => !c.hidden)
      // Code-unit order, not localeCompare: its first call loads ICU collation (~10 ms).
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    const width = Math.max(...commands.map((c) => c.id.length)) + 2
    const lines = [
      pkg.description,
      '',
      'VERSION',
      `  ${versionLine}`,
      '',
      'USAGE',
      `  $ ${pkg.oclif.bin} [COMMAND]`,
      '',
      'COMMANDS',
      ...commands.map((c) => `  ${c.id.padEnd(width)} ${c.summary ?? (c.description ?? '').split('\n')[0]}`),
      '',
      `Run ${pkg.oclif.bin} COMMAND --help for a command's flags.`,
    ]
    process.stdout.write(`${lines.join('\n')}\n`)
    return true
  }
  return false
}

/**
 * `retrace test|replay --workers N`: the worker processes are started now, so that they
 * boot while oclif loads (src/replay/prestart.ts); at most one per other core, and none for
 * `--help` or `--watch` (each watched run starts its own). oclif still parses and checks
 * the flag; workers started for a command line it then refuses exit with this process.
 */
function workersToStart() {
  if (args[0] !== 'test' && args[0] !== 'replay') return 0
  let asked = 0
  for (let i = 1; i < args.length; i++) {
    const a = args[i]
    if (a === '--') break
    if (a === '--help' || a === '-h' || a === '--watch' || a === '-w') return 0
    const value = a === '--workers' ? args[i + 1] : a.startsWith('--workers=') ? a.slice(10) : undefined
    if (value === undefined) continue
    const n = /^[0-9]{1,2}$/.test(value) ? Number(value) : 0
    asked = n >= 2 && n <= 64 ? n : 0
  }
  return Math.min(asked - 1, availableParallelism() - 1)
}

if (!fastPath()) {
  const workers = workersToStart()
  if (workers > 0) {
    const { prestartWorkers } = await import('../dist/replay/prestart.js')
    prestartWorkers(workers)
  }
  // oclif as one file, the copy every command imports too (scripts/bundle.mjs).
  const { execute } = await import('../dist/cli/oclif.js')
  await execute({ args, dir: import.meta.url })
}
