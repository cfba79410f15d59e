// haproxy: HAProxy in front of master–replica groups, sending each group's writes to its one
// master (and optionally reads to its in-sync replicas). Installed from the distribution's
// package when missing, run as our own daemon (no init system needed), its files only under
// dir/<name>/ on the host: haproxy.cfg (0600: it holds the AUTH bytes), haproxy.pid,
// admin.sock, applied.sha256 (the config the running process was started with).
//
// Parameters:
//   name        the cluster name: its files live in dir/<name>/ (required)
//   frontends   list of {name, port, servers: [{ip, port}] or ["ip:port"], sentinels?: same,
//               read_port?}: name is the group's Sentinel master name; port its write port;
//               read_port (optional, 0 = none) a frontend over its in-sync replicas
//   password    the instances' requirepass (secret): the checks AUTH with it
//   sentinel_password  the Sentinels' requirepass (secret), when they have one
//   state       present | absent (default present)
//   bind        the address the frontends listen on (default 0.0.0.0)
//   dir         parent of the per-cluster directories (default ~/.baremetal/haproxy)
//   package     the package to install when no binary is found (default haproxy)
//   bin         the haproxy binary (default: haproxy in PATH, /usr/sbin, /usr/local/sbin)
//   check_interval / sentinel_check_interval  ms between checks (default 250 / 500)
//   fall / rise  failed / passed checks that mark an instance down / up (default 2 / 1)
//   timeout_client  idle client and server connections are closed after it (default 24h)
//   maxconn     (default 10000);  hard_stop_after  (default 30s)
//
// The write rule: an instance gets a group's writes only while its check passes (AUTH,
// PING → +PONG, INFO replication → role:master) AND, when the group lists Sentinels, a
// majority of them name it (SENTINEL get-master-addr-by-name, the exact reply compared
// byte for byte); without Sentinels only while it is the one instance claiming role:master.
// A majority can name one server only, so writes never go to two masters: an old master
// restarted empty (a master until Sentinel demotes it) gets nothing. No server passing:
// the frontend closes new connections at once. A demoted master is marked down within
// fall × check_interval and its client sessions are cut (on-marked-down shutdown-sessions).
//
// Every (re)load is preceded by `haproxy -c`; a refused config changes nothing. A changed
// config reloads with -x admin.sock -sf OLDPID: the new process takes the listening
// sockets over and the old one finishes its sessions (at most hard_stop_after). Only pids
// verified as ours are signalled: alive, in this host's network namespace, a haproxy whose
// command line names our haproxy.cfg. state: absent stops them and removes dir/<name>.
//
// Example:
//   - name: HAProxy in front of the groups
//     haproxy:
//       name: "{{ redis_cluster_name }}"
//       password: "{{ redis_password }}"
//       frontends:
//         - {name: c-6379, port: 6379, servers: ["10.0.0.1:6379", "10.0.0.2:6379"], sentinels: ["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"]}

import {readFileSync} from 'node:fs'
import {isIP} from 'node:net'
import {posix} from 'node:path'
import {bundled} from '../cli/paths.js'
import {renderText} from '../play/template.js'
import {expandHome, mask, quote} from '../shell.js'
import {aptModule} from './apt.js'
import {defineModule, type Todo} from './define.js'
import {kvAll, parseKv, sha256, str, type Plan, type StepResult} from './remote.js'
import type {ArgSpec, ItemResult, ModuleContext, TaskItem} from './types.js'

export interface HaServer {
  ip: string
  port: number
}

export interface HaFrontend {
  name: string
  port: number
  readPort?: number
  servers: HaServer[]
  sentinels: HaServer[]
}

export interface HaproxySettings {
  name: string
  /** This cluster's directory on the host (absolute). */
  dir: string
  frontends: HaFrontend[]
  password?: string
  sentinelPassword?: string
  bind: string
  inter: number
  sentinelInter: number
  fall: number
  rise: number
  timeoutClient: string
  maxconn: number
  hardStopAfter: string
}

const NAME = /^[A-Za-z0-9_.:-]+$/
const DURATION = /^\d+(us|ms|s|m|h|d)?$/

