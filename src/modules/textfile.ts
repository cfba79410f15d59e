import {posix} from 'node:path'
import {expandHome, mask, quote} from '../shell.js'
import {defineModule, type Todo} from './define.js'
import {holdsSecret, SECRET_DIFF_NOTE} from './copy.js'
import {modeArg, withMode} from './mode.js'
import {badPath, fmtMode, str, type Plan, type StepResult} from './remote.js'
import type {ArgSpec, FileDiff, ItemResult, ModuleContext, ModuleSpec, TaskItem} from './types.js'

// The engine behind lineinfile and blockinfile: every loop item's file read in one round
// trip, each item's edit computed on the controller (pure, in loop order, so 50 items on
// one file chain on the controller), and each changed file written once, atomically (temp
// file + mv, mode and owner kept), in one more round trip.

/** What a file looks like after the items before this one. */
export interface TextState {
  exists: boolean
  content: string
  mode?: number
  owner?: string
  group?: string
}

/** A pure edit: the new content and what happened, or why it cannot be done. */
export type EditResult = {content: string; msg: string} | {fail: string}

export interface TextWant<E> {
  path: string
  create: boolean
  mode?: number
  symbolicMode?: string
  owner?: string
  group?: string
  edit: E
}

interface Probed {
  kind: 'file' | 'missing' | 'dir' | 'error'
  real: string
  state: TextState
  error?: string
}

/** One item's facts: its file before and after it, and who writes the file. */
export interface TextFacts {
  result: {kind: 'fail'; msg: string} | {kind: 'noop'; msg: string} | {kind: 'change'; msg: string}
  real: string
  before: TextState
  after: TextState
  /** The first changing item of its file writes the file's final state; the later ones check it. */
  writer: boolean
  final: TextState
  fileIndex: number
}

type Change = {real: string; writer: boolean; final: TextState; fileIndex: number; before: TextState; after: TextState}

export interface TextModuleDef<E> {
  name: string
  description: string
  args: Record<string, ArgSpec>
  /** The module's own arguments → its edit, or why they are invalid. */
  edit(args: Record<string, unknown>): E | {error: string}
  /** Pure: the file's state → its new content (create: whether a missing file may be made). */
  apply(e: E, s: TextState, path: string, create: boolean): EditResult | {noop: string}
}

// Reads the file (following symlinks): F|mode|user|group|realpath, then its bytes.
function probeStep(path: string): string {
  const p = quote(path)
  return `if [ -d ${p} ]; then echo D; elif [ -e ${p} ]; then stat -L -c 'F|%a|%U|%G|' -- ${p} | tr -d '\\n'; readlink -f -- ${p}; cat -- ${p}; else printf 'M|'; readlink -f -- ${p} || echo ${p}; fi`
}

export function parseTextProbe(path: string, s: StepResult): Probed {
  const nl = s.stdout.indexOf('\n')
  const head = nl < 0 ? s.stdout : s.stdout.slice(0, nl)
  const body = nl < 0 ? '' : s.stdout.slice(nl + 1)
  const empty: TextState = {exists: false, content: ''}
  if (head === 'D') return {kind: 'dir', real: path, state: empty}
  if (head.startsWith('M|')) return {kind: 'missing', real: head.slice(2) || path, state: empty}
  if (s.rc !== 0 || !head.startsWith('F|')) return {kind: 'error', real: path, state: empty, error: s.stderr.trim() || `cannot read ${path}`}
  const [, mode, owner, group, ...rest] = head.split('|')
  return {kind: 'file', real: rest.join('|') || path, state: {exists: true, content: body, mode: parseInt(mode, 8), owner, group}}
}

// Attributes the item asks for, on top of the state (a symbolic mode resolved against it).
function withAttrs<E>(w: TextWant<E>, s: TextState): {state: TextState; changes: string[]} {
  const m = withMode(w, s.mode, 0o644, false).mode
  const changes: string[] = []
  const out = {...s}
  if (m !== undefined && m !== s.mode) {
    changes.push(s.mode === undefined ? `mode ${fmtMode(m)}` : `mode ${fmtMode(s.mode)} → ${fmtMode(m)}`)
    out.mode = m
  }
  if (w.owner !== undefined && w.owner !== s.owner) {
    changes.push(`owner ${w.owner}`)
    out.owner = w.owner
  }
  if (w.group !== undefined && w.group !== s.group) {
    changes.push(`group ${w.group}`)
    out.group = w.group
  }
  return {state: out, changes}
}

