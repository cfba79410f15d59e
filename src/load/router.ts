import {Redis} from 'ioredis'
import {ClusterError} from '../errors.js'
import type {ClusterNode} from '../redis/plan.js'
import {RespConnection} from './resp.js'

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
  let crc = 0
  for (let i = s; i < e; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ b[i]) & 0xff]
  return crc & 16383
}

const REDIRECT = /^(MOVED|ASK) (\d+) (\S*):(\d+)/
const MAX_HOPS = 16
const REFRESH_EVERY_MS = 200

export class SlotRouter {
  private readonly owner: Array<string | undefined> = new Array(16384)
  private readonly conns = new Map<string, Redis>()
  private readonly data = new Map<string, RespConnection>()
  private refreshing?: Promise<void>
  private lastRefresh = 0

  constructor(
    private readonly seeds: readonly ClusterNode[],
    private readonly password?: string,
  ) {}

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

  private dataConn(addr: string): RespConnection {
    let c = this.data.get(addr)
    if (!c) {
      const i = addr.lastIndexOf(':')
      c = new RespConnection(addr.slice(0, i), Number(addr.slice(i + 1)), this.password || undefined)
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
    const candidates = [...new Set([...this.conns.keys(), ...this.seeds.map((n) => `${n.ip}:${n.port}`)])]
    let last: unknown
    for (const addr of candidates) {
      try {
        const reply = (await this.conn(addr).call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>
        for (const [start, end, [ip, port]] of reply) {
          const at = `${ip || addr.slice(0, addr.lastIndexOf(':'))}:${port}`
          for (let s = start; s <= end; s++) this.owner[s] = at
        }
        return
      } catch (error) {
        last = error
      }
    }
    throw new ClusterError(`no node answered CLUSTER SLOTS (asked ${candidates.length}): ${last instanceof Error ? last.message : String(last)}`)
  }

  /** SET on the slot's master; resolves on its reply, rejects with Redis's (or the connection's) error. */
  async set(key: string, value: string): Promise<void> {
    const slot = keySlot(key)
    for (let hop = 0; ; hop++) {
      let addr = this.owner[slot]
      if (!addr) {
        await this.refresh(true)
        addr = this.owner[slot]
        if (!addr) throw new Error(`CLUSTERDOWN Hash slot ${slot} is not served`)
      }
      try {
        await this.dataConn(addr).send(['SET', key, value])
        return
      } catch (error) {
        const msg = error instanceof Error ? error.message : String(error)
        const m = REDIRECT.exec(msg)
        if (!m || hop >= MAX_HOPS) {
          // The map may be stale after a failover: refresh in the background.
          if (!/^(OOM|NOAUTH|WRONGPASS)/.test(msg)) void this.refresh().catch(() => {})
          throw error
        }
        const target = `${m[3] || addr.slice(0, addr.lastIndexOf(':'))}:${m[4]}`
        if (m[1] === 'MOVED') {
          this.owner[slot] = target
          void this.refresh().catch(() => {})
          continue
        }
        // ASKING and the SET leave back to back on one connection: the flag covers that SET only.
        const c = this.dataConn(target)
        const asking = c.send(['ASKING'])
        const set = c.send(['SET', key, value])
        await asking.catch(() => {})
        const setErr = await set.then(
          () => undefined,
          (e: Error) => e,
        )
        if (!setErr) return
        if (!REDIRECT.test(setErr.message) || hop >= MAX_HOPS) throw setErr
      }
    }
  }

  async close(): Promise<void> {
    for (const c of this.data.values()) c.close()
    await Promise.all([...this.conns.values()].map((c) => c.quit().catch(() => c.disconnect())))
  }
}
