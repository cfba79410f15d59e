import {ClusterError} from '../errors.js'
import {NodePool, describeRedisError} from '../redis/pool.js'
import {parseClusterInfo} from '../redis/nodes.js'
import type {ClusterNode} from '../redis/plan.js'
import {Worker} from 'node:worker_threads'
import {Histogram, type HistogramState} from './histogram.js'
import {RangeSet, type WorkerKeys} from './keys.js'
import {routeSeeds, type RouteSpec} from './routes.js'
import {Verifier} from './verifier.js'
import {type Tally, Writer} from './writer.js'

// `baremetal load`: N cluster clients, each SETting `<uuid>-<counter>` in a loop with
// `pipeline` requests in flight (1: one at a time, like the legacy workload's processes), on
// shared sets of connections with our own slot map (MOVED/ASK followed: router.ts), on one
// thread or split over worker threads (writer.ts, worker.ts); then, with verify, every
// acknowledged key read back and compared with the value derived from its name (verifier.ts).
// Acknowledgements come back out of order across nodes: every counter is recorded on its own
// reply, never inferred.

// Defaults by measurement (50 clients, 6 local masters, 2 cores shared with the servers):
// 16 in flight per client reaches the servers' rate where 1 leaves them idle, and a second
// thread only takes CPU from the servers on the same machine.
export const DEFAULT_PIPELINE = 16
export const DEFAULT_THREADS = 1

export interface LoadOptions {
  /** Candidate seed nodes (the inventory's); the first few that serve a formed cluster are used. */
  nodes: readonly ClusterNode[]
  password?: string
  clients: number
  /** Requests in flight per client (default DEFAULT_PIPELINE). */
  pipeline?: number
  /** Worker threads the clients are split over (default DEFAULT_THREADS). */
  threads?: number
  /** Sets of connections (one per master each) the clients share (default: one per thread). */
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
  /** Not a Redis Cluster: where the slot map comes from (routes.ts); nodes are then not asked. */
  routes?: RouteSpec
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
  /** Worker threads that wrote. */
  threads: number
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
  /** Redirections followed (MOVED, ASK): not failures, the request went on to the slot's node. */
  redirects: Record<string, number>
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

interface Snapshot {
  sent: number
  acked: number
  failed: number
  hist: Histogram
}

function progressTimer(opts: LoadOptions, snap: () => Snapshot, started: number, fraction: (sent: number) => number): NodeJS.Timeout | undefined {
  if (!opts.progress) return undefined
  let lastAcked = 0
  let lastAt = started
  return setInterval(() => {
    const now = Date.now()
    const t = snap()
    const rate = ((t.acked - lastAcked) * 1000) / Math.max(1, now - lastAt)
    lastAcked = t.acked
    lastAt = now
    opts.progress!({
      elapsedMs: now - started,
      sent: t.sent,
      acked: t.acked,
      errors: t.failed,
      fraction: fraction(t.sent),
      opsPerSec: rate,
      p50Ms: t.hist.percentile(0.5) / 1000,
      p99Ms: t.hist.percentile(0.99) / 1000,
    })
  }, 250)
}

/** How many of n go to part i of k (the first n % k parts one more). */
export function share(n: number, k: number, i: number): number {
  return Math.floor(n / k) + (i < n % k ? 1 : 0)
}

/** The options of each thread: clients, connection sets and a request budget split as evenly as they go. */
export function splitWork(o: {clients: number; sets: number; requests?: number; threads: number}): Array<{clients: number; sets: number; requests?: number}> {
  const k = Math.max(1, Math.min(o.threads, o.clients))
  return Array.from({length: k}, (_, i) => {
    const clients = share(o.clients, k, i)
    return {clients, sets: Math.max(1, Math.min(clients, share(o.sets, k, i))), requests: o.requests === undefined ? undefined : share(o.requests, k, i)}
  })
}

/** One thread's outcome, as the worker posts it back (plain data). */
export interface ThreadResult extends Omit<Tally, 'hist'> {
  hist: HistogramState
  keys: Array<{uuid: string; ranges: Array<[number, number]>}>
}

/** The threads' outcomes as one: counts and errors added, histograms merged, every client's keys kept. */
export function mergeThreads(parts: readonly ThreadResult[]): Tally & {workers: WorkerKeys[]} {
  const hist = new Histogram()
  const errors: Record<string, number> = {}
  const redirects: Record<string, number> = {}
  const workers: WorkerKeys[] = []
  let sent = 0
  let acked = 0
  let failed = 0
  for (const p of parts) {
    sent += p.sent
    acked += p.acked
    failed += p.failed
    hist.merge(p.hist)
    for (const [k, n] of Object.entries(p.errors)) errors[k] = (errors[k] ?? 0) + n
    for (const [k, n] of Object.entries(p.redirects)) redirects[k] = (redirects[k] ?? 0) + n
    for (const w of p.keys) {
      const set = new RangeSet()
      for (const r of w.ranges) set.ranges.push([r[0], r[1]])
      workers.push({uuid: w.uuid, acked: set})
    }
  }
  return {sent, acked, failed, errors, redirects, hist, workers}
}

export function threadResult(w: Writer): ThreadResult {
  const t = w.tally
  return {sent: t.sent, acked: t.acked, failed: t.failed, errors: t.errors, redirects: t.redirects, hist: t.hist.state(), keys: w.keys().map((k) => ({uuid: k.uuid, ranges: k.acked.ranges}))}
}

function checkLoadOptions(opts: LoadOptions): {pipeline: number; threads: number} {
  if (!(opts.clients >= 1)) throw new ClusterError(`--clients must be at least 1, got ${opts.clients}`)
  const pipeline = opts.pipeline ?? DEFAULT_PIPELINE
  if (!(Number.isInteger(pipeline) && pipeline >= 1)) throw new ClusterError(`--pipeline must be a whole number ≥ 1, got ${opts.pipeline}`)
  const threads = opts.threads ?? DEFAULT_THREADS
  if (!(Number.isInteger(threads) && threads >= 1)) throw new ClusterError(`--workers must be a whole number ≥ 1, got ${opts.threads}`)
  if (opts.connections !== undefined && !(Number.isInteger(opts.connections) && opts.connections >= 1)) throw new ClusterError(`--connections must be a whole number ≥ 1, got ${opts.connections}`)
  if (opts.durationMs === undefined && opts.requests === undefined) throw new ClusterError('give a duration or a number of requests')
  return {pipeline, threads}
}

// The write phase; never throws for request failures (they are counted by kind).
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const {pipeline, threads} = checkLoadOptions(opts)
  const seeds = opts.routes ? [] : await pickSeeds(opts.nodes, opts.password)
  // One set per thread unless told: 50 clients each on connections of their own made 300
  // sockets of 6 masters carry one or two requests per write, and the write syscalls, not
  // Redis, set the rate (25k vs 118k SET/s at pipeline 16 on the same cluster).
  const sets = Math.min(opts.clients, opts.connections ?? Math.min(threads, opts.clients))
  const parts = splitWork({clients: opts.clients, sets, requests: opts.requests, threads})
  const budget = opts.requests
  const fraction = (started: number) => (sent: number) =>
    Math.min(1, Math.max(opts.durationMs === undefined ? 0 : (Date.now() - started) / opts.durationMs, budget === undefined ? 0 : sent / Math.max(1, budget)))
  const run = parts.length === 1 ? runHere : runThreads
  const {durationMs, merged} = await run(opts, seeds, pipeline, parts, fraction)
  return {
    clients: opts.clients,
    pipeline,
    connections: sets,
    threads: parts.length,
    seeds: opts.routes ? routeSeeds(opts.routes) : seeds.map((n) => `${n.ip}:${n.port}`),
    dataSize: opts.dataSize ?? null,
    durationMs,
    sent: merged.sent,
    acked: merged.acked,
    failed: merged.failed,
    opsPerSec: (merged.acked * 1000) / Math.max(1, durationMs),
    latencyMs: latencyOf(merged.hist),
    errors: merged.errors,
    redirects: merged.redirects,
    workers: merged.workers,
    ranges: merged.workers.reduce((n, w) => n + w.acked.ranges.length, 0),
  }
}

