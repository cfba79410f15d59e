// file: make a path a directory, an (existing) file, a touched file, or absent, with a
// mode and owner. One stat script for all loop items, a pure plan, one apply script:
// two round trips per host whatever the number of items, one when nothing changes.
//
// Parameters:
//   path     the path on the host (aliases: dest, name); `~` is the remote user's home
//   state    directory | file | touch | absent | link | hard (default file)
//            directory: created with its parents (mkdir -p) if missing
//            file: must exist already (only mode/owner are managed)
//            touch: created empty if missing; an existing file keeps its content and times
//            absent: removed, recursively for a directory
//            link: a symlink to src (replaced when it points elsewhere); hard: a hard link
//   src      with link/hard: what the link points to (a relative symlink target is kept as written)
//   force    with link/hard: replace a path that is not such a link (default no: refused)
//   mode     octal ('0755') or symbolic ('u+x', 'u=rw,g=r,o=')
//   owner    user name or uid
//   group    group name or gid
//   recurse  with state=directory: apply mode/owner/group to everything inside too
//
// Example:
//   - name: one directory per redis port
//     file:
//       path: "~/redis_cluster/{{ item }}"
//       state: directory
//       mode: '0755'
//     loop: "{{ ports }}"

import {posix} from 'node:path'
import {expandHome, quote} from '../shell.js'
import {defineModule, type Todo} from './define.js'
import {badPath, fmtMode, parseProbe, probeStep, str, type PathStat, type Plan} from './remote.js'
import {modeArg, withMode, type ModeArg} from './mode.js'
import type {ModuleContext, TaskItem} from './types.js'

export type FileState = 'directory' | 'file' | 'touch' | 'absent' | 'link' | 'hard'

export interface FileWant {
  path: string
  state: FileState
  mode?: number
  /** `u+x`…: resolved against the path's mode when the plan is made. */
  symbolicMode?: string
  owner?: string
  group?: string
  recurse: boolean
  /** With link/hard. */
  src?: string
  force?: boolean
}

export interface FileFacts {
  stat: PathStat
  /** With link/hard: what linkStep printed (L|target, E, M, SAME, DIFF, NOSRC). */
  link?: string
  /** With recurse: something inside differs from the wanted mode/owner/group. */
  innerDrift?: boolean
}

/** One change to one path; rendered alone (per item) or grouped with the same change on other paths. */
export interface FileOp {
  op: 'mkdir' | 'touch' | 'rm' | 'chmod' | 'chown' | 'chgrp' | 'ln'
  arg?: string
  recurse?: boolean
  /** ln's flags (-s, -sfn, -T, -fT). */
  flags?: string
}

export type FilePlan = Plan<{ops: FileOp[]}>

const TYPE_NAME: Record<string, string> = {file: 'a regular file', directory: 'a directory', other: 'a special file', link: 'a dangling symlink'}
const OP_ORDER: Array<FileOp['op']> = ['mkdir', 'touch', 'chmod', 'chown', 'chgrp']

// Shell text of one op over one or more paths.
export function renderOp(op: FileOp, paths: string[]): string {
  const ps = paths.map(quote).join(' ')
  const R = op.recurse ? '-R ' : ''
  switch (op.op) {
    case 'mkdir':
      return `mkdir -p -- ${ps}`
    case 'touch':
      return `touch -- ${ps}`
    case 'rm':
      return `rm -rf -- ${ps}`
    // One path per ln (never grouped: `ln -s t a b` would link into b).
    case 'ln':
      return `ln ${op.flags ?? ''} -- ${quote(op.arg ?? '')} ${ps}`
    default:
      return `${op.op} ${R}${quote(op.arg ?? '')} -- ${ps}`
  }
}

/** An item's commands, in order (what runs when items are applied one by one). */
export function planCommands(path: string, ops: FileOp[]): string[] {
  return ops.map((op) => renderOp(op, [path]))
}

