/**
 * How `replay`, `show`, `why`, `report` and `extract` tell bundles from record ids in their
 * positionals (src/cli/bundles.ts). Splitting looks at the file system; bundles are opened only
 * to ask whether a path-like word no file answers to names a record (test/e2e/replay-bundles.test.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { atMost, splitBundleWords } from '../../src/cli/bundles.js'
import { tempDir } from '../helpers/tmp.js'

function files(): { dir: string; a: string; b: string; notes: string } {
  const dir = tempDir('retrace-bundle-words-')
  mkdirSync(join(dir, 'bundles', 'old'), { recursive: true })
  const a = join(dir, 'bundles', 'a.sqlite')
  const b = join(dir, 'bundles', 'old', 'b.bundle')
  const notes = join(dir, 'bundles', 'notes.txt')
  for (const f of [a, b, notes]) writeFileSync(f, '')
  return { dir, a, b, notes }
}

describe('splitBundleWords', () => {
  it('takes leading files as bundles and the first other word on as the rest', () => {
    const { a, b } = files()
    expect(splitBundleWords([a, b, '01K7', 'compute.output.available'])).toEqual({
      bundles: [a, b],
      named: [a, b],
      rest: ['01K7', 'compute.output.available'],
    })
  })

  it('a folder names every bundle under it (not other files), in name order', () => {
    const { dir, a, b } = files()
    const folder = join(dir, 'bundles')
    expect(splitBundleWords([folder, '01K7'])).toEqual({ bundles: [a, b], named: [folder], rest: ['01K7'] })
  })

  it('reads a file named twice, or by name and by its folder, once', () => {
    const { dir, a, b } = files()
    expect(splitBundleWords([a, join(dir, 'bundles'), a]).bundles).toEqual([a, b])
  })

  it('the first word is a bundle even when it does not exist (the reader says why it cannot be read)', () => {
    expect(splitBundleWords(['nothing-here', '01K7'])).toEqual({
      bundles: ['nothing-here'],
      named: ['nothing-here'],
      rest: ['01K7'],
    })
  })

  it('a later word that looks like a path is never a record id', () => {
    const { dir, a, b } = files()
    expect(() => splitBundleWords([a, join(dir, 'gone.sqlite')])).toThrow(
      `${join(dir, 'gone.sqlite')}: no such file`,
    )
    expect(() => splitBundleWords([a, 'x/y', '01K7'])).toThrow('x/y: no such file')
    expect(() => splitBundleWords([a, '01K7', 'gone.bundle'])).toThrow('gone.bundle: no such file')
    expect(() => splitBundleWords([a, '01K7', b])).toThrow(
      `${b}: name every bundle before the first record id`,
    )
  })

  it('a folder with no bundle under it is an input error', () => {
    const { dir, a } = files()
    mkdirSync(join(dir, 'empty'))
    expect(() => splitBundleWords([a, join(dir, 'empty')])).toThrow(/is a directory, and no bundle/)
  })
})

describe('atMost', () => {
  it('pads to the count and refuses more', () => {
    expect(atMost(['01K7'], 2)).toEqual(['01K7', undefined])
    expect(() => atMost(['01K7', 'extra'], 1)).toThrow('Unexpected argument: extra')
  })
})
