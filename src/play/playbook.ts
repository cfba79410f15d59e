import {dirname, resolve} from 'node:path'
import {type ErrorWhere, PlaybookError} from '../errors.js'
import {modeProblem} from '../modules/mode.js'
import type {ArgSpec, ModuleSpec} from '../modules/types.js'
import {loadYaml, parseYaml, type YamlSource} from '../yamlfile.js'
import {checkTaskTemplates} from './check.js'
import {hasTemplate} from './template.js'

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
]

/** Load a playbook file and validate every task against the module registry. */
export function loadPlaybook(file: string, modules: Map<string, ModuleSpec>, text?: string): Playbook {
  const src = text === undefined ? loadYaml(file, PlaybookError) : parseYaml(text, file, PlaybookError)
  const abs = resolve(file)
  return {file, dir: dirname(abs), plays: parsePlays(src, modules)}
}

function parsePlays(src: YamlSource, modules: Map<string, ModuleSpec>): Play[] {
  const err = (msg: string, path: Array<string | number>, hint?: string) => new PlaybookError(msg, {where: src.where(path), hint})
  const root = src.value
  if (!Array.isArray(root)) throw err('a playbook must be a list of plays', [], 'start each play with "- name: …" and "hosts: …"')
  return root.map((raw, pi): Play => {
    const path = [pi]
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw err('each play must be a mapping', path)
    const p = raw as Record<string, unknown>
    for (const k of Object.keys(p)) {
      if (!PLAY_KEYS.includes(k)) throw err(`unknown play keyword "${k}"`, [...path, k], `a play has ${PLAY_KEYS.join(', ')}${closest(k, PLAY_KEYS)}`)
    }
    if (typeof p.hosts !== 'string' || !p.hosts.trim()) throw err('a play needs "hosts:" (a group, a host, or all)', path, 'add: hosts: all')
    const vars = p.vars ?? {}
    if (typeof vars !== 'object' || Array.isArray(vars)) throw err('play vars must be a mapping', [...path, 'vars'])
    let defaults = p.defaults ?? {}
    if (typeof defaults === 'string') {
      const file = resolve(dirname(resolve(src.file)), defaults)
      const d = loadYaml(file, PlaybookError)
      if (!d.value || typeof d.value !== 'object' || Array.isArray(d.value)) throw new PlaybookError('a defaults file must hold a mapping of variables', {where: {file}})
      defaults = d.value
    }
    if (typeof defaults !== 'object' || Array.isArray(defaults)) throw err('play defaults must be a mapping or a file name', [...path, 'defaults'])
    const tasksRaw = p.tasks ?? []
    if (!Array.isArray(tasksRaw)) throw err('play tasks must be a list', [...path, 'tasks'], 'write each task as "- name: …" under tasks:')
    const mfp = p.max_fail_percentage
    if (mfp !== undefined && (typeof mfp !== 'number' || mfp < 0 || mfp > 100)) throw err('max_fail_percentage must be a number from 0 to 100', [...path, 'max_fail_percentage'])
    const secretVars = p.secret_vars ?? []
    if (!Array.isArray(secretVars)) throw err('secret_vars must be a list of variable names', [...path, 'secret_vars'])
    refuseUnsupported(p, path, err)
    const playTags = tagList(p.tags)
    const filesVars = varsFiles(src, p.vars_files, [...path, 'vars_files'])
    const remoteUser = p.remote_user === undefined ? undefined : String(p.remote_user)
    if (remoteUser !== undefined && (!remoteUser || remoteUser.includes('{{')))
      throw err('remote_user must be a user name (templates are not read here)', [...path, 'remote_user'], 'write the name, or set ansible_user in the inventory')
    return {
      name: String(p.name ?? p.hosts),
      hosts: p.hosts,
      defaults: defaults as Record<string, unknown>,
      // vars_files sit above play vars in Ansible's precedence.
      vars: {...(vars as Record<string, unknown>), ...filesVars},
      // Play tags are every task's tags too, as in Ansible.
      tasks: tasksRaw.map((t, ti) => parseTask(src, t, [...path, 'tasks', ti], modules)).map((t) => (playTags.length ? {...t, tags: [...new Set([...t.tags, ...playTags])]} : t)),
      ...(remoteUser !== undefined ? {remoteUser} : {}),
      maxFailPercentage: mfp as number | undefined,
      anyErrorsFatal: bool(p.any_errors_fatal),
      become: bool(p.become),
      gatherFacts: p.gather_facts === undefined || bool(p.gather_facts),
      secretVars: secretVars.map(String),
      where: src.where(path),
    }
  })
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
// them and running something else (all hosts at once for serial: 1) is the worst outcome.
function refuseUnsupported(p: Record<string, unknown>, path: Array<string | number>, err: ErrAt): void {
  if (p.serial !== undefined)
    throw err(
      'serial is not supported: every task runs on all hosts of the play at once (-f bounds how many)',
      [...path, 'serial'],
      'remove serial; to go host by host, run the play once per host with --limit',
    )
  if (p.strategy !== undefined && p.strategy !== 'linear')
    throw err(`strategy "${String(p.strategy)}" is not supported: plays run with the linear strategy`, [...path, 'strategy'], 'remove strategy (linear is the default)')
  refuseBecomeUser(p, path, err)
}

function refuseBecomeUser(t: Record<string, unknown>, path: Array<string | number>, err: ErrAt): void {
  if (t.become_user !== undefined && t.become_user !== 'root')
    throw err(
      `become_user "${String(t.become_user)}" is not supported: become runs commands as root`,
      [...path, 'become_user'],
      'remove become_user (root), or connect as that user with ansible_user / remote_user',
    )
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

function parseTask(src: YamlSource, raw: unknown, path: Array<string | number>, modules: Map<string, ModuleSpec>): Task {
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
  if (t.environment !== undefined)
    throw err('environment is not supported: commands run with the login environment', ['environment'], 'set the variables in the command itself (K=V cmd) for command/shell tasks')
  refuseBecomeUser(t, [], err)
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
    where,
  }
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