// 100 directories cost two processes (mkdir -p a b c…, chmod 0755 a b c…), not 200.
// Only without rm (grouping reorders ops across items; creating and removing do not commute).
export function batchCommands(entries: Array<{path: string; ops: FileOp[]}>): string[] | undefined {
  if (entries.length < 2 || entries.some((e) => e.ops.some((o) => o.op === 'rm' || o.op === 'ln'))) return undefined
  const groups = new Map<string, {op: FileOp; paths: string[]}>()
  for (const kind of OP_ORDER) {
    for (const e of entries) {
      for (const op of e.ops) {
        if (op.op !== kind) continue
        const key = `${op.op}|${op.arg ?? ''}|${op.recurse ? 1 : 0}`
        const g = groups.get(key) ?? {op, paths: []}
        g.paths.push(e.path)
        groups.set(key, g)
      }
    }
  }
  return [...groups.values()].map((g) => renderOp(g.op, g.paths))
}

// Numeric owner compares with the uid, a name with the user name.
function sameId(want: string, name?: string, id?: number): boolean {
  return /^\d+$/.test(want) ? Number(want) === id : want === name
}

// Mode/owner/group corrections for an existing path (or a just-created one: st undefined).
function attributeFixes(w: FileWant, st: PathStat | undefined, innerDrift: boolean | undefined): {ops: FileOp[]; done: string[]} {
  const recurse = w.recurse && w.state === 'directory'
  const ops: FileOp[] = []
  const done: string[] = []
  const drift = recurse && innerDrift === true
  if (w.mode !== undefined && (!st || st.mode !== w.mode || drift)) {
    ops.push({op: 'chmod', arg: fmtMode(w.mode), recurse})
    done.push(st && st.mode !== w.mode ? `mode ${fmtMode(st.mode ?? 0)} → ${fmtMode(w.mode)}` : `mode ${fmtMode(w.mode)}`)
  }
  if (w.owner !== undefined && (!st || !sameId(w.owner, st.user, st.uid) || drift)) {
    ops.push({op: 'chown', arg: w.owner, recurse})
    done.push(st && !sameId(w.owner, st.user, st.uid) ? `owner ${st.user} → ${w.owner}` : `owner ${w.owner}`)
  }
  if (w.group !== undefined && (!st || !sameId(w.group, st.group, st.gid) || drift)) {
    ops.push({op: 'chgrp', arg: w.group, recurse})
    done.push(st && !sameId(w.group, st.group, st.gid) ? `group ${st.group} → ${w.group}` : `group ${w.group}`)
  }
  if (drift && done.length > 0 && st) done.push('inside too (recurse)')
  return {ops, done}
}

function describe(w: FileWant, st: PathStat): string {
  const bits = [TYPE_NAME[st.type] ?? st.type]
  if (w.mode !== undefined && st.mode !== undefined) bits.push(`with mode ${fmtMode(st.mode)}`)
  if (w.owner !== undefined || w.group !== undefined) bits.push(`owned by ${st.user}:${st.group}`)
  return bits.join(' ')
}

/** With link/hard: one fact step (no process for a symlink: readlink only where there is one). */
export function linkStep(w: FileWant): string | undefined {
  if (w.state !== 'link' && w.state !== 'hard') return undefined
  const [p, s] = [quote(w.path), quote(w.src ?? '')]
  if (w.state === 'link') return `if [ -L ${p} ]; then printf 'L|%s\\n' "$(readlink -- ${p})"; elif [ -e ${p} ]; then echo E; else echo M; fi`
  return `if [ ! -e ${s} ]; then echo NOSRC; elif [ ! -e ${p} ] && [ ! -L ${p} ]; then echo M; elif [ ${p} -ef ${s} ] && [ ! -L ${p} ]; then echo SAME; else echo DIFF; fi`
}

