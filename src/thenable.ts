/**
 * Whether `await` would adopt `v` as a promise. Reading `then` can throw (a revoked Proxy);
 * the caller says what that counts as: the recorder passes the value on untouched (false),
 * so the host's own `await` meets the error; replay treats it as a thenable (true), so
 * adopting it rejects and the stage fails with that error.
 */
export function isThenable(v: unknown, ifUnreadable: boolean): v is PromiseLike<unknown> {
  if ((typeof v !== 'object' || v === null) && typeof v !== 'function') return false
  try {
    return typeof (v as { then?: unknown }).then === 'function'
  } catch {
    return ifUnreadable
  }
}

/**
 * Marks as handled a promise a host callback returned where a plain value was asked for (an
 * `async` onError, key function or id source): when it rejects, the rejection must not end
 * the host as an unhandled one. The value itself is not used.
 */
export function ignoreRejection(v: unknown): void {
  if (isThenable(v, false)) Promise.resolve(v).catch(() => undefined)
}
