import {Cluster} from 'ioredis'
import {ClusterError} from '../errors.js'
import {NodePool, describeRedisError} from '../redis/pool.js'
import {parseClusterInfo} from '../redis/nodes.js'
import type {ClusterNode} from '../redis/plan.js'
import {Histogram} from './histogram.js'
import {keyOf, newWorker, valueOf, type WorkerKeys} from './keys.js'
import {SlotRouter} from './router.js'

// `baremetal load`: N cluster clients (each its own connections and slot map, MOVED/ASK
// followed: router.ts), each SETting `<uuid>-<counter>` in a loop, one request in flight
// per client like the legacy workload's worker processes, or `pipeline` of them (written
// to the node's connection as issued, as redis-benchmark -P does); then, with
// verify, every acknowledged key read back and compared with the value derived from its
// name. With a pipeline, acknowledgements come back out of order across slots (each
// node answers for itself): every counter is recorded on its own reply, never inferred.

export interface LoadOptions {
  /** Candidate seed nodes (the inventory's); the first few that serve a formed cluster are used. */
  nodes: readonly ClusterNode[]
  password?: string
  clients: number
  /** Requests in flight per client (default 1). */
  pipeline?: number
  /** Sets of connections (one per master each) the clients share (default: one per client). */
  connections?: number
  /** Stop after this long… */
  durationMs?: number
  /** …or after this many SETs (whichever comes first). */
  requests?: number
  /** Value length in bytes; default: the key twice. */
  dataSize?: number
  signal?: AbortSignal
  /** Called about four times a second while writing. */
  progress?: (p: LoadProgress) => void
}

export interface LoadProgress {
  elapsedMs: number
  sent: number
  acked: number
  errors: number
  /** 0..1 of the duration or request budget. */
  fraction: number
  opsPerSec: number
  p50Ms: number
  p99Ms: number
}

export interface LatencyMs {
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
  mean: number
}

export interface LoadResult {
  clients: number
  pipeline: number
  connections: number
  seeds: string[]
  dataSize: number | null
  durationMs: number
  sent: number
  acked: number
  failed: number
  opsPerSec: number
  latencyMs: LatencyMs
  /** Failed requests by kind (MOVED, TRYAGAIN, CLUSTERDOWN, TIMEOUT, CONNECTION_CLOSED, …). */
  errors: Record<string, number>
  /** Acknowledged keys per worker (for verify and --record). */
  workers: WorkerKeys[]
  /** Ranges kept in memory for all acknowledged keys (compactness). */
  ranges: number
}

export interface VerifyResult {
  checked: number
  lost: number
  wrong: number
  /** Keys that could not be read (errors on every attempt): neither lost nor ok. */
  unreadable: number
  durationMs: number
  lostSamples: string[]
  wrongSamples: string[]
  unreadableSamples: string[]
  errors: Record<string, number>
}

// One word per kind of failure, so a change that only causes redirections is told apart
// from one that drops connections or loses the cluster.
export function errorKind(error: unknown): string {
  const msg = error instanceof Error ? error.message : String(error)
  const m = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN|LOADING|READONLY|OOM|MASTERDOWN|BUSY|NOAUTH|WRONGPASS)\b/.exec(msg)
  if (m) return m[1] === 'WRONGPASS' ? 'NOAUTH' : m[1]
  if (/Too many Cluster redirections/i.test(msg)) return 'REDIRECTIONS'
  if (/timed? ?out/i.test(msg)) return 'TIMEOUT'
  if (/ECONNREFUSED/.test(msg)) return 'ECONNREFUSED'
  if (/ECONNRESET|EPIPE/.test(msg)) return 'ECONNRESET'
  if (/Connection is closed|Stream isn't writeable|end of stream/i.test(msg)) return 'CONNECTION_CLOSED'
  if (/refresh slots cache|Cluster isn't ready|None of startup nodes/i.test(msg)) return 'CLUSTER_NOT_READY'
  return 'OTHER'
}

// Seeds: the first nodes (at most 8) that say the cluster is formed. A new node that
// has not joined yet would hand a client an empty slot map.
export async function pickSeeds(nodes: readonly ClusterNode[], password?: string): Promise<ClusterNode[]> {
  const pool = new NodePool({password, connectTimeoutMs: 3000})
  const seeds: ClusterNode[] = []
  const errors: string[] = []
  try {
    for (let i = 0; i < nodes.length && seeds.length < 8; i += 16) {
      const batch = nodes.slice(i, i + 16)
      const infos = await Promise.all(
        batch.map((n) =>
          pool
            .run(n, async (r) => parseClusterInfo(String(await r.call('CLUSTER', 'INFO'))))
            .catch((e) => {
              errors.push(`${n.ip}:${n.port}: ${describeRedisError(e, password)}`)
              return undefined
            }),
        ),
      )
      batch.forEach((n, k) => {
        const info = infos[k]
        if (info && info.cluster_state === 'ok' && Number(info.cluster_slots_assigned) === 16384 && seeds.length < 8) seeds.push(n)
      })
    }
  } finally {
    await pool.closeAll()
  }
  if (seeds.length === 0) {
    throw new ClusterError(`no node of the inventory serves a formed cluster (asked ${nodes.length})${errors.length ? `: ${errors.slice(0, 3).join('; ')}` : ''}`, {
      hint: 'run baremetal up first, and check baremetal status',
    })
  }
  return seeds
}

function newCluster(seeds: readonly ClusterNode[], password?: string, autoPipelining = false): Cluster {
  return new Cluster(
    seeds.map((n) => ({host: n.ip, port: n.port})),
    {
      redisOptions: {password: password || undefined, connectTimeout: 5000, commandTimeout: 10_000, disableClientInfo: true},
      scaleReads: 'master',
      maxRedirections: 32,
      retryDelayOnMoved: 0,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 200,
      retryDelayOnTryAgain: 100,
      slotsRefreshTimeout: 3000,
      enableAutoPipelining: autoPipelining,
    },
  )
}

async function closeClients(clients: readonly Cluster[]): Promise<void> {
  await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())))
}

