/**
 * Built-ins that keep their state in internal slots rather than own fields: `RegExp`,
 * `URLSearchParams` and `Headers`. Walked field by field, as `JSON.stringify` would, each is
 * `{}`, and a replay would match any other value of its kind. They are recorded as plain
 * JSON instead (no tag, so older readers read them as they are): a RegExp and a
 * URLSearchParams as their text, a Headers as an object of its entries.
 *
 * A `URL` is here too, though its `toJSON` already gives its text: that text may hold a
 * secret in a query parameter or in its userinfo, which the redaction rules must see.
 */

import { URL, URLSearchParams } from 'node:url'
import { types } from 'node:util'

/** What an opaque built-in holds: its text, or (a Headers) its entries by name. */
export type OpaqueForm =
  | { kind: 'text'; text: string }
  | { kind: 'params'; entries: [string, string][] }
  | { kind: 'entries'; fields: Record<string, string | string[]> }
  | { kind: 'url'; href: string; entries: [string, string][]; password: boolean }

/**
 * `instanceof` that cannot throw and cannot be lied to: a Proxy's `getPrototypeOf` trap
 * may throw, a constructor's own `Symbol.hasInstance` is not consulted, and a global that
 * is not there (`Headers` under `--no-experimental-fetch`) is simply not matched.
 */
function isInstance(obj: object, ctor: unknown): boolean {
  if (typeof ctor !== 'function') return false
  try {
    return Function.prototype[Symbol.hasInstance].call(ctor, obj)
  } catch {
    return false
  }
}

/** The global `Headers`, read only when asked: Node loads it on first use. */
function headersClass(): unknown {
  try {
    return (globalThis as { Headers?: unknown }).Headers
  } catch {
    return undefined
  }
}

/** The RegExp flag letters in the order `flags` writes them, and the getter each is read by. */
const regExpFlagNames = {
  d: 'hasIndices',
  g: 'global',
  i: 'ignoreCase',
  m: 'multiline',
  s: 'dotAll',
  u: 'unicode',
  v: 'unicodeSets',
  y: 'sticky',
} as const

interface HeadersLike {
  entries(): IterableIterator<[string, string]>
}

/**
 * What `Object.prototype.toString` names the value (`Headers`, `URLSearchParams`), without
 * throwing: a hostile `Symbol.toStringTag` getter may.
 */
function builtinTag(obj: object): string {
  try {
    return Object.prototype.toString.call(obj).slice(8, -1)
  } catch {
    return ''
  }
}

/** A plain object (or one that cannot say what it is): never one of these built-ins. */
function isPlainObject(obj: object): boolean {
  try {
    const proto = Object.getPrototypeOf(obj)
    return proto === Object.prototype || proto === null
  } catch {
    return true
  }
}

/**
 * The form an opaque built-in is recorded as; undefined for any other value, and for one
 * that only looks like one (made with `Object.create(URLSearchParams.prototype)`, or a
 * Proxy around one), which the built-in's own methods refuse. Its methods are the
 * prototype's, never the value's own.
 */
export function opaqueForm(obj: object): OpaqueForm | undefined {
  if (isPlainObject(obj)) return undefined
  // By its internal slot: a RegExp made in another realm (a vm context) is not `instanceof`.
  if (types.isRegExp(obj)) return regExpForm(obj)
  // The tag first: the global Headers is loaded (undici, into the host) the first time it
  // is read, which only a value that says it is one should cost.
  switch (builtinTag(obj)) {
    case 'URLSearchParams':
      return isInstance(obj, URLSearchParams) ? paramsForm(obj as URLSearchParams) : undefined
    case 'URL':
      return isInstance(obj, URL) ? urlForm(obj) : undefined
    case 'Headers': {
      const Headers = headersClass()
      return isInstance(obj, Headers)
        ? headersForm(obj, (Headers as { prototype: HeadersLike }).prototype)
        : undefined
    }
    default:
      return undefined
  }
}

/** The built-in getters that read a RegExp's slots: a subclass or an own property cannot answer for them. */
const regExpGetters: readonly (readonly [string, (() => unknown) | undefined])[] = [
  ['source', Object.getOwnPropertyDescriptor(RegExp.prototype, 'source')?.get],
  ...Object.entries(regExpFlagNames).map(
    ([letter, key]) => [letter, Object.getOwnPropertyDescriptor(RegExp.prototype, key)?.get] as const,
  ),
]

