import {ClusterError} from '../errors.js'
import {AIM_WAIT_MS, aimFailover} from './sentinel-aim.js'
import type {SentinelGroup, SentinelLayout} from './sentinel-layout.js'
import {classifyView, describeReplica, readSentinelView, type GroupView, type SentinelView, ViewConnections} from './sentinel-view.js'

// `baremetal failover`: a planned switch of a group's master through its Sentinels
// (SENTINEL FAILOVER), refused while it could lose writes or pick a side of a split, and
// waited on until the new master is confirmed everywhere.

export interface FailoverResult {
  group: string
  from: string
  to: string
  /** SENTINEL FAILOVER sent → every Sentinel names the new master, it says master, the old one replicates from it. */
  ms: number
  /** SENTINEL FAILOVER sent → the first Sentinel names the new master (clients that ask Sentinel move then). */
  switchedMs: number
  /** Who turned the old master into a replica: the Sentinels, or baremetal (REPLICAOF, once every Sentinel named the new one). */
  demotedBy: 'sentinel' | 'baremetal'
  sentinel: string
  /** The command was timed to the Sentinel's INFO of the replicas (sentinel-aim.ts). */
  aimed?: boolean
  /** ms from the fence: each step of the switch (a timeline for the benchmark). */
  phases?: Record<string, number>
  /** Date.now() when the fence went up. */
  fencedAt?: number
}

const POLL_MS = 50

/** Why a failover of this group must not start now; empty when it may. Pure. */
export function failoverRefusal(view: SentinelView, name: string): string[] {
  const g = view.groups.find((x) => x.name === name)
  if (!g) return [`the Sentinels were not asked about ${name}`]
  const why: string[] = []
  const named = [...new Set(g.answers.filter((a) => a.master).map((a) => a.master!))]
  if (named.length > 1) why.push(`the Sentinels disagree on the master (${named.join(' vs ')}): a failover now could pick a side of a split`)
  if (named.length === 0) why.push('no Sentinel names a master for it')
  const health = classifyView(view).groups.find((x) => x.name === name)
  if (health?.reasons.some((r) => /members say they are master|but it says/.test(r))) why.push(...health.reasons.filter((r) => /members say they are master|but it says/.test(r)))
  if (g.master && g.roles.find((r) => r.addr === g.master)?.role !== 'master') why.push(`the named master ${g.master} does not confirm it is master (ROLE)`)
  if (g.master && !g.replicas.some((r) => r.inSync)) {
    why.push(`no replica is in sync (${g.replicas.map((r) => `${r.addr}: ${describeReplica(r)}`).join('; ') || 'none'}): the promoted one would miss acknowledged writes`)
  }
  return why
}

function groupOnly(layout: SentinelLayout, g: SentinelGroup): SentinelLayout {
  return {...layout, groups: [g]}
}

function confirmed(v: GroupView, from: string): string | undefined {
  const named = new Set(v.answers.filter((a) => !a.error).map((a) => a.master))
  if (named.size !== 1) return undefined
  const to = [...named][0]
  if (!to || to === from) return undefined
  if (v.roles.find((r) => r.addr === to)?.role !== 'master') return undefined
  const old = v.roles.find((r) => r.addr === from)
  // An old master that does not answer cannot say whom it follows: confirmed without it (up rejoins it).
  if (old && !old.error && !(old.role === 'replica' && old.masterAddr === to)) return undefined
  return to
}

