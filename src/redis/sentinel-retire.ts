import type {SentinelLayout} from './sentinel-layout.js'
import {addrOf} from './sentinel-roles.js'

// What a Sentinel deployment runs that its inventory no longer lists: a group past
// redis_sentinel_groups, a replica past redis_replicas, a Sentinel taken out of the Sentinel
// group. Found from what the Sentinels know (SENTINEL MASTERS / SLAVES / SENTINELS), not
// from a remembered old inventory: a run that stopped half-way finds the rest again. Pure.

/** What one answering Sentinel knows. */
export interface SentinelKnows {
  addr: string
  /** Master name → its master's "ip:port", our deployment's names only. */
  masters: Map<string, string>
  /** Master name → the replicas it lists ("ip:port"). */
  replicas: Map<string, string[]>
  /** Master name → the other Sentinels it lists ("ip:port"). */
  sentinels: Map<string, string[]>
}

export interface RetireGroup {
  name: string
  port: number
  master: string
  /** Master and replicas, "ip:port". */
  members: string[]
}

export interface RetirePlan {
  groups: RetireGroup[]
  replicas: Array<{group: string; addr: string}>
  /** Sentinels ("ip:port") no longer in the Sentinel group. */
  sentinels: string[]
  /** Groups every remaining Sentinel must SENTINEL RESET (one Sentinel at a time). */
  reset: string[]
  /** A group's current master is a member the layout no longer has. */
  masterGoes: Array<{group: string; addr: string}>
}

const portOf = (a: string) => Number(a.slice(a.lastIndexOf(':') + 1))
export const ipOf = (a: string) => a.slice(0, a.lastIndexOf(':'))
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** Is this master name one of this deployment's (`<cluster>-<port>`)? */
export function ourName(clusterName: string, name: string): boolean {
  return new RegExp(`^${escapeRe(clusterName)}-\\d+$`).test(name)
}

export function planRetire(layout: SentinelLayout, clusterName: string, knows: SentinelKnows[]): RetirePlan {
  const kept = new Map(layout.groups.map((g) => [g.name, new Set([g.master, ...g.replicas].map((h) => addrOf(h, g.port)))]))
  const sentinelAddrs = new Set(layout.sentinels.map((s) => addrOf(s, s.port)))
  const groups = new Map<string, RetireGroup>()
  const replicas = new Map<string, {group: string; addr: string}>()
  const sentinels = new Set<string>()
  const masterGoes = new Map<string, {group: string; addr: string}>()
  const reset = new Set<string>()
  for (const k of knows) {
    for (const [name, master] of k.masters) {
      if (!ourName(clusterName, name)) continue
      const members = kept.get(name)
      const listed = k.replicas.get(name) ?? []
      if (!members) {
        const g = groups.get(name) ?? {name, port: portOf(master), master, members: [master]}
        for (const a of [master, ...listed]) if (!g.members.includes(a)) g.members.push(a)
        groups.set(name, g)
        continue
      }
      if (!members.has(master)) masterGoes.set(name, {group: name, addr: master})
      for (const a of listed) {
        if (members.has(a)) continue
        replicas.set(`${name} ${a}`, {group: name, addr: a})
        reset.add(name)
      }
      for (const s of k.sentinels.get(name) ?? []) {
        if (sentinelAddrs.has(s)) continue
        sentinels.add(s)
        reset.add(name)
      }
    }
  }
  return {
    groups: [...groups.values()].sort((a, b) => a.port - b.port),
    replicas: [...replicas.values()],
    sentinels: [...sentinels].sort(),
    reset: layout.groups.map((g) => g.name).filter((n) => reset.has(n)),
    masterGoes: [...masterGoes.values()],
  }
}

/** Per host (by its address), the retired data ports and whether its Sentinel goes. */
export function retireByIp(plan: RetirePlan): Map<string, {ports: number[]; sentinel: boolean}> {
  const out = new Map<string, {ports: number[]; sentinel: boolean}>()
  const at = (ip: string) => out.get(ip) ?? (out.set(ip, {ports: [], sentinel: false}), out.get(ip)!)
  for (const g of plan.groups) for (const m of g.members) at(ipOf(m)).ports.push(g.port)
  for (const r of plan.replicas) at(ipOf(r.addr)).ports.push(portOf(r.addr))
  for (const s of plan.sentinels) at(ipOf(s)).sentinel = true
  for (const v of out.values()) v.ports = [...new Set(v.ports)].sort((a, b) => a - b)
  return out
}

/** One line for the plan's message (and --check): what goes. */
export function describeRetire(plan: RetirePlan, dbsize: Map<string, number | undefined>): string[] {
  const out: string[] = []
  for (const g of plan.groups) {
    const n = dbsize.get(g.name)
    out.push(`group ${g.name} removed (${g.members.join(', ')}; ${n === undefined ? 'DBSIZE unknown' : `DBSIZE ${n}`})`)
  }
  for (const r of plan.replicas) out.push(`replica ${r.addr} of ${r.group} removed`)
  for (const s of plan.sentinels) out.push(`Sentinel ${s} removed`)
  if (plan.reset.length) out.push(`SENTINEL RESET ${plan.reset.join(', ')} on each remaining Sentinel, one at a time`)
  return out
}
