// redis_instances: start, stop or restart the redis-server instances of a host, one
// directory per port, all ports in one round trip.
//
// Parameters:
//   ports         list    ports, e.g. [6379, 6380]; or port_start + count
//   port_start    int     first port (with count)
//   count         int     number of consecutive ports
//   dir           path    parent of the per-port directories dir/<port>/ holding redis.conf
//                         (rendered by the template task), redis.pid, redis.log (default ~/redis_cluster)
//   bin_dir       path    where redis-server and redis-cli are (default ~/redis/bin)
//   state         started | stopped | restarted (default started)
//   bind          string  the address the instances listen on, used to talk to them (default 127.0.0.1)
//   password      string  requirepass of the instances (secret); when empty, read from each redis.conf
//   wait_timeout  int     seconds to wait for an instance to answer after start, or to exit after stop (default 30)
//   remove        bool    with stopped: also delete dir/<port>
//   keep_data     bool    with remove: keep the data files (dump*.rdb, appendonly*, nodes*.conf) and delete the rest
//   conf          string  the config file's name in dir/<port>/ (default redis.conf; sentinel.conf for Sentinels)
//   sentinel      bool    start as a Sentinel: redis-server CONF --sentinel (default false)
//   private       bool    start under umask 077: files the instance rewrites itself stay 0600 (default false)
//   save          bool    with stopped or restarted: SHUTDOWN SAVE (NOW on 7.x when stopped) instead of
//                         NOSAVE; a failed save fails that port and leaves it running (default false)
//
// After a save-shutdown that wrote a new RDB file the script writes dir/<port>/saved-by-baremetal
// (one line: the unix time): that dump.rdb is a fresh, complete save, not the leftover of an old
// full sync. Starting the instance removes the marker first, so a later crash never leaves it.
// An instance whose redis.conf says appendonly yes but that has no AOF yet (or whose marker
// says dump.rdb is the newest save) starts with --appendonly no, loads dump.rdb, and gets AOF
// turned on live once loaded: Redis (5.0 and 7.x) started with appendonly yes and no AOF
// ignores dump.rdb and comes up empty.
//
// Only instances this tool started are ever stopped: the one answering on the port must be
// the process named in dir/<port>/redis.pid, or one whose cwd is dir/<port> (also once that
// directory was deleted) or whose config file is dir/<port>/redis.conf — then a missing
// pidfile is written back by state started. Any other redis-server on the host, even on
// one of the ports, is left alone, and a port directory is never removed while its
// instance still runs.
// Passwords go to redis-cli through REDISCLI_AUTH inside a script sent on stdin: never argv.
// Each start first copies redis.conf to redis.conf.applied (what redis_config compares
// with) and writes the binary directory it starts from to redis.bin (what version it runs
// is INFO server's word; that file says which build on disk it needs), and when bind differs
// from the address nodes.conf records for the node itself (the host's address changed),
// rewrites that address, keeping the node's id and slots.
//
// Example:
//   - name: Start the instances
//     redis_instances:
//       port_start: 6379
//       count: 100
//       dir: ~/redis_cluster
//       bind: "{{ ansible_host }}"
//       password: "{{ redis_password }}"

import {mask, quote, expandHome} from '../../shell.js'
import type {ItemResult, ModuleContext, ModuleSpec, TaskItem} from '../types.js'

export type InstanceState = 'started' | 'stopped' | 'restarted'

// Ports from either form of the arguments, checked: a bad port must not reach a script.
export function resolvePorts(args: Record<string, unknown>): {ports?: number[]; error?: string} {
  const list = args.ports
  const hasList = Array.isArray(list) && list.length > 0
  const hasRange = args.port_start !== undefined && args.port_start !== null
  if (hasList && hasRange) return {error: 'give either ports or port_start + count, not both'}
  let ports: number[]
  if (hasList) {
    ports = (list as unknown[]).map((p) => (typeof p === 'string' && /^\s*\d+\s*$/.test(p) ? Number(p) : (p as number)))
  } else if (hasRange) {
    const start = Number(args.port_start)
    const count = Number(args.count ?? 1)
    if (!Number.isInteger(count) || count < 1) return {error: `count must be a positive integer, got ${String(args.count)}`}
    ports = Array.from({length: count}, (_, i) => start + i)
  } else {
    return {error: 'no ports: give ports (a list) or port_start + count'}
  }
  const bad = ports.find((p) => !Number.isInteger(p) || p < 1 || p > 65535)
  if (bad !== undefined) return {error: `not a valid port: ${String(bad)}`}
  return {ports: [...new Set(ports)]}
}

/** What the host script said about one port. */
export interface PortReport {
  /** In order: running | started | failed | stopped | notrunning | removed | absent | starting | foreign | hasdir | pidrestored | pidmissing */
  states: string[]
  /** Text after the state on its line (failure reason, how it was stopped). */
  reasons: string[]
  /** Lines that followed the record: start output and log tail. */
  detail: string[]
}

// The script prints "@@ PORT STATE reason" then "| detail" lines; anything else is noise.
export function parseInstanceReport(stdout: string): Map<number, PortReport> {
  const out = new Map<number, PortReport>()
  let cur: PortReport | undefined
  for (const line of stdout.split('\n')) {
    const m = /^@@ (\d+) (\S+) ?(.*)$/.exec(line)
    if (m) {
      const port = Number(m[1])
      cur = out.get(port) ?? {states: [], reasons: [], detail: []}
      out.set(port, cur)
      cur.states.push(m[2])
      cur.reasons.push(m[3].trim())
    } else if (cur && line.startsWith('| ')) {
      cur.detail.push(line.slice(2))
    } else if (cur && line === '|') {
      cur.detail.push('')
    }
  }
  return out
}

/**
 * The stop script's "@@T start=NS verified=NS …" stamps as milliseconds per phase (verify,
 * shutdown, exit, report, remove): what the teardown's time went to, in the JSON record.
 * A host whose date has no %N gives nothing.
 */
export function parsePhases(stdout: string): Record<string, number> | undefined {
  const line = stdout.split('\n').find((l) => l.startsWith('@@T '))
  if (!line) return undefined
  const at = new Map(
    line
      .slice(4)
      .trim()
      .split(/\s+/)
      .map((kv) => kv.split('=') as [string, string]),
  )
  const names: Array<[string, string, string]> = [
    ['verify', 'start', 'verified'],
    ['shutdown', 'verified', 'shutdown'],
    ['exit', 'shutdown', 'exited'],
    ['report', 'exited', 'reported'],
    ['remove', 'reported', 'removed'],
  ]
  const out: Record<string, number> = {}
  for (const [name, from, to] of names) {
    const a = at.get(from)
    const b = at.get(to)
    if (!a || !b || !/^\d{10,}$/.test(a) || !/^\d{10,}$/.test(b)) continue
    out[name] = Number((BigInt(b) - BigInt(a)) / 1_000_000n)
  }
  return Object.keys(out).length ? out : undefined
}

