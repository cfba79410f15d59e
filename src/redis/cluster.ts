import {ClusterError} from '../errors.js'
import {classify, converge, freshCommands, roleMismatches, type Steps} from './cluster-classify.js'
import {checkAbort, forEachNode, nodeError, waitFor, where} from './helpers.js'
import {resolveIp} from './inventory-nodes.js'
import {CLUSTER_SLOTS, NodeIds, digestClusterNodes, rangesToString} from './nodes.js'
import {planCluster, nodeAddr, type ClusterNode, type ClusterPlan} from './plan.js'
import {NodePool, describeRedisError, infoAll, probeAll} from './pool.js'
import {driftProblems, driftSummary, formingNodeTimeoutMs, freshMeets, freshNode, meetPairs, setNodeTimeouts, timeoutDrift, type DeclaredTimeout} from './node-timeout.js'
import {buildClusterReport, leftOut, probeOk, problemTexts, type ClusterReport, type NodeProbe, type NodeProbeOk} from './status.js'

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
  /** Each node's declared cluster-node-timeout: a runtime value that differs is reported (status) or restored (formCluster). */
  declaredNodeTimeout?: DeclaredTimeout
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
  nodeTimeout: NodeTimeoutOutcome
  /** Found formed: the probe round `report` was judged from, for the scaling step to start from (nothing was written to the cluster since). */
  probes?: NodeProbe[]
  elapsedMs: number
}

export interface NodeTimeoutOutcome {
  /** The short cluster-node-timeout fresh nodes were formed under (node-timeout.ts), when they were. */
  formingMs?: number
  /** Nodes given their declared value back after running another (check mode: that would be). */
  restored: string[]
  /** What those ran before, e.g. "1000 on 8 node(s)". */
  was: string
}

// Default wait scales with the fleet: gossip needs more rounds to reach 1000 nodes than 6.
export function defaultTimeoutMs(nodes: number): number {
  return 60_000 + 100 * nodes
}

const DEFAULT_CONCURRENCY = 64
const NUDGE_MS = 1000
/** How long a node may stay unreachable during formation before the formation fails. */
const NODE_DOWN_MS = 10_000

// Like `redis-cli --cluster check`, read-only: one round trip per node.
export async function checkCluster(nodes: readonly ClusterNode[], opts: ClusterOptions = {}): Promise<ClusterReport> {
  const pool = new NodePool({password: opts.password, connectTimeoutMs: opts.connectTimeoutMs ?? 5000})
  try {
    const probes = await probeAll(pool, nodes, opts.concurrency ?? DEFAULT_CONCURRENCY)
    const report = buildClusterReport(probes)
    const drift = driftProblems(timeoutDrift(probes, opts.declaredNodeTimeout))
    return drift.length === 0 ? report : {...report, ok: false, problems: [...report.problems, ...drift]}
  } finally {
    await pool.closeAll()
  }
}

// One formation call: what every phase needs, so each phase is a function of its own.
interface FormRun {
  nodes: readonly ClusterNode[]
  opts: FormOptions
  log: (msg: string) => void
  concurrency: number
  started: number
  deadline: number
  pool: NodePool
  /** When each node first failed to answer a poll (cleared when it answers again). */
  downSince: Map<string, number>
}

/** The plan for who answers, the nodes that did and the addresses of those that did not. */
interface Reached {
  plan: ClusterPlan
  probes: NodeProbe[]
  reachable: NodeProbeOk[]
  unreachable: string[]
}

// Forms the planned cluster, finishes an interrupted formation of it, or leaves an
// existing cluster alone (new empty nodes are reported for the scaling step).
export async function formCluster(nodes: readonly ClusterNode[], plan: ClusterPlan, opts: FormOptions = {}): Promise<FormResult> {
  const started = Date.now()
  const run: FormRun = {
    nodes,
    opts,
    log: opts.log ?? (() => {}),
    concurrency: opts.concurrency ?? DEFAULT_CONCURRENCY,
    started,
    deadline: started + (opts.timeoutMs ?? defaultTimeoutMs(nodes.length)),
    pool: new NodePool({password: opts.password, connectTimeoutMs: opts.connectTimeoutMs ?? 5000}),
    downSince: new Map(),
  }
  try {
    const reached = await reach(run, plan)
    if (!('reachable' in reached)) return reached
    return await formReached(run, reached)
  } finally {
    await run.pool.closeAll()
  }
}