interface Tally {
  sent: number
  acked: number
  failed: number
  errors: Record<string, number>
  hist: Histogram
}

// One request in flight at a time; a client runs `pipeline` of these over one shared
// counter, so its counters are handed out once each whatever order the replies take.
async function writeLane(client: SlotRouter, w: WorkerKeys, next: {n: number}, t: Tally, stopped: () => boolean, dataSize?: number): Promise<void> {
  while (!stopped()) {
    const n = next.n++
    t.sent++
    const key = keyOf(w.uuid, n)
    const t0 = process.hrtime.bigint()
    try {
      await client.set(key, valueOf(key, dataSize))
      t.hist.record(Number(process.hrtime.bigint() - t0) / 1000)
      w.acked.add(n)
      t.acked++
    } catch (error) {
      t.failed++
      const kind = errorKind(error)
      t.errors[kind] = (t.errors[kind] ?? 0) + 1
      // A cluster that is down must not be hammered in a tight loop.
      if (kind !== 'MOVED' && kind !== 'ASK') await new Promise((r) => setTimeout(r, 50))
    }
  }
}

function progressTimer(opts: LoadOptions, t: Tally, started: number, fraction: () => number): NodeJS.Timeout | undefined {
  if (!opts.progress) return undefined
  let lastAcked = 0
  let lastAt = started
  return setInterval(() => {
    const now = Date.now()
    const rate = ((t.acked - lastAcked) * 1000) / Math.max(1, now - lastAt)
    lastAcked = t.acked
    lastAt = now
    opts.progress!({
      elapsedMs: now - started,
      sent: t.sent,
      acked: t.acked,
      errors: t.failed,
      fraction: fraction(),
      opsPerSec: rate,
      p50Ms: t.hist.percentile(0.5) / 1000,
      p99Ms: t.hist.percentile(0.99) / 1000,
    })
  }, 250)
}

