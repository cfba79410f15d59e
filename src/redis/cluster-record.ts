import {createHash} from 'node:crypto'
import {InputError, type ErrorWhere} from '../errors.js'

// Several clusters may share hosts (other ports, other inventories). Each one has a name,
// and the name is what keeps them apart on a host: its own firewall chain, its own record
// (~/.baremetal/clusters/<name>.json: what `up` deployed, read back by down/status/load)
// and its own lock. Pure code: no network, no files.

/** Where the records and locks live on every host: independent of any variable. */
export const RECORD_DIR = '.baremetal/clusters'
/** Tag (and chain BAREMETAL-baremetal) of hosts deployed before clusters had names. */
export const LEGACY_TAG = 'baremetal'

// First a letter or digit: a leading "-" would read as an option to iptables or a shell tool.
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/
const CHAIN_MAX = 28

/**
 * The firewall chain of a cluster: BAREMETAL-<name>, or, when that passes iptables' 28
 * characters, a prefix of the name plus a hash of all of it (a plain cut would give two
 * names with one prefix the same chain, and one cluster's down would remove the other's rules).
 */
export function chainName(name: string): string {
  const full = `BAREMETAL-${name}`
  if (full.length <= CHAIN_MAX) return full
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8)
  return `BAREMETAL-${name.slice(0, CHAIN_MAX - 'BAREMETAL-'.length - 9)}-${hash}`
}

/** The default name: the inventory group and the first port, e.g. redis-7000 (stable, and distinct per port range). */
export function groupSlug(group: string): string {
  return (
    group
      .replace(/[^A-Za-z0-9_.-]+/g, '_')
      .replace(/^[^A-Za-z0-9]+/, '')
      .slice(0, 40) || 'redis'
  )
}

export function validateClusterName(name: unknown, where: ErrorWhere = {}): string {
  const s = typeof name === 'string' || typeof name === 'number' ? String(name) : ''
  if (!NAME_RE.test(s)) {
    throw new InputError(`redis_cluster_name is ${JSON.stringify(name)}: it names the cluster's firewall chain, record and lock on every host`, {
      where,
      hint: 'use 1-64 letters, digits, "_", "." or "-", starting with a letter or digit, e.g. redis_cluster_name: shop-cache (default: <group>-<redis_port_start>)',
    })
  }
  return s
}

export interface ClusterRecord {
  name: string
  group: string
  state: 'running' | 'stopped'
  ports: {start: number; count: number}
  cluster_dir: string
  bin_dir: string
  version: string
  firewall_chain: string
  /** port → node id (from the instance's nodes.conf), for the ports that have one. */
  node_ids: Record<string, string>
  written: string
}

/** The records one host holds, as read by the records script ("@@ FILE path" then its JSON). */
export function parseRecords(stdout: string): {records: ClusterRecord[]; bad: string[]} {
  const records: ClusterRecord[] = []
  const bad: string[] = []
  for (const part of stdout.split('@@ FILE ').slice(1)) {
    const nl = part.indexOf('\n')
    const path = part.slice(0, nl).trim()
    try {
      const r = JSON.parse(part.slice(nl + 1)) as ClusterRecord
      if (typeof r?.name !== 'string' || !r.ports || !Number.isInteger(r.ports.start) || !Number.isInteger(r.ports.count)) throw new Error('not a record')
      records.push(r)
    } catch {
      bad.push(path)
    }
  }
  return {records, bad}
}

export interface HostRecords {
  host: string
  records: ClusterRecord[]
}

export interface Explicit {
  /** redis_cluster_name set in the inventory or with -e. */
  name?: string
  /** redis_port_start set in the inventory or with -e. */
  portStart?: number
}

export type Selection = {kind: 'record'; record: ClusterRecord; hosts: string[]} | {kind: 'none'; why: string}

