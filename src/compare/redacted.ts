/** Redaction tokens as the recorder writes them: `[redacted]` or `[redacted:<16 chars>]`. */
const token = /^\[redacted(?::[A-Za-z0-9_-]{16})?\]$/

/**
 * True for a value the recorder redacted. Production never kept the real value, so a
 * local value in its place cannot be compared: it is suppressed as `redacted`.
 */
export function isRedactionToken(value: unknown): boolean {
  return typeof value === 'string' && token.test(value)
}
