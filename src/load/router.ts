import {Redis} from 'ioredis'
import {ClusterError} from '../errors.js'
import type {ClusterNode} from '../redis/plan.js'
import {ViewConnections} from '../redis/sentinel-view.js'
import {DataConnection, writeUint, type DataOwner} from './resp.js'
import {resolveRoutes, type RouteSpec} from './routes.js'

// The write path of `baremetal load`: our own slot map and one SET-only connection per master
// (resp.ts) instead of ioredis's Cluster client, whose per-command bookkeeping (and its
// auto-pipelining, which holds every reply of a batch until the slowest) made the tool
// CPU-bound at a fraction of redis-benchmark's rate on the same cluster. Requests a writer has
// in flight go out on the node's connection as they are issued, so they pipeline by
// themselves; every reply is its own acknowledgement. Redirections are followed as Redis
// Cluster specifies them: MOVED updates the map (and refreshes it from CLUSTER SLOTS, read
// over an ioredis control connection), ASK sends ASKING + the SET to the importing node once.

const TABLE = (() => {
  const t = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let c = i << 8
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1
    t[i] = c & 0xffff
  }
  return t
})()

/** CRC16/XMODEM of b[s..e), continuing from crc (so a key's fixed prefix is hashed once). */
export function crc16(b: Uint8Array, s = 0, e = b.length, crc = 0): number {
  for (let i = s; i < e; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ b[i]) & 0xff]
  return crc
}

/** The key's hash slot, as Redis computes it (CRC16/XMODEM of the key or its {hash tag}, mod 16384). */
export function keySlot(key: string | Buffer): number {
  const b = typeof key === 'string' ? Buffer.from(key) : key
  let s = 0
  let e = b.length
  const open = b.indexOf(0x7b)
  if (open >= 0) {
    const close = b.indexOf(0x7d, open + 1)
    if (close > open + 1) {
      s = open + 1
      e = close
    }
  }
  return crc16(b, s, e) & 16383
}

const DIGITS = new Uint8Array(20)

/**
 * The slot of `<prefix><counter>` from the prefix's CRC: the load's keys are a uuid, a dash
 * and digits (no hash tag), so only the digits are hashed per request, without a string.
 */
export function counterSlot(prefixCrc: number, counter: number): number {
  const end = writeUint(DIGITS, 0, counter)
  return crc16(DIGITS, 0, end, prefixCrc) & 16383
}

const REDIRECT = /^(MOVED|ASK) (\d+) (\S*):(\d+)/
const MAX_HOPS = 16
const REFRESH_EVERY_MS = 200

/** Where a router's requests end: their own +OK, or a failure no redirection could fix. */
export interface RouterSink {
  acked(client: number, counter: number, t0: number): void
  /** A GET's value (a router of reads only). */
  got(client: number, counter: number, value: Buffer | null): void
  failed(client: number, counter: number, t0: number, text: string): void
  /** A MOVED or ASK followed (the request goes on; not a failure). */
  redirected(kind: 'MOVED' | 'ASK'): void
  /** The client's key prefix (`<uuid>-`) and its CRC16. */
  prefix(client: number): Buffer
  prefixCrc(client: number): number
}

const now = () => performance.now()

export class SlotRouter implements DataOwner {
  private readonly owner: Array<string | undefined> = new Array(16384)
  private readonly conns = new Map<string, Redis>()
  private readonly data = new Map<string, DataConnection>()
  private readonly bySlot: Array<DataConnection | undefined> = new Array(16384)
  private refreshing?: Promise<void>
  private lastRefresh = 0

  constructor(
    private readonly seeds: readonly ClusterNode[],
    private readonly password: string | undefined,
    private readonly sink: RouterSink,
    /** Value length in bytes, or < 0 for the key twice. */
    private readonly size: number,
    /** GET the keys instead (verify). */
    private readonly reads = false,
    /** Where the slot map comes from when it is not a Redis Cluster's CLUSTER SLOTS (routes.ts). */
    private readonly routes?: RouteSpec,
  ) {}

  private routeConns?: ViewConnections

  now(): number {
    return now()
  }

  private conn(addr: string): Redis {
    let c = this.conns.get(addr)
    if (!c) {
      const i = addr.lastIndexOf(':')
      c = new Redis({
        host: addr.slice(0, i),
        port: Number(addr.slice(i + 1)),
        password: this.password || undefined,
        connectTimeout: 5000,
        commandTimeout: 10_000,
        disableClientInfo: true,
        // A dead master fails its requests at once (they count, by kind) instead of
        // holding each writer through 20 reconnects; the map is refreshed meanwhile.
        maxRetriesPerRequest: 1,
        retryStrategy: (times) => Math.min(100 * times, 1000),
      })
      c.on('error', () => {})
      this.conns.set(addr, c)
    }
    return c
  }

