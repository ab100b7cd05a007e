/**
 * Invariants: named checks over one record's chain, the monitoring formula of a core
 * metric (`compute.output.available == compute.output.onHand - compute.output.reserved`)
 * run on recorded and on replayed chains.
 *
 * Expressions are parsed by jsep and evaluated here over plain data: member access reads
 * own properties only, calls are limited to a fixed set of pure functions. Never `eval`.
 */
import jsep from 'jsep'
import { decodeParsed } from '../codec/decode.js'
import { compact } from '../codec/display.js'
import type { InvariantDef, InvariantFn } from '../config.js'
import { ConfigError } from '../errors.js'

/** One stage of a chain as invariants see it: the last attempt's input and output. */
export interface ChainStage {
  input: unknown
  output: unknown
  error?: unknown
  attempt: number
}

export type Chain = Record<string, ChainStage>

export interface CompiledInvariant {
  name: string
  source: string
  /** Stages the expression names; the check is not applicable when one is absent. */
  stages: string[]
  check: (chain: Chain) => true | string
}

export type InvariantStatus = 'ok' | 'violated' | 'not-applicable' | 'error'

export interface InvariantResult {
  name: string
  status: InvariantStatus
  message?: string
  /** Stages the check reads, in chain order; the last one is where a violation is attributed. */
  stages: string[]
}

type Node = jsep.Expression

/** A Set's or Map's items as typed JSON holds them (`{"$t":"set","v":[...]}`), or undefined. */
function collectionItems(x: unknown): unknown[] | undefined {
  if (typeof x !== 'object' || x === null || Array.isArray(x) || !Object.hasOwn(x, '$t')) return undefined
  const t = x as { $t: unknown; v?: unknown }
  return (t.$t === 'set' || t.$t === 'map') && Array.isArray(t.v) ? t.v : undefined
}

const allBigInts = (xs: unknown[]): xs is bigint[] => xs.length > 0 && xs.every((x) => typeof x === 'bigint')

const functions: Record<string, (...args: unknown[]) => unknown> = {
  abs: (x) => (typeof x === 'bigint' ? (x < 0n ? -x : x) : Math.abs(Number(x))),
  // BigInts stay BigInts (ids and cents past 2^53 would lose their last digits as numbers).
  min: (...xs) => (allBigInts(xs) ? xs.reduce((a, b) => (b < a ? b : a)) : Math.min(...xs.map(Number))),
  max: (...xs) => (allBigInts(xs) ? xs.reduce((a, b) => (b > a ? b : a)) : Math.max(...xs.map(Number))),
  round: (x, d) => {
    if (typeof x === 'bigint' && Number(d ?? 0) >= 0) return x
    const f = 10 ** Number(d ?? 0)
    return Math.round(Number(x) * f) / f
  },
  floor: (x) => (typeof x === 'bigint' ? x : Math.floor(Number(x))),
  ceil: (x) => (typeof x === 'bigint' ? x : Math.ceil(Number(x))),
  len: (x) =>
    typeof x === 'string' || Array.isArray(x)
      ? x.length
      : (collectionItems(x)?.length ??
        (typeof x === 'object' && x !== null && !(x instanceof Date) ? Object.keys(x).length : 0)),
  sum: (x) => {
    const items = Array.isArray(x) ? x.map(untag) : collectionItems(x)?.map(untag)
    if (items === undefined) return Number.NaN
    if (items.length > 0 && items.every((i) => typeof i === 'bigint'))
      return (items as bigint[]).reduce((a, b) => a + b, 0n)
    return items.reduce((a: number, b) => a + Number(b), 0)
  },
  exists: (x) => x !== undefined && x !== null,
}

class InvariantEvalError extends Error {}

/**
 * Chains hold typed JSON (src/codec): JSON cannot say undefined, NaN, ±Infinity, -0, a
 * BigInt or a Date, so they are tagged, and an object with its own `$t` key is wrapped.
 * Read those back as the values they stand for, so money held as BigInt adds up and dates
 * compare; other tags (Map, Set, Buffer...) stay plain data, read through by `member`.
 */
function untag(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.hasOwn(v, '$t')) return v
  const t = v as { $t: unknown; v?: unknown }
  if (t.$t === 'undef') return undefined
  if (t.$t === 'num' && typeof t.v === 'string') return Number(t.v)
  if (t.$t === 'bigint' && typeof t.v === 'string' && /^-?\d+$/.test(t.v)) return BigInt(t.v)
  if (t.$t === 'date' && (typeof t.v === 'string' || t.v === null))
    return new Date(t.v === null ? Number.NaN : t.v)
  return v
}

