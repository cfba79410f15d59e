import {haproxyGroupView, type HaproxyGroupView, type HaproxyReading, renderHaproxyLines} from './haproxy-view.js'
import type {SentinelLayout} from './sentinel-layout.js'
import {classifyView, describeReplica, type Health, type SentinelView} from './sentinel-view.js'

// `baremetal status` for redis_topology: sentinel, as data (the --json document) and as text.

export interface SentinelStatusGroup {
  name: string
  port: number
  health: Health
  /** ip:port every reachable Sentinel names (and ROLE confirms or not: see reasons); null when they disagree or none answers. */
  master: string | null
  masterHost: string | null
  /** The master's redis_version (INFO server), null when unknown. */
  masterVersion: string | null
  /** Every reachable Sentinel names the same master. */
  agree: boolean
  sentinels: Array<{sentinel: string; master: string | null; error?: string}>
  replicas: Array<{addr: string; host: string | null; state: string | null; link: string | null; lagBytes: number | null; lagSeconds: number | null; inSync: boolean; version: string | null}>
  /** Where each HAProxy host sends the group's writes (present when the inventory has HAProxy hosts). */
  haproxy?: HaproxyGroupView
  reasons: string[]
}

export interface SentinelStatusReport {
  topology: 'sentinel'
  ok: boolean
  health: Health
  quorum: number
  reachableSentinels: number
  /** Sentinels a failover needs: the quorum to agree, a majority to authorize. */
  needed: number
  quorumReachable: boolean
  sentinels: Array<{addr: string; reachable: boolean; error?: string; version?: string}>
  groups: SentinelStatusGroup[]
  /** Every reason, "<group>: <reason>". */
  problems: string[]
  /** redis_version → how many instances and Sentinels run it. */
  versions: Record<string, number>
  /** Not failures: a mixed-version deployment (an upgrade under way or interrupted). */
  warnings: string[]
}

const RANK = {ok: 0, degraded: 1, split: 2} as const
const worst = (a: Health, b: Health): Health => (RANK[b] > RANK[a] ? b : a)

export function sentinelStatusReport(layout: SentinelLayout, view: SentinelView, haproxy?: HaproxyReading[]): SentinelStatusReport {
  const health = classifyView(view)
  const hostOf = new Map<string, string>()
  for (const g of layout.groups) for (const m of [g.master, ...g.replicas]) hostOf.set(`${m.ip}:${g.port}`, m.host)
  const groups = view.groups.map((g, i): SentinelStatusGroup => {
    const named = new Set(g.answers.filter((a) => a.master).map((a) => a.master))
    const lg = layout.groups.find((x) => x.name === g.name)
    const hp =
      haproxy && lg
        ? haproxyGroupView(
            lg,
            g.master,
            haproxy,
            [lg.master, ...lg.replicas].map((m) => `${m.ip}:${lg.port}`),
          )
        : undefined
    const hpHealth: Health = hp?.split.length ? 'split' : hp?.degraded.length ? 'degraded' : 'ok'
    return {
      name: g.name,
      port: g.port,
      health: worst(health.groups[i].health, hpHealth),
      master: g.master ?? null,
      masterHost: g.master ? (hostOf.get(g.master) ?? null) : null,
      masterVersion: g.roles.find((r) => r.addr === g.master)?.version ?? null,
      agree: named.size === 1,
      sentinels: g.answers.map((a) => ({sentinel: a.sentinel, master: a.master ?? null, ...(a.error ? {error: a.error} : {})})),
      replicas: g.replicas.map((r) => ({
        addr: r.addr,
        host: hostOf.get(r.addr) ?? null,
        state: r.state ?? null,
        link: r.link ?? null,
        lagBytes: r.lagBytes ?? null,
        lagSeconds: r.lagSeconds ?? null,
        inSync: r.inSync,
        version: g.roles.find((x) => x.addr === r.addr)?.version ?? null,
      })),
      ...(hp ? {haproxy: hp} : {}),
      reasons: [...health.groups[i].reasons, ...(hp ? [...hp.split, ...hp.degraded] : [])],
    }
  })
  const overall = groups.reduce<Health>((w, g) => worst(w, g.health), health.health)
  return {
    topology: 'sentinel',
    ok: overall === 'ok',
    health: overall,
    quorum: view.quorum,
    reachableSentinels: health.reachableSentinels,
    needed: health.needed,
    quorumReachable: health.quorumReachable,
    sentinels: view.sentinels,
    groups,
    problems: groups.flatMap((g) => g.reasons.map((r) => `${g.name}: ${r}`)),
    ...versionsOf(layout, view),
  }
}