/** "6379-6381, 7000" for [6379, 6380, 6381, 7000]: a recap line for 100 ports stays short. */
export function portList(ports: number[]): string {
  const s = [...ports].sort((a, b) => a - b)
  const parts: string[] = []
  for (let i = 0; i < s.length; i++) {
    let j = i
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++
    parts.push(j > i ? `${s[i]}-${s[j]}` : String(s[i]))
    i = j
  }
  return parts.join(', ')
}

function failureText(port: number, r: PortReport | undefined): string {
  if (!r) return `port ${port}: no status reported`
  const i = r.states.lastIndexOf('failed')
  const head = `port ${port}: ${r.reasons[i] || 'failed'}`
  return r.detail.length ? `${head}\n${r.detail.map((l) => `  ${l}`).join('\n')}` : head
}

// One item's result from the host's per-port report: the pure half of the module.
export function summarizeInstances(state: InstanceState, ports: number[], reports: Map<number, PortReport>, opts: {remove?: boolean} = {}): ItemResult {
  const by = (s: string) => ports.filter((p) => reports.get(p)?.states.includes(s))
  const missing = ports.filter((p) => !reports.has(p))
  const failed = [...new Set([...missing, ...by('failed')])].sort((a, b) => a - b)
  const notes = ports.flatMap((p) => {
    const r = reports.get(p)
    if (!r) return []
    return r.states.flatMap((s, i) => (s === 'notrunning' && r.reasons[i] ? [r.reasons[i]] : []))
  })
  if (state === 'stopped') {
    const stopped = by('stopped')
    const removed = by('removed')
    const data = {stopped, not_running: by('notrunning'), removed, failed}
    const done = [stopped.length && `stopped ${stopped.length} (${portList(stopped)})`, removed.length && `removed ${removed.length} port dir(s)`].filter(Boolean).join(', ')
    if (failed.length) {
      return {
        status: 'failed',
        msg: [`${failed.length} of ${ports.length} instance(s) could not be stopped`, ...failed.map((p) => failureText(p, reports.get(p))), done, ...notes].filter(Boolean).join('\n'),
        data,
      }
    }
    if (stopped.length || removed.length) return {status: 'changed', msg: [done, ...notes].join('\n'), data}
    const reason = opts.remove ? 'no instance running and nothing to remove' : 'no instance running'
    return {status: 'ok', msg: [`${reason} (${portList(ports)})`, ...notes].join('\n'), data}
  }
  const started = by('started')
  const running = by('running').filter((p) => !started.includes(p))
  const stopped = by('stopped')
  const readdressed = by('readdressed')
  const aofOn = by('aofon')
  const restored = by('pidrestored')
  const data: Record<string, unknown> = {started, running, failed}
  if (state === 'restarted') data.stopped = stopped
  if (readdressed.length) data.readdressed = readdressed
  if (aofOn.length) data.aof_on = aofOn
  if (restored.length) data.pidfile_restored = restored
  const moved = readdressed.length ? reports.get(readdressed[0])!.reasons[reports.get(readdressed[0])!.states.indexOf('readdressed')] : ''
  const done = [
    started.length && `${state === 'restarted' ? 'restarted' : 'started'} ${started.length} (${portList(started)})`,
    running.length && `${running.length} already running`,
    readdressed.length && `own address in nodes.conf updated on ${readdressed.length} (${moved})`,
    aofOn.length && `AOF turned on live after loading dump.rdb on ${aofOn.length} (${portList(aofOn)})`,
    // A repair, not a restart: the instance kept running and keeps its pid.
    restored.length && `pidfile restored for ${portList(restored)}`,
  ]
    .filter(Boolean)
    .join(', ')
  if (failed.length) {
    return {status: 'failed', msg: [`${failed.length} of ${ports.length} instance(s) failed to start`, ...failed.map((p) => failureText(p, reports.get(p))), done].filter(Boolean).join('\n'), data}
  }
  if (started.length || restored.length) return {status: 'changed', msg: done, data}
  return {status: 'ok', msg: `all ${ports.length} instance(s) already running (${portList(ports)})`, data}
}

// What check mode reports: the status probe's answers turned into "would …".
export function planCheck(state: InstanceState, ports: number[], reports: Map<number, PortReport>, remove: boolean): ItemResult {
  const by = (s: string) => ports.filter((p) => reports.get(p)?.states.includes(s))
  const running = by('running')
  const starting = by('starting')
  const foreign = by('foreign')
  const down = ports.filter((p) => !running.includes(p) && !starting.includes(p))
  const data = {running, starting, foreign, down}
  if (state === 'started') {
    const pidless = by('pidmissing')
    const restore = pidless.length ? `would restore the pidfile for ${portList(pidless)}` : ''
    if (!down.length && !restore) return {status: 'ok', msg: `all ${ports.length} instance(s) already running`, data}
    return {status: 'changed', msg: [down.length && `would start ${down.length} (${portList(down)})`, restore].filter(Boolean).join(', '), data}
  }
  if (state === 'restarted') return {status: 'changed', msg: `would restart ${ports.length} (${portList(ports)})`, data}
  const up = [...running, ...starting]
  const dirs = remove ? by('hasdir') : []
  if (!up.length && !dirs.length) return {status: 'ok', msg: 'no instance running' + (remove ? ' and nothing to remove' : ''), data}
  const parts = [up.length && `would stop ${up.length} (${portList(up)})`, dirs.length && `would remove ${dirs.length} port dir(s)`].filter(Boolean)
  return {status: 'changed', msg: parts.join(', '), data}
}

export interface ScriptOpts {
  dir: string
  bin: string
  bind: string
  waitSeconds: number
  password?: string
  remove: boolean
  keepData: boolean
  /** Stopped/restarted: SHUTDOWN SAVE instead of NOSAVE; a failed save fails the port (no SIGTERM fallback). */
  save: boolean
  /** The config file's name in dir/<port>/ (default redis.conf). */
  conf?: string
  /** Start as a Sentinel (redis-server CONF --sentinel). */
  sentinel?: boolean
  /** Start under umask 077: the files the instance rewrites itself (CONFIG REWRITE, Sentinel's state) stay 0600. */
  private?: boolean
}

/** The marker a save-shutdown leaves in dir/<port>/: its dump.rdb is a fresh, complete save. */
export const SAVED_MARKER = 'saved-by-baremetal'

