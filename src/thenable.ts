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

const promiseThen = Promise.prototype.then

/**
 * Calls `onSettled` once `value` settles, before anything the caller chains on it, and gives
 * back what the caller of a wrapped function gets. A native promise is given back itself: the
 * same object (with whatever the host's code added to it, as a child-process handle does), and
 * the observer added here never rejects, so a rejection the host handles elsewhere is not made
 * an unhandled one. Any other thenable is adopted by a new promise, its `then` called once (a
 * lazy query builder does its work there), as `Promise.resolve` would.
 */
export function observe<T>(value: PromiseLike<T>, onSettled: (ok: boolean, v: unknown) => void): Promise<T> {
  const settle = (ok: boolean, v: unknown): void => {
    try {
      onSettled(ok, v)
    } catch {
      // The observers report their own failures; one must not reject into the host.
    }
  }
  if (isNativePromise(value)) {
    try {
      promiseThen.call(
        value,
        (v) => settle(true, v),
        (e: unknown) => settle(false, e),
      )
      return value
    } catch {
      // Not a promise after all (an object given Promise.prototype): adopted below.
    }
  }
  return Promise.resolve(value).then(
    (v) => {
      settle(true, v)
      return v
    },
    (e: unknown) => {
      settle(false, e)
      throw e
    },
  )
}

function isNativePromise<T>(v: PromiseLike<T>): v is Promise<T> {
  try {
    return Object.getPrototypeOf(v) === Promise.prototype && !Object.hasOwn(v, 'then')
  } catch {
    return false
  }
}
