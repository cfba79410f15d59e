// get_url: download a URL on the host (curl, else wget) into dest. The file is written
// to a temp file beside dest, its sha256 verified, and only then renamed into place:
// a failed or tampered download never replaces a good file. One probe for all loop
// items, one script for the downloads.
//
// Parameters:
//   url       http(s) or ftp URL
//   dest      path on the host; an existing directory or a trailing / puts the file
//             inside it under the URL's last path segment
//   checksum  "sha256:HEX": verified before the rename; an existing dest with this
//             sha256 is not downloaded again
//   mode      octal, e.g. '0644'
//   force     download again even if dest exists without a checksum to compare (default no)
//
// Example:
//   - name: fetch the redis release
//     get_url:
//       url: https://download.redis.io/releases/redis-7.2.5.tar.gz
//       dest: ~/redis-7.2.5.tar.gz
//       checksum: "sha256:{{ redis_sha256 }}"

import {posix} from 'node:path'
import {expandHome, mask, quote} from '../shell.js'
import {defineModule, type Todo} from './define.js'
import {badPath, failureMessage, fmtMode, parseChecksum, parseKv, parseProbe, probeStep, str, toMode, type PathStat, type Plan, type StepResult} from './remote.js'
import type {ItemResult, ModuleContext, TaskItem} from './types.js'

export interface GetUrlWant {
  url: string
  dest: string
  /** Appended when dest is a directory: the URL's last path segment. */
  name: string
  checksum?: string
  mode?: number
  force: boolean
}

export interface GetUrlFacts {
  intoDir: boolean
  dest: PathStat
  parent: boolean
}

export type GetUrlPlan = Plan<{path: string; action: 'download' | 'chmod'}>

// dest given as a directory: the file is named after the URL, as Ansible does.
export function urlName(url: string): string {
  try {
    const seg = new URL(url).pathname.split('/').filter(Boolean).pop()
    return seg ? decodeURIComponent(seg) : 'index.html'
  } catch {
    return 'download'
  }
}

// Where the download really goes once we know whether dest is a directory.
export function targetOf(w: GetUrlWant, intoDir: boolean): string {
  if (w.dest.endsWith('/')) return w.dest + w.name
  return intoDir ? `${w.dest}/${w.name}` : w.dest
}

// Every path whose stat decides an item: dest, dest/name, their parents.
export function getUrlProbePaths(w: GetUrlWant): string[] {
  const candidates = w.dest.endsWith('/') ? [targetOf(w, false)] : [w.dest, `${w.dest}/${w.name}`]
  return [...candidates, ...candidates.map((c) => posix.dirname(c))]
}

// Pure: the probe's stats → this item's facts.
export function getUrlFacts(w: GetUrlWant, probe: Map<string, PathStat>): GetUrlFacts {
  const get = (p: string): PathStat => probe.get(p) ?? {type: 'missing'}
  const intoDir = !w.dest.endsWith('/') && get(w.dest).type === 'directory'
  const target = targetOf(w, intoDir)
  return {intoDir, dest: get(target), parent: get(posix.dirname(target)).type === 'directory'}
}

// Pure: download, chmod, or nothing, from the probe (in check mode a missing directory
// may be an earlier task's work: "would download", not "failed").
export function planGetUrl(w: GetUrlWant, f: GetUrlFacts, check = false): GetUrlPlan {
  const path = targetOf(w, f.intoDir)
  const d = f.dest
  if (d.type === 'directory') return {kind: 'fail', msg: `${path} is a directory`}
  if (d.type === 'other') return {kind: 'fail', msg: `${path} exists and is not a regular file`}
  if (!f.parent && check) {
    const would = `would download ${w.url} to ${path} (its directory does not exist yet: an earlier task may create it)`
    return {kind: 'change', path, action: 'download', msg: would, would}
  }
  if (!f.parent) return {kind: 'fail', msg: `parent directory ${posix.dirname(path)} does not exist (create it first, e.g. with the file module and state: directory)`}
  if (d.type === 'file') {
    const same = w.checksum !== undefined && d.sha256 === w.checksum
    const keep = same || (w.checksum === undefined && !w.force)
    if (keep) {
      if (w.mode !== undefined && d.mode !== w.mode) {
        const change = `mode ${fmtMode(d.mode ?? 0)} → ${fmtMode(w.mode)}`
        return {kind: 'change', path, action: 'chmod', msg: change, would: `would change ${change}`}
      }
      return {kind: 'noop', msg: same ? `${path} already has sha256 ${w.checksum}` : `${path} exists (no checksum given, force: no)`}
    }
    const why = w.checksum ? `sha256 ${d.sha256 ?? 'unreadable'} differs from the checksum` : 'force: yes'
    return {kind: 'change', path, action: 'download', msg: `downloaded ${path} (${why})`, would: `would download ${w.url} to ${path} (${why})`}
  }
  return {kind: 'change', path, action: 'download', msg: `downloaded ${path}`, would: `would download ${w.url} to ${path}`}
}

