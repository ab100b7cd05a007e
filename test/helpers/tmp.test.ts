import { existsSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { beforeEach, describe, expect, it } from 'vitest'
import { tempDir, tempPath } from './tmp.js'

describe('tempDir', () => {
  let fromHook = ''
  let previous: string[] = []

  beforeEach(() => {
    fromHook = tempDir()
  })

  it('makes fresh, distinct, writable directories', () => {
    const a = tempDir()
    const b = tempDir('custom-')
    expect(a).not.toBe(b)
    expect(b).toContain('custom-')
    writeFileSync(join(a, 'f'), 'x')
    const p = tempPath('x.sqlite')
    expect(p.endsWith('x.sqlite')).toBe(true)
    expect(existsSync(dirname(p))).toBe(true)
    expect(existsSync(p)).toBe(false)
    previous = [a, b, dirname(p), fromHook]
  })

  it('removed the previous test’s directories, contents and all', () => {
    expect(previous).toHaveLength(4)
    for (const dir of previous) expect(existsSync(dir)).toBe(false)
    expect(existsSync(fromHook)).toBe(true)
  })
})
