// Master placement across hosts. Failovers (a rolling restart, a host that was down, a
// repair) leave masters wherever the replicas that took over were: one host can end up
// holding most masters, and losing it then leaves the others without the majority of
// masters that any failover needs, so the whole cluster goes down. This file:
//   - planPlacement: pure, which masters to hand to which replica (on another host) so
//     every host holds ⌊M/H⌋ or ⌈M/H⌉ masters again, the spread planCluster gives;
//   - placementWarnings: pure, what `status` warns about (a host whose loss takes the
//     cluster down);
//   - restorePlacement: carries the plan out from the controller, one CLUSTER FAILOVER at
//     a time (two elections at once compete for the masters' votes), through rolling.ts'
//     failover: only to a replica its own INFO replication shows in sync, at most twice.
import {setTimeout as sleep} from 'node:timers/promises'
import {NodePool, describeRedisError} from './pool.js'
import {nodeAddr, parseClusterInfo, parseClusterNodes, parseNodeAddress} from './nodes.js'
import type {ClusterNode} from './plan.js'
import {failover, type RollingTarget} from './rolling.js'
import type {ClusterReport} from './status.js'

export interface PlacementMaster {
  id: string
  addr: string
  host: string
  /** Masters without slots neither vote nor count for the majority. */
  slotCount: number
}

export interface PlacementReplica {
  id: string
  addr: string
  host: string
  masterId: string | null
  /** Not marked failing, as far as the cluster knows (default true). */
  healthy?: boolean
}

export interface PlacementInput {
  masters: readonly PlacementMaster[]
  replicas: readonly PlacementReplica[]
}

export interface PlannedFailover {
  master: {id: string; addr: string; host: string}
  replica: {id: string; addr: string; host: string}
}