/** Pure: one item on the state the earlier items left → its result and the new state. */
export function stepItem<E>(def: Pick<TextModuleDef<E>, 'apply'>, w: TextWant<E>, s: TextState): {result: TextFacts['result']; after: TextState} {
  const r = def.apply(w.edit, s, w.path, w.create)
  if ('fail' in r) return {result: {kind: 'fail', msg: r.fail}, after: s}
  const content = 'noop' in r ? s.content : r.content
  const created = !s.exists && 'content' in r
  const base: TextState = created ? {exists: true, content, mode: 0o644} : {...s, content}
  if (!base.exists) return {result: {kind: 'noop', msg: 'noop' in r ? r.noop : r.msg}, after: s}
  const attrs = withAttrs(w, base)
  const changed = created || content !== s.content || attrs.changes.length > 0
  const what = ['noop' in r ? '' : r.msg, ...(created ? [] : attrs.changes)].filter(Boolean).join(', ')
  if (!changed) return {result: {kind: 'noop', msg: 'noop' in r ? r.noop : r.msg}, after: s}
  return {result: {kind: 'change', msg: what || 'attributes changed'}, after: attrs.state}
}

/** Pure: every item in loop order, chained per real file. */
export function chain<E>(def: Pick<TextModuleDef<E>, 'apply'>, wants: Array<TextWant<E>>, probed: Array<Probed | undefined>): Array<TextFacts | undefined> {
  const states = new Map<string, TextState>()
  const writers = new Map<string, number>()
  const files = new Map<string, number>()
  const out: Array<TextFacts | undefined> = wants.map((w, k) => {
    const p = probed[k]
    if (!p) return undefined
    if (!files.has(p.real)) files.set(p.real, files.size)
    const before = states.get(p.real) ?? p.state
    const base = {real: p.real, before, after: before, writer: false, final: before, fileIndex: files.get(p.real)!}
    if (p.kind === 'dir') return {...base, result: {kind: 'fail' as const, msg: `${w.path} is a directory`}}
    if (p.kind === 'error') return {...base, result: {kind: 'fail' as const, msg: p.error ?? `cannot read ${w.path}`}}
    const {result, after} = stepItem(def, w, before)
    states.set(p.real, after)
    const writer = result.kind === 'change' && !writers.has(p.real)
    if (writer) writers.set(p.real, k)
    return {...base, result, after, writer}
  })
  for (const f of out) if (f) f.final = states.get(f.real) ?? f.final
  return out
}

// The writer's step: the file's final state, atomically; `bm_wN` tells the later items.
function writeStep(c: Change): string {
  const f = c.final
  const v = `bm_w${c.fileIndex}`
  if (!c.writer) return `[ "$${v}" = 0 ]`
  const real = quote(c.real)
  const ops: string[] = []
  const mode = fmtMode(f.mode ?? 0o644)
  const owner = f.owner !== undefined && f.owner !== c.before.owner ? f.owner : undefined
  const group = f.group !== undefined && f.group !== c.before.group ? f.group : undefined
  if (f.content === c.before.content && c.before.exists) {
    if (f.mode !== c.before.mode) ops.push(`chmod ${mode} -- ${real}`)
    if (owner) ops.push(`chown ${quote(owner)} -- ${real}`)
    if (group) ops.push(`chgrp ${quote(group)} -- ${real}`)
  } else {
    const tmp = quote(`${c.real}.baremetal-tmp`)
    if (!c.before.exists) ops.push(`mkdir -p -- ${quote(posix.dirname(c.real))}`)
    ops.push(`printf '%s' ${quote(f.content)} > ${tmp}`, `chmod ${mode} -- ${tmp}`)
    if (c.before.exists) ops.push(`{ chown --reference=${real} -- ${tmp} 2>/dev/null || :; }`)
    if (owner) ops.push(`chown ${quote(owner)} -- ${tmp}`)
    if (group) ops.push(`chgrp ${quote(group)} -- ${tmp}`)
    ops.push(`mv -f -- ${tmp} ${real}`)
    return `{ ${ops.join(' && ')}; } || { rm -f -- ${tmp}; false; }; ${v}=$?; [ "$${v}" = 0 ]`
  }
  return `{ ${ops.join(' && ')}; }; ${v}=$?; [ "$${v}" = 0 ]`
}

