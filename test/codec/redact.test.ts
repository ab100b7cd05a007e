import { describe, expect, it } from 'vitest'
import {
  decode,
  encode,
  type PathPart,
  RedactionFailed,
  Redactor,
  type RedactorOptions,
} from '../../src/codec/index.js'

const limits = { maxBytes: 1024 * 1024, maxDepth: 512 }
const redact = (value: unknown, options: RedactorOptions): unknown =>
  JSON.parse(encode(value, limits, new Redactor(options)))

describe('path rules', () => {
  it('redacts a nested path and leaves the same key elsewhere alone', () => {
    const out = redact(
      { customer: { phone: '555-0100', name: 'Ann' }, store: { phone: '555-0199' } },
      { rules: ['$.customer.phone'] },
    )
    expect(out).toEqual({ customer: { phone: '[redacted]', name: 'Ann' }, store: { phone: '555-0199' } })
  })

  it('redacts a key at every depth with ..', () => {
    const out = redact(
      { ssn: 1, a: { ssn: 2, b: [{ ssn: 3 }, { c: { ssn: { nested: 4 } } }] }, ssnx: 5 },
      { rules: ['$..ssn'], defaults: false },
    )
    expect(out).toEqual({
      ssn: '[redacted]',
      a: { ssn: '[redacted]', b: [{ ssn: '[redacted]' }, { c: { ssn: '[redacted]' } }] },
      ssnx: 5,
    })
  })

  it('redacts every array element with [*]', () => {
    const out = redact(
      { items: [{ card: '4111', sku: 'a' }, { card: '5500', sku: 'b' }, { sku: 'c' }], card: 'top' },
      { rules: ['$.items[*].card'] },
    )
    expect(out).toEqual({
      items: [{ card: '[redacted]', sku: 'a' }, { card: '[redacted]', sku: 'b' }, { sku: 'c' }],
      card: 'top',
    })
  })

  it('redacts by index and by quoted key', () => {
    const out = redact(
      { list: ['a', 'b'], 'odd key': 'x', 'q"uote': 'y' },
      {
        rules: ['$.list[1]', "$['odd key']", `$['q"uote']`],
      },
    )
    expect(out).toEqual({ list: ['a', '[redacted]'], 'odd key': '[redacted]', 'q"uote': '[redacted]' })
  })

  it('redacts keys that JSON escapes (quotes, backslashes, control characters) on the plain path', () => {
    for (const key of ['q"uote', 'back\\slash', 'tab\there', 'a]b']) {
      const text = encode(
        { [key]: 'CANARY', other: 1 },
        limits,
        new Redactor({ rules: [`$[${JSON.stringify(key)}]`] }),
      )
      expect(text).not.toContain('CANARY')
      expect(JSON.parse(text)).toEqual({ [key]: '[redacted]', other: 1 })
    }
  })

  it('a quoted numeric key also redacts the array element at that index, on the plain path', () => {
    expect(redact({ rows: ['a', 'b', 'c', 'd'] }, { rules: ["$.rows['3']"], defaults: false })).toEqual({
      rows: ['a', 'b', 'c', '[redacted]'],
    })
  })

  it('gives the same verdicts once the key cache has started over', () => {
    const redactor = new Redactor({ rules: ['$..pin'] })
    const many = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i]))
    expect(encode(many, limits, redactor)).toBe(JSON.stringify(many))
    const out = JSON.parse(encode({ a: { pin: 1234, apiKey: 'x' }, b: 2 }, limits, redactor))
    expect(out).toEqual({ a: { pin: '[redacted]', apiKey: '[redacted]' }, b: 2 })
  })

  it('redacts inside tagged payloads: Maps, Sets, and objects carrying dates or bigints', () => {
    const out = decode(
      encode(
        {
          at: new Date(0),
          m: new Map([['card', 'c1']]),
          items: new Set([{ card: 'c2' }]),
          big: { card: 12n },
        },
        limits,
        new Redactor({ rules: ['$..card'] }),
      ),
    ) as { m: Map<string, unknown>; items: Set<{ card: unknown }>; big: { card: unknown } }
    expect(out.m.get('card')).toBe('[redacted]')
    expect([...out.items][0]!.card).toBe('[redacted]')
    expect(out.big.card).toBe('[redacted]')
  })

  it('redacts whole subtrees, whatever the value type', () => {
    const out = redact({ password: { a: [1, 2], b: new Date(0) }, token: 42n }, {})
    expect(out).toEqual({ password: '[redacted]', token: '[redacted]' })
  })

  it('leaves the top-level value alone (a rule names a place inside a payload)', () => {
    expect(redact('secret text', { rules: ['$..*'] })).toBe('secret text')
  })
})

