// copy: put a file on the host, from the controller (src), from a string (content), or
// from another path on the host (remote_src). Compared by sha256: one hash probe for
// all loop items, then only the differing files are sent, in one batched upload; a
// mode-only difference is one chmod script. At most three round trips per host.
//
// Parameters:
//   src         controller file (relative to the playbook's directory); with
//               remote_src: yes, a file on the host
//   content     the file's content as a string, instead of src
//   dest        path on the host; ending in / or naming an existing directory: the file
//               goes inside it under src's name. Absolute or ~/; a ".." component is
//               refused; a symlink at dest is replaced, never written through
//   mode        octal, e.g. '0755' (default: keep the existing mode; new files 0644,
//               or src's mode with remote_src)
//   remote_src  src is on the host (copied with cp, then renamed into place)
//   force       replace a file whose content differs (default yes); no: only create
//   secret      the content is secret: never shown in a diff
//
// --diff never shows a line of a secret file: one marked secret, or one whose old or new
// content holds a secret (requirepass, masterauth, … or a "…password… =/:" line) says
// "content differs: secret file, not shown" instead.
//
// Example:
//   - name: one redis-server binary per port
//     copy:
//       src: ~/redis_src/src/redis-server
//       remote_src: yes
//       dest: "~/redis_cluster/{{ item }}/redis-server"
//       mode: '0755'
//     loop: "{{ ports }}"

import {readFile, stat} from 'node:fs/promises'
import {existsSync} from 'node:fs'
import {homedir} from 'node:os'
import {basename, isAbsolute, join, posix, resolve} from 'node:path'
import {expandHome, mask, quote} from '../shell.js'
import type {UploadFile} from '../transport/types.js'
import {defineModule, rethrowHostLoss, type Finish, type ModuleDef, type Todo} from './define.js'
import {badPath, dotDotPath, errorMessage, failureMessage, fmtMode, parseProbe, probeStep, runSteps, sha256, sha256File, str, type PathStat, type Plan} from './remote.js'
import {modeArg, withMode, type ModeArg} from './mode.js'
import type {FileDiff, ItemResult, ModuleContext, ModuleSpec, TaskItem} from './types.js'

/** Files up to this size go in the batched upload; bigger ones are streamed with putFile. */
export const UPLOAD_LIMIT = 4 * 1024 * 1024
/** Bytes per batched upload (a task's small files are split beyond this). */
export const BATCH_LIMIT = 32 * 1024 * 1024
/** Diffs are only shown for files up to this size. */
const DIFF_LIMIT = 256 * 1024

export type PushSource = {kind: 'data'; data: Buffer; sha256: string} | {kind: 'local'; path: string; size: number; sha256: string; data?: Buffer} | {kind: 'remote'; path: string}

/** One file to put on the host (copy and template both describe theirs this way). */
export interface PushWant {
  /** Absolute, `~` expanded. */
  dest: string
  /** Appended when dest is a directory (src's basename). */
  name?: string
  mode?: number
  /** `u+x`…: resolved against dest's mode (or src's, for a new file) when the plan is made. */
  symbolicMode?: string
  force: boolean
  secret: boolean
  source: PushSource
}

export interface PushFacts {
  /** dest named an existing directory and name was appended. */
  intoDir: boolean
  dest: PathStat
  parent: boolean
  /** With remote_src: the source on the host. */
  src?: PathStat
}

export type PushPlan = Plan<{path: string; action: 'write' | 'chmod'; mode: number; isNew: boolean}>

// Where the file really goes once the facts said whether dest is a directory.
export function targetPath(w: PushWant, intoDir: boolean): string {
  if (w.dest.endsWith('/')) return w.dest + (w.name ?? '')
  return intoDir && w.name ? `${w.dest}/${w.name}` : w.dest
}

// Every path whose stat decides an item: dest, dest/name, their parents, a host src.
export function pushProbePaths(w: PushWant): string[] {
  const candidates = w.dest.endsWith('/') || !w.name ? [targetPath(w, false)] : [w.dest, `${w.dest}/${w.name}`]
  const paths = [...candidates, ...candidates.map((c) => posix.dirname(c))]
  if (w.source.kind === 'remote') paths.push(w.source.path)
  return paths
}

