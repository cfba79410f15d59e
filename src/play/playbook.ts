import {existsSync} from 'node:fs'
import {dirname, resolve} from 'node:path'
import {type ErrorWhere, PlaybookError} from '../errors.js'
import {modeProblem} from '../modules/mode.js'
import type {ArgSpec, ModuleSpec} from '../modules/types.js'
import {loadYaml, parseYaml, type YamlSource} from '../yamlfile.js'
import {checkTaskTemplates} from './check.js'
import {hasTemplate} from './template.js'
import {checkNotify, extendInherit, flattenTasks, type Inherit, parseHandlers, parseItems, parseRoles, parseSerial, type PlayLoad} from './structure.js'

// A playbook is checked whole when it loads — unknown modules, unknown arguments,
// missing required ones, bad literal types — so a typo on line 80 fails before line 1
// touches a host.

export interface Task {
  name: string
  module: ModuleSpec
  /** Arguments as written (strings may hold templates), after aliases are resolved. */
  args: Record<string, unknown>
  loop?: {kind: 'loop' | 'with_items' | 'with_sequence'; value: unknown}
  loopVar: string
  when: Array<string | boolean>
  register?: string
  changedWhen?: string | boolean
  failedWhen?: string | boolean
  ignoreErrors: boolean
  tags: string[]
  noLog: boolean
  runOnce: boolean
  /** Run this task's commands through sudo (task `become:` overrides the play's). */
  become?: boolean
  vars: Record<string, unknown>
  /** Handler names or listen topics to notify when this task reports changed on a host. */
  notify: string[]
  /** Handlers only: the topics it also answers to. */
  listen: string[]
  /** delegate_to as written (may be templated): run on localhost or another inventory host. */
  delegateTo?: string
  /** Exported for every command of the task (play < block < task, values templated). */
  environment?: Record<string, unknown>
  becomeUser?: string
  becomeMethod?: 'sudo' | 'su'
  /** The role this task comes from: its templates/ and files/ are searched first for `src`. */
  roleDir?: string
  where: ErrorWhere
}

export interface Play {
  name: string
  hosts: string
  /** Lowest-precedence variables (like an Ansible role's defaults): inventory and -e override them. */
  defaults: Record<string, unknown>
  vars: Record<string, unknown>
  tasks: Task[]
  maxFailPercentage?: number
  anyErrorsFatal: boolean
  become: boolean
  /** Variable names whose values are masked everywhere. */
  secretVars: string[]
  /** The play's `remote_user`: below the inventory's ansible_user, above -u. */
  remoteUser?: string
  /** gather_facts (default yes): whether the ansible_* facts are variables. */
  gatherFacts?: boolean
  /** pre_tasks, roles + tasks, post_tasks, in that order, handlers flushed after each. Absent: `tasks` is the whole play. */
  sections?: {pre: PlayItem[]; main: PlayItem[]; post: PlayItem[]}
  handlers: Task[]
  /** Batch sizes (numbers, or "30%"); the last one repeats. */
  serial?: Array<number | string>
  forceHandlers: boolean
  /** The directory of the playbook file this play comes from (import_playbook may pull plays from elsewhere). */
  dir?: string
  where: ErrorWhere
}

/** What a play section holds: tasks, blocks (also import/include expansions), and meta actions. */
export type PlayItem = Task | Block | MetaTask

export interface Block {
  kind: 'block'
  name: string
  block: PlayItem[]
  rescue: PlayItem[]
  always: PlayItem[]
  /** include_tasks: conditions and tags of the include itself, evaluated once per host before its tasks. */
  gate?: {when: Array<string | boolean>; tags: string[]}
  where: ErrorWhere
}

export interface MetaTask {
  kind: 'meta'
  name: string
  action: 'flush_handlers' | 'noop' | 'end_play' | 'end_host'
  when: Array<string | boolean>
  tags: string[]
  where: ErrorWhere
}

export interface Playbook {
  file: string
  dir: string
  plays: Play[]
}

