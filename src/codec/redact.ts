/**
 * Redaction at capture time. Rules are path patterns (`$.customer.phone`, `$..password`,
 * `$.items[*].card`) or functions; a matching value is replaced by a token before the
 * payload is encoded, so its bytes never reach the bundle.
 *
 * With a key, tokens preserve equality: the same value always becomes the same token
 * (an HMAC of the value), so joins and comparisons still work on redacted data.
 */
import { createHmac } from 'node:crypto'
import { types } from 'node:util'
import { bufferToBase64, typedArrayKind, typedArrayToBase64, viewToBase64 } from './binary.js'
import { unboxed } from './boxed.js'
import { compilePath, matchPath, type PathPart, type PathPattern } from './json-path.js'
import { opaqueForm, paramsText } from './opaque.js'

/** A rule as a function: return true to redact the value at `path` (`$.a.b`). */
export type RedactFn = (path: readonly PathPart[], value: unknown) => boolean

export type RedactRule = string | RedactFn

/**
 * Key names redacted wherever they appear unless the recorder is told otherwise. A key is
 * compared normalised: lower case, with `-`, `_`, `.` and spaces removed (`X-Api-Key` is
 * `xapikey`, `Secret_Key` is `secretkey`, `api.key` is `apikey`).
 *
 * - `anywhere`: words no ordinary key holds by chance, matched anywhere in the key
 *   (`dbPassword`, `passwordHash`, `clientSecret`, `creditCardNumber`); `secret` not as the
 *   start of `secretary`, `secretaries` or `secretariat`.
 * - `atEnd`: words that also occur inside ordinary words, matched as the whole key or its
 *   end (`accessToken`, `id_token`, `accessTokens`, `sessionId`, `sessionIds`, `cardCvv`;
 *   not `max_tokens`, `tokens`, `tokenCount` or `shipping`).
 * - `lastWord`: matched as the last word of the key (`pin`, `userPin`, `dbPass`, `auth`,
 *   `basicAuth`; not `spin`, `pinned`, `pinCode`, a postal code in India, or `passage`).
 * - `anyWord`: matched as a word of the key, digits after it allowed (`cvv2`, `cvcCode`; not
 *   `cvVersion` or `cv_count`).
 * - `word`: matched as a word of the key (split at `-`, `_`, spaces and case changes:
 *   `customer_ssn`, `otpCode`, `pwdHash`), or at the start or end of the normalised key
 *   (`ssnlast4`, `userotp`). The letters of `ssn` also sit across two ordinary words
 *   (`className`, `businessName`, `addressNumber`), so it is not matched anywhere.
 */
export const defaultSecretNames = {
  anywhere: [
    'password',
    'passwd',
    'secret',
    'apikey',
    'accesskey',
    'privatekey',
    'authorization',
    'cookie',
    'credential',
    'creditcard',
    'cardnumber',
    'ccnumber',
    'passphrase',
    'passcode',
    'privkey',
    'pinnumber',
  ],
  atEnd: [
    'token',
    'accesstokens',
    'refreshtokens',
    'idtokens',
    'authtokens',
    'bearer',
    'sessionid',
    'sessionids',
    'session',
    'cardno',
    'cvv',
    'cvc',
  ],
  lastWord: ['pin', 'pass', 'auth'],
  anyWord: ['cvv', 'cvc'],
  word: ['ssn', 'otp', 'totp', 'jwt', 'pwd'],
} as const

const normaliseKey = (key: string): string => key.toLowerCase().replace(/[-_ .]/g, '')

const secretAnywhere = new RegExp(
  defaultSecretNames.anywhere.map((w) => (w === 'secret' ? 'secret(?!ar(?:y|ies|iat))' : w)).join('|'),
)
const secretAtEnd = new RegExp(
  `(?:${[...defaultSecretNames.atEnd, ...defaultSecretNames.word].join('|')})$|^(?:${defaultSecretNames.word.join('|')})`,
)

