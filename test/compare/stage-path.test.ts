import { describe, expect, it } from 'vitest'
import { parseStagePath, writeStageName } from '../../src/compare/stage-path.js'

describe('parseStagePath', () => {
  it('reads a stage, a side and a path', () => {
    expect(parseStagePath('compute.input.lines[0].qty', 'why')).toEqual({
      stage: 'compute',
      side: 'input',
      segments: [
        { kind: 'key', name: 'lines' },
        { kind: 'index', index: 0 },
        { kind: 'key', name: 'qty' },
      ],
      path: '$.lines[0].qty',
    })
  })

  it('reads a stage name in double quotes, which may hold dots, spaces and escapes', () => {
    expect(parseStagePath('"orders.parse".output.qty', 'why')).toMatchObject({
      stage: 'orders.parse',
      side: 'output',
      path: '$.qty',
    })
    expect(parseStagePath('"step 2\\u0021".a', 'why')).toMatchObject({ stage: 'step 2!', path: '$.a' })
    expect(parseStagePath('"".a', 'why').stage).toBe('')
    expect(() => parseStagePath('"orders.parse.qty', 'why')).toThrow('why: cannot read')
    expect(() => parseStagePath('"bad \\x".a', 'why')).toThrow('why: cannot read the stage name')
  })

  it('writes a stage name so that it reads back', () => {
    for (const name of ['compute', 'orders.parse', 'step 2', '', 'x"y', '出荷']) {
      expect(parseStagePath(`${writeStageName(name)}.output.a`, 'why').stage).toBe(name)
    }
    expect(writeStageName('compute')).toBe('compute')
    expect(writeStageName('orders.parse')).toBe('"orders.parse"')
  })
})
