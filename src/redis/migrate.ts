import type {Redis} from 'ioredis'
import {ClusterError} from '../errors.js'
import {describeRedisError, type NodePool} from './cluster.js'
import {nodeAddr, type ClusterNode} from './plan.js'
import type {SlotMove} from './rebalance.js'

// Moving slots between masters of a live cluster, the way `redis-cli --cluster reshard`
// does it but batched: for a batch of slots of one (source, target) pair, one pipeline
// of SETSLOT IMPORTING on the target, one of SETSLOT MIGRATING on the source, then
// rounds of GETKEYSINSLOT + MIGRATE … KEYS (one pipeline each) until the source holds no
// key of those slots, then SETSLOT NODE on the target, the source, and every other
// master. Pairs with different sources run at once (MIGRATE blocks its source, so one
// batch per source at a time). Clients keep working: the source answers ASK for keys
// already moved, the target accepts them after ASKING.
//
// An interruption (controller killed, node unreachable) leaves slots open
// (`[slot->-id]` on the source, `[slot-<-id]` on the target); decideOpenSlot says,
// purely from what the nodes report, whether each is finished or rolled back.

/** A master the executor talks to: its id and where it listens. */
export interface MigrateNode extends ClusterNode {
  id: string
}

export interface MoveOptions {
  pool: NodePool
  password?: string
  /** Batches in flight at once, across different source nodes (default 8). */
  concurrency?: number
  /** Slots per batch (default 32). */
  batchSlots?: number
  /** Keys per MIGRATE (default 1000). */
  keysPerMigrate?: number
  /** MIGRATE's own timeout (default 60 s). */
  migrateTimeoutMs?: number
  signal?: AbortSignal
  /** Called after every batch with the totals so far. */
  progress?: (done: MoveProgress) => void
}

export interface MoveProgress {
  slots: number
  keys: number
  totalSlots: number
  elapsedMs: number
}

export interface MoveResult {
  slots: number
  keys: number
  elapsedMs: number
}

const OWNER_ALREADY = /already the owner/i
const NOT_OWNER = /not the owner/i
const STILL_KEYS = /still hold keys/i
const ONLY_MASTERS = /only with masters/i

// Carries out the planned moves; `masters` are all masters that should hear about new
// owners (SETSLOT NODE), the pairs' ends included.
export async function moveSlots(moves: readonly SlotMove[], nodes: ReadonlyMap<string, MigrateNode>, masters: readonly string[], opts: MoveOptions): Promise<MoveResult> {
  const started = Date.now()
  const batchSlots = opts.batchSlots ?? 32
  const limit = Math.max(1, opts.concurrency ?? 8)
  const totalSlots = moves.reduce((n, m) => n + m.slots.length, 0)
  const done = {slots: 0, keys: 0}
  const node = (id: string): MigrateNode => {
    const n = nodes.get(id)
    if (!n) throw new ClusterError(`no address known for node ${id}`)
    return n
  }
  const queue = moves.map(m => ({from: node(m.from), to: node(m.to), left: [...m.slots]}))
  const busy = new Set<string>()
  const running = new Set<Promise<void>>()
  let failure: unknown

  const startable = () => queue.find(q => q.left.length > 0 && !busy.has(q.from.id))
  while (!failure) {
    if (opts.signal?.aborted) {
      failure = new ClusterError('interrupted while moving slots', {hint: 'run up again: open slots are finished and the rebalance continues'})
      break
    }
    let q = startable()
    while (q && running.size < limit) {
      const pair = q
      const slots = pair.left.splice(0, batchSlots)
      busy.add(pair.from.id)
      const p: Promise<void> = moveBatch(pair.from, pair.to, slots, masters, nodes, opts)
        .then(keys => {
          done.slots += slots.length
          done.keys += keys
          opts.progress?.({...done, totalSlots, elapsedMs: Date.now() - started})
        })
        .catch(error => {
          failure ??= error
        })
        .finally(() => {
          busy.delete(pair.from.id)
          running.delete(p)
        })
      running.add(p)
      q = startable()
    }
    if (running.size === 0) break
    await Promise.race(running)
  }
  await Promise.all(running)
  if (failure) throw failure
  return {...done, elapsedMs: Date.now() - started}
}

