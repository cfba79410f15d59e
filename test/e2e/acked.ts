// Writers whose writes count only when acknowledged: SET then WAIT 1 on the same connection
// (on a replica too), or, for a cluster without replicas, the master's OK. Every durability
// test checks that no key in `acked` is lost or changed.
import assert from 'node:assert/strict'
import {Cluster, Redis} from 'ioredis'

export interface AckedOptions {
  /** Seeds of the cluster (ip, port). */
  seeds: Array<{host: string; port: number}>
  /** Replicas to wait for (0: the master's OK is the acknowledgement). */
  replicas: number
  password?: string
}

export interface WriterStats {
  acked: number
  failed: number
  /** The longest single write, acknowledged or not. */
  maxMs: number
  /** Failed writes by kind: CLUSTERDOWN, TIMEOUT, CONNECTION_CLOSED, NOT_REPLICATED (WAIT said 0), … */
  kinds: Record<string, number>
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

  client(): Cluster {
    return new Cluster(this.o.seeds, {
      redisOptions: {connectTimeout: 3000, maxRetriesPerRequest: 3, commandTimeout: 5000, password: this.o.password},
      clusterRetryStrategy: (n) => (n > 50 ? null : 200),
      retryDelayOnFailover: 300,
      retryDelayOnClusterDown: 300,
      retryDelayOnTryAgain: 300,
      maxRedirections: 32,
    })
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
  async writeKeys(prefix: string, n: number): Promise<void> {
    const c = this.client()
    try {
      for (let i = 0; i < n; i++) {
        const k = `${prefix}:${i}`
        const v = `v${i}-${prefix}`
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

  /** Writes until stopped, through failovers and restarts; stop() says how many were acknowledged and the longest write. */
  background(prefix: string): {stop(): Promise<WriterStats>} {
    let running = true
    const st: WriterStats = {acked: 0, failed: 0, maxMs: 0, kinds: {}}
    const fail = (kind: string) => {
      st.failed++
      st.kinds[kind] = (st.kinds[kind] ?? 0) + 1
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
          } else fail(r)
        } catch (error) {
          fail(errorKind(error))
          await new Promise((r) => setTimeout(r, 100))
        }
        st.maxMs = Math.max(st.maxMs, Date.now() - t0)
      }
    })()
    return {
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
    const ranges = slots.split(',').map((t) => t.split('-').map(Number)).map(([a, b]) => [a, b ?? a])
    const c = new Redis({...this.o.seeds[0], password: this.o.password, connectTimeout: 3000, maxRetriesPerRequest: 1})
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

  /** Every acknowledged key reads back with its value; `only` narrows to keys with that prefix. */
  async assertNoneLost(only?: string): Promise<void> {
    const c = this.client()
    try {
      const keys = [...this.acked.keys()].filter((k) => !only || k.startsWith(only))
      const missing: string[] = []
      for (let i = 0; i < keys.length; i += 50) {
        const vals = await Promise.all(keys.slice(i, i + 50).map((k) => Promise.race([c.get(k), new Promise<string>((r) => setTimeout(() => r('(read timed out)'), 10_000))])))
        vals.forEach((v, j) => {
          if (v !== this.acked.get(keys[i + j])) missing.push(`${keys[i + j]}=${v}`)
        })
      }
      assert.deepEqual(missing.slice(0, 20), [], `${missing.length} of ${keys.length} acknowledged key(s) lost or wrong`)
    } finally {
      c.disconnect()
    }
  }
}
