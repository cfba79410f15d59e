// Rolling restarts of cluster nodes from the controller: each node says who it is (its
// own CLUSTER NODES), planRolling orders the work per shard (replicas first, masters
// handed over by CLUSTER FAILOVER to a healthy replica), and every step waits until the
// node is back in the cluster (cluster_state:ok, a replica's link to its master up)
// before the next one of that shard starts. Shards proceed side by side.
import {setTimeout as sleep} from 'node:timers/promises'
import {Redis} from 'ioredis'
import pLimit from 'p-limit'
import {planRolling, type RestartNode, type RollingStep} from './config.js'
import {nodeAddr, parseClusterInfo, parseClusterNodes} from './nodes.js'

export interface RollingTarget {
  host: string
  ip: string
  port: number
  /** Stops and starts the instance on its host; resolves when it answers again. */
  restart(): Promise<{ok: boolean; msg: string}>
  /** Passwords to try, in order (the new one, then the one it was started with). */
  passwords: Array<string | undefined>
}

export interface RollingOptions {
  /** Limit for each wait (node back, roles swapped). */
  stepTimeoutMs: number
  /** Shards restarted at the same time. */
  concurrency?: number
  /** Restart a master with no in-sync replica and no persistence instead of refusing it. */
  allowDataLoss?: boolean
  log?: (msg: string) => void
  signal?: AbortSignal
}

export interface RollingResult {
  plan: RollingStep[][]
  restarted: string[]
  failovers: Array<{from: string; to: string}>
  failed: Array<{addr: string; msg: string}>
}

// A plain connection to one node, trying each known password (a live requirepass change
// may be half applied); closed by the caller.
async function open(ip: string, port: number, passwords: Array<string | undefined>): Promise<Redis> {
  let last: unknown
  const tries = [...new Set(passwords.map((p) => p || undefined))]
  for (const password of tries.length ? tries : [undefined]) {
    const r = new Redis({
      host: ip, port, password, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0,
      enableReadyCheck: false, disableClientInfo: true, retryStrategy: () => null, connectTimeout: 5000, commandTimeout: 10_000,
    })
    r.on('error', () => {})
    try {
      await r.connect()
      await r.ping()
      return r
    } catch (error) {
      last = error
      r.disconnect()
      if (!/WRONGPASS|NOAUTH|invalid password|invalid username/i.test(String((error as Error)?.message ?? error))) break
    }
  }
  throw last instanceof Error ? last : new Error(String(last))
}

async function withNode<T>(t: {ip: string; port: number; passwords: Array<string | undefined>}, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = await open(t.ip, t.port, t.passwords)
  try {
    return await fn(r)
  } finally {
    r.disconnect()
  }
}

// The node's own word on its role, its master and its healthy replicas.
export async function inspectNode(t: {ip: string; port: number; passwords: Array<string | undefined>}): Promise<RestartNode> {
  const addr = nodeAddr(t)
  try {
    return await withNode(t, async (r) => {
      const entries = parseClusterNodes(String(await r.call('CLUSTER', 'NODES')))
      const me = entries.find((e) => e.myself)
      const known = entries.filter((e) => !e.handshake && !e.noaddr)
      if (!me || known.length <= 1) return {addr, id: me?.id, role: 'alone', healthyReplicas: []}
      const byId = new Map(entries.map((e) => [e.id, e]))
      if (me.replica) {
        const m = me.masterId ? byId.get(me.masterId) : undefined
        return {addr, id: me.id, role: 'replica', masterAddr: m?.addr, healthyReplicas: []}
      }
      const healthy = entries.filter((e) => e.masterId === me.id && e.replica && !e.fail && !e.pfail && e.linkState === 'connected').map((e) => e.addr)
      return {addr, id: me.id, role: 'master', healthyReplicas: healthy}
    })
  } catch {
    // Cluster support off, or not answering: nothing to hand over, restart it as it is.
    return {addr, role: 'alone', healthyReplicas: []}
  }
}

async function poll(deadline: number, signal: AbortSignal | undefined, check: () => Promise<string | undefined>): Promise<string | undefined> {
  let why: string | undefined
  for (;;) {
    if (signal?.aborted) return 'interrupted'
    try {
      why = await check()
    } catch (error) {
      why = (error as Error).message
    }
    if (why === undefined) return undefined
    if (Date.now() >= deadline) return why
    await sleep(200)
  }
}

