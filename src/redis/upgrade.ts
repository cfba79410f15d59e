// Rolling Redis version upgrades: which nodes run another version than the declared one
// (their own INFO server is the truth, never a file), and in which order they move to the
// new binary. Pure: the module (src/modules/redis/upgrade.ts) reads the nodes and acts.
//
// The replication format only goes forward: a newer replica loads an older master's RDB,
// a 5.0 replica cannot load a 7.x one. So per shard: every old replica restarts on the new
// binary first (it resyncs from the still-old master), the master role then moves by
// CLUSTER FAILOVER to an upgraded replica, and the old master restarts on the new binary
// as that replica's replica. Between the role swap and its restart the old master is a
// replica of an upgraded one: the module fences it first (a masterauth no master accepts),
// so that it cannot even start a sync in that window.
import type {RestartNode} from './config.js'

export interface VersionedNode extends RestartNode {
  /** INFO server redis_version; undefined when the node did not answer. */
  version?: string
  /** INFO server executable: the redis-server it was started from. */
  executable?: string
}

export type UpgradeStep = {kind: 'restart'; addr: string; as: 'replica' | 'master' | 'alone'; from: string; save?: boolean} | {kind: 'failover'; master: string; replica: string}

export interface UpgradePlan {
  target: string
  /** Per shard, in order; shards are independent. Empty when every node runs the target. */
  shards: UpgradeStep[][]
  /** Nodes whose upgrade is refused, and why: when any, nothing is done at all. */
  refused: Array<{addr: string; why: string}>
  /** Masters restarted in place (no replica to hand over to): clients of their slots wait. */
  downtime: string[]
  /** addr → running version, for every node inspected. */
  versions: Record<string, string>
}

/** Numeric comparison of "x.y.z" versions. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

export interface UpgradeOptions {
  /** Restart a master without a replica in place (SHUTDOWN SAVE, then the new binary loads that RDB). */
  allowDowntime?: boolean
  /** Go down to an older version that writes the same RDB format (a newer one is never possible). */
  allowDowngrade?: boolean
  /** addr → the directory the target version's redis-server is built into on that node's host. */
  binDirOf?: (addr: string) => string | undefined
}

/**
 * The RDB format version a Redis release writes (rdb.h RDB_VERSION): a release loads its
 * own format and older ones only.
 */
export function rdbFormat(version: string): number {
  const [maj, min] = version.split('.').map(Number)
  if (maj > 7 || (maj === 7 && min >= 4)) return 12
  if (maj === 7) return min >= 2 ? 11 : 10
  if (maj >= 5) return 9
  return maj === 4 ? 8 : 7
}

// Why a node may not move to target (a downgrade, a build that would overwrite its binary).
export function refusal(n: VersionedNode, target: string, opts: UpgradeOptions): string | undefined {
  if (n.role === 'unknown' || !n.version) return `could not be inspected (${n.error ?? 'no version'}): its version and role are unknown`
  if (n.version === target) return undefined
  const bin = opts.binDirOf?.(n.addr)
  if (bin && n.executable && n.executable.replace(/\/[^/]*$/, '') === bin)
    return `runs ${n.version} from ${n.executable}, and redis_bin_dir ${bin} is where ${target} would be built, over the binary it runs: set redis_bin_dir to a directory of its own per version (the default "~/redis/{{ redis_version }}/bin" is)`
  if (compareVersions(n.version, target) < 0) return undefined
  if (rdbFormat(n.version) !== rdbFormat(target))
    return `runs ${n.version}, newer than redis_version ${target}: a downgrade across RDB formats is refused, no flag allows it (${n.version} writes RDB format ${rdbFormat(n.version)}, which ${target} cannot load, so no replica could sync); set redis_version to ${n.version}`
  if (!opts.allowDowngrade)
    return `runs ${n.version}, newer than redis_version ${target}: a downgrade is refused (rerun with --allow-downgrade: both write RDB format ${rdbFormat(target)}, but ${target} may lack commands your clients use or directives your redis.conf has)`
  return undefined
}

interface Shard {
  master?: VersionedNode
  replicas: VersionedNode[]
}

function shardsOf(nodes: readonly VersionedNode[]): Array<[string, Shard]> {
  const shards = new Map<string, Shard>()
  const key = (n: VersionedNode) => (n.role === 'replica' ? (n.masterAddr ?? `?${n.addr}`) : n.addr)
  for (const n of nodes) {
    const s = shards.get(key(n)) ?? {replicas: []}
    if (n.role === 'replica') s.replicas.push(n)
    else s.master = n
    shards.set(key(n), s)
  }
  return [...shards].sort(([a], [b]) => a.localeCompare(b))
}