  private dataConn(addr: string): DataConnection {
    let c = this.data.get(addr)
    if (!c) {
      const i = addr.lastIndexOf(':')
      c = new DataConnection(addr.slice(0, i), Number(addr.slice(i + 1)), this.password || undefined, this, this.reads)
      this.data.set(addr, c)
    }
    return c
  }

  /** Read the slot map from CLUSTER SLOTS of a known master or a seed; at most one refresh in flight. */
  refresh(force = false): Promise<void> {
    if (this.refreshing) return this.refreshing
    if (!force && Date.now() - this.lastRefresh < REFRESH_EVERY_MS) return Promise.resolve()
    this.lastRefresh = Date.now()
    this.refreshing = this.readSlots().finally(() => (this.refreshing = undefined))
    return this.refreshing
  }

  private async readSlots(): Promise<void> {
    if (this.routes) {
      this.routeConns ??= new ViewConnections(this.password)
      for (const r of await resolveRoutes(this.routes, this.routeConns)) for (let s = r.start; s <= r.end; s++) this.setOwner(s, r.addr)
      return
    }
    const candidates = [...new Set([...this.conns.keys(), ...this.seeds.map((n) => `${n.ip}:${n.port}`)])]
    let last: unknown
    for (const addr of candidates) {
      try {
        const reply = (await this.conn(addr).call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>
        for (const [start, end, [ip, port]] of reply) {
          const at = `${ip || addr.slice(0, addr.lastIndexOf(':'))}:${port}`
          for (let s = start; s <= end; s++) this.setOwner(s, at)
        }
        return
      } catch (error) {
        last = error
      }
    }
    throw new ClusterError(`no node answered CLUSTER SLOTS (asked ${candidates.length}): ${last instanceof Error ? last.message : String(last)}`)
  }

  private setOwner(slot: number, addr: string): void {
    this.owner[slot] = addr
    this.bySlot[slot] = this.dataConn(addr)
  }

  /** SET (or GET) `<prefix><counter>` on its slot's master; the outcome goes to the sink, after any redirections. */
  send(client: number, counter: number, t0: number): void {
    this.issue(client, counter, counterSlot(this.sink.prefixCrc(client), counter), t0, 0)
  }

  private issue(client: number, counter: number, slot: number, t0: number, hops: number): void {
    const c = this.bySlot[slot]
    if (c) return c.send(client, this.sink.prefix(client), counter, this.size, t0, hops, false)
    this.refresh(true).then(
      () => {
        if (this.bySlot[slot]) this.issue(client, counter, slot, t0, hops)
        else this.sink.failed(client, counter, t0, `CLUSTERDOWN Hash slot ${slot} is not served`)
      },
      (e: Error) => this.sink.failed(client, counter, t0, e.message),
    )
  }

  acked(client: number, counter: number, t0: number): void {
    this.sink.acked(client, counter, t0)
  }

  got(client: number, counter: number, value: Buffer | null): void {
    this.sink.got(client, counter, value)
  }

  // Redirections are followed as Redis Cluster specifies them: MOVED updates the map (and
  // refreshes it), ASK sends ASKING + the SET, back to back on one connection, once.
  failed(client: number, counter: number, t0: number, hops: number, text: string): void {
    const m = text.charCodeAt(0) === 0x4d || text.charCodeAt(0) === 0x41 ? REDIRECT.exec(text) : null
    if (!m || hops >= MAX_HOPS) {
      // The map may be stale after a failover: refresh in the background.
      if (!/^(OOM|NOAUTH|WRONGPASS)/.test(text)) void this.refresh().catch(() => {})
      return this.sink.failed(client, counter, t0, text)
    }
    const slot = Number(m[2])
    const target = `${m[3] || this.owner[slot]?.slice(0, this.owner[slot]!.lastIndexOf(':')) || '127.0.0.1'}:${m[4]}`
    this.sink.redirected(m[1] as 'MOVED' | 'ASK')
    if (m[1] === 'MOVED') {
      this.setOwner(slot, target)
      void this.refresh().catch(() => {})
      return this.issue(client, counter, slot, t0, hops + 1)
    }
    this.dataConn(target).send(client, this.sink.prefix(client), counter, this.size, t0, hops + 1, true)
  }

  async close(): Promise<void> {
    for (const c of this.data.values()) c.close()
    await this.routeConns?.close()
    await Promise.all([...this.conns.values()].map((c) => c.quit().catch(() => c.disconnect())))
  }
}