// bm_get URL DEST EXPECTED MODE OLDSHA: download beside DEST, verify, then rename.
// Exit 65 = checksum mismatch; bm_note=same when the download equals the old file.
const GET_PRELUDE = `bm_fetch() {
  if command -v curl >/dev/null 2>&1; then curl -fsSL --connect-timeout 30 --retry 2 -o "$2" --url "$1"
  elif command -v wget >/dev/null 2>&1; then wget -q -T 30 -O "$2" -- "$1"
  else echo 'neither curl nor wget is installed on the host' >&2; return 127
  fi
}
bm_get() {
  bm_t="$2.baremetal-dl.$$"
  rm -f -- "$bm_t"
  bm_fetch "$1" "$bm_t" || { bm_r=$?; rm -f -- "$bm_t"; return $bm_r; }
  bm_a=$(sha256sum < "$bm_t" | cut -c1-64)
  printf 'sha256=%s\\n' "$bm_a"
  if [ -n "$3" ] && [ "$bm_a" != "$3" ]; then
    rm -f -- "$bm_t"
    echo "checksum mismatch: expected sha256:$3, got sha256:$bm_a" >&2
    return 65
  fi
  if [ -n "$5" ] && [ "$bm_a" = "$5" ]; then
    rm -f -- "$bm_t"; bm_note=same
    if [ -n "$4" ]; then chmod "$4" "$2" || return 1; fi
    return 0
  fi
  if [ -n "$4" ]; then chmod "$4" "$bm_t" || { rm -f -- "$bm_t"; return 1; }; fi
  mv -f -- "$bm_t" "$2"
}
`

function want(ctx: ModuleContext, item: TaskItem): GetUrlWant | {error: string} {
  const a = item.args
  const url = str(a.url)?.trim()
  const destRaw = str(a.dest)
  if (!url) return {error: 'get_url: url is required'}
  if (!/^(https?|ftp):\/\//i.test(url)) return {error: `get_url: url must start with http://, https:// or ftp:// (got ${JSON.stringify(mask(url, ctx.secrets))})`}
  if (!destRaw) return {error: 'get_url: dest is required'}
  const dest = expandHome(destRaw, ctx.facts.home)
  if (!posix.isAbsolute(dest)) return {error: `get_url: dest must be absolute (or start with ~/): ${destRaw}`}
  const bad = badPath(dest) ?? badPath(url)
  if (bad) return {error: `get_url: ${bad}`}
  try {
    return {url, dest, name: urlName(url), checksum: parseChecksum(a.checksum), mode: toMode(a.mode), force: a.force === true}
  } catch (error) {
    return {error: `get_url: ${(error as Error).message}`}
  }
}

type GetUrlTodo = Todo<GetUrlWant, GetUrlFacts, {path: string; action: 'download' | 'chmod'}>

// A replaced file keeps its mode unless one is given.
function getUrlStep({want: w, facts: f, plan}: GetUrlTodo): string {
  if (plan.action === 'chmod') return `chmod ${fmtMode(w.mode ?? 0o644)} -- ${quote(plan.path)}`
  const mode = w.mode ?? (f.dest.type === 'file' ? f.dest.mode : undefined)
  return `bm_get ${quote(w.url)} ${quote(plan.path)} ${quote(w.checksum ?? '')} ${quote(mode === undefined ? '' : fmtMode(mode))} ${quote(f.dest.sha256 ?? '')}`
}

function getUrlDone(ctx: ModuleContext, {want: w, facts: f, plan}: GetUrlTodo, s: StepResult): ItemResult {
  const data = {dest: plan.path, sha256: parseKv(s.stdout).sha256, url: mask(w.url, ctx.secrets)}
  if (s.rc === 65) return {status: 'failed', msg: `${plan.path}: ${s.stderr.trim()} (nothing replaced)`, rc: 65, data}
  if (s.rc !== 0) return {status: 'failed', msg: failureMessage('download', mask(w.url, ctx.secrets), s.rc, s.stderr, ctx.secrets), rc: s.rc, stderr: s.stderr, data}
  if (s.note !== 'same') return {status: 'changed', msg: plan.msg, data}
  const chmod = w.mode !== undefined && f.dest.mode !== w.mode
  return {status: chmod ? 'changed' : 'ok', msg: `${plan.path} downloaded again: content unchanged${chmod ? `, mode → ${fmtMode(w.mode ?? 0)}` : ''}`, data}
}

export const getUrlModule = defineModule<GetUrlWant, GetUrlFacts, {path: string; action: 'download' | 'chmod'}>({
  name: 'get_url',
  description: 'Download a URL on the host with curl/wget, verified by sha256 before it replaces dest',
  args: {
    url: {type: 'string', required: true},
    dest: {type: 'path', required: true},
    checksum: {type: 'string'},
    mode: {type: 'mode'},
    force: {type: 'bool', default: false},
  },
  want,
  probe: (_ctx, wants) => ({steps: [probeStep(wants.flatMap(getUrlProbePaths), true)]}),
  parse(wants, steps) {
    const probe = steps[0] ? parseProbe(wants.flatMap(getUrlProbePaths), steps[0].stdout) : undefined
    return wants.map((w) => (probe ? getUrlFacts(w, probe) : undefined))
  },
  plan: planGetUrl,
  data: (_ctx, w, f, plan) => (plan.kind === 'noop' ? {dest: targetOf(w, f.intoDir), sha256: f.dest.sha256} : undefined),
  apply: {
    prelude: GET_PRELUDE,
    log: (t) => (t.plan.action === 'download' ? `download ${t.want.url}` : undefined),
    step: getUrlStep,
    done: getUrlDone,
  },
})