type Part = {clients: number; sets: number; requests?: number}
type Ran = {durationMs: number; merged: ReturnType<typeof mergeThreads>}

// One thread: the writer runs on this event loop.
async function runHere(opts: LoadOptions, seeds: ClusterNode[], pipeline: number, parts: Part[], fraction: (started: number) => (sent: number) => number): Promise<Ran> {
  const w = new Writer({seeds, password: opts.password, clients: parts[0].clients, pipeline, sets: parts[0].sets, dataSize: opts.dataSize, routes: opts.routes}, errorKind)
  let timer: NodeJS.Timeout | undefined
  const onAbort = () => w.stop()
  try {
    await w.connect()
    const started = Date.now()
    timer = progressTimer(opts, () => w.tally, started, fraction(started))
    opts.signal?.addEventListener('abort', onAbort)
    if (opts.signal?.aborted) w.stop()
    await w.run({durationMs: opts.durationMs, requests: parts[0].requests})
    const durationMs = Date.now() - started
    return {durationMs, merged: mergeThreads([threadResult(w)])}
  } finally {
    opts.signal?.removeEventListener('abort', onAbort)
    if (timer) clearInterval(timer)
    await w.close()
  }
}

/** What a worker thread is given (workerData): its share of the clients and of the budget. */
export interface ThreadJob {
  seeds: ClusterNode[]
  password?: string
  clients: number
  pipeline: number
  sets: number
  dataSize?: number
  durationMs?: number
  requests?: number
  progress: boolean
  routes?: RouteSpec
}

