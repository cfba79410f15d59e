import {existsSync, statSync} from 'node:fs'
import {dirname, isAbsolute, join, resolve} from 'node:path'
import {PlaybookError} from '../errors.js'
import type {ModuleSpec} from '../modules/types.js'
import {loadYaml, type YamlSource} from '../yamlfile.js'
import type {Block, MetaTask, PlayItem, Task} from './playbook.js'
import {parseTask} from './playbook.js'
import {checkRoleTemplate} from './check.js'
import {hasTemplate} from './template.js'

// A play's structure, expanded when it loads: blocks keep their shape (rescue and always
// are decided per host at run time), import_tasks / import_role / roles: are spliced in as
// blocks whose keywords their tasks inherit, as Ansible's static imports are. Everything
// a run will do is known, and checked, before the first host is touched.

/** Keywords a block, an import or a role hands down to its tasks. */
export interface Inherit {
  when: Array<string | boolean>
  tags: string[]
  vars: Record<string, unknown>
  become?: boolean
  becomeUser?: string
  becomeMethod?: 'sudo' | 'su'
  ignoreErrors?: boolean
  noLog?: boolean
  runOnce?: boolean
  delegateTo?: string
  environment?: Record<string, unknown>
  roleDir?: string
}

/** What loading one play collects besides its items: role handlers and defaults, roles already run. */
export interface PlayLoad {
  modules: Map<string, ModuleSpec>
  playbookDir: string
  rolesPath: string[]
  handlers: Task[]
  defaults: Record<string, unknown>
  /** Every role's vars/: the whole play sees them, as Ansible's default (private_role_vars = False). */
  roleVars: Record<string, unknown>
  rolesRun: Set<string>
  handlerRoles: Set<string>
  /** Files being expanded, outermost first: an import of one of them is a loop. */
  stack: string[]
}

type Raw = Record<string, unknown>
type Path = Array<string | number>

const BLOCK_KEYS = ['name', 'block', 'rescue', 'always', 'when', 'tags', 'vars', 'become', 'become_user', 'become_method', 'ignore_errors', 'no_log', 'run_once', 'delegate_to', 'environment']
const INHERITED = ['when', 'tags', 'vars', 'become', 'become_user', 'become_method', 'ignore_errors', 'no_log', 'run_once', 'delegate_to', 'environment']
const META_ACTIONS = ['flush_handlers', 'noop', 'end_play', 'end_host']
const MAX_DEPTH = 20

const errAt = (src: YamlSource, path: Path, msg: string, hint?: string) => new PlaybookError(msg, {where: src.where(path), hint})
const isMapping = (v: unknown): v is Raw => Boolean(v) && typeof v === 'object' && !Array.isArray(v)
const truthy = (v: unknown): boolean => v === true || v === 'yes' || v === 'true' || v === 'True'

export const isTask = (i: PlayItem): i is Task => !('kind' in i)

/** Every task of a list of items, depth first (for --list-tasks and --start-at-task). */
export function flattenTasks(items: PlayItem[]): Task[] {
  return items.flatMap((i) => (isTask(i) ? [i] : i.kind === 'block' ? [...flattenTasks(i.block), ...flattenTasks(i.rescue), ...flattenTasks(i.always)] : []))
}

export function tagsOf(v: unknown): string[] {
  if (v === undefined || v === null) return []
  if (Array.isArray(v)) return v.map(String)
  return String(v)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
}

