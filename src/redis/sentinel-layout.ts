import {InputError} from '../errors.js'

// The Sentinel topology's shape, from the inventory alone: which instance of which group
// runs where, which Sentinels watch them, which HAProxy port serves which group. Pure: up
// (to render and start), status, load, failover and down all read the same plan, so they
// can never disagree about what a group is.

export interface LayoutHost {
  host: string
  /** The address instances bind to and announce (numeric IP). */
  ip: string
}

export interface SentinelGroup {
  /** Sentinel's master name: `<redis_cluster_name>-<port>`. */
  name: string
  /** Group i, counted from 0 in port order. */
  index: number
  /** Every instance of the group listens on this port, each on its own host. */
  port: number
  /** Where the master runs on a fresh deployment; after a failover Sentinel's view wins. */
  master: LayoutHost
  replicas: LayoutHost[]
  /** The HAProxy write frontend port, and the read one (replicas) when enabled. */
  writePort: number
  readPort?: number
}

export interface SentinelNode extends LayoutHost {
  port: number
}

export interface SentinelLayout {
  groups: SentinelGroup[]
  sentinels: SentinelNode[]
  quorum: number
  haproxy: LayoutHost[]
  /** Per data host, the ports it runs (one per group placed on it), ascending. */
  portsByHost: Map<string, number[]>
}

export interface SentinelLayoutInput {
  clusterName: string
  data: LayoutHost[]
  sentinels: LayoutHost[]
  haproxy: LayoutHost[]
  portStart: number
  groups: number
  replicas: number
  sentinelPort: number
  /** undefined: a majority of the Sentinels. */
  quorum?: number
  /** Allow fewer than 3 Sentinels (a lab, never production: one lost Sentinel stops every failover). */
  forceFewSentinels?: boolean
  haproxyPortStart?: number
  /** 0 or undefined: no read frontends. */
  haproxyReadPortStart?: number
}

/**
 * Group i listens on port portStart + i; its master on data host i mod H and its replicas on
 * the next hosts round the ring, so masters spread evenly and no two members of a group share
 * a host (a host lost takes at most one member of each group).
 */
export function planSentinelLayout(o: SentinelLayoutInput): SentinelLayout {
  const hostsN = o.data.length
  if (hostsN === 0) throw new InputError('the Sentinel topology has no data hosts', {hint: 'list the Redis hosts in the inventory group (default "redis")'})
  if (o.replicas + 1 > hostsN) {
    throw new InputError(`redis_replicas is ${o.replicas}: each group needs ${o.replicas + 1} instances on different hosts, and there are ${hostsN} data host(s)`, {
      hint: `set redis_replicas ≤ ${hostsN - 1}, or add data hosts`,
    })
  }
  if (o.groups < 1) throw new InputError(`redis_sentinel_groups is ${o.groups}: at least 1 group`, {hint: 'set redis_sentinel_groups to 1 or more'})
  const sentinelsN = o.sentinels.length
  if (sentinelsN < 3 && !o.forceFewSentinels) {
    throw new InputError(`${sentinelsN} Sentinel host(s): a Sentinel deployment needs at least 3, so that losing one still leaves a majority to authorize a failover`, {
      hint: ['list 3 or more hosts in the Sentinel group (default "sentinel")', 'set redis_sentinel_force_few: true for a lab setup that accepts it'],
    })
  }
  const quorum = o.quorum ?? Math.floor(sentinelsN / 2) + 1
  if (quorum < 1 || quorum > sentinelsN) {
    throw new InputError(`redis_sentinel_quorum is ${quorum}, but there are ${sentinelsN} Sentinel(s): a quorum no set of Sentinels can reach never fails over`, {
      hint: `set redis_sentinel_quorum between 1 and ${sentinelsN} (a majority: ${Math.floor(sentinelsN / 2) + 1})`,
    })
  }
  const writeStart = o.haproxyPortStart ?? o.portStart
  const readStart = o.haproxyReadPortStart ? o.haproxyReadPortStart : undefined
  const groups: SentinelGroup[] = []
  const portsByHost = new Map<string, number[]>(o.data.map((h) => [h.host, []]))
  for (let i = 0; i < o.groups; i++) {
    const port = o.portStart + i
    const members = Array.from({length: o.replicas + 1}, (_, k) => o.data[(i + k) % hostsN])
    for (const m of members) portsByHost.get(m.host)!.push(port)
    groups.push({
      name: `${o.clusterName}-${port}`,
      index: i,
      port,
      master: members[0],
      replicas: members.slice(1),
      writePort: writeStart + i,
      ...(readStart ? {readPort: readStart + i} : {}),
    })
  }
  return {
    groups,
    sentinels: o.sentinels.map((s) => ({...s, port: o.sentinelPort})),
    quorum,
    haproxy: o.haproxy,
    portsByHost,
  }
}