function result(run: FormRun, r: Omit<FormResult, 'elapsedMs' | 'nodeTimeout'> & {nodeTimeout?: NodeTimeoutOutcome}): FormResult {
  return {...r, nodeTimeout: r.nodeTimeout ?? {restored: [], was: ''}, elapsedMs: Date.now() - run.started}
}

// Nodes left on another cluster-node-timeout than declared (a run killed between the
// formation's CONFIG SET and its restore) get the declared one back, read back to check;
// check mode only says which would.
async function restoreDrift(run: FormRun, probes: readonly NodeProbe[]): Promise<NodeTimeoutOutcome> {
  const drift = timeoutDrift(probes, run.opts.declaredNodeTimeout)
  const out = {restored: drift.map((d) => d.addr), was: driftSummary(drift)}
  if (drift.length === 0 || run.opts.check) return out
  run.log(`redis_cluster: restoring the declared cluster-node-timeout on ${drift.length} node(s) (now ${out.was})`)
  await setNodeTimeouts(
    run.pool,
    drift.map((d) => ({node: d.node, ms: d.want})),
    run.concurrency,
    run.opts.password,
  )
  return out
}

// Probe every node; unreachable ones fail the call unless allowPartial (then the plan is
// redone for who answers) or check mode sees a fleet whose earlier tasks would start them.
async function reach(run: FormRun, plan: ClusterPlan): Promise<Reached | FormResult> {
  const {nodes, opts} = run
  const probes = await probeAll(run.pool, nodes, run.concurrency)
  checkAbort(opts.signal)
  const unreachable = probes.filter((p) => !probeOk(p))
  // Check mode on a fresh, half-down or drifted fleet: a node that refuses connections is
  // not running yet, one that times out is behind a firewall rule gone missing; the tasks
  // before this one would start it or open the port. Plan as if it were there (a fresh
  // fleet: the whole formation) instead of failing.
  const notRunning = opts.check === true && unreachable.length > 0 && unreachable.every((p) => /ECONNREFUSED|connection refused|ETIMEDOUT|EHOSTUNREACH/i.test(p.error))
  if (notRunning && probes.filter(probeOk).every((p) => p.view.lines === 1 && p.myself.slots.length === 0)) {
    return result(run, {
      changed: true,
      action: 'formed',
      // The mesh MEETs every pair, not every node the seed (freshCommands counts those).
      commands: freshCommands(plan) - (plan.masters.length + plan.replicas.length - 1) + freshMeets(plan.masters.length + plan.replicas.length),
      plan,
      report: buildClusterReport(probes),
      newNodes: [],
      unreachable: unreachable.map((p) => p.addr),
    })
  }
  if (unreachable.length > 0 && !opts.allowPartial && !notRunning) {
    const first = unreachable[0]
    throw new ClusterError(
      `${unreachable.length} of ${nodes.length} Redis node(s) unreachable: ${unreachable
        .slice(0, 10)
        .map((p) => `${p.addr} (host ${p.node.host}): ${p.error}`)
        .join('; ')}${unreachable.length > 10 ? '; …' : ''}`,
      {where: where(first.node), hint: 'start them, or set allow_partial: true to go on without them'},
    )
  }
  const reachable = probes.filter(probeOk)
  if (reachable.length === 0) throw new ClusterError('no Redis node could be reached')
  // Without them the plan would leave their slots unserved: plan for who answers.
  if (unreachable.length > 0)
    plan = planCluster(
      reachable.map((p) => p.node),
      plan.replicasPerMaster,
    )
  return {plan, probes, reachable, unreachable: unreachable.map((p) => p.addr)}
}

