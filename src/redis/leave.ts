import type {Inventory} from '../inventory/inventory.js'
import {selectHosts} from '../inventory/inventory.js'
import {InputError} from '../errors.js'
import {redisHostVars, type RedisHostVars} from '../cli/redis.js'
import {forEachNode} from './helpers.js'
import {clusterNodesFromHosts} from './inventory-nodes.js'
import {NodePool, describeRedisError} from './pool.js'
import {countSlots, nodeAddr, parseClusterNodes, rangesToString, type NodeEntry} from './nodes.js'
import type {ClusterNode} from './plan.js'

// `down --limit` on some hosts of a live cluster: stopping their nodes leaves their slots
// unserved (masters) or their masters without a copy (last replicas), and once their
// directories are gone no `up` can bring the slots back or drain them. Such a limit is
// refused before anything changes; members already drained and removed by `up
// --remove-missing` are no longer in the cluster's view and leave freely.

/** A member the limit would take out, and why it matters. */
export interface LeavingMember {
  addr: string
  host?: string
  /** Masters: the slots that would go unserved. */
  slots?: string
  slotCount?: number
  /** Last replicas: the master left without a copy. */
  masterAddr?: string
}

export interface LeaveDecision {
  refuse: boolean
  masters: LeavingMember[]
  lastReplicas: LeavingMember[]
  /** Where the cluster keeps running (host names, or addresses the inventory does not name). */
  staying: string[]
}

const live = (e: NodeEntry) => !e.fail && !e.noaddr && !e.handshake && e.ip !== ''

/**
 * Pure: what one node's CLUSTER NODES says about taking the `leaving` addresses out.
 * `hostOf` names the inventory host of an address (for messages only).
 */
export function decideLeave(entries: readonly NodeEntry[], leaving: ReadonlySet<string>, hostOf: ReadonlyMap<string, string> = new Map()): LeaveDecision {
  const staying = entries.filter((e) => live(e) && !leaving.has(e.addr))
  const none: LeaveDecision = {refuse: false, masters: [], lastReplicas: [], staying: []}
  // A view without another live member is no cluster that keeps running.
  if (!staying.length || !entries.some((e) => leaving.has(e.addr))) return none
  const masters = entries
    .filter((e) => e.master && e.slots.length && leaving.has(e.addr))
    .map((e) => ({addr: e.addr, host: hostOf.get(e.addr), slots: rangesToString(e.slots), slotCount: countSlots(e.slots)}))
  const lastReplicas: LeavingMember[] = []
  for (const m of staying.filter((e) => e.master && e.slots.length)) {
    const copies = entries.filter((e) => e.replica && e.masterId === m.id && live(e))
    if (copies.length && copies.every((e) => leaving.has(e.addr))) {
      for (const r of copies) lastReplicas.push({addr: r.addr, host: hostOf.get(r.addr), masterAddr: m.addr})
    }
  }
  const names = [...new Set(staying.map((e) => hostOf.get(e.addr) ?? e.addr))].sort()
  return {refuse: masters.length + lastReplicas.length > 0, masters, lastReplicas, staying: names}
}

/** The refusal, naming the nodes, their slots and the two ways out. */
export function leaveRefusal(d: LeaveDecision, limit: string, inventory: string): InputError {
  const who = (m: LeavingMember) => `${m.addr}${m.host ? ` (${m.host})` : ''}`
  const parts: string[] = []
  if (d.masters.length) {
    parts.push(`master(s) ${d.masters.map((m) => `${who(m)} slots ${m.slots}`).join(', ')} — ${d.masters.reduce((a, m) => a + (m.slotCount ?? 0), 0)} slot(s) would go unserved`)
  }
  if (d.lastReplicas.length) {
    parts.push(`the last replica(s) ${d.lastReplicas.map((r) => `${who(r)} of ${r.masterAddr}`).join(', ')}`)
  }
  return new InputError(`down --limit ${limit} would take members of a live cluster out while it keeps running on ${d.staying.join(', ')}: ${parts.join('; ')}. Nothing was changed`, {
    where: {file: inventory},
    hint: [
      `to shrink the cluster, remove those hosts from the inventory and run \`baremetal up -i NEW_INVENTORY --remove-missing\` (it drains their slots to the staying masters and stops their nodes), then \`baremetal down -i ${inventory} -l ${limit}\` removes what is left on them`,
      `to tear the whole cluster down, run \`baremetal down -i ${inventory}\` without --limit`,
    ],
  })
}

const BATCH = 16

// The first view of the cluster that knows more than the node itself: staying nodes first
// (a leaving node may already have been reset). Nodes that do not answer are skipped; when
// none answers and some refused our password, nothing can be checked: refused too.
async function readView(candidates: readonly ClusterNode[], password: string | undefined): Promise<NodeEntry[] | undefined> {
  const pool = new NodePool({password, connectTimeoutMs: 3000, commandTimeoutMs: 10_000})
  const authErrors: string[] = []
  try {
    for (let i = 0; i < candidates.length; i += BATCH) {
      const batch = candidates.slice(i, i + BATCH)
      const views = await forEachNode(batch, BATCH, async (n) => {
        try {
          return await pool.run(n, async (r) => parseClusterNodes(String(await r.call('CLUSTER', 'NODES'))))
        } catch (error) {
          const msg = describeRedisError(error, password)
          if (/password|authentication/i.test(msg)) authErrors.push(`${nodeAddr(n)}: ${msg}`)
          return undefined
        }
      })
      const view = views.find((v) => v && v.length > 1)
      if (view) return view
    }
  } finally {
    await pool.closeAll()
  }
  if (authErrors.length) {
    throw new InputError(`down --limit: cannot tell whether the limited hosts hold members of a live cluster: ${authErrors.slice(0, 3).join('; ')}`, {
      hint: 'give the password up used (-e redis_password_file=PATH, $BAREMETAL_REDIS_PASSWORD or the inventory), then run down again',
    })
  }
  return undefined
}

/**
 * Controller side of `down --limit`: throws the refusal (exit 5) when the limited hosts hold
 * members a live cluster on the other hosts still needs. No limit, or a limit covering every
 * host of the group: nothing to check, no connection made.
 */
export async function refuseLeavingMembers(inv: Inventory, group: string, limit: string | undefined, vars: Record<string, unknown>): Promise<void> {
  if (!limit) return
  let limited: Set<string>
  try {
    limited = new Set(selectHosts(inv, `${group}:&${limit}`).map((h) => h.name))
  } catch {
    return // a pattern the runner reports itself, with its own words
  }
  const all: RedisHostVars[] = await redisHostVars(inv, group, vars)
  if (all.every((h) => limited.has(h.host))) return
  const nodes = await clusterNodesFromHosts(all)
  const leaving = nodes.filter((n) => limited.has(n.host))
  const password = String(all[0]?.vars.redis_password ?? '') || undefined
  const view = await readView([...nodes.filter((n) => !limited.has(n.host)), ...leaving], password)
  if (!view) return
  const hostOf = new Map(nodes.map((n) => [nodeAddr(n), n.host]))
  const d = decideLeave(view, new Set(leaving.map(nodeAddr)), hostOf)
  if (d.refuse) throw leaveRefusal(d, limit, inv.file)
}
