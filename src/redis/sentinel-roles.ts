import type {SentinelGroup} from './sentinel-layout.js'

// Who is the master of each group before anything starts: the Sentinels' view when they
// have one (confirmed by ROLE on the address they name), else the live instances', else
// the layout's (a fresh deployment). Pure: the live facts come in, a decision per group
// goes out. The one rule: a dead instance is never started as a master while its group
// has a master, or a replica that the Sentinels can promote.

export interface MemberLive {
  /** Answered ROLE. */
  alive: boolean
  role?: 'master' | 'slave'
  /** A replica's master, "ip:port". */
  masterAddr?: string
}

export interface GroupLive {
  /** Per answering Sentinel, the "ip:port" it names for the group (undefined: it does not know the group). */
  sentinelSays: Array<string | undefined>
  /** Per member "ip:port". */
  members: Map<string, MemberLive>
}

export type GroupDecision =
  | {kind: 'ok'; master: string; /** Per member "ip:port": "ip port" of its master, '' for the master. */ replicaof: Map<string, string>; why: string}
  | {kind: 'wait'; why: string}
  | {kind: 'refuse'; why: string}

export const addrOf = (h: {ip: string}, port: number) => `${h.ip}:${port}`

/** The address most answering Sentinels name (ties: the first named), or undefined. */
export function sentinelMaster(says: Array<string | undefined>): string | undefined {
  const n = new Map<string, number>()
  for (const s of says) if (s) n.set(s, (n.get(s) ?? 0) + 1)
  let best: string | undefined
  for (const [a, c] of n) if (best === undefined || c > n.get(best)!) best = a
  return best
}

function follow(members: string[], master: string, why: string): GroupDecision {
  const [ip, port] = [master.slice(0, master.lastIndexOf(':')), master.slice(master.lastIndexOf(':') + 1)]
  return {kind: 'ok', master, why, replicaof: new Map(members.map((m) => [m, m === master ? '' : `${ip} ${port}`]))}
}

export function decideGroup(g: SentinelGroup, live: GroupLive): GroupDecision {
  const members = [g.master, ...g.replicas].map((h) => addrOf(h, g.port))
  const at = (a: string) => live.members.get(a) ?? {alive: false}
  const alive = members.filter((m) => at(m).alive)
  const named = sentinelMaster(live.sentinelSays)
  if (named !== undefined) {
    if (!members.includes(named)) {
      return {kind: 'refuse', why: `the Sentinels name ${named} as the master of ${g.name}, which is not one of its inventory members (${members.join(', ')})`}
    }
    const m = at(named)
    if (m.alive && m.role === 'master') return follow(members, named, `the Sentinels' master ${named} (ROLE: master)`)
    if (m.alive) return {kind: 'wait', why: `the Sentinels name ${named} as the master of ${g.name}, but it says ROLE ${m.role ?? '?'} (a failover in progress)`}
    if (alive.length > 0) {
      return {kind: 'wait', why: `the master ${named} of ${g.name} is down and the Sentinels have not promoted one of its replicas (${alive.join(', ')}) yet`}
    }
    return follow(members, named, `no member of ${g.name} runs: the Sentinels' last master ${named} starts first, the others replicate it`)
  }
  const masters = alive.filter((m) => at(m).role === 'master')
  if (masters.length === 1) return follow(members, masters[0], `no Sentinel knows ${g.name}: the running master ${masters[0]}`)
  if (masters.length > 1) return {kind: 'refuse', why: `${g.name} has ${masters.length} running masters (${masters.join(', ')}) and no Sentinel names one: which one holds the data is not known`}
  if (alive.length > 0) {
    return {
      kind: 'refuse',
      why: `${g.name} has no running master, only replicas (${alive.join(', ')}), and no Sentinel names its master: starting a dead master would make it the empty owner of the group`,
    }
  }
  return follow(members, members[0], `a fresh group: the layout's master ${members[0]}`)
}
