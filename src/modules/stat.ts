// stat: facts about paths on the host, for `register:`, as Ansible's stat: result.stat.exists,
// isdir, isreg, islnk, mode ('0644'), size, uid, gid, pw_name, gr_name, mtime, checksum, …
// All loop items in one round trip; never changes anything.
//
// Parameters:
//   path                the path (aliases: dest, name)
//   follow              follow a symlink (default no: a link reports islnk, lnk_source, lnk_target)
//   get_checksum        checksum of a readable regular file (default yes)
//   checksum_algorithm  sha1 (default, as Ansible) | md5 | sha224 | sha256 | sha384 | sha512
//
// Example:
//   - stat:
//       path: ~/redis_cluster/7000/nodes.conf
//     register: nodes_conf
//   - debug: msg="formed before"
//     when: nodes_conf.stat.exists

import {expandHome, quote} from '../shell.js'
import {defineModule} from './define.js'
import {badPath, str, type StepResult} from './remote.js'
import type {ModuleContext, TaskItem} from './types.js'

export interface StatWant {
  path: string
  follow: boolean
  checksum?: string
}

const ALGOS = ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512']
// stat -c: type|mode(octal)|uid|gid|user|group|size|inode|dev|nlink|atime|mtime|ctime
const FORMAT = '%F|%a|%u|%g|%U|%G|%s|%i|%d|%h|%X|%Y|%Z'

/** One step per path: the stat line, access bits for the remote user, link target, checksum. */
export function statStep(w: StatWant): string {
  const p = quote(w.path)
  const L = w.follow ? '-L ' : ''
  const sum = w.checksum ? `if [ -f ${p} ] && [ -r ${p} ] && { [ ${w.follow ? 1 : 0} = 1 ] || [ ! -L ${p} ]; }; then printf 'C|'; ${w.checksum}sum < ${p} | cut -d' ' -f1; fi` : ':'
  return [
    `if [ -e ${p} ] || [ -L ${p} ]; then`,
    `printf 'S|'; stat ${L}-c '${FORMAT}' -- ${p} || stat -c '${FORMAT}' -- ${p}`,
    `printf 'A|%s%s%s\\n' "$([ -r ${p} ] && echo r)" "$([ -w ${p} ] && echo w)" "$([ -x ${p} ] && echo x)"`,
    `if [ -L ${p} ]; then printf 'T|'; readlink -- ${p}; printf 'R|'; readlink -f -- ${p}; fi`,
    sum,
    `else echo missing; fi`,
  ].join('\n')
}

const TYPES: Record<string, string> = {
  'regular file': 'isreg',
  'regular empty file': 'isreg',
  directory: 'isdir',
  'symbolic link': 'islnk',
  'character special file': 'ischr',
  'block special file': 'isblk',
  fifo: 'isfifo',
  socket: 'issock',
}

/** Pure: a statStep's output → Ansible's `stat` dict. */
export function parseStatStep(w: StatWant, s: StepResult): Record<string, unknown> {
  const lines = s.stdout.split('\n')
  const get = (k: string) => lines.find((l) => l.startsWith(`${k}|`))?.slice(k.length + 1)
  const st = get('S')
  if (!st) return {exists: false}
  const [type, mode, uid, gid, user, group, size, inode, dev, nlink, atime, mtime, ctime] = st.split('|')
  const m = parseInt(mode, 8)
  const acc = get('A') ?? ''
  const out: Record<string, unknown> = {exists: true, path: w.path, mode: m.toString(8).padStart(4, '0')}
  for (const flag of new Set(Object.values(TYPES))) out[flag] = TYPES[type] === flag
  Object.assign(out, {
    uid: Number(uid),
    gid: Number(gid),
    pw_name: user,
    gr_name: group,
    size: Number(size),
    inode: Number(inode),
    dev: Number(dev),
    nlink: Number(nlink),
    atime: Number(atime),
    mtime: Number(mtime),
    ctime: Number(ctime),
    readable: acc.includes('r'),
    writeable: acc.includes('w'),
    executable: acc.includes('x'),
  })
  const bits: Array<[string, number]> = [
    ['rusr', 0o400],
    ['wusr', 0o200],
    ['xusr', 0o100],
    ['rgrp', 0o40],
    ['wgrp', 0o20],
    ['xgrp', 0o10],
    ['roth', 0o4],
    ['woth', 0o2],
    ['xoth', 0o1],
    ['isuid', 0o4000],
    ['isgid', 0o2000],
  ]
  for (const [k, b] of bits) out[k] = (m & b) !== 0
  const target = get('T')
  if (target !== undefined) Object.assign(out, {lnk_target: target, lnk_source: get('R') ?? ''})
  const sum = get('C')
  if (sum && /^[0-9a-f]+$/.test(sum)) out.checksum = sum
  return out
}

function want(ctx: ModuleContext, item: TaskItem): StatWant | {error: string} {
  const a = item.args
  const raw = str(a.path)
  if (!raw) return {error: 'stat: path is required'}
  const path = expandHome(raw, ctx.facts.home)
  const bad = badPath(path)
  if (bad) return {error: `stat: ${bad}`}
  const algo = str(a.checksum_algorithm) ?? 'sha1'
  return {path, follow: a.follow === true, checksum: a.get_checksum === false ? undefined : algo}
}

export const statModule = defineModule<StatWant, Record<string, unknown>, Record<string, never>>({
  name: 'stat',
  description: "Facts about paths (exists, type, mode, owner, size, mtime, checksum) for register, as Ansible's stat; all loop items in one round trip",
  args: {
    path: {type: 'path', required: true, aliases: ['dest', 'name']},
    follow: {type: 'bool', default: false},
    get_checksum: {type: 'bool', default: true},
    checksum_algorithm: {type: 'string', choices: ALGOS, default: 'sha1', aliases: ['checksum', 'checksum_algo']},
  },
  want,
  probe: (_ctx, wants) => ({steps: wants.map(statStep)}),
  parse: (wants, steps) => wants.map((w, k) => (steps[k] ? parseStatStep(w, steps[k]!) : undefined)),
  plan: (w, f) => ({
    kind: 'noop',
    msg: f.exists ? `${w.path} exists (${f.isdir ? 'directory' : f.islnk ? 'symlink' : f.isreg ? 'file' : 'special'}, mode ${String(f.mode)})` : `${w.path} does not exist`,
  }),
  data: (_ctx, _w, f) => ({stat: f, changed: false}),
  apply: {step: () => ':'},
})