// Shell functions shared by every state. Variables are global in sh: each function
// prefixes its own.
const LIB = String.raw`
T=$(mktemp -d 2>/dev/null) || { T="/tmp/baremetal-inst.$$"; mkdir -p "$T"; }
trap 'rm -rf "$T"' EXIT
CLI="$bin/redis-cli"; [ -x "$CLI" ] || CLI=$(command -v redis-cli 2>/dev/null)
TO=""; command -v timeout >/dev/null 2>&1 && TO="timeout 5"
snooze() { sleep 0.1 2>/dev/null || sleep 1; }
now() { date +%s; }
# A zombie (exited, not yet reaped by init) still passes kill -0: it counts as gone.
# Shell builtins only, here and in read_pid/is_listening: these run for every port of
# every re-run, and a fork costs milliseconds on a host busy with 100 instances.
is_alive() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
  [ -r "/proc/$1/stat" ] || return 0
  ia_st=""; read -r ia_st < "/proc/$1/stat" 2>/dev/null
  case "$ia_st" in ""|*") "[ZX]" "*) return 1;; esac
}
# A pid from a pidfile is only ours if it lives in this host's network namespace: where
# hosts share one PID namespace (containers, these test hosts), a stale pidfile's pid can
# be reused by another host's redis-server on the same port (test -ef: no fork).
same_net() { [ ! -e "/proc/$1/ns/net" ] || [ "/proc/$1/ns/net" -ef "/proc/$$/ns/net" ]; }
read_pid() {
  [ -f "$1" ] || return 0
  rp_v=""; read -r rp_v < "$1" 2>/dev/null
  case "$rp_v" in *[!0-9]*) rp_v=$(printf '%s' "$rp_v" | tr -dc '0-9');; esac
  printf '%s' "$rp_v"
}
# The command line of pid $1 into co_v. From /proc with the read builtin (it drops the NULs;
# redis-server's title, "redis-server ADDR:PORT [cluster]", is one string before them).
cmdline_of() {
  co_v=""
  if [ -r "/proc/$1/cmdline" ]; then read -r co_v < "/proc/$1/cmdline" 2>/dev/null
  else co_v=$(ps -p "$1" -o args= 2>/dev/null); fi
}
LISTENERS=""
refresh_listeners() {
  if command -v ss >/dev/null 2>&1; then LISTENERS=" $(ss -ltn 2>/dev/null | awk 'NR>1 {printf "%s ", $4}')"
  elif command -v netstat >/dev/null 2>&1; then LISTENERS=" $(netstat -ltn 2>/dev/null | awk 'NR>2 {printf "%s ", $4}')"
  else LISTENERS="?"; fi
}
is_listening() {
  [ "$LISTENERS" = "?" ] && return 0
  case "$LISTENERS" in *":$1 "*) return 0;; esac
  return 1
}
pw_for() {
  if [ "$HAVE_PW" = 1 ]; then printf '%s' "$PW"; return; fi
  sed -n 's/^[[:space:]]*requirepass[[:space:]][[:space:]]*//p' "$dir/$1/$CONF" 2>/dev/null | tail -n 1 | sed 's/[[:space:]]*$//; s/^"\(.*\)"$/\1/'
}
# A directive's value in dir/$1/redis.conf (the last line wins, as when Redis reads it), else $3.
conf_val() {
  cv_v=$(sed -n "s/^[[:space:]]*$2[[:space:]][[:space:]]*//p" "$dir/$1/$CONF" 2>/dev/null | tail -n 1 | sed 's/[[:space:]]*$//; s/^"\(.*\)"$/\1/')
  [ -n "$cv_v" ] || cv_v=$3
  printf '%s' "$cv_v"
}
info_field() { printf '%s\n' "$1" | sed -n "s/^$2://p" | head -n 1; }
cli() {
  c_port=$1; shift
  [ -n "$CLI" ] || { echo "redis-cli not found"; return 127; }
  c_auth=$(pw_for "$c_port")
  if [ -n "$c_auth" ]; then REDISCLI_AUTH=$c_auth $TO "$CLI" -h "$bind" -p "$c_port" "$@" 2>&1 < /dev/null
  else $TO "$CLI" -h "$bind" -p "$c_port" "$@" 2>&1 < /dev/null; fi
}
probe() {
  alive=0; ipid=""; iconf=""
  pr_out=$(cli "$1" INFO server | tr -d '\r')
  case "$pr_out" in *redis_version:*|*LOADING*|*NOAUTH*|*WRONGPASS*|*"invalid password"*|*BUSY*) alive=1;; esac
  ipid=$(printf '%s\n' "$pr_out" | sed -n 's/^process_id:\([0-9][0-9]*\).*/\1/p')
  iconf=$(printf '%s\n' "$pr_out" | sed -n 's/^config_file://p')
}
# Our per-port dir as /proc/PID/cwd names it: the physical path, also once it was deleted.
our_dir() {
  od_d=$(cd "$dir/$1" 2>/dev/null && pwd -P) || { od_d=$(cd "$dir" 2>/dev/null && pwd -P) && od_d="$od_d/$1"; } || od_d="$dir/$1"
  printf '%s' "$od_d"
}
# Was pid $1 started from our dir $2? Its cwd says so (a deleted dir reads "… (deleted)"), or
# its config file $3 as INFO reports it: redis-server prefixes a relative path with its cwd
# and keeps the "./" ("/d/7000/./redis.conf"). Only ever asked about the pid that serves
# this host's port: the pid namespace may be shared with other hosts (containers, test
# hosts) whose processes show the same paths in their own mount namespaces.
is_ours() {
  [ -n "$1" ] || return 1
  io_cwd=$(readlink "/proc/$1/cwd" 2>/dev/null | sed 's/ (deleted)$//')
  [ -n "$io_cwd" ] && [ "$io_cwd" = "$2" ] && return 0
  io_conf=$(printf '%s' "$3" | sed -e ':a' -e 's#/\./#/#' -e 'ta')
  [ -n "$io_conf" ] && [ "$io_conf" = "$2/$CONF" ]
}
# The pid listening on port $1 in this host's network namespace (ss -p), for an instance
# that does not tell its pid (INFO refused or unanswered).
listener_pid() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -ltnp 2>/dev/null | awk -v p=":$1" 'NR > 1 && substr($4, length($4) - length(p) + 1) == p && match($0, /pid=[0-9]+/) { print substr($0, RSTART + 4, RLENGTH - 4); exit }'
}
# Who serves port $1. mine: pid of our instance answering on it; pid_ok: the pid in our
# own pidfile is alive and its command line is a redis-server on :port; vpid: the pid of
# our instance on the port, verified (pidfile, cwd or config), answering or not — the only
# pid ever signalled; foreign: another redis answering on the port.
owner() {
  o_port=$1; mine=""; foreign=""; pid_ok=0; vpid=""
  fpid=$(read_pid "$dir/$o_port/redis.pid")
  if is_alive "$fpid" && same_net "$fpid"; then
    cmdline_of "$fpid"
    case "$co_v " in *redis-server*":$o_port "*) pid_ok=1; vpid=$fpid;; esac
  fi
  alive=0; ipid=""; iconf=""
  is_listening "$o_port" || return 0
  # The usual re-run: the process of our own pidfile is a redis-server for this port and
  # the port listens. Only otherwise ask whoever answers (a redis-cli per port).
  if [ "$pid_ok" = 1 ]; then mine=$fpid; return 0; fi
  o_dir=$(our_dir "$o_port")
  probe "$o_port"
  if [ "$alive" = 1 ] && [ -n "$ipid" ]; then
    if [ "$ipid" = "$fpid" ] || is_ours "$ipid" "$o_dir" "$iconf"; then mine=$ipid; vpid=$ipid
    else foreign="a redis-server not started from $dir/$o_port (pid $ipid)"; [ -n "$iconf" ] && foreign="$foreign, config $iconf"; fi
    return 0
  fi
  o_lpid=$(listener_pid "$o_port")
  if is_ours "$o_lpid" "$o_dir" ""; then
    vpid=$o_lpid
    # It answers (without telling its pid: the password): SHUTDOWN is worth a try.
    [ "$alive" = 1 ] && mine=$o_lpid
  elif [ "$alive" = 1 ]; then foreign="a redis-server that refused INFO (wrong or missing password?)"; fi
}
# Our instance serves the port but its pidfile is gone or names another pid: write it
# back, so the next run (and redis_failover, redis_config) knows the instance again.
restore_pid() {
  printf '%s\n' "$2" > "$dir/$1/redis.pid.bm-tmp" && mv -f "$dir/$1/redis.pid.bm-tmp" "$dir/$1/redis.pid" && echo "@@ $1 pidrestored $2"
}
bus_port() {
  b_conf="$dir/$1/$CONF"
  grep -qi '^[[:space:]]*cluster-enabled[[:space:]][[:space:]]*yes' "$b_conf" 2>/dev/null || return 0
  b_cp=$(sed -n 's/^[[:space:]]*cluster-port[[:space:]][[:space:]]*\([0-9][0-9]*\).*/\1/p' "$b_conf" | tail -n 1)
  if [ -n "$b_cp" ] && [ "$b_cp" != 0 ]; then echo "$b_cp"; else echo $(($1 + 10000)); fi
}
# A port held by a process that is not redis: redis says "Address already in use" in its
# log; the listener line says who holds it.
listener_of() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -ltnp 2>/dev/null | awk -v p=":$1" 'NR > 1 && substr($4, length($4) - length(p) + 1) == p'
}
report_failed() {
  echo "@@ $1 failed $2"
  [ -s "$T/$1.out" ] && tail -n 20 "$T/$1.out" | sed 's/^/| /'
  for rf_p in $1 $(bus_port "$1"); do
    rf_l=$(listener_of "$rf_p")
    [ -n "$rf_l" ] && printf '%s\n' "$rf_l" | sed "s/^/| port $rf_p is in use: /"
  done
  if [ -f "$dir/$1/redis.log" ]; then echo "| --- last lines of $dir/$1/redis.log:"; tail -n 20 "$dir/$1/redis.log" | sed 's/^/| /'; fi
}
# Decide for each port of $1 whether it must be launched; prints running/failed records
# and leaves the rest in LAUNCH (to start) and WAITONLY (ours, still coming up).
prepare_start() {
  LAUNCH=""; WAITONLY=""
  refresh_listeners
  for ps_port in $1; do
    if [ ! -f "$dir/$ps_port/$CONF" ]; then report_failed "$ps_port" "no $CONF in $dir/$ps_port"; continue; fi
    owner "$ps_port"
    if [ -n "$mine" ]; then
      echo "@@ $ps_port running"
      [ "$fpid" = "$mine" ] || restore_pid "$ps_port" "$mine"
      continue
    fi
    if [ -n "$foreign" ]; then report_failed "$ps_port" "port $ps_port is served by $foreign"; continue; fi
    if [ "$pid_ok" = 1 ]; then WAITONLY="$WAITONLY $ps_port"; continue; fi
    if [ -n "$vpid" ]; then report_failed "$ps_port" "port $ps_port is held by our redis-server (pid $vpid, started from $dir/$ps_port) that does not answer on $bind:$ps_port"; continue; fi
    if [ ! -x "$bin/redis-server" ]; then report_failed "$ps_port" "no executable $bin/redis-server (run redis_build first)"; continue; fi
    LAUNCH="$LAUNCH $ps_port"
  done
}
# Before a start, in nodes.conf: the address of this node and of its siblings on this host
# follows bind (a host whose address changed keeps its node ids and slots), when bind is
# one concrete address.
readdress() {
  ra_f="$dir/$1/nodes.conf"
  [ -s "$ra_f" ] || return 0
  case "$bind" in ""|*" "*|*,*|"*"|0.0.0.0|::|"::*"|-*) return 0;; esac
  ra_old=$(awk '$3 ~ /(^|,)myself(,|$)/ { a = $2; sub(/[@,].*/, "", a); sub(/:[0-9]+$/, "", a); print a; exit }' "$ra_f" 2>/dev/null)
  [ -n "$ra_old" ] && [ "$ra_old" != "$bind" ] || return 0
  awk -v old="$ra_old" -v new="$bind" -v ports=" $PORTS " '
    function ipof(a) { sub(/[@,].*/, "", a); sub(/:[0-9]+$/, "", a); return a }
    function portof(a) { sub(/[@,].*/, "", a); sub(/^.*:/, "", a); return a }
    NF >= 8 && ipof($2) == old && (index($3, "myself") || index(ports, " " portof($2) " ")) { $2 = new substr($2, length(old) + 1) }
    { print }' "$ra_f" > "$ra_f.bm-tmp" && mv -f "$ra_f.bm-tmp" "$ra_f" && echo "@@ $1 readdressed $ra_old -> $bind"
}
# The config an instance starts with, kept for redis_config to compare with the rendered one;
# $2: lines appended (what the command line overrides).
snapshot_conf() {
  sc_f="$dir/$1/$CONF.applied"
  cp -f "$dir/$1/$CONF" "$sc_f.tmp" 2>/dev/null && chmod 600 "$sc_f.tmp" || return 1
  [ -z "$2" ] || printf '\n%s\n' "$2" >> "$sc_f.tmp"
  mv -f "$sc_f.tmp" "$sc_f"
}
# Redis (5.0 and 7.x) started with appendonly yes and no AOF creates an empty one and loads
# that, never dump.rdb: a master comes up empty, owning its slots. Such an instance starts
# with --appendonly no (it loads dump.rdb) and gets AOF turned on live once loaded. A 0-byte
# AOF counts as none (what such a start leaves); our marker means dump.rdb is the save of
# its last shutdown, newer than any AOF left from an earlier appendonly yes.
rdb_first() {
  [ "$(conf_val "$1" appendonly no)" = yes ] || return 1
  rf_d="$dir/$1"
  [ -s "$rf_d/$(conf_val "$1" dbfilename dump.rdb)" ] || return 1
  [ -f "$rf_d/${SAVED_MARKER}" ] && return 0
  [ -s "$rf_d/$(conf_val "$1" appendfilename appendonly.aof)" ] && return 1
  [ -d "$rf_d/$(conf_val "$1" appenddirname appendonlydir)" ] && return 1
  return 0
}
launch() {
  # Whatever this start writes, the marker's "fresh save" no longer holds.
  rm -f "$dir/$1/${SAVED_MARKER}"
  # A stale pidfile (of the instance that died) must go: redis-server truncates it before it
  # writes its pid, so a read of the old pid, then a look at the mtime, takes a live start for
  # one that "exited right after starting". Only ports nothing of ours serves get here.
  rm -f "$dir/$1/redis.pid"
  # Which binary (so which version) this instance runs: a version upgrade builds beside it.
  printf '%s\n' "$bin" > "$dir/$1/redis.bin" 2>/dev/null
  wc -c < "$dir/$1/redis.log" > "$T/$1.off" 2>/dev/null || echo 0 > "$T/$1.off"
  if [ -f "$T/$1.rdbfirst" ]; then ( cd "$dir/$1" && { [ -z "$UMASK" ] || umask "$UMASK"; } && exec "$bin/redis-server" "./$CONF" $XARGS --appendonly no ) > "$T/$1.out" 2>&1 < /dev/null
  else ( cd "$dir/$1" && { [ -z "$UMASK" ] || umask "$UMASK"; } && exec "$bin/redis-server" "./$CONF" $XARGS ) > "$T/$1.out" 2>&1 < /dev/null; fi
  echo $? > "$T/$1.rc"
}
# CONFIG SET appendonly yes once the instance has loaded its data, then wait until the
# rewrite that writes the AOF is done: only from then on does a restart load every key.
# The outcome goes to $T/$1.aof: ok, or why not.
aof_on() {
  ao_deadline=$(( $(now) + aof_s )); ao_set=0; ao_why="no answer"
  while [ "$(now)" -lt "$ao_deadline" ]; do
    ao_i=$(cli "$1" INFO persistence | tr -d '\r')
    ao_load=$(info_field "$ao_i" loading)
    if [ -z "$ao_load" ]; then ao_why="INFO persistence: $(printf '%s' "$ao_i" | head -n 1)"
    elif [ "$ao_load" != 0 ]; then ao_why="still loading its data"
    elif [ "$ao_set" = 0 ]; then
      ao_r=$(cli "$1" CONFIG SET appendonly yes | tr -d '\r')
      [ "$ao_r" = OK ] || { echo "CONFIG SET appendonly yes: $ao_r" > "$T/$1.aof"; return 0; }
      ao_set=1; continue
    elif [ "$(info_field "$ao_i" aof_enabled)" != 1 ]; then ao_why="aof_enabled:$(info_field "$ao_i" aof_enabled)"
    elif [ "$(info_field "$ao_i" aof_rewrite_in_progress)" != 0 ] || [ "$(info_field "$ao_i" aof_rewrite_scheduled)" != 0 ]; then ao_why="the AOF rewrite is still running"
    elif [ "$(info_field "$ao_i" aof_last_bgrewrite_status)" != ok ]; then
      echo "the AOF rewrite failed (aof_last_bgrewrite_status:$(info_field "$ao_i" aof_last_bgrewrite_status)): see $dir/$1/redis.log" > "$T/$1.aof"; return 0
    else echo ok > "$T/$1.aof"; return 0; fi
    sleep 0.3 2>/dev/null || sleep 1
  done
  echo "AOF not on within $aof_s seconds: $ao_why" > "$T/$1.aof"
}
# AOF on for every port of $1 at once: "@@ PORT aofon", or failed with the reason.
aof_ports() {
  for ap_port in $1; do rm -f "$T/$ap_port.aof"; aof_on "$ap_port" & done
  wait
  for ap_port in $1; do
    ap_r=$(cat "$T/$ap_port.aof" 2>/dev/null)
    [ -n "$ap_r" ] || ap_r="no result"
    if [ "$ap_r" = ok ]; then echo "@@ $ap_port aofon"; else echo "@@ $ap_port failed appendonly yes not turned on live: $ap_r"; fi
  done
}
# Fatal lines the new instance wrote to its log since launch: fail now, not at the timeout.
log_fatal() {
  [ -f "$dir/$1/redis.log" ] || return 1
  lf_off=$(cat "$T/$1.off" 2>/dev/null); [ -n "$lf_off" ] || lf_off=0
  tail -c +$((lf_off + 1)) "$dir/$1/redis.log" 2>/dev/null | grep -qE 'Could not create server TCP listening socket|Failed listening on port|FATAL|Fatal error|Bad directive|Can.t chdir|Address already in use'
}
# Wait until every port of $1 answers as our instance, or fails, or time runs out.
await_ports() {
  aw_pending=$1
  aw_deadline=$(( $(now) + wait_s ))
  while [ -n "$(echo $aw_pending)" ]; do
    aw_next=""
    for aw_port in $aw_pending; do
      aw_rc=$(cat "$T/$aw_port.rc" 2>/dev/null)
      if [ -n "$aw_rc" ] && [ "$aw_rc" != 0 ]; then report_failed "$aw_port" "redis-server exited with status $aw_rc"; continue; fi
      aw_pid=$(read_pid "$dir/$aw_port/redis.pid")
      if is_alive "$aw_pid"; then
        probe "$aw_port"
        if [ "$alive" = 1 ] && { [ -z "$ipid" ] || [ "$ipid" = "$aw_pid" ]; }; then echo "@@ $aw_port started"; : > "$T/$aw_port.up"; continue; fi
      elif [ -n "$aw_pid" ] && [ "$dir/$aw_port/redis.pid" -nt "$T/stamp" ]; then
        # Only when the same dead pid is read twice: a pidfile read while Redis writes it
        # gives a partial pid ("9" of "9000"), which is no process at all.
        slurp "$T/$aw_port.gone" && [ "$rd_v" = "$aw_pid" ] && { report_failed "$aw_port" "redis-server exited right after starting"; continue; }
        echo "$aw_pid" > "$T/$aw_port.gone"
      fi
      if [ -f "$T/$aw_port.rc" ] && ! is_alive "$aw_pid" && log_fatal "$aw_port"; then
        report_failed "$aw_port" "redis-server failed to start"; continue
      fi
      aw_next="$aw_next $aw_port"
    done
    aw_pending=$aw_next
    [ -z "$(echo $aw_pending)" ] && break
    if [ "$(now)" -ge "$aw_deadline" ]; then
      for aw_port in $aw_pending; do report_failed "$aw_port" "did not answer on $bind:$aw_port within $wait_s seconds"; done
      break
    fi
    snooze
  done
}
start_ports() {
  prepare_start "$1"
  touch "$T/stamp"
  sp_aof=""
  for sp_port in $LAUNCH; do
    readdress "$sp_port"
    rm -f "$T/$sp_port.rdbfirst" "$T/$sp_port.up" "$T/$sp_port.gone"
    if rdb_first "$sp_port"; then
      : > "$T/$sp_port.rdbfirst"; sp_aof="$sp_aof $sp_port"
      # Until AOF is on, the snapshot says it is off: redis_config then turns it on live.
      snapshot_conf "$sp_port" "appendonly no"
    else snapshot_conf "$sp_port"; fi
  done
  for sp_port in $LAUNCH; do launch "$sp_port" & done
  wait
  await_ports "$LAUNCH $WAITONLY"
  sp_on=""
  for sp_port in $sp_aof; do [ -f "$T/$sp_port.up" ] && sp_on="$sp_on $sp_port"; done
  [ -n "$sp_on" ] || return 0
  aof_ports "$sp_on" | tee "$T/aof.report"
  for sp_port in $sp_on; do grep -q "^@@ $sp_port aofon" "$T/aof.report" && snapshot_conf "$sp_port"; done
  return 0
}
wait_gone() {
  wg_deadline=$(( $(now) + $2 ))
  while [ "$(now)" -lt "$wg_deadline" ]; do
    wg_left=""
    for wg_pid in $1; do is_alive "$wg_pid" && wg_left="$wg_left $wg_pid"; done
    [ -z "$wg_left" ] && return 0
    snooze
  done
}
# Where a teardown's time goes (the record's phases_ms): one date per phase, not per port.
PHASES=""
stamp() { PHASES="$PHASES $1=$(date +%s%N 2>/dev/null)"; }
# File $1 into rd_v, lines joined by $2 (default: newline), with builtins only: the stop
# path reads a few files per port, and a cat per read on a host busy with 100 dying
# instances is what made a teardown take half a minute.
NL='
'
slurp() {
  rd_v=""; rd_p=""; rd_s=$NL; [ $# -ge 2 ] && rd_s=$2
  [ -f "$1" ] || return 1
  while IFS= read -r rd_l || [ -n "$rd_l" ]; do rd_v="$rd_v$rd_p$rd_l"; rd_p=$rd_s; done < "$1"
}
# requirepass of port $1 into pw_v, as pw_for reads it (the last line wins, quotes
# stripped), without a fork.
pw_of() {
  pw_v=$PW; [ "$HAVE_PW" = 1 ] && return 0
  pw_v=""
  [ -r "$dir/$1/$CONF" ] || return 0
  while read -r pw_k pw_r || [ -n "$pw_k" ]; do [ "$pw_k" = requirepass ] && pw_v=$pw_r; done < "$dir/$1/$CONF"
  case "$pw_v" in \"*\") pw_v=$(printf '%s' "$pw_v" | sed 's/^"\(.*\)"$/\1/');; esac
}
# SHUTDOWN ($sd_kind, then $2: NOW or nothing) to every port of $1 at once, each reply in
# $T/PORT.sd. Nothing but one redis-cli per port between the first and the last: a burst
# spread over a slow loop leaves the survivors storming reconnects to the dead ones, and
# that storm slows everything that comes after it on the host.
shutdown_burst() {
  for sb_port in $1; do
    if [ -z "$CLI" ]; then echo "ERR redis-cli not found" > "$T/$sb_port.sd"; continue; fi
    eval "pw_v=\$pw_$sb_port"
    [ "$SD_SAVE" = 1 ] && : > "$T/$sb_port.t0"
    if [ -n "$pw_v" ]; then REDISCLI_AUTH=$pw_v $TO "$CLI" -h "$bind" -p "$sb_port" SHUTDOWN $sd_kind $2 > "$T/$sb_port.sd" 2>&1 < /dev/null &
    else $TO "$CLI" -h "$bind" -p "$sb_port" SHUTDOWN $sd_kind $2 > "$T/$sb_port.sd" 2>&1 < /dev/null &
    fi
  done
  wait
}
# Teardown (SD_NOW=1) says NOW: a master would otherwise wait up to shutdown-timeout (10 s on
# 7.x) for replicas that are being stopped too. Older versions refuse NOW: those ports get
# a second burst without it. SD_SAVE=1 says SAVE: the RDB is written before the exit (with
# save "" neither NOSAVE nor SIGTERM writes one); a save takes as long as the dataset needs,
# hence its own timeout. Each port ends with $T/PORT.via (how) or $T/PORT.err (the refusal).
shutdown_ports() {
  sd_kind=NOSAVE
  if [ "$SD_SAVE" = 1 ]; then sd_kind=SAVE; [ -n "$TO" ] && TO="timeout $save_s"; fi
  sd_now=""; [ "$SD_NOW" = 1 ] && sd_now=NOW
  shutdown_burst "$1" "$sd_now"
  sd_again=""
  if [ -n "$sd_now" ]; then
    for sd_port in $1; do
      slurp "$T/$sd_port.sd"
      case "$rd_v" in *"syntax error"*|*"wrong number"*) sd_again="$sd_again $sd_port";; esac
    done
    [ -n "$sd_again" ] && shutdown_burst "$sd_again" ""
  fi
  for sd_port in $1; do
    sd_how="SHUTDOWN $sd_kind"
    case " $sd_again " in *" $sd_port "*) ;; *) [ -n "$sd_now" ] && sd_how="$sd_how NOW";; esac
    slurp "$T/$sd_port.sd"
    case "$rd_v" in *NOAUTH*|*WRONGPASS*|*ERR*|*rror*) printf '%s\n' "$rd_v" > "$T/$sd_port.err";; *) echo "$sd_how" > "$T/$sd_port.via";; esac
  done
}
# A save-shutdown counts once the process is gone and a new RDB file is in its directory;
# then the marker says so (the lead's drift repair trusts that dump.rdb).
saved_rdb() {
  [ -f "$T/$1.t0" ] && [ -n "$(find "$dir/$1" -maxdepth 1 -name '*.rdb' -newer "$T/$1.t0" 2>/dev/null | head -n 1)" ] || return 1
  now > "$dir/$1/${SAVED_MARKER}.tmp" && mv -f "$dir/$1/${SAVED_MARKER}.tmp" "$dir/$1/${SAVED_MARKER}"
}
# SIGTERM to the verified pid of port $1 (never any other), the reason appended to its via.
sigterm_port() {
  slurp "$T/$1.fb" && [ -n "$rd_v" ] || return 1
  st_fb=$rd_v
  kill -TERM "$st_fb" 2>/dev/null || return 1
  slurp "$T/$1.fbwhy" " "
  echo "SIGTERM to pid $st_fb $rd_v" >> "$T/$1.via"
}
# Which of our instances serve the ports of $1: $T/PORT.target (the pid to wait for) and,
# when the pid is verified, $T/PORT.fb (the only pid SIGTERM may go to). Ports that answer
# go to ST_BURST. Nothing is stopped yet: every check first, then the burst.
stop_targets() {
  ST_BURST=""
  for st_port in $1; do
    owner "$st_port"
    st_target=$mine
    [ -z "$st_target" ] && st_target=$vpid
    if [ -z "$st_target" ]; then
      if [ -n "$foreign" ]; then echo "@@ $st_port notrunning port $st_port is served by $foreign: left running"; else echo "@@ $st_port notrunning"; fi
      continue
    fi
    echo "$st_target" > "$T/$st_port.target"
    # SIGTERM only ever goes to a verified pid: our pidfile's, or the port's by its cwd/config.
    if [ -n "$vpid" ]; then
      echo "$vpid" > "$T/$st_port.fb"
      if [ "$pid_ok" = 1 ]; then echo "from its pidfile" > "$T/$st_port.fbwhy"; else echo "serving the port from $dir/$st_port" > "$T/$st_port.fbwhy"; fi
    fi
    # Its password now (a read of its redis.conf): nothing but forks in the burst loop.
    if [ -n "$mine" ]; then pw_of "$st_port"; eval "pw_$st_port=\$pw_v"; ST_BURST="$ST_BURST $st_port"
    elif [ "$SD_SAVE" = 1 ]; then echo "it does not answer on $bind:$st_port (still starting?): nothing can save its data" > "$T/$st_port.err"; fi
  done
}
# SHUTDOWN to each of our instances, all at once, then wait for all their pids in one loop.
# Without save, an instance that does not exit gets SIGTERM, but only through its verified
# pid. With save never: SIGTERM does not save, so a failed save leaves the instance running,
# reported. Ports that failed end up in ST_FAILED.
stop_ports() {
  stamp start
  refresh_listeners
  st_rm=""; for st_port in $1; do st_rm="$st_rm $T/$st_port.*"; done
  rm -f $st_rm
  stop_targets "$1"
  stamp verified
  [ -n "$ST_BURST" ] && shutdown_ports "$ST_BURST"
  stamp shutdown
  st_targets=""
  for st_port in $1; do
    slurp "$T/$st_port.target" || continue
    st_target=$rd_v
    [ "$SD_SAVE" != 1 ] && [ ! -f "$T/$st_port.via" ] && sigterm_port "$st_port"
    # A refused save-shutdown leaves the instance running: nothing to wait for.
    [ -f "$T/$st_port.via" ] && st_targets="$st_targets $st_target"
  done
  [ -n "$st_targets" ] && wait_gone "$st_targets" "$wait_s"
  stamp exited
  # Still there after SHUTDOWN: SIGTERM to all of them, then one more wait for all.
  st_late=""
  for st_port in $1; do
    [ "$SD_SAVE" != 1 ] && slurp "$T/$st_port.target" || continue
    st_target=$rd_v
    is_alive "$st_target" && slurp "$T/$st_port.fb" && [ "$rd_v" = "$st_target" ] || continue
    slurp "$T/$st_port.via"
    case "$rd_v" in *SIGTERM*) continue;; esac
    sigterm_port "$st_port" && st_late="$st_late $st_target"
  done
  [ -n "$st_late" ] && wait_gone "$st_late" "$wait_s"
  stop_report "$1"
  stamp reported
}
stop_report() {
  ST_FAILED=""
  for st_port in $1; do
    slurp "$T/$st_port.target" || continue
    st_target=$rd_v
    if is_alive "$st_target" && [ "$SD_SAVE" = 1 ]; then
      st_why="did not exit within $wait_s seconds"; slurp "$T/$st_port.err" " " && st_why=$rd_v
      echo "@@ $st_port failed not saved, left running (pid $st_target): $st_why"
    elif is_alive "$st_target"; then
      echo "@@ $st_port failed still running (pid $st_target) after $wait_s seconds"
      slurp "$T/$st_port.err" && printf '%s\n' "$rd_v" | sed 's/^/| /'
    elif [ "$SD_SAVE" = 1 ] && ! saved_rdb "$st_port"; then
      echo "@@ $st_port failed stopped, but no new RDB file in $dir/$st_port: the save did not happen (was it still loading?)"
    else
      slurp "$T/$st_port.via" " "
      echo "@@ $st_port stopped $rd_v"
      continue
    fi
    ST_FAILED="$ST_FAILED $st_port"
  done
}
# Never the directory of an instance still running (one that stop_ports did not see, or
# that outlived it): asked again, after the stop. One rm (or find) for all the directories.
remove_ports() {
  refresh_listeners
  rp_dirs=""
  for rp_port in $1; do
    case " $ST_FAILED " in *" $rp_port "*) continue;; esac
    [ -d "$dir/$rp_port" ] || continue
    owner "$rp_port"
    if [ -n "$vpid" ]; then echo "@@ $rp_port failed still running (pid $vpid): $dir/$rp_port kept"; continue; fi
    rp_dirs="$rp_dirs $rp_port"
  done
  [ -n "$rp_dirs" ] || return 0
  set --
  for rp_port in $rp_dirs; do set -- "$@" "$dir/$rp_port"; done
  if [ "$keep_data" = 1 ]; then
    find "$@" -mindepth 1 -maxdepth 1 ! -name 'dump*.rdb' ! -name 'appendonly*' ! -name 'nodes*.conf' ! -name '${SAVED_MARKER}' -exec rm -rf {} + || return 0
    for rp_port in $rp_dirs; do echo "@@ $rp_port removed keeping data files"; done
  else
    rm -rf "$@"
    for rp_port in $rp_dirs; do
      if [ -e "$dir/$rp_port" ]; then echo "@@ $rp_port failed $dir/$rp_port could not be removed"; else echo "@@ $rp_port removed"; fi
    done
  fi
}
status_ports() {
  refresh_listeners
  for ss_port in $1; do
    owner "$ss_port"
    if [ -n "$mine" ]; then echo "@@ $ss_port running"; [ "$fpid" = "$mine" ] || echo "@@ $ss_port pidmissing"
    elif [ -n "$vpid" ]; then echo "@@ $ss_port starting"
    elif [ -n "$foreign" ]; then echo "@@ $ss_port foreign $foreign"
    else echo "@@ $ss_port stopped"; fi
    [ -d "$dir/$ss_port" ] && echo "@@ $ss_port hasdir"
  done
  return 0
}
`

