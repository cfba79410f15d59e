import type {ClusterNode} from '../redis/plan.js'
import {Histogram} from './histogram.js'
import {newWorker, type WorkerKeys} from './keys.js'
import type {RouteSpec} from './routes.js'
import {crc16, SlotRouter, type RouterSink} from './router.js'

// The write loop of one thread: `clients` writers, each `pipeline` requests in flight over one
// counter of its own (`<uuid>-<counter>`), on `sets` shared sets of connections (router.ts).
// A counter is recorded as acknowledged on its own `+OK` and on nothing else: replies of a
// client come back out of order across nodes, so the set of acknowledged counters is kept
// exact (RangeSet), never inferred from a later one. A request that fails is counted by kind
// and its counter is never reused; after a failure other than a redirection the lane waits
// 50 ms, so a cluster that is down is not hammered in a tight loop.

export interface WriterOptions {
  seeds: readonly ClusterNode[]
  password?: string
  clients: number
  pipeline: number
  /** Sets of connections (one per master each) the clients share, round robin. */
  sets: number
  /** Value length in bytes; undefined: the key twice. */
  dataSize?: number
  /** The slot map's source when not a Redis Cluster (Sentinel groups, HAProxy). */
  routes?: RouteSpec
}

export interface Tally {
  sent: number
  acked: number
  failed: number
  errors: Record<string, number>
  /** Redirections followed, by kind: requests that went on to the right node. */
  redirects: Record<string, number>
  hist: Histogram
}

interface Client {
  keys: WorkerKeys
  prefix: Buffer
  crc: number
  next: number
  router: SlotRouter
}

export class Writer implements RouterSink {
  readonly tally: Tally = {sent: 0, acked: 0, failed: 0, errors: {}, redirects: {}, hist: new Histogram()}
  private readonly clients: Client[]
  private readonly routers: SlotRouter[]
  private stopping = false
  private lanes = 0
  private budget = Infinity
  private deadline = Infinity
  private done?: () => void

  constructor(
    private readonly opts: WriterOptions,
    private readonly errorKind: (text: string) => string,
  ) {
    const size = opts.dataSize ?? -1
    this.routers = Array.from({length: Math.max(1, Math.min(opts.clients, opts.sets))}, () => new SlotRouter(opts.seeds, opts.password, this, size, false, opts.routes))
    this.clients = Array.from({length: opts.clients}, (_, i) => {
      const keys = newWorker()
      const prefix = Buffer.from(`${keys.uuid}-`)
      return {keys, prefix, crc: crc16(prefix), next: 0, router: this.routers[i % this.routers.length]}
    })
  }

  /** Connections and slot maps first, so that the rate measures writes only. */
  async connect(): Promise<void> {
    await Promise.all(this.routers.map((r) => r.refresh(true)))
  }

  /** Write until stop(), the deadline or the budget; resolves once every request in flight has its outcome. */
  run(o: {durationMs?: number; requests?: number}): Promise<void> {
    this.deadline = o.durationMs === undefined ? Infinity : performance.now() + o.durationMs
    this.budget = o.requests ?? Infinity
    return new Promise((resolve) => {
      this.done = resolve
      this.lanes = this.clients.length * this.opts.pipeline
      for (let i = 0; i < this.clients.length; i++) for (let p = 0; p < this.opts.pipeline; p++) this.next(i)
    })
  }

  stop(): void {
    this.stopping = true
  }

  private next(i: number): void {
    const t0 = performance.now()
    if (this.stopping || this.tally.sent >= this.budget || t0 >= this.deadline) {
      this.stopping = true
      if (--this.lanes === 0) this.done?.()
      return
    }
    const c = this.clients[i]
    this.tally.sent++
    c.router.send(i, c.next++, t0)
  }

  prefix(i: number): Buffer {
    return this.clients[i].prefix
  }

  prefixCrc(i: number): number {
    return this.clients[i].crc
  }

  acked(i: number, counter: number, t0: number): void {
    const t = this.tally
    t.hist.record((performance.now() - t0) * 1000)
    this.clients[i].keys.acked.add(counter)
    t.acked++
    this.next(i)
  }

  // A writer's routers send SET only: never called.
  got(): void {}

  redirected(kind: string): void {
    this.tally.redirects[kind] = (this.tally.redirects[kind] ?? 0) + 1
  }

  failed(i: number, _counter: number, _t0: number, text: string): void {
    const t = this.tally
    t.failed++
    const kind = this.errorKind(text)
    t.errors[kind] = (t.errors[kind] ?? 0) + 1
    if (kind === 'MOVED' || kind === 'ASK') this.next(i)
    else setTimeout(() => this.next(i), 50)
  }

  keys(): WorkerKeys[] {
    return this.clients.map((c) => c.keys)
  }

  async close(): Promise<void> {
    await Promise.all(this.routers.map((r) => r.close()))
  }
}