const PLAY_KEYS = [
  'name',
  'hosts',
  'defaults',
  'vars',
  'vars_files',
  'tasks',
  'become',
  'become_user',
  'gather_facts',
  'max_fail_percentage',
  'any_errors_fatal',
  'secret_vars',
  'tags',
  'serial',
  'remote_user',
  'strategy',
  'pre_tasks',
  'post_tasks',
  'handlers',
  'roles',
  'force_handlers',
  'environment',
  'become_method',
]
const TASK_KEYS = [
  'name',
  'when',
  'loop',
  'with_items',
  'with_sequence',
  'register',
  'changed_when',
  'failed_when',
  'ignore_errors',
  'tags',
  'args',
  'no_log',
  'loop_control',
  'become',
  'become_user',
  'run_once',
  'vars',
  'environment',
  'notify',
  'listen',
  'delegate_to',
  'become_method',
]

/** Load a playbook file and validate every task against the module registry. */
export function loadPlaybook(file: string, modules: Map<string, ModuleSpec>, text?: string): Playbook {
  const src = text === undefined ? loadYaml(file, PlaybookError) : parseYaml(text, file, PlaybookError)
  const abs = resolve(file)
  return {file, dir: dirname(abs), plays: parsePlays(src, modules, [abs])}
}

// ANSIBLE_ROLES_PATH (colon-separated), searched after roles/ beside the playbook.
const rolesPathEnv = (): string[] => (process.env.ANSIBLE_ROLES_PATH ?? '').split(':').filter(Boolean)

function parsePlays(src: YamlSource, modules: Map<string, ModuleSpec>, stack: string[]): Play[] {
  const err = (msg: string, path: Array<string | number>, hint?: string) => new PlaybookError(msg, {where: src.where(path), hint})
  const root = src.value
  if (!Array.isArray(root)) throw err('a playbook must be a list of plays', [], 'start each play with "- name: …" and "hosts: …"')
  return root.flatMap((raw, pi): Play[] => {
    const path = [pi]
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw err('each play must be a mapping', path)
    const p = raw as Record<string, unknown>
    if (p.import_playbook !== undefined || p['ansible.builtin.import_playbook'] !== undefined) return importPlaybook(src, p, path, modules, stack)
    for (const k of Object.keys(p)) {
      if (!PLAY_KEYS.includes(k)) throw err(`unknown play keyword "${k}"`, [...path, k], `a play has ${PLAY_KEYS.join(', ')}${closest(k, PLAY_KEYS)}`)
    }
    return [parsePlay(src, p, path, modules)]
  })
}

// import_playbook: the other file's plays, in place; its paths relative to the importing file.
function importPlaybook(src: YamlSource, p: Record<string, unknown>, path: Array<string | number>, modules: Map<string, ModuleSpec>, stack: string[]): Play[] {
  const key = p.import_playbook !== undefined ? 'import_playbook' : 'ansible.builtin.import_playbook'
  const err = (msg: string, sub: string, hint?: string) => new PlaybookError(msg, {where: src.where([...path, sub]), hint})
  for (const k of Object.keys(p)) if (k !== key && k !== 'name') throw err(`import_playbook does not take "${k}" here`, k, 'put vars, when or tags on the plays of the imported playbook')
  const v = p[key]
  if (typeof v !== 'string' || !v.trim() || hasTemplate(v)) throw err('import_playbook needs a file name (templates are not read here)', key, 'write import_playbook: other.yml')
  const file = resolve(dirname(resolve(src.file)), v.trim())
  if (stack.includes(file)) throw err(`import_playbook: ${v} imports itself (${[...stack, file].join(' → ')})`, key, 'break the import loop')
  if (!existsSync(file)) throw err(`import_playbook: ${file} does not exist`, key, 'paths are relative to the importing playbook')
  return parsePlays(loadYaml(file, PlaybookError), modules, [...stack, file]).map((pl) => ({...pl, dir: pl.dir ?? dirname(file)}))
}

