// redis_cluster: form one Redis Cluster from the redis-server instances of every host in
// the play, replacing `redis-cli --cluster create`. Runs once per play (not per host).
//
// Parameters:
//   replicas       int     replicas per master (default 0: every node is a master)
//   password       string  requirepass of the instances (secret; default none)
//   timeout        int     seconds to wait for the cluster to settle (default 60 + 0.1 per node)
//   allow_partial  bool    go on without nodes that cannot be reached: form the cluster from
//                          the others, or report an existing one (default false: fail)
//   remove_missing bool    drain, forget and stop the cluster's nodes the inventory no longer
//                          lists (default false: report them, change nothing, fail)
//   allow_data_loss bool   carry out a step that loses acknowledged writes instead of refusing
//                          it (default false)
//
// Fresh nodes form under a short cluster-node-timeout (src/redis/node-timeout.ts) and get
// their host's redis_cluster_node_timeout back once every node says cluster_state:ok; a
// node found running another value than that (a run killed in between) gets it back too
// (changed; check mode: "would restore").
//
// Nodes come from each host's variables: ports redis_port_start (default 6379) up to
// redis_port_start + redis_count - 1 (redis_count default 100), at redis_bind when set,
// else at the host's address (names are resolved: MEET on 5.0.x takes numeric IPs only).
//
// Idempotent: fresh empty nodes are formed into the planned cluster; a formation that was
// interrupted is finished; an existing cluster is scaled to the inventory (src/redis/scale.ts:
// open slots settled, new empty nodes joined, replicas attached, slots rebalanced, nodes no
// longer listed removed with remove_missing), and left alone (ok) when it already matches.
// A node that is alone but holds keys or foreign slots fails the task, naming it. Check
// mode sends no state-changing command and says what it would send.
//
// Example:
//   - name: Form the cluster
//     redis_cluster:
//       replicas: 1
//       password: "{{ redis_password }}"
//     register: cluster

import {ClusterError} from '../../errors.js'
import {defaultTimeoutMs, formCluster, type FormResult} from '../../redis/cluster.js'
import {declaredNodeTimeouts} from '../../redis/node-timeout.js'
import {clusterNodesFromHosts} from '../../redis/inventory-nodes.js'
import {planCluster, type ClusterNode, type ClusterPlan} from '../../redis/plan.js'
import {scaleCluster, scaleMessage, type ScaleResult} from '../../redis/scale.js'
import {restorePlacement} from '../../redis/placement.js'
import {rangesToString} from '../../redis/nodes.js'
import {leftOut, problemTexts} from '../../redis/status.js'
import type {ItemResult, ModuleContext} from '../types.js'
import {definePlayModule} from '../define.js'

// What a `register:` user reads: the same shape whether formed now or found formed.
export interface ClusterSummary {
  action: FormResult['action']
  masters: Array<{addr: string; host: string; slots: string; replicas: string[]}>
  replicas: Array<{addr: string; host: string; master: string}>
  perHost: Record<string, {masters: number; replicas: number}>
  seed: string | null
  newNodes: string[]
  unreachable: string[]
  problems: string[]
  warnings: string[]
  commands: number
  /** The short cluster-node-timeout a fresh formation ran under, and the nodes given the declared one back. */
  nodeTimeout: FormResult['nodeTimeout']
  elapsedMs: number
}

// Formed or resumed: the plan is the truth; found formed: what the nodes say is.
export function summarize(result: FormResult): ClusterSummary {
  const {plan, report} = result
  const usePlan = result.action !== 'none'
  const masters = usePlan
    ? plan.masters.map((m) => ({addr: m.addr, host: m.host, slots: rangesToString(m.slots), replicas: m.replicas}))
    : report.masters.map((m) => ({
        addr: m.addr,
        host: m.host,
        slots: m.slots,
        replicas: report.replicas.filter((r) => r.masterId === m.id).map((r) => r.addr),
      }))
  const replicas = usePlan ? plan.replicas.map((r) => ({addr: r.addr, host: r.host, master: r.master})) : report.replicas.map((r) => ({addr: r.addr, host: r.host, master: r.masterAddr ?? '?'}))
  const perHost: Record<string, {masters: number; replicas: number}> = {}
  for (const [h, c] of Object.entries(usePlan ? plan.perHost : report.perHost)) perHost[h] = {masters: c.masters, replicas: c.replicas}
  return {
    action: result.action,
    masters,
    replicas,
    perHost,
    seed: usePlan ? plan.seed : report.seed,
    newNodes: result.newNodes,
    unreachable: result.unreachable,
    problems: problemTexts(report.problems),
    warnings: plan.warnings,
    commands: result.commands,
    nodeTimeout: result.nodeTimeout,
    elapsedMs: result.elapsedMs,
  }
}

