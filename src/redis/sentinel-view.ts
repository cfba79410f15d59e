import {Redis} from 'ioredis'
import {DIRECT, describeRedisError} from './pool.js'
import type {SentinelLayout} from './sentinel-layout.js'

// The Sentinel topology as it is now, read from the controller: what every Sentinel names as
// each group's master, ROLE on every member (the named master must say master, the others
// replica of it), the master's INFO replication for each replica's lag, and one Sentinel's
// list of the replicas it would promote. Reading is one parallel round with bounded timeouts;
// judging (classifyView) is pure, so status, failover and up share one meaning of "healthy".

export const VIEW_TIMEOUT_MS = 2000

export interface SentinelAnswer {
  /** ip:port of the Sentinel. */
  sentinel: string
  /** ip:port it names as the group's master (get-master-addr-by-name). */
  master?: string
  error?: string
}

export interface MemberRole {
  addr: string
  role?: 'master' | 'replica' | 'sentinel' | string
  /** For a replica: the master it follows (ip:port) and its link (connected, connect, sync…). */
  masterAddr?: string
  link?: string
  offset?: number
  /** INFO server redis_version, when the view was read with versions. */
  version?: string
  error?: string
}

export interface ReplicaView {
  addr: string
  /** The master's word for it (INFO replication state): online, wait_bgsave, send_bulk; absent: not connected to the master. */
  state?: string
  /** The replica's own link to the master (ROLE): connected, connect, connecting, sync. */
  link?: string
  lagBytes?: number
  /** Seconds since the replica's last ACK to the master (INFO replication lag). */
  lagSeconds?: number
  /** Flags one Sentinel holds for it (s_down, disconnected …), when that Sentinel lists it. */
  sentinelFlags?: string[]
  inSync: boolean
}

export interface GroupView {
  name: string
  port: number
  answers: SentinelAnswer[]
  /** The address the reachable Sentinels name, when they all name the same. */
  master?: string
  /** ROLE of every member (layout members and any address a Sentinel names). */
  roles: MemberRole[]
  replicas: ReplicaView[]
}

export interface SentinelView {
  groups: GroupView[]
  sentinels: Array<{addr: string; reachable: boolean; error?: string; version?: string}>
  quorum: number
  readAt: string
}

export type Health = 'ok' | 'degraded' | 'split'

export interface GroupHealth {
  name: string
  health: Health
  reasons: string[]
}

export interface ViewHealth {
  health: Health
  groups: GroupHealth[]
  /** Reachable Sentinels, and how many a failover needs (quorum to agree, a majority to authorize). */
  reachableSentinels: number
  needed: number
  quorumReachable: boolean
}

/** A replica counts as in sync when the master streams to it and its last ACK is this recent. */
export const IN_SYNC_LAG_S = 10

const addrOf = (ip: string, port: number | string) => `${ip}:${port}`

/** How many Sentinels must answer for a failover: the quorum to agree it is down, a majority to authorize it. */
export function sentinelsNeeded(total: number, quorum: number): number {
  return Math.max(quorum, Math.floor(total / 2) + 1)
}

/** The group's current master: the address every reachable Sentinel names and that says master itself; undefined otherwise. */
export function currentMaster(view: SentinelView, group: string): {ip: string; port: number} | undefined {
  const g = view.groups.find((x) => x.name === group)
  if (!g?.master) return undefined
  if (g.roles.find((r) => r.addr === g.master)?.role !== 'master') return undefined
  const i = g.master.lastIndexOf(':')
  return {ip: g.master.slice(0, i), port: Number(g.master.slice(i + 1))}
}

// --- pure judgement -------------------------------------------------------------------------

