import {lookup} from 'node:dns/promises'
import {isIP} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'
import {Redis} from 'ioredis'
import pLimit from 'p-limit'
import {ClusterError} from '../errors.js'
import {CLUSTER_SLOTS, NodeIds, digestClusterNodes, expandRanges, mergeRanges, parseClusterInfo, rangesToString, type SlotRange} from './nodes.js'
import {nodeAddr, planCluster, type ClusterNode, type ClusterPlan, type PlannedMaster, type PlannedReplica} from './plan.js'
import {buildClusterReport, probeFromText, probeOk, sameSlots, type ClusterReport, type NodeProbe, type NodeProbeOk} from './status.js'

// Forming and checking a Redis Cluster from the controller with plain per-node
// connections (never ioredis' Cluster client, which needs a formed cluster). Every
// step is idempotent and driven by what the nodes report, so a re-run after an
// interruption finishes the same plan instead of failing like `--cluster create`.
// Only commands Redis 5.0.3 knows are sent: ADDSLOTS with slot lists (no
// ADDSLOTSRANGE), MEET with numeric IPs and no bus port.

export interface ClusterOptions {
  password?: string
  /** Overall limit for the call; default 60 s + 0.1 s per node. */
  timeoutMs?: number
  log?: (msg: string) => void
  /** Connections in flight at once (default 64). */
  concurrency?: number
  connectTimeoutMs?: number
  signal?: AbortSignal
}

export interface FormOptions extends ClusterOptions {
  /** Report what would be sent, send nothing that changes state. */
  check?: boolean
  /** Form or accept the cluster without the nodes that cannot be reached (they are listed). */
  allowPartial?: boolean
}

export type FormAction =
  /** Fresh nodes made into the planned cluster. */
  | 'formed'
  /** An interrupted formation of the same plan was finished. */
  | 'resumed'
  /** A cluster already exists: nothing sent. */
  | 'none'

export interface FormResult {
  changed: boolean
  action: FormAction
  /** State-changing commands sent (in check mode: that would be sent). */
  commands: number
  /** The plan that was applied; differs from the input when allowPartial dropped unreachable nodes. */
  plan: ClusterPlan
  /** Live state after the call; in check mode before any change. */
  report: ClusterReport
  newNodes: string[]
  unreachable: string[]
  elapsedMs: number
}

// Default wait scales with the fleet: gossip needs more rounds to reach 1000 nodes than 6.
export function defaultTimeoutMs(nodes: number): number {
  return 60_000 + 100 * nodes
}

const ADDSLOTS_CHUNK = 1000
const DEFAULT_CONCURRENCY = 64
const MAX_OPEN = 512
/** Default ioredis commandTimeout of a NodePool. */
export const POOL_COMMAND_TIMEOUT_MS = 30_000

// Bounded set of open connections: reused across polls for small fleets, and for 1000
// nodes never more than MAX_OPEN file descriptors at once.
export class NodePool {
  private conns = new Map<string, Redis>()
  private busy = new Set<string>()
  private closed = false
  /** ioredis' per-command timeout: MIGRATE's own timeout must stay below it (migrate.ts sizes rounds by it). */
  readonly commandTimeoutMs: number
  constructor(private readonly opts: {password?: string; connectTimeoutMs: number; commandTimeoutMs?: number}) {
    this.commandTimeoutMs = Math.max(opts.commandTimeoutMs ?? POOL_COMMAND_TIMEOUT_MS, opts.connectTimeoutMs)
  }

  async run<T>(node: ClusterNode, fn: (r: Redis) => Promise<T>): Promise<T> {
    const addr = nodeAddr(node)
    this.busy.add(addr)
    try {
      let r = this.conns.get(addr)
      if (r && r.status !== 'ready') {
        r.disconnect()
        this.conns.delete(addr)
        r = undefined
      }
      if (!r) r = await this.open(node)
      else {
        this.conns.delete(addr) // re-insert: Map order is the LRU order
        this.conns.set(addr, r)
      }
      return await fn(r)
    } finally {
      this.busy.delete(addr)
      this.evict()
    }
  }

