// A writer for one Sentinel group whose writes count only when acknowledged: it asks a
// Sentinel for the master, checks ROLE on it, then SET + WAIT 1 on that connection. On any
// failure it asks again (what a Sentinel-aware client does through a failover).
import assert from 'node:assert/strict'
import {Redis} from 'ioredis'
import {errorKind} from './acked.js'

export interface SentinelAckedOptions {
  sentinels: Array<{host: string; port: number}>
  /** The group's Sentinel master name. */
  name: string
  password?: string
}

const opts = {connectTimeout: 2000, commandTimeout: 3000, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null, lazyConnect: true} as const

export class SentinelAcked {
  readonly acked = new Map<string, string>()
  private conn: Redis | undefined
  constructor(private readonly o: SentinelAckedOptions) {}

  /** The address a Sentinel names now, confirmed by ROLE master; undefined while none is. */
  async master(): Promise<{host: string; port: number} | undefined> {
    for (const s of this.o.sentinels) {
      const r = new Redis({...opts, host: s.host, port: s.port})
      r.on('error', () => {})
      try {
        await r.connect()
        const a = (await r.call('SENTINEL', 'get-master-addr-by-name', this.o.name)) as string[] | null
        if (!a) continue
        const m = new Redis({...opts, host: a[0], port: Number(a[1]), password: this.o.password})
        m.on('error', () => {})
        try {
          await m.connect()
          const role = (await m.call('ROLE')) as unknown[]
          if (role[0] === 'master') return {host: a[0], port: Number(a[1])}
        } catch {
          // not reachable: ask the next Sentinel
        } finally {
          m.disconnect()
        }
      } catch {
        // this Sentinel does not answer: the next one
      } finally {
        r.disconnect()
      }
    }
    return undefined
  }

  private async connection(): Promise<Redis> {
    if (this.conn?.status === 'ready') return this.conn
    this.conn?.disconnect()
    this.conn = undefined
    const m = await this.master()
    if (!m) throw new Error('NOMASTER no Sentinel names a master that says ROLE master')
    const c = new Redis({...opts, ...m, password: this.o.password})
    c.on('error', () => {})
    await c.connect()
    this.conn = c
    return c
  }

  /** true when SET was acknowledged by WAIT 1, else the kind of failure. */
  async attempt(key: string, value: string): Promise<true | string> {
    try {
      const c = await this.connection()
      const res = await c.pipeline().set(key, value).call('WAIT', '1', '2000').exec()
      const err = res?.[0][0] ?? res?.[1][0]
      if (err) {
        this.conn?.disconnect()
        return errorKind(err)
      }
      if (Number(res?.[1][1]) >= 1) {
        this.acked.set(key, value)
        return true
      }
      return 'NOT_REPLICATED'
    } catch (error) {
      this.conn?.disconnect()
      return errorKind(error)
    }
  }

  /** n keys, each retried until acknowledged. */
  writeKeys(prefix: string, n: number): Promise<void> {
    return writeEach((k, v) => this.attempt(k, v), prefix, n, {retryMs: 300, what: ''})
  }

  /** Writes until stopped; the longest time without an acknowledged write is the client-visible gap. */
  background(prefix: string): {stop(): Promise<{acked: number; failed: number; maxGapMs: number}>} {
    let running = true
    let acked = 0
    let failed = 0
    let gap = 0
    let last = Date.now()
    const loop = (async () => {
      for (let i = 0; running; i++) {
        if ((await this.attempt(`${prefix}:${i}`, `w${i}`)) === true) {
          acked++
          gap = Math.max(gap, Date.now() - last)
          last = Date.now()
        } else {
          failed++
          await new Promise((x) => setTimeout(x, 100))
        }
      }
    })()
    return {
      async stop() {
        running = false
        await loop
        return {acked, failed, maxGapMs: gap}
      },
    }
  }

  /** Every acknowledged key reads back with its value from the current master. */
  async assertNoneLost(): Promise<number> {
    const c = await this.connection()
    const keys = [...this.acked.keys()]
    const missing: string[] = []
    for (let i = 0; i < keys.length; i += 100) {
      const vals = await c.mget(...keys.slice(i, i + 100))
      vals.forEach((v, j) => {
        if (v !== this.acked.get(keys[i + j])) missing.push(`${keys[i + j]}=${String(v)}`)
      })
    }
    assert.deepEqual(missing.slice(0, 20), [], `${missing.length} of ${keys.length} acknowledged key(s) lost or wrong`)
    return keys.length
  }

  close(): void {
    this.conn?.disconnect()
  }
}

/** n keys through attempt, each retried (40 times, retryMs apart) until acknowledged. */
export async function writeEach(attempt: (key: string, value: string) => Promise<true | string>, prefix: string, n: number, o: {retryMs: number; what: string}): Promise<void> {
  for (let i = 0; i < n; i++) {
    let r: true | string = 'none'
    for (let t = 0; t < 40 && r !== true; t++) {
      r = await attempt(`${prefix}:${i}`, `v${i}`)
      if (r !== true) await new Promise((x) => setTimeout(x, o.retryMs))
    }
    assert.equal(r, true, `write of ${prefix}:${i}${o.what} not acknowledged`)
  }
}
