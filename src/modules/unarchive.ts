// unarchive: unpack a tar archive (plain, gz, xz, bz2, zst: tar detects it) into a
// directory on the host. The archive's sha256 is checked before anything is unpacked,
// and recorded in dest/.baremetal-unarchive: the same archive is never unpacked twice.
// A controller archive is pushed into ~/.cache/baremetal/ on the host, and not pushed
// again when a file with its sha256 is already there.
//
// Parameters:
//   src         archive on the controller (relative to the playbook's directory), or a
//               path on the host with remote_src: yes
//   remote_src  src is on the host (default no)
//   dest        directory to unpack into (created if missing)
//   checksum    "sha256:HEX" the archive must have; a mismatch fails and unpacks nothing
//   extra_opts  list of extra tar options, e.g. ["--strip-components=1"]
//   creates     do nothing when this path exists
//
// Example:
//   - name: redis sources
//     unarchive:
//       src: files/redis-7.2.5.tar.gz
//       dest: ~/redis_src
//       extra_opts: ["--strip-components=1"]
//       checksum: "sha256:{{ redis_sha256 }}"

import {stat} from 'node:fs/promises'
import {basename, posix} from 'node:path'
import {UnreachableError} from '../errors.js'
import {expandHome, quote} from '../shell.js'
import {controllerPath} from './copy.js'
import {defineModule, eachStep, type RunScope, type Todo} from './define.js'
import {errorMessage, failureMessage, parseChecksum, parseKv, parseStat, sha256File, str, type PathStat, type Plan, type StepResult} from './remote.js'
import type {ItemResult, ModuleContext, TaskItem} from './types.js'

export const MARKER = '.baremetal-unarchive'

export interface UnarchiveWant {
  /** Controller file (with its sha256) or host file. */
  src: {kind: 'local'; path: string; sha256: string} | {kind: 'remote'; path: string}
  /** Where the archive is read from on the host: the cache copy, or src itself. */
  archive: string
  dest: string
  checksum?: string
  extraOpts: string[]
  creates?: string
}

export interface UnarchiveFacts {
  creates: boolean
  dest: 'dir' | 'other' | 'missing'
  /** sha256 recorded by the last unpack, '' if none. */
  marker: string
  /** The archive on the host (undefined when not probed: marker already matched). */
  archive?: PathStat
}

export type UnarchivePlan = Plan<{sha256: string; push: boolean}>

// One cached copy per archive content on the host, so a re-run never pushes it again.
export function cachePath(home: string, sha: string, name: string): string {
  return `${home}/.cache/baremetal/${sha.slice(0, 16)}-${name}`
}

// One item's fact step: creates, dest, the marker, and (only if needed) the archive's hash.
export function unarchiveFactStep(w: UnarchiveWant): string {
  const d = quote(w.dest)
  const lines: string[] = []
  if (w.creates) lines.push(`if [ -e ${quote(w.creates)} ]; then echo creates=1; fi`)
  lines.push(
    `if [ -d ${d} ]; then echo dest=dir; elif [ -e ${d} ] || [ -L ${d} ]; then echo dest=other; else echo dest=missing; fi`,
    `bm_k=$(head -c 64 ${quote(`${w.dest}/${MARKER}`)} 2>/dev/null); printf 'marker=%s\\n' "$bm_k"`,
  )
  const probe = `printf 'archive=%s\\n' "$(bm_stat ${quote(w.archive)} hash)"`
  // A controller archive's sha is known: hash the cached copy only when we will unpack.
  lines.push(w.src.kind === 'local' ? `if [ "$bm_k" != ${quote(w.src.sha256)} ]; then ${probe}; fi` : probe)
  return lines.join('\n')
}

// Inverse of unarchiveFactStep.
export function parseUnarchiveFacts(stdout: string): UnarchiveFacts {
  const kv = parseKv(stdout)
  const dest = kv.dest === 'dir' || kv.dest === 'other' ? kv.dest : 'missing'
  return {creates: kv.creates === '1', dest, marker: kv.marker ?? '', archive: kv.archive === undefined ? undefined : parseStat(kv.archive)}
}