/**
 * Which deployed cluster a down/status/load means when the inventory and -e do not say:
 * an explicit name → its record; else explicit ports → the record with that first port;
 * else the only cluster on the group's hosts. Several and nothing explicit: refused
 * (InputError naming them), never a guess.
 */
export function selectRecord(found: HostRecords[], explicit: Explicit, where: ErrorWhere = {}): Selection {
  const byName = new Map<string, {record: ClusterRecord; hosts: string[]}>()
  for (const h of found) {
    for (const r of h.records) {
      const e = byName.get(r.name) ?? {record: r, hosts: []}
      e.hosts.push(h.host)
      byName.set(r.name, e)
    }
  }
  const pick = (e: {record: ClusterRecord; hosts: string[]} | undefined, why: string): Selection => (e ? {kind: 'record', record: e.record, hosts: e.hosts} : {kind: 'none', why})
  if (explicit.name !== undefined) return pick(byName.get(explicit.name), `no record of cluster ${explicit.name} on the group's hosts`)
  if (explicit.portStart !== undefined) {
    const match = [...byName.values()].filter((e) => e.record.ports.start === explicit.portStart)
    if (match.length > 1)
      throw several(
        match.map((e) => e.record),
        `with redis_port_start ${explicit.portStart}`,
        where,
      )
    return pick(match[0], `no record with redis_port_start ${explicit.portStart} on the group's hosts`)
  }
  if (byName.size === 0) return {kind: 'none', why: "no cluster record on the group's hosts"}
  if (byName.size > 1)
    throw several(
      [...byName.values()].map((e) => e.record),
      'on these hosts',
      where,
    )
  return pick([...byName.values()][0], '')
}

function several(records: ClusterRecord[], what: string, where: ErrorWhere): InputError {
  const list = records
    .map((r) => `${r.name} (ports ${r.ports.start}-${r.ports.start + r.ports.count - 1})`)
    .sort()
    .join(', ')
  return new InputError(`${records.length} clusters are deployed ${what}: ${list}; which one is meant?`, {
    where,
    hint: `name it: -e redis_cluster_name=${records.map((r) => r.name).sort()[0]} (or set redis_cluster_name in the inventory)`,
  })
}

/** The variables a record supplies: only those neither the inventory nor -e set (those always win). */
export function recordVars(r: ClusterRecord, explicitKeys: Set<string>): Record<string, unknown> {
  const all: Record<string, unknown> = {
    redis_cluster_name: r.name,
    redis_port_start: r.ports.start,
    redis_count: r.ports.count,
    redis_cluster_dir: r.cluster_dir,
    redis_bin_dir: r.bin_dir,
    redis_version: r.version,
  }
  return Object.fromEntries(Object.entries(all).filter(([k, v]) => !explicitKeys.has(k) && v !== undefined && v !== ''))
}

/** A record without its write time: what decides whether it must be written again. */
export function sameRecord(a: ClusterRecord | undefined, b: ClusterRecord): boolean {
  if (!a) return false
  const canon = (v: unknown): unknown =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .filter((k) => k !== 'written')
            .map((k) => [k, canon((v as Record<string, unknown>)[k])]),
        )
      : v
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b))
}

export interface LockHolder {
  command?: string
  controller?: string
  pid?: string
  started?: string
  host_pid?: string
  from?: string
}

/** The lock file's one line, key=value words. */
export function parseHolder(text: string): LockHolder {
  const out: Record<string, string> = {}
  for (const m of text.matchAll(/(\w+)=(\S*)/g)) out[m[1]] = m[2]
  return out as LockHolder
}

export function describeHolder(host: string, h: LockHolder): string {
  if (!h.pid && !h.command) return `another run holds it on ${host} (it has not written who it is yet)`
  return `${h.command ?? 'a run'} started ${h.started ?? '?'} by pid ${h.pid ?? '?'} on controller ${h.controller ?? '?'}${h.from ? ` (${h.from})` : ''} holds it on ${host}`
}