export interface PlacementPlan {
  /** In the order to carry them out, one at a time. */
  failovers: PlannedFailover[]
  /** Masters (with slots) per host, now and after the failovers. */
  before: Record<string, number>
  after: Record<string, number>
  /** The planned spread: every host within [floor, cap]. */
  floor: number
  cap: number
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

function mastersPerHost(input: PlacementInput): Record<string, number> {
  const counts: Record<string, number> = {}
  const hosts = [...new Set([...input.masters.map((m) => m.host), ...input.replicas.map((r) => r.host)])].sort(byName)
  for (const h of hosts) counts[h] = 0
  for (const m of input.masters) if (m.slotCount > 0) counts[m.host]++
  return counts
}

// Greedy levelling: the most loaded host hands one master to a replica of that very
// shard on the least loaded host it can, while the two differ by 2 or more. Each step
// lowers the spread's sum of squares, so it ends, and it ends with every host within
// [⌊M/H⌋, ⌈M/H⌉] unless no replica on the lighter hosts can take over. A shard moves at
// most once: the replica it hands to is a host it had no master on.
export function planPlacement(input: PlacementInput): PlacementPlan {
  const before = mastersPerHost(input)
  const counts = {...before}
  const hosts = Object.keys(counts)
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  const floor = hosts.length ? Math.floor(total / hosts.length) : 0
  const cap = hosts.length ? Math.ceil(total / hosts.length) : 0
  const replicasOf = new Map<string, PlacementReplica[]>()
  for (const r of input.replicas) {
    if (!r.masterId || r.healthy === false) continue
    const list = replicasOf.get(r.masterId) ?? []
    list.push(r)
    replicasOf.set(r.masterId, list)
  }
  const mastersOn = new Map<string, PlacementMaster[]>()
  for (const m of input.masters.filter((x) => x.slotCount > 0).sort((a, b) => byName(a.addr, b.addr))) {
    mastersOn.set(m.host, [...(mastersOn.get(m.host) ?? []), m])
  }
  const moved = new Set<string>()
  const failovers: PlannedFailover[] = []
  for (;;) {
    const next = nextFailover(hosts, counts, mastersOn, replicasOf, moved)
    if (!next) break
    failovers.push(next)
    moved.add(next.master.id)
    counts[next.master.host]--
    counts[next.replica.host]++
  }
  return {failovers, before, after: counts, floor, cap}
}

function nextFailover(
  hosts: readonly string[],
  counts: Readonly<Record<string, number>>,
  mastersOn: ReadonlyMap<string, readonly PlacementMaster[]>,
  replicasOf: ReadonlyMap<string, PlacementReplica[]>,
  moved: ReadonlySet<string>,
): PlannedFailover | undefined {
  const heavy = [...hosts].sort((a, b) => counts[b] - counts[a] || byName(a, b))
  const light = [...hosts].sort((a, b) => counts[a] - counts[b] || byName(a, b))
  // Pairs by how far apart they are: the worst imbalance is fixed first.
  const pairs: Array<[string, string]> = []
  for (const d of heavy) for (const r of light) if (counts[d] - counts[r] >= 2) pairs.push([d, r])
  pairs.sort((x, y) => counts[y[0]] - counts[y[1]] - (counts[x[0]] - counts[x[1]]))
  for (const [donor, receiver] of pairs) {
    for (const m of mastersOn.get(donor) ?? []) {
      if (moved.has(m.id)) continue
      const r = (replicasOf.get(m.id) ?? []).filter((x) => x.host === receiver).sort((a, b) => byName(a.addr, b.addr))[0]
      if (r) return {master: {id: m.id, addr: m.addr, host: m.host}, replica: {id: r.id, addr: r.addr, host: r.host}}
    }
  }
  return undefined
}

const LIST_MAX = 10

// What `status` warns about: a host whose loss takes the whole cluster down. A failover
// needs the votes of a majority of ALL masters (⌊M/2⌋ + 1), so losing the masters of host
// H leaves too few voters when masters_on_H ≥ ⌈M/2⌉; and a shard whose master and every
// replica live on H has no copy left at all.
export function placementWarnings(input: PlacementInput): string[] {
  const counts = mastersPerHost(input)
  const hosts = Object.keys(counts)
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  if (total === 0) return []
  if (hosts.length === 1) {
    return [`all ${total} master(s) and their replicas are on one host (${hosts[0]}): losing it takes the cluster down; spread the nodes over 3 or more hosts`]
  }
  const out: string[] = []
  const need = Math.floor(total / 2) + 1
  let plan: PlacementPlan | undefined
  for (const h of hosts) {
    if (counts[h] < Math.ceil(total / 2)) continue
    plan ??= planPlacement(input)
    const fix =
      plan.after[h] < counts[h]
        ? `\`baremetal up\` hands ${counts[h] - plan.after[h]} of them over to replicas on other hosts`
        : hosts.length < 3
          ? 'with 2 hosts one of them always holds half the masters: spread the nodes over 3 or more hosts'
          : 'no replica on another host can take them over: give their shards replicas on other hosts'
    out.push(
      `host ${h} holds ${counts[h]} of ${total} masters: losing it leaves ${total - counts[h]}, short of the ${need} (a majority of all masters) a failover needs, and the cluster goes down; ${fix}`,
    )
  }
  const hostsOf = new Map<string, Set<string>>()
  for (const r of input.replicas) if (r.masterId) (hostsOf.get(r.masterId) ?? hostsOf.set(r.masterId, new Set()).get(r.masterId)!).add(r.host)
  const alone = new Map<string, number>()
  for (const m of input.masters) {
    if (m.slotCount === 0) continue
    const others = [...(hostsOf.get(m.id) ?? [])].filter((x) => x !== m.host)
    if (others.length === 0) alone.set(m.host, (alone.get(m.host) ?? 0) + 1)
  }
  if (alone.size > 0) {
    const list = [...alone].sort(([a], [b]) => byName(a, b)).map(([h, n]) => `${h}: ${n}`)
    const shown = list.length > LIST_MAX ? `${list.slice(0, LIST_MAX).join(', ')}, … ${list.length - LIST_MAX} more` : list.join(', ')
    out.push(`${alone.size} host(s) hold shards with no replica on another host (${shown}): losing one of them leaves those slots unserved and the cluster down`)
  }
  return out
}

export interface PlacementOptions {
  password?: string
  check?: boolean
  /** Per shard: the wait for its replica to be in sync and both CLUSTER FAILOVER attempts; then the wait for the old master's link (default 30 s each). */
  stepTimeoutMs?: number
  log?: (msg: string) => void
  signal?: AbortSignal
}

export interface PlacementResult {
  status: 'ok' | 'changed' | 'failed'
  msg: string
  plan: PlacementPlan
  done: PlannedFailover[]
  failed: Array<PlannedFailover & {why: string}>
  /** Why nothing was attempted (the cluster is not healthy). */
  skipped?: string
}

export function placementInput(report: Pick<ClusterReport, 'masters' | 'replicas'>): PlacementInput {
  return {
    masters: report.masters.map((m) => ({id: m.id, addr: m.addr, host: m.host, slotCount: m.slotCount})),
    replicas: report.replicas.map((r) => ({id: r.id, addr: r.addr, host: r.host, masterId: r.masterId, healthy: !r.flags.some((f) => f === 'fail' || f === 'fail?')})),
  }
}

const spread = (c: Record<string, number>) =>
  Object.entries(c)
    .map(([h, n]) => `${h} ${n}`)
    .join(', ')
const listFailovers = (fs: readonly PlannedFailover[]) => {
  const s = fs
    .slice(0, LIST_MAX)
    .map((f) => `${f.master.addr} → ${f.replica.addr} (${f.master.host} → ${f.replica.host})`)
    .join(', ')
  return fs.length > LIST_MAX ? `${s}, … ${fs.length - LIST_MAX} more` : s
}

/**
 * Restore the planned spread of masters on a healthy cluster (`report`, just read).
 * Check mode says what it would do and sends nothing. A failover that does not happen
 * after the attempts is reported as failed; the others still run.
 */
export async function restorePlacement(nodes: readonly ClusterNode[], report: ClusterReport, opts: PlacementOptions = {}): Promise<PlacementResult> {
  const plan = planPlacement(placementInput(report))
  const result: PlacementResult = {status: 'ok', msg: '', plan, done: [], failed: []}
  if (plan.failovers.length === 0) return result
  // Elections need every master answering; an unhealthy cluster is the other steps' to repair.
  if (!report.ok) return {...result, skipped: `not rebalancing masters across hosts while the cluster has problems (${report.problems[0].text})`}
  if (opts.check) {
    return {
      ...result,
      status: 'changed',
      msg: `would fail over ${plan.failovers.length} master(s) to in-sync replicas on other hosts: ${listFailovers(plan.failovers)}; masters per host ${spread(plan.before)} → ${spread(plan.after)}`,
    }
  }
  const log = opts.log ?? (() => {})
  const byAddr = new Map(nodes.map((n) => [nodeAddr(n), n]))
  const pool = new NodePool({password: opts.password, connectTimeoutMs: 5000})
  const target = (x: {addr: string; host: string}): RollingTarget => {
    const n = byAddr.get(x.addr) ?? {host: x.host, ...parseNodeAddress(x.addr)}
    return {host: n.host, ip: n.ip, port: n.port, passwords: [opts.password], restart: async () => ({ok: false, msg: 'placement never restarts a node'})}
  }
  try {
    log(`redis_cluster: masters per host ${spread(plan.before)}: ${plan.failovers.length} failover(s) to restore the spread`)
    for (const f of plan.failovers) {
      if (opts.signal?.aborted) {
        result.failed.push({...f, why: 'interrupted'})
        continue
      }
      const why = await handOver(pool, f, target(f.replica), target(f.master), opts, log)
      if (why) result.failed.push({...f, why})
      else result.done.push(f)
    }
  } finally {
    await pool.closeAll()
  }
  return {...result, ...placementMessage(result)}
}

function placementMessage(r: PlacementResult): {status: PlacementResult['status']; msg: string} {
  const done = r.done.length ? `masters rebalanced across hosts: ${r.done.length} failover(s) (${listFailovers(r.done)}); masters per host were ${spread(r.plan.before)}` : ''
  if (r.failed.length === 0) return {status: 'changed', msg: `${done}, now ${spread(r.plan.after)}`}
  const fails = r.failed
    .slice(0, 5)
    .map((f) => `${f.master.addr} → ${f.replica.addr}: ${f.why}`)
    .join('; ')
  return {
    status: 'failed',
    msg: `${done ? `${done}; ` : ''}${r.failed.length} of ${r.plan.failovers.length} master(s) not handed over to a replica on another host (${fails}): run up again`,
  }
}

// One shard: rolling.ts' failover waits for the replica to be in sync (its own INFO
// replication against the master's offset), sends CLUSTER FAILOVER (no FORCE), at most
// twice; then the old master's link comes up before the next shard's election.
async function handOver(pool: NodePool, f: PlannedFailover, replica: RollingTarget, master: RollingTarget, opts: PlacementOptions, log: (m: string) => void): Promise<string | undefined> {
  const stepMs = opts.stepTimeoutMs ?? 30_000
  const before = await shardRole(pool, f, replica).catch((error) => `the replica did not answer: ${describeRedisError(error)}`)
  if (before === 'swapped') return undefined
  if (before !== 'replica') return before
  log(`redis_cluster: manual failover ${f.master.addr} → ${f.replica.addr} (${f.master.host} → ${f.replica.host})`)
  const why = await failover(replica, master, {stepTimeoutMs: stepMs, signal: opts.signal, log})
  // An election that outlived the wait may still have won.
  if (why !== undefined && (await shardRole(pool, f, replica).catch(() => '')) !== 'swapped') return why
  const settled = await waitDemoted(pool, master, Date.now() + stepMs, opts.signal)
  if (settled) log(`redis_cluster: ${f.master.addr} handed over, but ${settled}`)
  return undefined
}

async function replication(pool: NodePool, t: RollingTarget): Promise<Record<string, string>> {
  return pool.run(t, async (r) => parseClusterInfo(String(await r.call('INFO', 'replication'))))
}

// The replica's own word, by node id: still a replica of this master, already its master
// (an earlier run's or a late election), or something else (the shard changed: refused).
async function shardRole(pool: NodePool, f: PlannedFailover, replica: RollingTarget): Promise<'replica' | 'swapped' | string> {
  const me = parseClusterNodes(String(await pool.run(replica, (r) => r.call('CLUSTER', 'NODES')))).find((e) => e.myself)
  if (!me || me.id !== f.replica.id) return `${f.replica.addr} is no longer node ${f.replica.id.slice(0, 8)}: not failed over`
  if (me.replica) return me.masterId === f.master.id ? 'replica' : `${f.replica.addr} now replicates ${me.masterId?.slice(0, 8) ?? 'nothing'}, not ${f.master.addr}: not failed over`
  return me.slots.length > 0 ? 'swapped' : `${f.replica.addr} is a master without slots: not failed over`
}

// The old master now replicates the new one: wait (bounded) for its link, so the next
// election starts on a quiet shard and `status` right after shows it healthy.
async function waitDemoted(pool: NodePool, old: RollingTarget, deadline: number, signal?: AbortSignal): Promise<string | undefined> {
  for (;;) {
    let why: string
    try {
      const i = await replication(pool, old)
      if (i.role === 'slave' && i.master_link_status === 'up' && i.master_sync_in_progress === '0') return undefined
      why = i.role === 'slave' ? `its link to the new master is ${i.master_link_status ?? '?'}` : `it is still ${i.role ?? '?'}`
    } catch (error) {
      why = describeRedisError(error)
    }
    if (signal?.aborted || Date.now() >= deadline) return why
    await sleep(250)
  }
}
