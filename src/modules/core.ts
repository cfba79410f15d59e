// The core task modules, in the order the README's module reference lists them.
// Each one batches all loop items of a task per host: facts in one round trip, a pure
// plan, then one apply round trip (see remote.ts).

import {aptModule} from './apt.js'
import {commandModule} from './command.js'
import {copyModule} from './copy.js'
import {fileModule} from './file.js'
import {getUrlModule} from './get_url.js'
import {gitModule} from './git.js'
import {shellModule} from './shell.js'
import {templateModule} from './template.js'
import {unarchiveModule} from './unarchive.js'
import type {ModuleSpec} from './types.js'

// The runner registers these by name (`command:`, `file:`, …).
export const coreModules: ModuleSpec[] = [
  commandModule,
  shellModule,
  aptModule,
  fileModule,
  copyModule,
  templateModule,
  getUrlModule,
  unarchiveModule,
  gitModule,
]
