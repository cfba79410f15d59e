// redis_members: the addresses of every node the existing cluster knows, read from the
// controller, so the firewall task can keep allowing hosts that are still members while
// they are drained (scale-in: they are no longer in the inventory, but their keys must
// still reach the staying nodes and their bus links must stay up until they are removed).
// Runs once per play; read-only (changes nothing, works in check mode).
//
// Parameters:
//   password  string  requirepass of the instances (secret; default none)
//
// Asks the first node of every host (one connection per host); an inventory with no
// running node yet gives empty lists.
//
// Returns (register:): ips (IPv4 of every member, inventory or not), members (ip:port),
// missing (members the inventory does not list).
//
// Example:
//   - name: Cluster members
//     redis_members:
//       password: "{{ redis_password }}"
//     register: redis_members
//   - firewall:
//       sources: ["{{ play_hosts_ips }}", "{{ redis_members.ips }}"]

import {readMembers} from '../../redis/scale.js'
import {clusterNodesFromHosts} from '../../redis/inventory-nodes.js'
import type {ItemResult, ModuleContext} from '../types.js'
import {definePlayModule} from '../define.js'

async function runItem(ctx: ModuleContext, args: Record<string, unknown>): Promise<ItemResult> {
  const password = args.password === undefined || args.password === null || args.password === '' ? undefined : String(args.password)
  if (password) ctx.secrets.add(password)
  const hosts = ctx.playHosts.length > 0 ? ctx.playHosts : [{host: ctx.host, address: ctx.address, vars: ctx.vars}]
  const nodes = await clusterNodesFromHosts(hosts)
  const m = await readMembers(nodes, {password})
  const msg =
    m.members.length === 0
      ? 'no cluster running yet'
      : `${m.members.length} member(s) on ${m.ips.length} address(es)${m.missing.length ? `; ${m.missing.length} not in the inventory: ${m.missing.slice(0, 5).join(', ')}${m.missing.length > 5 ? ', …' : ''}` : ''}`
  return {status: 'ok', msg, data: {ips: m.ips, members: m.members, missing: m.missing}}
}

export const redisMembersModule = definePlayModule({
  name: 'redis_members',
  description: "List the addresses of the running cluster's members, in the inventory or not (read-only)",
  args: {password: {type: 'string', secret: true}},
  runItem,
})