/** The words of a key: split at separators, lower-to-upper case changes and acronym ends. */
const keyWords = (key: string): string[] =>
  key
    .replace(/([a-z\d])([A-Z])/g, '$1 $2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z\d]+/)

/**
 * Every word a default rule looks for, spelled as a key may spell it: any case, and any run
 * of the characters normaliseKey removes between letters (`pass_word`, `API__KEY`). Every
 * key the rules redact matches it. `u` folds case the way toLowerCase does for the letters
 * of these words (U+212A KELVIN SIGN is a `k`).
 */
const secretWordPattern = [
  ...defaultSecretNames.anywhere,
  ...defaultSecretNames.atEnd,
  ...defaultSecretNames.lastWord,
  ...defaultSecretNames.word,
]
  .map((word) => [...word].join('[-_ .]*'))
  .join('|')
const secretWordAnywhere = new RegExp(secretWordPattern, 'iu')

/** True when the default rules redact the value under `key` (see defaultSecretNames). */
export function isDefaultSecretKey(key: string): boolean {
  // Most keys hold none of the words: one scan, and no lower-cased copy.
  if (!secretWordAnywhere.test(key)) return false
  const n = normaliseKey(key)
  if (secretAnywhere.test(n) || secretAtEnd.test(n)) return true
  const words = keyWords(key).filter((w) => w !== '')
  const last = words.at(-1)
  if (last !== undefined && (defaultSecretNames.lastWord as readonly string[]).includes(last)) return true
  if (words.some((w) => (defaultSecretNames.anyWord as readonly string[]).includes(w.replace(/\d+$/, ''))))
    return true
  if (!defaultSecretNames.word.some((w) => n.includes(w))) return false
  return defaultSecretNames.word.some((w) => words.includes(w))
}

/** Most keys keyMayMatch remembers before it starts over. */
const maxKeyVerdicts = 4096

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** The message of anything thrown, without throwing (a revoked Proxy throws on `instanceof`). */
export function thrownMessage(thrown: unknown): string {
  try {
    return thrown instanceof Error ? String(thrown.message) : String(thrown)
  } catch {
    return 'an unprintable value was thrown'
  }
}

/** What a thrown value says about itself: `name`, `message` and `code`, as an Error has them. */
export interface ThrownFields {
  name: string
  message: string
  code?: string | number
}

/** What `String()` of a plain object gives, and all an older recorder kept of one thrown. */
export const plainObjectText = '[object Object]'

const ownText = (o: object, key: string): string | undefined => {
  const d = Object.getOwnPropertyDescriptor(o, key)
  return d !== undefined && 'value' in d && typeof d.value === 'string' ? d.value : undefined
}

/**
 * Reads anything thrown without throwing (a revoked Proxy throws on `instanceof`). An Error
 * gives its name, message and code. A plain object thrown in an Error's place (`throw
 * {code: 'E_PRINTER', message: 'tray empty'}`, as some clients do) is read by the same own
 * fields, never by its other contents, which no redaction rule has seen; without a
 * `message` it is `[object Object]`. Anything else is `NonError` with its text.
 */
export function thrownFields(thrown: unknown): ThrownFields {
  try {
    if (thrown instanceof Error) {
      const code = (thrown as { code?: unknown }).code
      return {
        name: String(thrown.name),
        message: String(thrown.message),
        ...(typeof code === 'string' || typeof code === 'number' ? { code } : {}),
      }
    }
    if (typeof thrown === 'object' && thrown !== null) {
      const d = Object.getOwnPropertyDescriptor(thrown, 'code')
      const code: unknown = d !== undefined && 'value' in d ? d.value : undefined
      const message = ownText(thrown, 'message')
      return {
        name: ownText(thrown, 'name') ?? 'NonError',
        message: message ?? String(thrown),
        ...(typeof code === 'string' || typeof code === 'number' ? { code } : {}),
      }
    }
    return { name: 'NonError', message: String(thrown) }
  } catch {
    return { name: 'NonError', message: 'an unprintable value was thrown' }
  }
}

/**
 * A redaction rule threw. Its message names what was thrown, never what it said: a rule
 * that rejects a value tends to quote it ("invalid card 4111..."), and this message is
 * stored in the bundle in place of the value.
 */
export class RedactionFailed extends Error {
  override readonly name = 'RedactionFailed'
  constructor(cause: unknown) {
    super(`a redaction rule failed (it threw ${thrownKind(cause)}; its message is not kept)`, { cause })
  }
}

function thrownKind(thrown: unknown): string {
  try {
    const kind =
      thrown instanceof Error
        ? /^[A-Za-z_$][\w$]{0,63}$/.test(thrown.name)
          ? thrown.name
          : 'Error'
        : thrown === null
          ? 'null'
          : typeof thrown
    return `${/^[aeiouAEIOU]/.test(kind) ? 'an' : 'a'} ${kind}`
  } catch {
    return 'an unreadable value'
  }
}

export interface RedactorOptions {
  rules?: readonly RedactRule[]
  /** Redact the default secret key names too (default true). */
  defaults?: boolean
  /** Secret for equality-preserving tokens. Without it every token is `[redacted]`. */
  key?: string | Buffer
}

export class Redactor {
  readonly patterns: readonly PathPattern[]
  /** Over-approximates "some key in this JSON text may be redacted"; undefined: always may. */
  private readonly screen: RegExp | undefined
  private readonly fns: readonly RedactFn[]
  /** Whether the default secret names (defaultSecretNames) are redacted. */
  private readonly defaults: boolean
  private readonly key: string | Buffer | undefined
  /**
   * Key names the last segment of a path rule names; undefined when some rule cannot be
   * screened by the key it ends in (a function rule, a rule ending in `*` or an index).
   */
  private readonly lastKeys: ReadonlySet<string> | undefined
  /** key -> whether a rule may redact the value under it; bounded, see keyMayMatch. */
  private readonly keyVerdicts = new Map<string, boolean>()
  /** key -> isDefaultSecretKey(key), for the tagged walk; bounded like keyVerdicts. */
  private readonly secretVerdicts = new Map<string, boolean>()

  constructor(options: RedactorOptions = {}) {
    const rules = options.rules ?? []
    this.patterns = rules.filter((r): r is string => typeof r === 'string').map(compilePath)
    this.fns = rules.filter((r): r is RedactFn => typeof r === 'function')
    this.defaults = options.defaults !== false
    this.key = options.key
    this.screen = this.buildScreen()
    this.lastKeys = this.buildLastKeys()
  }

  private buildLastKeys(): ReadonlySet<string> | undefined {
    if (this.fns.length > 0) return undefined
    const names = new Set<string>()
    for (const p of this.patterns) {
      const last = p.segments.at(-1)
      if (last?.kind !== 'key') return undefined
      // A key rule such as `['3']` also matches array index 3 (matchPath compares
      // `String(part)`), which a walk over object keys would not see.
      if (/^(?:0|[1-9]\d*)$/.test(last.name)) return undefined
      names.add(last.name)
    }
    return names
  }

  private buildScreen(): RegExp | undefined {
    if (this.fns.length > 0) return undefined
    const words: string[] = []
    for (const p of this.patterns) {
      const last = p.segments.at(-1)
      if (last?.kind !== 'key') return undefined
      // The screen runs over JSON text, where `"`, `\\` and control characters in a key
      // appear escaped; look for the key as JSON.stringify writes it.
      words.push(escapeRegExp(JSON.stringify(last.name).slice(1, -1)))
    }
    // Every key the default names redact spells one of their words (secretWordPattern).
    if (this.defaults) words.push(secretWordPattern)
    if (words.length === 0) return /(?!)/
    // Unanchored at the key's start: cheaper than `"[^"]*(...)`, and still a superset. The
    // rest of the key may hold escapes (`\"`), so the key ends at the first unescaped quote.
    return new RegExp(`(?:${words.join('|')})(?:[^"\\\\]|\\\\.)*":`, 'iu')
  }

  /**
   * Cheap screen over already-encoded plain JSON: false means no rule can match any key
   * in it, so the text can be kept as it is.
   */
  mayMatch(json: string): boolean {
    return this.screen === undefined || this.screen.test(json)
  }

  /**
   * True when values can be screened by the object keys they sit under: no rule can match
   * a value whose last path part is an object key for which keyMayMatch is false, nor a
   * value under an array index, nor the top-level value.
   */
  get screensKeys(): boolean {
    return this.lastKeys !== undefined
  }

  /**
   * Cheap per-key screen for a walk over a plain value (only meaningful when screensKeys):
   * false means no rule can match a value stored under `key`.
   */
  keyMayMatch(key: string): boolean {
    const known = this.keyVerdicts.get(key)
    if (known !== undefined) return known
    const verdict =
      this.lastKeys === undefined || this.lastKeys.has(key) || (this.defaults && isDefaultSecretKey(key))
    // Payload keys are mostly a fixed vocabulary; a payload keyed by ids would otherwise
    // grow the cache without bound.
    if (this.keyVerdicts.size >= maxKeyVerdicts) this.keyVerdicts.clear()
    this.keyVerdicts.set(key, verdict)
    return verdict
  }

  private isSecretKey(key: string): boolean {
    const known = this.secretVerdicts.get(key)
    if (known !== undefined) return known
    const verdict = isDefaultSecretKey(key)
    if (this.secretVerdicts.size >= maxKeyVerdicts) this.secretVerdicts.clear()
    this.secretVerdicts.set(key, verdict)
    return verdict
  }

  /**
   * Whether the default secret names are redacted: a secret a value holds by no key name,
   * such as the password in a URL's userinfo, is redacted with them.
   */
  get redactsSecretNames(): boolean {
    return this.defaults
  }

  get isEmpty(): boolean {
    return this.patterns.length === 0 && this.fns.length === 0 && !this.defaults
  }

  /** The rules as recorded in a bundle manifest (functions by their name). */
  describe(): string[] {
    const out = this.patterns.map((p) => p.source)
    for (const fn of this.fns) out.push(`fn:${fn.name || 'anonymous'}`)
    if (this.defaults) out.push('defaults')
    return out
  }

  get equalityPreserving(): boolean {
    return this.key !== undefined
  }

  /**
   * Path rules and secret key names name a place inside a payload, so they never match the
   * top-level value; function rules see it too (path `[]`): a secret is often the whole
   * payload, such as the string an effect read from a vault.
   */
  matches(path: readonly PathPart[], value: unknown): boolean {
    if (path.length > 0) {
      const last = path[path.length - 1]
      if (typeof last === 'string' && this.defaults && this.isSecretKey(last)) return true
      for (const p of this.patterns) if (matchPath(p.segments, path)) return true
    }
    for (const fn of this.fns) {
      let hit: unknown
      try {
        hit = fn(path, value)
      } catch (err) {
        throw new RedactionFailed(err)
      }
      if (isPromiseLike(hit)) {
        // An async rule cannot answer in time: the payload is recorded as a failed redaction
        // (never in clear), and what the promise rejects with must not end the host.
        Promise.resolve(hit).catch(() => undefined)
        throw new RedactionFailed(new Error('the rule returned a promise; a rule must answer at once'))
      }
      if (hit) return true
    }
    return false
  }

  token(value: unknown): string {
    if (this.key === undefined) return '[redacted]'
    const h = createHmac('sha256', this.key)
    // A boxed string is recorded as the string, so it gets the string's token.
    const v = typeof value === 'object' && value !== null ? safeUnboxed(value) : value
    h.update(typeof v === 'string' ? `s:${v}` : `j:${stableText(v)}`)
    return `[redacted:${h.digest('base64url').slice(0, 16)}]`
  }
}

/** Whether a rule's answer is a promise (`then` read once; one that throws to read is not). */
function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  if ((typeof v !== 'object' || v === null) && typeof v !== 'function') return false
  try {
    return typeof (v as { then?: unknown }).then === 'function'
  } catch {
    return false
  }
}

