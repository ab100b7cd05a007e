import { compilePath } from '../codec/index.js'
import type { DiffRules } from '../config.js'
import { ConfigError } from '../errors.js'
import type { CompiledRules } from './diff.js'

const ruleNames = ['ignore', 'tolerance', 'arrayKeys'] as const

const plainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

const shown = (v: unknown): string => {
  if (typeof v === 'number' || typeof v === 'bigint') return String(v)
  try {
    return JSON.stringify(v) ?? String(v)
  } catch {
    return String(v)
  }
}

/** A path a rule names: a string, compiled (PathSyntaxError when it does not parse). */
function rulePath(path: unknown, where: string) {
  if (typeof path !== 'string') {
    throw new ConfigError(`${where} must be a path such as "$..updatedAt", not ${shown(path)}`)
  }
  // An empty path would name the whole value: `ignore: ['']` (an unset variable) would pass everything.
  if (path.trim() === '') throw new ConfigError(`${where} is empty; write "$" to mean the whole value`)
  return compilePath(path)
}

/**
 * Validates and compiles the config's `diff` rules: throws ConfigError (one line, naming the
 * rule) for a rule of the wrong shape, and PathSyntaxError naming a path that does not parse.
 * A rule that cannot be used is refused rather than dropped: a misspelt rule name
 * would otherwise compare something else than the config says.
 */
export function compileRules(rules: DiffRules | undefined): CompiledRules {
  if (rules === undefined || (rules as unknown) === null) return { ignore: [], tolerance: [], arrayKeys: [] }
  if (!plainObject(rules)) {
    throw new ConfigError(`diff must be an object of rules (${ruleNames.join(', ')}), not ${shown(rules)}`)
  }
  for (const name of Object.keys(rules)) {
    if (!(ruleNames as readonly string[]).includes(name)) {
      throw new ConfigError(`diff.${name} is not a rule; the rules are ${ruleNames.join(', ')}`)
    }
  }
  const { ignore = [], tolerance = {}, arrayKeys = {} } = rules as Record<string, unknown>
  if (!Array.isArray(ignore)) {
    throw new ConfigError(`diff.ignore must be a list of paths (["$..updatedAt"]), not ${shown(ignore)}`)
  }
  if (!plainObject(tolerance)) {
    throw new ConfigError(
      `diff.tolerance must map paths to numbers ({ "$..price": 0.005 }), not ${shown(tolerance)}`,
    )
  }
  if (!plainObject(arrayKeys)) {
    throw new ConfigError(
      `diff.arrayKeys must map paths to field names ({ "$.items": "sku" }), not ${shown(arrayKeys)}`,
    )
  }
  return {
    ignore: ignore.map((path, i) => rulePath(path, `diff.ignore[${i}]`)),
    tolerance: Object.entries(tolerance).map(([path, within]) => {
      if (typeof within !== 'number' || !Number.isFinite(within)) {
        throw new ConfigError(
          `diff.tolerance[${JSON.stringify(path)}] must be a number (an absolute difference), not ${shown(within)}`,
        )
      }
      // A negative tolerance is read as its size (±0.01).
      return { pattern: rulePath(path, 'a diff.tolerance path'), within: Math.abs(within) }
    }),
    arrayKeys: Object.entries(arrayKeys).map(([path, field]) => {
      if (typeof field !== 'string') {
        throw new ConfigError(
          `diff.arrayKeys[${JSON.stringify(path)}] must be the name of the field that identifies an item ("sku"), not ${shown(field)}`,
        )
      }
      return { pattern: rulePath(path, 'a diff.arrayKeys path'), field }
    }),
  }
}