// Pure: the probe's stats → this item's facts (is dest a directory, the target, its parent).
export function pushFacts(w: PushWant, probe: Map<string, PathStat>): PushFacts {
  const get = (p: string): PathStat => probe.get(p) ?? {type: 'missing'}
  const intoDir = !w.dest.endsWith('/') && !!w.name && get(w.dest).type === 'directory'
  const target = targetPath(w, intoDir)
  return {intoDir, dest: get(target), parent: get(posix.dirname(target)).type === 'directory', src: w.source.kind === 'remote' ? get(w.source.path) : undefined}
}

const short = (sha: string): string => `${sha.slice(0, 12)}…`

// Pure: decide write / chmod / nothing for one file from its facts. In check mode a
// missing directory or host src may be the work of an earlier task: "would", not "failed".
export function planPush(w: PushWant, f: PushFacts, check = false): PushPlan {
  const path = targetPath(w, f.intoDir)
  let want: string
  let srcMode: number | undefined
  if (w.source.kind === 'remote') {
    const s = f.src ?? {type: 'missing'}
    if (check && s.type === 'missing') {
      const mode = w.mode ?? 0o644
      const would = `would copy ${w.source.path} to ${path} (${w.source.path} does not exist yet: an earlier task may create it)`
      return {kind: 'change', path, action: 'write', mode, isNew: f.dest.type !== 'file', msg: would, would}
    }
    if (s.type === 'missing' || s.type === 'link') return {kind: 'fail', msg: `src ${w.source.path} not found on the host`}
    if (s.type === 'directory') return {kind: 'fail', msg: `src ${w.source.path} is a directory: copy copies single files (use unarchive, or a command with cp -r)`}
    if (!s.sha256) return {kind: 'fail', msg: `cannot read src ${w.source.path} on the host`}
    want = s.sha256
    srcMode = s.mode
  } else {
    want = w.source.sha256
  }
  const d = f.dest
  if (d.type === 'directory') return {kind: 'fail', msg: w.name ? `${path} is a directory` : `dest ${path} is a directory: give the file's path`}
  if (d.type === 'other') return {kind: 'fail', msg: `${path} exists and is not a regular file`}
  if (!f.parent) {
    if (check) {
      const mode = w.mode ?? srcMode ?? 0o644
      const would = `would create ${path} (mode ${fmtMode(mode)}; its directory does not exist yet: an earlier task may create it)`
      return {kind: 'change', path, action: 'write', mode, isNew: true, msg: would, would}
    }
    return {kind: 'fail', msg: `parent directory ${posix.dirname(path)} does not exist (create it first, e.g. with the file module and state: directory)`}
  }
  if (d.type === 'file') {
    if (!w.force) return {kind: 'noop', msg: `${path} exists; not replaced (force: no)`}
    if (d.sha256 === want) {
      if (w.mode !== undefined && d.mode !== w.mode) {
        const change = `mode ${fmtMode(d.mode ?? 0)} → ${fmtMode(w.mode)}`
        return {kind: 'change', path, action: 'chmod', mode: w.mode, isNew: false, msg: change, would: `would change ${change}`}
      }
      return {kind: 'noop', msg: `${path} already up to date (sha256 ${short(want)})`}
    }
    const mode = w.mode ?? d.mode ?? 0o644
    const extra = d.mode !== undefined && mode !== d.mode ? `, mode ${fmtMode(d.mode)} → ${fmtMode(mode)}` : ''
    return {kind: 'change', path, action: 'write', mode, isNew: false, msg: `updated ${path}${extra}`, would: `would update ${path}${extra}`}
  }
  const mode = w.mode ?? srcMode ?? 0o644
  return {kind: 'change', path, action: 'write', mode, isNew: true, msg: `created ${path} (mode ${fmtMode(mode)})`, would: `would create ${path} (mode ${fmtMode(mode)})`}
}