function parsePlay(src: YamlSource, p: Record<string, unknown>, path: Array<string | number>, modules: Map<string, ModuleSpec>): Play {
  const err = (msg: string, sub: Array<string | number>, hint?: string) => new PlaybookError(msg, {where: src.where([...path, ...sub]), hint})
  if (typeof p.hosts !== 'string' || !p.hosts.trim()) throw err('a play needs "hosts:" (a group, a host, or all)', [], 'add: hosts: all')
  const vars = p.vars ?? {}
  if (typeof vars !== 'object' || Array.isArray(vars)) throw err('play vars must be a mapping', ['vars'])
  let defaults = p.defaults ?? {}
  if (typeof defaults === 'string') {
    const file = resolve(dirname(resolve(src.file)), defaults)
    const d = loadYaml(file, PlaybookError)
    if (!d.value || typeof d.value !== 'object' || Array.isArray(d.value)) throw new PlaybookError('a defaults file must hold a mapping of variables', {where: {file}})
    defaults = d.value
  }
  if (typeof defaults !== 'object' || Array.isArray(defaults)) throw err('play defaults must be a mapping or a file name', ['defaults'])
  const mfp = p.max_fail_percentage
  if (mfp !== undefined && (typeof mfp !== 'number' || mfp < 0 || mfp > 100)) throw err('max_fail_percentage must be a number from 0 to 100', ['max_fail_percentage'])
  const secretVars = p.secret_vars ?? []
  if (!Array.isArray(secretVars)) throw err('secret_vars must be a list of variable names', ['secret_vars'])
  refuseUnsupported(p, path, (m, pp, h) => new PlaybookError(m, {where: src.where(pp), hint: h}))
  const filesVars = varsFiles(src, p.vars_files, [...path, 'vars_files'])
  const remoteUser = p.remote_user === undefined ? undefined : String(p.remote_user)
  if (remoteUser !== undefined && (!remoteUser || remoteUser.includes('{{')))
    throw err('remote_user must be a user name (templates are not read here)', ['remote_user'], 'write the name, or set ansible_user in the inventory')
  const body = playBody(src, p, path, modules)
  return {
    name: String(p.name ?? p.hosts),
    hosts: p.hosts,
    // Role defaults sit with the play's own defaults, below the inventory.
    defaults: {...body.defaults, ...(defaults as Record<string, unknown>)},
    // vars_files sit above play vars, role vars above both, in Ansible's precedence.
    vars: {...(vars as Record<string, unknown>), ...filesVars, ...body.roleVars},
    tasks: body.tasks,
    sections: body.sections,
    handlers: body.handlers,
    ...(body.serial ? {serial: body.serial} : {}),
    forceHandlers: bool(p.force_handlers),
    ...(remoteUser !== undefined ? {remoteUser} : {}),
    maxFailPercentage: mfp as number | undefined,
    anyErrorsFatal: bool(p.any_errors_fatal),
    become: bool(p.become),
    gatherFacts: p.gather_facts === undefined || bool(p.gather_facts),
    secretVars: secretVars.map(String),
    where: src.where(path),
  }
}

// pre_tasks, roles, tasks, post_tasks and handlers, with what the play hands down to each task
// (play tags, environment, become_user: as in Ansible, every task inherits them).
function playBody(src: YamlSource, p: Record<string, unknown>, path: Array<string | number>, modules: Map<string, ModuleSpec>) {
  const inh: Inherit = extendInherit(src, {tags: p.tags, environment: p.environment, become_user: p.become_user, become_method: p.become_method}, path, {when: [], tags: [], vars: {}})
  const dir = dirname(resolve(src.file))
  const load: PlayLoad = {modules, playbookDir: dir, rolesPath: rolesPathEnv(), handlers: [], defaults: {}, roleVars: {}, rolesRun: new Set(), handlerRoles: new Set(), stack: [resolve(src.file)]}
  const pre = parseItems(load, src, p.pre_tasks, [...path, 'pre_tasks'], inh, 'pre_tasks')
  const roles = parseRoles(load, src, p.roles, [...path, 'roles'], inh)
  const tasks = parseItems(load, src, p.tasks, [...path, 'tasks'], inh, 'tasks')
  const post = parseItems(load, src, p.post_tasks, [...path, 'post_tasks'], inh, 'post_tasks')
  // Role handlers come before the play's own, as Ansible orders them.
  const handlers = [...load.handlers, ...parseHandlers(load, src, p.handlers, [...path, 'handlers'], inh)]
  const all = flattenTasks([...pre, ...roles, ...tasks, ...post])
  checkNotify(all, handlers)
  const serial = parseSerial(src, p.serial, [...path, 'serial'])
  return {sections: {pre, main: [...roles, ...tasks], post}, handlers, tasks: all, defaults: load.defaults, roleVars: load.roleVars, serial}
}