function groupReasons(g: GroupView, needed: number, reachable: number): {split: string[]; degraded: string[]} {
  const split: string[] = []
  const degraded: string[] = []
  const named = [...new Set(g.answers.filter((a) => a.master).map((a) => a.master!))]
  if (named.length > 1) {
    split.push(
      `Sentinels disagree on the master: ${named
        .map(
          (m) =>
            `${m} (${g.answers
              .filter((a) => a.master === m)
              .map((a) => a.sentinel)
              .join(', ')})`,
        )
        .join(' vs ')}`,
    )
  }
  for (const a of g.answers) if (!a.master) degraded.push(`Sentinel ${a.sentinel} ${a.error ? `did not answer: ${a.error}` : 'does not know the group'}`)
  if (reachable < needed) degraded.push(`only ${reachable} Sentinel(s) answer; a failover needs ${needed}`)
  const masters = g.roles.filter((r) => r.role === 'master').map((r) => r.addr)
  if (masters.length > 1) split.push(`${masters.length} members say they are master: ${masters.join(', ')}`)
  if (g.master) {
    const r = g.roles.find((x) => x.addr === g.master)
    if (!r || r.error) degraded.push(`the named master ${g.master} does not answer${r?.error ? `: ${r.error}` : ''}`)
    else if (r.role !== 'master') split.push(`the Sentinels name ${g.master}, but it says ${r.role}${r.masterAddr ? ` of ${r.masterAddr}` : ''}`)
  } else if (named.length === 0) degraded.push('no Sentinel names a master')
  for (const r of g.roles) {
    if (r.error && r.addr !== g.master) degraded.push(`member ${r.addr} does not answer: ${r.error}`)
    else if (r.role === 'replica' && g.master && r.masterAddr !== g.master) degraded.push(`member ${r.addr} replicates from ${r.masterAddr}, not from the master ${g.master}`)
  }
  for (const rep of g.replicas) if (!rep.inSync) degraded.push(`replica ${rep.addr} is not in sync (${describeReplica(rep)})`)
  if (g.master && !g.replicas.some((r) => r.inSync)) degraded.push('no replica in sync: a failover now would lose writes or find no replica to promote')
  return {split, degraded}
}

export function describeReplica(r: ReplicaView): string {
  const parts = [r.state ? `state ${r.state}` : 'not connected to the master']
  if (r.link && r.link !== 'connected') parts.push(`link ${r.link}`)
  if (r.lagBytes !== undefined) parts.push(`${r.lagBytes} bytes behind`)
  if (r.lagSeconds !== undefined) parts.push(`last ack ${r.lagSeconds} s ago`)
  if (r.sentinelFlags?.length) parts.push(`Sentinel flags ${r.sentinelFlags.join(',')}`)
  return parts.join(', ')
}

/** ok, degraded (something down, lagging or unreachable) or split (two masters, or Sentinels that disagree), with reasons. */
export function classifyView(view: SentinelView): ViewHealth {
  const reachable = view.sentinels.filter((s) => s.reachable).length
  const needed = sentinelsNeeded(view.sentinels.length, view.quorum)
  const groups = view.groups.map((g): GroupHealth => {
    const {split, degraded} = groupReasons(g, needed, reachable)
    const health: Health = split.length ? 'split' : degraded.length ? 'degraded' : 'ok'
    return {name: g.name, health, reasons: [...split, ...degraded]}
  })
  const rank = {ok: 0, degraded: 1, split: 2} as const
  const health = groups.reduce<Health>((w, g) => (rank[g.health] > rank[w] ? g.health : w), 'ok')
  return {health, groups, reachableSentinels: reachable, needed, quorumReachable: reachable >= needed}
}

/** Parse ROLE's reply (master: [role, offset, [[ip, port, offset]…]]; replica: [role, ip, port, state, offset]). */
export function parseRole(addr: string, reply: unknown): MemberRole {
  const r = Array.isArray(reply) ? reply : []
  const role = String(r[0] ?? '')
  if (role === 'master') return {addr, role: 'master', offset: Number(r[1])}
  if (role === 'slave' || role === 'replica') return {addr, role: 'replica', masterAddr: addrOf(String(r[1]), String(r[2])), link: String(r[3]), offset: Number(r[4])}
  return {addr, role: role || 'unknown'}
}

/** INFO replication of a master → its replicas (slaveN:ip=…,port=…,state=…,offset=…,lag=…) and its offset. */
export function parseReplication(text: string): {offset?: number; replicas: Array<{addr: string; state: string; offset: number; lag: number}>} {
  const replicas: Array<{addr: string; state: string; offset: number; lag: number}> = []
  let offset: number | undefined
  for (const line of text.split(/\r?\n/)) {
    const m = /^slave\d+:(.*)$/.exec(line)
    if (m) {
      const f = Object.fromEntries(m[1].split(',').map((kv) => kv.split('=') as [string, string]))
      replicas.push({addr: addrOf(f.ip, f.port), state: f.state, offset: Number(f.offset), lag: Number(f.lag)})
    }
    const o = /^master_repl_offset:(\d+)/.exec(line)
    if (o) offset = Number(o[1])
  }
  return {offset, replicas}
}

