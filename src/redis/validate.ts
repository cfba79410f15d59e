import {type ErrorWhere, InputError} from '../errors.js'
import type {Host} from '../inventory/inventory.js'
import {flattenList, normalizeSource} from '../modules/firewall.js'

// Every redis_* variable is checked before any host is touched: a typo must fail the
// run with exit 5, naming the variable, where it was set and what to write instead,
// not halfway through a fleet (a bad CIDR used to fail at the firewall task, after
// every redis.conf had been rewritten). Pure: the caller supplies where values come
// from and anything read from disk (the tarball's version).

export interface RedisLayout {
  host: string
  portStart: number
  count: number
  replicas: number
}

/** Where a variable's value was set, for the error: file:line:col, or the command line. */
export type VarWhere = (host: string, name: string) => {where?: ErrorWhere; label: string} | undefined

export interface ValidateOptions {
  whereOf?: VarWhere
  /** The version the controller tarball of a host's redis_source says (src/version.h), when it is one. */
  tarballVersion?: (host: string, source: string) => {version?: string; path: string; error?: string} | undefined
}

const intOf = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : NaN)
const isTemplate = (v: unknown) => typeof v === 'string' && v.includes('{{')
const BOOL = /^(yes|no|true|false|on|off|1|0)$/i

interface IntRule {
  min: number
  max?: number
  hint: string
}
const INTS: Record<string, IntRule> = {
  redis_port_start: {min: 1, max: 65535, hint: 'a TCP port, e.g. 6379'},
  redis_count: {min: 1, max: 1000, hint: 'a whole number of instances per host from 1 to 1000 (default 100)'},
  redis_replicas: {min: 0, max: 100, hint: 'replicas per master: 0, 1, 2, …'},
  redis_cluster_node_timeout: {min: 100, max: 3_600_000, hint: 'milliseconds, e.g. 5000'},
  redis_cluster_migration_barrier: {min: 0, max: 100, hint: 'a whole number ≥ 0 (default 1)'},
  redis_min_replicas_to_write: {min: 0, max: 100, hint: 'a whole number ≥ 0 (0: off)'},
  redis_min_replicas_max_lag: {min: 0, max: 3600, hint: 'seconds ≥ 0 (default 10)'},
  redis_start_timeout: {min: 1, max: 86_400, hint: 'seconds ≥ 1 (default 60)'},
  redis_restart_timeout: {min: 0, max: 86_400, hint: 'seconds ≥ 0 (0: automatic)'},
  redis_cluster_timeout: {min: 0, max: 86_400, hint: 'seconds ≥ 0 (0: automatic)'},
}
const BOOLS = ['redis_appendonly', 'redis_firewall', 'redis_install_build_deps', 'redis_cluster_require_full_coverage']
const LISTS = ['redis_extra_config', 'redis_allowed_clients', 'redis_build_deps']
const POLICIES = ['noeviction', 'allkeys-lru', 'volatile-lru', 'allkeys-random', 'volatile-random', 'volatile-ttl', 'allkeys-lfu', 'volatile-lfu']

class Checker {
  constructor(
    private host: string,
    private v: Record<string, unknown>,
    private o: ValidateOptions,
    private file: string,
  ) {}

  fail(name: string, what: string, hint: string): never {
    const src = this.o.whereOf?.(this.host, name)
    // A -e value has no file position: only the host it was checked for.
    const where = {...(src?.where ?? (src?.label === '-e' ? {} : {file: this.file})), host: this.host}
    throw new InputError(`${name}${src ? ` (${src.label})` : ''} ${what}`, {where, hint})
  }

  int(name: string): number | undefined {
    const raw = this.v[name]
    if (raw === undefined || isTemplate(raw)) return undefined
    const r = INTS[name]
    const n = intOf(raw)
    if (!Number.isInteger(n)) this.fail(name, `is ${JSON.stringify(raw)}: not a whole number`, `set ${name} to ${r.hint}`)
    if (n < r.min || (r.max !== undefined && n > r.max)) {
      this.fail(name, `is ${n}: out of range ${r.min}…${r.max}${name === 'redis_count' && n < 1 ? ' (a host needs at least 1 instance)' : ''}`, `set ${name} to ${r.hint}`)
    }
    return n
  }

  bool(name: string): void {
    const raw = this.v[name]
    if (raw === undefined || typeof raw === 'boolean' || raw === 0 || raw === 1 || isTemplate(raw)) return
    if (typeof raw !== 'string' || !BOOL.test(raw.trim())) this.fail(name, `is ${JSON.stringify(raw)}: not a boolean`, `set ${name} to true or false (yes/no)`)
  }