const bool = (v: unknown): boolean => v === true || v === 'yes' || v === 'true' || v === 'True'

const tagList = (v: unknown): string[] =>
  v === undefined
    ? []
    : Array.isArray(v)
      ? v.map(String)
      : String(v)
          .split(',')
          .map((s) => s.trim())

type ErrAt = (msg: string, path: Array<string | number>, hint?: string) => PlaybookError

// Keywords Ansible has that this runner does not honour fail here, at their line: accepting
// them and running something else is the worst outcome.
function refuseUnsupported(p: Record<string, unknown>, path: Array<string | number>, err: ErrAt): void {
  if (p.strategy !== undefined && p.strategy !== 'linear')
    throw err(`strategy "${String(p.strategy)}" is not supported: plays run with the linear strategy`, [...path, 'strategy'], 'remove strategy (linear is the default)')
}

// vars_files: YAML mappings beside the playbook, read at load (their errors carry their own lines).
function varsFiles(src: YamlSource, v: unknown, path: Array<string | number>): Record<string, unknown> {
  if (v === undefined) return {}
  const err = (msg: string, hint?: string) => new PlaybookError(msg, {where: src.where(path), hint})
  if (!Array.isArray(v)) throw err('vars_files must be a list of file names')
  const out: Record<string, unknown> = {}
  for (const f of v) {
    if (typeof f !== 'string' || f.includes('{{'))
      throw err('each vars_files entry must be a file name (templates and lists of alternatives are not read here)', 'write the path relative to the playbook')
    const file = resolve(dirname(resolve(src.file)), f)
    const d = loadYaml(file, PlaybookError)
    if (d.value === null || d.value === undefined) continue
    if (typeof d.value !== 'object' || Array.isArray(d.value)) throw new PlaybookError('a vars file must hold a mapping of variables', {where: {file}})
    Object.assign(out, d.value)
  }
  return out
}

