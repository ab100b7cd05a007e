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
})
