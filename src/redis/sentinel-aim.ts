import type {ViewConnections} from './sentinel-view.js'

// When to send SENTINEL FAILOVER, and to which Sentinel, so that it sees its promotion
// early (sentinel.c, 5.0 and 7.x alike):
// - the Sentinel acts on its timer (10-19 ticks a second): try-failover, select the
//   replica on the next tick, SLAVEOF NO ONE on the one after (≤ 300 ms after the command);
// - it sees the promotion only in the promoted replica's next INFO reply, and while a
//   failover runs it sends INFO to a replica once its last reply is 1 s old (10 s
//   otherwise). So a replica last heard from more than 1 s ago is asked at once, before
//   its SLAVEOF NO ONE, and the promotion is seen a full second later; one heard from
//   ~650 ms before the command is asked ~350 ms after it, just after the SLAVEOF NO ONE.
// - a Sentinel asks all the replicas of a master in the same tick (they are discovered
//   together), so all of them are heard from ~650 ms before the command: whichever it
//   picks (lowest slave-priority, then the highest offset it last heard of) is asked again
//   just after its SLAVEOF NO ONE. A replica heard from at another time (restarted since)
//   keeps that Sentinel out of the choice.
// Missing the window costs only time: the failover is then what it was without aiming.

/** Target age of the aimed-at replica's last INFO reply when the fence goes up (the command follows within a few ms). */
const AIM_AGE_MS = 620
const POLL_MS = 40
/** One INFO period of every Sentinel, and a tick. */
export const AIM_WAIT_MS = 10_500

export interface Aim {
  sentinel: string
  /** performance.now() at which to put the fence up. */
  at: number
}

interface Heard {
  age: number
}

function pairs(entry: unknown): Record<string, string> {
  const a = Array.isArray(entry) ? entry.map(String) : []
  const o: Record<string, string> = {}
  for (let i = 0; i + 1 < a.length; i += 2) o[a[i]] = a[i + 1]
  return o
}

async function heardBy(conns: ViewConnections, sentinel: string, name: string): Promise<Map<string, Heard> | undefined> {
  try {
    const list = (await conns.call(sentinel, 'SENTINEL', 'slaves', name)) as unknown[]
    const out = new Map<string, Heard>()
    for (const o of list.map(pairs)) {
      if (/s_down|o_down|disconnected/.test(o.flags ?? '')) continue
      out.set(`${o.ip}:${o.port}`, {age: Number(o['info-refresh'])})
    }
    return out
  } catch {
    return undefined
  }
}

/** The Sentinel whose INFO of every replica fits the window soonest, or undefined. Pure. */
export function pickAim(heard: Array<{sentinel: string; replicas: Map<string, Heard>}>, eligible: string[], now: number): Aim | undefined {
  let best: Aim | undefined
  for (const {sentinel, replicas} of heard) {
    const ages = eligible.map((r) => replicas.get(r)?.age ?? NaN)
    if (ages.some((a) => !(a >= 0 && a <= AIM_AGE_MS))) continue
    const wait = AIM_AGE_MS - Math.max(...ages)
    if (!best || now + wait < best.at) best = {sentinel, at: now + wait}
  }
  return best
}

/** Polls every Sentinel's view of the replicas until one meets the window (undefined by the deadline). */
export async function aimFailover(conns: ViewConnections, sentinels: string[], name: string, replicas: string[], deadline: number): Promise<Aim | undefined> {
  while (performance.now() < deadline) {
    const heard = await Promise.all(sentinels.map(async (s) => ({sentinel: s, replicas: await heardBy(conns, s, name)})))
    const aim = pickAim(
      heard.filter((h): h is {sentinel: string; replicas: Map<string, Heard>} => h.replicas !== undefined),
      replicas,
      performance.now(),
    )
    if (aim) return aim
    await new Promise((r) => setTimeout(r, POLL_MS))
  }
  return undefined
}
