import {ClusterError} from '../errors.js'
import {CLUSTER_SLOTS, expandRanges, type SlotRange} from './nodes.js'

// Scaling a live cluster as pure functions of what the nodes say, so every invariant is
// unit-testable without a server and the executor only carries out a list of steps:
// - planRebalance: which slots move from which master to which, so that every master
//   that stays owns ⌊16384/N⌋ or ⌈16384/N⌉ slots and the fewest slots move (exactly the
//   sum of the surpluses: leaving masters give everything, staying ones only what they
//   hold above their target, and the ⌈⌉ targets go to those already holding most);
// - planRoles: which of the nodes without a role (new, or empty masters) become
//   masters, and which master every replica follows, keeping replicas off their
//   master's host and off their siblings' hosts whenever the fleet allows it and
//   moving as few existing replicas as possible.

export interface BalanceMaster {
  id: string
  host?: string
  /** Slots it owns, as ranges or as a list of slot numbers. */
  slots: readonly SlotRange[] | readonly number[]
}

export interface SlotMove {
  from: string
  to: string
  /** Ascending slot numbers. */
  slots: number[]
}

export interface BalancePlan {
  /** Slot count each staying master ends with. */
  targets: Record<string, number>
  /** One entry per (from, to) pair. */
  moves: SlotMove[]
  /** Slots that change owner (the sum of the surpluses: the fewest possible). */
  moved: number
}

const slotList = (s: BalanceMaster['slots']): number[] =>
  s.length === 0 ? [] : typeof s[0] === 'number' ? [...(s as readonly number[])].sort((a, b) => a - b) : expandRanges(s as readonly SlotRange[])