function planLine(plan: ClusterPlan): string {
  const sizes = plan.masters.map((m) => m.slotCount)
  const lo = Math.min(...sizes)
  const hi = Math.max(...sizes)
  const hosts = Object.keys(plan.perHost).length
  return `${plan.masters.length} masters (${lo === hi ? lo : `${lo}-${hi}`} slots each), ${plan.replicas.length} replicas over ${hosts} host(s)`
}

// Hosts that failed an earlier task (build, start) would leave holes in the plan: a
// cluster over a partial set is only formed when the user asks for it.
function clusterHosts(ctx: ModuleContext, args: Record<string, unknown>): Array<{host: string; address: string; vars: Record<string, unknown>}> {
  const failed = ctx.failedHosts ?? []
  if (failed.length > 0 && args.allow_partial !== true) {
    throw new ClusterError(`not forming the cluster: ${failed.length} host(s) failed earlier tasks (${failed.slice(0, 10).join(', ')}${failed.length > 10 ? ', …' : ''})`, {
      hint: 'fix those hosts and run up again (it converges), or pass --allow-partial to form the cluster over the hosts that are up',
    })
  }
  // The whole group, also with --limit (only some hosts' tasks ran, the cluster is all of
  // them: seen from the limited hosts alone it would look fresh, and get a second cluster),
  // less the hosts that failed this play (left out only with allow_partial, checked above).
  const all = ctx.groupHosts && ctx.groupHosts.length > 0 ? ctx.groupHosts : ctx.playHosts.length > 0 ? ctx.playHosts : [{host: ctx.host, address: ctx.address, vars: ctx.vars}]
  return all.filter((h) => !failed.includes(h.host))
}

// An existing cluster that scaling changed: healthy after it, then masters back to the
// planned spread across hosts (check mode: the layout after scaling is not known yet).
// "; cluster-node-timeout restored on 3 node(s) (were 1000 on 3 node(s))", or '' when none was.
function timeoutNote(result: FormResult, check: boolean): string {
  const t = result.nodeTimeout
  if (t.restored.length === 0) return ''
  return `; ${check ? 'would restore' : 'restored'} the declared cluster-node-timeout on ${t.restored.length} node(s) (running ${t.was})`
}

function formingNote(result: FormResult): string {
  const ms = result.nodeTimeout.formingMs
  return ms === undefined ? '' : `, under cluster-node-timeout ${ms} until formed, then the declared value again`
}

async function scaledResult(ctx: ModuleContext, nodes: ClusterNode[], result: FormResult, scaled: ScaleResult, password: string | undefined): Promise<ItemResult> {
  const data = {
    ...summarize({...result, report: scaled.report, newNodes: scaled.report.newNodes}),
    scaling: {...scaled, report: {...scaled.report, problems: problemTexts(scaled.report.problems)}},
  } as unknown as Record<string, unknown>
  const problems = problemTexts(scaled.report.problems)
  if (!ctx.check && problems.length > 0) return {status: 'failed', msg: `scaled, but the cluster is unhealthy: ${problems.slice(0, 5).join('; ')}`, data}
  const placed = ctx.check ? undefined : await restorePlacement(nodes, scaled.report, {password, log: (msg) => ctx.log(msg), signal: ctx.signal})
  return {
    status: placed?.status === 'failed' ? 'failed' : 'changed',
    msg: `${scaleMessage(scaled, ctx.check)}${placed?.msg ? `; ${placed.msg}` : ''}${timeoutNote(result, ctx.check)}`,
    data: {...data, placement: placed},
  }
}

