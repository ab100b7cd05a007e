/**
 * The parts of oclif the CLI uses, from one module: `npm run build` turns it into one file
 * holding oclif and the libraries it loads (scripts/bundle.mjs), which bin/run.js and every
 * command import, so one copy of oclif runs and its ~60 CommonJS files are not each found,
 * read and compiled at every start-up.
 */
export * as Args from '@oclif/core/args'
export { Command } from '@oclif/core/command'
export { execute } from '@oclif/core/execute'
export * as Flags from '@oclif/core/flags'
