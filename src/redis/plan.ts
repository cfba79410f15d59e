import {ClusterError} from '../errors.js'
import {CLUSTER_SLOTS, nodeAddr, type SlotRange} from './nodes.js'

// The cluster layout as a pure function of the inventory, so the same inventory always
// yields the same plan (re-runs can recognise an interrupted formation of *this* plan)
// and every invariant is unit-testable without a server:
// - masters interleaved across hosts (host A, B, C, A, B, C, …) like redis-cli, so each
//   host carries ⌊M/H⌋ or ⌈M/H⌉ masters;
// - slots split into contiguous ranges of ⌊16384/M⌋ or ⌈16384/M⌉, rounded the way
//   redis-cli rounds (3 masters: 0-5460, 5461-10922, 10923-16383);
// - each replica on a host other than its master's and its siblings', when the fleet
//   allows; placements that could not be host-disjoint are listed, never hidden;
// - config epochs 1..N, distinct, so no epoch-collision round is needed after MEET.

export interface ClusterNode {
  /** Inventory host name: host-disjointness is about machines, not IPs. */
  host: string
  /** Numeric IP the other nodes use (MEET on 5.0.x refuses names). */
  ip: string
  port: number
}

export interface PlannedMaster extends ClusterNode {
  addr: string
  slots: SlotRange[]
  slotCount: number
  epoch: number
  /** Addresses of its replicas. */
  replicas: string[]
}

export interface PlannedReplica extends ClusterNode {
  addr: string
  /** Address of its master. */
  master: string
  epoch: number
}

/** A replica placed on a host it shares with its master or with a sibling replica. */
export interface SharedHostPlacement {
  replica: string
  master: string
  host: string
  sharesWith: 'master' | 'replica'
}

export interface HostCounts {
  masters: number
  replicas: number
}

export interface ClusterPlan {
  replicasPerMaster: number
  masters: PlannedMaster[]
  replicas: PlannedReplica[]
  /** Every node MEETs this one (the first master). */
  seed: string
  sharedHost: SharedHostPlacement[]
  perHost: Record<string, HostCounts>
  warnings: string[]
}

export {nodeAddr}

// redis-cli's rounding, in integers: master i starts at round(i * 16384 / M).
export function splitSlots(masters: number): SlotRange[] {
  if (!Number.isInteger(masters) || masters < 1 || masters > CLUSTER_SLOTS) {
    throw new ClusterError(`cannot split ${CLUSTER_SLOTS} slots over ${masters} masters`)
  }
  const start = (i: number) => Math.floor((2 * i * CLUSTER_SLOTS + masters) / (2 * masters))
  const out: SlotRange[] = []
  for (let i = 0; i < masters; i++) out.push([start(i), start(i + 1) - 1])
  return out
}

// Round-robin over hosts in first-seen order, so any prefix is spread as evenly as the fleet allows.
export function interleaveByHost<T extends {host: string}>(nodes: readonly T[]): T[] {
  const groups = new Map<string, T[]>()
  for (const n of nodes) {
    let g = groups.get(n.host)
    if (!g) groups.set(n.host, (g = []))
    g.push(n)
  }
  const lists = [...groups.values()]
  const out: T[] = []
  for (let i = 0; out.length < nodes.length; i++) for (const g of lists) if (i < g.length) out.push(g[i])
  return out
}

