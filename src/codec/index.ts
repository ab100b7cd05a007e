export {
  binaryNames,
  shortestFloat32,
  strictBase64,
  type TypedArray,
  typedArrayFrom,
  typedArrayKinds,
} from './binary.js'
export {
  DecodeError,
  decode,
  decodeParsed,
  decodeRaw,
  isUnrecorded,
  maxDecodeDepth,
  parseJson,
  type Unrecorded,
} from './decode.js'
export {
  defaultLimits,
  type EncodeLimits,
  encode,
  PayloadError,
  type PayloadProblem,
  TAG,
  unfinishedMarker,
  unrecordedMarker,
} from './encode.js'
export {
  compilePath,
  formatPath,
  getAt,
  matchPath,
  type PathPart,
  type PathPattern,
  PathSyntaxError,
  parsePath,
  type Segment,
} from './json-path.js'
export { storedQueryRedacted } from './opaque.js'
export {
  defaultSecretNames,
  isDefaultSecretKey,
  plainObjectText,
  type RedactFn,
  RedactionFailed,
  Redactor,
  type RedactorOptions,
  type RedactRule,
  type ThrownFields,
  thrownFields,
  thrownMessage,
} from './redact.js'
