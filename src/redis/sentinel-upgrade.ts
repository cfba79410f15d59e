// Rolling version upgrade of a Sentinel deployment (redis_topology: sentinel): which
// instances and Sentinels run another version than the declared one (their own INFO server
// says so, never a file) and in which order they move to the new binary. Pure: the module
// (src/modules/redis/sentinel-upgrade.ts) reads the live state and carries the steps out.
//
// The replication format only goes forward: a 7.x replica loads a 5.0 master's RDB, a 5.0
// replica cannot load a 7.x one. So per group, one group at a time: every old replica
// restarts on the new binary first (it resyncs from the still-old master); then the
// planned, fenced failover (src/redis/sentinel-failover.ts) hands the master role to one of
// those upgraded replicas; the old master, fenced from syncing before that failover (a
// masterauth no master accepts), restarts on the new binary as a replica of the new master.
// No old instance ever has an upgraded master it could sync from. The Sentinels go last,
// one at a time, so a majority always runs.
import {compareVersions, refusal, type VersionedNode} from './upgrade.js'

export interface MemberState {
  addr: string
  /** Answered at all (a dead member is started on the new binary by the instances task). */
  alive: boolean
  role?: 'master' | 'replica'
  /** A replica's master. */
  masterAddr?: string
  version?: string
  executable?: string
  error?: string
}

export interface GroupState {
  name: string
  /** The master every answering Sentinel names and that says ROLE master; undefined otherwise. */
  master?: string
  /** How many replicas the layout gives it (redis_replicas). */
  layoutReplicas: number
  members: MemberState[]
}

export interface SentinelNodeState {
  addr: string
  alive: boolean
  version?: string
  executable?: string
}

export type SentinelUpgradeStep =
  | {kind: 'replica'; group: string; addr: string; from: string; master: string}
  | {kind: 'failover'; group: string; master: string}
  | {kind: 'old-master'; group: string; addr: string; from: string}
  | {kind: 'in-place'; group: string; addr: string; from: string}
  | {kind: 'sentinel'; addr: string; from: string}

export interface SentinelUpgradePlan {
  target: string
  /** Per group, in order; the groups one after the other. Empty when every instance runs target. */
  groups: Array<{name: string; steps: SentinelUpgradeStep[]}>
  /** The Sentinels to restart, one at a time, after the groups. */
  sentinels: SentinelUpgradeStep[]
  /** When any: nothing is done at all. transient: what a failover under way leaves for seconds (asked again). */
  refused: Array<{addr: string; why: string; transient?: boolean}>
  /** Masters restarted in place (no replica to hand over to). */
  downtime: string[]
  /** addr → running version, instances and Sentinels. */
  versions: Record<string, string>
}

export interface SentinelUpgradeOptions {
  allowDowntime?: boolean
  allowDowngrade?: boolean
  /** addr → the directory the target's redis-server is built into on that host. */
  binDirOf?: (addr: string) => string | undefined
}

const asNode = (m: {addr: string; version?: string; executable?: string}, role: VersionedNode['role'] = 'master'): VersionedNode => ({
  addr: m.addr,
  role,
  healthyReplicas: [],
  version: m.version,
  executable: m.executable,
})

function groupSteps(g: GroupState, target: string, opts: SentinelUpgradeOptions, plan: SentinelUpgradePlan): SentinelUpgradeStep[] {
  const alive = g.members.filter((m) => m.alive)
  const old = alive.filter((m) => m.version !== target)
  if (!old.length) return []
  if (!g.master) {
    plan.refused.push({
      addr: g.name,
      why: `its master is not agreed on (the Sentinels disagree, or the one they name does not say ROLE master): run baremetal status, repair, then up again`,
      transient: true,
    })
    return []
  }
  const master = alive.find((m) => m.addr === g.master)!
  const strays = alive.filter((m) => m.addr !== g.master && !(m.role === 'replica' && m.masterAddr === g.master))
  for (const s of strays)
    plan.refused.push({addr: s.addr, why: `member of ${g.name} that does not replicate its master ${g.master} (ROLE ${s.role ?? '?'}${s.masterAddr ? ` of ${s.masterAddr}` : ''})`, transient: true})
  if (strays.length) return []
  const steps: SentinelUpgradeStep[] = old
    .filter((m) => m.addr !== g.master)
    .sort((a, b) => a.addr.localeCompare(b.addr))
    .map((m) => ({kind: 'replica', group: g.name, addr: m.addr, from: m.version!, master: g.master!}))
  if (master.version === target) return steps
  if (g.layoutReplicas > 0) return [...steps, {kind: 'failover', group: g.name, master: master.addr}, {kind: 'old-master', group: g.name, addr: master.addr, from: master.version!}]
  if (opts.allowDowntime) {
    plan.downtime.push(master.addr)
    return [...steps, {kind: 'in-place', group: g.name, addr: master.addr, from: master.version!}]
  }
  plan.refused.push({
    addr: master.addr,
    why: `master of ${g.name} on ${master.version} with no replica to hand over to: a restart on ${target} stops its writes (rerun with --allow-downtime to restart it in place after SHUTDOWN SAVE, or give it a replica first: redis_replicas ≥ 1)`,
  })
  return steps
}