export function parseTask(src: YamlSource, raw: unknown, path: Array<string | number>, modules: Map<string, ModuleSpec>): Task {
  const where = src.where(path)
  const err = (msg: string, sub: Array<string | number>, hint?: string) => new PlaybookError(msg, {where: src.where([...path, ...sub]), hint})
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw err('each task must be a mapping', [], 'write "- name: …" then the module, e.g. "  command: echo hi"')
  const t = raw as Record<string, unknown>
  const moduleKeys = Object.keys(t).filter((k) => !TASK_KEYS.includes(k))
  const names = [...modules.keys()]
  if (moduleKeys.length === 0) throw err('task has no module', [], `add one of: ${names.join(', ')}`)
  if (moduleKeys.length > 1) {
    const unknown = moduleKeys.find((k) => !modules.has(normalizeModule(k)))
    if (unknown)
      throw err(`unknown module or task keyword "${unknown}"`, [unknown], `modules: ${names.join(', ')}; task keywords: ${TASK_KEYS.join(', ')}${closest(unknown, [...names, ...TASK_KEYS])}`)
    throw err(`task names two modules: ${moduleKeys.join(', ')}`, [moduleKeys[1]], 'split it into two tasks')
  }
  const key = moduleKeys[0]
  const module = modules.get(normalizeModule(key))
  if (!module) throw err(`unknown module "${key}"`, [key], `modules: ${names.join(', ')}${closest(key, [...names, ...TASK_KEYS])}`)

  let args: Record<string, unknown>
  const rawArgs = t[key]
  if (typeof rawArgs === 'string' || typeof rawArgs === 'number') {
    if (module.freeForm) args = {[module.freeForm]: String(rawArgs)}
    else {
      try {
        args = parseKeyValues(String(rawArgs))
      } catch (error) {
        throw err((error as Error).message, [key], 'write the arguments as a mapping, or as key=value pairs separated by spaces')
      }
    }
  } else if (rawArgs === null || rawArgs === undefined) args = {}
  else if (typeof rawArgs === 'object' && !Array.isArray(rawArgs)) args = {...(rawArgs as Record<string, unknown>)}
  else throw err(`arguments of ${module.name} must be a mapping`, [key])
  if (t.args !== undefined) {
    if (!t.args || typeof t.args !== 'object' || Array.isArray(t.args)) throw err('"args:" must be a mapping', ['args'])
    args = {...args, ...(t.args as Record<string, unknown>)}
  }
  args = checkArgNames(module, args, (name, hint) => err(name, [key], hint))

  let loop: Task['loop']
  for (const kind of ['loop', 'with_items', 'with_sequence'] as const) {
    if (t[kind] === undefined) continue
    if (loop) throw err(`task has both ${loop.kind} and ${kind}`, [kind], 'use one loop keyword')
    loop = {kind, value: t[kind]}
    if (kind === 'with_sequence' && typeof t[kind] !== 'string') throw err('with_sequence takes "start=N end=M" or "count=N" (a string)', [kind])
    if (kind !== 'with_sequence' && typeof t[kind] !== 'string' && !Array.isArray(t[kind])) throw err(`${kind} must be a list or a "{{ variable }}"`, [kind])
  }
  const loopControl = (t.loop_control ?? {}) as Record<string, unknown>
  for (const k of Object.keys(loopControl)) if (k !== 'loop_var') throw err(`loop_control.${k} is not supported`, ['loop_control', k], 'loop_control takes loop_var')
  const kw = extendInherit(src, {become_user: t.become_user, become_method: t.become_method, delegate_to: t.delegate_to, environment: t.environment}, path, {when: [], tags: [], vars: {}})
  const when = t.when === undefined ? [] : Array.isArray(t.when) ? t.when : [t.when]
  for (const w of when) if (typeof w !== 'string' && typeof w !== 'boolean') throw err('when must be a condition (string) or a list of them', ['when'])
  const tags = tagList(t.tags)
  const tvars = t.vars ?? {}
  if (typeof tvars !== 'object' || Array.isArray(tvars)) throw err('task vars must be a mapping', ['vars'])
  checkTaskTemplates(src, t, path, module.name, args)
  return {
    name: String(t.name ?? `${module.name}`),
    module,
    args,
    loop,
    loopVar: typeof loopControl.loop_var === 'string' ? loopControl.loop_var : 'item',
    when: when as Array<string | boolean>,
    register: t.register === undefined ? undefined : String(t.register),
    changedWhen: t.changed_when as string | boolean | undefined,
    failedWhen: t.failed_when as string | boolean | undefined,
    ignoreErrors: bool(t.ignore_errors),
    tags,
    noLog: bool(t.no_log),
    runOnce: module.runOnce === true || bool(t.run_once),
    become: t.become === undefined ? undefined : bool(t.become),
    vars: tvars as Record<string, unknown>,
    notify: nameList(t.notify, 'notify', (m, h) => err(m, ['notify'], h)),
    listen: nameList(t.listen, 'listen', (m, h) => err(m, ['listen'], h)),
    ...(kw.delegateTo !== undefined ? {delegateTo: kw.delegateTo} : {}),
    ...(kw.environment !== undefined ? {environment: kw.environment} : {}),
    ...(kw.becomeUser !== undefined ? {becomeUser: kw.becomeUser} : {}),
    ...(kw.becomeMethod !== undefined ? {becomeMethod: kw.becomeMethod} : {}),
    where,
  }
}