/** The inheritable keywords of a block, import, role or play, checked, layered over the parent's. */
export function extendInherit(src: YamlSource, raw: Raw, path: Path, parent: Inherit): Inherit {
  const out: Inherit = {...parent, when: [...parent.when], tags: [...parent.tags], vars: {...parent.vars}}
  if (raw.when !== undefined) {
    const when = Array.isArray(raw.when) ? raw.when : [raw.when]
    for (const w of when) if (typeof w !== 'string' && typeof w !== 'boolean') throw errAt(src, [...path, 'when'], 'when must be a condition (string) or a list of them')
    out.when.push(...(when as Array<string | boolean>))
  }
  out.tags = [...new Set([...out.tags, ...tagsOf(raw.tags)])]
  if (raw.vars !== undefined) {
    if (!isMapping(raw.vars)) throw errAt(src, [...path, 'vars'], 'vars must be a mapping')
    Object.assign(out.vars, raw.vars)
  }
  if (raw.become !== undefined) out.become = truthy(raw.become)
  if (raw.ignore_errors !== undefined) out.ignoreErrors = truthy(raw.ignore_errors)
  if (raw.no_log !== undefined) out.noLog = truthy(raw.no_log)
  if (raw.run_once !== undefined) out.runOnce = truthy(raw.run_once)
  if (raw.become_user !== undefined) out.becomeUser = becomeUserOf(src, raw.become_user, [...path, 'become_user'])
  if (raw.become_method !== undefined) out.becomeMethod = becomeMethodOf(src, raw.become_method, [...path, 'become_method'])
  if (raw.delegate_to !== undefined) out.delegateTo = delegateOf(src, raw.delegate_to, [...path, 'delegate_to'])
  if (raw.environment !== undefined) out.environment = {...(out.environment ?? {}), ...environmentOf(src, raw.environment, [...path, 'environment'])}
  return out
}