/** One group's failover; the group must have passed failoverRefusal. */
export async function failoverGroup(layout: SentinelLayout, g: SentinelGroup, o: {password?: string; timeoutMs: number; downAfterMs?: number; aim?: boolean}): Promise<FailoverResult> {
  const conns = new ViewConnections(o.password)
  const one = groupOnly(layout, g)
  try {
    const before = await readSentinelView(one, {conns})
    const why = failoverRefusal(before, g.name)
    if (why.length) throw new ClusterError(`failover of ${g.name} refused: ${why.join('; ')}`, {hint: 'baremetal status shows the group; repair it (baremetal up) and try again'})
    const from = before.groups[0].master!
    const replicas = before.groups[0].replicas.map((r) => r.addr)
    const agreeing = before.groups[0].answers.filter((a) => a.master === from).map((a) => a.sentinel)
    const aim = o.aim === false ? undefined : await aimFailover(conns, agreeing, g.name, replicas, performance.now() + Math.min(AIM_WAIT_MS, o.timeoutMs))
    if (aim) await new Promise((r) => setTimeout(r, Math.max(0, aim.at - performance.now())))
    // The aiming took seconds: the master it was about must still be the one.
    await stillMaster(conns, agreeing, g.name, from)
    const sentinel = aim?.sentinel ?? agreeing[0]
    const t0 = performance.now()
    const fencedAt = Date.now()
    const phases: Record<string, number> = {}
    const mark = (k: string) => (phases[k] = Math.round(performance.now() - t0))
    // Sentinel PINGs the master on the link its (held) hello PUBLISH waits on: the hold ends well inside down-after.
    const holdMs = Math.max(50, Math.min(1500, Math.floor((o.downAfterMs ?? 5000) / 2)))
    const fence = await fenceWrites(conns, from, holdMs)
    try {
      mark('fenced')
      await replicasCaughtUp(conns, before.groups[0], fence.offset, t0 + Math.min(o.timeoutMs, CATCH_UP_MS))
      mark('caughtUp')
      const r = await switchOver(conns, one, g, {from, sentinel, t0, deadline: t0 + o.timeoutMs, fence, replicas, mark})
      return {...r, aimed: aim !== undefined, phases, fencedAt}
    } finally {
      await fence.lift()
    }
  } finally {
    await conns.close()
  }
}

interface Switch {
  from: string
  sentinel: string
  t0: number
  deadline: number
  fence: Fence
  /** The group's replicas when the fence went up. */
  replicas: string[]
  mark(phase: string): void
}

async function stillMaster(conns: ViewConnections, sentinels: string[], name: string, from: string): Promise<void> {
  const named = await Promise.all(
    sentinels.map((s) =>
      conns.call(s, 'SENTINEL', 'get-master-addr-by-name', name).then(
        (r) => (Array.isArray(r) ? `${r[0]}:${r[1]}` : ''),
        () => '',
      ),
    ),
  )
  const role = await conns.call(from, 'ROLE').then(
    (r) => (Array.isArray(r) ? String(r[0]) : ''),
    () => '',
  )
  if (named.some((n) => n !== from) || role !== 'master') {
    throw new ClusterError(`failover of ${name} not started, nothing changed: its master moved while waiting (${named.join(', ')} named; ${from} says ${role || 'nothing'})`, {
      hint: 'baremetal status shows the group',
    })
  }
}

async function switchOver(conns: ViewConnections, one: SentinelLayout, g: SentinelGroup, s: Switch): Promise<FailoverResult> {
  const {from, sentinel, t0, deadline} = s
  try {
    await conns.call(sentinel, 'SENTINEL', 'FAILOVER', g.name)
  } catch (error) {
    throw new ClusterError(`${sentinel} refused SENTINEL FAILOVER ${g.name}: ${(error as Error).message}`, {
      hint: 'NOGOODSLAVE: the Sentinel knows no healthy replica yet; INPROG: a failover is running, wait for it',
    })
  }
  let switchedMs: number | undefined
  let demotedBy: FailoverResult['demotedBy'] = 'sentinel'
  s.mark('failoverSent')
  const promoted = await promotedReplica(conns, s.replicas, Math.min(deadline, performance.now() + PROMOTION_WATCH_MS))
  const moved = promoted ? await repoint(conns, [...s.replicas.filter((r) => r !== promoted), from], promoted) : []
  if (moved.includes(from)) demotedBy = 'baremetal'
  if (promoted) s.mark('promotedAndRepointed')
  // The fence stays until the old master is a replica: lifted on a master, it would take writes again.
  if (demotedBy === 'baremetal') await s.fence.lift()
  for (;;) {
    const v = (await readSentinelView(one, {conns})).groups[0]
    const now = performance.now()
    if (switchedMs === undefined && v.answers.some((a) => a.master && a.master !== from)) {
      switchedMs = now - t0
      s.mark('firstSentinelNames')
    }
    const to = confirmed(v, from)
    if (to) s.mark('confirmed')
    if (to) return {group: g.name, from, to, ms: Math.round(now - t0), switchedMs: Math.round(switchedMs ?? now - t0), demotedBy, sentinel}
    if (await demoteOldMaster(conns, v, from)) demotedBy = 'baremetal'
    // A replica now (ours or the Sentinels' doing): writes to it are refused anyway, and a
    // CONFIG REWRITE must not persist the fence (up would put the declared value back).
    if (v.roles.find((r) => r.addr === from)?.role === 'replica' || demotedBy === 'baremetal') await s.fence.lift()
    if (now > deadline) {
      throw new ClusterError(`failover of ${g.name} not confirmed after ${Math.round(now - t0)} ms: ${v.answers.map((a) => `${a.sentinel} names ${a.master ?? a.error ?? 'nothing'}`).join('; ')}`, {
        hint: 'baremetal status shows where it stands; the Sentinels go on with it (failover-timeout)',
      })
    }
    await new Promise((r) => setTimeout(r, POLL_MS))
  }
}