function toPort(v: unknown): number | undefined {
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined
}

// "ip:port" or {ip, port} (host accepted as a synonym of ip); IPv6 as "[::1]:6379".
function parseServer(v: unknown, where: string): HaServer | string {
  if (typeof v === 'string') {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(v.trim())
    if (!m) return `${where}: ${JSON.stringify(v)} is not "ip:port"`
    v = {ip: m[1], port: m[2]}
  }
  if (typeof v !== 'object' || v === null) return `${where}: give {ip, port} or "ip:port"`
  const o = v as Record<string, unknown>
  const ip = str(o.ip ?? o.host)
  const port = toPort(o.port)
  if (!ip || !/^[A-Za-z0-9_.:-]+$/.test(ip)) return `${where}: ip ${JSON.stringify(ip ?? null)} is not an address`
  if (port === undefined) return `${where}: port ${JSON.stringify(o.port ?? null)} is not a port (1-65535)`
  return {ip, port}
}

function parseList(v: unknown, where: string): HaServer[] | string {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v)) return `${where} must be a list`
  const out: HaServer[] = []
  for (const [k, s] of v.entries()) {
    const r = parseServer(s, `${where}[${k}]`)
    if (typeof r === 'string') return r
    out.push(r)
  }
  return out
}

function parseFrontend(v: unknown, k: number): HaFrontend | string {
  const at = `frontends[${k}]`
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return `${at} must be a mapping {name, port, servers, sentinels?, read_port?}`
  const o = v as Record<string, unknown>
  const name = str(o.name)
  if (!name || !NAME.test(name)) return `${at}.name ${JSON.stringify(name ?? null)}: give the group's name (letters, digits, _ . : -)`
  const port = toPort(o.port)
  if (port === undefined) return `${at}.port ${JSON.stringify(o.port ?? null)} is not a port (1-65535)`
  const rp = o.read_port === undefined || o.read_port === null || o.read_port === 0 || o.read_port === '0' ? undefined : toPort(o.read_port)
  if (rp === undefined && !(o.read_port === undefined || o.read_port === null || Number(o.read_port) === 0))
    return `${at}.read_port ${JSON.stringify(o.read_port)} is not a port (0 = no read frontend)`
  const servers = parseList(o.servers, `${at}.servers`)
  if (typeof servers === 'string') return servers
  if (servers.length === 0) return `${at}.servers is empty: list the group's instances (master and replicas)`
  const sentinels = parseList(o.sentinels, `${at}.sentinels`)
  if (typeof sentinels === 'string') return sentinels
  // Sentinel names its master by address: the check compares the exact reply.
  const named = sentinels.length > 0 ? servers.find((s) => isIP(s.ip) === 0) : undefined
  if (named) return `${at}.servers: ${named.ip} is not a numeric IP, and Sentinel names masters by IP: give the address the instances announce`
  return {name, port, ...(rp ? {readPort: rp} : {}), servers, sentinels}
}

/** The frontends argument, checked: names and ports unique, servers given. */
export function parseFrontends(v: unknown): HaFrontend[] | string {
  if (!Array.isArray(v) || v.length === 0) return 'frontends: give a list of {name, port, servers, sentinels?, read_port?}'
  const out: HaFrontend[] = []
  const ports = new Map<number, string>()
  const names = new Set<string>()
  for (const [k, f] of v.entries()) {
    const r = parseFrontend(f, k)
    if (typeof r === 'string') return r
    if (names.has(r.name)) return `frontends: the name ${r.name} is given twice`
    names.add(r.name)
    for (const p of [r.port, ...(r.readPort ? [r.readPort] : [])]) {
      const other = ports.get(p)
      if (other) return `frontends: port ${p} of ${r.name} is already the port of ${other}`
      ports.set(p, r.name)
    }
    out.push(r)
  }
  return out
}