function member(obj: unknown, key: unknown): unknown {
  if (obj === null || obj === undefined) return undefined
  const k = typeof key === 'number' ? key : String(key)
  if (k === '__proto__' || k === 'constructor' || k === 'prototype') return undefined
  if (typeof obj === 'string' && k === 'length') return obj.length
  if (Array.isArray(obj) && k === 'length') return obj.length
  if (typeof obj !== 'object') return undefined
  // A Map's entries are named by their key, as diff rules name them (`byCarrier.dhl`).
  if ((obj as { $t?: unknown }).$t === 'map' && Object.hasOwn(obj, '$t')) {
    const entry = collectionItems(obj)?.find(
      (e) =>
        Array.isArray(e) &&
        (typeof e[0] === 'string' || typeof e[0] === 'number') &&
        String(e[0]) === String(k),
    ) as unknown[] | undefined
    return entry === undefined ? undefined : untag(entry[1])
  }
  const o =
    (obj as { $t?: unknown }).$t === 'obj' && Object.hasOwn(obj, '$t') ? (obj as { v?: unknown }).v : obj
  if (typeof o !== 'object' || o === null || o instanceof Date) return undefined
  return Object.hasOwn(o, k) ? untag((o as Record<string | number, unknown>)[k]) : undefined
}

const isNumeric = (v: unknown): v is number | bigint => typeof v === 'number' || typeof v === 'bigint'

function equal(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a === b || (Number.isNaN(a) && Number.isNaN(b))
  // 620n == 620: a BigInt and a number are equal when they hold the same value.
  if (isNumeric(a) && isNumeric(b)) {
    const [big, other] = typeof a === 'bigint' ? [a, b] : [b as bigint, a as number]
    return typeof other === 'bigint' ? big === other : Number.isInteger(other) && big === BigInt(other)
  }
  if (a instanceof Date && b instanceof Date) {
    const x = a.getTime()
    const y = b.getTime()
    return x === y || (Number.isNaN(x) && Number.isNaN(y))
  }
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null)
    return JSON.stringify(a) === JSON.stringify(b)
  return a === b
}

/** A whole number beside a BigInt joins it as a BigInt, so `total - 1` stays exact. */
const asBigInt = (v: unknown, other: unknown): unknown =>
  typeof other === 'bigint' && typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : v

/**
 * `+ - * %` on BigInts (and whole numbers beside them) stay exact BigInts: money in cents.
 * Anything else is read as numbers, a Date as its milliseconds. `/` is always a number:
 * BigInt division would drop the remainder.
 */
function arithmetic(op: string, left: unknown, right: unknown): unknown {
  const l = asBigInt(left, right)
  const r = asBigInt(right, left)
  if (typeof l === 'bigint' && typeof r === 'bigint' && op !== '/') {
    if (op === '+') return l + r
    if (op === '-') return l - r
    if (op === '*') return l * r
    return r === 0n ? Number.NaN : l % r
  }
  const x = Number(l)
  const y = Number(r)
  if (op === '+') return x + y
  if (op === '-') return x - y
  if (op === '*') return x * y
  if (op === '/') return x / y
  return x % y
}