/**
 * The upgrade of a Sentinel deployment to `target`. Refused (nothing is done) when an
 * instance or Sentinel runs a newer version (a downgrade, as the cluster path refuses it) or
 * from the directory the target would be built into, a group's master is not agreed on, or
 * a group without replicas has an old master and allowDowntime is not given.
 */
export function planSentinelUpgrade(groups: readonly GroupState[], sentinels: readonly SentinelNodeState[], target: string, opts: SentinelUpgradeOptions = {}): SentinelUpgradePlan {
  const plan: SentinelUpgradePlan = {target, groups: [], sentinels: [], refused: [], downtime: [], versions: {}}
  const all = [...groups.flatMap((g) => g.members), ...sentinels].filter((m) => m.alive)
  for (const m of all) if (m.version) plan.versions[m.addr] = m.version
  if (!all.some((m) => m.version && m.version !== target)) return plan
  for (const m of all) {
    const why = refusal(asNode(m, m.version ? 'master' : 'unknown'), target, opts)
    if (why) plan.refused.push({addr: m.addr, why})
  }
  for (const g of groups) {
    const steps = groupSteps(g, target, opts, plan)
    if (steps.length) plan.groups.push({name: g.name, steps})
  }
  plan.sentinels = sentinels
    .filter((s) => s.alive && s.version !== target)
    .sort((a, b) => a.addr.localeCompare(b.addr))
    .map((s) => ({kind: 'sentinel', addr: s.addr, from: s.version!}))
  if (plan.refused.length) {
    plan.groups = []
    plan.sentinels = []
  }
  return plan
}

export function describeStep(s: SentinelUpgradeStep, target: string): string {
  switch (s.kind) {
    case 'replica':
      return `restart replica ${s.addr} (${s.from}) on ${target}, resync from ${s.master}`
    case 'failover':
      return `fenced failover ${s.master} → an upgraded replica (SENTINEL FAILOVER)`
    case 'old-master':
      return `restart ${s.addr} (${s.from}) on ${target} as a replica of the new master`
    case 'in-place':
      return `restart master ${s.addr} (${s.from}) in place after SHUTDOWN SAVE (downtime)`
    case 'sentinel':
      return `restart Sentinel ${s.addr} (${s.from}) on ${target}`
  }
}

export function describeSentinelPlan(plan: SentinelUpgradePlan): string[] {
  const steps = [...plan.groups.flatMap((g) => g.steps), ...plan.sentinels]
  const n = steps.filter((s) => s.kind !== 'failover').length
  const from = [...new Set(Object.values(plan.versions).filter((v) => v !== plan.target))].sort()
  const lines = [`${n} instance(s) and Sentinel(s) on ${from.join(', ')} → ${plan.target}, one group at a time, then the Sentinels one at a time:`]
  for (const g of plan.groups) lines.push(`  ${g.name}: ${g.steps.map((s) => describeStep(s, plan.target)).join('; ')}`)
  if (plan.sentinels.length) lines.push(`  Sentinels: ${plan.sentinels.map((s) => describeStep(s, plan.target)).join('; ')}`)
  return lines
}

/**
 * Replays a plan over the roles and versions and returns every moment an instance on an
 * older version than its master would replicate from it (empty: the plan is safe). The
 * failover's fence counts: the old master syncs from no one until its restart.
 */
export function sentinelReplicationViolations(groups: readonly GroupState[], plan: SentinelUpgradePlan): string[] {
  const out: string[] = []
  for (const g of groups) {
    const version = new Map(g.members.map((m) => [m.addr, m.version ?? '0']))
    let master = g.master
    const fenced = new Set<string>()
    const steps = plan.groups.find((x) => x.name === g.name)?.steps ?? []
    for (const s of steps) {
      if (s.kind === 'failover') {
        fenced.add(s.master)
        const to = g.members.find((m) => m.addr !== s.master && version.get(m.addr) === plan.target)
        if (!to) out.push(`${g.name}: failover with no upgraded replica to promote`)
        master = to?.addr ?? master
      } else if (s.kind !== 'sentinel') {
        version.set(s.addr, plan.target)
        fenced.delete(s.addr)
      }
      for (const m of g.members) {
        if (!master || m.addr === master || fenced.has(m.addr)) continue
        if (compareVersions(version.get(m.addr)!, version.get(master)!) < 0)
          out.push(`${g.name}: after ${s.kind} ${'addr' in s ? s.addr : s.master}: ${m.addr} (${version.get(m.addr)}) replicates ${master} (${version.get(master)})`)
      }
    }
  }
  return out
}