  private async open(node: ClusterNode): Promise<Redis> {
    const r = new Redis({
      host: node.ip,
      port: node.port,
      password: this.opts.password || undefined,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      enableReadyCheck: false,
      // CLIENT SETINFO is two more round trips per node, and unknown to 5.0.x.
      disableClientInfo: true,
      retryStrategy: () => null,
      connectTimeout: this.opts.connectTimeoutMs,
      commandTimeout: this.commandTimeoutMs,
    })
    let lastError: Error | undefined
    r.on('error', (e: Error) => {
      lastError = e
    })
    try {
      await r.connect()
      // A wrong password only shows up as an 'error' event: a PING turns it into an answer.
      await r.ping()
    } catch (error) {
      r.disconnect()
      throw new Error(describeRedisError(lastError ?? error, this.opts.password))
    }
    if (this.closed) {
      r.disconnect()
      throw new Error('connection pool closed')
    }
    this.conns.set(nodeAddr(node), r)
    return r
  }

  private evict(): void {
    if (this.conns.size <= MAX_OPEN) return
    for (const [addr, r] of this.conns) {
      if (this.conns.size <= MAX_OPEN) break
      if (this.busy.has(addr)) continue
      r.disconnect()
      this.conns.delete(addr)
    }
  }

  async closeAll(): Promise<void> {
    this.closed = true
    const all = [...this.conns.values()]
    this.conns.clear()
    await Promise.all(all.map(r => r.quit().catch(() => r.disconnect())))
  }
}

export function describeRedisError(error: unknown, password?: string): string {
  const msg = error instanceof Error ? error.message : String(error)
  if (/WRONGPASS|invalid password|NOAUTH/i.test(msg)) {
    return password ? `authentication failed (${msg.trim()}): check the password argument` : `the node requires a password (${msg.trim()})`
  }
  // Already described (an error passed through twice): say it once.
  if (/is redis-server running on that port\?/.test(msg)) return msg.trim()
  if (/ECONNREFUSED/.test(msg)) return `connection refused (${msg.trim()}): is redis-server running on that port?`
  if (/Connection is closed/i.test(msg)) return 'the connection closed under the command: the instance stopped or restarted'
  if (/cluster support disabled/i.test(msg)) return `cluster support is disabled: set "cluster-enabled yes" in its config`
  return msg.trim()
}

function where(node: ClusterNode): {host: string} {
  return {host: node.host}
}

function nodeError(node: ClusterNode, what: string, hint?: string): ClusterError {
  return new ClusterError(`${nodeAddr(node)} (host ${node.host}): ${what}`, {where: where(node), hint})
}

// Every call settles before the first failure propagates: with Promise.all the others
// would go on opening connections after the caller's `finally` closed the pool, and one
// leaked socket keeps the process alive after its output is printed.
export async function forEachNode<T, R>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const limit = pLimit(concurrency)
  const settled = await Promise.allSettled(items.map(item => limit(() => fn(item))))
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed) throw failed.reason
  return settled.map(s => (s as PromiseFulfilledResult<R>).value)
}

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new ClusterError('interrupted', {hint: 'run the play again: formation resumes where it stopped'})
}

// One round trip per node: everything the classifier and the report need, digested as
// it arrives so 1000 answers of ~110 KB never sit in memory together.
export async function probeAll(pool: NodePool, nodes: readonly ClusterNode[], concurrency: number): Promise<NodeProbe[]> {
  const ids = new NodeIds()
  const keep = new Set<string>()
  return forEachNode(nodes, concurrency, async (node): Promise<NodeProbe> => {
    const addr = nodeAddr(node)
    try {
      return await pool.run(node, async r => {
        const res = (await r.pipeline().call('CLUSTER', 'INFO').call('CLUSTER', 'NODES').dbsize().exec()) ?? []
        for (const [err] of res) if (err) throw err
        return probeFromText(node, addr, parseClusterInfo(String(res[0][1])), String(res[1][1]), Number(res[2][1]), ids, keep)
      })
    } catch (error) {
      return {node, addr, error: describeRedisError(error)}
    }
  })
}