export type ThreadMessage =
  {type: 'ready'} | {type: 'failed'; message: string} | {type: 'progress'; sent: number; acked: number; failed: number; hist: HistogramState} | {type: 'done'; result: ThreadResult}

// Several threads: each a Writer of its own clients and connections (worker.ts); they connect,
// start together, post their tallies four times a second and their keys at the end.
async function runThreads(opts: LoadOptions, seeds: ClusterNode[], pipeline: number, parts: Part[], fraction: (started: number) => (sent: number) => number): Promise<Ran> {
  const url = new URL('./worker.js', import.meta.url)
  const jobs: ThreadJob[] = parts.map((p) => ({
    seeds,
    password: opts.password,
    clients: p.clients,
    pipeline,
    sets: p.sets,
    dataSize: opts.dataSize,
    durationMs: opts.durationMs,
    requests: p.requests,
    progress: Boolean(opts.progress),
    routes: opts.routes,
  }))
  const threads = jobs.map((job) => new Worker(url, {workerData: job}))
  const latest: Snapshot[] = jobs.map(() => ({sent: 0, acked: 0, failed: 0, hist: new Histogram()}))
  const results: ThreadResult[] = []
  let timer: NodeJS.Timeout | undefined
  const stop = () => threads.forEach((t) => t.postMessage({type: 'stop'}))
  try {
    const ready = threads.map((t, i) => threadDone(t, i, latest, results))
    await Promise.all(ready.map((r) => r.ready))
    const started = Date.now()
    threads.forEach((t) => t.postMessage({type: 'start'}))
    opts.signal?.addEventListener('abort', stop)
    if (opts.signal?.aborted) stop()
    const merged = (): Snapshot => {
      const m = {sent: 0, acked: 0, failed: 0, hist: new Histogram()}
      for (const s of latest) {
        m.sent += s.sent
        m.acked += s.acked
        m.failed += s.failed
        m.hist.merge(s.hist)
      }
      return m
    }
    timer = progressTimer(opts, merged, started, fraction(started))
    await Promise.all(ready.map((r) => r.done))
    const durationMs = Date.now() - started
    await Promise.all(ready.map((r) => r.exited))
    return {durationMs, merged: mergeThreads(results)}
  } finally {
    opts.signal?.removeEventListener('abort', stop)
    if (timer) clearInterval(timer)
    await Promise.all(threads.map((t) => t.terminate()))
  }
}

function deferred(): {promise: Promise<void>; resolve: () => void; reject: (e: Error) => void} {
  let resolve!: () => void
  let reject!: (e: Error) => void
  const promise = new Promise<void>((a, b) => {
    resolve = a
    reject = b
  })
  return {promise, resolve, reject}
}

function threadDone(t: Worker, i: number, latest: Snapshot[], results: ThreadResult[]): {ready: Promise<void>; done: Promise<void>; exited: Promise<void>} {
  const ready = deferred()
  const done = deferred()
  const fail = (e: Error) => {
    ready.reject(e)
    done.reject(e)
  }
  // Awaited only once every thread is ready: a failure before that must not go unhandled.
  done.promise.catch(() => {})
  const exited = new Promise<void>((resolve) => t.once('exit', () => resolve()))
  t.on('message', (m: ThreadMessage) => {
    if (m.type === 'ready') ready.resolve()
    else if (m.type === 'failed') fail(new ClusterError(m.message))
    else if (m.type === 'progress') latest[i] = {sent: m.sent, acked: m.acked, failed: m.failed, hist: Histogram.from(m.hist)}
    else {
      results[i] = m.result
      done.resolve()
    }
  })
  t.once('error', (e) => fail(e))
  t.once('exit', (code) => fail(new ClusterError(`load worker thread ${i + 1} exited (${code}) before reporting`)))
  return {ready: ready.promise, done: done.promise, exited}
}

export function latencyOf(h: Histogram): LatencyMs {
  const ms = (us: number) => Math.round(us) / 1000
  return {p50: ms(h.percentile(0.5)), p90: ms(h.percentile(0.9)), p99: ms(h.percentile(0.99)), p999: ms(h.percentile(0.999)), max: ms(h.max), mean: ms(h.mean())}
}

// Reads back every acknowledged key (verifier.ts).
export async function verifyKeys(
  nodes: readonly ClusterNode[],
  workers: readonly WorkerKeys[],
  opts: {password?: string; dataSize?: number; progress?: (checked: number, total: number) => void; routes?: RouteSpec},
): Promise<VerifyResult> {
  const started = Date.now()
  const seeds = opts.routes ? [] : await pickSeeds(nodes, opts.password)
  const v = new Verifier(seeds, opts.password, workers, opts.dataSize ?? -1, errorKind, opts.routes)
  const timer = opts.progress ? setInterval(() => opts.progress!(v.res.checked + v.res.unreadable, v.total), 250) : undefined
  try {
    const res = await v.run()
    return {...res, durationMs: Date.now() - started}
  } finally {
    if (timer) clearInterval(timer)
  }
}
