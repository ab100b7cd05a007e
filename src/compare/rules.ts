import { compilePath } from '../codec/index.js'
import type { DiffRules } from '../config.js'
import { ConfigError } from '../errors.js'
import type { CompiledRules } from './diff.js'

/** Compiles the config's `diff` rules; throws PathSyntaxError naming the bad path. */
export function compileRules(rules: DiffRules | undefined): CompiledRules {
  return {
    ignore: (rules?.ignore ?? []).map(compilePath),
    tolerance: Object.entries(rules?.tolerance ?? {}).map(([path, within]) => {
      if (typeof within !== 'number' || !Number.isFinite(within)) {
        throw new ConfigError(
          `diff.tolerance[${JSON.stringify(path)}] must be a number (an absolute difference), not ${JSON.stringify(within)}`,
        )
      }
      return { pattern: compilePath(path), within: Math.abs(within) }
    }),
    arrayKeys: Object.entries(rules?.arrayKeys ?? {}).map(([path, field]) => ({
      pattern: compilePath(path),
      field: String(field),
    })),
  }
}
