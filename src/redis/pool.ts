import {readFileSync} from 'node:fs'
import {Redis} from 'ioredis'
import {forEachNode} from './helpers.js'
import {NodeIds, parseClusterInfo} from './nodes.js'
import {nodeAddr, type ClusterNode} from './plan.js'
import {probeFromText, type NodeProbe} from './status.js'

// Plain per-node connections from the controller (never ioredis' Cluster client, which
// needs a formed cluster), and the two read-only rounds every cluster step polls with.

// As many connections as the file-descriptor limit leaves room for (512 kept for SSH and
// the rest), between 256 and 4096: below the fleet's node count every polling round over
// all nodes reconnects to each of them (an LRU scan never hits), which at 1000 nodes was
// 5,000 connects per formation.
const MAX_OPEN = Math.min(4096, Math.max(256, openFilesLimit() - 512))

function openFilesLimit(): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    return m ? Number(m[1]) : 1024
  } catch {
    return 1024
  }
}
/** Default ioredis commandTimeout of a NodePool. */
export const POOL_COMMAND_TIMEOUT_MS = 30_000

/**
 * One plain connection to one node, as every tool here opens it: no offline queue, no
 * retries, no reconnects (a node that is gone fails the command now, it is not waited for).
 */
export const DIRECT = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  enableReadyCheck: false,
  // CLIENT SETINFO is two more round trips per node, and unknown to 5.0.x.
  disableClientInfo: true,
  retryStrategy: () => null,
} as const

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
      ...DIRECT,
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
    await Promise.all(all.map((r) => r.quit().catch(() => r.disconnect())))
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

// One round trip per node: everything the classifier and the report need, digested as
// it arrives so 1000 answers of ~110 KB never sit in memory together.
export async function probeAll(pool: NodePool, nodes: readonly ClusterNode[], concurrency: number): Promise<NodeProbe[]> {
  const ids = new NodeIds()
  const keep = new Set<string>()
  return forEachNode(nodes, concurrency, async (node): Promise<NodeProbe> => {
    const addr = nodeAddr(node)
    try {
      return await pool.run(node, async (r) => {
        // The runtime cluster-node-timeout rides along (no extra round trip): a formation
        // that died before restoring it shows here. CONFIG may be renamed away: not judged then.
        const res = (await r.pipeline().call('CLUSTER', 'INFO').call('CLUSTER', 'NODES').dbsize().call('CONFIG', 'GET', 'cluster-node-timeout').call('INFO', 'server').exec()) ?? []
        for (const [err] of res.slice(0, 3)) if (err) throw err
        const probe = probeFromText(node, addr, parseClusterInfo(String(res[0][1])), String(res[1][1]), Number(res[2][1]), ids, keep)
        const nt = res[3] && !res[3][0] ? Number((res[3][1] as string[])[1]) : NaN
        if (Number.isFinite(nt)) probe.nodeTimeoutMs = nt
        const version = res[4] && !res[4][0] ? parseClusterInfo(String(res[4][1])).redis_version : undefined
        if (version) probe.version = version
        return probe
      })
    } catch (error) {
      return {node, addr, error: describeRedisError(error)}
    }
  })
}

// The cheap poll: CLUSTER INFO is a few hundred bytes where CLUSTER NODES of a
// 1000-node cluster is ~100 KB per node.
export async function infoAll(pool: NodePool, nodes: readonly ClusterNode[], concurrency: number): Promise<Array<Record<string, string> | string>> {
  return forEachNode(nodes, concurrency, async (node) => {
    try {
      return await pool.run(node, async (r) => parseClusterInfo(String(await r.call('CLUSTER', 'INFO'))))
    } catch (error) {
      return describeRedisError(error)
    }
  })
}