export function becomeUserOf(src: YamlSource, v: unknown, path: Path): string {
  const s = String(v ?? '')
  if (!s || hasTemplate(s) || /[\s'"]/.test(s)) throw errAt(src, path, 'become_user must be a user name (templates are not read here)', 'write the user name, e.g. become_user: postgres')
  return s
}

function becomeMethodOf(src: YamlSource, v: unknown, path: Path): 'sudo' | 'su' {
  if (v === 'sudo' || v === 'su') return v
  throw errAt(src, path, `become_method "${String(v)}" is not supported`, 'use sudo (the default) or su')
}

function delegateOf(src: YamlSource, v: unknown, path: Path): string {
  if (typeof v !== 'string' || !v.trim()) throw errAt(src, path, 'delegate_to must be a host name', 'write delegate_to: localhost, or an inventory host name')
  return v.trim()
}

/** environment: a mapping of variable names to values (templated per host at run time). */
export function environmentOf(src: YamlSource, v: unknown, path: Path): Record<string, unknown> {
  if (!isMapping(v))
    throw errAt(src, path, 'environment must be a mapping of variable names to values', 'write e.g. environment: {LANG: C.UTF-8} (a "{{ variable }}" holding a mapping is not read here)')
  for (const [k, x] of Object.entries(v)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw errAt(src, [...path, k], `"${k}" is not an environment variable name`, 'use letters, digits and _, not starting with a digit')
    if (x !== null && typeof x === 'object') throw errAt(src, [...path, k], `environment ${k} must be a string or number`)
  }
  return v
}

/** A parsed task with what its blocks, imports and role hand down applied (its own keywords win). */
function inheritInto(t: Task, raw: Raw, inh: Inherit): Task {
  const own = (k: string) => raw[k] !== undefined
  return {
    ...t,
    when: [...inh.when, ...t.when],
    tags: [...new Set([...t.tags, ...inh.tags])],
    vars: {...inh.vars, ...t.vars},
    become: own('become') ? t.become : inh.become,
    becomeUser: t.becomeUser ?? inh.becomeUser,
    becomeMethod: t.becomeMethod ?? inh.becomeMethod,
    ignoreErrors: own('ignore_errors') ? t.ignoreErrors : (inh.ignoreErrors ?? false),
    noLog: own('no_log') ? t.noLog : (inh.noLog ?? false),
    runOnce: t.module.runOnce === true || (own('run_once') ? t.runOnce : (inh.runOnce ?? false)),
    delegateTo: t.delegateTo ?? inh.delegateTo,
    environment: inh.environment || t.environment ? {...(inh.environment ?? {}), ...(t.environment ?? {})} : undefined,
    ...(inh.roleDir ? {roleDir: inh.roleDir} : {}),
  }
}

/** Parse a list of tasks/blocks/imports at `path` of `src`. */
export function parseItems(load: PlayLoad, src: YamlSource, list: unknown, path: Path, inh: Inherit, what = 'tasks'): PlayItem[] {
  if (list === undefined || list === null) return []
  if (!Array.isArray(list)) throw errAt(src, path, `${what} must be a list`, 'write each task as "- name: …" under it')
  return list.flatMap((raw, i) => parseItem(load, src, raw, [...path, i], inh))
}

function parseItem(load: PlayLoad, src: YamlSource, raw: unknown, path: Path, inh: Inherit): PlayItem[] {
  if (!isMapping(raw)) throw errAt(src, path, 'each task must be a mapping', 'write "- name: …" then the module, e.g. "  command: echo hi"')
  if (raw.block !== undefined) return [parseBlock(load, src, raw, path, inh)]
  for (const k of ['rescue', 'always']) if (raw[k] !== undefined) throw errAt(src, [...path, k], `${k} belongs to a block`, 'write "- block: [...]" with rescue:/always: beside it')
  const key = Object.keys(raw).find((k) => STRUCTURAL.has(k.replace(/^ansible\.builtin\./, '')))
  if (key) return STRUCTURAL.get(key.replace(/^ansible\.builtin\./, ''))!(load, src, raw, path, inh, key)
  if (raw.listen !== undefined) throw errAt(src, [...path, 'listen'], 'listen is a handler keyword', 'move the task under handlers:, or remove listen')
  const task = inheritInto(parseTask(src, raw, path, load.modules), raw, inh)
  if (inh.roleDir) checkRoleTemplate(task.module.name, task.args, inh.roleDir)
  return [task]
}

type Expander = (load: PlayLoad, src: YamlSource, raw: Raw, path: Path, inh: Inherit, key: string) => PlayItem[]

function onlyKeys(src: YamlSource, raw: Raw, path: Path, allowed: string[], what: string, hint: string): void {
  for (const k of Object.keys(raw)) if (!allowed.includes(k)) throw errAt(src, [...path, k], `${what} does not take "${k}"`, hint)
}

function parseBlock(load: PlayLoad, src: YamlSource, raw: Raw, path: Path, inh: Inherit): Block {
  onlyKeys(src, raw, path, BLOCK_KEYS, 'a block', `a block takes ${BLOCK_KEYS.join(', ')}`)
  const child = extendInherit(src, raw, path, inh)
  const part = (k: string) => parseItems(load, src, raw[k], [...path, k], child, k)
  return {kind: 'block', name: String(raw.name ?? 'block'), block: part('block'), rescue: part('rescue'), always: part('always'), where: src.where(path)}
}

function parseMeta(_load: PlayLoad, src: YamlSource, raw: Raw, path: Path, inh: Inherit, key: string): PlayItem[] {
  onlyKeys(src, raw, path, [key, 'name', 'when', 'tags'], 'meta', 'meta takes name, when and tags')
  const action = String(raw[key])
  if (!META_ACTIONS.includes(action))
    throw errAt(src, [...path, key], `meta: ${action} is not supported`, `meta takes ${META_ACTIONS.join(', ')}; for others run the playbook in parts (e.g. with --limit)`)
  if (action === 'flush_handlers' && raw.when !== undefined)
    throw errAt(src, [...path, 'when'], 'meta: flush_handlers takes no when (Ansible ignores it)', 'remove when; flush_handlers flushes for every host')
  const own = extendInherit(src, {when: raw.when, tags: raw.tags}, path, inh)
  const m: MetaTask = {kind: 'meta', name: String(raw.name ?? `meta: ${action}`), action: action as MetaTask['action'], when: own.when, tags: own.tags, where: src.where(path)}
  return [m]
}

/** The file an import names, relative to the importing file's directory; the loop and depth guard. */
function importedFile(load: PlayLoad, src: YamlSource, v: unknown, path: Path, key: string): string {
  if (typeof v !== 'string' || !v.trim()) throw errAt(src, path, `${key} needs a file name`, `write ${key}: other.yml`)
  if (hasTemplate(v)) throw errAt(src, path, `${key} with a templated file name is not supported`, 'name the file literally; choose between files with when: on two imports')
  const file = resolve(dirname(resolve(src.file)), v.trim())
  if (!existsSync(file)) throw errAt(src, path, `${key}: ${file} does not exist`, 'paths are relative to the file that imports them (in a role: its tasks/ directory)')
  if (load.stack.includes(file) || load.stack.length >= MAX_DEPTH) throw errAt(src, path, `${key}: ${v} imports itself (${[...load.stack, file].join(' → ')})`, 'break the import loop')
  return file
}

function withFile<T>(load: PlayLoad, file: string, f: (src: YamlSource) => T): T {
  load.stack.push(file)
  try {
    return f(loadYaml(file, PlaybookError))
  } finally {
    load.stack.pop()
  }
}

const IMPORT_KEYS = ['name', ...INHERITED]

function parseImportTasks(load: PlayLoad, src: YamlSource, raw: Raw, path: Path, inh: Inherit, key: string): PlayItem[] {
  refuseLoop(src, raw, path, key, 'import_tasks is expanded when the playbook loads (as in Ansible): put the loop on the tasks inside the file')
  onlyKeys(src, raw, path, [key, ...IMPORT_KEYS], key, `${key} takes ${IMPORT_KEYS.join(', ')}`)
  const file = importedFile(load, src, raw[key], [...path, key], key)
  const child = extendInherit(src, raw, path, inh)
  const block = withFile(load, file, (s) => parseItems(load, s, s.value, [], child))
  return [{kind: 'block', name: String(raw.name ?? `import_tasks: ${String(raw[key])}`), block, rescue: [], always: [], where: src.where(path)}]
}

// include_tasks is dynamic in Ansible: its when is evaluated once, its tags select the include
// only. With a literal file name that is the same as expanding it now and gating it per host.
function parseIncludeTasks(load: PlayLoad, src: YamlSource, raw: Raw, path: Path, inh: Inherit, key: string): PlayItem[] {
  refuseLoop(src, raw, path, key, 'write the loop on the tasks inside the included file, or import_tasks it once per value')
  const allowed = [key, 'name', 'when', 'tags', 'vars']
  onlyKeys(src, raw, path, allowed, key, `${key} takes ${allowed.join(', ')} here (apply: and keywords for the included tasks are not supported: put them on a block in the file)`)
  let v = raw[key]
  if (isMapping(v)) {
    onlyKeys(src, v, [...path, key], ['file'], key, 'write include_tasks: file.yml (or {file: file.yml})')
    v = v.file
  }
  const file = importedFile(load, src, v, [...path, key], key)
  const gate = extendInherit(src, {when: raw.when, tags: raw.tags}, path, {when: [], tags: [], vars: {}})
  const child = extendInherit(src, {vars: raw.vars}, path, inh)
  const block = withFile(load, file, (s) => parseItems(load, s, s.value, [], child))
  const when = [...inh.when, ...gate.when]
  return [
    {kind: 'block', name: String(raw.name ?? `include_tasks: ${String(v)}`), block, rescue: [], always: [], gate: {when, tags: [...new Set([...inh.tags, ...gate.tags])]}, where: src.where(path)},
  ]
}

function refuseLoop(src: YamlSource, raw: Raw, path: Path, key: string, hint: string): void {
  for (const k of ['loop', 'with_items', 'with_sequence', 'loop_control'])
    if (raw[k] !== undefined) throw errAt(src, [...path, k], `${key} with ${k} is not supported: the file is expanded once when the playbook loads`, hint)
}

function refuseIncludeRole(_load: PlayLoad, src: YamlSource, _raw: Raw, path: Path, _inh: Inherit, key: string): PlayItem[] {
  throw errAt(
    src,
    [...path, key],
    'include_role is not supported (roles are expanded when the playbook loads)',
    'use import_role: {name: …} (when: then applies to each task of the role), or list the role under roles:',
  )
}

function refuseLocalAction(_load: PlayLoad, src: YamlSource, _raw: Raw, path: Path, _inh: Inherit, key: string): PlayItem[] {
  throw errAt(src, [...path, key], `${key} is not supported`, 'write the module as usual and add delegate_to: localhost')
}

function refuseOtherInclude(_load: PlayLoad, src: YamlSource, _raw: Raw, path: Path, _inh: Inherit, key: string): PlayItem[] {
  const hint = key === 'import_playbook' ? 'import_playbook goes at the top level of a playbook, in place of a play' : 'use import_tasks (or include_tasks) with a file of tasks'
  throw errAt(src, [...path, key], `${key} is not supported here`, hint)
}

const STRUCTURAL = new Map<string, Expander>([
  ['meta', parseMeta],
  ['import_tasks', parseImportTasks],
  ['include_tasks', parseIncludeTasks],
  ['import_role', (...a) => parseImportRole(...a)],
  ['include_role', refuseIncludeRole],
  ['local_action', refuseLocalAction],
  ['include', refuseOtherInclude],
  ['import_playbook', refuseOtherInclude],
  ['include_vars', refuseOtherInclude],
])

// ---- roles ----

const ROLE_SPEC_KEYS = ['role', 'name', 'tasks_from', 'vars_from', 'defaults_from', 'handlers_from', ...INHERITED]

/** `roles:` of a play: each role's tasks as a block, dependencies first. */
export function parseRoles(load: PlayLoad, src: YamlSource, list: unknown, path: Path, inh: Inherit): PlayItem[] {
  if (list === undefined || list === null) return []
  if (!Array.isArray(list)) throw errAt(src, path, 'roles must be a list', 'write "- rolename" or "- role: rolename" under roles:')
  return list.flatMap((r, i) => roleItems(load, src, r, [...path, i], inh, true))
}

function parseImportRole(load: PlayLoad, src: YamlSource, raw: Raw, path: Path, inh: Inherit, key: string): PlayItem[] {
  refuseLoop(src, raw, path, key, 'import_role is expanded when the playbook loads: put the loop on tasks inside the role')
  onlyKeys(src, raw, path, [key, ...IMPORT_KEYS], key, `${key} takes ${IMPORT_KEYS.join(', ')}`)
  const spec = raw[key]
  if (!isMapping(spec)) throw errAt(src, [...path, key], `${key} needs {name: rolename}`, `write ${key}: {name: rolename}`)
  onlyKeys(src, spec, [...path, key], ['name', 'tasks_from', 'vars_from', 'defaults_from', 'handlers_from'], key, `${key} takes name, tasks_from, vars_from, defaults_from, handlers_from`)
  const child = extendInherit(src, raw, path, inh)
  return roleItems(load, src, spec, [...path, key], child, false)
}

/** Where a role's directory is: roles/ beside the playbook, then roles_path, then a path. */
function findRole(load: PlayLoad, src: YamlSource, name: string, path: Path): string {
  const dirs = [join(load.playbookDir, 'roles'), ...load.rolesPath, load.playbookDir]
  const tried = isAbsolute(name) ? [name] : dirs.map((d) => resolve(d, name))
  const found = tried.find((d) => existsSync(d) && statSync(d).isDirectory())
  if (!found) throw errAt(src, path, `role "${name}" not found`, `looked in ${tried.join(', ')}`)
  return found
}

/** roles/x/<sub>/main.yml (.yaml, no extension), or <sub>/<from>. */
function roleFile(dir: string, sub: string, from?: string): string | undefined {
  const base = from ?? 'main'
  const names = /\.ya?ml$/.test(base) ? [base] : [`${base}.yml`, `${base}.yaml`, base]
  return names.map((n) => join(dir, sub, n)).find((f) => existsSync(f) && statSync(f).isFile())
}

function roleMapping(file: string | undefined, what: string): Raw {
  if (!file) return {}
  const d = loadYaml(file, PlaybookError)
  if (d.value === null || d.value === undefined) return {}
  if (!isMapping(d.value)) throw new PlaybookError(`a role's ${what} file must hold a mapping`, {where: {file}})
  return d.value
}

function roleItems(load: PlayLoad, src: YamlSource, raw: unknown, path: Path, inh: Inherit, dedupe: boolean): PlayItem[] {
  const spec: Raw = typeof raw === 'string' ? {role: raw} : isMapping(raw) ? raw : {}
  const name = spec.role ?? spec.name
  if (typeof name !== 'string' || !name.trim()) throw errAt(src, path, 'a role needs a name', 'write "- rolename" or "- role: rolename"')
  if (hasTemplate(name)) throw errAt(src, path, 'a templated role name is not supported', 'write the role name literally')
  const dir = findRole(load, src, name.trim(), path)
  // Anything that is not a keyword is a role parameter: a variable of the role's tasks, as in Ansible.
  const params = Object.fromEntries(Object.entries(spec).filter(([k]) => !ROLE_SPEC_KEYS.includes(k)))
  const key = `${dir}|${JSON.stringify(params)}|${String(spec.tasks_from ?? '')}`
  const meta = roleMapping(roleFile(dir, 'meta'), 'meta')
  for (const k of Object.keys(meta))
    if (!['dependencies', 'allow_duplicates', 'galaxy_info'].includes(k))
      throw new PlaybookError(`role meta "${k}" is not supported`, {
        where: {file: roleFile(dir, 'meta')},
        hint: 'meta/main.yml takes dependencies, allow_duplicates (and galaxy_info, which is documentation)',
      })
  if (dedupe && load.rolesRun.has(key) && !truthy(meta.allow_duplicates)) return []
  if (dedupe) load.rolesRun.add(key)
  if (load.stack.includes(dir) || load.stack.length >= MAX_DEPTH) throw errAt(src, path, `role "${name}" depends on itself (${[...load.stack, dir].join(' → ')})`, 'break the dependency loop')
  load.stack.push(dir)
  try {
    return expandRole(load, src, spec, path, inh, dir, {meta, params, name: name.trim()})
  } finally {
    load.stack.pop()
  }
}

function expandRole(load: PlayLoad, src: YamlSource, spec: Raw, path: Path, inh: Inherit, dir: string, r: {meta: Raw; params: Raw; name: string}): PlayItem[] {
  const metaFile = roleFile(dir, 'meta')
  const deps = r.meta.dependencies ?? []
  if (!Array.isArray(deps)) throw new PlaybookError('role dependencies must be a list', {where: {file: metaFile}})
  const depItems = deps.flatMap((d, i) => withFile(load, metaFile!, (ms) => roleItems(load, ms, d, ['dependencies', i], inh, true)))
  const from = (k: string) => (spec[k] === undefined ? undefined : String(spec[k]))
  const tasksFile = roleFile(dir, 'tasks', from('tasks_from'))
  if (from('tasks_from') && !tasksFile) throw errAt(src, [...path, 'tasks_from'], `role ${r.name} has no tasks/${from('tasks_from')}`)
  Object.assign(load.defaults, roleMapping(roleFile(dir, 'defaults', from('defaults_from')), 'defaults'))
  const roleVars = roleMapping(roleFile(dir, 'vars', from('vars_from')), 'vars')
  // The entry's own vars: too (Ansible 2.14 shows both to the play's later tasks); role
  // parameters stay the role's.
  Object.assign(load.roleVars, roleVars, isMapping(spec.vars) ? spec.vars : {})
  // Role vars sit above play vars, role parameters above both (Ansible's order).
  const child = extendInherit(src, spec, path, {...inh, vars: {...inh.vars, ...roleVars, ...r.params}, roleDir: dir})
  child.vars = {...child.vars, ...r.params}
  const handlersFile = roleFile(dir, 'handlers', from('handlers_from'))
  if (handlersFile && !load.handlerRoles.has(handlersFile)) {
    load.handlerRoles.add(handlersFile)
    const hInh = {...child, when: inh.when, tags: inh.tags}
    withFile(load, handlersFile, (hs) => load.handlers.push(...parseHandlers(load, hs, hs.value, [], hInh)))
  }
  const tasks = tasksFile ? withFile(load, tasksFile, (ts) => parseItems(load, ts, ts.value, [], child)) : []
  const block: Block = {kind: 'block', name: `role ${r.name}`, block: tasks, rescue: [], always: [], where: src.where(path)}
  return [...depItems, block]
}

// ---- handlers ----

/** A play's (or role's) handlers: named tasks, each also answering to its listen topics. */
export function parseHandlers(load: PlayLoad, src: YamlSource, list: unknown, path: Path, inh: Inherit): Task[] {
  if (list === undefined || list === null) return []
  if (!Array.isArray(list)) throw errAt(src, path, 'handlers must be a list of tasks')
  return list.map((raw, i) => {
    const p = [...path, i]
    if (!isMapping(raw)) throw errAt(src, p, 'each handler must be a mapping')
    for (const k of ['block', 'import_tasks', 'include_tasks', 'import_role', 'include_role', 'meta'])
      if (raw[k] !== undefined) throw errAt(src, [...p, k], `${k} in handlers is not supported`, 'write each handler as one task with a name')
    if (raw.name === undefined && raw.listen === undefined) throw errAt(src, p, 'a handler needs a name (or listen:)', 'add "name: restart app" and notify it by that name')
    if (typeof raw.name === 'string' && hasTemplate(raw.name)) throw errAt(src, [...p, 'name'], 'a handler name cannot be templated', 'write the name literally (notify matches it as written)')
    return inheritInto(parseTask(src, raw, p, load.modules), raw, inh)
  })
}

/** Every notify of the play names a handler or a listen topic: checked at load, at the task's line. */
export function checkNotify(items: Task[], handlers: Task[]): void {
  const known = new Set(handlers.flatMap((h) => [h.name, ...h.listen]))
  for (const t of [...items, ...handlers]) {
    for (const n of t.notify) {
      if (!known.has(n))
        throw new PlaybookError(`task "${t.name}" notifies "${n}", but no handler of the play has that name or listen topic`, {
          where: t.where,
          hint: known.size ? `handlers: ${[...known].map((k) => JSON.stringify(k)).join(', ')}` : "add the handler under the play's handlers: (or the role's handlers/main.yml)",
        })
    }
  }
}

/** serial: a number, a percentage, or a list of them (the last one repeats). */
export function parseSerial(src: YamlSource, v: unknown, path: Path): Array<number | string> | undefined {
  if (v === undefined || v === null) return undefined
  const list = Array.isArray(v) ? v : [v]
  if (list.length === 0) throw errAt(src, path, 'serial must not be an empty list')
  for (const x of list) {
    const ok = (typeof x === 'number' && Number.isInteger(x) && x >= 0) || (typeof x === 'string' && /^\s*\d+(\.\d+)?\s*%\s*$/.test(x)) || (typeof x === 'string' && /^\d+$/.test(x))
    if (!ok)
      throw errAt(
        src,
        path,
        `serial ${JSON.stringify(x)} is not a batch size`,
        'write a number of hosts (serial: 1), a percentage ("30%"), or a list of them ([1, "50%"]); templates are not read here',
      )
  }
  return list.map((x) => (typeof x === 'string' && /^\d+$/.test(x) ? Number(x) : x))
}

/** Ansible's batches: each size (a percentage of the play's hosts, at least 1), the last repeating. */
export function serialBatches<T>(hosts: T[], serial: Array<number | string> | undefined): T[][] {
  if (!serial) return [hosts]
  const sizes = serial.map((s) => {
    const n = typeof s === 'number' ? s : Math.floor((Number.parseFloat(s) / 100) * hosts.length)
    return n <= 0 ? (typeof s === 'number' && s === 0 ? hosts.length : 1) : n
  })
  const out: T[][] = []
  let i = 0
  for (let b = 0; i < hosts.length; b++) {
    const n = sizes[Math.min(b, sizes.length - 1)]
    out.push(hosts.slice(i, i + n))
    i += n
  }
  return out
}