// Deterministic and pure: the same inventory and replica count always give the same plan.
export function planCluster(nodes: readonly ClusterNode[], replicas: number): ClusterPlan {
  if (!Number.isInteger(replicas) || replicas < 0) throw new ClusterError(`replicas must be a whole number ≥ 0, got ${replicas}`)
  if (nodes.length === 0) throw new ClusterError('no Redis nodes to plan: the play has no hosts, or redis_count is 0')
  const seen = new Map<string, ClusterNode>()
  for (const n of nodes) {
    if (!Number.isInteger(n.port) || n.port < 1 || n.port > 55535) {
      throw new ClusterError(`node ${n.host} has port ${n.port}: it must be 1-55535 (the cluster bus uses port + 10000)`, {where: {host: n.host}})
    }
    if (!n.ip) throw new ClusterError(`node ${n.host}:${n.port} has no IP address`, {where: {host: n.host}})
    const addr = nodeAddr(n)
    const dup = seen.get(addr)
    if (dup) {
      throw new ClusterError(`${addr} is listed twice (hosts ${dup.host} and ${n.host})`, {
        where: {host: n.host},
        hint: 'two inventory hosts resolve to the same IP with overlapping redis ports; fix redis_bind, ansible_host or redis_port_start',
      })
    }
    seen.set(addr, n)
  }

  const N = nodes.length
  const M = Math.min(CLUSTER_SLOTS, Math.max(1, Math.floor(N / (replicas + 1))))
  const ranges = splitSlots(M)
  const hosts = groupByHost(nodes)
  const {masterNodes, pool, children} = placeNodes(hosts, N, M)

  const epochOfMaster = (m: number) => m + 1
  const masters: PlannedMaster[] = masterNodes.map((n, m) => ({
    host: n.host,
    ip: n.ip,
    port: n.port,
    addr: nodeAddr(n),
    slots: [ranges[m]],
    slotCount: ranges[m][1] - ranges[m][0] + 1,
    epoch: epochOfMaster(m),
    replicas: [],
  }))
  const planned: PlannedReplica[] = []
  const sharedHost: SharedHostPlacement[] = []
  // Output order: by master, then by assignment order, so the plan reads naturally.
  let epoch = M
  for (let m = 0; m < M; m++) {
    const seenHosts = new Set<string>()
    for (const k of children[m]) {
      const n = pool[k]
      const addr = nodeAddr(n)
      planned.push({host: n.host, ip: n.ip, port: n.port, addr, master: masters[m].addr, epoch: ++epoch})
      masters[m].replicas.push(addr)
      if (n.host === masters[m].host) sharedHost.push({replica: addr, master: masters[m].addr, host: n.host, sharesWith: 'master'})
      else if (seenHosts.has(n.host)) sharedHost.push({replica: addr, master: masters[m].addr, host: n.host, sharesWith: 'replica'})
      seenHosts.add(n.host)
    }
  }

  const perHost: Record<string, HostCounts> = {}
  for (const n of nodes) perHost[n.host] ??= {masters: 0, replicas: 0}
  for (const m of masters) perHost[m.host].masters++
  for (const r of planned) perHost[r.host].replicas++

  const warnings: string[] = []
  if (replicas > 0 && planned.length < M * replicas) {
    warnings.push(`${N} node(s) cannot give ${M} master(s) ${replicas} replica(s) each: planned ${planned.length} replica(s)`)
  }
  if (planned.length > M * replicas) {
    warnings.push(`${planned.length - M * replicas} node(s) beyond ${M} × (1 + ${replicas}) became extra replicas`)
  }
  if (replicas > 0 && M < 3) {
    warnings.push(`only ${M} master(s): automatic failover needs a majority of at least 3 masters`)
  }
  const onMasterHost = sharedHost.filter((s) => s.sharesWith === 'master').length
  if (onMasterHost > 0) warnings.push(`${onMasterHost} replica(s) share a host with their master: losing that host loses those slots`)
  const onSiblingHost = sharedHost.length - onMasterHost
  if (onSiblingHost > 0) warnings.push(`${onSiblingHost} replica(s) share a host with another replica of the same master`)

  return {replicasPerMaster: replicas, masters, replicas: planned, seed: masters[0].addr, sharedHost, perHost, warnings}
}

interface HostGroup {
  name: string
  nodes: ClusterNode[]
}

function groupByHost(nodes: readonly ClusterNode[]): HostGroup[] {
  const groups = new Map<string, HostGroup>()
  for (const n of nodes) {
    let g = groups.get(n.host)
    if (!g) groups.set(n.host, (g = {name: n.host, nodes: []}))
    g.nodes.push(n)
  }
  return [...groups.values()]
}