// Classify the fleet, then leave an existing cluster alone, report what check mode would
// send, or send what is still missing for the plan.
async function formReached(run: FormRun, reached: Reached): Promise<FormResult> {
  const {plan, reachable, unreachable} = reached
  const state = classify(plan, reachable)
  if (!state.fresh && !state.resume) return await existingCluster(run, reached)
  const steps = converge(plan, reachable)
  const action = steps.total === 0 ? 'none' : state.fresh ? 'formed' : 'resumed'
  const before = buildClusterReport(reachable)
  // Nothing to send: the usual re-run, or nodes just restarted (drift repair) that rejoin
  // by themselves; the read-only settle wait, where a failover may swap roles meanwhile.
  if (!run.opts.check && steps.total === 0) return await settleFormed(run, reached, before)
  if (run.opts.check) {
    if (steps.total === 0) run.log(`cluster already formed: ${before.masters.length} masters, ${before.replicas.length} replicas`)
    const nodeTimeout = await restoreDrift(run, reachable)
    return result(run, {
      changed: steps.total > 0 || nodeTimeout.restored.length > 0,
      action,
      commands: state.fresh ? steps.total - steps.meet.length + freshMeets(reachable.length) : steps.total,
      plan,
      report: before,
      newNodes: [],
      unreachable,
      nodeTimeout,
      probes: reached.probes,
    })
  }
  const short = state.fresh ? shortTimeouts(run, reachable) : new Map<string, number>()
  const {sent, report, nodeTimeout} = await applySteps(run, plan, reachable, steps, short).catch(async (error) => {
    // A formation that fails (or is interrupted) leaves no node on the short value if it can
    // help it; what it cannot reach now, the next run finds and restores.
    if (short.size > 0) await undoShort(run, reachable, short)
    throw error
  })
  run.log(`redis_cluster: ${plan.masters.length} masters, ${plan.replicas.length} replicas ready in ${((Date.now() - run.started) / 1000).toFixed(1)} s`)
  return result(run, {changed: sent > 0, action, commands: sent, plan, report, newNodes: [], unreachable, nodeTimeout})
}

// Fresh nodes (node-timeout.ts: alone, empty) and the short timeout each forms under;
// nodes whose declared value is not known, or not longer, keep theirs.
function shortTimeouts(run: FormRun, reachable: readonly NodeProbeOk[]): Map<string, number> {
  const declared = run.opts.declaredNodeTimeout
  const out = new Map<string, number>()
  if (!declared) return out
  for (const p of reachable) {
    const ms = freshNode(p) ? formingNodeTimeoutMs(reachable.length, declared(p.node)) : undefined
    if (ms !== undefined) out.set(p.addr, ms)
  }
  return out
}

// A cluster that is not this plan's formation: refuse strays and mixed clusters, else
// wait for it to settle and hand it over as it is.
async function existingCluster(run: FormRun, reached: Reached): Promise<FormResult> {
  const report = buildClusterReport(reached.probes)
  const strays = reached.reachable.filter((p) => p.view.lines === 1 && p.myself.slots.length > 0)
  if (strays.length > 0) throw nodeError(strays[0].node, `serves slots ${rangesToString(strays[0].myself.slots)} but is not part of the cluster`)
  if (report.outside.length > 0) {
    const list = report.outside.slice(0, 10).join(', ') + (report.outside.length > 10 ? ', …' : '')
    throw new ClusterError(`the inventory's nodes belong to more than one cluster: ${list} are not part of the cluster seen by ${report.seed}`, {
      hint: 'the inventory mixes clusters, or a formation was interrupted and re-planned: fix by hand (CLUSTER RESET) before running again',
    })
  }
  return await settleFormed(run, reached, report)
}

// Nodes just restarted (drift repair, a config change) rejoin within a few node
// timeouts: wait for that, read-only and bounded, instead of failing at once.
// Members missing from the inventory and open slots are the scaling step's to settle.
function settlePending(r: ClusterReport, allowPartial: boolean | undefined): string[] {
  return problemTexts(r.problems.filter((p) => !(allowPartial && leftOut(p)) && p.kind !== 'unknown-nodes' && p.kind !== 'open-slot'))
}