describe('default secret keys', () => {
  const secretNames = [
    'authorization',
    'Authorization',
    'proxy-authorization',
    'cookie',
    'Cookie',
    'set-cookie',
    'password',
    'PASSWORD',
    'passwd',
    'pass_word',
    'secret',
    'client_secret',
    'token',
    'access_token',
    'refreshToken',
    'id_token',
    'apiKey',
    'api_key',
    'api-key',
    'api__key',
    'x-api-key',
    'X-API-KEY',
    'private_key',
    // Variants the defaults used to miss: the secret word inside a longer key, or at its end.
    'dbPassword',
    'user_password',
    'passwordHash',
    'Secret_Key',
    'clientSecret',
    'privateKey',
    'API KEY',
    'AWS_SECRET_ACCESS_KEY',
    'accessKeyId',
    'credentials',
    'session_cookie',
    'cvv',
    'CVC',
    'cardNumber',
    'card_number',
    'creditCard',
    'credit-card-number',
    'accessToken',
    'csrf_token',
    'x-auth-token',
    'bearer',
    'bearerToken',
    'pin',
    'userPin',
    'sessionId',
    'session_id',
    'session',
    'jwt',
    'jwtClaims',
    'pwd',
    'oldPwd',
    'otp',
    'otp_code',
    'otpCode',
    'totp',
    'ssn',
    'SSN',
    'customer_ssn',
    'customerSSN',
    'ssnLast4',
    'accessTokens',
    'refresh_tokens',
    'sessionIds',
    'auth',
    'basicAuth',
    'pass',
    'dbPass',
    'passphrase',
    'passcode',
    'pinNumber',
    'totpCode',
    'privKey',
    'ccNumber',
    'cardNo',
    'api.key',
    'cardCvv',
    'cvv2',
    'cvcCode',
  ]

  it.each(secretNames)('redacts %j at any depth, on the plain and the tagged path', (name) => {
    const plain = { [name]: 'CANARY', nested: { list: [{ [name]: 'CANARY' }] } }
    const text = encode(plain, limits, new Redactor({}))
    expect(text).not.toContain('CANARY')
    const tagged = { when: new Date(0), [name]: 'CANARY', nested: { list: [{ [name]: 'CANARY' }] } }
    expect(encode(tagged, limits, new Redactor({}))).not.toContain('CANARY')
  })

  /** Ordinary data in LLM and e-commerce payloads whose keys hold a secret word's letters. */
  const ordinaryNames = [
    'user',
    'passage',
    'tokens_left',
    'max_tokens',
    'maxTokens',
    'tokens',
    'tokenCount',
    'token_count',
    'prompt_tokens',
    'completion_tokens',
    'tokenizer',
    'tokenType',
    'shipping',
    'shippingOptions',
    'pinned',
    'isPinned',
    'pinCode',
    'pin_code',
    'spinner',
    'options',
    'description',
    'sessions',
    'sessionCount',
    'sessionStart',
    'secretary',
    'companySecretary',
    'secretariat',
    'className',
    'businessName',
    'addressNumber',
    'processName',
    'spin',
    'backspin',
    'cvVersion',
    'cv_count',
    'cvCutoff',
    'author',
    'authorName',
    'passengers',
    'bypass',
  ]

  it.each(ordinaryNames)('keeps %j, on the plain and the tagged path', (name) => {
    const plain = { [name]: 'KEPT', nested: [{ [name]: 'KEPT' }] }
    expect(redact(plain, {})).toEqual(plain)
    expect(encode(plain, limits, new Redactor({}))).toBe(JSON.stringify(plain))
    const tagged = decode(encode({ ...plain, at: new Date(0) }, limits, new Redactor({})))
    expect(tagged).toEqual({ ...plain, at: new Date(0) })
  })

  it('keeps secret names when defaults are off', () => {
    expect(redact({ password: 'p', token: 't' }, { defaults: false })).toEqual({ password: 'p', token: 't' })
    expect(redact({ dbPassword: 'p', otpCode: 1 }, { defaults: false })).toEqual({
      dbPassword: 'p',
      otpCode: 1,
    })
  })

  it('the JSON-text screen finds every key the default names redact, however it is written', () => {
    const screen = new Redactor({})
    for (const name of [
      ...secretNames,
      'pass word',
      'PASS-WORD',
      'quote"password',
      'password"quoted',
      'back\\ssn',
    ]) {
      expect({ name, screened: screen.mayMatch(JSON.stringify({ a: 1, [name]: 'v' })) }).toEqual({
        name,
        screened: true,
      })
    }
    // A secret word in a value is not a key to redact.
    expect(screen.mayMatch(JSON.stringify({ note: 'my password is "hunter2"', user: 'ann' }))).toBe(false)
  })

  it('plain JSON without secrets stays byte-identical to JSON.stringify', () => {
    const value = { user: 'ann', items: [{ sku: 'a', qty: 1 }], note: 'the password is not here' }
    expect(encode(value, limits, new Redactor({ rules: ['$.customer.phone'] }))).toBe(JSON.stringify(value))
  })
})

