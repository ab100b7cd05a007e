/**
 * A value as JSON text inside a one-line message (`why`, `verify`): cut to `max`
 * characters with the full length said, so a stage output of megabytes at the path asked
 * about still gives a line, not a screenful. The value itself stays whole in `--json`.
 */
export function brief(value: unknown, max = 120): string {
  if (value === undefined) return 'nothing'
  const text = JSON.stringify(value) ?? String(value)
  if (text.length <= max) return text
  let end = max - 1
  // Never end on the first half of a surrogate pair.
  const last = text.charCodeAt(end - 1)
  if (last >= 0xd800 && last <= 0xdbff) end--
  return `${text.slice(0, end)}… (${text.length.toLocaleString('en-US')} characters)`
}
