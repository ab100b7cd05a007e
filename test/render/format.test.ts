/** The one-line rendering of typed-JSON tags (`show`, diffs, replay messages). */
import { describe, expect, it } from 'vitest'
import { decodeRaw, encode } from '../../src/codec/index.js'
import { compact, pretty } from '../../src/render/format.js'

/** What `show` prints of a recorded value. */
const shown = (v: unknown, max?: number): string => compact(decodeRaw(encode(v)), max)

describe('compact: binary values', () => {
  it('shows a typed array as its kind, length and elements', () => {
    expect(shown({ e: new Float32Array([0.1, 1.5, -0, Number.NaN]) })).toBe(
      '{"e":Float32Array(4)[0.1,1.5,-0,NaN]}',
    )
    expect(shown(new Float64Array([0.1]))).toBe('Float64Array(1)[0.1]')
    expect(shown(new BigUint64Array([2n ** 64n - 1n]))).toBe('BigUint64Array(1)[18446744073709551615n]')
    expect(shown(new Int16Array(0))).toBe('Int16Array(0)[]')
  })

  it('shows at most 32 elements of a long typed array, and keeps to its width', () => {
    const long = shown(new Uint8ClampedArray(1000), 10_000)
    expect(long).toBe(`Uint8ClampedArray(1000)[${Array(32).fill(0).join(',')},…]`)
    expect(shown(new Float32Array(1000), 40)).toHaveLength(40)
  })

  it('shows ArrayBuffer, SharedArrayBuffer and DataView by size, like a Buffer', () => {
    expect(shown([new ArrayBuffer(3), new SharedArrayBuffer(2), new DataView(new ArrayBuffer(8), 4)])).toBe(
      '[ArrayBuffer(3 bytes)<00 00 00>,SharedArrayBuffer(2 bytes)<00 00>,DataView(4 bytes)<00 00 00 00>]',
    )
  })

  it('shows the bytes of binary values in hex, so two of the same size tell apart', () => {
    expect(shown(Buffer.from('secret-v1'))).toBe('Buffer(9 bytes)<73 65 63 72 65 74 2d 76 31>')
    expect(shown(new Uint8Array([1, 2, 255]))).toBe('Uint8Array(3 bytes)<01 02 ff>')
    expect(shown(Buffer.alloc(40), 10_000)).toBe(`Buffer(40 bytes)<${Array(32).fill('00').join(' ')} …>`)
  })

  it('shows a malformed binary tag as the object it is', () => {
    for (const tag of [
      { $t: 'typedarray', k: 'Float32Array', v: 'AAA=' },
      { $t: 'typedarray', k: { toString: '' }, v: '' },
      { $t: 'arraybuffer', v: '@@@@' },
      { $t: 'dataview', v: { toString: '' } },
    ]) {
      expect(compact(tag)).toBe(JSON.stringify(tag))
    }
  })

  it('shows a tag with a field too many or a container that holds no container as the object it is', () => {
    for (const tag of [
      { $t: 'typedarray', k: 'Float32Array', v: 'AACAPwAAAEA=', x: 1 },
      { $t: 'buffer', v: 'AQ==', x: 1 },
      { $t: 'obj' },
      { $t: 'obj', v: 5 },
      { $t: 'set', v: 'abc' },
      { $t: 'set', v: [1], x: 1 },
      { $t: 'map', v: 5 },
    ]) {
      expect(compact(tag)).toBe(JSON.stringify(tag))
      expect(pretty(tag)).toBe(JSON.stringify(tag, null, 2))
    }
    // Next to the well-formed tag it resembles, it reads differently.
    const real = decodeRaw(encode(new Float32Array([1, 2])))
    expect(compact(real)).toBe('Float32Array(2)[1,2]')
  })
})
