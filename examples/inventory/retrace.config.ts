/**
 * Replay config for recordings/inventory.sqlite: the recorded production chain against
 * the stages of this checkout (the fixed compute, every other stage as production ran it).
 *
 *     retrace replay recordings/inventory.sqlite <record> --config examples/inventory/retrace.config.ts
 */
import { defineConfig } from 'retrace'

export default defineConfig({
  stages: {
    binlog: './stages/binlog.ts#binlog',
    ingest: './stages/ingest.ts#ingest',
    kv: './stages/kv.ts#kv',
    compute: './stages/compute.ts#compute',
    store: './stages/store.ts#store',
    query: './stages/query.ts#query',
  },
  // Nothing to ignore: time, randomness and I/O all go through ctx and are played back.
  diff: { ignore: [] },
  invariants: [
    {
      name: 'available-matches-stock',
      check: 'compute.output.available == compute.output.onHand - compute.output.reserved',
    },
    { name: 'never-negative', check: 'store.output.available >= 0' },
    { name: 'page-shows-stored', check: 'query.output.available == store.output.available' },
  ],
})