  // A string where a list belongs: redis_allowed_clients takes one as the firewall does
  // (JSON or words split on spaces/commas); the others must be lists, and a JSON-looking
  // string is refused loudly, not parsed: a -e key=value value is a string, as in Ansible.
  list(name: string): string[] | undefined {
    const raw = this.v[name]
    if (raw === undefined || raw === null || raw === '' || isTemplate(raw)) return undefined
    if (typeof raw === 'string' && name === 'redis_allowed_clients') return flattenList(raw)
    if (typeof raw === 'string') {
      const looksJson = /^\s*\[/.test(raw)
      if (!looksJson && name !== 'redis_extra_config') return [raw]
      this.fail(
        name,
        `is the string ${JSON.stringify(raw)}, not a list${looksJson ? ': a -e key=value value is always a string (as in Ansible), never parsed as JSON' : ''}`,
        `give a list: -e '{"${name}": ${looksJson ? raw.trim() : JSON.stringify([raw])}}', -e @vars.yml, or a YAML list in the inventory`,
      )
    }
    if (!Array.isArray(raw)) this.fail(name, `is ${JSON.stringify(raw)}, not a list`, `write ${name} as a YAML list, e.g. ["…"]`)
    const bad = raw.findIndex((x) => typeof x !== 'string' && typeof x !== 'number')
    if (bad >= 0) this.fail(name, `item ${bad} is ${JSON.stringify(raw[bad])}: not a string`, `each item of ${name} is one string`)
    return raw.map(String)
  }

  str(name: string, test: (s: string) => boolean, what: string, hint: string): void {
    const raw = this.v[name]
    if (raw === undefined || raw === null || isTemplate(raw)) return
    if (typeof raw === 'object') this.fail(name, `is ${JSON.stringify(raw)}: not a string`, hint)
    if (!test(String(raw))) this.fail(name, `is ${JSON.stringify(raw)}: ${what}`, hint)
  }
}

// The last data port must leave room for its bus port (port + 10000 ≤ 65535).
export function busHint(start: number, count: number): string {
  const maxStart = 55535 - count + 1
  const maxCount = 55535 - start + 1
  const ways = [maxStart >= 1 ? `redis_port_start ≤ ${maxStart} (with redis_count ${count})` : '', maxCount >= 1 ? `redis_count ≤ ${maxCount} (with redis_port_start ${start})` : '']
  const fix = ways.filter(Boolean)
  return `bus ports are port + 10000, so the last data port must be ≤ 55535: set ${fix.length ? fix.join(' or ') : 'redis_port_start ≤ 55535'}`
}

function checkStrings(c: Checker): void {
  c.str('redis_version', (s) => /^\d+\.\d+\.\d+$/.test(s), 'not a Redis version', 'write a release version such as "7.0.15" or "5.0.3"')
  c.str('redis_source_sha256', (s) => s === '' || /^[0-9a-fA-F]{64}$/.test(s), 'not a sha256 (64 hex digits)', "write the tarball's sha256sum, or leave it empty")
  c.str('redis_maxmemory', (s) => s === '' || /^\d+\s*(b|k|kb|m|mb|g|gb)?$/i.test(s), 'not a Redis memory size', 'write e.g. "512mb", "2gb", or "" for no limit')
  c.str('redis_maxmemory_policy', (s) => s === '' || POLICIES.includes(s), 'not a maxmemory policy', `use one of ${POLICIES.join(', ')}`)
  c.str('redis_save', (s) => s.trim() === '' || /^(\s*\d+\s+\d+)+\s*$/.test(s), 'not "SECONDS CHANGES" pairs', 'write e.g. "900 1 300 10", or "" for no RDB snapshots')
  c.str('redis_password', (s) => !/[\r\n]/.test(s), 'holds a line break', 'a password is one line')
  for (const name of ['redis_src_dir', 'redis_bin_dir', 'redis_cluster_dir']) {
    c.str(name, (s) => s.startsWith('/') || s.startsWith('~/'), 'is not an absolute path', `write ${name} as /path or ~/path`)
  }
}

function checkLists(c: Checker): void {
  for (const name of LISTS) c.list(name)
  for (const [i, line] of (c.list('redis_extra_config') ?? []).entries()) {
    if (!/^[a-z][a-z0-9-]*(\s+\S.*)?$/i.test(line.trim()) || /[\r\n]/.test(line)) {
      c.fail('redis_extra_config', `item ${i} ${JSON.stringify(line)} is not one "directive value" line`, 'write each item as one redis.conf line, e.g. "tcp-backlog 1024"')
    }
  }
  for (const s of c.list('redis_allowed_clients') ?? []) {
    if (isTemplate(s)) continue
    const n = normalizeSource(s)
    if (n.error) c.fail('redis_allowed_clients', `entry ${JSON.stringify(s)}: ${n.error}`, 'write IPv4 addresses or CIDRs, e.g. ["10.0.0.0/8", "192.0.2.7"]')
  }
}

function checkHost(h: Host, v: Record<string, unknown>, o: ValidateOptions, file: string): RedisLayout | undefined {
  const c = new Checker(h.name, v, o, file)
  const count = c.int('redis_count')
  const start = c.int('redis_port_start')
  const replicas = c.int('redis_replicas')
  for (const name of Object.keys(INTS)) c.int(name)
  for (const name of BOOLS) c.bool(name)
  checkStrings(c)
  checkLists(c)
  if (start !== undefined && count !== undefined && start + count - 1 + 10000 > 65535) {
    const end = start + count - 1
    const name = o.whereOf?.(h.name, 'redis_count') && !o.whereOf?.(h.name, 'redis_port_start') ? 'redis_count' : 'redis_port_start'
    c.fail(name, `is ${name === 'redis_count' ? count : start} (ports ${start}-${end}): their cluster bus ports ${start + 10000}-${end + 10000} go past 65535`, busHint(start, count))
  }
  const source = v.redis_source
  if (typeof source === 'string' && source.trim() !== '' && !isTemplate(source) && typeof v.redis_version === 'string') {
    const t = o.tarballVersion?.(h.name, source)
    if (t?.error) c.fail('redis_source', `${t.path}: ${t.error}`, 'give the path of a Redis source tarball on the controller')
    if (t?.version && t.version !== v.redis_version) {
      c.fail(
        'redis_version',
        `is ${v.redis_version}, but the tarball ${t.path} holds Redis ${t.version} (its src/version.h)`,
        `set redis_version to "${t.version}", or point redis_source at a redis-${v.redis_version} tarball`,
      )
    }
  }
  if (start === undefined || count === undefined) return undefined
  return {host: h.name, portStart: start, count, replicas: replicas ?? 0}
}

// Two inventory hosts with one address are one machine: refused when they would share a
// data or bus port or the cluster directory. Disjoint ports and directories on one address
// are a deliberate layout (several "hosts" on one machine, as the local benchmarks use).
interface Placed {
  name: string
  ports: Array<[number, number]>
  dir: unknown
}
const overlaps = (x: Placed, y: Placed) => x.ports.some(([a, b]) => y.ports.some(([c, d]) => a <= d && c <= b))

function checkAddresses(hosts: Host[], layouts: readonly RedisLayout[], dirs: ReadonlyMap<string, unknown>, file: string, o: ValidateOptions): void {
  const byName = new Map(layouts.map((l) => [l.host, l]))
  const seen = new Map<string, Placed[]>()
  for (const h of hosts) {
    const a = h.connection.address
    const l = byName.get(h.name)
    const me: Placed = {
      name: h.name,
      dir: dirs.get(h.name),
      ports: l
        ? [
            [l.portStart, l.portStart + l.count - 1],
            [l.portStart + 10000, l.portStart + l.count + 9999],
          ]
        : [],
    }
    const clash = (seen.get(a) ?? []).find((other) => overlaps(me, other) || (me.dir !== undefined && me.dir === other.dir))
    if (clash) {
      const src = o.whereOf?.(h.name, 'ansible_host')
      throw new InputError(`hosts ${clash.name} and ${h.name} have the same address ${a} and would share ${overlaps(me, clash) ? 'ports' : `the cluster directory ${String(me.dir)}`}`, {
        where: {...(src?.where ?? {file}), host: h.name},
        hint: 'each inventory host is one machine: give each its own ansible_host, or remove the duplicate (more instances on one machine: raise redis_count; several on purpose: give them disjoint redis_port_start ranges and their own redis_cluster_dir)',
      })
    }
    seen.set(a, [...(seen.get(a) ?? []), me])
  }
}

/** Validate each host's redis_* variables (defaults < inventory < -e); throws InputError naming the variable, its source and the fix. */
export function validateLayout(hosts: Host[], defaults: Record<string, unknown>, extra: Record<string, unknown>, inventoryFile: string, o: ValidateOptions = {}): RedisLayout[] {
  const out: RedisLayout[] = []
  const dirs = new Map<string, unknown>()
  for (const h of hosts) {
    const v = {...defaults, ...h.vars, ...extra}
    dirs.set(h.name, v.redis_cluster_dir)
    const l = checkHost(h, v, o, inventoryFile)
    if (l) out.push(l)
  }
  checkAddresses(hosts, out, dirs, inventoryFile, o)
  const total = out.reduce((s, l) => s + l.count, 0)
  const replicas = out[0]?.replicas ?? 0
  if (out.length && Math.floor(total / (replicas + 1)) < 1) {
    throw new InputError(`${total} instance(s) cannot hold a master and ${replicas} replica(s) each`, {
      where: {file: inventoryFile},
      hint: `lower redis_replicas to ≤ ${Math.max(0, total - 1)} or add instances`,
    })
  }
  return out
}

/** The version a Redis tree's src/version.h declares (`#define REDIS_VERSION "x.y.z"`). */
export function parseVersionH(text: string): string | undefined {
  return /#define\s+REDIS_VERSION\s+"([^"]+)"/.exec(text)?.[1]
}