// One script for all ports of a host: the password travels in the script (stdin), never in argv.
export function instancesScript(mode: InstanceState | 'status', ports: number[], o: ScriptOpts): string {
  const main: Record<typeof mode, string[]> = {
    status: ['status_ports "$PORTS"'],
    started: ['start_ports "$PORTS"'],
    stopped: ['stop_ports "$PORTS"', ...(o.remove ? ['remove_ports "$PORTS"', 'stamp removed'] : []), 'echo "@@T$PHASES"'],
    // Rolling: one port down at a time, so a cluster with replicas keeps serving.
    restarted: ['for rs in $PORTS; do', '  stop_ports "$rs"', '  start_ports "$rs"', 'done'],
  }
  return libScript(mode, ports, o, main[mode])
}

/**
 * AOF on, live, for running instances (CONFIG SET appendonly yes, then wait until its rewrite
 * is done): "@@ PORT aofon" or "@@ PORT failed …" per port, all ports at once.
 */
export function aofOnScript(ports: number[], o: ScriptOpts): string {
  return libScript('status', ports, o, ['aof_ports "$PORTS"'])
}

/** The shared shell functions with their settings, then body. */
export function libScript(mode: InstanceState | 'status', ports: number[], o: ScriptOpts, body: string[]): string {
  const head = [
    `dir=${quote(o.dir)}; bin=${quote(o.bin)}; bind=${quote(o.bind)}; wait_s=${Math.max(1, Math.floor(o.waitSeconds))}`,
    `keep_data=${o.keepData ? 1 : 0}; SD_NOW=${mode === 'stopped' ? 1 : 0}; SD_SAVE=${o.save ? 1 : 0}`,
    // A save or an AOF rewrite takes as long as the dataset needs: far longer than a start.
    `save_s=${10 * Math.max(1, Math.floor(o.waitSeconds))}; aof_s=${10 * Math.max(1, Math.floor(o.waitSeconds))}`,
    o.password ? `HAVE_PW=1; PW=${quote(o.password)}` : 'HAVE_PW=0; PW=',
    `PORTS=${quote(ports.join(' '))}`,
    `CONF=${quote(o.conf ?? 'redis.conf')}; XARGS=${o.sentinel ? '--sentinel' : "''"}; UMASK=${o.private ? '077' : "''"}`,
  ]
  return [...head, LIB, ...body, 'exit 0', ''].join('\n')
}

