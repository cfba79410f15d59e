// What a redis.conf change means for a running instance: which directives differ
// between the config it was started with (redis.conf.applied) and the one `up` renders
// now, and for each whether CONFIG SET can apply it live or the instance must restart.
// Pure: no I/O, unit-tested with table fixtures.

/** One directive's lines in a config file, each line's arguments already unquoted. */
export type ConfLines = string[][]

// Directives a running Redis (5.0.3 … 7.x) cannot change, or whose change must not be
// made live because it changes who the instance is (address, files, cluster identity).
export const RESTART_DIRECTIVES: ReadonlySet<string> = new Set([
  'port',
  'bind',
  'bind-source-addr',
  'unixsocket',
  'unixsocketperm',
  'daemonize',
  'supervised',
  'pidfile',
  'logfile',
  'syslog-enabled',
  'syslog-ident',
  'syslog-facility',
  'databases',
  'always-show-logo',
  'set-proc-title',
  'dir',
  'cluster-enabled',
  'cluster-config-file',
  'cluster-port',
  'tcp-backlog',
  'io-threads',
  'io-threads-do-reads',
  'include',
  'loadmodule',
  'rename-command',
  'appendfilename',
  'appenddirname',
  'disable-thp',
  'tls-port',
  'tls-cluster',
  'enable-protected-configs',
  'enable-debug-command',
  'enable-module-command',
  'ignore-warnings',
  'oom-score-adj-values',
  'locale-collate',
])

// Directives whose several lines add up (save 900 1 / save 300 10): CONFIG SET takes them
// joined into one value. For all others the last line wins, as when Redis reads the file.
const CUMULATIVE: ReadonlySet<string> = new Set(['save', 'client-output-buffer-limit', 'notify-keyspace-events'])

// A directive removed from the config goes back to Redis' default: live where the default
// is the same in every supported version, else by a restart.
export const LIVE_DEFAULTS: Readonly<Record<string, string>> = {
  maxmemory: '0',
  'maxmemory-policy': 'noeviction',
  'maxmemory-samples': '5',
  appendonly: 'no',
  appendfsync: 'everysec',
  requirepass: '',
  masterauth: '',
  'cluster-node-timeout': '15000',
  'cluster-require-full-coverage': 'yes',
  'cluster-migration-barrier': '1',
  'cluster-replica-validity-factor': '10',
  'cluster-slave-validity-factor': '10',
  maxclients: '10000',
  timeout: '0',
  'tcp-keepalive': '300',
  hz: '10',
  loglevel: 'notice',
  'protected-mode': 'yes',
  'slowlog-log-slower-than': '10000',
  'slowlog-max-len': '128',
  'min-replicas-to-write': '0',
  'min-replicas-max-lag': '10',
  'min-slaves-to-write': '0',
  'lua-time-limit': '5000',
}

/** Values never shown: they are passwords. */
export const SECRET_DIRECTIVES: ReadonlySet<string> = new Set(['requirepass', 'masterauth', 'masteruser', 'tls-key-file-pass'])

// Split one config line like Redis' sdssplitargs: "double quotes" with \n \t \xHH
// escapes, 'single quotes' with \' only, whitespace between words. Undefined: unbalanced.
export function splitConfigLine(line: string): string[] | undefined {
  const out: string[] = []
  let i = 0
  const n = line.length
  const esc: Record<string, string> = {n: '\n', r: '\r', t: '\t', b: '\b', a: '\x07'}
  while (i < n) {
    while (i < n && /\s/.test(line[i])) i++
    if (i >= n) break
    let w = ''
    if (line[i] === '"') {
      i++
      for (;;) {
        if (i >= n) return undefined
        const c = line[i]
        if (c === '\\' && line[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(line.slice(i + 2, i + 4))) {
          w += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16))
          i += 4
        } else if (c === '\\' && i + 1 < n) {
          w += esc[line[i + 1]] ?? line[i + 1]
          i += 2
        } else if (c === '"') {
          i++
          if (i < n && !/\s/.test(line[i])) return undefined
          break
        } else {
          w += c
          i++
        }
      }
    } else if (line[i] === "'") {
      i++
      for (;;) {
        if (i >= n) return undefined
        const c = line[i]
        if (c === '\\' && line[i + 1] === "'") {
          w += "'"
          i += 2
        } else if (c === "'") {
          i++
          if (i < n && !/\s/.test(line[i])) return undefined
          break
        } else {
          w += c
          i++
        }
      }
    } else {
      while (i < n && !/\s/.test(line[i])) w += line[i++]
    }
    out.push(w)
  }
  return out
}

/** Directive name (lower case) → its lines' arguments, in file order; comments and blanks dropped. */
export function parseRedisConf(text: string): Map<string, ConfLines> {
  const out = new Map<string, ConfLines>()
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const words = splitConfigLine(line) ?? line.split(/\s+/)
    if (words.length === 0) continue
    const name = words[0].toLowerCase()
    const list = out.get(name) ?? []
    list.push(words.slice(1))
    out.set(name, list)
  }
  return out
}

/** The one value CONFIG SET takes for a directive's lines. */
export function configValue(name: string, lines: ConfLines): string {
  if (CUMULATIVE.has(name))
    return lines
      .map((a) => a.join(' '))
      .join(' ')
      .trim()
  return (lines[lines.length - 1] ?? []).join(' ')
}

export interface DirectiveChange {
  name: string
  /** As the running instance has it; undefined: not in its config (Redis' default). */
  before?: string
  /** As rendered now; undefined: removed from the config. */
  after?: string
  /** live: CONFIG SET name value; restart: only a restart applies it. */
  how: 'live' | 'restart'
  /** The CONFIG SET value (live only). */
  value?: string
}

