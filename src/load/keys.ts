import {randomUUID} from 'node:crypto'
import {readFileSync, writeFileSync} from 'node:fs'
import {InputError} from '../errors.js'

// What `load --verify` remembers: every worker writes `<uuid>-<counter>` with counters
// 0, 1, 2, …, so the acknowledged keys of a worker are its uuid plus ranges of counters.
// A run without errors is one range per worker, whatever its length: a billion SETs
// verified from a few kilobytes of memory. Values are derived from the key, so nothing
// else needs remembering to find wrong ones.

/** Ascending, disjoint, non-adjacent inclusive ranges of counters. */
export class RangeSet {
  readonly ranges: Array<[number, number]> = []

  // Counters of one worker are acknowledged in order, so this is an append almost always.
  add(n: number): void {
    const r = this.ranges
    const last = r[r.length - 1]
    if (last && n === last[1] + 1) {
      last[1] = n
      return
    }
    if (!last || n > last[1] + 1) {
      r.push([n, n])
      return
    }
    // Out of order: find the place, merge with neighbours.
    let lo = 0
    let hi = r.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (r[mid][1] < n) lo = mid + 1
      else hi = mid
    }
    if (lo < r.length && r[lo][0] <= n) return
    const joinsPrev = lo > 0 && r[lo - 1][1] + 1 === n
    const joinsNext = lo < r.length && r[lo][0] - 1 === n
    if (joinsPrev && joinsNext) {
      r[lo - 1][1] = r[lo][1]
      r.splice(lo, 1)
    } else if (joinsPrev) r[lo - 1][1] = n
    else if (joinsNext) r[lo][0] = n
    else r.splice(lo, 0, [n, n])
  }

  get count(): number {
    let n = 0
    for (const [a, b] of this.ranges) n += b - a + 1
    return n
  }

  *[Symbol.iterator](): IterableIterator<number> {
    for (const [a, b] of this.ranges) for (let i = a; i <= b; i++) yield i
  }
}

export interface WorkerKeys {
  uuid: string
  acked: RangeSet
}

export function newWorker(): WorkerKeys {
  return {uuid: randomUUID(), acked: new RangeSet()}
}

export const keyOf = (uuid: string, n: number) => `${uuid}-${n}`

// The legacy workload's value is the key twice; a data size stretches or cuts that
// pattern to exactly `size` bytes (keys are ASCII).
export function valueOf(key: string, size?: number): string {
  if (size === undefined) return key + key
  if (size <= 0) return ''
  return key.repeat(Math.ceil(size / key.length)).slice(0, size)
}

/** The record `load --record` writes and `load --verify-record` reads back. */
export interface KeyRecord {
  format: 'baremetal-load-keys/1'
  dataSize: number | null
  workers: Array<{uuid: string; ranges: Array<[number, number]>}>
}

export function toRecord(workers: readonly WorkerKeys[], dataSize?: number): KeyRecord {
  return {format: 'baremetal-load-keys/1', dataSize: dataSize ?? null, workers: workers.map((w) => ({uuid: w.uuid, ranges: w.acked.ranges}))}
}

export function saveRecord(path: string, rec: KeyRecord): void {
  writeFileSync(path, JSON.stringify(rec) + '\n')
}

export function loadRecord(path: string): {workers: WorkerKeys[]; dataSize?: number} {
  let rec: KeyRecord
  try {
    rec = JSON.parse(readFileSync(path, 'utf8')) as KeyRecord
  } catch (error) {
    throw new InputError(`cannot read the key record ${path}: ${(error as Error).message}`, {where: {file: path}})
  }
  if (rec?.format !== 'baremetal-load-keys/1' || !Array.isArray(rec.workers)) {
    throw new InputError(`${path} is not a key record written by baremetal load --record`, {where: {file: path}})
  }
  const workers = rec.workers.map((w) => {
    const acked = new RangeSet()
    for (const [a, b] of w.ranges) acked.ranges.push([a, b])
    return {uuid: w.uuid, acked}
  })
  return {workers, dataSize: rec.dataSize ?? undefined}
}
