// The project's own regression recordings, through the vitest integration users get.
import { describeRecordings } from '../src/vitest/index.js'

describeRecordings('recordings/regressions', { config: 'examples/inventory/retrace.config.ts' })
