import {ClusterError} from '../errors.js'
import {classify, converge, freshCommands, roleMismatches} from './cluster-classify.js'
import {checkAbort, forEachNode, nodeError, waitFor, where} from './helpers.js'
import {resolveIp} from './inventory-nodes.js'
import {CLUSTER_SLOTS, NodeIds, digestClusterNodes, rangesToString} from './nodes.js'
import {nodeAddr, planCluster, type ClusterNode, type ClusterPlan} from './plan.js'
import {NodePool, describeRedisError, infoAll, probeAll} from './pool.js'
import {buildClusterReport, probeOk, type ClusterReport, type NodeProbeOk} from './status.js'

// Forming and checking a Redis Cluster from the controller with plain per-node
// connections (never ioredis' Cluster client, which needs a formed cluster). Every
// step is idempotent and driven by what the nodes report, so a re-run after an
// interruption finishes the same plan instead of failing like `--cluster create`.
// Only commands Redis 5.0.3 knows are sent: ADDSLOTS with slot lists (no
// ADDSLOTSRANGE), MEET with numeric IPs and no bus port.
// src/modules/* and src/commands/* import these from here; new code imports them from
// the file that owns them (pool, inventory-nodes, helpers).
export {NodePool, describeRedisError, infoAll} from './pool.js'
export {clusterNodesFromHosts, pickBindAddress, resolveIp} from './inventory-nodes.js'


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

const DEFAULT_CONCURRENCY = 64

// Like `redis-cli --cluster check`, read-only: one round trip per node.
export async function checkCluster(nodes: readonly ClusterNode[], opts: ClusterOptions = {}): Promise<ClusterReport> {
  const pool = new NodePool({password: opts.password, connectTimeoutMs: opts.connectTimeoutMs ?? 5000})
  try {
    return buildClusterReport(await probeAll(pool, nodes, opts.concurrency ?? DEFAULT_CONCURRENCY))
  } finally {
    await pool.closeAll()
  }
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