/** The replicas of a group: every member that is not the master, as the master and the member itself see it. */
export function replicaViews(
  master: string,
  members: string[],
  roles: MemberRole[],
  repl: {offset?: number; replicas: Array<{addr: string; state: string; offset: number; lag: number}>} | undefined,
  sentinelReplicas: Map<string, string[]> | undefined,
): ReplicaView[] {
  const addrs = [...new Set([...members, ...(repl?.replicas.map((r) => r.addr) ?? [])])].filter((a) => a !== master)
  return addrs.map((addr) => {
    const fromMaster = repl?.replicas.find((r) => r.addr === addr)
    const own = roles.find((r) => r.addr === addr)
    const flags = sentinelReplicas?.get(addr)?.filter((f) => f !== 'slave')
    const v: ReplicaView = {addr, inSync: false}
    if (fromMaster) {
      v.state = fromMaster.state
      v.lagSeconds = fromMaster.lag
      if (repl?.offset !== undefined) v.lagBytes = Math.max(0, repl.offset - fromMaster.offset)
    }
    if (own?.link) v.link = own.link
    if (flags?.length) v.sentinelFlags = flags
    const bad = (flags ?? []).some((f) => /s_down|o_down|disconnected/.test(f))
    v.inSync = fromMaster?.state === 'online' && fromMaster.lag <= IN_SYNC_LAG_S && (own?.link ?? 'connected') === 'connected' && !bad
    return v
  })
}

// --- reading (the network edge) ---------------------------------------------------------------

/** Connections that are opened once per address and closed together; a Sentinel without requirepass is spoken to without AUTH. */
export class ViewConnections {
  private conns = new Map<string, Promise<Redis>>()
  private authed = new Set<string>()
  constructor(
    private readonly password: string | undefined,
    private readonly timeoutMs = VIEW_TIMEOUT_MS,
  ) {}

  private open(addr: string, password: string | undefined): Promise<Redis> {
    const i = addr.lastIndexOf(':')
    const r = new Redis({host: addr.slice(0, i), port: Number(addr.slice(i + 1)), password, ...DIRECT, connectTimeout: this.timeoutMs, commandTimeout: this.timeoutMs})
    let last: Error | undefined
    r.on('error', (e: Error) => (last = e))
    return r.connect().then(
      () => r,
      (e) => {
        r.disconnect()
        throw new Error(describeRedisError(last ?? e, this.password))
      },
    )
  }

  /** One command; NOAUTH from an address reached without a password: again, with it (never printing it). */
  async call(addr: string, ...args: string[]): Promise<unknown> {
    let c = this.conns.get(addr)
    // A connection that failed or closed is opened again: long users (load) outlive a restart.
    if (
      c &&
      (await c.then(
        (r) => r.status !== 'ready',
        () => true,
      ))
    )
      c = undefined
    if (!c) {
      c = this.open(addr, this.authed.has(addr) ? this.password : undefined)
      this.conns.set(addr, c)
    }
    try {
      return await (await c).call(args[0], ...args.slice(1))
    } catch (error) {
      const noauth = /NOAUTH|Authentication required/i.test(errText(error))
      if (!this.password || !noauth) throw new Error(describeRedisError(error, this.password))
      // Calls in parallel on one fresh connection all meet NOAUTH: the first reopens with the password, the others use that.
      if (!this.authed.has(addr)) {
        this.authed.add(addr)
        this.conns.set(addr, this.open(addr, this.password))
        void c.then((r) => r.disconnect()).catch(() => {})
      } else if (this.conns.get(addr) === c) throw new Error(describeRedisError(error, this.password))
      return (await this.conns.get(addr)!).call(args[0], ...args.slice(1))
    }
  }

  async close(): Promise<void> {
    const all = [...this.conns.values()]
    this.conns.clear()
    await Promise.all(all.map((p) => p.then((r) => r.disconnect()).catch(() => {})))
  }
}

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e))

