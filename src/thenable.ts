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
