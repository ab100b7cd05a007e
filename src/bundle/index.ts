/** The bundle format: the only module that talks to SQLite. */

export { type ExtractOptions, type ExtractResult, extractRecords, safeFileName } from './extract.js'
export { defaultMaxBytes, type OpenOptions } from './open.js'
export { pinExpectations } from './pin.js'
export {
  type BundleCounts,
  BundleReader,
  type FindHit,
  type FindPredicate,
  keyNotFound,
  openBundle,
  type RecordFilter,
} from './reader.js'
export { APPLICATION_ID, FORMAT_VERSION, type Manifest, PAGE_SIZE } from './schema.js'
export { BundleSet } from './set.js'
export type * from './types.js'
export { BundleWriter, type WriterOptions } from './writer.js'