async function runItem(ctx: ModuleContext, args: Record<string, unknown>): Promise<ItemResult> {
  const replicas = Number(args.replicas ?? 0)
  const password = args.password === undefined || args.password === null || args.password === '' ? undefined : String(args.password)
  if (password) ctx.secrets.add(password)
  const hosts = clusterHosts(ctx, args)
  const nodes = await clusterNodesFromHosts(hosts)
  const plan = planCluster(nodes, replicas)
  // 0 (the playbook default) means "scale with the fleet".
  const timeoutSec = args.timeout === undefined || args.timeout === null || Number(args.timeout) === 0 ? undefined : Number(args.timeout)
  if (timeoutSec !== undefined && !(timeoutSec > 0)) throw new ClusterError(`timeout must be a positive number of seconds, got ${String(args.timeout)}`)
  const result = await formCluster(nodes, plan, {
    password,
    timeoutMs: timeoutSec === undefined ? defaultTimeoutMs(nodes.length) : timeoutSec * 1000,
    check: ctx.check,
    allowPartial: args.allow_partial === true,
    log: (msg) => ctx.log(msg),
    signal: ctx.signal,
    declaredNodeTimeout: declaredNodeTimeouts(hosts),
  })
  let scaleNote = ''
  if (result.action === 'none') {
    // An existing cluster: settle, join, rebalance and remove until it matches the inventory.
    const scaled = await scaleCluster(nodes, {
      replicas,
      password,
      removeMissing: args.remove_missing === true,
      allowDataLoss: args.allow_data_loss === true,
      check: ctx.check,
      log: (msg) => ctx.log(msg),
      signal: ctx.signal,
      timeoutMs: timeoutSec === undefined ? undefined : timeoutSec * 1000,
      // The formation's probe round, just taken: not asked again.
      probes: result.probes,
    })
    if (scaled.changed) return scaledResult(ctx, nodes, result, scaled, password)
    if (scaled.skipped) scaleNote = `; scaling skipped: ${scaled.skipped}`
  }
  const summary = summarize(result)
  const data = summary as unknown as Record<string, unknown>
  const extras = [
    result.newNodes.length ? `${result.newNodes.length} new node(s) not in the cluster` : '',
    result.unreachable.length
      ? ctx.check && args.allow_partial !== true
        ? `${result.unreachable.length} node(s) not reachable yet (started or let through first)`
        : `${result.unreachable.length} unreachable node(s) left out`
      : '',
  ].filter(Boolean)
  const tail = (extras.length ? `; ${extras.join(', ')}` : '') + timeoutNote(result, ctx.check)

  if (result.action === 'none') {
    // Found formed: healthy is ok; anything `check` would complain about fails the task
    // (in check mode too: that is what the real run would say).
    const problems = result.report.problems.filter((p) => !(args.allow_partial === true && leftOut(p)))
    // Check mode: nodes not reachable now are started (or their ports opened) by the tasks
    // before this one; the real run waits for them to rejoin (what they cause meanwhile,
    // cluster_state:fail included, is not a failure of the plan).
    if (ctx.check && args.allow_partial !== true && result.unreachable.length > 0) {
      const now = problems.find((p) => p.kind !== 'unreachable')?.text
      return {status: 'ok', msg: `cluster formed; would wait for ${result.unreachable.length} node(s) not reachable now to rejoin once started or let through${now ? ` (now: ${now})` : ''}`, data}
    }
    if (problems.length > 0) {
      return {status: 'failed', msg: `cluster formed but unhealthy: ${problemTexts(problems.slice(0, 5)).join('; ')}${problems.length > 5 ? '; …' : ''}${timeoutNote(result, ctx.check)}`, data}
    }
    const placed = await restorePlacement(nodes, result.report, {password, check: ctx.check, log: (msg) => ctx.log(msg), signal: ctx.signal})
    if (placed.status !== 'ok') return {status: placed.status, msg: placed.msg, data: {...data, placement: placed}}
    const status = result.nodeTimeout.restored.length > 0 ? 'changed' : 'ok'
    return {status, msg: `cluster already formed: ${summary.masters.length} masters, ${summary.replicas.length} replicas${tail}${scaleNote}`, data}
  }
  if (ctx.check) {
    const what = result.action === 'formed' ? `would form ${planLine(result.plan)}` : `would finish an interrupted formation of ${planLine(result.plan)}`
    return {status: 'changed', msg: `${what}: ${result.commands} command(s), seed ${result.plan.seed}${tail}`, data}
  }
  const verb = result.action === 'formed' ? 'formed' : 'finished forming'
  return {
    status: 'changed',
    msg: `${verb} ${planLine(result.plan)} in ${(result.elapsedMs / 1000).toFixed(1)} s (${result.commands} commands, seed ${result.plan.seed}${formingNote(result)})${tail}`,
    data,
  }
}

export const redisClusterModule = definePlayModule({
  name: 'redis_cluster',
  description: 'Form one Redis Cluster from all instances of the play (idempotent; replaces redis-cli --cluster create)',
  args: {
    replicas: {type: 'int', default: 0},
    password: {type: 'string', secret: true},
    timeout: {type: 'int'},
    allow_partial: {type: 'bool', default: false},
    remove_missing: {type: 'bool', default: false},
    allow_data_loss: {type: 'bool', default: false},
  },
  runItem,
})
