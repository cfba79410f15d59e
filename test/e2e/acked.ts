// Writers whose writes count only when acknowledged: SET then WAIT 1 on the same connection
// (on a replica too), or, for a cluster without replicas, the master's OK. Every durability
// test checks that no key in `acked` is lost or changed.
import assert from 'node:assert/strict'
import {Cluster, Redis} from 'ioredis'

type Seeds = Array<{host: string; port: number}>

export interface AckedOptions {
  /** Seeds of the cluster (ip, port); a function is asked again for each client (a host that changes its address). */
  seeds: Seeds | (() => Seeds)
  /** Replicas to wait for (0: the master's OK is the acknowledgement). */
  replicas: number
  password?: string
  /** Drop the clients' 'error' events (nodes killed or failed over on purpose): the failed writes already count them. */
  quiet?: boolean
}

export interface WriterStats {
  acked: number
  failed: number
  /** The longest single write, acknowledged or not. */
  maxMs: number
  /** Failed writes by kind: CLUSTERDOWN, TIMEOUT, CONNECTION_CLOSED, NOT_REPLICATED (WAIT said 0), … */
  kinds: Record<string, number>
}

/** A writer's figures since it started or since its last mark(). */
export interface WriterWindow extends WriterStats {
  /** The longest time without an acknowledged write (what a client sees of a failover); the first gap may begin before the mark. */
  maxGapMs: number
}

export interface BackgroundWriter {
  stop(): Promise<WriterStats>
  /** Start a new window: since() counts from here. */
  mark(): void
  since(): WriterWindow
}

/** A failed request's kind, as `baremetal load` reports them. */
export function errorKind(error: unknown): string {
  const m = error instanceof Error ? error.message : String(error)
  const first = /^([A-Z]{3,})\b/.exec(m)?.[1]
  if (first && first !== 'ERR') return first
  if (/timed? ?out/i.test(m)) return 'TIMEOUT'
  if (/Connection is closed|ECONNRESET|ECONNREFUSED|EPIPE/i.test(m)) return 'CONNECTION_CLOSED'
  if (/Too many Cluster redirections|Failed to refresh slots/i.test(m)) return 'REDIRECTIONS'
  return 'OTHER'
}

export class AckedKeys {
  readonly acked = new Map<string, string>()
  constructor(private readonly o: AckedOptions) {}

  private seeds(): Seeds {
    return typeof this.o.seeds === 'function' ? this.o.seeds() : this.o.seeds
  }

  client(): Cluster {
    const c = new Cluster(this.seeds(), {
      redisOptions: {connectTimeout: 3000, maxRetriesPerRequest: 3, commandTimeout: 5000, password: this.o.password},
      clusterRetryStrategy: (n) => (n > 50 ? null : 200),
      retryDelayOnFailover: 300,
      retryDelayOnClusterDown: 300,
      retryDelayOnTryAgain: 300,
      maxRedirections: 32,
    })
    if (this.o.quiet) c.on('error', () => {})
    return c
  }

  // Never hangs: a cluster that is down for longer makes it throw.
  async write(c: Cluster, key: string, value: string): Promise<boolean> {
    return (await this.attempt(c, key, value)) === true
  }