// notify / listen: names as written, matched when the playbook loads (a templated name could not be).
function nameList(v: unknown, key: string, fail: (msg: string, hint: string) => Error): string[] {
  if (v === undefined || v === null) return []
  const list = Array.isArray(v) ? v : [v]
  for (const n of list) {
    if (typeof n !== 'string' || !n.trim()) throw fail(`${key} must be a handler name or a list of them`, `write ${key}: restart app`)
    if (hasTemplate(n)) throw fail(`a templated ${key} name is not supported ("${n}")`, 'write the handler name literally, or notify a listen: topic the handlers share')
  }
  return list.map(String)
}

/** Ansible's `ansible.builtin.copy` and `copy` name the same module. */
export function normalizeModule(name: string): string {
  return name
    .replace(/^ansible\.builtin\./, '')
    .replace(/^ansible\.posix\./, '')
    .replace(/^community\.general\./, '')
}

function checkArgNames(module: ModuleSpec, args: Record<string, unknown>, fail: (msg: string, hint: string) => Error): Record<string, unknown> {
  if (module.freeArgs) {
    const bad = module.freeArgs(args)
    if (bad) throw fail(bad.msg, bad.hint)
    return args
  }
  const out: Record<string, unknown> = {}
  const known = Object.keys(module.args)
  for (const [k, v] of Object.entries(args)) {
    let name = k
    if (!(k in module.args)) {
      const owner = Object.entries(module.args).find(([, spec]) => spec.aliases?.includes(k))
      if (!owner) throw fail(`unknown argument "${k}" for module ${module.name}`, `${module.name} takes: ${known.join(', ')}${closest(k, known)}`)
      name = owner[0]
    }
    out[name] = v
    checkLiteral(module, name, module.args[name], v, fail)
  }
  for (const [name, spec] of Object.entries(module.args)) {
    if (spec.required && out[name] === undefined) {
      if (module.freeForm === name) throw fail(`module ${module.name} needs a command`, `write "${module.name}: the command to run"`)
      throw fail(`module ${module.name} requires argument "${name}"`, `add "${name}: …" to the task`)
    }
  }
  return out
}

function checkLiteral(module: ModuleSpec, name: string, spec: ArgSpec, v: unknown, fail: (msg: string, hint: string) => Error): void {
  if (spec.unsupported && v !== false && v !== undefined && !['no', 'false', 'False'].includes(String(v))) throw fail(`argument "${name}" of ${module.name} is not supported`, spec.unsupported)
  if (typeof v === 'string' && hasTemplate(v)) return
  if (spec.choices && v !== undefined && !spec.choices.includes(String(v))) {
    throw fail(`argument "${name}" of ${module.name} is "${String(v)}"`, `use one of: ${spec.choices.join(', ')}`)
  }
  try {
    coerceValue(spec, v)
  } catch (error) {
    throw fail(`argument "${name}" of ${module.name}: ${(error as Error).message}`, hintFor(spec))
  }
}

function hintFor(spec: ArgSpec): string {
  switch (spec.type) {
    case 'mode':
      return 'write modes in octal: 0644 (unquoted, YAML 1.1 octal) or "0644"'
    case 'bool':
      return 'use yes/no or true/false'
    case 'int':
      return 'use a whole number'
    case 'list':
      return 'use a YAML list, e.g. [a, b]'
    default:
      return `give a ${spec.type}`
  }
}