function evaluate(node: Node, scope: Chain): unknown {
  switch (node.type) {
    case 'Literal':
      return (node as jsep.Literal).value
    case 'Identifier': {
      const name = (node as jsep.Identifier).name
      if (name === 'true') return true
      if (name === 'false') return false
      if (name === 'null') return null
      if (name === 'undefined') return undefined
      return member(scope, name)
    }
    case 'MemberExpression': {
      const m = node as jsep.MemberExpression
      const obj = evaluate(m.object, scope)
      const key = m.computed ? evaluate(m.property, scope) : (m.property as jsep.Identifier).name
      return member(obj, key)
    }
    case 'UnaryExpression': {
      const u = node as jsep.UnaryExpression
      const v = evaluate(u.argument, scope)
      if (u.operator === '!') return !v
      if (u.operator === '-') return typeof v === 'bigint' ? -v : -Number(v)
      if (u.operator === '+') return Number(v)
      throw new InvariantEvalError(`operator ${u.operator} is not supported`)
    }
    case 'BinaryExpression': {
      const b = node as jsep.BinaryExpression
      if (b.operator === '&&') return evaluate(b.left, scope) && evaluate(b.right, scope)
      if (b.operator === '||') return evaluate(b.left, scope) || evaluate(b.right, scope)
      const l = evaluate(b.left, scope)
      const r = evaluate(b.right, scope)
      switch (b.operator) {
        case '==':
        case '===':
          return equal(l, r)
        case '!=':
        case '!==':
          return !equal(l, r)
        case '<':
          return (l as number) < (r as number)
        case '>':
          return (l as number) > (r as number)
        case '<=':
          return (l as number) <= (r as number)
        case '>=':
          return (l as number) >= (r as number)
        case '+':
          return typeof l === 'string' || typeof r === 'string'
            ? String(l) + String(r)
            : arithmetic('+', l, r)
        case '-':
        case '*':
        case '/':
        case '%':
          return arithmetic(b.operator, l, r)
        default:
          throw new InvariantEvalError(`operator ${b.operator} is not supported`)
      }
    }
    case 'ConditionalExpression': {
      const c = node as jsep.ConditionalExpression
      return evaluate(c.test, scope) ? evaluate(c.consequent, scope) : evaluate(c.alternate, scope)
    }
    case 'CallExpression': {
      const c = node as jsep.CallExpression
      const callee = c.callee.type === 'Identifier' ? (c.callee as jsep.Identifier).name : undefined
      const fn = callee !== undefined && Object.hasOwn(functions, callee) ? functions[callee] : undefined
      if (fn === undefined) throw new InvariantEvalError(`unknown function ${callee ?? '(expression)'}`)
      return fn(...c.arguments.map((a: Node) => evaluate(a, scope)))
    }
    case 'ArrayExpression':
      return (node as jsep.ArrayExpression).elements.map((e: Node | null) =>
        e ? evaluate(e, scope) : undefined,
      )
    default:
      throw new InvariantEvalError(`${node.type} is not supported in invariants`)
  }
}

/** The stage names an expression reads (the roots of its member chains). */
function rootsOf(node: Node, out: Set<string>): void {
  if (node.type === 'Identifier') {
    const name = (node as jsep.Identifier).name
    if (!['true', 'false', 'null', 'undefined'].includes(name)) out.add(name)
    return
  }
  if (node.type === 'MemberExpression') {
    const m = node as jsep.MemberExpression
    rootsOf(m.object, out)
    if (m.computed) rootsOf(m.property, out)
    return
  }
  if (node.type === 'CallExpression') {
    for (const a of (node as jsep.CallExpression).arguments) rootsOf(a, out)
    return
  }
  for (const key of ['left', 'right', 'argument', 'test', 'consequent', 'alternate'] as const) {
    const child = (node as unknown as Record<string, Node | undefined>)[key]
    if (child !== undefined && child !== null && typeof child === 'object') rootsOf(child, out)
  }
  if (node.type === 'ArrayExpression')
    for (const e of (node as jsep.ArrayExpression).elements) if (e) rootsOf(e, out)
}

/** Back to typed JSON, for showing a value as every other message shows it (`620n`). */
function retag(v: unknown): unknown {
  if (typeof v === 'bigint') return { $t: 'bigint', v: String(v) }
  if (v instanceof Date) return { $t: 'date', v: Number.isNaN(v.getTime()) ? null : v.toISOString() }
  return v
}

function show(v: unknown): string {
  if (v === undefined) return 'undefined'
  if (typeof v === 'number') return String(v)
  return compact(retag(v), 60)
}

function syntaxError(name: string, source: string, reason: string, index: number): ConfigError {
  return new ConfigError(
    `invariant ${JSON.stringify(name)}: ${reason} at column ${index + 1}\n  ${source}\n  ${' '.repeat(index)}^`,
    'E_INVARIANT_SYNTAX',
  )
}

/**
 * Where the text after the first expression starts. jsep reads `a b`, `a; b` and an empty
 * string as a Compound node instead of failing; an invariant is exactly one expression.
 */
function endOfFirstExpression(source: string): number {
  const Parser = (jsep as unknown as { Jsep: new (expr: string) => jsep.HookScope }).Jsep
  const parser = new Parser(source)
  parser.gobbleSpaces()
  if (parser.index < source.length) parser.gobbleExpression()
  return parser.index
}

