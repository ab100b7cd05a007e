import { describe, expect, it } from 'vitest'
import { decode } from '../../src/codec/index.js'
import type { Recorder } from '../../src/index.js'
import { bundleFiles, countBytes, readBundle } from '../helpers/bundle-db.js'
import { testRecorder } from '../helpers/recorder.js'

/** Unique strings that must never reach the bundle's bytes. */
const canaries = {
  phone: 'CANARY-PHONE-7f3a91',
  password: 'CANARY-PASSWORD-2b8c44',
  deepPassword: 'CANARY-DEEP-PASSWORD-c0ffee',
  card: 'CANARY-CARD-4111x',
  mapCard: 'CANARY-MAP-CARD-99aa',
  authorization: 'CANARY-AUTH-Bearer-abc',
  cookie: 'CANARY-COOKIE-sid-123',
  apiKey: 'CANARY-APIKEY-e5e5',
  xApiKey: 'CANARY-X-API-KEY-f6f6',
  token: 'CANARY-TOKEN-0d0d',
  refresh: 'CANARY-REFRESH-1e1e',
  outPassword: 'CANARY-OUTPUT-PASSWORD-77',
  outCard: 'CANARY-OUTPUT-CARD-88',
  effectArgs: 'CANARY-EFFECT-ARGS-TOKEN-55',
  effectArgsPhone: 'CANARY-EFFECT-ARGS-PHONE-56',
  effectResult: 'CANARY-EFFECT-RESULT-SECRET-66',
  asyncEffectResult: 'CANARY-ASYNC-EFFECT-RESULT-67',
  equality: 'CANARY-EQUALITY-PRESERVED-31',
  effectArgsOtp: 'CANARY-EFFECT-ARGS-OTP-57',
  urlToken: 'CANARY-URL-TOKEN-41',
  urlPassword: 'CANARY-URL-PASSWORD-42',
  urlAccessToken: 'CANARY-URL-ACCESS-TOKEN-43',
  urlSig: 'CANARY-URL-SIG-44',
}

/** Variants of secret names the default rules match beyond the exact words. */
const variantNames = [
  'dbPassword',
  'user_password',
  'passwordHash',
  'Secret_Key',
  'pwd',
  'cvv',
  'cardNumber',
  'creditCard',
  'pin',
  'otp',
  'ssn',
  'sessionId',
  'jwt',
  'bearer',
  'access_token',
  'refreshToken',
  'x-api-key',
  'privateKey',
  'clientSecret',
]
const variantCanary = (name: string): string => `CANARY-VARIANT-${name.replace(/[^A-Za-z]/g, '')}-4242`
const variants = Object.fromEntries(variantNames.map((n) => [n, variantCanary(n)]))

/** Recorded in the clear, to prove the scan sees the data at all. */
const visible = 'VISIBLE-CONTROL-MARKER-5150'