  /** true when acknowledged, else why not (the kind of the error, or NOT_REPLICATED when WAIT said 0). */
  async attempt(c: Cluster, key: string, value: string): Promise<true | string> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`write of ${key} timed out`)), 8000)))
    try {
      if (this.o.replicas === 0) return (await Promise.race([c.set(key, value), timeout])) === 'OK' || 'NOT_OK'
      const res = await Promise.race([c.pipeline().set(key, value).call('WAIT', '1', '2000').exec(), timeout])
      if (!res) return 'NO_REPLY'
      const err = res[0][0] ?? res[1][0]
      if (err) return errorKind(err)
      return Number(res[1][1]) >= 1 || 'NOT_REPLICATED'
    } finally {
      clearTimeout(timer)
    }
  }

  /** n keys, each retried until acknowledged (a replica may still be in its first sync). */
  async writeKeys(prefix: string, n: number, value = (i: number) => `v${i}-${prefix}`): Promise<void> {
    const c = this.client()
    try {
      for (let i = 0; i < n; i++) {
        const k = `${prefix}:${i}`
        const v = value(i)
        let ok = false
        for (let t = 0; t < 40 && !ok; t++) {
          ok = await this.write(c, k, v).catch(() => false)
          if (!ok) await new Promise((r) => setTimeout(r, 500))
        }
        assert.ok(ok, `write of ${k} not acknowledged`)
        this.acked.set(k, v)
      }
    } finally {
      c.disconnect()
    }
  }

  /**
   * Writes until stopped, through failovers and restarts; stop() says how many were
   * acknowledged and the longest write, since() the same for a window (mark() opens one).
   */
  background(prefix: string): BackgroundWriter {
    let running = true
    const st: WriterStats = {acked: 0, failed: 0, maxMs: 0, kinds: {}}
    const fresh = (): WriterWindow => ({acked: 0, failed: 0, maxMs: 0, kinds: {}, maxGapMs: 0})
    let win = fresh()
    let lastAck = Date.now()
    const fail = (kind: string) => {
      for (const s of [st, win]) {
        s.failed++
        s.kinds[kind] = (s.kinds[kind] ?? 0) + 1
      }
    }
    const c = this.client()
    const loop = (async () => {
      for (let i = 0; running; i++) {
        const k = `${prefix}:${i}`
        const v = `w${i}`
        const t0 = Date.now()
        try {
          const r = await this.attempt(c, k, v)
          if (r === true) {
            this.acked.set(k, v)
            st.acked++
            win.acked++
            win.maxGapMs = Math.max(win.maxGapMs, Date.now() - lastAck)
            lastAck = Date.now()
          } else fail(r)
        } catch (error) {
          fail(errorKind(error))
          await new Promise((r) => setTimeout(r, 100))
        }
        st.maxMs = Math.max(st.maxMs, Date.now() - t0)
        win.maxMs = Math.max(win.maxMs, Date.now() - t0)
      }
    })()
    return {
      mark() {
        win = fresh()
      },
      since: () => win,
      async stop() {
        running = false
        await loop
        c.disconnect()
        return st
      },
    }
  }

  /** Drop the keys of these slots ("0-99,200") from what must survive: a test that loses them on purpose. */
  async forgetSlots(slots: string): Promise<void> {
    const ranges = slots
      .split(',')
      .map((t) => t.split('-').map(Number))
      .map(([a, b]) => [a, b ?? a])
    const c = new Redis({...this.seeds()[0], password: this.o.password, connectTimeout: 3000, maxRetriesPerRequest: 1})
    try {
      const keys = [...this.acked.keys()]
      const res = (await keys.reduce((p, k) => p.call('CLUSTER', 'KEYSLOT', k), c.pipeline()).exec()) ?? []
      res.forEach(([err, slot], i) => {
        assert.ifError(err)
        if (ranges.some(([a, b]) => Number(slot) >= a && Number(slot) <= b)) this.acked.delete(keys[i])
      })
    } finally {
      c.disconnect()
    }
  }

  /** Every acknowledged key reads back with its value; `only` narrows to keys with that prefix. Returns how many were read. */
  async assertNoneLost(only?: string): Promise<number> {
    const c = this.client()
    try {
      const keys = [...this.acked.keys()].filter((k) => !only || k.startsWith(only))
      const missing: string[] = []
      for (let i = 0; i < keys.length; i += 50) {
        const vals = await Promise.all(keys.slice(i, i + 50).map((k) => Promise.race([c.get(k), new Promise<string>((r) => setTimeout(() => r('(read timed out)'), 10_000))])))
        vals.forEach((v, j) => {
          // A wrong value is shown by its start: some suites write 512 KB values.
          if (v !== this.acked.get(keys[i + j])) missing.push(`${keys[i + j]}=${String(v).slice(0, 40)}`)
        })
      }
      assert.deepEqual(missing.slice(0, 20), [], `${missing.length} of ${keys.length} acknowledged key(s) lost or wrong`)
      return keys.length
    } finally {
      c.disconnect()
    }
  }
}
