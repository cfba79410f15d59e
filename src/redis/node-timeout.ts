import {forEachNode, nodeError} from './helpers.js'
import {describeRedisError, type NodePool} from './pool.js'
import type {ClusterNode} from './plan.js'
import type {ClusterProblem, NodeProbe, NodeProbeOk} from './status.js'

// Formation under a short cluster-node-timeout, and its undoing. Redis keeps a master
// that just got its first slots in cluster_state:fail for min(node timeout, 5 s) (the
// rejoin delay of clusterUpdateState) and learns a late peer's slots from its next ping,
// sent every node timeout / 2: both shrink with the timeout. A formation is the one
// moment a short timeout costs nothing (no data, no clients), so fresh nodes form under
// one and get the declared value back once every node says cluster_state:ok. A run that
// dies in between leaves nodes on the short value: every probe reads the runtime value
// (CONFIG GET in the probe's pipeline), so the next up/status/--check sees the drift.

/** Below this the bus pings every peer every 0.5 s and a 1 s stall on a loaded host already marks a node failed. */
export const FORMING_TIMEOUT_FLOOR_MS = 1000
/**
 * Bus pings per second the whole fleet may send while forming. A node pings every peer it
 * has not heard from in node timeout / 2, so N nodes send about 2·N·(N-1)/timeout pings a
 * second (and as many pongs, each ~2 KB of slot bitmap plus gossip). 200 nodes at the
 * default 5000 ms already send ~16,000/s on the benchmark's 2 cores; the budget keeps any
 * fleet at about that, instead of the 80,000/s a fixed 1000 ms would mean at 200 nodes.
 */
export const FORMING_PING_BUDGET = 20_000

/**
 * The node timeout to form N nodes under: max(1000, 2·N·(N-1)·1000 / budget) ms, i.e.
 * max(1000, N(N-1)/10): 1000 ms up to ~100 nodes, ~4 s at 200, the declared value from
 * ~220 on. Undefined when it would not be shorter than the declared one (nothing to gain).
 */
export function formingNodeTimeoutMs(n: number, declaredMs: number | undefined): number | undefined {
  if (declaredMs === undefined || !(declaredMs > 0)) return undefined
  const ms = Math.max(FORMING_TIMEOUT_FLOOR_MS, Math.ceil((2 * n * Math.max(0, n - 1) * 1000) / FORMING_PING_BUDGET))
  return ms < declaredMs ? ms : undefined
}

// A node just started from nothing: alone, no slots, no keys, no epoch. Only these get the
// short timeout: a node that holds anything is someone's cluster (or data) already.
export function freshNode(p: NodeProbeOk): boolean {
  return p.view.lines === 1 && p.myself.slots.length === 0 && p.dbsize === 0 && p.myself.configEpoch === 0
}

/** Largest fleet whose formation MEETs every pair directly (see meetPairs). */
export const MESH_MAX = 250
/** Beyond MESH_MAX: how many seeds every node MEETs. */
export const MESH_SEEDS = 16

/**
 * Who MEETs whom on a fresh formation. Up to MESH_MAX nodes, every unordered pair once
 * (node i MEETs the next ⌊(N-1)/2⌋ in a ring, plus the opposite node when N is even and i
 * is in the first half): each node sends ~N/2 MEETs and knows everyone as soon as the
 * handshakes complete, instead of waiting for gossip to carry ~N/10 peers per ping (the
 * coupon-collector tail that took ~4 s at 200 nodes). The links are those a formed
 * cluster holds anyway, so the mesh only moves their handshakes to the start: N(N-1)/2
 * handshakes, 31,125 at 250. Above that the burst of handshakes on a few cores outlasts a
 * short handshake timeout, so every node MEETs MESH_SEEDS seeds (the seeds know everyone
 * at once, gossip from 16 of them spreads the rest) and the laggard nudge does the tail.
 */
export function meetPairs(addrs: readonly string[], seed: string): Array<[string, string]> {
  const n = addrs.length
  const out: Array<[string, string]> = []
  if (n <= MESH_MAX) {
    const half = Math.floor((n - 1) / 2)
    for (let i = 0; i < n; i++) {
      for (let k = 1; k <= half; k++) out.push([addrs[i], addrs[(i + k) % n]])
      if (n % 2 === 0 && i < n / 2) out.push([addrs[i], addrs[i + n / 2]])
    }
    return out
  }
  const at = Math.max(0, addrs.indexOf(seed))
  // Seeds spread over the list (the inventory order interleaves hosts), the planned seed first.
  const seeds = Array.from({length: MESH_SEEDS}, (_, k) => addrs[(at + Math.floor((k * n) / MESH_SEEDS)) % n])
  const isSeed = new Set(seeds)
  for (let i = 0; i < seeds.length; i++) for (let j = i + 1; j < seeds.length; j++) out.push([seeds[i], seeds[j]])
  for (const a of addrs) if (!isSeed.has(a)) for (const s of seeds) out.push([a, s])
  return out
}

