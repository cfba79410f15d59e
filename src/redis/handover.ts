// Before a dead instance is started again (drift repair, a host back after a crash), decide
// for each one whether starting it can lose acknowledged writes. A master killed with its
// slots comes back from its own nodes.conf as their owner, with an empty (or old) dataset;
// if its replica has not been promoted yet, that replica resyncs from it and flushes the
// only good copy. So: a dead master with a live replica is failed over first; one without
// is started only when its data survives on disk (or it never served a write); otherwise
// the start is refused, naming the slots. Pure: decisions from what the nodes and hosts said.
import {countSlots, rangesToString, type NodeEntry, type SlotRange} from './nodes.js'

/** What the host says about a dead instance's directory (one script per host). */
export interface DataFacts {
  /** The pid of its own pidfile is alive (then it is not dead: starting, or bound elsewhere). */
  running: boolean
  /** appendonly yes in the config it was started with, and an AOF on disk. */
  aof: boolean
  /** A non-empty dump.rdb. */
  rdb: boolean
  /** The RDB was written by baremetal's SHUTDOWN SAVE (down --keep-data, a saved restart) and not started since. */
  saved: boolean
  /** Save points in the config it was started with: the RDB is at most one interval old. */
  savePoints: boolean
  /** Its redis.log exists. */
  log: boolean
  /** The log says it once reached cluster_state:ok (a node never ok refused every write: CLUSTERDOWN). */
  everOk: boolean
  /** Its own nodes.conf line: a master owning slots. */
  ownSlots: SlotRange[]
}

export interface DownNode {
  addr: string
  host: string
}

export type Handover =
  /** Safe to start: a replica, a master without slots, or its data is on disk. */
  | {addr: string; host: string; action: 'start'; why: string}
  /** Promote one of its live replicas first (FORCE; TAKEOVER when no majority of masters can vote). */
  | {addr: string; host: string; action: 'failover'; id: string; slots: SlotRange[]; replicas: string[]; takeover: boolean}
  /** Starting it would serve its slots empty: refused (or, with allowDataLoss, started with the loss said). */
  | {addr: string; host: string; action: 'refuse' | 'start-empty'; slots: SlotRange[]; why: string}

export function dataSurvives(d: DataFacts): string | undefined {
  if (d.aof) return 'its AOF is on disk'
  if (d.rdb && d.saved) return 'its RDB was saved by baremetal at its last stop'
  if (d.rdb && d.savePoints) return 'its RDB is on disk (save points configured)'
  if (d.log && !d.everOk) return 'it never reached cluster_state:ok, so it never acknowledged a write'
  return undefined
}

/**
 * One decision per dead node, in order. `entries` is the cluster's view from a live member
 * (empty when every node is down: then each node's own nodes.conf says what it was).
 */
export function planHandover(down: readonly DownNode[], live: ReadonlySet<string>, entries: readonly NodeEntry[], data: ReadonlyMap<string, DataFacts>, allowDataLoss: boolean): Handover[] {
  const byAddr = new Map(entries.filter((e) => !e.noaddr).map((e) => [e.addr, e]))
  const owners = entries.filter((e) => e.master && e.slots.length > 0)
  // Votes come from live slot-owning masters; a promoted replica adds one.
  let voters = owners.filter((e) => live.has(e.addr)).length
  const out: Handover[] = []
  for (const n of down) {
    const d = data.get(n.addr)
    const e = byAddr.get(n.addr)
    const slots = e ? (e.master ? e.slots : []) : (d?.ownSlots ?? [])
    if (slots.length === 0) {
      out.push({...n, action: 'start', why: e?.replica ? 'a replica: it resyncs from its master' : 'it owns no slot'})
      continue
    }
    const replicas = e ? entries.filter((x) => x.masterId === e.id && x.replica && live.has(x.addr)).map((x) => x.addr) : []
    if (e && replicas.length > 0) {
      out.push({...n, action: 'failover', id: e.id, slots, replicas, takeover: voters <= owners.length / 2})
      voters++
      continue
    }
    const why = d && dataSurvives(d)
    if (why) out.push({...n, action: 'start', why})
    else {
      const lost = `master of ${countSlots(slots)} slot(s) (${rangesToString(slots)}) is down with no live replica and no data on disk${d ? '' : ' (its host was not asked)'}: started, it would serve those slots empty`
      out.push({...n, action: allowDataLoss ? 'start-empty' : 'refuse', slots, why: lost})
    }
  }
  return out
}
