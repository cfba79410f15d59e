import {InputError} from '../errors.js'
import type {Host, Inventory} from '../inventory/inventory.js'
import {planSentinelLayout, type SentinelLayout} from './sentinel-layout.js'
import type {VarWhere} from './validate.js'

// The Sentinel topology's variables and its layout, checked before any host is touched:
// exit 5 naming the variable, where it was set and the fix (as validate.ts does for the
// cluster path). Pure: the caller gives the hosts' merged variables and where each came from.

const isTemplate = (v: unknown) => typeof v === 'string' && v.includes('{{')
const intOf = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : NaN)

const INTS: Record<string, {min: number; max: number; hint: string}> = {
  redis_sentinel_groups: {min: 1, max: 1000, hint: 'a whole number of master groups ≥ 1 (default 1)'},
  redis_sentinel_port: {min: 1, max: 65535, hint: 'a TCP port (default 26379)'},
  redis_sentinel_down_after_ms: {min: 100, max: 3_600_000, hint: 'milliseconds, e.g. 5000'},
  redis_sentinel_failover_timeout: {min: 1000, max: 86_400_000, hint: 'milliseconds, e.g. 60000'},
  redis_sentinel_parallel_syncs: {min: 1, max: 100, hint: 'replicas that resync at once after a failover (default 1)'},
  redis_sentinel_wait_timeout: {min: 1, max: 86_400, hint: 'seconds ≥ 1 (default 60)'},
  redis_haproxy_port_start: {min: 1, max: 65535, hint: "HAProxy's first write port, a TCP port (default: redis_port_start)"},
  redis_haproxy_read_port_start: {min: 0, max: 65535, hint: "HAProxy's first read port, a TCP port, or 0 for no read frontends (default 0)"},
}

export interface SentinelValidateInput {
  /** The data hosts (the group up runs on), with their merged variables (defaults < inventory < -e). */
  data: Array<{host: Host; vars: Record<string, unknown>}>
  /** The Sentinel group's hosts, when that inventory group exists. */
  sentinels?: Host[]
  haproxy?: Host[]
  file: string
  whereOf?: VarWhere
}

/** The topology a group asks for: cluster or sentinel; anything else is refused. */
export function topologyOf(vars: Record<string, unknown>, fail: (what: string, hint: string) => never): 'cluster' | 'sentinel' {
  const t = vars.redis_topology ?? 'cluster'
  if (t === 'cluster' || t === 'sentinel') return t
  return fail(`is ${JSON.stringify(t)}: not a topology`, 'set redis_topology to cluster (Redis Cluster, the default) or sentinel (master-replica groups watched by Sentinels)')
}

function failer(o: SentinelValidateInput, host: string) {
  return (name: string, what: string, hint: string | string[]): never => {
    const src = o.whereOf?.(host, name)
    const where = {...(src?.where ?? (src?.label === '-e' ? {} : {file: o.file})), host}
    throw new InputError(`${name}${src ? ` (${src.label})` : ''} ${what}`, {where, hint})
  }
}

function checkInts(o: SentinelValidateInput): void {
  for (const {host, vars} of o.data) {
    const fail = failer(o, host.name)
    for (const [name, r] of Object.entries(INTS)) {
      const raw = vars[name]
      if (raw === undefined || isTemplate(raw)) continue
      const n = intOf(raw)
      if (!Number.isInteger(n) || n < r.min || n > r.max) fail(name, `is ${JSON.stringify(raw)}: not a whole number in ${r.min}…${r.max}`, `set ${name} to ${r.hint}`)
    }
    const q = vars.redis_sentinel_quorum
    if (q !== undefined && q !== null && q !== '' && !isTemplate(q) && !(Number.isInteger(intOf(q)) && intOf(q) >= 1)) {
      fail('redis_sentinel_quorum', `is ${JSON.stringify(q)}: not a whole number ≥ 1`, 'set redis_sentinel_quorum to a number of Sentinels, or leave it empty for a majority')
    }
    const f = vars.redis_sentinel_force_few
    if (f !== undefined && typeof f !== 'boolean' && !/^(yes|no|true|false|on|off|1|0)$/i.test(String(f)))
      fail('redis_sentinel_force_few', `is ${JSON.stringify(f)}: not a boolean`, 'set it to true or false')
    const start = intOf(vars.redis_port_start)
    const groups = intOf(vars.redis_sentinel_groups ?? 1)
    const sport = intOf(vars.redis_sentinel_port ?? 26379)
    if (start + groups - 1 > 65535) fail('redis_sentinel_groups', `is ${groups}: ports ${start}-${start + groups - 1} go past 65535`, `set redis_sentinel_groups ≤ ${65535 - start + 1}`)
    if (sport >= start && sport < start + groups) {
      fail('redis_sentinel_port', `is ${sport}, one of the data ports ${start}-${start + groups - 1}`, `give the Sentinel a port outside ${start}-${start + groups - 1} (default 26379)`)
    }
  }
}

