/**
 * The retrace SDK. Importing it loads the recorder, the codec and (in a worker thread)
 * the bundle writer; no CLI code.
 */

export type { RedactFn, RedactRule } from './codec/index.js'
export {
  type DiffRules,
  defineConfig,
  type InvariantDef,
  type InvariantFn,
  type RetraceConfig,
  type StageRef,
} from './config.js'
export {
  createRecorder,
  type Recorder,
  RecorderError,
  type RecorderOptions,
  type RecorderStats,
  type RecordOptions,
  type StageContext,
  type StageFn,
  type StageOptions,
} from './recorder/recorder.js'
export { version } from './version.js'
