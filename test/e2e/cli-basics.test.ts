/** The binary itself: --version, --help, and a command name that does not exist. */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { expectUsageFailure, repoRoot, runCli } from '../helpers/cli.js'

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }

describe('retrace', () => {
  it('--version prints the version line, --help the commands', async () => {
    const [version, help] = await Promise.all([runCli(['--version']), runCli(['--help'])])
    expect(version.code).toBe(0)
    expect(version.stdout).toMatch(
      new RegExp(`^retrace/${pkg.version.replaceAll('.', '\\.')} \\S+ node-v\\d+`),
    )
    expect(help.code).toBe(0)
    for (const command of ['replay', 'test', 'accept', 'extract', 'show', 'verify']) {
      expect(help.stdout).toMatch(new RegExp(`^  ${command} `, 'm'))
    }
  })

  it('a command that does not exist is one line and exit 2, naming the nearest command', async () => {
    const [typo, none] = await Promise.all([
      runCli(['replya', 'recordings/inventory.sqlite']),
      runCli(['frobnicate']),
    ])
    expect(expectUsageFailure(typo)).toBe(
      'retrace: no command "replya" (did you mean "replay"?); retrace --help lists them',
    )
    expect(expectUsageFailure(none)).toBe('retrace: no command "frobnicate"; retrace --help lists them')
  })

  it('help COMMAND is COMMAND --help; help for a command that does not exist is the same one line', async () => {
    const [help, flag, typo, typoFlag, none] = await Promise.all([
      runCli(['help', 'test']),
      runCli(['test', '--help']),
      runCli(['help', 'replya']),
      runCli(['replya', '-h']),
      runCli(['frobnicate', 'x', '--help']),
    ])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('USAGE\n  $ retrace test')
    expect(help.stdout).toBe(flag.stdout)
    const nearest = 'retrace: no command "replya" (did you mean "replay"?); retrace --help lists them'
    expect(expectUsageFailure(typo)).toBe(nearest)
    expect(expectUsageFailure(typoFlag)).toBe(nearest)
    expect(expectUsageFailure(none)).toBe('retrace: no command "frobnicate"; retrace --help lists them')
  })

  it("every --help example on the shipped recording runs as printed, and find's examples find records", async () => {
    const manifest = JSON.parse(readFileSync(join(repoRoot, 'oclif.manifest.json'), 'utf8')) as {
      commands: Record<string, { examples?: string[] }>
    }
    const runs: { id: string; args: string[] }[] = []
    for (const [id, command] of Object.entries(manifest.commands)) {
      // accept would pin into the shipped recording, report writes a file here.
      if (id === 'accept' || id === 'report') continue
      for (const example of command.examples ?? []) {
        const line = example.replace('<%= config.bin %> <%= command.id %>', '').trim()
        if (!line.startsWith('recordings/inventory.sqlite')) continue
        const args = [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!)
        runs.push({ id, args: [id, ...args] })
      }
    }
    expect(runs.map((r) => r.id)).toEqual(expect.arrayContaining(['find', 'show', 'why', 'replay']))
    const results = await Promise.all(runs.map((r) => runCli(r.args)))
    results.forEach((result, i) => {
      const { id, args } = runs[i]!
      expect([0, 1], `${args.join(' ')}: ${result.stderr}`).toContain(result.code)
      if (id === 'find') expect(result.stdout, args.join(' ')).not.toMatch(/^no records/)
    })
  })
})