/** How many MEETs meetPairs sends for N fresh nodes (what check mode counts). */
export function freshMeets(n: number): number {
  if (n <= MESH_MAX) return (n * (n - 1)) / 2
  return (MESH_SEEDS * (MESH_SEEDS - 1)) / 2 + (n - MESH_SEEDS) * MESH_SEEDS
}

/** The declared cluster-node-timeout of a node (from its host's variables), undefined when not known. */
export type DeclaredTimeout = (node: ClusterNode) => number | undefined

// From each host's redis_cluster_node_timeout (what its redis.conf is rendered with).
export function declaredNodeTimeouts(hosts: ReadonlyArray<{host: string; vars: Record<string, unknown>}>): DeclaredTimeout {
  const by = new Map<string, number>()
  for (const h of hosts) {
    const v = Number(h.vars.redis_cluster_node_timeout)
    if (h.vars.redis_cluster_node_timeout !== undefined && h.vars.redis_cluster_node_timeout !== '' && Number.isInteger(v) && v > 0) by.set(h.host, v)
  }
  return (node) => by.get(node.host)
}

export interface TimeoutDrift {
  node: ClusterNode
  addr: string
  have: number
  want: number
}

// Nodes whose runtime value is not the declared one (a formation that never got to
// restore it, or a CONFIG SET by hand). Nodes whose value could not be read are not judged.
export function timeoutDrift(probes: readonly NodeProbe[], declared: DeclaredTimeout | undefined): TimeoutDrift[] {
  if (!declared) return []
  const out: TimeoutDrift[] = []
  for (const p of probes) {
    if (p.error !== undefined || p.nodeTimeoutMs === undefined) continue
    const want = declared(p.node)
    if (want !== undefined && p.nodeTimeoutMs !== want) out.push({node: p.node, addr: p.addr, have: p.nodeTimeoutMs, want})
  }
  return out
}

export function driftProblems(drift: readonly TimeoutDrift[]): ClusterProblem[] {
  const shown = drift.slice(0, 10).map((d) => ({
    kind: 'node-timeout' as const,
    node: d.addr,
    text: `${d.addr} (host ${d.node.host}) runs with cluster-node-timeout ${d.have}, declared ${d.want} (a formation interrupted before restoring it, or a change not applied yet): run up to restore it`,
  }))
  return drift.length > 10 ? [...shown, {kind: 'node-timeout', text: `… and ${drift.length - 10} more node(s) with a cluster-node-timeout other than declared`}] : shown
}

// "1000 on 7 node(s), 4000 on 1": what the nodes run now, for one line.
export function driftSummary(drift: readonly TimeoutDrift[]): string {
  const by = new Map<number, number>()
  for (const d of drift) by.set(d.have, (by.get(d.have) ?? 0) + 1)
  return [...by].map(([v, k]) => `${v} on ${k} node(s)`).join(', ')
}

// CONFIG SET (one parameter per call: 5.0.3 takes no more) and CONFIG GET in one pipeline
// per node; a node that refuses or reads back anything else fails the step by name.
export async function setNodeTimeouts(pool: NodePool, targets: ReadonlyArray<{node: ClusterNode; ms: number}>, concurrency: number, password?: string): Promise<void> {
  await forEachNode(targets, concurrency, async ({node, ms}) => {
    let got: string
    try {
      const res = (await pool.run(node, (r) => r.pipeline().call('CONFIG', 'SET', 'cluster-node-timeout', String(ms)).call('CONFIG', 'GET', 'cluster-node-timeout').exec())) ?? []
      for (const [err] of res) if (err) throw err
      got = String((res[1][1] as string[])[1])
    } catch (error) {
      throw nodeError(node, `CONFIG SET cluster-node-timeout ${ms} failed: ${describeRedisError(error, password)}`, 'run up again: it restores the declared value')
    }
    if (got !== String(ms)) throw nodeError(node, `cluster-node-timeout reads ${got} after CONFIG SET ${ms}`, 'run up again: it restores the declared value')
  })
}