export interface ConfigPlan {
  changes: DirectiveChange[]
  live: DirectiveChange[]
  restart: DirectiveChange[]
}

const same = (a: ConfLines | undefined, b: ConfLines | undefined) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null)

// Applied vs wanted config of one instance → what to CONFIG SET and what needs a restart.
export function planConfig(applied: string, wanted: string): ConfigPlan {
  const a = parseRedisConf(applied)
  const w = parseRedisConf(wanted)
  const names = [...new Set([...a.keys(), ...w.keys()])].sort()
  const changes: DirectiveChange[] = []
  for (const name of names) {
    const before = a.get(name)
    const after = w.get(name)
    if (same(before, after)) continue
    const b = before && configValue(name, before)
    const v = after && configValue(name, after)
    if (b !== undefined && v !== undefined && b === v && !CUMULATIVE.has(name)) continue // a repeated line, same outcome
    if (RESTART_DIRECTIVES.has(name)) {
      changes.push({name, before: b, after: v, how: 'restart'})
    } else if (v !== undefined) {
      changes.push({name, before: b, after: v, how: 'live', value: v})
    } else if (name in LIVE_DEFAULTS) {
      changes.push({name, before: b, after: undefined, how: 'live', value: LIVE_DEFAULTS[name]})
    } else {
      changes.push({name, before: b, after: undefined, how: 'restart'})
    }
  }
  return {changes, live: changes.filter((c) => c.how === 'live'), restart: changes.filter((c) => c.how === 'restart')}
}

// "maxmemory 0 → 100mb" for people; passwords never appear.
export function describeChange(c: DirectiveChange): string {
  if (SECRET_DIRECTIVES.has(c.name)) return `${c.name} (changed)`
  const show = (v: string | undefined) => (v === undefined ? '(default)' : v === '' ? '""' : v)
  return `${c.name} ${show(c.before)} → ${show(c.after)}`
}

/** One line of redis-cli input: each word double-quoted, so values with spaces or quotes stay one argument. */
export function cliCommandLine(words: string[]): string {
  return words
    .map(
      (w) =>
        '"' +
        w
          .replace(/[\\"]/g, (c) => '\\' + c)
          .replace(/\n/g, '\\n')
          .replace(/\r/g, '\\r')
          .replace(/\t/g, '\\t') +
        '"',
    )
    .join(' ')
}

/** The password an instance runs with, read from its config (the applied snapshot). */
export function requirepassOf(conf: string): string | undefined {
  const lines = parseRedisConf(conf).get('requirepass')
  if (!lines) return undefined
  const v = configValue('requirepass', lines)
  return v === '' ? undefined : v
}

// ---- rolling restarts ----------------------------------------------------------------

/** What a node to restart says about itself (from its own CLUSTER NODES). */
export interface RestartNode {
  addr: string
  id?: string
  /** unknown: it could not be inspected (timeout, LOADING, wrong password): never guessed at. */
  role: 'master' | 'replica' | 'alone' | 'unknown'
  /** For a replica: its master's address. */
  masterAddr?: string
  /** For a master: its replicas that are connected and not failing (their sync is checked again before the failover). */
  healthyReplicas: string[]
  /** Why it could not be inspected (role unknown). */
  error?: string
}

export type RollingStep =
  {kind: 'restart'; addr: string; as: 'replica' | 'master' | 'alone'; save?: boolean} | {kind: 'failover'; replica: string; master: string} | {kind: 'refuse'; addr: string; why: string}

// Restarts grouped by shard, each shard one step at a time: its replicas first, then its
// master, handed over to a healthy replica (CLUSTER FAILOVER) when it has one. A master
// that cannot hand over keeps its keys only through the RDB that SHUTDOWN SAVE writes and
// the start loads (save: true; a failed save leaves it running); a node that could not be
// inspected is never restarted. Shards are independent and may run side by side. Pure.
export function planRolling(nodes: readonly RestartNode[]): RollingStep[][] {
  const shards = new Map<string, {replicas: RestartNode[]; master?: RestartNode}>()
  const key = (n: RestartNode) => (n.role === 'replica' ? (n.masterAddr ?? `?${n.addr}`) : n.addr)
  for (const n of nodes) {
    const s = shards.get(key(n)) ?? {replicas: []}
    if (n.role === 'replica') s.replicas.push(n)
    else s.master = n
    shards.set(key(n), s)
  }
  const out: RollingStep[][] = []
  for (const [, s] of [...shards].sort(([a], [b]) => a.localeCompare(b))) {
    const steps: RollingStep[] = s.replicas.sort((x, y) => x.addr.localeCompare(y.addr)).map((r) => ({kind: 'restart', addr: r.addr, as: 'replica'}))
    if (s.master) steps.push(...masterSteps(s.master))
    out.push(steps)
  }
  return out
}

function masterSteps(m: RestartNode): RollingStep[] {
  if (m.role === 'unknown') return [{kind: 'refuse', addr: m.addr, why: `could not be inspected (${m.error ?? 'no answer'}): not restarted, its role and data are unknown`}]
  const target = m.healthyReplicas.slice().sort()[0]
  if (m.role === 'master' && target)
    return [
      {kind: 'failover', replica: target, master: m.addr},
      {kind: 'restart', addr: m.addr, as: 'replica'},
    ]
  return [{kind: 'restart', addr: m.addr, as: m.role === 'alone' ? 'alone' : 'master', save: true}]
}