// The cheap poll: CLUSTER INFO is a few hundred bytes where CLUSTER NODES of a
// 1000-node cluster is ~100 KB per node.
export async function infoAll(pool: NodePool, nodes: readonly ClusterNode[], concurrency: number): Promise<Array<Record<string, string> | string>> {
  return forEachNode(nodes, concurrency, async node => {
    try {
      return await pool.run(node, async r => parseClusterInfo(String(await r.call('CLUSTER', 'INFO'))))
    } catch (error) {
      return describeRedisError(error)
    }
  })
}

// Like `redis-cli --cluster check`, read-only: one round trip per node.
export async function checkCluster(nodes: readonly ClusterNode[], opts: ClusterOptions = {}): Promise<ClusterReport> {
  const pool = new NodePool({password: opts.password, connectTimeoutMs: opts.connectTimeoutMs ?? 5000})
  try {
    return buildClusterReport(await probeAll(pool, nodes, opts.concurrency ?? DEFAULT_CONCURRENCY))
  } finally {
    await pool.closeAll()
  }
}

// Inventory hosts → cluster nodes: ports from redis_port_start/redis_count, IP from
// redis_bind or the host's address, resolved because MEET on 5.0.x takes numeric IPs only.
export async function clusterNodesFromHosts(hosts: ReadonlyArray<{host: string; address: string; vars: Record<string, unknown>}>): Promise<ClusterNode[]> {
  const out: ClusterNode[] = []
  for (const h of hosts) {
    const start = intVar(h, 'redis_port_start', 6379)
    const count = intVar(h, 'redis_count', 100)
    const ip = await resolveIp(pickBindAddress(h.vars.redis_bind) ?? h.address, h.host)
    for (let i = 0; i < count; i++) out.push({host: h.host, ip, port: start + i})
  }
  return out
}

function intVar(h: {host: string; vars: Record<string, unknown>}, name: string, dflt: number): number {
  const v = h.vars[name]
  if (v === undefined || v === null || v === '') return dflt
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) throw new ClusterError(`${name} must be a whole number, got ${JSON.stringify(v)}`, {where: {host: h.host}})
  return n
}

// `bind` may list several addresses, wildcards and Redis 7's optional "-addr": use the
// first concrete non-loopback one, loopback only when nothing else is listed.
export function pickBindAddress(bind: unknown): string | undefined {
  if (bind === undefined || bind === null) return undefined
  const list = (Array.isArray(bind) ? bind.map(String) : String(bind).split(/[\s,]+/))
    .map(a => a.trim())
    .filter(a => a && !['*', '0.0.0.0', '::', '::*'].includes(a.replace(/^-/, '')))
  const loopback = (a: string) => /^-?(127\.|::1$|localhost$)/.test(a)
  const optional = (a: string) => a.startsWith('-')
  const rank = (a: string) => (loopback(a) ? 2 : 0) + (optional(a) ? 1 : 0)
  const best = [...list].sort((a, b) => rank(a) - rank(b))[0]
  return best?.replace(/^-/, '')
}

// Numeric IPs pass through; names are looked up once, IPv4 preferred (what people put in `bind`).
export async function resolveIp(address: string, host = address): Promise<string> {
  if (isIP(address)) return address
  try {
    return (await lookup(address, {family: 4})).address
  } catch {
    try {
      return (await lookup(address)).address
    } catch (error) {
      throw new ClusterError(`cannot resolve "${address}" to an IP address: ${(error as Error).message}`, {
        where: {host},
        hint: 'set ansible_host or redis_bind to a numeric IP',
      })
    }
  }
}

