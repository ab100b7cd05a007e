/**
 * `retrace <something that is not a command>`: one line in retrace's own words and exit 2,
 * with the nearest command name when one is close (a typo), instead of oclif's banner.
 */
import type { Hook } from '@oclif/core/hooks'

/** Edit distance (insert, delete, substitute), small inputs only. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = row
  }
  return prev[b.length]!
}

const hook: Hook<'command_not_found'> = async (opts) => {
  // oclif joins a word and the next with ":" when neither is a command; a name that is a
  // command itself ("replay:foo") is shown whole.
  const head = opts.id.split(':')[0] ?? opts.id
  const name = opts.config.commandIDs.includes(head) ? opts.id : head
  const near = opts.config.commandIDs
    .map((id) => ({ id, d: distance(name.slice(0, 40), id) }))
    .filter((c) => c.d <= 2)
    .sort((x, y) => x.d - y.d)[0]
  process.stderr.write(
    `retrace: no command ${JSON.stringify(name.slice(0, 80))}${near ? ` (did you mean "${near.id}"?)` : ''}; retrace --help lists them\n`,
  )
  process.exit(2)
}

export default hook