function isText(b: Buffer): boolean {
  return !b.subarray(0, 8192).includes(0)
}

type Change = {i: number; w: PushWant; plan: Extract<PushPlan, {kind: 'change'}>}

// A file that holds a secret, in its old content or its new one, is never diffed line by
// line: the old password would otherwise be printed when the current run has none (or
// another one), which masking the current secrets cannot catch. Redis' secret directives,
// and any "…password… = / :" assignment, count.
const SECRET_LINE = /^\s*(requirepass|masterauth|masteruser|tls-key-file-pass)\b|^\s*[\w.-]*(password|passwd|secret|token)[\w.-]*\s*[:=]/im

export function holdsSecret(text: string): boolean {
  return SECRET_LINE.test(text)
}

export const SECRET_DIFF_NOTE = ' (content differs: secret file, not shown)'

// Before/after for ctx.diff: old contents of the changed existing files in one extra exec.
// Files marked secret are not read; files that turn out to hold a secret are left out.
async function diffs(ctx: ModuleContext, changes: Change[], facts: Map<number, PushFacts>): Promise<{diffs: Map<number, FileDiff>; secret: Set<number>}> {
  const out = new Map<number, FileDiff>()
  const secret = new Set<number>()
  for (const {i, w, plan} of changes) if (plan.action === 'write' && w.secret) secret.add(i)
  const wanted = changes.filter(({i, w, plan}) => plan.action === 'write' && !secret.has(i) && w.source.kind !== 'remote')
  const fetch = wanted.filter(({i, plan}) => !plan.isNew && (facts.get(i)?.dest.size ?? Infinity) <= DIFF_LIMIT)
  const old = await runSteps(
    ctx.transport,
    fetch.map(({plan}) => `cat -- ${quote(plan.path)}`),
  )
  const before = new Map<number, string | undefined>()
  fetch.forEach(({i}, k) => {
    const s = old.steps[k]
    before.set(i, s && s.rc === 0 && !s.stdout.includes('\0') ? s.stdout : undefined)
  })
  for (const {i, plan, w} of wanted) {
    const src = w.source as Exclude<PushSource, {kind: 'remote'}>
    const after = src.data
    if (!after || after.length > DIFF_LIMIT || !isText(after)) continue
    const b = plan.isNew ? '' : before.get(i)
    if (b === undefined) continue
    const a = after.toString('utf8')
    if (holdsSecret(b) || holdsSecret(a)) {
      secret.add(i)
      continue
    }
    out.set(i, {path: plan.path, before: mask(b, ctx.secrets), after: mask(a, ctx.secrets)})
  }
  return {diffs: out, secret}
}

type PushTodo = Todo<PushWant, PushFacts, PushChange>
type PushChange = {path: string; action: 'write' | 'chmod'; mode: number; isNew: boolean}

// With --diff, the old contents of all changed files in one more round trip.
async function pushFinisher(ctx: ModuleContext, todo: PushTodo[]): Promise<Finish<PushWant, PushFacts, PushChange>> {
  const changes = todo.map((t) => ({i: t.i, w: t.want, plan: t.plan}))
  const shown = ctx.diff ? await diffs(ctx, changes, new Map(todo.map((t) => [t.i, t.facts]))) : {diffs: new Map<number, FileDiff>(), secret: new Set<number>()}
  return (t, msg) => {
    const d = shown.diffs.get(t.i)
    const hidden = shown.secret.has(t.i) ? SECRET_DIFF_NOTE : ''
    return {status: 'changed', msg: msg + hidden, diff: d ? [d] : undefined, data: {dest: t.plan.path, mode: fmtMode(t.plan.mode), changed: true}}
  }
}

