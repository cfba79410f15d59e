import {expandRanges, mergeRanges, rangesToString, type SlotRange} from './nodes.js'
import {nodeError} from './helpers.js'
import type {ClusterPlan, PlannedMaster, PlannedReplica} from './plan.js'
import {probeOk, sameSlots, type NodeProbe, type NodeProbeOk} from './status.js'

// The formation's decisions, pure: what the fleet is (fresh, halfway through this plan,
// or an existing cluster) and what is still to send. formCluster only sends what these say.

export const ADDSLOTS_CHUNK = 1000

export interface Classified {
  /** Every node alone: fresh formation (or resume before any MEET). */
  fresh: boolean
  /** Some nodes met, all consistent with this very plan: finish it. */
  resume: boolean
}

// Decide from each node's own line what the fleet is: fresh, halfway through this
// plan, or an existing cluster. Throws for nodes that must not be touched.
export function classify(plan: ClusterPlan, probes: readonly NodeProbeOk[]): Classified {
  const masterOf = new Map<string, PlannedMaster>(plan.masters.map((m) => [m.addr, m]))
  const replicaOf = new Map<string, PlannedReplica>(plan.replicas.map((r) => [r.addr, r]))
  const idOf = new Map(probes.map((p) => [p.addr, p.myself.id]))
  const alone = (p: NodeProbeOk) => p.view.lines === 1
  const anyMet = probes.some((p) => !alone(p))

  for (const p of probes) {
    if (!alone(p)) continue
    if (p.dbsize > 0) {
      throw nodeError(
        p.node,
        `is not in a cluster but holds ${p.dbsize} key(s); refusing to make it part of one`,
        'flush it (FLUSHALL) if the data is not needed, or remove the node from the inventory',
      )
    }
    const own = p.myself.slots
    if (own.length === 0) continue
    const m = masterOf.get(p.addr)
    if (!m || !isSubset(own, m.slots) || (anyMet && !sameSlots(own, m.slots))) {
      throw nodeError(
        p.node,
        `is not in a cluster but serves slots ${rangesToString(own)} that this plan ${m ? `gives it only ${rangesToString(m.slots)}` : 'does not give it (planned as a replica)'}`,
        'it was set up by something else: CLUSTER RESET HARD on that node if its slots are not needed',
      )
    }
  }
  if (!anyMet) return {fresh: true, resume: false}

  const inventoryIds = new Set(idOf.values())
  const consistent = probes.every((p) => {
    const m = masterOf.get(p.addr)
    const r = replicaOf.get(p.addr)
    if (alone(p) && p.myself.configEpoch !== (m ?? r)?.epoch) return false
    for (const x of p.view.known) if (!inventoryIds.has(p.view.ids.ids[x])) return false
    if (m) return p.myself.master && sameSlots(p.myself.slots, m.slots)
    if (r) return p.myself.slots.length === 0 && (p.myself.master || p.myself.masterId === idOf.get(r.master))
    return false
  })
  return {fresh: false, resume: consistent}
}

function isSubset(inner: readonly SlotRange[], outer: readonly SlotRange[]): boolean {
  const o = mergeRanges(outer)
  return mergeRanges(inner).every(([a, b]) => o.some(([x, y]) => a >= x && b <= y))
}

// What forming `plan` on fresh nodes sends: ADDSLOTS chunks, one epoch per node, a MEET per
// node but the seed, a REPLICATE per replica (the count check mode reports).
export function freshCommands(plan: ClusterPlan): number {
  const n = plan.masters.length + plan.replicas.length
  return plan.masters.reduce((t, m) => t + Math.ceil(m.slotCount / ADDSLOTS_CHUNK), 0) + n + (n - 1) + plan.replicas.length
}

export interface Steps {
  setup: Map<string, {addslots: number[][]; epoch?: number}>
  meet: string[]
  meetTarget: string
  /** [replica addr, master addr] */
  replicate: Array<[string, string]>
  total: number
}

// What is still missing for this plan, from the nodes' own lines: only that gets sent.
export function converge(plan: ClusterPlan, probes: readonly NodeProbeOk[]): Steps {
  const byAddr = new Map(probes.map((p) => [p.addr, p]))
  const setup = new Map<string, {addslots: number[][]; epoch?: number}>()
  const alone = (p: NodeProbeOk) => p.view.lines === 1
  let total = 0
  for (const m of plan.masters) {
    const p = byAddr.get(m.addr)!
    if (!alone(p)) continue
    const have = new Set(expandRanges(p.myself.slots))
    const missing = expandRanges(m.slots).filter((s) => !have.has(s))
    const addslots: number[][] = []
    for (let i = 0; i < missing.length; i += ADDSLOTS_CHUNK) addslots.push(missing.slice(i, i + ADDSLOTS_CHUNK))
    if (addslots.length) setup.set(m.addr, {addslots})
    total += addslots.length
  }
  for (const n of [...plan.masters, ...plan.replicas]) {
    const p = byAddr.get(n.addr)!
    if (!alone(p) || p.myself.configEpoch !== 0) continue
    const s = setup.get(n.addr) ?? {addslots: []}
    s.epoch = n.epoch
    setup.set(n.addr, s)
    total++
  }
  // Lone nodes MEET the seed; if the seed itself is alone while others already met (it
  // was not reached yet, or restarted without nodes.conf), they MEET a member instead.
  const seed = byAddr.get(plan.seed)!
  const member = probes.find((p) => !alone(p))
  const meetTarget = alone(seed) && member ? member.addr : plan.seed
  const meet = probes.filter((p) => alone(p) && p.addr !== meetTarget).map((p) => p.addr)
  total += meet.length
  const idOf = new Map(probes.map((p) => [p.addr, p.myself.id]))
  const replicate: Array<[string, string]> = []
  for (const r of plan.replicas) {
    const p = byAddr.get(r.addr)!
    if (p.myself.replica && p.myself.masterId === idOf.get(r.master)) continue
    replicate.push([r.addr, r.master])
  }
  total += replicate.length
  return {setup, meet, meetTarget, replicate, total}
}

// The final wait also wants every replica attached to its planned master, by its own
// word. Other nodes' views of roles are not waited for: they follow by gossip within
// seconds, routing depends on slots only, and the report reads roles from each node itself.
export function roleMismatches(plan: ClusterPlan, probes: readonly NodeProbe[]): string[] {
  const ok = probes.filter(probeOk)
  const idOf = new Map(ok.map((p) => [p.addr, p.myself.id]))
  const byAddr = new Map(ok.map((p) => [p.addr, p]))
  const out: string[] = []
  for (const r of plan.replicas) {
    const p = byAddr.get(r.addr)
    // A failover since (the master restarted, its replica took over) swaps them: same shard.
    const m = byAddr.get(r.master)
    const swapped = !!p && !!m && m.myself.replica && m.myself.masterId === p.myself.id
    if (p && !(p.myself.replica && p.myself.masterId === idOf.get(r.master)) && !swapped) out.push(`${r.addr} is not yet a replica of ${r.master}`)
  }
  return out
}
