/**
 * What a stage wrapped by `recorder.stage` carries: the function it wraps, under a
 * registered symbol (so a copy of retrace in the service's own `node_modules` marks it the
 * same way). A config may name a stage module's export as the recorder wrapped it; replay
 * calls the function inside, with its playback context, not the recording wrapper.
 */
export const wrappedStage: unique symbol = Symbol.for('retrace.stage')

/** The function a recorder-wrapped stage wraps, or `fn` itself. Never throws. */
export function unwrapStage(fn: unknown): unknown {
  try {
    const inner = (fn as { [wrappedStage]?: unknown } | null)?.[wrappedStage]
    return typeof inner === 'function' ? inner : fn
  } catch {
    return fn
  }
}

/**
 * Where replay publishes how a wrapped stage called inside a replayed stage is played back
 * (`globalThis[replayHook]`), under a registered symbol for the same reason as
 * `wrappedStage`. A recorder-wrapped stage reads it before anything else: given a promise,
 * that is the call's result; given `undefined` (no stage is being replayed in this async
 * context), the call goes on as usual. Absent in production, so the recorder pays one
 * property read.
 */
export const replayHook: unique symbol = Symbol.for('retrace.replay')

/** The hook replay publishes: plays back `fn` as the nested call of `stage`, or `undefined`. */
export type ReplayHook = (
  stage: string,
  input: unknown,
  fn: (input: never, ctx: never) => unknown,
  self: unknown,
) => Promise<unknown> | undefined
