import {closeAll} from '../play/runner.js'
import {withLimit} from '../inventory/pattern.js'
import {clusterNodesFromHosts} from '../redis/inventory-nodes.js'
import {targetCluster, type Transports} from './cluster-state.js'
import {loadInv, readExtraVars, redisPasswordVars} from './common.js'
import {type RedisHostVars, redisHostVars} from './redis.js'
import type {ConnectOptions} from '../play/runner.js'

// status and load talk to the cluster from the controller: which cluster (the record up
// left on the hosts, unless the inventory or -e says), its hosts under --limit, their
// variables exactly as up sees them, and the password.

export interface ClusterTargetFlags {
  inventory: string
  limit?: string
  group: string
  'extra-vars'?: string[]
}

export async function redisTarget(flags: ClusterTargetFlags, ssh: ConnectOptions) {
  const inv = loadInv(flags.inventory)
  const extra = readExtraVars(flags['extra-vars'])
  const transports: Transports = new Map()
  const recorded = await targetCluster({inv, group: flags.group, extra, transports, ssh, warnings: []}).finally(() => closeAll(transports))
  const hosts: RedisHostVars[] = await redisHostVars(inv, withLimit(flags.group, flags.limit), {...redisPasswordVars(extra, inv, flags.group), ...recorded.vars, ...extra})
  const nodes = await clusterNodesFromHosts(hosts)
  const password = String(hosts[0]?.vars.redis_password ?? '') || undefined
  return {inv, hosts, nodes, password}
}