interface Group {
  key: string
  opts: ScriptOpts
  state: InstanceState
  items: Array<{index: number; ports: number[]}>
}

export const redisInstancesModule: ModuleSpec = {
  name: 'redis_instances',
  description: 'Start, stop or restart the redis-server instances of a host (one dir per port, one round trip)',
  args: {
    ports: {type: 'list'},
    port_start: {type: 'int'},
    count: {type: 'int'},
    dir: {type: 'path', default: '~/redis_cluster'},
    bin_dir: {type: 'path', default: '~/redis/bin'},
    state: {type: 'string', choices: ['started', 'stopped', 'restarted'], default: 'started'},
    bind: {type: 'string', default: '127.0.0.1'},
    password: {type: 'string', secret: true},
    wait_timeout: {type: 'int', default: 30},
    remove: {type: 'bool', default: false},
    keep_data: {type: 'bool', default: false},
    save: {type: 'bool', default: false},
    conf: {type: 'string', default: 'redis.conf'},
    sentinel: {type: 'bool', default: false},
    private: {type: 'bool', default: false},
  },
  checkMode: true,
  async run(ctx: ModuleContext, items: TaskItem[]): Promise<ItemResult[]> {
    const results: ItemResult[] = new Array(items.length)
    // Loop items that differ only by their ports share one script: one round trip per host.
    const groups = new Map<string, Group>()
    items.forEach((item, index) => {
      const a = item.args
      const pr = resolvePorts(a)
      if (pr.error) {
        results[index] = {status: 'failed', msg: pr.error}
        return
      }
      const opts: ScriptOpts = {
        dir: expandHome(String(a.dir ?? '~/redis_cluster'), ctx.facts.home).replace(/(.)\/+$/, '$1'),
        bin: expandHome(String(a.bin_dir ?? '~/redis/bin'), ctx.facts.home).replace(/(.)\/+$/, '$1'),
        bind: String(a.bind ?? '127.0.0.1'),
        waitSeconds: Number(a.wait_timeout ?? 30),
        password: a.password === undefined || a.password === null || a.password === '' ? undefined : String(a.password),
        remove: Boolean(a.remove),
        keepData: Boolean(a.keep_data),
        save: Boolean(a.save),
        ...(a.conf && a.conf !== 'redis.conf' ? {conf: String(a.conf)} : {}),
        ...(a.sentinel ? {sentinel: true} : {}),
        ...(a.private ? {private: true} : {}),
      }
      const state = (a.state ?? 'started') as InstanceState
      const key = JSON.stringify([state, opts])
      const g = groups.get(key) ?? {key, opts, state, items: []}
      g.items.push({index, ports: pr.ports!})
      groups.set(key, g)
    })

    for (const g of groups.values()) {
      const secrets = [...ctx.secrets, ...(g.opts.password ? [g.opts.password] : [])]
      const ports = [...new Set(g.items.flatMap((i) => i.ports))]
      const mode = ctx.check ? 'status' : g.state
      // Worst cases: all ports in parallel for started; one after the other for the others.
      const perPort = g.state === 'started' && !ctx.check ? 0 : 2 * g.opts.waitSeconds + 10
      // A save or an AOF rewrite (save_s, aof_s in the script) runs on all ports at once.
      const slow = !ctx.check && (g.opts.save || g.state !== 'stopped') ? 11 * g.opts.waitSeconds : 0
      const timeoutMs = (2 * g.opts.waitSeconds + 60 + slow + ports.length * (perPort + 1)) * 1000
      const r = await ctx.transport.exec('sh -s', {stdin: instancesScript(mode, ports, g.opts), timeoutMs})
      const reports = parseInstanceReport(mask(r.stdout, secrets))
      const trouble = r.failed || r.timedOut ? `\nscript exit ${r.exitCode}${r.timedOut ? ' (timed out)' : ''}: ${mask(r.stderr, secrets).trim().split('\n').slice(-5).join('\n')}` : ''
      for (const {index, ports: itemPorts} of g.items) {
        const res = ctx.check ? planCheck(g.state, itemPorts, reports, g.opts.remove) : summarizeInstances(g.state, itemPorts, reports, {remove: g.opts.remove})
        if (res.status === 'failed' && trouble) res.msg = `${res.msg}${trouble}`
        res.msg = res.msg ? mask(res.msg, secrets) : res.msg
        const phases = mode === 'stopped' ? parsePhases(r.stdout) : undefined
        if (phases) res.data = {...res.data, phases_ms: phases}
        results[index] = res
      }
    }
    return results
  },
}
