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