// HAProxy's frontends on a host that also runs data instances or a Sentinel: one listener
// per port, so a collision would fail up half-way (or HAProxy would never bind).
function checkFrontendPorts(layout: SentinelLayout): void {
  const last = layout.groups[layout.groups.length - 1]
  for (const [name, p] of [
    ['redis_haproxy_port_start', last.writePort],
    ['redis_haproxy_read_port_start', last.readPort ?? 0],
  ] as const)
    if (p > 65535) throw new InputError(`${name}: the frontend ports of ${layout.groups.length} group(s) go past 65535 (up to ${p})`, {hint: `set ${name} ≤ ${65535 - layout.groups.length + 1}`})
  const sentinelHosts = new Set(layout.sentinels.map((s) => s.host))
  for (const h of layout.haproxy) {
    const taken = new Map<number, string>((layout.portsByHost.get(h.host) ?? []).map((p) => [p, `data instance port ${p}`]))
    if (sentinelHosts.has(h.host)) taken.set(layout.sentinels[0].port, `Sentinel port ${layout.sentinels[0].port}`)
    for (const g of layout.groups) {
      for (const [name, p] of [
        ['redis_haproxy_port_start', g.writePort],
        ['redis_haproxy_read_port_start', g.readPort],
      ] as const) {
        if (p === undefined) continue
        const other = taken.get(p)
        if (other) {
          throw new InputError(`${name}: HAProxy's ${name.includes('read') ? 'read' : 'write'} port ${p} (group ${g.index}) on ${h.host} is also its ${other}`, {
            hint: `give HAProxy ports that no instance or Sentinel on ${h.host} uses, e.g. redis_haproxy_port_start: ${nextFree(layout, h.host, sentinelHosts)}`,
          })
        }
        taken.set(p, `${name.includes('read') ? 'read' : 'write'} port of group ${g.index}`)
      }
    }
  }
}

// A start above every port the layout uses on the host.
function nextFree(layout: SentinelLayout, host: string, sentinelHosts: Set<string>): number {
  const used = [...(layout.portsByHost.get(host) ?? []), ...(sentinelHosts.has(host) ? [layout.sentinels[0].port] : []), ...layout.groups.map((g) => g.port)]
  return Math.max(...used) + 1 > 65535 - layout.groups.length ? 1 : Math.max(...used) + 1
}

/** Check the variables and the layout; the layout, or InputError (exit 5) naming the variable and the fix. */
export function validateSentinel(o: SentinelValidateInput): SentinelLayout {
  checkInts(o)
  const first = o.data[0]
  const v = first.vars
  const lh = (h: Host) => ({host: h.name, ip: h.connection.address})
  const bool = (x: unknown) => x === true || /^(yes|true|on|1)$/i.test(String(x ?? ''))
  const q = v.redis_sentinel_quorum
  try {
    const layout = planSentinelLayout({
      clusterName: String(v.redis_cluster_name ?? 'redis'),
      data: o.data.map((d) => lh(d.host)),
      sentinels: (o.sentinels ?? o.data.map((d) => d.host)).map(lh),
      haproxy: (o.haproxy ?? []).map(lh),
      portStart: intOf(v.redis_port_start),
      groups: intOf(v.redis_sentinel_groups ?? 1),
      replicas: intOf(v.redis_replicas ?? 0),
      sentinelPort: intOf(v.redis_sentinel_port ?? 26379),
      ...(q === undefined || q === null || q === '' || isTemplate(q) ? {} : {quorum: intOf(q)}),
      forceFewSentinels: bool(v.redis_sentinel_force_few),
      // The default is the template "{{ redis_port_start }}": the data ports' start.
      haproxyPortStart: intOf(v.redis_haproxy_port_start === undefined || isTemplate(v.redis_haproxy_port_start) ? v.redis_port_start : v.redis_haproxy_port_start),
      haproxyReadPortStart: isTemplate(v.redis_haproxy_read_port_start) ? 0 : intOf(v.redis_haproxy_read_port_start ?? 0) || 0,
    })
    checkFrontendPorts(layout)
    return layout
  } catch (error) {
    if (!(error instanceof InputError)) throw error
    // Name where the variable the refusal is about was set.
    const name = /^redis_\w+/.exec(error.message)?.[0]
    const src = name ? o.whereOf?.(first.host.name, name) : undefined
    const where = {...(src?.where ?? (src?.label === '-e' ? {} : {file: o.file})), host: first.host.name}
    throw new InputError(`${error.message}${src ? ` (${name} from ${src.label})` : ''}`, {where, hint: error.hint})
  }
}

/** The inventory groups of the topology's Sentinels and HAProxy hosts, when they exist. */
export function topologyGroups(inv: Inventory, vars: Record<string, unknown>): {sentinel?: string; haproxy?: string} {
  const sg = String(vars.redis_sentinel_hosts_group ?? 'sentinel')
  const hg = String(vars.redis_haproxy_hosts_group ?? 'haproxy')
  const has = (g: string) => inv.groups.has(g) && [...inv.hosts.values()].some((h) => h.groups.includes(g))
  return {...(has(sg) ? {sentinel: sg} : {}), ...(has(hg) ? {haproxy: hg} : {})}
}