// Back in service: answers, sees the cluster ok, and as a replica is linked to its master.
async function waitReady(t: RollingTarget, as: 'replica' | 'master' | 'alone', opts: RollingOptions): Promise<string | undefined> {
  return poll(Date.now() + opts.stepTimeoutMs, opts.signal, () =>
    withNode(t, async (r) => {
      if (as === 'alone') return undefined
      const info = parseClusterInfo(String(await r.call('CLUSTER', 'INFO')))
      if (info.cluster_state !== 'ok') return `cluster_state:${info.cluster_state ?? '?'}`
      const repl = parseClusterInfo(String(await r.call('INFO', 'replication')))
      if (repl.role === 'slave' && (repl.master_link_status !== 'up' || repl.master_sync_in_progress === '1')) return `replica link ${repl.master_link_status ?? '?'}`
      return undefined
    }),
  )
}

const roleOf = (r: Redis) => r.call('INFO', 'replication').then((t) => parseClusterInfo(String(t)).role)

// Redis aborts a manual failover that has not completed in 5 s (CLUSTER_MF_TIMEOUT): an
// election that lost its votes (another shard's election took this epoch's vote from a
// master) is simply over. Past that, send CLUSTER FAILOVER again.
const MF_TIMEOUT_MS = 5000

// CLUSTER FAILOVER on the replica (the master agrees and hands over with no write lost),
// then wait until both say their new role; re-sent while the step's time lasts.
export async function failover(replica: RollingTarget, master: RollingTarget, opts: RollingOptions): Promise<string | undefined> {
  const deadline = Date.now() + opts.stepTimeoutMs
  for (let attempt = 1; ; attempt++) {
    try {
      await withNode(replica, (r) => r.call('CLUSTER', 'FAILOVER'))
    } catch (error) {
      return `CLUSTER FAILOVER refused: ${(error as Error).message}`
    }
    const why = await poll(Math.min(deadline, Date.now() + MF_TIMEOUT_MS + 1000), opts.signal, async () => {
      const [a, b] = await Promise.all([withNode(replica, roleOf), withNode(master, roleOf)])
      return a === 'master' && b === 'slave' ? undefined : `roles not swapped yet (${nodeAddr(replica)} ${a}, ${nodeAddr(master)} ${b})`
    })
    if (why === undefined || why === 'interrupted' || Date.now() >= deadline) return why && attempt > 1 ? `${why} (CLUSTER FAILOVER sent ${attempt} times)` : why
    opts.log?.(`manual failover ${nodeAddr(master)} → ${nodeAddr(replica)} not done after ${attempt} attempt(s) (${why}): sending CLUSTER FAILOVER again`)
  }
}

/** Restart the targets shard by shard; a failed step stops its shard, the others go on. */
export async function rollingRestart(targets: readonly RollingTarget[], opts: RollingOptions): Promise<RollingResult> {
  const byAddr = new Map(targets.map((t) => [nodeAddr(t), t]))
  const log = opts.log ?? (() => {})
  const nodes = await Promise.all(targets.map((t) => inspectNode(t)))
  const plan = planRolling(nodes)
  const result: RollingResult = {plan, restarted: [], failovers: [], failed: []}
  // A failover target is usually a node we restart too; if not, reach it with the same passwords.
  const peer = (addr: string, like: RollingTarget): RollingTarget => {
    const known = byAddr.get(addr)
    if (known) return known
    const i = addr.lastIndexOf(':')
    return {host: '?', ip: addr.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(addr.slice(i + 1)), passwords: like.passwords, restart: async () => ({ok: false, msg: 'not ours'})}
  }
  const limit = pLimit(opts.concurrency ?? 4)
  // Restarts go side by side; elections do not: two at once compete for the masters' one
  // vote per epoch and one of them times out.
  const oneElection = pLimit(1)
  await Promise.all(
    plan.map((steps) =>
      limit(async () => {
        for (const step of steps) {
          if (opts.signal?.aborted) return
          if (step.kind === 'failover') {
            const master = byAddr.get(step.master)!
            log(`manual failover ${step.master} → ${step.replica}`)
            const why = await oneElection(() => failover(peer(step.replica, master), master, opts))
            if (why) {
              result.failed.push({addr: step.master, msg: `failover to ${step.replica} did not complete within ${opts.stepTimeoutMs / 1000} s: ${why}; not restarted`})
              return
            }
            result.failovers.push({from: step.master, to: step.replica})
            continue
          }
          const t = byAddr.get(step.addr)!
          log(`restarting ${step.addr} (${t.host})`)
          const r = await t.restart()
          if (!r.ok) {
            result.failed.push({addr: step.addr, msg: r.msg})
            return
          }
          const why = await waitReady(t, step.as, opts)
          if (why) {
            result.failed.push({addr: step.addr, msg: `restarted, but not back in the cluster within ${opts.stepTimeoutMs / 1000} s: ${why}`})
            return
          }
          result.restarted.push(step.addr)
        }
      }),
    ),
  )
  return result
}