// Who is a master and who replicates whom. Works at host level first, where
// "no replica on its master's host" is a transportation problem with a forbidden
// diagonal: with P replicas in total, host h can be served from other hosts iff
// demand(h) + supply(h) ≤ P. Masters are dealt round-robin (even spread) as long as
// that stays true; replica units are then moved host→host keeping it true, so the
// master-host rule is only broken when no layout with this spread could keep it.
function placeNodes(hosts: readonly HostGroup[], N: number, M: number): {masterNodes: ClusterNode[]; pool: ClusterNode[]; children: number[][]} {
  const H = hosts.length
  const n = hosts.map((h) => h.nodes.length)
  const P = N - M
  // Every master gets base or base + 1 replicas; E of them get the + 1.
  const base = Math.floor(P / M)
  // demand(h) + supply(h) ≤ P  ⇔  (base - 1)·m_h + e_h ≤ P - n_h
  const shape: HostShape = {H, n, P, M, base, E: P - base * M, room: n.map((c) => P - c)}
  const m = dealMasters(shape)
  spreadMasters(shape, m)
  const e = extraReplicas(shape, m)

  // Masters: each host's first m_h nodes, interleaved across hosts; those with an
  // extra replica first within their host so the dealing below stays simple.
  const hostMasters = hosts.map((g, h) => g.nodes.slice(0, m[h]))
  const masterNodes = interleaveByHost(hostMasters.flat())
  const masterIndex = new Map(masterNodes.map((node, i) => [node, i]))
  const count = masterNodes.map(() => base)
  hostMasters.forEach((list, h) => list.slice(0, e[h]).forEach((node) => count[masterIndex.get(node)!]++))
  const supplyNodes = hosts.map((g, h) => g.nodes.slice(m[h]))
  const x = hostFlow(
    shape,
    m,
    e,
    supplyNodes.map((list) => list.length),
  )
  const bins = hostMasters.map((list) => list.map((node) => masterIndex.get(node)!))
  const {pool, children} = dealUnits(masterNodes.length, bins, count, supplyNodes, x)
  if (H > 1)
    polishBySwaps(
      pool,
      masterNodes.map((x) => x.host),
      children,
    )
  return {masterNodes, pool, children}
}

/** Host sizes and the replica arithmetic every placement step shares. */
interface HostShape {
  H: number
  /** Nodes per host. */
  n: number[]
  /** Replicas in total. */
  P: number
  M: number
  base: number
  /** Masters that get base + 1 replicas. */
  E: number
  /** P - n_h: host h keeps the rule while (base - 1)·m_h + e_h ≤ room_h. */
  room: number[]
}

// Masters per host, round-robin as long as every host can still be served from others.
function dealMasters({H, n, M, base, room}: HostShape): number[] {
  const m = new Array<number>(H).fill(0)
  let turn = 0
  for (let k = 0; k < M; k++) {
    let chosen = -1
    for (let i = 0; i < H && chosen < 0; i++) {
      const h = (turn + i) % H
      if (m[h] < n[h] && (base < 2 || (base - 1) * (m[h] + 1) <= room[h])) chosen = h
    }
    if (chosen < 0) {
      // No host can take a master without breaking the rule somewhere: break it least.
      let best = -Infinity
      for (let i = 0; i < H; i++) {
        const h = (turn + i) % H
        const v = room[h] - (base - 1) * (m[h] + 1)
        if (m[h] < n[h] && v > best) {
          best = v
          chosen = h
        }
      }
    }
    m[chosen]++
    turn = chosen + 1
  }
  return m
}

// Round-robin ignores the extra replicas (N beyond M × (1 + R)); move single masters
// between hosts while that lowers how far the rule would be broken.
function spreadMasters({H, n, base, E, room}: HostShape, m: number[]): void {
  const violation = (mm: readonly number[]): number => {
    let v = 0
    let extraRoom = 0
    for (let h = 0; h < H; h++) {
      const r = room[h] - (base - 1) * mm[h]
      if (r < 0) v += -r
      else extraRoom += Math.min(mm[h], r)
    }
    return v + Math.max(0, E - extraRoom)
  }
  let current = violation(m)
  while (current > 0) {
    let best = current
    let move: [number, number] | undefined
    for (let a = 0; a < H; a++) {
      if (m[a] === 0) continue
      for (let b = 0; b < H; b++) {
        if (b === a || m[b] >= n[b]) continue
        m[a]--
        m[b]++
        const v = violation(m)
        m[a]++
        m[b]--
        if (v < best) {
          best = v
          move = [a, b]
        }
      }
    }
    if (!move) break
    m[move[0]]--
    m[move[1]]++
    current = best
  }
}

// Which hosts' masters get the E extra replicas: where the most room is left.
function extraReplicas({H, E, base, room}: HostShape, m: readonly number[]): number[] {
  const e = new Array<number>(H).fill(0)
  for (let k = 0; k < E; k++) {
    let chosen = -1
    let best = -Infinity
    for (let h = 0; h < H; h++) {
      if (e[h] >= m[h]) continue
      const v = room[h] - (base - 1) * m[h] - e[h] - 1
      if (v > best) {
        best = v
        chosen = h
      }
    }
    e[chosen]++
  }

  return e
}