interface Classified {
  /** Every node alone: fresh formation (or resume before any MEET). */
  fresh: boolean
  /** Some nodes met, all consistent with this very plan: finish it. */
  resume: boolean
}

// Decide from each node's own line what the fleet is: fresh, halfway through this
// plan, or an existing cluster. Throws for nodes that must not be touched.
function classify(plan: ClusterPlan, probes: readonly NodeProbeOk[]): Classified {
  const masterOf = new Map<string, PlannedMaster>(plan.masters.map(m => [m.addr, m]))
  const replicaOf = new Map<string, PlannedReplica>(plan.replicas.map(r => [r.addr, r]))
  const idOf = new Map(probes.map(p => [p.addr, p.myself.id]))
  const alone = (p: NodeProbeOk) => p.view.lines === 1
  const anyMet = probes.some(p => !alone(p))

  for (const p of probes) {
    if (!alone(p)) continue
    if (p.dbsize > 0) {
      throw nodeError(p.node, `is not in a cluster but holds ${p.dbsize} key(s); refusing to make it part of one`, 'flush it (FLUSHALL) if the data is not needed, or remove the node from the inventory')
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
  const consistent = probes.every(p => {
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

// Forms the planned cluster, finishes an interrupted formation of it, or leaves an
// existing cluster alone (new empty nodes are reported for the scaling step).
export async function formCluster(nodes: readonly ClusterNode[], plan: ClusterPlan, opts: FormOptions = {}): Promise<FormResult> {
  const started = Date.now()
  const log = opts.log ?? (() => {})
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY
  const deadline = started + (opts.timeoutMs ?? defaultTimeoutMs(nodes.length))
  const pool = new NodePool({password: opts.password, connectTimeoutMs: opts.connectTimeoutMs ?? 5000})
  try {
    const probes = await probeAll(pool, nodes, concurrency)
    checkAbort(opts.signal)
    const unreachable = probes.filter(p => !probeOk(p))
    // Check mode on a fresh, half-down or drifted fleet: a node that refuses connections is
    // not running yet, one that times out is behind a firewall rule gone missing; the tasks
    // before this one would start it or open the port. Plan as if it were there (a fresh
    // fleet: the whole formation) instead of failing.
    const notRunning = opts.check === true && unreachable.length > 0 && unreachable.every(p => /ECONNREFUSED|connection refused|ETIMEDOUT|EHOSTUNREACH/i.test(p.error))
    if (notRunning && probes.filter(probeOk).every(p => p.view.lines === 1 && p.myself.slots.length === 0)) {
      return {
        changed: true, action: 'formed', commands: freshCommands(plan), plan, report: buildClusterReport(probes), newNodes: [],
        unreachable: unreachable.map(p => p.addr), elapsedMs: Date.now() - started,
      }
    }
    if (unreachable.length > 0 && !opts.allowPartial && !notRunning) {
      const first = unreachable[0]
      throw new ClusterError(
        `${unreachable.length} of ${nodes.length} Redis node(s) unreachable: ${unreachable
          .slice(0, 10)
          .map(p => `${p.addr} (host ${p.node.host}): ${p.error}`)
          .join('; ')}${unreachable.length > 10 ? '; …' : ''}`,
        {where: where(first.node), hint: 'start them, or set allow_partial: true to go on without them'},
      )
    }
    const reachable = probes.filter(probeOk)
    if (reachable.length === 0) throw new ClusterError('no Redis node could be reached')
    if (unreachable.length > 0) {
      // Without them the plan would leave their slots unserved: plan for who answers.
      plan = planCluster(
        reachable.map(p => p.node),
        plan.replicasPerMaster,
      )
    }
    const state = classify(plan, reachable)
    const unreachableAddrs = unreachable.map(p => p.addr)

    // Nodes just restarted (drift repair, a config change) rejoin within a few node
    // timeouts: wait for that, read-only and bounded, instead of failing at once.
    // Members missing from the inventory and open slots are the scaling step's to settle.
    const pending = (r: ClusterReport) =>
      r.problems.filter(p => !(opts.allowPartial && /unreachable|marked failed/.test(p)) && !/inventory does not list|open \((migrating|importing)|more open slot/.test(p))
    const settleFormed = async (report: ClusterReport): Promise<FormResult> => {
      let settled = report
      if (!opts.check && pending(report).length > 0) {
        log(`redis_cluster: cluster formed but not settled yet (${pending(report)[0]}): waiting`)
        await waitFor(deadline, opts.signal, nodes.length, async () => {
          settled = buildClusterReport(await probeAll(pool, nodes, concurrency))
          return pending(settled)
        }, 'the cluster to settle', log).catch(error => {
          // Past the bound, what is left goes to the scaling step (open slots, a source that
          // died mid-move: it waits and settles on its own) or, if that has nothing to do,
          // fails the task as "formed but unhealthy"; never reported as settled.
          if (opts.signal?.aborted) throw error
          log(`redis_cluster: not settled within the wait (${pending(settled)[0] ?? 'unknown'}): handing over to the scaling step`)
        })
      }
      log(`cluster already formed: ${settled.masters.length} masters, ${settled.replicas.length} replicas${settled.newNodes.length ? `, ${settled.newNodes.length} new node(s) left alone` : ''}`)
      return {changed: false, action: 'none', commands: 0, plan, report: settled, newNodes: settled.newNodes, unreachable: unreachableAddrs, elapsedMs: Date.now() - started}
    }

    if (!state.fresh && !state.resume) {
      const report = buildClusterReport(probes)
      const strays = reachable.filter(p => p.view.lines === 1 && p.myself.slots.length > 0)
      if (strays.length > 0) throw nodeError(strays[0].node, `serves slots ${rangesToString(strays[0].myself.slots)} but is not part of the cluster`)
      if (report.outside.length > 0) {
        const list = report.outside.slice(0, 10).join(', ') + (report.outside.length > 10 ? ', …' : '')
        throw new ClusterError(`the inventory's nodes belong to more than one cluster: ${list} are not part of the cluster seen by ${report.seed}`, {
          hint: 'the inventory mixes clusters, or a formation was interrupted and re-planned: fix by hand (CLUSTER RESET) before running again',
        })
      }
      return await settleFormed(report)
    }

    const steps = converge(plan, reachable)
    let action: FormAction = steps.total === 0 ? 'none' : state.fresh ? 'formed' : 'resumed'
    const before = buildClusterReport(reachable)
    // Nothing to send: the usual re-run, or nodes just restarted (drift repair) that rejoin
    // by themselves; the read-only settle wait, where a failover may swap roles meanwhile.
    if (!opts.check && steps.total === 0) return await settleFormed(before)
    if (opts.check) {
      if (steps.total === 0) log(`cluster already formed: ${before.masters.length} masters, ${before.replicas.length} replicas`)
      return {
        changed: steps.total > 0,
        action,
        commands: steps.total,
        plan,
        report: before,
        newNodes: [],
        unreachable: unreachableAddrs,
        elapsedMs: Date.now() - started,
      }
    }

    const byAddr = new Map(reachable.map(p => [p.addr, p]))
    const nodeOf = (addr: string) => byAddr.get(addr)!.node
    let sent = 0

    // 1. Slots and distinct epochs, one pipeline per node, all before any MEET
    //    (SET-CONFIG-EPOCH is refused once a node knows another).
    const setup = [...steps.setup]
    if (setup.length > 0) {
      log(`redis_cluster: assigning slots and config epochs on ${setup.length} node(s)`)
      await forEachNode(setup, concurrency, async ([addr, s]) => {
        const node = nodeOf(addr)
        await pool
          .run(node, async r => {
            const pipe = r.pipeline()
            for (const chunk of s.addslots) pipe.call('CLUSTER', 'ADDSLOTS', ...chunk.map(String))
            if (s.epoch !== undefined) pipe.call('CLUSTER', 'SET-CONFIG-EPOCH', String(s.epoch))
            const res = (await pipe.exec()) ?? []
            sent += res.length
            for (const [err] of res) if (err) throw err
          })
          .catch(error => {
            throw nodeError(node, `slot/epoch setup failed: ${describeRedisError(error, opts.password)}`)
          })
      })
    }
    checkAbort(opts.signal)

    // 2. Everyone MEETs the seed; gossip does the rest.
    if (steps.meet.length > 0) {
      const seed = nodeOf(steps.meetTarget)
      const seedIp = await resolveIp(seed.ip, seed.host)
      log(`redis_cluster: ${steps.meet.length} node(s) meeting seed ${steps.meetTarget}`)
      await forEachNode(steps.meet, concurrency, async addr => {
        const node = nodeOf(addr)
        await pool
          .run(node, r => r.call('CLUSTER', 'MEET', seedIp, String(seed.port)))
          .catch(error => {
            throw nodeError(node, `CLUSTER MEET ${seedIp} ${seed.port} failed: ${describeRedisError(error, opts.password)}`)
          })
        sent++
      })
    }

    // 3. Wait until every node knows all N before REPLICATE needs the master's id.
    //    Gossip spreads a few peers per ping, so the last few take long (a coupon
    //    collector); every few seconds, lagging nodes MEET the peers they still lack.
    const N = reachable.length
    // A node that stops answering mid-formation (killed, its host gone) fails the task
    // after NODE_DOWN_MS, named with its host and the step, instead of the whole timeout.
    const downSince = new Map<string, number>()
    const noteAnswer = (p: NodeProbeOk, info: Record<string, string> | string, step: string) => {
      if (typeof info !== 'string') {
        downSince.delete(p.addr)
        return
      }
      const since = downSince.get(p.addr) ?? Date.now()
      downSince.set(p.addr, since)
      if (Date.now() - since >= NODE_DOWN_MS) {
        throw nodeError(p.node, `stopped answering while waiting for ${step} (for ${Math.round((Date.now() - since) / 1000)} s): ${info}`,
          'the instance died or its host went away during formation: run up again, it restarts the instance and finishes the formation')
      }
    }
    log(`redis_cluster: waiting for ${N} node(s) to know each other`)
    let lastNudge = Date.now()
    await waitFor(deadline, opts.signal, nodes.length, async () => {
      const infos = await infoAll(pool, reachable.map(p => p.node), concurrency)
      const behind: string[] = []
      const lagging: NodeProbeOk[] = []
      infos.forEach((info, i) => {
        const addr = reachable[i].addr
        noteAnswer(reachable[i], info, 'nodes to meet')
        if (typeof info === 'string') behind.push(`${addr} (host ${reachable[i].node.host}): ${info}`)
        else if (Number(info.cluster_known_nodes) < N) {
          behind.push(`${addr} knows ${info.cluster_known_nodes ?? '?'} of ${N}`)
          lagging.push(reachable[i])
        }
      })
      if (lagging.length > 0 && Date.now() - lastNudge >= NUDGE_MS) {
        sent += await meetMissing(pool, lagging, reachable, concurrency, opts.password)
        lastNudge = Date.now()
      }
      return behind
    }, 'nodes to meet', log)

    // 4. Replicas follow their masters; a master still unknown to a replica is retried.
    if (steps.replicate.length > 0) {
      log(`redis_cluster: attaching ${steps.replicate.length} replica(s)`)
      const idOf = new Map(reachable.map(p => [p.addr, p.myself.id]))
      let pending = steps.replicate
      await waitFor(deadline, opts.signal, nodes.length, async () => {
        const failed: string[] = []
        const still: typeof pending = []
        await forEachNode(pending, concurrency, async ([replica, master]) => {
          const node = nodeOf(replica)
          try {
            await pool.run(node, r => r.call('CLUSTER', 'REPLICATE', idOf.get(master)!))
            sent++
          } catch (error) {
            const msg = describeRedisError(error, opts.password)
            if (!/unknown node/i.test(msg)) throw nodeError(node, `CLUSTER REPLICATE ${master} failed: ${msg}`)
            still.push([replica, master])
            failed.push(`${replica} does not know its master ${master} yet`)
          }
        })
        pending = still
        return failed
      }, 'replicas to attach', log)
    }

    // 5. Done when every node says ok, knows every node, and all agree on the map and roles.
    log(`redis_cluster: waiting for cluster_state:ok and one slot map on all ${N} node(s)`)
    let report: ClusterReport | undefined
    await waitFor(deadline, opts.signal, nodes.length, async () => {
      const infos = await infoAll(pool, reachable.map(p => p.node), concurrency)
      const behind: string[] = []
      infos.forEach((info, i) => {
        const addr = reachable[i].addr
        noteAnswer(reachable[i], info, 'the cluster to agree')
        if (typeof info === 'string') behind.push(`${addr} (host ${reachable[i].node.host}): ${info}`)
        else if (info.cluster_state !== 'ok') behind.push(`${addr} cluster_state:${info.cluster_state}`)
        else if (Number(info.cluster_slots_assigned) !== CLUSTER_SLOTS) behind.push(`${addr} sees ${info.cluster_slots_assigned} of ${CLUSTER_SLOTS} slots assigned`)
        else if (Number(info.cluster_known_nodes) !== N) behind.push(`${addr} knows ${info.cluster_known_nodes} of ${N} nodes`)
      })
      if (behind.length > 0) return behind
      // Only now the expensive round: every node's full view.
      const fresh = await probeAll(pool, reachable.map(p => p.node), concurrency)
      report = buildClusterReport(fresh)
      return [...report.problems, ...roleMismatches(plan, fresh)]
    }, 'the cluster to agree', log)

    // 6. A replica that is attached but still syncing would lose a write acknowledged right
    //    after `up` returns (WAIT 1 answers 0): done only when every link is up.
    if (plan.replicas.length > 0) {
      const replicaNodes = plan.replicas.map(r => nodeOf(r.addr)).filter(n => reachable.some(p => p.node === n))
      await waitFor(deadline, opts.signal, nodes.length, async () => {
        const behind: string[] = []
        await forEachNode(replicaNodes, concurrency, async (node) => {
          try {
            const text = String(await pool.run(node, r => r.call('INFO', 'replication')))
            if (!/master_link_status:up/.test(text)) behind.push(`${nodeAddr(node)} replication link not up yet`)
          } catch (error) {
            behind.push(`${nodeAddr(node)}: ${describeRedisError(error, opts.password)}`)
          }
        })
        return behind
      }, 'replicas to finish their first sync', log)
    }

    log(`redis_cluster: ${plan.masters.length} masters, ${plan.replicas.length} replicas ready in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    if (action === 'none' && sent > 0) action = 'resumed'
    return {
      changed: sent > 0,
      action,
      commands: sent,
      plan,
      report: report!,
      newNodes: [],
      unreachable: unreachableAddrs,
      elapsedMs: Date.now() - started,
    }
  } finally {
    await pool.closeAll()
  }
}

const NUDGE_MS = 1000

// What forming `plan` on fresh nodes sends: ADDSLOTS chunks, one epoch per node, a MEET per
// node but the seed, a REPLICATE per replica (the count check mode reports).
function freshCommands(plan: ClusterPlan): number {
  const n = plan.masters.length + plan.replicas.length
  return plan.masters.reduce((t, m) => t + Math.ceil(m.slotCount / ADDSLOTS_CHUNK), 0) + n + (n - 1) + plan.replicas.length
}

/** How long a node may stay unreachable during formation before the formation fails. */
const NODE_DOWN_MS = 10_000

// Direct introductions for nodes that gossip has not reached yet: one CLUSTER NODES and
// one pipeline of MEETs per lagging node. Returns the number of MEETs sent.
async function meetMissing(pool: NodePool, lagging: readonly NodeProbeOk[], all: readonly NodeProbeOk[], concurrency: number, password?: string): Promise<number> {
  let sent = 0
  const ids = new NodeIds()
  await forEachNode(lagging, concurrency, async p => {
    await pool
      .run(p.node, async r => {
        const view = digestClusterNodes(String(await r.call('CLUSTER', 'NODES')), ids)
        const known = new Set(Array.from(view.known, x => ids.ids[x]))
        const missing = all.filter(o => o !== p && !known.has(o.myself.id))
        if (missing.length === 0) return
        const pipe = r.pipeline()
        for (const o of missing) pipe.call('CLUSTER', 'MEET', o.node.ip, String(o.node.port))
        const res = (await pipe.exec()) ?? []
        sent += res.length
        for (const [err] of res) if (err) throw err
      })
      .catch(error => {
        throw nodeError(p.node, `CLUSTER MEET of missing peers failed: ${describeRedisError(error, password)}`)
      })
  })
  return sent
}

interface Steps {
  setup: Map<string, {addslots: number[][]; epoch?: number}>
  meet: string[]
  meetTarget: string
  /** [replica addr, master addr] */
  replicate: Array<[string, string]>
  total: number
}

// What is still missing for this plan, from the nodes' own lines: only that gets sent.
function converge(plan: ClusterPlan, probes: readonly NodeProbeOk[]): Steps {
  const byAddr = new Map(probes.map(p => [p.addr, p]))
  const setup = new Map<string, {addslots: number[][]; epoch?: number}>()
  const alone = (p: NodeProbeOk) => p.view.lines === 1
  let total = 0
  for (const m of plan.masters) {
    const p = byAddr.get(m.addr)!
    if (!alone(p)) continue
    const have = new Set(expandRanges(p.myself.slots))
    const missing = expandRanges(m.slots).filter(s => !have.has(s))
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
  const member = probes.find(p => !alone(p))
  const meetTarget = alone(seed) && member ? member.addr : plan.seed
  const meet = probes.filter(p => alone(p) && p.addr !== meetTarget).map(p => p.addr)
  total += meet.length
  const idOf = new Map(probes.map(p => [p.addr, p.myself.id]))
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
function roleMismatches(plan: ClusterPlan, probes: readonly NodeProbe[]): string[] {
  const ok = probes.filter(probeOk)
  const idOf = new Map(ok.map(p => [p.addr, p.myself.id]))
  const byAddr = new Map(ok.map(p => [p.addr, p]))
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

// Polls until `pending` returns nothing; on timeout names who is behind and on what,
// instead of hanging like "Waiting for the cluster to join".
export async function waitFor(
  deadline: number,
  signal: AbortSignal | undefined,
  n: number,
  pending: () => Promise<string[]>,
  what: string,
  log: (msg: string) => void,
): Promise<void> {
  const interval = Math.min(1000, 100 + n)
  let lastLog = Date.now()
  for (;;) {
    checkAbort(signal)
    const behind = await pending()
    if (behind.length === 0) return
    if (Date.now() - lastLog >= 10_000) {
      log(`redis_cluster: still waiting for ${what}: ${behind.length} pending, e.g. ${behind[0]}`)
      lastLog = Date.now()
    }
    if (Date.now() >= deadline) {
      const shown = behind.slice(0, 10).join('; ')
      throw new ClusterError(`timed out waiting for ${what}: ${behind.length} problem(s): ${shown}${behind.length > 10 ? '; …' : ''}`, {
        hint: 'check that the cluster bus ports (port + 10000) are open between all hosts; run the play again to resume',
      })
    }
    await sleep(Math.min(interval, Math.max(0, deadline - Date.now())))
  }
}