// Every layout member's and Sentinel's version, counted; more than one is a warning.
function versionsOf(layout: SentinelLayout, view: SentinelView): {versions: Record<string, number>; warnings: string[]} {
  const members = new Set(layout.groups.flatMap((g) => [g.master, ...g.replicas].map((m) => `${m.ip}:${g.port}`)))
  const all = [...view.groups.flatMap((g) => g.roles.filter((r) => members.has(r.addr))), ...view.sentinels].map((x) => x.version).filter((v): v is string => !!v)
  const versions: Record<string, number> = {}
  for (const v of all) versions[v] = (versions[v] ?? 0) + 1
  const keys = Object.keys(versions).sort()
  const warnings =
    keys.length > 1
      ? [`mixed Redis versions: ${keys.map((v) => `${versions[v]} on ${v}`).join(', ')} (an upgrade under way or interrupted: baremetal up with the redis_version you want finishes it)`]
      : []
  return {versions, warnings}
}

export function renderSentinelStatus(r: SentinelStatusReport, view: SentinelView): string {
  const lines: string[] = []
  for (const g of r.groups) {
    const v = view.groups.find((x) => x.name === g.name)!
    const answered = g.sentinels.filter((s) => s.master).length
    lines.push(`[${g.health.toUpperCase()}] ${g.name} (port ${g.port})`)
    lines.push(
      g.master
        ? `  master  ${g.master}${g.masterHost ? ` (${g.masterHost})` : ''}${g.masterVersion ? ` ${g.masterVersion}` : ''}, named by ${answered}/${g.sentinels.length} Sentinels`
        : `  master  none agreed (${g.sentinels.map((s) => `${s.sentinel}: ${s.master ?? s.error ?? 'unknown'}`).join('; ')})`,
    )
    v.replicas.forEach((rep, k) => {
      const host = g.replicas[k]?.host
      const version = g.replicas[k]?.version
      lines.push(`  replica ${rep.addr}${host ? ` (${host})` : ''}${version ? ` ${version}` : ''}: ${rep.inSync ? 'in sync, ' : ''}${describeReplica(rep)}`)
    })
    if (g.haproxy) lines.push(...renderHaproxyLines(g.haproxy, g.master ?? undefined))
    for (const why of g.reasons) lines.push(`  ! ${why}`)
  }
  const down = r.sentinels.filter((s) => !s.reachable)
  lines.push(
    `Sentinels: ${r.reachableSentinels}/${r.sentinels.length} answer (quorum ${r.quorum}, a failover needs ${r.needed})${down.length ? `; not answering: ${down.map((s) => `${s.addr} (${s.error})`).join(', ')}` : ''}`,
  )
  const sv = r.sentinels.map((s) => s.version).filter(Boolean)
  if (sv.length) lines.push(`Sentinel versions: ${r.sentinels.map((s) => `${s.addr} ${s.version ?? '?'}`).join(', ')}`)
  for (const w of r.warnings) lines.push(`[WARNING] ${w}`)
  lines.push(r.ok ? `[OK] ${r.groups.length} group(s) healthy.` : `[${r.health.toUpperCase()}] ${r.problems.length} problem(s).`)
  return lines.join('\n')
}