async function settleFormed(run: FormRun, reached: Reached, report: ClusterReport): Promise<FormResult> {
  const {opts, log} = run
  const pending = (r: ClusterReport) => settlePending(r, opts.allowPartial)
  let settled = report
  let probes = reached.probes
  if (!opts.check && pending(report).length > 0) {
    log(`redis_cluster: cluster formed but not settled yet (${pending(report)[0]}): waiting`)
    await waitFor(
      run.deadline,
      opts.signal,
      run.nodes.length,
      async () => {
        probes = await probeAll(run.pool, run.nodes, run.concurrency)
        settled = buildClusterReport(probes)
        return pending(settled)
      },
      'the cluster to settle',
      log,
    ).catch((error) => {
      // Past the bound, what is left goes to the scaling step (open slots, a source that
      // died mid-move: it waits and settles on its own) or, if that has nothing to do,
      // fails the task as "formed but unhealthy"; never reported as settled.
      if (opts.signal?.aborted) throw error
      log(`redis_cluster: not settled within the wait (${pending(settled)[0] ?? 'unknown'}): handing over to the scaling step`)
    })
  }
  log(`cluster already formed: ${settled.masters.length} masters, ${settled.replicas.length} replicas${settled.newNodes.length ? `, ${settled.newNodes.length} new node(s) left alone` : ''}`)
  const nodeTimeout = await restoreDrift(run, reached.probes)
  return result(run, {changed: false, action: 'none', commands: 0, plan: reached.plan, report: settled, newNodes: settled.newNodes, unreachable: reached.unreachable, nodeTimeout, probes})
}

// The formation proper, phase by phase; returns the commands sent, the agreed report and
// what became of the nodes' cluster-node-timeout.
async function applySteps(
  run: FormRun,
  plan: ClusterPlan,
  reachable: readonly NodeProbeOk[],
  steps: Steps,
  short: ReadonlyMap<string, number>,
): Promise<{sent: number; report: ClusterReport; nodeTimeout: NodeTimeoutOutcome}> {
  const byAddr = new Map(reachable.map((p) => [p.addr, p]))
  const nodeOf = (addr: string) => byAddr.get(addr)!.node
  let sent = await assignSlots(run, steps, nodeOf, short)
  checkAbort(run.opts.signal)
  const fresh = reachable.every((p) => p.view.lines === 1)
  sent += fresh ? await meetMesh(run, reachable, steps.meetTarget) : await meetSeed(run, steps, nodeOf)
  sent += await awaitKnown(run, reachable)
  sent += await attachReplicas(run, reachable, steps, nodeOf)
  const report = await awaitAgreement(run, plan, reachable)
  const nodeTimeout = await restoreAfterForming(run, reachable, short)
  await awaitSync(run, plan, reachable, nodeOf)
  return {sent, report, nodeTimeout}
}

// cluster_state:ok on every node: the declared timeout back on all of them (also the ones
// an earlier, killed run left short), each read back; a node that refuses fails the task.
// `restored` names only the nodes found off the declared value before this run.
async function restoreAfterForming(run: FormRun, reachable: readonly NodeProbeOk[], short: ReadonlyMap<string, number>): Promise<NodeTimeoutOutcome> {
  const declared = run.opts.declaredNodeTimeout
  const formingMs = short.size > 0 ? Math.min(...short.values()) : undefined
  const drift = timeoutDrift(reachable, declared)
  const out = {formingMs, restored: drift.map((d) => d.addr), was: driftSummary(drift)}
  if (!declared || (short.size === 0 && drift.length === 0)) return out
  const targets = reachable.flatMap((p) => {
    const ms = declared(p.node)
    return ms === undefined ? [] : [{node: p.node, ms}]
  })
  run.log(`redis_cluster: cluster-node-timeout back to the declared value on ${targets.length} node(s)`)
  await setNodeTimeouts(run.pool, targets, run.concurrency, run.opts.password)
  return out
}

async function undoShort(run: FormRun, reachable: readonly NodeProbeOk[], short: ReadonlyMap<string, number>): Promise<void> {
  const declared = run.opts.declaredNodeTimeout!
  await forEachNode(
    reachable.filter((p) => short.has(p.addr)),
    run.concurrency,
    (p) => setNodeTimeouts(run.pool, [{node: p.node, ms: declared(p.node)!}], 1, run.opts.password).catch(() => {}),
  )
}

