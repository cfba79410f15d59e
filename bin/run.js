#!/usr/bin/env node
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})

// The run is over and its output written: a socket or timer some library left behind must
// not keep the process (and whoever waits on it: CI, a wrapper script) hanging. Unref'd, so a
// clean run exits at once as before.
setTimeout(() => {
  if (process.env.BAREMETAL_DEBUG) process.stderr.write(`baremetal: exiting with handles still open: ${process.getActiveResourcesInfo().join(', ')}\n`)
  process.exit()
}, 2000).unref()
