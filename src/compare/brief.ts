/**
 * Values inside one-line messages (`why`, `verify`, `diff`): typed JSON as people read it,
 * cut with the full length said; two long strings as windows around their first
 * difference. They live with the rest of the display code in src/codec/display.ts.
 */
export { brief, briefPair, type PairText } from '../codec/display.js'