// Small files: one upload (split beyond BATCH_LIMIT so the payload never sits in memory
// all at once). Big controller files: streamed one by one. Chmods and host copies: the script.
async function upload(ctx: ModuleContext, todo: PushTodo[], finish: Finish<PushWant, PushFacts, PushChange>): Promise<Array<string | ItemResult | undefined>> {
  const out = new Map<PushTodo, string | ItemResult>()
  const inScript = (t: PushTodo): boolean => t.plan.action === 'chmod' || t.want.source.kind === 'remote'
  const inMemory = (t: PushTodo): boolean => t.want.source.kind === 'data' || (t.want.source.kind === 'local' && t.want.source.data !== undefined)
  const small = todo.filter((t) => !inScript(t) && inMemory(t))
  const big = todo.filter((t) => !inScript(t) && !small.includes(t))
  const data = (t: PushTodo): Buffer => (t.want.source as {data: Buffer}).data
  for (const chunk of chunkBySize(small, (t) => data(t).length, BATCH_LIMIT)) {
    try {
      await ctx.transport.upload(chunk.map((t): UploadFile => ({path: t.plan.path, content: data(t), mode: t.plan.mode})))
      for (const t of chunk) out.set(t, finish(t, t.plan.msg))
    } catch (error) {
      rethrowHostLoss(error)
      for (const t of chunk) out.set(t, `upload failed: ${errorMessage(error)}`)
    }
  }
  for (const t of big) {
    try {
      await ctx.transport.putFile((t.want.source as {path: string}).path, t.plan.path, t.plan.mode)
      out.set(t, finish(t, t.plan.msg))
    } catch (error) {
      rethrowHostLoss(error)
      out.set(t, `upload of ${t.plan.path} failed: ${errorMessage(error)}`)
    }
  }
  return todo.map((t) => out.get(t))
}

function pushStep({want: w, plan}: PushTodo): string {
  const p = quote(plan.path)
  const mode = fmtMode(plan.mode)
  if (plan.action === 'chmod') return `chmod ${mode} ${p}`
  const tmp = quote(`${plan.path}.baremetal-tmp`)
  const src = quote((w.source as {path: string}).path)
  return `{ cp -- ${src} ${tmp} && chmod ${mode} ${tmp} && mv -f -- ${tmp} ${p}; } || { bm_r=$?; rm -f -- ${tmp}; (exit $bm_r); }`
}

/**
 * The engine behind copy and template: facts for all files in one exec, a pure plan,
 * then one upload (small files), putFile for big ones, one script for chmods and
 * remote copies. The module supplies its arguments and how an item becomes a PushWant.
 */
export function definePushModule(spec: Pick<ModuleDef<PushWant, PushFacts, PushChange>, 'name' | 'description' | 'args' | 'want'>): ModuleSpec {
  return defineModule<PushWant, PushFacts, PushChange>({
    ...spec,
    probe: (_ctx, wants) => ({steps: [probeStep(wants.flatMap(pushProbePaths), true)]}),
    parse(wants, steps) {
      const probe = steps[0] ? parseProbe(wants.flatMap(pushProbePaths), steps[0].stdout) : undefined
      return wants.map((w) => (probe ? pushFacts(w, probe) : undefined))
    },
    plan: (w, f, check) => planPush(withMode(w, f.dest.type === 'file' ? f.dest.mode : undefined, (w.source.kind === 'remote' ? f.src?.mode : undefined) ?? 0o644, false), f, check),
    data: (_ctx, w, f, plan) => (plan.kind === 'noop' ? {dest: targetPath(w, f.intoDir), changed: false} : undefined),
    changed: pushFinisher,
    apply: {
      before: upload,
      step: pushStep,
      done: (ctx, t, s, finish) =>
        s.rc === 0
          ? finish(t, t.plan.msg)
          : {status: 'failed', msg: failureMessage(t.plan.action === 'chmod' ? 'chmod' : 'copy', t.plan.path, s.rc, s.stderr, ctx.secrets), rc: s.rc, stderr: s.stderr},
    },
  })
}

// Consecutive groups whose summed size stays under limit (a single big item gets its own group).
export function chunkBySize<T>(list: T[], size: (t: T) => number, limit: number): T[][] {
  const out: T[][] = []
  let cur: T[] = []
  let total = 0
  for (const t of list) {
    const n = size(t)
    if (cur.length > 0 && total + n > limit) {
      out.push(cur)
      cur = []
      total = 0
    }
    cur.push(t)
    total += n
  }
  if (cur.length > 0) out.push(cur)
  return out
}