// 1. Slots and distinct epochs, one pipeline per node, all before any MEET
//    (SET-CONFIG-EPOCH is refused once a node knows another).
//    Fresh nodes first take the short forming timeout, in the same pipeline (no extra round trip).
async function assignSlots(run: FormRun, steps: Steps, nodeOf: (addr: string) => ClusterNode, short: ReadonlyMap<string, number>): Promise<number> {
  const setup = [...steps.setup]
  if (setup.length === 0) return 0
  let sent = 0
  const forming = short.size > 0 ? `, cluster-node-timeout ${Math.min(...short.values())} on ${short.size} fresh node(s) until formed` : ''
  run.log(`redis_cluster: assigning slots and config epochs on ${setup.length} node(s)${forming}`)
  await forEachNode(setup, run.concurrency, async ([addr, s]) => {
    const node = nodeOf(addr)
    await run.pool
      .run(node, async (r) => {
        const pipe = r.pipeline()
        const ms = short.get(addr)
        if (ms !== undefined) pipe.call('CONFIG', 'SET', 'cluster-node-timeout', String(ms))
        for (const chunk of s.addslots) pipe.call('CLUSTER', 'ADDSLOTS', ...chunk.map(String))
        if (s.epoch !== undefined) pipe.call('CLUSTER', 'SET-CONFIG-EPOCH', String(s.epoch))
        const res = (await pipe.exec()) ?? []
        // Counted as the cluster commands check mode reports; the CONFIG SET is not one.
        sent += res.length - (ms === undefined ? 0 : 1)
        for (const [err] of res) if (err) throw err
      })
      .catch((error) => {
        throw nodeError(node, `slot/epoch setup failed: ${describeRedisError(error, run.opts.password)}`)
      })
  })
  return sent
}

// 2. Everyone MEETs the seed; gossip does the rest.
async function meetSeed(run: FormRun, steps: Steps, nodeOf: (addr: string) => ClusterNode): Promise<number> {
  if (steps.meet.length === 0) return 0
  let sent = 0
  const seed = nodeOf(steps.meetTarget)
  const seedIp = await resolveIp(seed.ip, seed.host)
  run.log(`redis_cluster: ${steps.meet.length} node(s) meeting seed ${steps.meetTarget}`)
  await forEachNode(steps.meet, run.concurrency, async (addr) => {
    const node = nodeOf(addr)
    await run.pool
      .run(node, (r) => r.call('CLUSTER', 'MEET', seedIp, String(seed.port)))
      .catch((error) => {
        throw nodeError(node, `CLUSTER MEET ${seedIp} ${seed.port} failed: ${describeRedisError(error, run.opts.password)}`)
      })
    sent++
  })
  return sent
}

// 2'. A fresh formation: nodes MEET each other directly (meetPairs: every pair up to
//     MESH_MAX nodes, else several seeds), one pipeline per sending node.
async function meetMesh(run: FormRun, reachable: readonly NodeProbeOk[], seed: string): Promise<number> {
  const byAddr = new Map(reachable.map((p) => [p.addr, p.node]))
  const pairs = meetPairs(
    reachable.map((p) => p.addr),
    seed,
  )
  if (pairs.length === 0) return 0
  const from = new Map<string, ClusterNode[]>()
  for (const [a, b] of pairs) {
    const list = from.get(a) ?? []
    list.push(byAddr.get(b)!)
    from.set(a, list)
  }
  const ips = new Map<ClusterNode, string>()
  for (const p of reachable) ips.set(p.node, await resolveIp(p.node.ip, p.node.host))
  run.log(`redis_cluster: ${pairs.length} MEET(s) among ${reachable.length} node(s)`)
  let sent = 0
  await forEachNode([...from], run.concurrency, async ([addr, peers]) => {
    const node = byAddr.get(addr)!
    await run.pool
      .run(node, async (r) => {
        const pipe = r.pipeline()
        for (const o of peers) pipe.call('CLUSTER', 'MEET', ips.get(o)!, String(o.port))
        const res = (await pipe.exec()) ?? []
        sent += res.length
        for (const [err] of res) if (err) throw err
      })
      .catch((error) => {
        throw nodeError(node, `CLUSTER MEET failed: ${describeRedisError(error, run.opts.password)}`)
      })
  })
  return sent
}