/** unboxed, or the value itself when asking throws (a revoked Proxy). */
function safeUnboxed(value: object): unknown {
  try {
    return unboxed(value)
  } catch {
    return value
  }
}

/**
 * Text that identifies a non-string value for its token: deep-equal values give the same
 * text (object keys, Map entries and Set items in any order), and values that JSON would
 * blur together (NaN and null, two different Maps, -0 and 0, undefined) stay apart.
 */
function stableText(value: unknown): string {
  try {
    return canonical(value, [])
  } catch {
    return 'unprintable'
  }
}

function canonical(v: unknown, seen: object[]): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v)
    case 'number':
      if (Object.is(v, -0)) return '-0'
      return Number.isFinite(v) ? String(v) : `#${v}`
    case 'bigint':
      return `${v}n`
    case 'boolean':
    case 'undefined':
      return String(v)
    case 'object':
      break
    default:
      return typeof v
  }
  if (v === null) return 'null'
  if (seen.includes(v)) return 'cyclic'
  if (v instanceof Date) return `date:${Number.isNaN(v.getTime()) ? 'invalid' : v.toISOString()}`
  if (v instanceof Uint8Array) return `${Buffer.isBuffer(v) ? 'buffer' : 'bytes'}:${viewToBase64(v)}`
  if (ArrayBuffer.isView(v)) {
    const kind = typedArrayKind(v) ?? 'DataView'
    return `${kind}:${typedArrayToBase64(v, kind) ?? viewToBase64(v)}`
  }
  if (types.isArrayBuffer(v)) return `arraybuffer:${bufferToBase64(v)}`
  if (types.isSharedArrayBuffer(v)) return `sharedarraybuffer:${bufferToBase64(v)}`
  const primitive = unboxed(v)
  if (primitive !== v) return canonical(primitive, seen)
  if (v instanceof Error) return `error:${JSON.stringify([v.name, v.message])}`
  // What the value is recorded as: a RegExp's fields alone are `{}`, whatever it matches.
  const opaque = opaqueForm(v)
  if (opaque?.kind === 'text') return `text:${JSON.stringify(opaque.text)}`
  if (opaque?.kind === 'params') return `params:${paramsText(opaque.entries)}`
  if (opaque?.kind === 'url') return `url:${opaque.href}`
  if (opaque?.kind === 'entries') return canonical(opaque.fields, seen)
  seen.push(v)
  try {
    if (Array.isArray(v)) return `[${v.map((x) => canonical(x, seen)).join(',')}]`
    if (v instanceof Map) {
      const entries = [...v].map(([k, x]) => `${canonical(k, seen)}=>${canonical(x, seen)}`)
      return `map{${entries.sort().join(',')}}`
    }
    if (v instanceof Set)
      return `set{${[...v]
        .map((x) => canonical(x, seen))
        .sort()
        .join(',')}}`
    const obj = v as Record<string, unknown>
    const keys = Object.keys(obj).sort()
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(obj[k], seen)}`).join(',')}}`
  } finally {
    seen.pop()
  }
}