// SENTINEL FAILOVER promotes its pick a few of its timer ticks (10-19 a second) after the command.
const PROMOTION_WATCH_MS = 5000
const WATCH_POLL_MS = 5

/** The replica that says master first (Sentinel's SLAVEOF NO ONE landed), or undefined by the deadline. */
async function promotedReplica(conns: ViewConnections, replicas: string[], deadline: number): Promise<string | undefined> {
  while (performance.now() < deadline) {
    const roles = await Promise.all(
      replicas.map((r) =>
        conns.call(r, 'ROLE').then(
          (x) => (Array.isArray(x) ? String(x[0]) : ''),
          () => '',
        ),
      ),
    )
    const i = roles.indexOf('master')
    if (i >= 0) return replicas[i]
    await new Promise((r) => setTimeout(r, WATCH_POLL_MS))
  }
  return undefined
}

// The moment the promoted replica detaches, the old master's stream must end for everyone:
// each byte it sends the others afterwards (a Sentinel hello is a PUBLISH, and PUBLISH is
// replicated) puts them past the new master's offset, and their PSYNC becomes a full resync
// (seconds of NOREPLICAS on the new master under min-replicas-to-write). So the others and
// the old master replicate from the promoted one at once, as the Sentinels are about to
// make them; Sentinel's own SLAVEOF comes a second later and finds them there. No write
// can go anywhere meanwhile: the old master is fenced, the new one is named by no
// Sentinel yet (HAProxy's rule), and the old master stops saying master. Those that took
// it; errors leave the rest to the Sentinels.
async function repoint(conns: ViewConnections, members: string[], to: string): Promise<string[]> {
  const i = to.lastIndexOf(':')
  const done = await Promise.all(
    members.map((m) =>
      conns.call(m, 'REPLICAOF', to.slice(0, i), to.slice(i + 1)).then(
        () => m,
        () => undefined,
      ),
    ),
  )
  return done.filter((m): m is string => m !== undefined)
}

// How long the replicas may take to reach the fenced master's offset before the failover
// is given up (writes refused all that time).
const CATCH_UP_MS = 5000
const FENCE = '1000000'

interface Fence {
  /** The master's replication offset once no write can land any more. */
  offset: number
  /** Its declared min-replicas-to-write back (idempotent). */
  lift(): Promise<void>
}