// Pure: what a link or hard link needs, from linkStep's answer.
function planLink(w: FileWant, f: FileFacts): FilePlan {
  const src = w.src ?? ''
  const kind = w.state === 'link' ? 'symlink' : 'hard link'
  const fact = f.link ?? ''
  const make = (flags: string, msg: string, extra: FileOp[] = []): FilePlan => ({
    kind: 'change',
    ops: [...extra, {op: 'ln', arg: src, flags}],
    msg,
    would: `would ${msg.replace(/^created/, 'create').replace(/^replaced/, 'replace')}`,
  })
  if (fact === 'NOSRC') return {kind: 'fail', msg: `src ${src} does not exist on the host (a hard link needs it)`}
  if (fact === 'M') return make(w.state === 'link' ? '-s' : '-T', `created ${kind} → ${src}`)
  if (fact === `L|${src}` || fact === 'SAME') return {kind: 'noop', msg: `already a ${kind} to ${src}`}
  if (fact.startsWith('L|')) return make(w.state === 'link' ? '-sfn' : '-fT', `replaced ${kind} (was → ${fact.slice(2)}) → ${src}`)
  if (f.stat.type === 'directory') return {kind: 'fail', msg: `${w.path} is a directory: refusing to replace it with a ${kind}`}
  if (!w.force) return {kind: 'fail', msg: `${w.path} exists and is not a ${kind} to ${src}: refusing to replace it (force: yes replaces it)`}
  return make(w.state === 'link' ? '-s' : '-T', `replaced ${w.path} with a ${kind} → ${src} (force)`, [{op: 'rm'}])
}

// Pure: facts in, ops (or the reason there is nothing to do) out. Unit-tested without a host.
export function planFile(w: FileWant, f: FileFacts): FilePlan {
  const st = f.stat
  if (!posix.isAbsolute(w.path)) return {kind: 'fail', msg: `path must be absolute (or start with ~/): ${w.path}`}
  if (w.state === 'link' || w.state === 'hard') return planLink(w, f)
  if (w.state === 'absent') {
    if (posix.normalize(w.path) === '/') return {kind: 'fail', msg: 'refusing to remove /'}
    if (st.type === 'missing') return {kind: 'noop', msg: 'already absent'}
    const what = st.type === 'directory' ? 'directory' : st.type === 'file' ? 'file' : 'path'
    return {kind: 'change', ops: [{op: 'rm'}], msg: `removed ${what}`, would: `would remove ${what}`}
  }
  if (st.type === 'missing' || (st.type === 'link' && w.state !== 'file')) {
    if (w.state === 'file') return {kind: 'fail', msg: `${w.path} does not exist (state: file only manages an existing file; use state: touch to create it)`}
    if (st.type === 'link') return {kind: 'fail', msg: `${w.path} is a dangling symlink`}
    const what = w.state === 'directory' ? 'directory' : 'file'
    const attrs = attributeFixes(w, undefined, undefined)
    const extra = attrs.done.length ? ` (${attrs.done.join(', ')})` : ''
    const create: FileOp = {op: w.state === 'directory' ? 'mkdir' : 'touch'}
    return {kind: 'change', ops: [create, ...attrs.ops], msg: `created ${what}${extra}`, would: `would create ${what}${extra}`}
  }
  const wantType = w.state === 'directory' ? 'directory' : 'file'
  if (st.type !== wantType) {
    return {kind: 'fail', msg: `${w.path} exists and is ${TYPE_NAME[st.type] ?? st.type}, not ${TYPE_NAME[wantType]}`}
  }
  const attrs = attributeFixes(w, st, f.innerDrift)
  if (attrs.ops.length === 0) return {kind: 'noop', msg: `already ${describe(w, st)}`}
  return {kind: 'change', ops: attrs.ops, msg: attrs.done.join(', '), would: `would change ${attrs.done.join(', ')}`}
}

/** With recurse: a step printing the first path inside that differs (empty: none). */
export function driftStep(w: FileWant): string | undefined {
  if (!(w.recurse && w.state === 'directory' && (w.mode !== undefined || w.owner || w.group))) return undefined
  const q = quote(w.path)
  const tests: string[] = []
  if (w.mode !== undefined) tests.push(`! -perm ${fmtMode(w.mode)}`)
  if (w.owner) tests.push(/^\d+$/.test(w.owner) ? `! -uid ${w.owner}` : `! -user ${quote(w.owner)}`)
  if (w.group) tests.push(/^\d+$/.test(w.group) ? `! -gid ${w.group}` : `! -group ${quote(w.group)}`)
  return `if [ -d ${q} ]; then find ${q} \\( ${tests.join(' -o ')} \\) -print 2>/dev/null | head -n 1; fi`
}