/** Parses an expression; a syntax error is a ConfigError that points at the column. */
export function compileExpression(name: string, source: string): CompiledInvariant {
  let ast: Node
  try {
    ast = jsep(source)
  } catch (err) {
    const index = Number((err as { index?: unknown }).index ?? 0)
    const reason = String((err as { description?: unknown }).description ?? (err as Error).message)
    throw syntaxError(name, source, reason, index)
  }
  if (ast.type === 'Compound') {
    const index = endOfFirstExpression(source)
    throw index >= source.length
      ? syntaxError(name, source, 'Expected an expression', index)
      : syntaxError(name, source, `Unexpected ${JSON.stringify(source[index])} after the expression`, index)
  }
  const roots = new Set<string>()
  rootsOf(ast, roots)
  const stages = [...roots].filter((r) => !Object.hasOwn(functions, r))
  return {
    name,
    source,
    stages,
    check: (chain) => {
      const value = evaluate(ast, chain)
      if (value === true) return true
      if (ast.type === 'BinaryExpression') {
        const b = ast as jsep.BinaryExpression
        if (!['&&', '||'].includes(b.operator)) {
          return `${source} is false: left ${show(evaluate(b.left, chain))}, right ${show(evaluate(b.right, chain))}`
        }
      }
      return `${source} is ${show(value)}`
    },
  }
}

/** Reads a recorded payload back as the value the stage gave; one that does not decode stays as read. */
function decodedPayload(v: unknown): unknown {
  try {
    return decodeParsed(v)
  } catch {
    return v
  }
}

/**
 * The chain as a function check sees it: each payload decoded to the values the stages
 * gave and took (a BigInt, a Date, a Map, undefined), not the typed JSON that stores them.
 * Decoded once per chain, whatever the number of function checks.
 */
const decodedChains = new WeakMap<Chain, Chain>()
function decodedChain(chain: Chain): Chain {
  let out = decodedChains.get(chain)
  if (out !== undefined) return out
  out = {}
  for (const [stage, s] of Object.entries(chain)) {
    Object.defineProperty(out, stage, {
      value: { ...s, input: decodedPayload(s.input), output: decodedPayload(s.output) },
      enumerable: true,
      writable: true,
      configurable: true,
    })
  }
  decodedChains.set(chain, out)
  return out
}

function compileFunction(name: string, fn: InvariantFn): CompiledInvariant {
  return {
    name,
    source: `fn:${fn.name || name}`,
    stages: [],
    check: (chain) => {
      const r = fn(decodedChain(chain) as Parameters<InvariantFn>[0])
      return r === true ? true : typeof r === 'string' ? r : `returned ${show(r)}`
    },
  }
}

export function compileInvariants(defs: readonly (string | InvariantDef)[] | undefined): CompiledInvariant[] {
  return (defs ?? []).map((d, i) => {
    if (typeof d === 'string') return compileExpression(d, d)
    const name = typeof d.name === 'string' && d.name.length > 0 ? d.name : `invariant ${i + 1}`
    if (typeof d.check === 'function') return compileFunction(name, d.check)
    if (typeof d.check === 'string') return compileExpression(name, d.check)
    throw new ConfigError(
      `invariant ${JSON.stringify(name)}: check must be an expression string or a function`,
    )
  })
}

export function runInvariants(invariants: readonly CompiledInvariant[], chain: Chain): InvariantResult[] {
  // The expression names stages in the order it was written; the chain knows the order
  // they ran, and a violation belongs to the latest stage the check reads.
  const order = Object.keys(chain)
  const rank = (s: string): number => {
    const i = order.indexOf(s)
    return i < 0 ? order.length : i
  }
  return invariants.map((inv) => {
    const stages = [...inv.stages].sort((a, b) => rank(a) - rank(b))
    // A stage that is absent, or that failed on its last attempt, leaves nothing to check.
    if (stages.some((s) => !Object.hasOwn(chain, s) || chain[s]?.error !== undefined)) {
      return { name: inv.name, status: 'not-applicable', stages }
    }
    try {
      const r = inv.check(chain)
      return r === true
        ? { name: inv.name, status: 'ok', stages }
        : { name: inv.name, status: 'violated', message: r, stages }
    } catch (err) {
      if (err instanceof InvariantEvalError)
        return { name: inv.name, status: 'error', message: err.message, stages }
      return {
        name: inv.name,
        status: 'error',
        message: `threw ${(err as Error)?.message ?? String(err)}`,
        stages,
      }
    }
  })
}