// SENTINEL FAILOVER promotes a replica without stopping the old master: it goes on taking
// writes until it is reconfigured, and a write another replica acknowledges meanwhile (WAIT
// 1 with 2 replicas) is thrown away when both resync from the new master. So writes are
// refused first (min-replicas-to-write no master can meet: NOREPLICAS at once, on 5.0.3 and
// 7.x alike, where CLIENT PAUSE on 5.0 would also hold our own REPLICAOF back), and the
// failover waits until every replica holds every write the master took.
//
// Writes are not the only bytes in its replication stream: Sentinels' hellos (PUBLISH), key
// expiry and the replication PING are too, and any of them between the promotion and the
// repoint forces full resyncs. On 6.2+ CLIENT PAUSE WRITE holds PUBLISH and expiry (not
// reads, CONFIG or REPLICAOF; writes are refused by the fence before the pause is looked
// at), for at most holdMs; 5.0 has no WRITE pause (its pause would hold our REPLICAOF too)
// and refuses the form, which leaves it at the fence. The PING period goes up meanwhile.
async function fenceWrites(conns: ViewConnections, master: string, holdMs: number): Promise<Fence> {
  const get = async (k: string, dflt: string) => {
    const got = (await conns.call(master, 'CONFIG', 'GET', k)) as string[]
    return Array.isArray(got) && got.length === 2 ? String(got[1]) : dflt
  }
  const declared = await get('min-replicas-to-write', '0')
  const ping = await get('repl-ping-replica-period', '10')
  await conns.call(master, 'CONFIG', 'SET', 'min-replicas-to-write', FENCE)
  const paused = await conns.call(master, 'CLIENT', 'PAUSE', String(holdMs), 'WRITE').then(
    () => true,
    () => false,
  )
  await conns.call(master, 'CONFIG', 'SET', 'repl-ping-replica-period', '3600').catch(() => {})
  let lifted = false
  const lift = async () => {
    if (lifted) return
    lifted = true
    await conns.call(master, 'CONFIG', 'SET', 'min-replicas-to-write', declared).catch(() => {
      lifted = false
    })
    await conns.call(master, 'CONFIG', 'SET', 'repl-ping-replica-period', ping).catch(() => {})
    if (paused) await conns.call(master, 'CLIENT', 'UNPAUSE').catch(() => {})
  }
  try {
    const info = String(await conns.call(master, 'INFO', 'replication'))
    const offset = Number(/^master_repl_offset:(\d+)/m.exec(info)?.[1])
    if (!Number.isFinite(offset)) throw new ClusterError(`${master}: INFO replication shows no master_repl_offset`)
    return {offset, lift}
  } catch (error) {
    await lift()
    throw error
  }
}

// Every replica of the group at the master's offset: whichever one the Sentinels pick then
// holds every acknowledged write (they choose on offsets up to 10 s old).
async function replicasCaughtUp(conns: ViewConnections, v: GroupView, offset: number, deadline: number): Promise<void> {
  let behind: string[] = []
  for (;;) {
    behind = []
    for (const r of v.replicas) {
      const info = await conns.call(r.addr, 'INFO', 'replication').then(String, (e: Error) => e.message)
      const at = Number(/^slave_repl_offset:(\d+)/m.exec(info)?.[1] ?? -1)
      if (at < offset) behind.push(`${r.addr} at ${at < 0 ? '?' : at} of ${offset}`)
    }
    if (behind.length === 0) return
    if (performance.now() > deadline) {
      throw new ClusterError(
        `failover refused: not every replica caught up with the master within ${CATCH_UP_MS} ms (${behind.join(', ')}); its writes were refused meanwhile and are accepted again, nothing else changed`,
        {
          hint: 'baremetal status shows the replicas and their lag; try again once they are in sync',
        },
      )
    }
    await new Promise((r) => setTimeout(r, 20))
  }
}

// Once every Sentinel names the new master, the old one still takes writes until a Sentinel
// gets round to reconfiguring it (seconds: its role-mismatch check waits 4 publish periods),
// and every write it takes then is thrown away when it resyncs. We make it the replica the
// Sentinels' configuration already says it is, at once.
async function demoteOldMaster(conns: ViewConnections, v: GroupView, from: string): Promise<boolean> {
  const named = new Set(v.answers.filter((a) => !a.error).map((a) => a.master))
  const to = named.size === 1 ? [...named][0] : undefined
  if (!to || to === from) return false
  if (v.roles.find((r) => r.addr === to)?.role !== 'master') return false
  if (v.roles.find((r) => r.addr === from)?.role !== 'master') return false
  const i = to.lastIndexOf(':')
  try {
    await conns.call(from, 'REPLICAOF', to.slice(0, i), to.slice(i + 1))
    return true
  } catch {
    // 5.0.3 knows REPLICAOF too; any error here leaves it to the Sentinels.
    return false
  }
}