// Pure: unpack (and push first?) or nothing, from the probe (in check mode a missing
// host archive may be an earlier task's download: "would unpack", not "failed").
export function planUnarchive(w: UnarchiveWant, f: UnarchiveFacts, check = false): UnarchivePlan {
  if (w.creates && f.creates) return {kind: 'noop', msg: `not unpacked: ${w.creates} exists (creates)`}
  if (f.dest === 'other') return {kind: 'fail', msg: `dest ${w.dest} exists and is not a directory`}
  let sha: string
  if (w.src.kind === 'remote') {
    const a = f.archive ?? {type: 'missing'}
    if (check && a.type === 'missing') {
      const would = `would unpack ${w.src.path} into ${w.dest} (${w.src.path} does not exist yet: an earlier task may create it)`
      return {kind: 'change', sha256: '', push: false, msg: would, would}
    }
    if (a.type === 'missing' || a.type === 'link') return {kind: 'fail', msg: `src ${w.src.path} not found on the host`}
    if (a.type !== 'file' || !a.sha256) return {kind: 'fail', msg: `src ${w.src.path} is not a readable file`}
    sha = a.sha256
  } else {
    sha = w.src.sha256
  }
  if (w.checksum && w.checksum !== sha) {
    return {kind: 'fail', msg: `checksum mismatch for ${w.src.path}: expected sha256:${w.checksum}, got sha256:${sha} (nothing unpacked)`}
  }
  if (f.marker === sha) return {kind: 'noop', msg: `${w.dest} already holds this archive (sha256 ${sha.slice(0, 12)}…)`}
  const push = w.src.kind === 'local' && f.archive?.sha256 !== sha
  const name = basename(w.src.path)
  const create = f.dest === 'missing'
  return {
    kind: 'change',
    sha256: sha,
    push,
    msg: `${create ? `created ${w.dest}, ` : ''}unpacked ${name} into ${w.dest}`,
    would: `would ${create ? `create ${w.dest} and ` : ''}unpack ${name} into ${w.dest}`,
  }
}

// The apply step: re-verify the archive on the host, unpack, record its sha256.
export function unpackStep(w: UnarchiveWant, sha: string): string {
  const a = quote(w.archive)
  const d = quote(w.dest)
  const opts = w.extraOpts.map(quote).join(' ')
  return `(
  [ -f ${a} ] || { printf 'archive %s not found on the host\\n' ${a} >&2; exit 66; }
  bm_a=$(sha256sum < ${a} | cut -c1-64)
  if [ "$bm_a" != ${quote(sha)} ]; then printf 'archive %s has sha256 %s, expected %s: nothing unpacked\\n' ${a} "$bm_a" ${quote(sha)} >&2; exit 65; fi
  mkdir -p -- ${d} && tar -x ${opts} -f ${a} -C ${d} && printf '%s\\n' ${quote(sha)} > ${quote(`${w.dest}/${MARKER}`)}
)`
}

async function want(ctx: ModuleContext, item: TaskItem, hash: (p: string) => Promise<string>): Promise<UnarchiveWant | {error: string}> {
  const a = item.args
  const srcRaw = str(a.src)
  const destRaw = str(a.dest)
  if (!srcRaw) return {error: 'unarchive: src is required'}
  if (!destRaw) return {error: 'unarchive: dest is required'}
  const dest = expandHome(destRaw, ctx.facts.home).replace(/(.)\/+$/, '$1')
  if (!posix.isAbsolute(dest)) return {error: `unarchive: dest must be absolute (or start with ~/): ${destRaw}`}
  const creates = str(a.creates) ? expandHome(str(a.creates) as string, ctx.facts.home) : undefined
  const extraOpts = Array.isArray(a.extra_opts) ? a.extra_opts.map(String) : str(a.extra_opts) ? [str(a.extra_opts) as string] : []
  let checksum: string | undefined
  try {
    checksum = parseChecksum(a.checksum)
  } catch (error) {
    return {error: `unarchive: ${(error as Error).message}`}
  }
  if (a.remote_src === true) {
    const path = expandHome(srcRaw, ctx.facts.home)
    if (!posix.isAbsolute(path)) return {error: `unarchive: with remote_src, src must be absolute (or start with ~/): ${srcRaw}`}
    return {src: {kind: 'remote', path}, archive: path, dest, checksum, extraOpts, creates}
  }
  const path = controllerPath(ctx, srcRaw)
  try {
    const sha = await hash(path)
    return {src: {kind: 'local', path, sha256: sha}, archive: cachePath(ctx.facts.home, sha, basename(path)), dest, checksum, extraOpts, creates}
  } catch (error) {
    return {error: `unarchive: cannot read src ${path}: ${errorMessage(error)}`}
  }
}