async function pipeline(pool: NodePool, n: ClusterNode, build: (r: Redis) => ReturnType<Redis['pipeline']>): Promise<Array<[Error | null, unknown]>> {
  return pool.run(n, async r => ((await build(r).exec()) ?? []) as Array<[Error | null, unknown]>)
}

function fail(n: ClusterNode, what: string, error: unknown, password?: string): ClusterError {
  return new ClusterError(`${nodeAddr(n)} (host ${n.host}): ${what}: ${describeRedisError(error, password)}`, {
    where: {host: n.host},
    hint: 'run up again: open slots are found and finished, then the rebalance continues',
  })
}

export interface BatchState {
  /** Skip SETSLOT IMPORTING (the target already owns or imports these). */
  skipImporting?: boolean
  /** Skip SETSLOT MIGRATING (the source no longer owns these). */
  skipMigrating?: boolean
}

// One batch of one pair: returns the number of keys moved. Also finishes a batch an
// earlier run left open (already-owner / not-owner answers are the state we want).
export async function moveBatch(
  from: MigrateNode,
  to: MigrateNode,
  slots: readonly number[],
  masters: readonly string[],
  nodes: ReadonlyMap<string, MigrateNode>,
  opts: MoveOptions,
  state: BatchState = {},
): Promise<number> {
  const {pool, password} = opts
  const perMigrate = opts.keysPerMigrate ?? 1000
  const timeout = String(opts.migrateTimeoutMs ?? 60_000)
  if (!state.skipImporting) {
    const res = await pipeline(pool, to, r => {
      const p = r.pipeline()
      for (const s of slots) p.call('CLUSTER', 'SETSLOT', String(s), 'IMPORTING', from.id)
      return p
    }).catch(e => {
      throw fail(to, 'SETSLOT IMPORTING failed', e, password)
    })
    for (const [err] of res) if (err && !OWNER_ALREADY.test(err.message)) throw fail(to, 'SETSLOT IMPORTING failed', err, password)
  }
  if (!state.skipMigrating) {
    const res = await pipeline(pool, from, r => {
      const p = r.pipeline()
      for (const s of slots) p.call('CLUSTER', 'SETSLOT', String(s), 'MIGRATING', to.id)
      return p
    }).catch(e => {
      throw fail(from, 'SETSLOT MIGRATING failed', e, password)
    })
    for (const [err] of res) if (err && !NOT_OWNER.test(err.message)) throw fail(from, 'SETSLOT MIGRATING failed', err, password)
  }

  let keys = 0
  const auth = password ? ['AUTH', password] : []
  for (let attempt = 0; ; attempt++) {
    keys += await drain(from, to, slots, perMigrate, timeout, auth, opts)
    // Target first: it takes the slot and bumps its epoch; then the source, which
    // refuses while it still holds a key of the slot (written before MIGRATING).
    const toRes = await pipeline(pool, to, r => {
      const p = r.pipeline()
      for (const s of slots) p.call('CLUSTER', 'SETSLOT', String(s), 'NODE', to.id)
      return p
    }).catch(e => {
      throw fail(to, 'SETSLOT NODE on the target failed', e, password)
    })
    for (const [err] of toRes) if (err) throw fail(to, 'SETSLOT NODE on the target failed', err, password)
    const fromRes = await pipeline(pool, from, r => {
      const p = r.pipeline()
      for (const s of slots) p.call('CLUSTER', 'SETSLOT', String(s), 'NODE', to.id)
      return p
    }).catch(e => {
      throw fail(from, 'SETSLOT NODE on the source failed', e, password)
    })
    const busyKeys = fromRes.filter(([err]) => err && STILL_KEYS.test(err.message))
    // A source that learned of the target's new epoch by gossip before our command lost
    // the slots already; losing its last one made it a replica of the target.
    const other = fromRes.find(([err]) => err && !STILL_KEYS.test(err.message) && !ONLY_MASTERS.test(err.message))
    if (other) throw fail(from, 'SETSLOT NODE on the source failed', other[0], password)
    if (busyKeys.length === 0) break
    if (attempt >= 5) throw fail(from, 'SETSLOT NODE on the source failed', busyKeys[0][0], password)
  }
  // Everyone else learns the owner now rather than by gossip; a master that does not
  // answer learns it from gossip (the target's bumped epoch wins).
  await Promise.all(
    masters
      .filter(id => id !== from.id && id !== to.id && nodes.has(id))
      .map(id =>
        pipeline(pool, nodes.get(id)!, r => {
          const p = r.pipeline()
          for (const s of slots) p.call('CLUSTER', 'SETSLOT', String(s), 'NODE', to.id)
          return p
        }).catch(() => []),
      ),
  )
  return keys
}