// The write phase; never throws for request failures (they are counted by kind).
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  if (!(opts.clients >= 1)) throw new ClusterError(`--clients must be at least 1, got ${opts.clients}`)
  const pipeline = opts.pipeline ?? 1
  if (!(Number.isInteger(pipeline) && pipeline >= 1)) throw new ClusterError(`--pipeline must be a whole number ≥ 1, got ${opts.pipeline}`)
  if (opts.durationMs === undefined && opts.requests === undefined) throw new ClusterError('give a duration or a number of requests')
  const seeds = await pickSeeds(opts.nodes, opts.password)
  const sets = Math.min(opts.clients, opts.connections ?? opts.clients)
  if (!(Number.isInteger(sets) && sets >= 1)) throw new ClusterError(`--connections must be a whole number ≥ 1, got ${opts.connections}`)
  // Each client its own connections (the legacy workload's processes), or clients sharing
  // `connections` sets of them: what they issue in one tick then leaves in one write per node.
  const routers = Array.from({length: sets}, () => new SlotRouter(seeds, opts.password))
  const clients = Array.from({length: opts.clients}, (_, i) => routers[i % sets])
  // Connections and slot maps first, so that the rate measures writes only.
  await Promise.all(routers.map((c) => c.refresh(true)))
  const workers = clients.map(() => newWorker())
  const t: Tally = {sent: 0, acked: 0, failed: 0, errors: {}, hist: new Histogram()}
  const started = Date.now()
  const deadline = opts.durationMs === undefined ? Infinity : started + opts.durationMs
  const budget = opts.requests ?? Infinity
  const stopped = () => opts.signal?.aborted === true || Date.now() >= deadline || t.sent >= budget
  const fraction = () => Math.min(1, Math.max(opts.durationMs === undefined ? 0 : (Date.now() - started) / opts.durationMs, opts.requests === undefined ? 0 : t.sent / opts.requests))
  const timer = progressTimer(opts, t, started, fraction)
  try {
    await Promise.all(
      clients.flatMap((client, i) => {
        const next = {n: 0}
        return Array.from({length: pipeline}, () => writeLane(client, workers[i], next, t, stopped, opts.dataSize))
      }),
    )
  } finally {
    if (timer) clearInterval(timer)
    await Promise.all(routers.map((c) => c.close()))
  }
  const durationMs = Date.now() - started
  return {
    clients: opts.clients,
    pipeline,
    connections: sets,
    seeds: seeds.map((n) => `${n.ip}:${n.port}`),
    dataSize: opts.dataSize ?? null,
    durationMs,
    sent: t.sent,
    acked: t.acked,
    failed: t.failed,
    opsPerSec: (t.acked * 1000) / Math.max(1, durationMs),
    latencyMs: latencyOf(t.hist),
    errors: t.errors,
    workers,
    ranges: workers.reduce((n, w) => n + w.acked.ranges.length, 0),
  }
}

export function latencyOf(h: Histogram): LatencyMs {
  const ms = (us: number) => Math.round(us) / 1000
  return {p50: ms(h.percentile(0.5)), p90: ms(h.percentile(0.9)), p99: ms(h.percentile(0.99)), p999: ms(h.percentile(0.999)), max: ms(h.max), mean: ms(h.mean())}
}

const SAMPLES = 10
const IN_FLIGHT = 2000

// Reads back every acknowledged key (auto-pipelined GETs, a bounded number in flight),
// retrying reads that fail so a transient error is not reported as a lost key.
export async function verifyKeys(
  nodes: readonly ClusterNode[],
  workers: readonly WorkerKeys[],
  opts: {password?: string; dataSize?: number; progress?: (checked: number, total: number) => void},
): Promise<VerifyResult> {
  const started = Date.now()
  const seeds = await pickSeeds(nodes, opts.password)
  const client = newCluster(seeds, opts.password, true)
  client.on('error', () => {})
  const res: VerifyResult = {checked: 0, lost: 0, wrong: 0, unreadable: 0, durationMs: 0, lostSamples: [], wrongSamples: [], unreadableSamples: [], errors: {}}
  const total = workers.reduce((n, w) => n + w.acked.count, 0)
  const check = async (key: string) => {
    for (let attempt = 0; ; attempt++) {
      try {
        const got = await client.get(key)
        res.checked++
        if (got === null) {
          res.lost++
          if (res.lostSamples.length < SAMPLES) res.lostSamples.push(key)
        } else if (got !== valueOf(key, opts.dataSize)) {
          res.wrong++
          if (res.wrongSamples.length < SAMPLES) res.wrongSamples.push(key)
        }
        return
      } catch (error) {
        const kind = errorKind(error)
        res.errors[kind] = (res.errors[kind] ?? 0) + 1
        if (attempt >= 5) {
          res.unreadable++
          if (res.unreadableSamples.length < SAMPLES) res.unreadableSamples.push(key)
          return
        }
        await new Promise((r) => setTimeout(r, 200 * (attempt + 1)))
      }
    }
  }
  const timer = opts.progress ? setInterval(() => opts.progress!(res.checked + res.unreadable, total), 250) : undefined
  try {
    const inFlight = new Set<Promise<void>>()
    for (const w of workers) {
      for (const n of w.acked) {
        const p: Promise<void> = check(keyOf(w.uuid, n)).finally(() => inFlight.delete(p))
        inFlight.add(p)
        if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight)
      }
    }
    await Promise.all(inFlight)
  } finally {
    if (timer) clearInterval(timer)
    await closeClients([client])
  }
  res.durationMs = Date.now() - started
  return res
}
