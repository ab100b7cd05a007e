import { openBundle } from '../bundle/index.js'
import { RetraceCommand } from '../cli/base-command.js'
import { bundleArg } from '../cli/flags.js'
import { type InspectView, renderInspect } from '../render/listing.js'

export default class Inspect extends RetraceCommand<typeof Inspect> {
  static override args = { bundle: bundleArg }
  static override description =
    'Prints the manifest (format version, pipeline, builds, redaction rules), counts, time range, stages and size.'
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> <%= command.id %> recordings/inventory.sqlite']
  static override summary = 'Describe a bundle.'

  async run(): Promise<InspectView> {
    const reader = openBundle(this.args.bundle)
    try {
      const view: InspectView = {
        path: reader.path,
        sizeBytes: reader.sizeBytes,
        formatVersion: reader.formatVersion,
        manifest: reader.manifest(),
        ...reader.counts(),
      }
      if (!this.jsonEnabled()) this.log(renderInspect(view, this.theme))
      return view
    } finally {
      reader.close()
    }
  }
}
