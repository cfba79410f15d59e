import {InputError} from '../errors.js'
import type {Inventory} from '../inventory/inventory.js'
import {pickBindAddress, resolveIp} from '../redis/inventory-nodes.js'
import {type LayoutHost, planSentinelLayout, type SentinelLayout} from '../redis/sentinel-layout.js'
import {groupSlug} from '../redis/cluster-record.js'
import {clusterNameOf} from './cluster-state.js'
import {loadInv, readExtraVars, redisPasswordVars} from './common.js'
import {type RedisHostVars, redisHostVars} from './redis.js'

// The controller-side commands of the Sentinel topology (status, failover, load) start from
// the inventory alone, no SSH: the group's variables as up sees them (defaults < inventory <
// -e, the password from the same places), then planSentinelLayout, so every command names
// the same groups, members and Sentinels up deployed.

export interface SentinelTarget {
  inv: Inventory
  layout: SentinelLayout
  password?: string
  clusterName: string
}

/** The group's topology (redis_topology, default cluster), resolved without touching a host. */
export async function topologyOf(flags: {
  inventory: string
  group: string
  'extra-vars'?: string[]
}): Promise<{topology: string; inv: Inventory; extra: Record<string, unknown>; hosts: RedisHostVars[]}> {
  const inv = loadInv(flags.inventory)
  const extra = readExtraVars(flags['extra-vars'])
  const hosts = await redisHostVars(inv, flags.group, {...redisPasswordVars(extra, inv, flags.group), baremetal_group: groupSlug(flags.group), ...extra})
  const topology = String(hosts[0]?.vars.redis_topology ?? 'cluster')
  if (topology !== 'cluster' && topology !== 'sentinel') {
    throw new InputError(`redis_topology is "${topology}"`, {where: {file: inv.file}, hint: 'write redis_topology: cluster (the default) or redis_topology: sentinel'})
  }
  return {topology, inv, extra, hosts}
}

function intOf(vars: Record<string, unknown>, name: string, dflt: number): number {
  const v = vars[name]
  if (v === undefined || v === null || v === '') return dflt
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) throw new InputError(`${name} must be a whole number, got ${JSON.stringify(v)}`, {hint: `set ${name} to a whole number`})
  return n
}

async function layoutHosts(hosts: RedisHostVars[]): Promise<LayoutHost[]> {
  return Promise.all(hosts.map(async (h) => ({host: h.host, ip: await resolveIp(pickBindAddress(h.vars.redis_bind) ?? h.address, h.host)})))
}

/** An optional inventory group of other hosts (Sentinels, HAProxy): its hosts, or undefined when the group does not exist. */
async function optionalGroup(inv: Inventory, name: string, extra: Record<string, unknown>): Promise<LayoutHost[] | undefined> {
  if (!inv.groups.has(name)) return undefined
  const hosts = await redisHostVars(inv, name, extra)
  return Promise.all(hosts.map(async (h) => ({host: h.host, ip: await resolveIp(h.address, h.host)})))
}

/** The layout up deployed for this inventory (planSentinelLayout), with the password; nothing contacted. */
export async function sentinelTarget(t: Awaited<ReturnType<typeof topologyOf>>): Promise<SentinelTarget> {
  const {inv, hosts, extra} = t
  const v = hosts[0]?.vars ?? {}
  const clusterName = clusterNameOf(hosts, inv.file)
  const data = await layoutHosts(hosts)
  const sentinels = (await optionalGroup(inv, String(v.redis_sentinel_hosts_group ?? 'sentinel'), extra)) ?? data
  const haproxy = (await optionalGroup(inv, String(v.redis_haproxy_hosts_group ?? 'haproxy'), extra)) ?? []
  const portStart = intOf(v, 'redis_port_start', 6379)
  const quorum = v.redis_sentinel_quorum === undefined || v.redis_sentinel_quorum === null || v.redis_sentinel_quorum === '' ? undefined : intOf(v, 'redis_sentinel_quorum', 0)
  const layout = planSentinelLayout({
    clusterName,
    data,
    sentinels,
    haproxy,
    portStart,
    groups: intOf(v, 'redis_sentinel_groups', 1),
    replicas: intOf(v, 'redis_replicas', 0),
    sentinelPort: intOf(v, 'redis_sentinel_port', 26379),
    quorum,
    forceFewSentinels: v.redis_sentinel_force_few === true || v.redis_sentinel_force_few === 'true',
    haproxyPortStart: intOf(v, 'redis_haproxy_port_start', portStart),
    haproxyReadPortStart: intOf(v, 'redis_haproxy_read_port_start', 0),
  })
  const password = String(v.redis_password ?? '') || undefined
  return {inv, layout, password, clusterName}
}

/** The group names --group may give: a layout group's Sentinel name, or its port. */
export function pickGroups(layout: SentinelLayout, want: string | undefined): SentinelLayout['groups'] {
  if (want === undefined) return layout.groups
  const g = layout.groups.find((x) => x.name === want || String(x.port) === want)
  if (!g) {
    throw new InputError(`no Sentinel group "${want}" in this inventory`, {hint: `give one of: ${layout.groups.map((x) => x.name).join(', ')} (or its port)`})
  }
  return [g]
}