async function recordSecrets(recorder: Recorder, records: number): Promise<void> {
  const ingest = recorder.stage('ingest', (order: Record<string, unknown>) => ({
    ...order,
    // Output side: default names and path rules apply to outputs too.
    auth: { password: canaries.outPassword },
    items: [{ sku: 'a', card: canaries.outCard }],
    // URLs on the output side: a secret parameter by its default name, and one a rule names.
    callback: new URL(`https://hooks.example/cb?access_token=${canaries.urlAccessToken}#done`),
    asset: { link: new URL(`https://cdn.example/f.png?sig=${canaries.urlSig}&w=2`) },
  }))
  const enrich = recorder.stage('enrich', async (order: Record<string, unknown>, ctx) => {
    const session = ctx.effect(
      'session.lookup',
      {
        token: canaries.effectArgs,
        customer: { phone: canaries.effectArgsPhone },
        otpCode: canaries.effectArgsOtp,
        note: visible,
      },
      () => ({ user: 'ann', client_secret: canaries.effectResult }),
    )
    const remote = await ctx.effect('http.profile', 'ann', async () => ({
      profile: { password: canaries.asyncEffectResult },
      at: new Date(0),
    }))
    return { order, session, remote }
  })

  for (let i = 0; i < records; i++) {
    // A plain-JSON payload (fast path) and one with tagged values (slow path).
    const plain = {
      id: i,
      note: visible,
      customer: { phone: canaries.phone, name: 'Ann' },
      password: canaries.password,
      nested: { deeper: [{ password: canaries.deepPassword }] },
      items: [
        { sku: 'a', card: canaries.card },
        { sku: 'b', card: canaries.card },
      ],
      headers: {
        Authorization: canaries.authorization,
        Cookie: canaries.cookie,
        'X-Api-Key': canaries.xApiKey,
      },
      apiKey: canaries.apiKey,
      refresh_token: canaries.refresh,
      ssn: canaries.equality,
      account: { ...variants },
    }
    const tagged = {
      ...plain,
      at: new Date(i),
      big: BigInt(i),
      extra: new Map([['card', canaries.mapCard]]),
      token: canaries.token,
      // URLs on the input side: a secret query parameter, and a password in the userinfo.
      url: new URL(`https://api.example/v1/orders?token=${canaries.urlToken}&q=2`),
      dsn: new URL(`postgres://svc:${canaries.urlPassword}@db.example:5432/app`),
    }
    await recorder.record(`order:${i}`, async () => enrich(await ingest(i % 2 === 0 ? plain : tagged)))
  }
}

const options = {
  redact: ['$.customer.phone', '$..customer.phone', '$.items[*].card', '$..card', '$..ssn', '$..link.sig'],
  redactKey: 'test-redaction-key',
  flushIntervalMs: 5,
}

function expectNoCanaries(path: string): void {
  expect(bundleFiles(path).length).toBeGreaterThan(0)
  // The control marker is in the files, so the scan really reads the recorded bytes.
  expect(countBytes(path, visible)).toBeGreaterThan(0)
  for (const [name, canary] of Object.entries({ ...canaries, ...variants })) {
    expect({ name, occurrences: countBytes(path, canary) }).toEqual({ name, occurrences: 0 })
  }
}