function flatPairs(entry: unknown): Record<string, string> {
  const a = Array.isArray(entry) ? entry.map(String) : []
  const o: Record<string, string> = {}
  for (let i = 0; i + 1 < a.length; i += 2) o[a[i]] = a[i + 1]
  return o
}

/** SENTINEL slaves (5.0.3 has no `replicas` spelling; 7.x keeps `slaves`) → addr → flags. */
async function sentinelReplicaFlags(conns: ViewConnections, sentinel: string, name: string): Promise<Map<string, string[]> | undefined> {
  try {
    const list = (await conns.call(sentinel, 'SENTINEL', 'slaves', name)) as unknown[]
    return new Map(list.map(flatPairs).map((o) => [addrOf(o.ip, o.port), (o.flags ?? '').split(',').filter(Boolean)]))
  } catch {
    return undefined
  }
}

// INFO server's redis_version (status: each instance's and Sentinel's version), undefined when it does not answer.
const versionOf = (conns: ViewConnections, addr: string) =>
  conns.call(addr, 'INFO', 'server').then(
    (t) => /^redis_version:(\S+)/m.exec(String(t))?.[1],
    () => undefined,
  )

async function readGroup(conns: ViewConnections, layout: SentinelLayout, index: number, versions = false): Promise<GroupView> {
  const g = layout.groups[index]
  const sentinels = layout.sentinels.map((s) => addrOf(s.ip, s.port))
  const answers = await Promise.all(
    sentinels.map(async (s): Promise<SentinelAnswer> => {
      try {
        const r = (await conns.call(s, 'SENTINEL', 'get-master-addr-by-name', g.name)) as [string, string] | null
        return r ? {sentinel: s, master: addrOf(r[0], r[1])} : {sentinel: s}
      } catch (e) {
        return {sentinel: s, error: errText(e)}
      }
    }),
  )
  const named = [...new Set(answers.filter((a) => a.master).map((a) => a.master!))]
  const members = [g.master, ...g.replicas].map((m) => addrOf(m.ip, g.port))
  const probe = [...new Set([...members, ...named])]
  const master = named.length === 1 ? named[0] : undefined
  const askSentinel = answers.find((a) => a.master)?.sentinel
  const [roles, repl, flags] = await Promise.all([
    Promise.all(
      probe.map((a) =>
        conns.call(a, 'ROLE').then(
          (r) => parseRole(a, r),
          (e): MemberRole => ({addr: a, error: errText(e)}),
        ),
      ),
    ),
    master
      ? conns.call(master, 'INFO', 'replication').then(
          (t) => parseReplication(String(t)),
          () => undefined,
        )
      : Promise.resolve(undefined),
    askSentinel ? sentinelReplicaFlags(conns, askSentinel, g.name) : Promise.resolve(undefined),
  ])
  if (versions) await Promise.all(roles.filter((r) => !r.error).map(async (r) => Object.assign(r, {version: await versionOf(conns, r.addr)})))
  return {name: g.name, port: g.port, answers, master, roles, replicas: master ? replicaViews(master, members, roles, repl, flags) : []}
}

/** Read the live view of every group, all at once; never throws for a host that does not answer (it is in the view). */
export async function readSentinelView(layout: SentinelLayout, o: {password?: string; timeoutMs?: number; conns?: ViewConnections; versions?: boolean} = {}): Promise<SentinelView> {
  const conns = o.conns ?? new ViewConnections(o.password, o.timeoutMs)
  try {
    const groups = await Promise.all(layout.groups.map((_, i) => readGroup(conns, layout, i, o.versions)))
    // A Sentinel is reachable when it answered for any group (an unknown name is an answer).
    const sentinels = layout.sentinels.map((s) => {
      const addr = addrOf(s.ip, s.port)
      const mine = groups.map((g) => g.answers.find((a) => a.sentinel === addr)!)
      const failed = mine.find((a) => a.error)
      return mine.some((a) => !a.error) ? {addr, reachable: true} : {addr, reachable: false, error: failed?.error ?? 'not asked'}
    })
    if (o.versions) await Promise.all(sentinels.filter((s) => s.reachable).map(async (s) => Object.assign(s, {version: await versionOf(conns, s.addr)})))
    return {groups, sentinels, quorum: layout.quorum, readAt: new Date().toISOString()}
  } finally {
    if (!o.conns) await conns.close()
  }
}
