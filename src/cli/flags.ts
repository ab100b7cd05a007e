/** Flags and args shared by several commands, defined once. */
import { Args, Flags } from './oclif.js'

export const bundleArg = Args.string({ description: 'Bundle file (.sqlite).', required: true })

/** BUNDLE... for commands that read several bundles as one (src/cli/bundles.ts). */
export const bundlesArg = Args.string({
  description: 'Bundle files (.sqlite) or folders of them, read as one.',
  required: true,
})

export const configFlag = Flags.file({
  char: 'c',
  description:
    'Config file, or a folder holding one (default: retrace.config.{ts,mts,js,mjs,json,cjs,cts} found upward from here).',
})

export const keyFlag = Flags.string({ char: 'k', description: 'Business key of the record (e.g. sku:1001).' })