type UnarchiveTodo = Todo<UnarchiveWant, UnarchiveFacts, {sha256: string; push: boolean}>

// A controller file is hashed once per task, however many items unpack it.
function hashOnce(scope: RunScope, p: string): Promise<string> {
  return scope.memo(`sha256:${p}`, () =>
    stat(p).then((st) => {
      if (!st.isFile()) throw new Error('not a regular file')
      return sha256File(p)
    }),
  )
}

// Push each controller archive once (several items may unpack the same one).
async function pushArchives(ctx: ModuleContext, todo: UnarchiveTodo[]): Promise<Array<string | undefined>> {
  const pushed = new Map<string, string | undefined>()
  for (const {want: w, plan} of todo) {
    if (!plan.push || w.src.kind !== 'local' || pushed.has(w.archive)) continue
    ctx.log(`push ${basename(w.src.path)}`)
    try {
      await ctx.transport.putFile(w.src.path, w.archive, 0o600)
      pushed.set(w.archive, undefined)
    } catch (error) {
      if (error instanceof UnreachableError) throw error
      pushed.set(w.archive, `pushing ${w.src.path} to ${w.archive} failed: ${errorMessage(error)}`)
    }
  }
  return todo.map((t) => pushed.get(t.want.archive))
}

function unpackDone(ctx: ModuleContext, {want: w, plan}: UnarchiveTodo, s: StepResult): ItemResult {
  const data = {dest: w.dest, sha256: plan.sha256}
  if (s.rc === 0) return {status: 'changed', msg: plan.msg, data}
  if (s.rc === 65) return {status: 'failed', msg: s.stderr.trim(), rc: 65, data}
  return {status: 'failed', msg: failureMessage('unpack', `${w.src.path} into ${w.dest}`, s.rc, s.stderr, ctx.secrets), rc: s.rc, stderr: s.stderr, data}
}

export const unarchiveModule = defineModule<UnarchiveWant, UnarchiveFacts, {sha256: string; push: boolean}>({
  name: 'unarchive',
  description: 'Unpack a tar archive into a directory, verified by sha256, once per archive version',
  args: {
    src: {type: 'path', required: true},
    remote_src: {type: 'bool', default: false},
    dest: {type: 'path', required: true},
    checksum: {type: 'string'},
    extra_opts: {type: 'list', default: []},
    creates: {type: 'path'},
  },
  want: (ctx, item, scope) => want(ctx, item, (p) => hashOnce(scope, p)),
  ...eachStep(
    unarchiveFactStep,
    (s) => parseUnarchiveFacts(s.stdout),
    (ctx, wants) => (!ctx.check && wants.some((w) => w.src.kind === 'local') ? `mkdir -p -- ${quote(`${ctx.facts.home}/.cache/baremetal`)} 2>/dev/null` : ''),
  ),
  plan: planUnarchive,
  data: (_ctx, w, _f, plan) => (plan.kind === 'noop' ? {dest: w.dest} : undefined),
  apply: {
    before: pushArchives,
    step: (t) => unpackStep(t.want, t.plan.sha256),
    done: unpackDone,
  },
})