// Rounds of GETKEYSINSLOT (all slots of the batch in one pipeline) and MIGRATE (one
// per slot with keys, in one pipeline) until the source has none left.
async function drain(from: MigrateNode, to: MigrateNode, slots: readonly number[], perMigrate: number, timeout: string, auth: string[], opts: MoveOptions): Promise<number> {
  const {pool, password} = opts
  let open = [...slots]
  let moved = 0
  while (open.length > 0) {
    const res = await pipeline(pool, from, r => {
      const p = r.pipeline()
      for (const s of open) p.callBuffer('CLUSTER', 'GETKEYSINSLOT', String(s), String(perMigrate))
      return p
    }).catch(e => {
      throw fail(from, 'GETKEYSINSLOT failed', e, password)
    })
    const batches: Array<{slot: number; keys: Buffer[]}> = []
    res.forEach(([err, keys], i) => {
      if (err) throw fail(from, 'GETKEYSINSLOT failed', err, password)
      if (Array.isArray(keys) && keys.length > 0) batches.push({slot: open[i], keys: keys as Buffer[]})
    })
    if (batches.length === 0) break
    const mres = await pipeline(pool, from, r => {
      const p = r.pipeline()
      for (const b of batches) p.call('MIGRATE', to.ip, String(to.port), '', '0', timeout, ...auth, 'KEYS', ...b.keys)
      return p
    }).catch(e => {
      throw fail(from, `MIGRATE to ${nodeAddr(to)} failed`, e, password)
    })
    mres.forEach(([err], i) => {
      if (!err) return
      const msg = err.message
      if (/BUSYKEY/.test(msg)) {
        throw new ClusterError(`${nodeAddr(from)}: MIGRATE of slot ${batches[i].slot} to ${nodeAddr(to)} refused: the target already holds one of its keys`, {
          where: {host: from.host},
          hint: 'the same key exists on both nodes; inspect it (CLUSTER GETKEYSINSLOT on both) and delete the stale copy, then run up again',
        })
      }
      throw fail(from, `MIGRATE of slot ${batches[i].slot} to ${nodeAddr(to)} failed`, err, password)
    })
    for (const b of batches) moved += b.keys.length
    open = batches.map(b => b.slot)
  }
  return moved
}

/** What the nodes say about one slot that some node has open. */
export interface OpenSlotView {
  slot: number
  /** Masters whose own line claims the slot. */
  owners: string[]
  migrating: Array<{node: string; to: string}>
  importing: Array<{node: string; from: string}>
  /** Keys in the slot on the nodes that were asked (COUNTKEYSINSLOT). */
  keys: Record<string, number>
  /** Nodes involved in the slot that could not be reached. */
  unreachable: string[]
}