// Host-level flow x[h][g]: replicas on host g serving masters on host h.
function hostFlow({H, P, base}: HostShape, m: readonly number[], e: readonly number[], supply: readonly number[]): number[][] {
  const d = m.map((mh, h) => base * mh + e[h])
  const p = [...supply]
  const x = m.map(() => new Array<number>(H).fill(0))
  let left = P
  while (left > 0) {
    // The tightest host with demand is served first, and a host that is tight too (it
    // could not be served, or has nothing but supply left) must be the supplier: any
    // other move would leave it with more demand + supply than replicas remain.
    let h = -1
    for (let j = 0; j < H; j++) if (d[j] > 0 && (h < 0 || d[j] + p[j] > d[h] + p[h])) h = j
    let g = -1
    for (let j = 0; j < H && g < 0; j++) if (j !== h && p[j] > 0 && d[j] + p[j] >= left) g = j
    // Otherwise prefer sources that keep siblings apart, then the fullest.
    if (g < 0) {
      let bestKey = -Infinity
      for (let j = 0; j < H; j++) {
        if (j === h || p[j] === 0) continue
        const key = (x[h][j] < m[h] ? 1e9 : 0) + p[j]
        if (key > bestKey) {
          bestKey = key
          g = j
        }
      }
    }
    if (g < 0) g = h // only the master's own host has nodes left
    x[h][g]++
    d[h]--
    p[g]--
    left--
  }

  return x
}

// Within a host, deal its replica units to its masters row by row, largest source
// host first, so no master gets two replicas from one host unless a source sends
// more units than the host has masters.
function dealUnits(
  masters: number,
  hostBins: readonly number[][],
  count: readonly number[],
  supplyNodes: readonly ClusterNode[][],
  x: readonly number[][],
): {pool: ClusterNode[]; children: number[][]} {
  const children: number[][] = Array.from({length: masters}, () => [])
  const pool: ClusterNode[] = []
  const next = supplyNodes.map(() => 0)
  for (let h = 0; h < hostBins.length; h++) {
    const bins = hostBins[h]
    if (bins.length === 0) continue
    const units: number[] = []
    const sources = [...x[h].keys()].filter((g) => x[h][g] > 0).sort((a, b) => x[h][b] - x[h][a] || a - b)
    for (const g of sources) for (let k = 0; k < x[h][g]; k++) units.push(g)
    let u = 0
    for (let row = 0; u < units.length; row++) {
      for (const b of bins) {
        if (row >= count[b] || u >= units.length) continue
        const g = units[u++]
        const node = supplyNodes[g][next[g]++]
        children[b].push(pool.length)
        pool.push(node)
      }
    }
  }
  return {pool, children}
}

// Same-host-as-master must outweigh any number of sibling clashes.
const MASTER_HOST_COST = 1000

// The dealing above keeps the master-host rule whenever it can be kept; pairwise swaps
// of replicas between masters then remove sibling clashes it left behind.
function polishBySwaps(pool: readonly ClusterNode[], masterHosts: readonly string[], children: number[][]): void {
  const setCost = (m: number, set: readonly number[]): number => {
    let c = 0
    for (let i = 0; i < set.length; i++) {
      const h = pool[set[i]].host
      if (h === masterHosts[m]) c += MASTER_HOST_COST
      for (let j = 0; j < i; j++) if (pool[set[j]].host === h) c++
    }
    return c
  }
  const masterOf = new Array<number>(pool.length)
  children.forEach((set, m) => set.forEach((k) => (masterOf[k] = m)))
  const costs = children.map((set, m) => setCost(m, set))
  for (let pass = 0; pass < 8; pass++) {
    let improved = false
    for (let x = 0; x < pool.length; x++) {
      const mx = masterOf[x]
      if (costs[mx] === 0) continue
      for (let y = 0; y < pool.length; y++) {
        const my = masterOf[y]
        if (my === mx || pool[y].host === pool[x].host) continue
        const setX = children[mx].map((k) => (k === x ? y : k))
        const setY = children[my].map((k) => (k === y ? x : k))
        const cX = setCost(mx, setX)
        const cY = setCost(my, setY)
        if (cX + cY < costs[mx] + costs[my]) {
          children[mx] = setX
          children[my] = setY
          costs[mx] = cX
          costs[my] = cY
          masterOf[x] = my
          masterOf[y] = mx
          improved = true
          break
        }
      }
    }
    if (!improved) return
  }
}