function want<E>(def: TextModuleDef<E>, ctx: ModuleContext, item: TaskItem): TextWant<E> | {error: string} {
  const a = item.args
  const raw = str(a.path)
  if (!raw) return {error: `${def.name}: path is required`}
  const path = expandHome(raw, ctx.facts.home)
  if (!posix.isAbsolute(path)) return {error: `${def.name}: path must be absolute (or start with ~/): ${raw}`}
  const bad = badPath(path)
  if (bad) return {error: `${def.name}: ${bad}`}
  let mode
  try {
    mode = modeArg(a.mode)
  } catch (error) {
    return {error: `${def.name}: ${(error as Error).message}`}
  }
  const edit = def.edit(a)
  if (typeof edit === 'object' && edit !== null && 'error' in edit) return {error: `${def.name}: ${(edit as {error: string}).error}`}
  return {path, create: a.create === true, ...mode, owner: str(a.owner), group: str(a.group), edit: edit as E}
}

function diffOf(ctx: ModuleContext, w: {path: string}, f: TextFacts): {diff?: FileDiff[]; note: string} {
  if (!ctx.diff || f.before.content === f.after.content) return {note: ''}
  if (holdsSecret(f.before.content) || holdsSecret(f.after.content)) return {note: SECRET_DIFF_NOTE}
  return {diff: [{path: w.path, before: mask(f.before.content, ctx.secrets), after: mask(f.after.content, ctx.secrets)}], note: ''}
}

/** Common arguments of lineinfile and blockinfile. */
export const FILE_ARGS: Record<string, ArgSpec> = {
  path: {type: 'path', required: true, aliases: ['dest', 'destfile', 'name']},
  create: {type: 'bool', default: false},
  mode: {type: 'mode'},
  owner: {type: 'string'},
  group: {type: 'string'},
  backup: {type: 'bool', unsupported: 'backup is not supported: copy the file first (copy: remote_src: yes, src: the file, dest: a backup path)'},
  validate: {type: 'string', unsupported: 'validate is not supported: check the file in a later command task (and restore it on failure)'},
}

export function defineTextModule<E>(def: TextModuleDef<E>): ModuleSpec {
  type T = Todo<TextWant<E>, TextFacts, Change>
  return defineModule<TextWant<E>, TextFacts, Change>({
    name: def.name,
    description: def.description,
    args: def.args,
    want: (ctx, item) => want(def, ctx, item),
    probe: (_ctx, wants) => ({steps: wants.map((w) => probeStep(w.path))}),
    parse: (wants, steps) =>
      chain(
        def,
        wants,
        wants.map((w, k) => (steps[k] ? parseTextProbe(w.path, steps[k]!) : undefined)),
      ),
    plan: (_w, f): Plan<Change> => {
      if (f.result.kind !== 'change') return f.result
      const c: Change = {real: f.real, writer: f.writer, final: f.final, fileIndex: f.fileIndex, before: f.before, after: f.after}
      return {kind: 'change', msg: f.result.msg, would: `would change: ${f.result.msg}`, ...c}
    },
    data: (_ctx, w, f) => ({path: w.path, changed: f.result.kind === 'change', msg: f.result.msg}),
    changed: (ctx) =>
      Promise.resolve((t: T, msg: string): ItemResult => {
        const d = diffOf(ctx, t.want, t.facts)
        return {status: 'changed', msg: msg + d.note, diff: d.diff, data: {path: t.want.path, changed: true, msg: t.plan.msg}}
      }),
    apply: {step: (t: T) => writeStep(t.plan), what: `${def.name} write`, subject: (t: T) => t.want.path},
  })
}

/** Split into lines keeping their endings (Python's splitlines(True) for \n and \r\n). */
export function splitLines(s: string): string[] {
  return s.match(/[^\n]*\n|[^\n]+$/g) ?? []
}

/** A line without its ending. */
export const bare = (l: string): string => l.replace(/\r?\n$/, '')

/**
 * Python's re syntax → a JS RegExp: (?P<n>…) and (?P=n) named groups, a leading (?i)/(?m)/(?s)
 * flag group. Throws with the reason when JavaScript cannot read it.
 */
export function pyRegex(src: string): RegExp {
  let flags = ''
  let s = src
  const lead = /^\(\?([aimsux]+)\)/.exec(s)
  if (lead) {
    flags = [...new Set(lead[1].replace(/[aux]/g, ''))].join('')
    s = s.slice(lead[0].length)
  }
  s = s.replace(/\(\?P<(\w+)>/g, '(?<$1>').replace(/\(\?P=(\w+)\)/g, '\\k<$1>')
  try {
    return new RegExp(s, flags)
  } catch (error) {
    throw new Error(`cannot read regular expression ${JSON.stringify(src)}: ${(error as Error).message}`)
  }
}
