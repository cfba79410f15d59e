// Latencies of millions of requests in a fixed 4 KB: log-linear buckets (32 per power
// of two, so any percentile is within ~3% of the true value), exact count, sum and max.

const SUB = 32
const SUB_BITS = 5
const BUCKETS = (32 - SUB_BITS + 1) * SUB

function bucketOf(us: number): number {
  const v = Math.max(0, Math.min(0xffffffff, Math.round(us))) >>> 0
  if (v < SUB) return v
  const e = 31 - Math.clz32(v)
  return (e - SUB_BITS + 1) * SUB + ((v >>> (e - SUB_BITS)) & (SUB - 1))
}

// Upper edge of a bucket (what a percentile reports: never optimistic).
function upperOf(b: number): number {
  if (b < SUB) return b
  const e = Math.floor(b / SUB) + SUB_BITS - 1
  const m = b % SUB
  return ((SUB + m + 1) << (e - SUB_BITS)) - 1
}

export interface HistogramState {
  counts: number[]
  count: number
  sum: number
  max: number
}

export class Histogram {
  private readonly counts = new Float64Array(BUCKETS)
  count = 0
  sum = 0
  max = 0

  /** Record one latency in microseconds. */
  record(us: number): void {
    this.counts[bucketOf(us)]++
    this.count++
    this.sum += us
    if (us > this.max) this.max = us
  }

  /** The latency (µs) below which a fraction q of the requests completed. */
  percentile(q: number): number {
    if (this.count === 0) return 0
    const want = Math.max(1, Math.ceil(q * this.count))
    let seen = 0
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b]
      if (seen >= want) return Math.min(upperOf(b), this.max)
    }
    return this.max
  }

  /** What a worker thread posts back: plain numbers, cloned across threads. */
  state(): HistogramState {
    return {counts: Array.from(this.counts), count: this.count, sum: this.sum, max: this.max}
  }

  static from(state: HistogramState): Histogram {
    const h = new Histogram()
    h.merge(state)
    return h
  }

  /** Adds another histogram's requests to this one (threads' histograms at the end of a run). */
  merge(o: HistogramState | Histogram): void {
    const counts: ArrayLike<number> = o instanceof Histogram ? o.counts : o.counts
    for (let b = 0; b < BUCKETS; b++) this.counts[b] += counts[b] ?? 0
    this.count += o.count
    this.sum += o.sum
    if (o.max > this.max) this.max = o.max
  }

  mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count
  }
}
