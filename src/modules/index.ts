import {coreModules} from './core.js'
import type {ModuleSpec} from './types.js'

// Every module the playbooks can name, by name.
export function allModules(): Map<string, ModuleSpec> {
  const list: ModuleSpec[] = [...coreModules]
  return new Map(list.map((m) => [m.name, m]))
}