/** Coerce one argument to its declared type; throws Error(message) when it cannot. */
export function coerceValue(spec: ArgSpec, v: unknown): unknown {
  if (v === undefined || v === null) return v
  switch (spec.type) {
    case 'string':
    case 'path':
      if (typeof v === 'object') throw new Error(`expected a ${spec.type}, got ${Array.isArray(v) ? 'a list' : 'a mapping'}`)
      return String(v)
    case 'int': {
      const n = typeof v === 'number' ? v : /^-?\d+$/.test(String(v).trim()) ? Number(String(v).trim()) : NaN
      if (!Number.isInteger(n)) throw new Error(`expected a whole number, got ${JSON.stringify(v)}`)
      return n
    }
    case 'bool':
      if (typeof v === 'boolean') return v
      if (['yes', 'true', 'on', '1', 'True', 'y'].includes(String(v))) return true
      if (['no', 'false', 'off', '0', 'False', 'n'].includes(String(v))) return false
      throw new Error(`expected yes/no, got ${JSON.stringify(v)}`)
    case 'list':
      // Lists built from variables that are themselves lists ([ "{{ a }}", x ]) are flattened.
      if (Array.isArray(v)) return v.flat().filter((x) => x !== '' && x !== null && x !== undefined)
      if (typeof v === 'string')
        return v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      return [v]
    case 'dict':
      if (typeof v !== 'object' || Array.isArray(v)) throw new Error('expected a mapping')
      return v
    case 'mode': {
      // YAML 1.1 reads 0644 as 420 already; a string is read as octal. A plain number
      // above 0o777 is almost always `644` written without its leading zero.
      if (typeof v === 'number') {
        if (!Number.isInteger(v) || v < 0 || v > 0o777) throw new Error(`mode ${v} is ambiguous (decimal ${v} = octal ${v.toString(8)})`)
        return v
      }
      const s = String(v).trim()
      if (/^0?[0-7]{3,4}$/.test(s)) return Number.parseInt(s, 8)
      // Symbolic (u+x, u=rw,g=r,o=): the module resolves it against the file's mode.
      const problem = modeProblem(s)
      if (problem) throw new Error(problem)
      return s
    }
    default:
      return v
  }
}

/** Parse Ansible's `key=value key2="quoted value"` argument string. */
export function parseKeyValues(s: string): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  // An unquoted value runs to the next space, but `{{ var }}` inside it may hold spaces.
  const re = /\s*([A-Za-z_][\w]*)=("((?:[^"\\]|\\.)*)"|'([^']*)'|((?:\{\{.*?\}\}|\S)*))/y
  let i = 0
  const text = s.trim()
  while (i < text.length) {
    re.lastIndex = i
    const m = re.exec(text)
    if (!m) throw new Error(`cannot read "${text.slice(i).split(/\s/)[0]}" as key=value`)
    out[m[1]] = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[4] !== undefined ? m[4] : m[5]
    i = re.lastIndex
    while (text[i] === ' ') i++
  }
  return out
}

function closest(word: string, candidates: string[]): string {
  let best = ''
  let bestD = Infinity
  for (const c of candidates) {
    const d = levenshtein(word, c)
    if (d < bestD) {
      bestD = d
      best = c
    }
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? ` (did you mean "${best}"?)` : ''
}

function levenshtein(a: string, b: string): number {
  const dp = Array.from({length: b.length + 1}, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]
    dp[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = tmp
    }
  }
  return dp[b.length]
}

/** Expand with_sequence's `start=1 end=10 stride=1 format=%d` or `count=N`. */
export function expandSequence(spec: string): string[] {
  const kv = parseKeyValues(spec.replace(/,/g, ' '))
  const num = (k: string) => {
    const v = kv[k]
    if (v === undefined) return undefined
    const n = Number(v)
    if (!Number.isInteger(n)) throw new Error(`with_sequence ${k}=${String(v)} is not a whole number`)
    return n
  }
  for (const k of Object.keys(kv)) if (!['start', 'end', 'count', 'stride', 'format'].includes(k)) throw new Error(`with_sequence does not take "${k}"`)
  const start = num('start') ?? 1
  const stride = num('stride') ?? 1
  const count = num('count')
  let end = num('end')
  if (count !== undefined && end !== undefined) throw new Error('with_sequence takes end= or count=, not both')
  if (count !== undefined) end = start + (count - 1) * stride
  if (end === undefined) throw new Error('with_sequence needs end= or count=')
  if (stride === 0) throw new Error('with_sequence stride cannot be 0')
  const format = kv.format === undefined ? '%d' : String(kv.format)
  const out: string[] = []
  if ((end - start) / stride > 1_000_000) throw new Error('with_sequence would produce more than a million items')
  for (let i = start; stride > 0 ? i <= end : i >= end; i += stride) {
    out.push(format.replace(/%(0?)(\d*)[dxXo]/, (_m, zero: string, width: string) => String(i).padStart(Number(width || 0), zero ? '0' : ' ')))
  }
  return out
}