// A node that stops answering mid-formation (killed, its host gone) fails the task
// after NODE_DOWN_MS, named with its host and the step, instead of the whole timeout.
function noteAnswer(run: FormRun, p: NodeProbeOk, info: Record<string, string> | string, step: string): void {
  if (typeof info !== 'string') {
    run.downSince.delete(p.addr)
    return
  }
  const since = run.downSince.get(p.addr) ?? Date.now()
  run.downSince.set(p.addr, since)
  if (Date.now() - since >= NODE_DOWN_MS) {
    throw nodeError(
      p.node,
      `stopped answering while waiting for ${step} (for ${Math.round((Date.now() - since) / 1000)} s): ${info}`,
      'the instance died or its host went away during formation: run up again, it restarts the instance and finishes the formation',
    )
  }
}

// 3. Wait until every node knows all N before REPLICATE needs the master's id.
//    Gossip spreads a few peers per ping, so the last few take long (a coupon
//    collector); every few seconds, lagging nodes MEET the peers they still lack.
async function awaitKnown(run: FormRun, reachable: readonly NodeProbeOk[]): Promise<number> {
  const N = reachable.length
  let sent = 0
  run.log(`redis_cluster: waiting for ${N} node(s) to know each other`)
  let lastNudge = Date.now()
  await waitFor(
    run.deadline,
    run.opts.signal,
    run.nodes.length,
    async () => {
      const infos = await infoAll(
        run.pool,
        reachable.map((p) => p.node),
        run.concurrency,
      )
      const behind: string[] = []
      const lagging: NodeProbeOk[] = []
      infos.forEach((info, i) => {
        const addr = reachable[i].addr
        noteAnswer(run, reachable[i], info, 'nodes to meet')
        if (typeof info === 'string') behind.push(`${addr} (host ${reachable[i].node.host}): ${info}`)
        else if (Number(info.cluster_known_nodes) < N) {
          behind.push(`${addr} knows ${info.cluster_known_nodes ?? '?'} of ${N}`)
          lagging.push(reachable[i])
        }
      })
      if (lagging.length > 0 && Date.now() - lastNudge >= NUDGE_MS) {
        sent += await meetMissing(run.pool, lagging, reachable, run.concurrency, run.opts.password)
        lastNudge = Date.now()
      }
      return behind
    },
    'nodes to meet',
    run.log,
  )
  return sent
}

// Direct introductions for nodes that gossip has not reached yet: one CLUSTER NODES and
// one pipeline of MEETs per lagging node. Returns the number of MEETs sent.
async function meetMissing(pool: NodePool, lagging: readonly NodeProbeOk[], all: readonly NodeProbeOk[], concurrency: number, password?: string): Promise<number> {
  let sent = 0
  const ids = new NodeIds()
  await forEachNode(lagging, concurrency, async (p) => {
    await pool
      .run(p.node, async (r) => {
        const view = digestClusterNodes(String(await r.call('CLUSTER', 'NODES')), ids)
        const known = new Set(Array.from(view.known, (x) => ids.ids[x]))
        const missing = all.filter((o) => o !== p && !known.has(o.myself.id))
        if (missing.length === 0) return
        const pipe = r.pipeline()
        for (const o of missing) pipe.call('CLUSTER', 'MEET', o.node.ip, String(o.node.port))
        const res = (await pipe.exec()) ?? []
        sent += res.length
        for (const [err] of res) if (err) throw err
      })
      .catch((error) => {
        throw nodeError(p.node, `CLUSTER MEET of missing peers failed: ${describeRedisError(error, password)}`)
      })
  })
  return sent
}