// The slots to move, and to where, for the masters that stay after `leaving` go.
export function planRebalance(masters: readonly BalanceMaster[], leaving: Iterable<string> = []): BalancePlan {
  const gone = new Set(leaving)
  const owner = new Array<string | undefined>(CLUSTER_SLOTS)
  const lists = new Map<string, number[]>()
  for (const m of masters) {
    if (lists.has(m.id)) throw new ClusterError(`master ${m.id} is listed twice`)
    const list = slotList(m.slots)
    for (const s of list) {
      if (!Number.isInteger(s) || s < 0 || s >= CLUSTER_SLOTS) throw new ClusterError(`master ${m.id} lists slot ${s}, outside 0-${CLUSTER_SLOTS - 1}`)
      if (owner[s] !== undefined) throw new ClusterError(`slot ${s} is claimed by both ${owner[s]} and ${m.id}: settle open slots before rebalancing`)
      owner[s] = m.id
    }
    lists.set(m.id, list)
  }
  let uncovered = 0
  for (let s = 0; s < CLUSTER_SLOTS; s++) if (owner[s] === undefined) uncovered++
  if (uncovered > 0) throw new ClusterError(`${uncovered} slot(s) have no owner: the cluster must cover all ${CLUSTER_SLOTS} slots before it can be rebalanced`)
  const stay = masters.filter((m) => !gone.has(m.id))
  if (stay.length === 0) throw new ClusterError('no master would be left to hold the slots', {hint: 'keep at least one master host in the inventory'})
  if (stay.length > CLUSTER_SLOTS) throw new ClusterError(`${stay.length} masters cannot each own a slot of ${CLUSTER_SLOTS}`)

  const N = stay.length
  const base = Math.floor(CLUSTER_SLOTS / N)
  const extra = CLUSTER_SLOTS - base * N
  // The ⌈⌉ targets go to the masters holding most: that is what minimises the surplus.
  const order = [...stay].sort((a, b) => lists.get(b.id)!.length - lists.get(a.id)!.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const targets: Record<string, number> = {}
  order.forEach((m, i) => (targets[m.id] = base + (i < extra ? 1 : 0)))

  // Surplus taken from the top of each giver's slots, so what a taker gets stays in few ranges.
  const givers: Array<{id: string; slots: number[]}> = []
  for (const m of masters) {
    const list = lists.get(m.id)!
    const give = gone.has(m.id) ? list.length : Math.max(0, list.length - targets[m.id])
    if (give > 0) givers.push({id: m.id, slots: list.slice(list.length - give)})
  }
  const takers = order.filter((m) => lists.get(m.id)!.length < targets[m.id]).map((m) => ({id: m.id, need: targets[m.id] - lists.get(m.id)!.length}))
  takers.sort((a, b) => b.need - a.need || (a.id < b.id ? -1 : 1))

  const moves: SlotMove[] = []
  let t = 0
  let moved = 0
  for (const g of givers) {
    let pos = 0
    while (pos < g.slots.length) {
      const taker = takers[t]
      const n = Math.min(taker.need, g.slots.length - pos)
      moves.push({from: g.id, to: taker.id, slots: g.slots.slice(pos, pos + n)})
      pos += n
      moved += n
      taker.need -= n
      if (taker.need === 0) t++
    }
  }
  return {targets, moves, moved}
}

export interface RoleMaster {
  id: string
  host: string
}

export interface RoleReplica {
  id: string
  host: string
  /** The master it follows now; a leaving or unknown id means it needs a new one. */
  master: string | null
}

export interface RoleInput {
  replicasPerMaster: number
  /** Masters that stay and hold slots. */
  masters: readonly RoleMaster[]
  /** Replicas that stay. */
  replicas: readonly RoleReplica[]
  /** Nodes without a role yet: new nodes, and empty masters that stay. */
  spare: readonly RoleMaster[]
}

export interface RolePlan {
  /** Spare nodes that become masters (rebalancing gives them slots). */
  newMasters: string[]
  /** Final master of every replica (existing and spare), by replica id. */
  masterOf: Record<string, string>
  /** CLUSTER REPLICATE to send: replicas whose master is new or changes. */
  attach: Array<{replica: string; master: string}>
  /** Replicas that share a host with their master or with a sibling (only when unavoidable). */
  sharedHost: Array<{replica: string; master: string; sharesWith: 'master' | 'replica'}>
  warnings: string[]
}

const MASTER_HOST = 1000

// Roles for a live cluster: the number of masters grows with the nodes like planCluster's
// ⌊nodes / (1 + replicas)⌋ (never shrinks: a master with slots is never demoted), spare
// masters spread over the hosts with fewest masters, replicas dealt host-disjointly.
export function planRoles(input: RoleInput): RolePlan {
  const R = input.replicasPerMaster
  if (!Number.isInteger(R) || R < 0) throw new ClusterError(`replicas must be a whole number ≥ 0, got ${R}`)
  const total = input.masters.length + input.replicas.length + input.spare.length
  const want = Math.max(1, Math.floor(total / (R + 1)))
  const M = Math.max(input.masters.length, Math.min(input.masters.length + input.spare.length, want))
  if (M === 0) throw new ClusterError('no node can be a master')
  const {newMasters, spare} = chooseNewMasters(input, M)
  const masters = [...input.masters, ...newMasters]
  const hostOfMaster = new Map(masters.map((m) => [m.id, m.host]))
  const pool: RoleReplica[] = [...input.replicas, ...spare.map((s) => ({id: s.id, host: s.host, master: null}))]
  const children = dealReplicas(masters, hostOfMaster, pool)
  polish(
    masters.map((m) => m.id),
    hostOfMaster,
    children,
  )
  const {masterOf, attach, sharedHost} = rolesOf(masters, children)
  const warnings: string[] = []
  const onMaster = sharedHost.filter((s) => s.sharesWith === 'master').length
  if (onMaster > 0) warnings.push(`${onMaster} replica(s) share a host with their master: losing that host loses those slots`)
  if (sharedHost.length > onMaster) warnings.push(`${sharedHost.length - onMaster} replica(s) share a host with another replica of the same master`)
  if (R > 0 && pool.length < M * R) warnings.push(`${pool.length} replica(s) cannot give ${M} master(s) ${R} replica(s) each`)
  return {newMasters: newMasters.map((m) => m.id), masterOf, attach, sharedHost, warnings}
}

// New masters: each from the host with the fewest masters so far; the rest stay spare.
function chooseNewMasters(input: RoleInput, M: number): {newMasters: RoleMaster[]; spare: RoleMaster[]} {
  const perHost = new Map<string, number>()
  for (const m of input.masters) perHost.set(m.host, (perHost.get(m.host) ?? 0) + 1)
  const spare = [...input.spare]
  const newMasters: RoleMaster[] = []
  while (input.masters.length + newMasters.length < M) {
    let best = 0
    for (let i = 1; i < spare.length; i++) if ((perHost.get(spare[i].host) ?? 0) < (perHost.get(spare[best].host) ?? 0)) best = i
    const [m] = spare.splice(best, 1)
    newMasters.push(m)
    perHost.set(m.host, (perHost.get(m.host) ?? 0) + 1)
  }
  return {newMasters, spare}
}

// Every replica and spare node to a master: quotas of ⌊P/M⌋ each, the +1 to masters that
// keep most of their current replicas, those kept first.
function dealReplicas(masters: readonly RoleMaster[], hostOfMaster: ReadonlyMap<string, string>, pool: readonly RoleReplica[]): Map<string, RoleReplica[]> {
  const M = masters.length
  const P = pool.length
  const base = Math.floor(P / M)
  const extra = P - base * M
  const kept = new Map<string, RoleReplica[]>(masters.map((m) => [m.id, []]))
  for (const r of pool) {
    if (!r.master || !hostOfMaster.has(r.master) || hostOfMaster.get(r.master) === r.host) continue
    const list = kept.get(r.master)!
    if (!list.some((x) => x.host === r.host)) list.push(r)
  }
  const quota = new Map<string, number>()
  const byKept = [...masters].sort((a, b) => kept.get(b.id)!.length - kept.get(a.id)!.length)
  byKept.forEach((m, i) => quota.set(m.id, base + (i < extra ? 1 : 0)))

  const children = new Map<string, RoleReplica[]>(masters.map((m) => [m.id, []]))
  const assigned = new Set<string>()
  for (const m of masters) {
    for (const r of kept.get(m.id)!.slice(0, quota.get(m.id))) {
      children.get(m.id)!.push(r)
      assigned.add(r.id)
    }
  }
  // Everyone else, the most constrained (fewest clean masters) first, each to the
  // cleanest master with room, the one with most room among equals.
  const cost = (r: RoleReplica, m: string): number => (hostOfMaster.get(m) === r.host ? MASTER_HOST : 0) + children.get(m)!.filter((x) => x.host === r.host).length
  const room = (m: string) => quota.get(m)! - children.get(m)!.length
  const options = (r: RoleReplica) => masters.filter((m) => room(m.id) > 0 && cost(r, m.id) === 0).length
  const left = pool.filter((r) => !assigned.has(r.id)).map((r) => ({r, n: options(r)}))
  left.sort((a, b) => a.n - b.n)
  for (const {r} of left) {
    let best: string | undefined
    let bestCost = Infinity
    for (const m of masters) {
      if (room(m.id) <= 0) continue
      const c = cost(r, m.id)
      if (c < bestCost || (c === bestCost && room(m.id) > room(best!))) {
        best = m.id
        bestCost = c
      }
    }
    children.get(best!)!.push(r)
  }
  return children
}

// The dealt sets as the plan states them: who follows whom, what must be attached, and
// which replicas share a host with their master or a sibling.
function rolesOf(masters: readonly RoleMaster[], children: ReadonlyMap<string, RoleReplica[]>): Pick<RolePlan, 'masterOf' | 'attach' | 'sharedHost'> {
  const masterOf: Record<string, string> = {}
  const attach: RolePlan['attach'] = []
  const sharedHost: RolePlan['sharedHost'] = []
  for (const m of masters) {
    const seen = new Set<string>()
    for (const r of children.get(m.id)!) {
      masterOf[r.id] = m.id
      if (r.master !== m.id) attach.push({replica: r.id, master: m.id})
      if (r.host === m.host) sharedHost.push({replica: r.id, master: m.id, sharesWith: 'master'})
      else if (seen.has(r.host)) sharedHost.push({replica: r.id, master: m.id, sharesWith: 'replica'})
      seen.add(r.host)
    }
  }
  return {masterOf, attach, sharedHost}
}

// Pairwise swaps of replicas between masters while that lowers the host clashes.
function polish(masters: readonly string[], hostOf: ReadonlyMap<string, string>, children: Map<string, RoleReplica[]>): void {
  const setCost = (m: string, set: readonly RoleReplica[]): number => {
    let c = 0
    set.forEach((r, i) => {
      if (r.host === hostOf.get(m)) c += MASTER_HOST
      for (let j = 0; j < i; j++) if (set[j].host === r.host) c++
    })
    return c
  }
  // The first replica y of another master b that, swapped with x of a, lowers the clashes.
  const swapFor = (a: string, x: RoleReplica): [string, RoleReplica] | undefined => {
    for (const b of masters) {
      if (b === a) continue
      const y = children.get(b)!.find((y) => {
        if (y.host === x.host) return false
        const setA = children.get(a)!.map((r) => (r === x ? y : r))
        const setB = children.get(b)!.map((r) => (r === y ? x : r))
        return setCost(a, setA) + setCost(b, setB) < setCost(a, children.get(a)!) + setCost(b, children.get(b)!)
      })
      if (y) return [b, y]
    }
    return undefined
  }
  for (let pass = 0; pass < 8; pass++) {
    let improved = false
    for (const a of masters) {
      if (setCost(a, children.get(a)!) === 0) continue
      for (const x of children.get(a)!) {
        const swap = swapFor(a, x)
        if (swap) {
          const [b, y] = swap
          children.set(
            a,
            children.get(a)!.map((r) => (r === x ? y : r)),
          )
          children.set(
            b,
            children.get(b)!.map((r) => (r === y ? x : r)),
          )
          improved = true
        }
        // Once a pass has improved, later masters only try their first replica.
        if (improved) break
      }
    }
    if (!improved) return
  }
}