/** A command as RESP bytes, in hex (for tcp-check send-binary / expect binary). */
export function respHex(args: string[]): string {
  const parts = [`*${args.length}\r\n`, ...args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`)]
  return Buffer.from(parts.join('')).toString('hex')
}

/** Sentinel's whole reply to get-master-addr-by-name naming ip:port, in hex. */
export function namedReplyHex(s: HaServer): string {
  return respHex([s.ip, String(s.port)])
}

/** The hex forms of the secrets as they appear in the config: masked like the secrets themselves. */
export function secretForms(s: Pick<HaproxySettings, 'password' | 'sentinelPassword'>): string[] {
  return [s.password, s.sentinelPassword].flatMap((p) => (p ? [p, respHex(['AUTH', p])] : []))
}

function authLines(password: string | undefined): string[] {
  return password ? [`tcp-check send-binary ${respHex(['AUTH', password])}`, 'tcp-check expect string +OK'] : []
}

/** The variables the template renders from: every condition and hex string computed here. */
export function haproxyView(s: HaproxySettings): Record<string, unknown> {
  const frontends = s.frontends.map((f) => {
    const majority = Math.floor(f.sentinels.length / 2) + 1
    const servers = f.servers.map((srv, i) => {
      const id = `s${i}`
      const gate = f.sentinels.length > 0 ? `{ nbsrv(${f.name}_named_${id}) ge ${majority} }` : `{ nbsrv(${f.name}_write) eq 1 }`
      const answer = namedReplyHex(srv)
      return {id, ip: srv.ip, port: srv.port, answer, answer_len: answer.length / 2, cond: `{ srv_is_up(${f.name}_write/${id}) } ${gate}`}
    })
    return {
      id: f.name,
      name: f.name,
      port: f.port,
      read_port: f.readPort ?? 0,
      majority,
      servers,
      sentinels: f.sentinels.map((t, i) => ({id: `t${i}`, ip: t.ip, port: t.port})),
      ask: respHex(['SENTINEL', 'get-master-addr-by-name', f.name]),
      accept: servers.map((x) => x.cond).join(' or '),
    }
  })
  return {
    name: s.name,
    dir: s.dir,
    bind: s.bind,
    maxconn: s.maxconn,
    hard_stop_after: s.hardStopAfter,
    timeout_client: s.timeoutClient,
    inter: `${s.inter}ms`,
    fast_inter: `${Math.min(s.inter, 50)}ms`,
    sentinel_inter: `${s.sentinelInter}ms`,
    // A check must end before the next one starts; a slow answer counts as a failure.
    check_timeout: `${Math.max(100, s.inter * 4)}ms`,
    fall: s.fall,
    rise: s.rise,
    auth: authLines(s.password),
    sentinel_auth: authLines(s.sentinelPassword),
    frontends,
  }
}

/** Each server as `show servers state` names it (backend, server, address, port). */
export function stateKeys(s: HaproxySettings): string[] {
  return s.frontends.flatMap((f) => {
    const own = f.servers.flatMap((srv, i) => [`${f.name}_write s${i} ${srv.ip} ${srv.port}`, ...(f.readPort ? [`${f.name}_read s${i} ${srv.ip} ${srv.port}`] : [])])
    const named = f.servers.flatMap((_, i) => f.sentinels.map((t, k) => `${f.name}_named_s${i} t${k} ${t.ip} ${t.port}`))
    return [...own, ...named]
  })
}

let bundledTemplate: string | undefined

/** Pure: the haproxy.cfg of these settings (the bundled template unless source is given). */
export function renderHaproxyConfig(s: HaproxySettings, source?: string): string {
  bundledTemplate ??= readFileSync(bundled('templates', 'haproxy.cfg.hbs'), 'utf8')
  return renderText(source ?? bundledTemplate, haproxyView(s), {file: 'templates/haproxy.cfg.hbs'})
}

export interface HaproxyWant {
  state: 'present' | 'absent'
  name: string
  dir: string
  bin?: string
  pkg: string
  config: string
  sha: string
  ports: number[]
  /** How long a fresh start refuses connections: until the first checks are in. */
  gateMs: number
  /** "backend server ip port" of every server: the only health states a reload carries over. */
  keep: string[]
}

export interface HaproxyFacts {
  /** The binary found ('' none). */
  bin: string
  version: string
  dir: boolean
  /** sha256 of haproxy.cfg and of the config the running process started with ('' none). */
  cfg: string
  applied: string
  /** Our running HAProxy (verified), '' none. */
  pid: string
  /** Our older processes still finishing their sessions after a reload. */
  draining: string[]
  /** Frontend ports nothing listens on. */
  down: number[]
  old?: string
}

export interface HaproxyChange {
  install: boolean
  write: boolean
  action: 'start' | 'reload' | 'stop'
}

function versionOk(v: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(v)
  return !m || Number(m[1]) > 2 || (Number(m[1]) === 2 && Number(m[2]) >= 0)
}

/** Pure: what this host needs. */
export function planHaproxy(w: HaproxyWant, f: HaproxyFacts): Plan<HaproxyChange> {
  if (w.state === 'absent') {
    const pids = [f.pid, ...f.draining].filter(Boolean)
    if (pids.length === 0 && !f.dir) return {kind: 'noop', msg: `no HAProxy of ${w.name} here (nothing in ${w.dir})`}
    const what = [pids.length && `stop HAProxy (pid ${pids.join(', ')})`, f.dir && `remove ${w.dir}`].filter(Boolean).join(', ')
    return {kind: 'change', install: false, write: false, action: 'stop', msg: what.replace(/^stop/, 'stopped').replace('remove', 'removed'), would: `would ${what}`}
  }
  if (f.bin && !versionOk(f.version)) return {kind: 'fail', msg: `${f.bin} is HAProxy ${f.version}: 2.0 or later is needed (tcp-check send-binary, -x socket transfer)`}
  const install = !f.bin
  const write = f.cfg !== w.sha
  const action = f.pid ? 'reload' : 'start'
  const stale = f.pid !== '' && f.applied !== w.sha
  if (!install && !write && f.pid && !stale && f.down.length === 0) return {kind: 'noop', msg: `HAProxy running (pid ${f.pid}), configuration unchanged`}
  const why = [
    install && `install ${w.pkg}`,
    write && (f.cfg ? 'rewrite the changed configuration' : 'write the configuration'),
    action === 'reload' ? `reload (pid ${f.pid}; listeners kept)${f.down.length ? `: port(s) ${f.down.join(', ')} not listening` : ''}` : f.dir && !write ? 'start (it was not running)' : 'start',
  ].filter(Boolean) as string[]
  const done = why
    .join(', ')
    .replace('install', 'installed')
    .replace('rewrite', 'rewrote')
    .replace('write', 'wrote')
    .replace(/\breload\b/, 'reloaded')
    .replace(/\bstart\b/, 'started')
  return {kind: 'change', install, write, action, msg: done, would: `would ${why.join(', ')}`}
}

// Shell functions of every step. Builtins where they run per pid (the PID namespace may be
// shared with other hosts, hence the network namespace test).
const LIB = String.raw`
hp_bin() {
  if [ -n "$1" ]; then [ -x "$1" ] && printf '%s' "$1"; return 0; fi
  hb_v=$(command -v haproxy 2>/dev/null) && { printf '%s' "$hb_v"; return 0; }
  for hb_v in /usr/sbin/haproxy /usr/local/sbin/haproxy; do [ -x "$hb_v" ] && { printf '%s' "$hb_v"; return 0; }; done
  return 0
}
hp_pid() { hp_v=""; [ -f "$1" ] && read -r hp_v < "$1" 2>/dev/null; case "$hp_v" in *[!0-9]*) hp_v="";; esac; printf '%s' "$hp_v"; }
hp_ours() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
  ho_st=""; read -r ho_st < "/proc/$1/stat" 2>/dev/null
  case "$ho_st" in *") "[ZX]" "*) return 1;; esac
  [ ! -e "/proc/$1/ns/net" ] || [ "/proc/$1/ns/net" -ef "/proc/$$/ns/net" ] || return 1
  ho_args=$(tr '\0' '\n' < "/proc/$1/cmdline" 2>/dev/null) || return 1
  ho_exe=$(printf '%s\n' "$ho_args" | head -n 1)
  case "$ho_exe" in haproxy|*/haproxy) ;; *) return 1;; esac
  printf '%s\n' "$ho_args" | grep -qxF -- "$2"
}
hp_down() {
  if command -v ss >/dev/null 2>&1; then hd_l=" $(ss -ltn 2>/dev/null | awk 'NR>1 {printf "%s ", $4}')"; else return 0; fi
  for hd_p in $1; do case "$hd_l" in *":$hd_p "*) ;; *) printf '%s ' "$hd_p";; esac; done
}
# The running process's server health, kept only for servers the new config has unchanged
# (same backend, name, address and port). perl-base is essential on Debian; without it the
# reload falls back to the fresh-start gate.
hp_keep_state() {
  [ -S "$d/admin.sock" ] && command -v perl >/dev/null 2>&1 || return 1
  perl -MIO::Socket::UNIX -e '$s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or exit 1; print $s "show servers state\n"; print while <$s>;' "$d/admin.sock" > "$d/server.state.all" 2>/dev/null || return 1
  awk 'NR == FNR { keep[$0] = 1; next } FNR <= 2 || (($2 " " $4 " " $5 " " $19) in keep)' "$d/state.keep" "$d/server.state.all" > "$d/server.state" && rm -f "$d/server.state.all"
}
hp_draining() { for hr_p in $(cat "$1/draining.pids" 2>/dev/null); do hp_ours "$hr_p" "$1/haproxy.cfg" && printf '%s ' "$hr_p"; done; }
`

function head(w: HaproxyWant): string {
  return `d=${quote(w.dir)}; cfg="$d/haproxy.cfg"; pidf="$d/haproxy.pid"; PORTS=${quote(w.ports.join(' '))}; BIN=${quote(w.bin ?? '')}`
}

/** The fact step of one item: key=value lines. */
export function factStep(w: HaproxyWant, diff: boolean): string {
  return [
    head(w),
    'hb=$(hp_bin "$BIN"); echo "bin=$hb"',
    `[ -n "$hb" ] && echo "version=$("$hb" -v 2>/dev/null | sed -n '1s/^HA-\\{0,1\\}Proxy version \\([^ ]*\\).*/\\1/p')"`,
    '[ -d "$d" ] && echo dir=1',
    '[ -f "$cfg" ] && echo "cfg=$(sha256sum < "$cfg" | cut -c1-64)"',
    '[ -f "$d/applied.sha256" ] && echo "applied=$(cut -c1-64 < "$d/applied.sha256")"',
    'p=$(hp_pid "$pidf"); hp_ours "$p" "$cfg" && echo "pid=$p"',
    'for q in $(hp_draining "$d"); do echo "draining=$q"; done',
    'for q in $(hp_down "$PORTS"); do echo "down=$q"; done',
    diff ? '[ -f "$cfg" ] && echo "old=$(base64 -w0 < "$cfg")"' : ':',
    ':',
  ].join('\n')
}

export function parseFacts(s: StepResult): HaproxyFacts {
  const kv = parseKv(s.stdout)
  return {
    bin: kv.bin ?? '',
    version: kv.version ?? '',
    dir: kv.dir === '1',
    cfg: kv.cfg ?? '',
    applied: kv.applied ?? '',
    pid: kv.pid ?? '',
    draining: kvAll(s.stdout, 'draining'),
    down: kvAll(s.stdout, 'down').map(Number),
    ...(kv.old !== undefined ? {old: Buffer.from(kv.old, 'base64').toString('utf8')} : {}),
  }
}

// Write (when asked), validate, then start or reload; prints "@@ started|reloaded PID".
function presentStep(t: Todo<HaproxyWant, HaproxyFacts, HaproxyChange>): string {
  const w = t.want
  const write = t.plan.write
    ? [
        `printf '%s' ${quote(Buffer.from(w.config).toString('base64'))} | base64 -d > "$cfg.new" && chmod 600 "$cfg.new" || { echo "cannot write $cfg.new" >&2; exit 4; }`,
        'if ! BM_HAPROXY_READY_MS=0 "$hb" -c -f "$cfg.new" > "$d/check.out" 2>&1; then cat "$d/check.out" >&2; rm -f "$cfg.new" "$d/check.out"',
        '  echo "haproxy -c refused the new configuration: nothing was (re)loaded, $cfg is unchanged" >&2; exit 5; fi',
        'rm -f "$d/check.out"; mv -f "$cfg.new" "$cfg"',
      ]
    : [
        'BM_HAPROXY_READY_MS=0 "$hb" -c -f "$cfg" > "$d/check.out" 2>&1 || { cat "$d/check.out" >&2; rm -f "$d/check.out"; echo "haproxy -c refused $cfg: not (re)loaded" >&2; exit 5; }',
        'rm -f "$d/check.out"',
      ]
  return [
    `(${head(w)}`,
    'hb=$(hp_bin "$BIN")',
    `[ -n "$hb" ] || { echo ${quote(`no haproxy binary${w.bin ? ` at ${w.bin}` : ' in PATH, /usr/sbin or /usr/local/sbin'} (package ${w.pkg} installed?)`)} >&2; exit 3; }`,
    'umask 077; mkdir -p "$d" && chmod 700 "$d" || exit 4',
    ...write,
    // Decided again here: the process may have died since the facts were read.
    'old=$(hp_pid "$pidf"); hp_ours "$old" "$cfg" || old=""',
    `gate=$(( $(date +%s%3N) + ${w.gateMs} ))`,
    `printf '%s\\n' ${w.keep.map(quote).join(' ')} > "$d/state.keep"`,
    'if [ -n "$old" ]; then',
    '  xs=""; [ -S "$d/admin.sock" ] && xs="-x $d/admin.sock"',
    '  if hp_keep_state; then gate=0; else rm -f "$d/server.state"; fi',
    '  BM_HAPROXY_READY_MS=$gate "$hb" -f "$cfg" -p "$pidf" -D $xs -sf "$old" > "$d/launch.out" 2>&1 < /dev/null; rc=$?; how=reloaded',
    '  { hp_draining "$d"; echo "$old"; } | tr " " "\\n" | grep . | sort -u > "$d/draining.pids.tmp"; mv -f "$d/draining.pids.tmp" "$d/draining.pids"',
    'else',
    '  rm -f "$d/admin.sock" "$d/server.state"',
    '  BM_HAPROXY_READY_MS=$gate "$hb" -f "$cfg" -p "$pidf" -D > "$d/launch.out" 2>&1 < /dev/null; rc=$?; how=started',
    'fi',
    'if [ "$rc" != 0 ]; then cat "$d/launch.out" >&2; rm -f "$d/launch.out"; echo "haproxy exited with $rc: not $how" >&2; exit 6; fi',
    'rm -f "$d/launch.out"',
    'n=0; while :; do',
    '  np=$(hp_pid "$pidf")',
    '  if [ "$np" != "$old" ] && hp_ours "$np" "$cfg" && [ -z "$(hp_down "$PORTS")" ]; then break; fi',
    '  n=$((n + 1)); [ "$n" -ge 100 ] && { echo "HAProxy ($how) is not listening on every port after 10 s: missing $(hp_down "$PORTS")" >&2; exit 6; }',
    '  sleep 0.1',
    'done',
    'sha256sum < "$cfg" | cut -c1-64 > "$d/applied.sha256"',
    'echo "@@ $how $np")',
  ].join('\n')
}

// SIGTERM to our verified pids only, SIGKILL after 10 s, then our directory.
function absentStep(w: HaproxyWant): string {
  return [
    `(${head(w)}`,
    'pids=""; p=$(hp_pid "$pidf"); hp_ours "$p" "$cfg" && pids=$p',
    'pids="$pids $(hp_draining "$d")"',
    'for p in $pids; do kill -TERM "$p" 2>/dev/null; done',
    'n=0; left=$pids',
    'while [ -n "$(echo $left)" ]; do',
    '  nl=""; for p in $left; do hp_ours "$p" "$cfg" && nl="$nl $p"; done; left=$nl',
    '  [ -z "$(echo $left)" ] && break',
    '  n=$((n + 1)); [ "$n" = 100 ] && for p in $left; do kill -KILL "$p" 2>/dev/null; done',
    '  [ "$n" -ge 130 ] && { echo "HAProxy pid(s)$left still running" >&2; exit 7; }',
    '  sleep 0.1',
    'done',
    'rm -rf "$d" || exit 4',
    // The parents only when nothing else is in them.
    'rmdir "${d%/*}" 2>/dev/null; rmdir "${d%/*/*}" 2>/dev/null',
    'echo "@@ stopped $(echo $pids)")',
  ].join('\n')
}

function maskedDiff(ctx: ModuleContext, t: Todo<HaproxyWant, HaproxyFacts, HaproxyChange>): ItemResult['diff'] {
  if (!ctx.diff || !t.plan.write) return undefined
  return [{path: posix.join(t.want.dir, 'haproxy.cfg'), before: mask(t.facts.old ?? '', ctx.secrets), after: mask(t.want.config, ctx.secrets)}]
}

function intArg(v: unknown, dflt: number, min: number, name: string): number | string {
  const n = v === undefined || v === null ? dflt : Number(v)
  return Number.isInteger(n) && n >= min ? n : `${name} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`
}

function settingsOf(ctx: ModuleContext, a: Record<string, unknown>, dir: string, name: string): HaproxySettings | string {
  const frontends = a.state === 'absent' && (a.frontends === undefined || a.frontends === null) ? [] : parseFrontends(a.frontends)
  if (typeof frontends === 'string') return frontends
  const ints = {
    inter: intArg(a.check_interval, 250, 10, 'check_interval'),
    sentinelInter: intArg(a.sentinel_check_interval, 500, 10, 'sentinel_check_interval'),
    fall: intArg(a.fall, 2, 1, 'fall'),
    rise: intArg(a.rise, 1, 1, 'rise'),
    maxconn: intArg(a.maxconn, 10000, 1, 'maxconn'),
  }
  const bad = Object.values(ints).find((v) => typeof v === 'string')
  if (bad) return bad as string
  const timeoutClient = str(a.timeout_client) ?? '24h'
  const hardStopAfter = str(a.hard_stop_after) ?? '30s'
  for (const [k, v] of [
    ['timeout_client', timeoutClient],
    ['hard_stop_after', hardStopAfter],
  ])
    if (!DURATION.test(v)) return `${k} ${JSON.stringify(v)} is not a duration (e.g. 30s, 24h)`
  const bind = str(a.bind) ?? '0.0.0.0'
  if (!/^[A-Za-z0-9_.:*[\]-]+$/.test(bind)) return `bind ${JSON.stringify(bind)} is not an address`
  const secret = (v: unknown) => (v === undefined || v === null || v === '' ? undefined : String(v))
  return {name, dir, frontends, password: secret(a.password), sentinelPassword: secret(a.sentinel_password), bind, timeoutClient, hardStopAfter, ...(ints as Record<keyof typeof ints, number>)}
}

function wantOf(ctx: ModuleContext, item: TaskItem): HaproxyWant | {error: string} {
  const a = item.args
  const fail = (m: string) => ({error: `haproxy: ${m}`})
  const name = str(a.name)
  if (!name || !/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith('.')) return fail(`name ${JSON.stringify(name ?? null)}: give the cluster name (letters, digits, _ . -)`)
  const parent = expandHome(str(a.dir) ?? '~/.baremetal/haproxy', ctx.facts.home).replace(/(.)\/+$/, '$1')
  if (!posix.isAbsolute(parent)) return fail(`dir must be absolute (or start with ~/): ${parent}`)
  const dir = posix.join(parent, name)
  const s = settingsOf(ctx, a, dir, name)
  if (typeof s === 'string') return fail(s)
  // The hex AUTH bytes are the password too: masked wherever the password is.
  for (const f of secretForms(s)) ctx.secrets.add(f)
  const state = a.state === 'absent' ? 'absent' : 'present'
  let config = ''
  if (state === 'present') {
    try {
      config = renderHaproxyConfig(s)
    } catch (error) {
      return fail(`cannot render templates/haproxy.cfg.hbs: ${error instanceof Error ? error.message : String(error)}`)
    }
  }
  const ports = s.frontends.flatMap((f) => [f.port, ...(f.readPort ? [f.readPort] : [])])
  const bin = str(a.bin) ? expandHome(str(a.bin)!, ctx.facts.home) : undefined
  const gateMs = 2 * Math.max(s.inter, s.sentinelInter) + 250
  return {state, name, dir, bin, pkg: str(a.package) ?? 'haproxy', config, sha: sha256(config), ports, gateMs, keep: stateKeys(s)}
}

// A missing binary: the distribution's package, with apt's own lock and stale-list handling.
async function install(ctx: ModuleContext, todo: Array<Todo<HaproxyWant, HaproxyFacts, HaproxyChange>>): Promise<Array<string | undefined>> {
  const out: Array<string | undefined> = []
  for (const t of todo) {
    if (!t.plan.install) {
      out.push(undefined)
      continue
    }
    ctx.log(`haproxy: no haproxy binary, installing the ${t.want.pkg} package`)
    const [r] = await aptModule.run(ctx, [{args: {name: [t.want.pkg], state: 'present'}}])
    out.push(
      r.status === 'failed'
        ? `haproxy is not installed on ${ctx.host} and the ${t.want.pkg} package could not be installed: ${r.msg ?? 'apt-get failed'}\n` +
            `fix: make the package installable there (a reachable Debian/Ubuntu mirror or a local one in the apt sources, then apt-get update), or install HAProxy 2.0+ yourself and give its path as bin`
        : undefined,
    )
  }
  return out
}

const ARGS: Record<string, ArgSpec> = {
  name: {type: 'string', required: true},
  frontends: {type: 'list'},
  password: {type: 'string', secret: true},
  sentinel_password: {type: 'string', secret: true},
  state: {type: 'string', choices: ['present', 'absent'], default: 'present'},
  bind: {type: 'string', default: '0.0.0.0'},
  dir: {type: 'path', default: '~/.baremetal/haproxy'},
  package: {type: 'string', default: 'haproxy'},
  bin: {type: 'path'},
  check_interval: {type: 'int', default: 250},
  sentinel_check_interval: {type: 'int', default: 500},
  fall: {type: 'int', default: 2},
  rise: {type: 'int', default: 1},
  timeout_client: {type: 'string', default: '24h'},
  maxconn: {type: 'int', default: 10000},
  hard_stop_after: {type: 'string', default: '30s'},
}

export const haproxyModule = defineModule<HaproxyWant, HaproxyFacts, HaproxyChange>({
  name: 'haproxy',
  description: "HAProxy in front of master–replica groups (writes to the one master Sentinel names), from the distribution's package, run as our own daemon",
  args: ARGS,
  want: (ctx, item) => wantOf(ctx, item),
  probe: (ctx, wants) => ({steps: wants.map((w) => factStep(w, ctx.diff)), prelude: LIB}),
  parse: (wants, steps) => wants.map((_, k) => (steps[k] ? parseFacts(steps[k]!) : undefined)),
  plan: (w, f) => planHaproxy(w, f),
  data: (_ctx, w, f) => ({dir: w.dir, pid: f.pid, ports: w.ports}),
  async changed(ctx, todo) {
    const diffs = new Map(todo.map((t) => [t.i, maskedDiff(ctx, t)]))
    return (t, msg) => {
      const d = diffs.get(t.i)
      return {status: 'changed', msg, ...(d ? {diff: d} : {}), data: {dir: t.want.dir, ports: t.want.ports}}
    }
  },
  apply: {
    prelude: LIB,
    before: (ctx, todo) => install(ctx, todo),
    step: (t) => (t.plan.action === 'stop' ? absentStep(t.want) : presentStep(t)),
    what: 'haproxy',
    subject: (t) => t.want.dir,
    done(ctx, t, s, finish) {
      if (s.rc !== 0) {
        const err = mask(s.stderr.trim().split('\n').slice(-12).join('\n'), ctx.secrets)
        return {status: 'failed', msg: `haproxy (${t.want.dir}): ${err || `exit ${s.rc}`}`, rc: s.rc, stderr: mask(s.stderr, ctx.secrets)}
      }
      const m = /^@@ (\w+) ?(.*)$/m.exec(s.stdout)
      const r = finish(t, mask(t.plan.msg, ctx.secrets))
      return {...r, data: {...r.data, ...(m ? {action: m[1], pid: m[2]} : {})}}
    },
  },
})