/**
 * A RegExp as `String(re)` writes it, read from its slots (`RegExp.prototype.toString`
 * asks the value's own `source` and `flags`, which a subclass or an own getter may
 * override or make throw).
 */
function regExpForm(obj: object): OpaqueForm | undefined {
  try {
    let source = ''
    let flags = ''
    for (const [name, get] of regExpGetters) {
      if (get === undefined) continue
      const v: unknown = get.call(obj)
      if (name === 'source') source = String(v)
      else if (v === true) flags += name
    }
    return { kind: 'text', text: `/${source}/${flags}` }
  } catch {
    return undefined
  }
}

function paramsForm(obj: URLSearchParams): OpaqueForm | undefined {
  try {
    // The entries, not the text: a parameter may be a secret a redaction rule names.
    return { kind: 'params', entries: [...URLSearchParams.prototype.entries.call(obj)] }
  } catch {
    return undefined
  }
}

/** The built-in getter of a URL's text: a subclass or an own property cannot answer for it. */
const urlHref = Object.getOwnPropertyDescriptor(URL.prototype, 'href')?.get

/**
 * A URL as its `href`, with what the redaction rules check in it. Only the text is read
 * from the value; its query and password come from a URL parsed afresh from that text,
 * whose getters are the built-in's.
 */
function urlForm(obj: object): OpaqueForm | undefined {
  if (urlHref === undefined) return undefined
  try {
    const href: unknown = urlHref.call(obj)
    if (typeof href !== 'string') return undefined
    const own = new URL(href)
    return {
      kind: 'url',
      href,
      entries: [...own.searchParams.entries()],
      password: own.password !== '',
    }
  } catch {
    return undefined
  }
}

function headersForm(obj: object, proto: HeadersLike): OpaqueForm | undefined {
  let entries: [string, string][]
  try {
    entries = [...proto.entries.call(obj)]
  } catch {
    return undefined
  }
  // Names come lower-case and sorted, values of a repeated name joined by `, `, except
  // `set-cookie`, which Headers keeps apart (a cookie may hold a comma): its values are
  // kept as a list when there are several.
  const fields = Object.create(null) as Record<string, string | string[]>
  for (const [name, value] of entries) {
    const before = fields[name]
    if (before === undefined) fields[name] = value
    else fields[name] = Array.isArray(before) ? [...before, value] : [before, value]
  }
  return { kind: 'entries', fields }
}

/** The query text of URLSearchParams entries, as `URLSearchParams.prototype.toString` writes it. */
export function paramsText(entries: readonly (readonly [string, string])[]): string {
  return new URLSearchParams(entries as [string, string][]).toString()
}

/**
 * A URL's `scheme://` and its authority up to the last `@` in it: the userinfo, as the WHATWG
 * parser reads it (a `@` in a password is kept in a URL's text as `%40`).
 */
const storedUserinfo = /^[A-Za-z][A-Za-z\d+.-]*:\/\/([^/?#]*)@/

/**
 * Whether stored text at `path`, read as the query string a URLSearchParams is stored as or
 * as the `href` a URL is stored as, holds a parameter `redacts` names at its name below
 * `path` (`$.query.token`, `$.url.token`); with `secretUserinfo` (the default secret names
 * are on), also whether it reads as a URL with a password in its userinfo
 * (`https://user:pass@host/`). A reader of a bundle cannot tell a stored query string or
 * URL from other text; a rule names no other place below a string, so text that only reads
 * like one costs at most a value redacted more than asked, never one kept.
 */
export function storedQueryRedacted(
  path: readonly (string | number)[],
  v: unknown,
  redacts: (path: readonly (string | number)[]) => boolean,
  secretUserinfo = false,
): boolean {
  if (typeof v !== 'string') return false
  if (secretUserinfo && storedUserinfo.exec(v)?.[1]?.includes(':')) return true
  const below: (string | number)[] = [...path, '']
  const holds = (query: string): boolean => {
    for (const name of new URLSearchParams(query).keys()) {
      below[below.length - 1] = name
      if (redacts(below)) return true
    }
    return false
  }
  if (v.includes('=') && holds(v)) return true
  // A URL's query is what follows its first `?`, up to its fragment; a name there may have
  // no `=` after it (`?token`), which the recorder checks all the same.
  const q = v.indexOf('?')
  if (q === -1) return false
  const hash = v.indexOf('#', q)
  return holds(v.slice(q + 1, hash === -1 ? undefined : hash))
}