describe('redaction at capture time', () => {
  it('leaves no canary bytes in the closed bundle file', async () => {
    const { path, recorder } = testRecorder(options)
    await recordSecrets(recorder, 40)
    await recorder.close()
    expect(bundleFiles(path)).toEqual([path])
    expectNoCanaries(path)

    const { captures } = readBundle(path)
    expect(captures).toHaveLength(80)
    // The redacted places hold tokens, and the rest of the payload is intact.
    const input = decode(captures.find((c) => c.stage === 'ingest')!.input) as Record<string, unknown>
    expect(input).toMatchObject({
      id: expect.any(Number),
      note: visible,
      customer: { phone: expect.stringMatching(/^\[redacted:/), name: 'Ann' },
      password: expect.stringMatching(/^\[redacted:/),
    })
    const effects = captures.find((c) => c.stage === 'enrich')!.effects
    expect(effects).toHaveLength(2)
    expect(decode(effects[0]!.result!)).toEqual({
      user: 'ann',
      client_secret: expect.stringMatching(/^\[redacted/),
    })
  })

  it('leaves no canary bytes in the WAL of a recorder that is flushed but not closed', async () => {
    const { path, recorder } = testRecorder(options)
    await recordSecrets(recorder, 40)
    await recorder.flush()
    const files = bundleFiles(path)
    expect(files).toContain(`${path}-wal`)
    // The control marker was committed to the WAL (not yet checkpointed), and no canary was.
    expect(countBytes(`${path}-wal`, visible) + countBytes(path, visible)).toBeGreaterThan(0)
    expectNoCanaries(path)
    expect(recorder.stats().written).toBe(80)
  })

  it('keeps equality across records: the same secret gives the same token everywhere', async () => {
    const { path, recorder } = testRecorder(options)
    await recordSecrets(recorder, 4)
    await recorder.close()
    const inputs = readBundle(path)
      .captures.filter((c) => c.stage === 'ingest')
      .map((c) => decode(c.input) as { ssn: string; customer: { phone: string }; password: string })
    const ssnTokens = new Set(inputs.map((i) => i.ssn))
    expect(ssnTokens.size).toBe(1)
    expect([...ssnTokens][0]).toMatch(/^\[redacted:[\w-]{16}\]$/)
    // Different secrets, different tokens.
    expect(inputs[0]!.customer.phone).not.toBe(inputs[0]!.password)
    // A URL by its text: the same URL gives the same token in every record, another URL another.
    const urls = inputs.map((i) => (i as { url?: unknown; dsn?: unknown }).url).filter((u) => u !== undefined)
    expect(urls).toHaveLength(2)
    expect(new Set(urls).size).toBe(1)
    expect(urls[0]).toMatch(/^\[redacted:[\w-]{16}\]$/)
    expect((inputs[1] as { dsn?: unknown }).dsn).not.toBe(urls[0])
  })

  it('records the rules, not the values, in the manifest', async () => {
    const { path, recorder } = testRecorder(options)
    await recordSecrets(recorder, 1)
    await recorder.close()
    const { manifest } = readBundle(path)
    expect(manifest.redaction).toEqual({ rules: [...options.redact, 'defaults'], equalityPreserving: true })
    expect(JSON.stringify(manifest)).not.toContain(options.redactKey)
    expect(countBytes(path, options.redactKey)).toBe(0)
  })
})

describe('secrets in places JSON.stringify alone would write', () => {
  it('are redacted inside Map keys and in what an array says it serialises to', async () => {
    const { path, recorder } = testRecorder()
    class Creds extends Array<string> {
      toJSON() {
        return { user: this[0], password: this[1] }
      }
    }
    const ownToJSON = Object.assign(['x'], { toJSON: () => ({ apiKey: 'CANARY-ARRAY-OWN-TOJSON-3c' }) })
    const s = recorder.stage('s', (x: unknown) => x)
    await recorder.record('k', () =>
      s({
        byUser: new Map([[{ user: 'me', password: 'CANARY-MAP-KEY-PASSWORD-1a' }, 'x']]),
        creds: Creds.from(['me', 'CANARY-ARRAY-SUBCLASS-TOJSON-2b']),
        ownToJSON,
      }),
    )
    await recorder.close()
    for (const canary of [
      'CANARY-MAP-KEY-PASSWORD-1a',
      'CANARY-ARRAY-SUBCLASS-TOJSON-2b',
      'CANARY-ARRAY-OWN-TOJSON-3c',
    ])
      expect(countBytes(path, canary)).toBe(0)
    const input = decode(readBundle(path).captures[0]!.input) as Record<string, unknown>
    expect([...(input.byUser as Map<unknown, unknown>).keys()]).toEqual([
      { user: 'me', password: '[redacted]' },
    ])
    expect(input.creds).toEqual({ user: 'me', password: '[redacted]' })
    expect(input.ownToJSON).toEqual({ apiKey: '[redacted]' })
  })
})

describe('secrets inside built-ins recorded as what they hold', () => {
  it('are redacted in Headers entries and query strings, and nothing else of them is lost', async () => {
    const { path, recorder } = testRecorder()
    const s = recorder.stage('fetch', (req: { url: string }) => ({
      headers: new Headers({
        Authorization: 'Bearer CANARY-HEADER-AUTH-4d',
        Cookie: 'sid=CANARY-HEADER-COOKIE-5e',
      }),
      query: new URLSearchParams({ q: 'shoes', api_key: 'CANARY-QUERY-APIKEY-6f' }),
      pattern: /VISIBLE-REGEXP-7a/,
      url: req.url,
    }))
    await recorder.record('k', () => s({ url: 'VISIBLE-URL-8b' }))
    await recorder.close()
    for (const canary of ['CANARY-HEADER-AUTH-4d', 'CANARY-HEADER-COOKIE-5e', 'CANARY-QUERY-APIKEY-6f'])
      expect({ canary, occurrences: countBytes(path, canary) }).toEqual({ canary, occurrences: 0 })
    expect(countBytes(path, 'VISIBLE-REGEXP-7a')).toBeGreaterThan(0)
    expect(decode(readBundle(path).captures[0]!.output!)).toEqual({
      headers: { authorization: '[redacted]', cookie: '[redacted]' },
      query: '[redacted]',
      pattern: '/VISIBLE-REGEXP-7a/',
      url: 'VISIBLE-URL-8b',
    })
  })
})

describe('secrets inside a URL', () => {
  it('redact it whole in inputs and outputs; a URL holding none stays its href', async () => {
    const { path, recorder } = testRecorder({ redact: ['$.search.q'] })
    const s = recorder.stage('fetch', (req: { url: URL; search: URL }) => ({
      url: new URL(`https://u:CANARY-URL-USERINFO-9a@h.example/p?access_token=CANARY-URL-OUT-9b`),
      api: new URL('https://h.example/v1?api_key=CANARY-URL-APIKEY-9c#top'),
      plain: new URL('https://h.example/v1?page=2&VISIBLE-URL-PARAM-9d=1#top'),
      // A string that holds a URL is not read as one: only values that are URLs are.
      text: 'https://h.example/v1?token=VISIBLE-URL-TEXT-9g',
      got: req.url instanceof URL,
    }))
    await recorder.record('k', () =>
      s({
        url: new URL('https://api.example.com/v1?token=CANARY-URL-IN-9e&q=2'),
        search: new URL('https://h.example/search?q=CANARY-URL-RULE-9f'),
      }),
    )
    await recorder.close()
    for (const canary of [
      'CANARY-URL-USERINFO-9a',
      'CANARY-URL-OUT-9b',
      'CANARY-URL-APIKEY-9c',
      'CANARY-URL-IN-9e',
      'CANARY-URL-RULE-9f',
    ])
      expect({ canary, occurrences: countBytes(path, canary) }).toEqual({ canary, occurrences: 0 })
    expect(countBytes(path, 'VISIBLE-URL-PARAM-9d')).toBeGreaterThan(0)
    const [capture] = readBundle(path).captures
    expect(decode(capture!.input)).toEqual({ url: '[redacted]', search: '[redacted]' })
    expect(decode(capture!.output!)).toEqual({
      url: '[redacted]',
      api: '[redacted]',
      plain: 'https://h.example/v1?page=2&VISIBLE-URL-PARAM-9d=1#top',
      text: 'https://h.example/v1?token=VISIBLE-URL-TEXT-9g',
      got: true,
    })
  })
})

describe('default secret names as hosts spell them', () => {
  it('redacts plural, short and dotted spellings, and keeps keys that only hold the letters', async () => {
    const { path, recorder } = testRecorder()
    const secrets: Record<string, unknown> = {
      accessTokens: ['CANARY-NAMES-ACCESS-TOKENS'],
      auth: { user: 'me', pass: 'CANARY-NAMES-AUTH-PASS' },
      passphrase: 'CANARY-NAMES-PASSPHRASE',
      pinNumber: 'CANARY-NAMES-PIN-NUMBER',
      sessionIds: ['CANARY-NAMES-SESSION-IDS'],
      totpCode: 'CANARY-NAMES-TOTP',
      privKey: 'CANARY-NAMES-PRIV-KEY',
      dbPass: 'CANARY-NAMES-DB-PASS',
      ccNumber: 'CANARY-NAMES-CC-NUMBER',
      cardNo: 'CANARY-NAMES-CARD-NO',
      'api.key': 'CANARY-NAMES-API-DOT-KEY',
      cvv2: 'CANARY-NAMES-CVV2',
    }
    const ordinary = { spin: 3, backspin: 1, cvVersion: 'v2', cv_count: 4, cvCutoff: 0.5, pinCode: '560001' }
    const s = recorder.stage('s', (x: unknown) => x)
    await recorder.record('k', () => s({ ...secrets, ...ordinary }))
    await recorder.close()
    expect(countBytes(path, 'CANARY-NAMES-')).toBe(0)
    const input = decode(readBundle(path).captures[0]!.input) as Record<string, unknown>
    for (const key of Object.keys(secrets)) expect(input[key], key).toBe('[redacted]')
    expect(input).toMatchObject(ordinary)
  })
})