// 4. Replicas follow their masters; a master still unknown to a replica is retried.
async function attachReplicas(run: FormRun, reachable: readonly NodeProbeOk[], steps: Steps, nodeOf: (addr: string) => ClusterNode): Promise<number> {
  if (steps.replicate.length === 0) return 0
  let sent = 0
  run.log(`redis_cluster: attaching ${steps.replicate.length} replica(s)`)
  const idOf = new Map(reachable.map((p) => [p.addr, p.myself.id]))
  let pending = steps.replicate
  await waitFor(
    run.deadline,
    run.opts.signal,
    run.nodes.length,
    async () => {
      const failed: string[] = []
      const still: typeof pending = []
      await forEachNode(pending, run.concurrency, async ([replica, master]) => {
        const node = nodeOf(replica)
        try {
          await run.pool.run(node, (r) => r.call('CLUSTER', 'REPLICATE', idOf.get(master)!))
          sent++
        } catch (error) {
          const msg = describeRedisError(error, run.opts.password)
          if (!/unknown node/i.test(msg)) throw nodeError(node, `CLUSTER REPLICATE ${master} failed: ${msg}`)
          still.push([replica, master])
          failed.push(`${replica} does not know its master ${master} yet`)
        }
      })
      pending = still
      return failed
    },
    'replicas to attach',
    run.log,
  )
  return sent
}

// 5. Done when every node says ok, knows every node, and all agree on the map and roles.
async function awaitAgreement(run: FormRun, plan: ClusterPlan, reachable: readonly NodeProbeOk[]): Promise<ClusterReport> {
  const N = reachable.length
  run.log(`redis_cluster: waiting for cluster_state:ok and one slot map on all ${N} node(s)`)
  let report: ClusterReport | undefined
  await waitFor(
    run.deadline,
    run.opts.signal,
    run.nodes.length,
    async () => {
      const infos = await infoAll(
        run.pool,
        reachable.map((p) => p.node),
        run.concurrency,
      )
      const behind: string[] = []
      infos.forEach((info, i) => {
        const addr = reachable[i].addr
        noteAnswer(run, reachable[i], info, 'the cluster to agree')
        if (typeof info === 'string') behind.push(`${addr} (host ${reachable[i].node.host}): ${info}`)
        else if (info.cluster_state !== 'ok') behind.push(`${addr} cluster_state:${info.cluster_state}`)
        else if (Number(info.cluster_slots_assigned) !== CLUSTER_SLOTS) behind.push(`${addr} sees ${info.cluster_slots_assigned} of ${CLUSTER_SLOTS} slots assigned`)
        else if (Number(info.cluster_known_nodes) !== N) behind.push(`${addr} knows ${info.cluster_known_nodes} of ${N} nodes`)
      })
      if (behind.length > 0) return behind
      // Only now the expensive round: every node's full view.
      const fresh = await probeAll(
        run.pool,
        reachable.map((p) => p.node),
        run.concurrency,
      )
      report = buildClusterReport(fresh)
      return [...problemTexts(report.problems), ...roleMismatches(plan, fresh)]
    },
    'the cluster to agree',
    run.log,
  )
  return report!
}

// 6. A replica that is attached but still syncing would lose a write acknowledged right
//    after `up` returns (WAIT 1 answers 0): done only when every link is up.
async function awaitSync(run: FormRun, plan: ClusterPlan, reachable: readonly NodeProbeOk[], nodeOf: (addr: string) => ClusterNode): Promise<void> {
  if (plan.replicas.length === 0) return
  const replicaNodes = plan.replicas.map((r) => nodeOf(r.addr)).filter((n) => reachable.some((p) => p.node === n))
  await waitFor(
    run.deadline,
    run.opts.signal,
    run.nodes.length,
    async () => {
      const behind: string[] = []
      await forEachNode(replicaNodes, run.concurrency, async (node) => {
        try {
          const text = String(await run.pool.run(node, (r) => r.call('INFO', 'replication')))
          if (!/master_link_status:up/.test(text)) behind.push(`${nodeAddr(node)} replication link not up yet`)
        } catch (error) {
          behind.push(`${nodeAddr(node)}: ${describeRedisError(error, run.opts.password)}`)
        }
      })
      return behind
    },
    'replicas to finish their first sync',
    run.log,
  )
}
