/**
 * Gathered stdout (src/cli/stdout.ts): whatever mix of strings and bytes goes through
 * `out`, the bytes on a pipe are exactly those, in order, whether a chunk fits the 64 KiB
 * buffer, crosses it, or is larger than it, and multi-byte characters are never split.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/tmp.js'

const stdoutModule = fileURLToPath(new URL('../../dist/cli/stdout.js', import.meta.url))

/** Runs `script` in a child whose stdout is a pipe; `out` and `flushOut` are in scope. */
function piped(script: string): { stdout: Buffer; expected: Buffer } {
  const sentFile = `${tempDir('retrace-stdout-')}/sent`
  const child = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { writeFileSync } from 'node:fs'
       import { out, flushOut } from ${JSON.stringify(stdoutModule)}
       const sent = []
       const send = (chunk) => { sent.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk)); out(chunk) }
       ${script}
       writeFileSync(${JSON.stringify(sentFile)}, Buffer.concat(sent))`,
    ],
    { maxBuffer: 64 * 1024 ** 2 },
  )
  expect(child.status, String(child.stderr).slice(0, 500)).toBe(0)
  return { stdout: child.stdout, expected: readFileSync(sentFile) }
}

describe('gathered stdout', () => {
  it('writes every byte, in order, across the buffer boundary and past its size', () => {
    const { stdout, expected } = piped(`
      let seed = 7
      const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
      const alphabet = ['a', 'é', '€', '😀', '\\n', 'z']
      for (let i = 0; i < 600; i++) {
        const size = [1, 10, 1000, 20000, 70000, 200000][rand(6)]
        if (rand(4) === 0) send(new Uint8Array(size).map((_, j) => (i + j) % 251))
        else {
          let s = ''
          const ch = alphabet[rand(alphabet.length)]
          while (s.length < size) s += ch + 'x'
          send(s)
        }
      }
      flushOut()
      send('tail without a flush: written at exit\\n')
    `)
    expect(stdout.length).toBe(expected.length)
    expect(stdout.equals(expected)).toBe(true)
  })

  it('keeps a character whose bytes would cross the end of the buffer whole', () => {
    // 65,535 one-byte characters, then a four-byte one: it cannot fit in the last byte.
    const { stdout, expected } = piped(`
      send('a'.repeat(64 * 1024 - 1))
      send('😀' + 'b'.repeat(10))
      send(new Uint8Array([1, 2, 3]))
    `)
    expect(stdout.equals(expected)).toBe(true)
    expect(stdout.toString('utf8')).toContain('a😀bbbbbbbbbb')
  })
})
