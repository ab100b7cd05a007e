// Connects to 127.0.0.1:<argv[2]> and ends: what a child process of a replayed stage does.
require('node:net')
  .connect(Number(process.argv[2]), '127.0.0.1')
  .on('connect', function () {
    this.end()
  })
  .on('error', () => {})