export type OpenSlotDecision =
  /** Move what `from` still holds to `to`, make `to` the owner everywhere; clear `stable`. */
  | {slot: number; action: 'finish'; from: string | null; to: string; stable: string[]; why: string}
  /** SETSLOT STABLE on these nodes: the owner keeps the slot. */
  | {slot: number; action: 'rollback'; stable: string[]; why: string}
  /** Not safe to touch now (a node is down, or the state is not one a move leaves). */
  | {slot: number; action: 'stuck'; why: string}

const uniq = (a: readonly string[]) => [...new Set(a)]

// Pure: finish a move whose target may already hold keys (or owns the slot), roll back
// one that moved nothing yet; never guess when a party is down or the state is foreign.
export function decideOpenSlot(v: OpenSlotView): OpenSlotDecision {
  const {slot} = v
  const involved = uniq([...v.owners, ...v.migrating.flatMap(m => [m.node, m.to]), ...v.importing.flatMap(i => [i.node, i.from])])
  const down = involved.filter(id => v.unreachable.includes(id))
  if (down.length > 0) return {slot, action: 'stuck', why: `node(s) ${down.map(short).join(', ')} cannot be reached: the slot is settled once they answer`}
  const keys = (id: string) => v.keys[id] ?? 0
  const openNodes = uniq([...v.migrating.map(m => m.node), ...v.importing.map(i => i.node)])

  if (v.owners.length > 1) {
    // The target took the slot (SETSLOT NODE on it first) and the source has not yet.
    const dest = v.owners.filter(o => v.migrating.some(m => m.to === o && v.owners.includes(m.node)))
    if (dest.length !== 1) return {slot, action: 'stuck', why: `claimed by ${v.owners.length} masters (${v.owners.map(short).join(', ')}) with no move between them: Redis settles this by config epoch`}
    const from = v.owners.find(o => o !== dest[0])!
    return {slot, action: 'finish', from, to: dest[0], stable: openNodes.filter(n => n !== from && n !== dest[0]), why: `${short(dest[0])} already owns it; ${short(from)} still has it migrating`}
  }
  if (v.owners.length === 0) {
    const importers = uniq(v.importing.map(i => i.node))
    if (importers.length === 1) return {slot, action: 'finish', from: null, to: importers[0], stable: openNodes.filter(n => n !== importers[0]), why: 'no owner; one node imports it'}
    return {slot, action: 'stuck', why: `no owner and ${importers.length} importing nodes`}
  }

  const owner = v.owners[0]
  const targets = uniq([...v.importing.map(i => i.node), ...v.migrating.filter(m => m.node === owner).map(m => m.to)]).filter(t => t !== owner)
  if (targets.length === 0) return {slot, action: 'rollback', stable: openNodes, why: `owner ${short(owner)} is not moving it: stale open state cleared`}
  const withKeys = targets.filter(t => keys(t) > 0)
  if (withKeys.length > 1) return {slot, action: 'stuck', why: `keys on several nodes besides the owner (${withKeys.map(short).join(', ')}): settle by hand (redis-cli --cluster fix)`}
  const ownerTo = v.migrating.find(m => m.node === owner)?.to
  const target = withKeys[0] ?? (ownerTo && ownerTo !== owner ? ownerTo : targets[0])
  const importing = v.importing.some(i => i.node === target)
  const others = openNodes.filter(n => n !== owner && n !== target)
  if (keys(target) > 0 || (importing && ownerTo === target)) {
    return {slot, action: 'finish', from: owner, to: target, stable: others, why: keys(target) > 0 ? `${short(target)} already holds ${keys(target)} key(s)` : `${short(owner)} migrating to ${short(target)}, which imports it`}
  }
  return {slot, action: 'rollback', stable: openNodes, why: `no key moved to ${short(target)} yet`}
}

const short = (id: string) => id.slice(0, 8)