/** Controller paths: `~` is the controller user's home, relative paths the playbook's directory (a role's own dirs first, as Ansible searches them). */
export function controllerPath(ctx: ModuleContext, p: string, sub: 'files' | 'templates' = 'files'): string {
  const path = expandHome(p, homedir())
  if (ctx.roleDir && !isAbsolute(path)) {
    const found = [join(ctx.roleDir, sub), ctx.roleDir, join(ctx.roleDir, 'tasks')].map((d) => resolve(d, path)).find((f) => existsSync(f))
    if (found) return found
  }
  return resolve(ctx.playbookDir, path)
}

// Read (or, when big, only hash) each controller file once per task, however many items use it.
export function localSourceReader(): (path: string) => Promise<PushSource> {
  const cache = new Map<string, Promise<PushSource>>()
  return (path) => {
    let p = cache.get(path)
    if (!p) {
      p = (async (): Promise<PushSource> => {
        const st = await stat(path)
        if (st.isDirectory()) throw new Error(`src ${path} is a directory: copy copies single files (use unarchive for a tree)`)
        if (st.size <= UPLOAD_LIMIT) {
          const data = await readFile(path)
          return {kind: 'local', path, size: st.size, sha256: sha256(data), data}
        }
        return {kind: 'local', path, size: st.size, sha256: await sha256File(path)}
      })()
      cache.set(path, p)
    }
    return p
  }
}

async function copyWant(ctx: ModuleContext, item: TaskItem, read: (p: string) => Promise<PushSource>): Promise<PushWant | {error: string}> {
  const a = item.args
  const destRaw = str(a.dest)
  if (!destRaw) return {error: 'copy: dest is required'}
  const dest = expandHome(destRaw, ctx.facts.home)
  if (!posix.isAbsolute(dest)) return {error: `copy: dest must be absolute (or start with ~/): ${destRaw}`}
  const bad = badPath(dest) ?? dotDotPath(dest) ?? (a.remote_src === true ? badPath(str(a.src) ?? '') : undefined)
  if (bad) return {error: `copy: ${bad}`}
  let mode: ModeArg
  try {
    mode = modeArg(a.mode)
  } catch (error) {
    return {error: `copy: ${(error as Error).message}`}
  }
  const base = {dest, ...mode, force: a.force !== false, secret: a.secret === true}
  const src = str(a.src)
  if (a.content !== undefined && a.content !== null) {
    if (src) return {error: 'copy: give src or content, not both'}
    const data = Buffer.from(typeof a.content === 'string' ? a.content : JSON.stringify(a.content))
    return {...base, source: {kind: 'data', data, sha256: sha256(data)}}
  }
  if (!src) return {error: 'copy: give src or content'}
  if (a.remote_src === true) {
    const path = expandHome(src, ctx.facts.home)
    if (!posix.isAbsolute(path)) return {error: `copy: with remote_src, src must be absolute (or start with ~/): ${src}`}
    return {...base, name: posix.basename(path), source: {kind: 'remote', path}}
  }
  const path = controllerPath(ctx, src)
  try {
    return {...base, name: basename(path), source: await read(path)}
  } catch (error) {
    return {error: `copy: cannot read src ${path}: ${errorMessage(error)}`}
  }
}

export const copyModule = definePushModule({
  name: 'copy',
  description: 'Put files on the host (from the controller, a string, or a host path), sending only those whose sha256 differs',
  args: {
    src: {type: 'path'},
    content: {type: 'string'},
    dest: {type: 'path', required: true},
    mode: {type: 'mode'},
    remote_src: {type: 'bool', default: false},
    force: {type: 'bool', default: true},
    secret: {type: 'bool', default: false},
  },
  want: (ctx, item, scope) => copyWant(ctx, item, scope.memo('read', localSourceReader)),
})