// One shard's steps; refusals are pushed to `refused`.
function shardSteps(s: Shard, target: string, opts: UpgradeOptions, plan: UpgradePlan): UpgradeStep[] {
  const old = (n: VersionedNode) => n.version !== target
  const steps: UpgradeStep[] = s.replicas
    .filter(old)
    .sort((x, y) => x.addr.localeCompare(y.addr))
    .map((r) => ({kind: 'restart', addr: r.addr, as: 'replica', from: r.version!}))
  const m = s.master
  if (!m || !old(m)) return steps
  // Every replica of this shard is on the target once its steps above are done.
  const target1 = m.healthyReplicas.slice().sort()[0]
  if (m.role === 'master' && target1) {
    steps.push({kind: 'failover', master: m.addr, replica: target1}, {kind: 'restart', addr: m.addr, as: 'replica', from: m.version!})
  } else if (opts.allowDowntime) {
    steps.push({kind: 'restart', addr: m.addr, as: m.role === 'alone' ? 'alone' : 'master', from: m.version!, save: true})
    plan.downtime.push(m.addr)
  } else {
    plan.refused.push({
      addr: m.addr,
      why: `master on ${m.version} with no healthy replica to hand its slots to: a restart on ${target} stops its slots' writes (rerun with --allow-downtime to restart it in place after SHUTDOWN SAVE, or give it a replica first: redis_replicas ≥ 1)`,
    })
  }
  return steps
}

/**
 * The upgrade of `nodes` to `target`. Refused (nothing at all is done) when a node did not
 * answer, runs a newer version (RDB formats are not backward compatible: only a downgrade
 * within one RDB format, with allowDowngrade), runs from the directory the target would be
 * built into, or is a master with no replica and allowDowntime is not given.
 */
export function planUpgrade(nodes: readonly VersionedNode[], target: string, opts: UpgradeOptions = {}): UpgradePlan {
  const plan: UpgradePlan = {target, shards: [], refused: [], downtime: [], versions: {}}
  for (const n of nodes) if (n.version) plan.versions[n.addr] = n.version
  // No node known to run another version: nothing to upgrade, and a node that did not
  // answer is for the other tasks to judge (the next up sees its version).
  if (!nodes.some((n) => n.version && n.version !== target)) return plan
  for (const n of nodes) {
    const why = refusal(n, target, opts)
    if (why) plan.refused.push({addr: n.addr, why})
  }
  const unknown = new Set(plan.refused.map((r) => r.addr))
  for (const [, s] of shardsOf(nodes)) {
    if ((s.master && unknown.has(s.master.addr)) || s.replicas.some((r) => unknown.has(r.addr))) continue
    const steps = shardSteps(s, target, opts, plan)
    if (steps.length) plan.shards.push(steps)
  }
  if (plan.refused.length) plan.shards = []
  return plan
}

/**
 * Replays a plan over the nodes' roles and versions and returns every moment where a node
 * on an older version than its master would replicate from it (empty: the plan is safe).
 * The fence the module puts on a master before its failover counts: a fenced node syncs
 * from no one until its restart.
 */
export function replicationViolations(nodes: readonly VersionedNode[], plan: UpgradePlan): string[] {
  const version = new Map(nodes.map((n) => [n.addr, n.version ?? '0']))
  const masterOf = new Map(nodes.filter((n) => n.role === 'replica').map((n) => [n.addr, n.masterAddr]))
  const fenced = new Set<string>()
  const out: string[] = []
  const check = (when: string) => {
    for (const [r, m] of masterOf) {
      if (!m || fenced.has(r)) continue
      if (compareVersions(version.get(r)!, version.get(m)!) < 0) out.push(`${when}: ${r} (${version.get(r)}) replicates ${m} (${version.get(m)})`)
    }
  }
  for (const steps of plan.shards) {
    for (const s of steps) {
      if (s.kind === 'restart') {
        version.set(s.addr, plan.target)
        fenced.delete(s.addr)
        check(`after restarting ${s.addr}`)
      } else {
        fenced.add(s.master)
        // The swap: the replica becomes master, the old master and its siblings replicate it.
        for (const [r, m] of masterOf) if (m === s.master && r !== s.replica) masterOf.set(r, s.replica)
        masterOf.delete(s.replica)
        masterOf.set(s.master, s.replica)
        check(`after failover ${s.master} → ${s.replica}`)
      }
    }
  }
  return out
}
