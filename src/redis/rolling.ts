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
import {DIRECT} from './pool.js'

export interface RollingTarget {
  host: string
  ip: string
  port: number
  /**
   * Stops and starts the instance on its host; resolves when it answers again. save: stop it
   * with SHUTDOWN SAVE (its keys come back from that RDB); a failed save leaves it running.
   */
  restart(opts: {save: boolean}): Promise<{ok: boolean; msg: string}>
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
      host: ip,
      port,
      password,
      ...DIRECT,
      connectTimeout: 5000,
      commandTimeout: 10_000,
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

export async function withNode<T>(t: {ip: string; port: number; passwords: Array<string | undefined>}, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = await open(t.ip, t.port, t.passwords)
  try {
    return await fn(r)
  } finally {
    r.disconnect()
  }
}

// The node's own word on its role, its master and its healthy replicas. A node that does
// not answer is "unknown", never "alone": a master taken for alone would be restarted with
// its keys and no replica to hand them to.
export async function inspectNode(t: {ip: string; port: number; passwords: Array<string | undefined>}): Promise<RestartNode> {
  const addr = nodeAddr(t)
  try {
    return await withNode(t, async (r) => {
      let text: string
      try {
        text = String(await r.call('CLUSTER', 'NODES'))
      } catch (error) {
        if (/cluster support disabled/i.test((error as Error).message)) return {addr, role: 'alone', healthyReplicas: []}
        throw error
      }
      const entries = parseClusterNodes(text)
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
  } catch (error) {
    return {addr, role: 'unknown', healthyReplicas: [], error: (error as Error)?.message ?? String(error)}
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
export async function waitReady(t: RollingTarget, as: 'replica' | 'master' | 'alone', opts: RollingOptions): Promise<string | undefined> {
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
// master) is simply over. Past that, send CLUSTER FAILOVER again, once.
const MF_TIMEOUT_MS = 5000
const FAILOVER_ATTEMPTS = 2
/** Replication bytes a replica may trail its master by when the failover starts (the master pauses its clients until it caught up). */
export const MAX_SYNC_LAG_BYTES = 1024 * 1024

/** Why `replica` is not an in-sync copy of `master` (its own INFO replication against the master's offset); undefined when it is. */
export async function syncLag(replica: RollingTarget, master: RollingTarget): Promise<string | undefined> {
  const [rep, mas] = await Promise.all([
    withNode(replica, (r) => r.call('INFO', 'replication')).then((t) => parseClusterInfo(String(t))),
    withNode(master, (r) => r.call('INFO', 'replication')).then((t) => parseClusterInfo(String(t))),
  ])
  if (rep.role !== 'slave') return `it is a ${rep.role ?? '?'}, not a replica`
  if (`${rep.master_host}:${rep.master_port}` !== nodeAddr(master)) return `it replicates ${rep.master_host}:${rep.master_port}, not ${nodeAddr(master)}`
  if (rep.master_link_status !== 'up') return `master_link_status:${rep.master_link_status ?? '?'}`
  if (rep.master_sync_in_progress === '1') return 'a full sync is in progress'
  const lag = Number(mas.master_repl_offset) - Number(rep.slave_repl_offset)
  if (!Number.isFinite(lag) || lag > MAX_SYNC_LAG_BYTES) return `${Number.isFinite(lag) ? lag : '?'} byte(s) behind its master`
  return undefined
}

// Votes for the replica's election travel over each master's own bus link to it. Right
// after the replica restarted, a master may still hold the dead link of its previous process
// and its vote is lost (seen: all 10 masters granted, the replica heard none, the election
// failed). So: every master must have had a PONG from the replica's current process.
export async function votersHeard(replica: RollingTarget): Promise<string | undefined> {
  const {id, uptimeS, entries} = await withNode(replica, async (r) => {
    const res = (await r.pipeline().call('CLUSTER', 'MYID').call('INFO', 'server').call('CLUSTER', 'NODES').exec()) ?? []
    for (const [err] of res) if (err) throw err
    return {id: String(res[0][1]), uptimeS: Number(parseClusterInfo(String(res[1][1])).uptime_in_seconds), entries: parseClusterNodes(String(res[2][1]))}
  })
  // A process up for a minute has been pinged by everyone (every node_timeout / 2 at least).
  if (!(uptimeS < 60)) return undefined
  const voters = entries.filter((e) => e.master && e.slots.length > 0 && !e.fail && !e.myself)
  const deaf: string[] = []
  await Promise.all(
    voters.map(async (v) => {
      const heard = await withNode({ip: v.ip, port: v.port, passwords: replica.passwords}, async (r) => {
        const res = (await r.pipeline().call('TIME').call('CLUSTER', 'NODES').exec()) ?? []
        const now = Number((res[0][1] as string[])[0]) * 1000
        const me = parseClusterNodes(String(res[1][1])).find((e) => e.id === id)
        // Its pong_recv on the voter's clock, against when the replica started on that clock.
        return !!me && me.linkState === 'connected' && me.pongRecv >= now - uptimeS * 1000 + 1000
      }).catch(() => false)
      if (!heard) deaf.push(v.addr)
    }),
  )
  return deaf.length ? `${deaf.length} master(s) have not heard from it since its restart (e.g. ${deaf[0]})` : undefined
}

// Redis starts another election for the same replica only 4 × cluster-node-timeout after the
// last one (the auth retry time): a CLUSTER FAILOVER sent before that only waits for votes.
async function retryDelayMs(replica: RollingTarget): Promise<number> {
  const v = await withNode(replica, (r) => r.call('CONFIG', 'GET', 'cluster-node-timeout')).then(
    (x) => Number((x as string[])[1]),
    () => NaN,
  )
  return 4 * (Number.isFinite(v) ? v : 15_000) + 500
}

// CLUSTER FAILOVER on the replica (the master agrees and hands over with no write lost),
// only once the replica is an in-sync copy and every voter can reach it, then wait until
// both say their new role. At most two attempts (on 5.0 each one pauses the master's
// clients for up to 5 s), the second when Redis would hold a new election.
export async function failover(replica: RollingTarget, master: RollingTarget, opts: RollingOptions): Promise<string | undefined> {
  const deadline = Date.now() + opts.stepTimeoutMs
  let why: string | undefined
  let next = 0
  for (let attempt = 1; attempt <= FAILOVER_ATTEMPTS; attempt++) {
    if (next > Date.now()) await sleep(Math.min(next, deadline) - Date.now())
    const lag = await poll(deadline, opts.signal, async () => (await syncLag(replica, master)) ?? (await votersHeard(replica)))
    if (lag) return lag === 'interrupted' ? lag : `${nodeAddr(replica)} is not an in-sync replica of ${nodeAddr(master)}: ${lag}`
    const sent = Date.now()
    try {
      await withNode(replica, (r) => r.call('CLUSTER', 'FAILOVER'))
    } catch (error) {
      return `CLUSTER FAILOVER refused: ${(error as Error).message}`
    }
    why = await poll(Math.min(deadline, Date.now() + MF_TIMEOUT_MS + 1000), opts.signal, async () => {
      const [a, b] = await Promise.all([withNode(replica, roleOf), withNode(master, roleOf)])
      return a === 'master' && b === 'slave' ? undefined : `roles not swapped yet (${nodeAddr(replica)} ${a}, ${nodeAddr(master)} ${b})`
    })
    if (why === undefined || why === 'interrupted' || Date.now() >= deadline) break
    next = sent + (await retryDelayMs(replica))
    if (attempt < FAILOVER_ATTEMPTS)
      opts.log?.(
        `manual failover ${nodeAddr(master)} → ${nodeAddr(replica)} not done (${why}): CLUSTER FAILOVER once more in ${Math.round((next - Date.now()) / 1000)} s, when Redis holds a new election`,
      )
  }
  return why === undefined || why === 'interrupted' ? why : `${why} (CLUSTER FAILOVER sent at most ${FAILOVER_ATTEMPTS} times)`
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
          if (step.kind === 'refuse') {
            result.failed.push({addr: step.addr, msg: `${step.why}; not restarted`})
            return
          }
          const t = byAddr.get(step.addr)!
          log(`restarting ${step.addr} (${t.host})${step.save ? ' with SHUTDOWN SAVE (no replica to hand over to)' : ''}`)
          let r = await t.restart({save: step.save === true})
          if (!r.ok && step.save && opts.allowDataLoss) {
            log(`${step.addr}: SHUTDOWN SAVE failed (${r.msg}); --allow-data-loss: restarting it without saving, its keys are lost`)
            r = await t.restart({save: false})
          }
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
