/**
 * The positional words of argv for commands that take a variable number of them
 * (`strict = false`), skipping flags and the values of flags that take one.
 */
export function positionals(argv: readonly string[], valued: readonly string[]): string[] {
  const takesValue = new Set(valued)
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--') {
      out.push(...argv.slice(i + 1))
      break
    }
    if (a.startsWith('-') && a.length > 1) {
      if (takesValue.has(a)) i++
      continue
    }
    out.push(a)
  }
  return out
}
