/**
 * Appends `items` to `list` one by one: `push(...items)` passes each as an argument, and
 * past ~120,000 of them (a payload of 150,000 numbers printed one per line, a record of
 * 200,000 stages) the call overflows the stack.
 */
export function appendAll<T>(list: T[], items: Iterable<T>): void {
  for (const item of items) list.push(item)
}
