/** A recorder on a fresh temp bundle, closed when the test ends, collecting onError. */
import { onTestFinished } from 'vitest'
import { createRecorder, type Recorder, type RecorderError, type RecorderOptions } from '../../src/index.js'
import { tempPath } from './tmp.js'

export interface TestRecorder {
  path: string
  recorder: Recorder
  errors: RecorderError[]
}

export function testRecorder(options: Partial<RecorderOptions> = {}): TestRecorder {
  const errors: RecorderError[] = []
  const path = options.path ?? tempPath()
  const recorder = createRecorder({
    pipeline: 'test-pipeline',
    onError: (err) => errors.push(err),
    ...options,
    path,
  })
  onTestFinished(() => recorder.close())
  return { path, recorder, errors }
}