describe('equality-preserving tokens', () => {
  const withKey = (key: string) => new Redactor({ rules: ['$..card'], key })
  const token = (r: Redactor, value: unknown): string =>
    (JSON.parse(encode({ card: value, keep: new Date(0) }, limits, r)) as { card: string }).card

  it('gives the same token for the same value and different tokens for different values', () => {
    const r = withKey('k1')
    expect(token(r, '4111-1111')).toBe(token(r, '4111-1111'))
    expect(token(r, '4111-1111')).not.toBe(token(r, '4111-2222'))
    expect(token(r, '4111-1111')).toMatch(/^\[redacted:[\w-]{16}\]$/)
    expect(token(r, '4111-1111')).not.toContain('4111')
    // Same value in another recorder with the same key: joins across bundles work.
    expect(token(withKey('k1'), '4111-1111')).toBe(token(r, '4111-1111'))
  })

  it('gives different tokens under a different key', () => {
    expect(token(withKey('k1'), '4111-1111')).not.toBe(token(withKey('k2'), '4111-1111'))
    expect(token(new Redactor({ rules: ['$..card'], key: Buffer.from('k1') }), 'v')).toBe(
      token(withKey('k1'), 'v'),
    )
  })

  it('keeps non-string values apart and deep-equal values together', () => {
    const r = withKey('k')
    const distinct: unknown[] = [
      '1',
      1,
      1n,
      -0,
      null,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      undefined,
      true,
      [1],
      { a: 1 },
      new Map([['a', 1]]),
      new Map([['a', 2]]),
      new Set([1]),
      new Set([2]),
      new Date(0),
      new Date(1),
      Buffer.from('a'),
      new Uint8Array([97]),
      new Int8Array([97]),
      new Float32Array([1]),
      new Int32Array([1]),
      new Float32Array([2]),
      new ArrayBuffer(1),
      new ArrayBuffer(2),
      new SharedArrayBuffer(1),
      new DataView(new ArrayBuffer(1)),
      new URL('https://h/a'),
      new URL('https://h/b'),
    ]
    const tokens = distinct.map((v) => r.token(v))
    expect(new Set(tokens).size).toBe(distinct.length)
    // Recorded as the primitive, a boxed value gets the primitive's token.
    expect(r.token(new String('4111'))).toBe(r.token('4111'))
    expect(r.token(new Number(3))).toBe(r.token(3))
    expect(r.token(new Float32Array([1, 2]))).toBe(r.token(new Float32Array([1, 2])))
    // A URL by its text: it has no own fields to tell two apart.
    expect(token(r, new URL('https://h/a?x=1'))).toBe(token(r, new URL('https://h/a?x=1')))
    expect(token(r, new URL('https://h/a?x=1'))).not.toBe(token(r, new URL('https://h/a?x=2')))

    expect(r.token({ a: 1, b: [2, { c: 3 }] })).toBe(r.token({ b: [2, { c: 3 }], a: 1 }))
    expect(r.token(new Map([['x', new Set([1, 2])]]))).toBe(r.token(new Map([['x', new Set([1, 2])]])))
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    expect(() => r.token(cyclic)).not.toThrow()
  })

  it('without a key every token is the same opaque marker', () => {
    const r = new Redactor({ rules: ['$..card'] })
    expect(token(r, 'a')).toBe('[redacted]')
    expect(token(r, 'b')).toBe('[redacted]')
    expect(r.equalityPreserving).toBe(false)
    expect(withKey('k').equalityPreserving).toBe(true)
  })
})

describe('rule functions', () => {
  it('are given the concrete path and value, and redact where they return true', () => {
    const seen: [string, unknown][] = []
    const rule = (path: readonly PathPart[], value: unknown): boolean => {
      seen.push([path.join('/'), value])
      return typeof value === 'string' && value.startsWith('sk_')
    }
    const out = redact({ a: 'sk_live_1', b: ['x', 'sk_test_2'] }, { rules: [rule], defaults: false })
    expect(out).toEqual({ a: '[redacted]', b: ['x', '[redacted]'] })
    expect(seen).toContainEqual(['a', 'sk_live_1'])
    expect(seen).toContainEqual(['b/1', 'sk_test_2'])
  })

  it('a rule that throws becomes RedactionFailed, never the raw value', () => {
    const boom = (): boolean => {
      throw new Error('rule exploded')
    }
    let caught: unknown
    try {
      encode({ card: 'CANARY' }, limits, new Redactor({ rules: [boom] }))
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(RedactionFailed)
    // What it said is not kept (a rule that rejects a value tends to quote it); its cause is.
    expect((caught as Error).message).toBe(
      'a redaction rule failed (it threw an Error; its message is not kept)',
    )
    expect(((caught as Error).cause as Error).message).toBe('rule exploded')
  })

  it('describe() lists rules for the manifest without values', () => {
    function cardRule(): boolean {
      return false
    }
    const r = new Redactor({ rules: ['$.customer.phone', cardRule] })
    expect(r.describe()).toEqual(['$.customer.phone', 'fn:cardRule', 'defaults'])
    expect(new Redactor({ defaults: false }).isEmpty).toBe(true)
  })
})
