import type {ClusterNode} from '../redis/plan.js'
import {keyOf, type WorkerKeys} from './keys.js'
import {writeValue} from './resp.js'
import {crc16, SlotRouter, type RouterSink} from './router.js'
import type {RouteSpec} from './routes.js'

// `load --verify`: every acknowledged key read back with GET over the write path's own
// connections (router.ts, reads mode), a bounded number in flight, and compared byte for byte
// with the value derived from its name (resp.ts writeValue, the bytes writeSet sent). A read
// that fails is retried (up to 6 tries, backing off) so a transient error is not reported as
// a lost key; one that never succeeds is unreadable, neither lost nor ok.

export interface VerifyTally {
  checked: number
  lost: number
  wrong: number
  unreadable: number
  lostSamples: string[]
  wrongSamples: string[]
  unreadableSamples: string[]
  errors: Record<string, number>
}

const SAMPLES = 10
const IN_FLIGHT = 2000
const TRIES = 6

export class Verifier implements RouterSink {
  readonly res: VerifyTally = {checked: 0, lost: 0, wrong: 0, unreadable: 0, lostSamples: [], wrongSamples: [], unreadableSamples: [], errors: {}}
  readonly total: number
  private readonly router: SlotRouter
  private readonly prefixes: Buffer[]
  private readonly crcs: number[]
  private readonly scratch: Buffer
  private readonly failures = new Map<string, number>()
  // The cursor over (worker, range, counter) of the keys still to read.
  private w = 0
  private r = 0
  private n = -1
  private lanes = 0
  private done?: () => void

  constructor(
    seeds: readonly ClusterNode[],
    password: string | undefined,
    private readonly workers: readonly WorkerKeys[],
    private readonly size: number,
    private readonly errorKind: (text: string) => string,
    routes?: RouteSpec,
  ) {
    this.router = new SlotRouter(seeds, password, this, size, true, routes)
    this.prefixes = workers.map((w) => Buffer.from(`${w.uuid}-`))
    this.crcs = this.prefixes.map((p) => crc16(p))
    this.total = workers.reduce((n, w) => n + w.acked.count, 0)
    const klen = Math.max(0, ...this.prefixes.map((p) => p.length)) + 20
    this.scratch = Buffer.allocUnsafe(Math.max(size, 2 * klen) + klen)
  }

  async run(): Promise<VerifyTally> {
    await this.router.refresh(true)
    try {
      await new Promise<void>((resolve) => {
        this.done = resolve
        this.lanes = IN_FLIGHT
        for (let i = 0; i < IN_FLIGHT; i++) this.next()
      })
    } finally {
      await this.router.close()
    }
    return this.res
  }

  private next(): void {
    while (this.w < this.workers.length) {
      const ranges = this.workers[this.w].acked.ranges
      if (this.r >= ranges.length) {
        this.w++
        this.r = 0
        this.n = -1
        continue
      }
      if (this.n < 0) this.n = ranges[this.r][0]
      if (this.n > ranges[this.r][1]) {
        this.r++
        this.n = -1
        continue
      }
      this.router.send(this.w, this.n++, performance.now())
      return
    }
    if (--this.lanes === 0) this.done?.()
  }

  prefix(i: number): Buffer {
    return this.prefixes[i]
  }

  prefixCrc(i: number): number {
    return this.crcs[i]
  }

  // A reading router sends GET only: never called.
  acked(): void {}

  redirected(): void {}

  got(i: number, counter: number, value: Buffer | null): void {
    const res = this.res
    res.checked++
    if (this.failures.size) this.failures.delete(`${i}:${counter}`)
    if (value === null) {
      res.lost++
      if (res.lostSamples.length < SAMPLES) res.lostSamples.push(keyOf(this.workers[i].uuid, counter))
    } else {
      const vlen = writeValue(this.scratch, this.prefixes[i], counter, this.size)
      if (value.length !== vlen || value.compare(this.scratch, 0, vlen) !== 0) {
        res.wrong++
        if (res.wrongSamples.length < SAMPLES) res.wrongSamples.push(keyOf(this.workers[i].uuid, counter))
      }
    }
    this.next()
  }

  failed(i: number, counter: number, _t0: number, text: string): void {
    const res = this.res
    const kind = this.errorKind(text)
    res.errors[kind] = (res.errors[kind] ?? 0) + 1
    const id = `${i}:${counter}`
    const tries = (this.failures.get(id) ?? 0) + 1
    if (tries >= TRIES) {
      this.failures.delete(id)
      res.unreadable++
      if (res.unreadableSamples.length < SAMPLES) res.unreadableSamples.push(keyOf(this.workers[i].uuid, counter))
      return this.next()
    }
    this.failures.set(id, tries)
    setTimeout(() => this.router.send(i, counter, performance.now()), 200 * tries)
  }
}
