import {ClusterError} from '../errors.js'
import type {SentinelLayout} from '../redis/sentinel-layout.js'
import {ViewConnections} from '../redis/sentinel-view.js'

// `load` on redis_topology: sentinel. Each group is one shard: a key's hash slot (CRC16 mod
// 16384, as Redis Cluster computes it) picks the group, the slots split into equal
// contiguous ranges in port order (group i of G holds slots ⌊i·16384/G⌋ … ⌊(i+1)·16384/G⌋−1),
// so the write path (router.ts) keeps its slot map and only learns it from elsewhere: from
// the Sentinels (each group's current master) or from HAProxy's write frontends. Plain data,
// so worker threads get it as they get their seeds.

export type RouteSpec = {kind: 'sentinel'; sentinels: string[]; groups: Array<{name: string; start: number; end: number}>} | {kind: 'fixed'; ranges: Array<{start: number; end: number; addr: string}>}

export type SlotRanges = Array<{start: number; end: number; addr: string}>

/** Group i's slots of G. */
export function groupSlots(i: number, groups: number): {start: number; end: number} {
  return {start: Math.floor((i * 16384) / groups), end: Math.floor(((i + 1) * 16384) / groups) - 1}
}

export function sentinelRoutes(layout: SentinelLayout, via: 'sentinel' | 'haproxy'): RouteSpec {
  const n = layout.groups.length
  if (via === 'haproxy') {
    const h = layout.haproxy[0]
    return {kind: 'fixed', ranges: layout.groups.map((g, i) => ({...groupSlots(i, n), addr: `${h.ip}:${g.writePort}`}))}
  }
  return {kind: 'sentinel', sentinels: layout.sentinels.map((s) => `${s.ip}:${s.port}`), groups: layout.groups.map((g, i) => ({name: g.name, ...groupSlots(i, n)}))}
}

/** What a report shows as the load's seeds: the Sentinels asked, or HAProxy's frontends. */
export function routeSeeds(spec: RouteSpec): string[] {
  return spec.kind === 'sentinel' ? spec.sentinels : [...new Set(spec.ranges.map((r) => r.addr))]
}

/** The slot map now: from the Sentinels, each group's master is the address most of those that answer name. */
export async function resolveRoutes(spec: RouteSpec, conns: ViewConnections): Promise<SlotRanges> {
  if (spec.kind === 'fixed') return spec.ranges
  return Promise.all(
    spec.groups.map(async (g) => {
      const named = await Promise.all(
        spec.sentinels.map((s) =>
          conns.call(s, 'SENTINEL', 'get-master-addr-by-name', g.name).then(
            (r) => (Array.isArray(r) ? `${r[0]}:${r[1]}` : undefined),
            () => undefined,
          ),
        ),
      )
      const votes = new Map<string, number>()
      for (const a of named) if (a) votes.set(a, (votes.get(a) ?? 0) + 1)
      const best = [...votes].sort((a, b) => b[1] - a[1])[0]
      if (!best) throw new ClusterError(`no Sentinel names a master for ${g.name} (asked ${spec.sentinels.join(', ')})`)
      return {start: g.start, end: g.end, addr: best[0]}
    }),
  )
}