function want(ctx: ModuleContext, item: TaskItem): FileWant | {error: string} {
  const a = item.args
  const raw = str(a.path ?? a.dest ?? a.name)
  if (!raw) return {error: 'file: path is required'}
  let mode: ModeArg
  try {
    mode = modeArg(a.mode)
  } catch (error) {
    return {error: `file: ${(error as Error).message}`}
  }
  if (mode.symbolicMode !== undefined && a.recurse === true) return {error: `file: a symbolic mode with recurse would differ per file: give an octal mode (e.g. '0755')`}
  const state = (str(a.state) ?? 'file') as FileState
  if (!['directory', 'file', 'touch', 'absent', 'link', 'hard'].includes(state)) return {error: `file: unknown state ${state}`}
  const path = expandHome(raw, ctx.facts.home).replace(/(.)\/+$/, '$1')
  const bad = badPath(path)
  if (bad) return {error: `file: ${bad}`}
  const isLink = state === 'link' || state === 'hard'
  const srcRaw = str(a.src)
  if (isLink && !srcRaw) return {error: `file: state ${state} needs src (what the link points to)`}
  if (!isLink && srcRaw !== undefined) return {error: 'file: src is only read with state link or hard'}
  if (isLink && (mode.mode !== undefined || mode.symbolicMode !== undefined || a.owner !== undefined || a.group !== undefined || a.recurse === true))
    return {error: `file: mode, owner, group and recurse with state ${state} are not supported (they would change the link's target): set them on the target`}
  const src = srcRaw === undefined ? undefined : srcRaw.startsWith('~') ? expandHome(srcRaw, ctx.facts.home) : srcRaw
  if (src !== undefined && (badPath(src) || (state === 'hard' && !src.startsWith('/'))))
    return {error: `file: src ${JSON.stringify(src)} must be ${state === 'hard' ? 'an absolute path' : 'a path'} without newlines`}
  return {path, state, ...mode, owner: str(a.owner), group: str(a.group), recurse: a.recurse === true, ...(src !== undefined ? {src, force: a.force === true} : {})}
}

type FileTodo = Todo<FileWant, FileFacts, {ops: FileOp[]}>

export const fileModule = defineModule<FileWant, FileFacts, {ops: FileOp[]}>({
  name: 'file',
  description: 'Directories, touched files, absent paths, modes and owners; all loop items in two round trips',
  args: {
    path: {type: 'path', required: true, aliases: ['dest', 'name']},
    state: {type: 'string', choices: ['directory', 'file', 'touch', 'absent', 'link', 'hard'], default: 'file'},
    src: {type: 'string'},
    force: {type: 'bool', default: false},
    mode: {type: 'mode'},
    owner: {type: 'string'},
    group: {type: 'string'},
    recurse: {type: 'bool', default: false},
  },
  want,
  // One stat for every path, plus a find per recursive item.
  probe: (_ctx, wants) => ({
    steps: [
      probeStep(
        wants.map((w) => w.path),
        false,
      ),
      ...wants.flatMap((w) => [driftStep(w) ?? linkStep(w) ?? []].flat()),
    ],
  }),
  parse(wants, steps) {
    const probe = steps[0]
      ? parseProbe(
          wants.map((w) => w.path),
          steps[0].stdout,
        )
      : undefined
    let k = 1
    return wants.map((w) => {
      const d = driftStep(w) || linkStep(w) ? (steps[k++] ?? null) : undefined
      if (!probe || d === null) return undefined
      if (linkStep(w)) return {stat: probe.get(w.path) ?? {type: 'missing'}, link: d?.stdout.trim()}
      return {stat: probe.get(w.path) ?? {type: 'missing'}, innerDrift: d ? d.stdout.trim() !== '' : undefined}
    })
  },
  plan: (w, f) => {
    const isDir = w.state === 'directory' || f.stat.type === 'directory'
    return planFile(withMode(w, f.stat.type === 'missing' ? undefined : f.stat.mode, isDir ? 0o755 : 0o644, isDir), f)
  },
  apply: {
    step: (t: FileTodo) => planCommands(t.want.path, t.plan.ops).join(' &&\n'),
    batch: (todo) => batchCommands(todo.map((t) => ({path: t.want.path, ops: t.plan.ops}))),
    subject: (t) => t.want.path,
  },
})
