import type {Redis} from 'ioredis'
import {ClusterError} from '../errors.js'
import {parseClusterNodes, type NodeEntry} from './nodes.js'
import {describeRedisError, type NodePool} from './pool.js'
import {nodeAddr, type ClusterNode} from './plan.js'
import type {SlotMove} from './rebalance.js'

// Moving slots between masters of a live cluster, the way `redis-cli --cluster reshard`
// does it but batched: for a batch of slots of one (source, target) pair, one pipeline
// of SETSLOT IMPORTING on the target, one of SETSLOT MIGRATING on the source, then
// rounds of GETKEYSINSLOT + MEMORY USAGE + MIGRATE … KEYS (one pipeline each; MIGRATE
// rounds sized in bytes so the source, blocked while it sends, keeps answering the
// cluster bus well within cluster-node-timeout) until the source holds no key of those
// slots, then SETSLOT NODE on the target, the source, and every other master. Pairs with different sources run at once (MIGRATE blocks its source, so one
// batch per source at a time). Clients keep working: the source answers ASK for keys
// already moved, the target accepts them after ASKING.
//
// An interruption (controller killed, node unreachable) leaves slots open
// (`[slot->-id]` on the source, `[slot-<-id]` on the target); resolveOpenSlot maps the
// ids to each shard's current master (a failover may have happened since), and
// decideOpenSlot says, purely from what the nodes report, whether each is finished or
// rolled back.

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
  /** Keys per MIGRATE at most (default 1000). */
  keysPerMigrate?: number
  /** Timing from the nodes' cluster-node-timeout (default: read by CONFIG GET before the first batch). */
  timing?: MigrateTiming
  /** Per (source, target) pair: the byte budget of the next MIGRATE round, adapted to what the link carried. */
  pacers?: Map<string, Pacer>
  signal?: AbortSignal
  /** Keys found on both ends with the same value and dropped from the source (see dropTwins). */
  onTwins?: (slots: readonly number[], keys: number) => void
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
  if (moves.length === 0) return {slots: 0, keys: 0, elapsedMs: 0}
  const ends = [...new Set(moves.flatMap((m) => [m.from, m.to]))].flatMap((id) => (nodes.has(id) ? [nodes.get(id)!] : []))
  opts = {...opts, timing: opts.timing ?? (await readTiming(opts.pool, ends)), pacers: opts.pacers ?? new Map()}
  const batchSlots = opts.batchSlots ?? 32
  const limit = Math.max(1, opts.concurrency ?? 8)
  const totalSlots = moves.reduce((n, m) => n + m.slots.length, 0)
  const done = {slots: 0, keys: 0}
  const node = (id: string): MigrateNode => {
    const n = nodes.get(id)
    if (!n) throw new ClusterError(`no address known for node ${id}`)
    return n
  }
  const queue = moves.map((m) => ({from: node(m.from), to: node(m.to), left: [...m.slots]}))
  const busy = new Set<string>()
  const running = new Set<Promise<void>>()
  let failure: unknown

  const startable = () => queue.find((q) => q.left.length > 0 && !busy.has(q.from.id))
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
        .then((keys) => {
          done.slots += slots.length
          done.keys += keys
          opts.progress?.({...done, totalSlots, elapsedMs: Date.now() - started})
        })
        .catch((error) => {
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
  return pool.run(n, async (r) => ((await build(r).exec()) ?? []) as Array<[Error | null, unknown]>)
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
  const timing = opts.timing ?? (await readTiming(pool, [from, to]))
  const pacers = opts.pacers ?? new Map<string, Pacer>()
  const key = `${from.id}>${to.id}`
  if (!pacers.has(key)) pacers.set(key, newPacer(timing))
  const ctx: DrainContext = {perMigrate: opts.keysPerMigrate ?? 1000, timing, pacer: pacers.get(key)!, opts}
  if (!state.skipImporting) {
    const res = await pipeline(pool, to, (r) => {
      const p = r.pipeline()
      for (const s of slots) p.call('CLUSTER', 'SETSLOT', String(s), 'IMPORTING', from.id)
      return p
    }).catch((e) => {
      throw fail(to, 'SETSLOT IMPORTING failed', e, password)
    })
    for (const [err] of res) if (err && !OWNER_ALREADY.test(err.message)) throw fail(to, 'SETSLOT IMPORTING failed', err, password)
  }
  if (!state.skipMigrating) {
    const res = await pipeline(pool, from, (r) => {
      const p = r.pipeline()
      for (const s of slots) p.call('CLUSTER', 'SETSLOT', String(s), 'MIGRATING', to.id)
      return p
    }).catch((e) => {
      throw fail(from, 'SETSLOT MIGRATING failed', e, password)
    })
    for (const [err] of res) if (err && !NOT_OWNER.test(err.message)) throw fail(from, 'SETSLOT MIGRATING failed', err, password)
  }

  let keys = 0
  for (let attempt = 0; ; attempt++) {
    keys += await drain(from, to, slots, ctx)
    // Target first: it takes the slot and bumps its epoch; then the source, which
    // refuses while it still holds a key of the slot (written before MIGRATING).
    const toRes = await pipeline(pool, to, (r) => {
      const p = r.pipeline()
      for (const s of slots) p.call('CLUSTER', 'SETSLOT', String(s), 'NODE', to.id)
      return p
    }).catch((e) => {
      throw fail(to, 'SETSLOT NODE on the target failed', e, password)
    })
    for (const [err] of toRes) if (err) throw fail(to, 'SETSLOT NODE on the target failed', err, password)
    const fromRes = await pipeline(pool, from, (r) => {
      const p = r.pipeline()
      for (const s of slots) p.call('CLUSTER', 'SETSLOT', String(s), 'NODE', to.id)
      return p
    }).catch((e) => {
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
      .filter((id) => id !== from.id && id !== to.id && nodes.has(id))
      .map((id) =>
        pipeline(pool, nodes.get(id)!, (r) => {
          const p = r.pipeline()
          for (const s of slots) p.call('CLUSTER', 'SETSLOT', String(s), 'NODE', to.id)
          return p
        }).catch(() => []),
      ),
  )
  return keys
}

interface DrainContext {
  perMigrate: number
  timing: MigrateTiming
  pacer: Pacer
  opts: MoveOptions
}

// Rounds of GETKEYSINSLOT (all slots of the batch in one pipeline) and MEMORY USAGE of
// the keys found, then MIGRATE rounds (one MIGRATE per slot, a pipeline per round) each
// within the pair's byte budget, until the source has none left. A round blocks the
// source for as long as it takes to send: the budget keeps that far below
// cluster-node-timeout, or the others would mark the source failed mid-move.
async function drain(from: MigrateNode, to: MigrateNode, slots: readonly number[], ctx: DrainContext): Promise<number> {
  const {pool, password} = ctx.opts
  let open = [...slots]
  let moved = 0
  while (open.length > 0) {
    const res = await pipeline(pool, from, (r) => {
      const p = r.pipeline()
      for (const s of open) p.callBuffer('CLUSTER', 'GETKEYSINSLOT', String(s), String(ctx.perMigrate))
      return p
    }).catch((e) => {
      throw fail(from, 'GETKEYSINSLOT failed', e, password)
    })
    const found: Array<{slot: number; keys: Buffer[]}> = []
    res.forEach(([err, keys], i) => {
      if (err) throw fail(from, 'GETKEYSINSLOT failed', err, password)
      if (Array.isArray(keys) && keys.length > 0) found.push({slot: open[i], keys: keys as Buffer[]})
    })
    if (found.length === 0) break
    const sizes = await pipeline(pool, from, (r) => {
      const p = r.pipeline()
      for (const f of found) for (const k of f.keys) p.call('MEMORY', 'USAGE', k)
      return p
    }).catch((e) => {
      throw fail(from, 'MEMORY USAGE failed', e, password)
    })
    let n = 0
    // A key gone meanwhile (expired, deleted) answers nil: it costs nothing to move.
    let queue: SlotKeys[] = found.map((f) => ({slot: f.slot, keys: f.keys, sizes: f.keys.map(() => Math.max(0, Number(sizes[n++]?.[1] ?? 0) || 0))}))
    while (queue.length > 0) {
      const round = takeRound(queue, ctx.pacer.budget, ctx.perMigrate, ctx.timing.maxMigratesPerRound)
      const t0 = Date.now()
      await migrateRound(from, to, round.calls, ctx)
      ctx.pacer.budget = nextBudget(ctx.pacer, round.bytes, Date.now() - t0)
      for (const c of round.calls) moved += c.keys.length
      queue = round.rest
    }
    open = found.map((f) => f.slot)
  }
  return moved
}

// A master killed while MIGRATE deleted what the target had restored may never have sent
// that DEL to its replica: the promoted replica and the target then both hold the key,
// and MIGRATE answers BUSYKEY. A twin whose serialized value (DUMP) is the same on both
// is one copy too many: the source's goes, in one script that compares first (a write
// between the check and the DEL keeps it). Twins that differ both may hold acknowledged
// writes (through ASK on the target, directly on the promoted replica): never guessed.
const DEL_IF_SAME = "redis.replicate_commands() if redis.call('DUMP', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return -1"
async function dropTwins(from: MigrateNode, to: MigrateNode, calls: readonly MigrateCall[], ctx: DrainContext): Promise<number> {
  const {pool} = ctx.opts
  const keys = calls.flatMap((c) => c.keys)
  // ASKING: the target imports the slot and answers for its keys only after it.
  const there = await pipeline(pool, to, (r) => {
    const p = r.pipeline()
    for (const k of keys) p.asking().dumpBuffer(k)
    return p
  }).catch(() => [] as Array<[Error | null, unknown]>)
  const targetCopy = keys.map((_, i) => there[2 * i + 1]?.[1])
  const twins = keys.filter((_, i) => Buffer.isBuffer(targetCopy[i]))
  if (twins.length === 0) return 0
  const res = await pipeline(pool, from, (r) => {
    const p = r.pipeline()
    keys.forEach((k, i) => {
      if (Buffer.isBuffer(targetCopy[i])) p.eval(DEL_IF_SAME, 1, k, targetCopy[i] as Buffer)
    })
    return p
  }).catch(() => [] as Array<[Error | null, unknown]>)
  const dropped = res.filter(([err, n]) => !err && n === 1).length
  if (dropped > 0) ctx.opts.onTwins?.([...new Set(calls.map((c) => c.slot))], dropped)
  return dropped
}

// A target that says CLUSTERDOWN restored nothing of that MIGRATE (each key is on one side
// or the other: the source deletes only what the target took), so the round can be sent
// again once the target's own cluster_state is ok — a node just told of a failover, or still
// importing from a source that died, is down for a few seconds. Bounded: 2 × node timeout
// per wait. A state that flaps (seen on 5.0.3 in CI right after a failover: ok at one poll,
// CLUSTERDOWN at the next MIGRATE) counts as back only once ok at three polls in a row.
const TARGET_DOWN = /Target instance replied with error: (CLUSTERDOWN|TRYAGAIN)/
async function targetBack(to: MigrateNode, ctx: DrainContext): Promise<boolean> {
  const deadline = Date.now() + 2 * ctx.timing.nodeTimeoutMs + 5000
  let okInARow = 0
  while (Date.now() < deadline) {
    if (ctx.opts.signal?.aborted) return false
    const state = await ctx.opts.pool
      .run(to, (r) => r.call('CLUSTER', 'INFO'))
      .then(
        (t) => /cluster_state:ok/.test(String(t)),
        () => false,
      )
    okInARow = state ? okInARow + 1 : 0
    if (okInARow >= 3) return true
    await new Promise((res) => setTimeout(res, 250))
  }
  return false
}

async function migrateRound(from: MigrateNode, to: MigrateNode, calls: readonly MigrateCall[], ctx: DrainContext, retries = 6): Promise<void> {
  const {pool, password} = ctx.opts
  const auth = password ? ['AUTH', password] : []
  const timeout = String(ctx.timing.migrateTimeoutMs)
  const mres = await pipeline(pool, from, (r) => {
    const p = r.pipeline()
    for (const c of calls) p.call('MIGRATE', to.ip, String(to.port), '', '0', timeout, ...auth, 'KEYS', ...c.keys)
    return p
  }).catch((e) => {
    throw fail(from, `MIGRATE to ${nodeAddr(to)} failed`, e, password)
  })
  const down = mres.some(([err]) => err && TARGET_DOWN.test(err.message))
  if (down && retries > 0 && (await targetBack(to, ctx))) return migrateRound(from, to, calls, ctx, retries - 1)
  const busy = calls.filter((_, i) => /BUSYKEY/.test(mres[i][0]?.message ?? ''))
  if (busy.length > 0 && retries > 0 && (await dropTwins(from, to, busy, ctx)) > 0) return migrateRound(from, to, calls, ctx, retries - 1)
  // Why the target says it is down, from its own map: what to fix is on that node.
  const why = down
    ? await pool
        .run(to, (r) => r.call('CLUSTER', 'NODES'))
        .then(
          (t) => downReason(parseClusterNodes(String(t))),
          () => '',
        )
    : ''
  mres.forEach(([err], i) => {
    if (!err) return
    const msg = err.message
    const c = calls[i]
    if (/BUSYKEY/.test(msg)) {
      throw new ClusterError(`${nodeAddr(from)}: MIGRATE of slot ${c.slot} to ${nodeAddr(to)} refused: the target already holds one of its keys`, {
        where: {host: from.host},
        hint: 'the same key exists on both nodes; inspect it (CLUSTER GETKEYSINSLOT on both) and delete the stale copy, then run up again',
      })
    }
    if (/IOERR|timeout/i.test(msg)) {
      throw new ClusterError(
        `${nodeAddr(from)}: MIGRATE of slot ${c.slot} to ${nodeAddr(to)} (${c.keys.length} key(s), ~${c.bytes} bytes) did not finish within ${ctx.timing.migrateTimeoutMs} ms: ${msg}`,
        {
          where: {host: from.host},
          hint: `MIGRATE's timeout is kept below half of cluster-node-timeout (${ctx.timing.nodeTimeoutMs} ms) so the source is never marked failed; a key this big on this link needs a larger cluster-node-timeout. The keys stay on the source: run up again`,
        },
      )
    }
    throw fail(from, `MIGRATE of slot ${c.slot} to ${nodeAddr(to)} failed${why && TARGET_DOWN.test(msg) ? ` (the target's map: ${why})` : ''}`, err, password)
  })
}

/** Pure: why a node's own map makes it say cluster_state:fail, in one line ('' if it should not). */
export function downReason(entries: readonly NodeEntry[]): string {
  const owner = new Array<NodeEntry | undefined>(16384)
  for (const e of entries) for (const [a, b] of e.slots) for (let s = a; s <= b; s++) owner[s] = e
  const unassigned: number[] = []
  const onFailed = new Map<string, number[]>()
  for (let s = 0; s < owner.length; s++) {
    const e = owner[s]
    if (!e) unassigned.push(s)
    else if (e.fail) onFailed.set(e.addr || e.id, [...(onFailed.get(e.addr || e.id) ?? []), s])
  }
  const parts: string[] = []
  const list = (xs: number[]) => `${xs.slice(0, 8).join(', ')}${xs.length > 8 ? ` … (${xs.length})` : ''}`
  for (const [n, slots] of onFailed) parts.push(`slot(s) ${list(slots)} served by failed node ${n}`)
  if (unassigned.length) parts.push(`slot(s) ${list(unassigned)} unassigned`)
  const masters = entries.filter((e) => e.master && e.slots.length > 0)
  const unreachable = masters.filter((e) => e.fail || e.pfail)
  // Redis' quorum rule: a master that reaches fewer than size/2 + 1 slot-serving masters is down.
  if (masters.length - unreachable.length < Math.floor(masters.length / 2) + 1)
    parts.push(`${unreachable.length} of ${masters.length} slot-serving masters unreachable (${unreachable.map((e) => e.addr).join(', ')})`)
  const me = entries.find((e) => e.myself)
  if (me?.importing.length) parts.push(`importing ${list(me.importing.map((i) => i.slot))}`)
  return parts.join('; ')
}

/** How long MIGRATE may take, and how much of it goes in one round. */
export interface MigrateTiming {
  /** The smallest cluster-node-timeout of the nodes asked. */
  nodeTimeoutMs: number
  /** MIGRATE's own timeout: below half the node timeout, below the client's timeout. */
  migrateTimeoutMs: number
  /** What one MIGRATE round should take at most: it blocks the source meanwhile. */
  roundTargetMs: number
  /** MIGRATEs in one pipeline: even if each ran into its timeout, the client waits for all. */
  maxMigratesPerRound: number
}

/** Redis' default, used when CONFIG GET is refused (a renamed CONFIG). */
export const DEFAULT_NODE_TIMEOUT_MS = 15_000

// Pure. The source runs a MIGRATE to the end whatever the client does, and does not
// answer the cluster bus meanwhile: past cluster-node-timeout the others mark it failed
// (and fail it over). So MIGRATE's timeout stays below half the node timeout, a round
// aims at a tenth of it (at most 500 ms), and the client (ioredis commandTimeout, which
// runs from the moment each pipelined command is sent) outlives every MIGRATE of a round.
export function migrateTiming(nodeTimeoutMs: number, commandTimeoutMs: number): MigrateTiming {
  const nt = Number.isFinite(nodeTimeoutMs) && nodeTimeoutMs > 0 ? nodeTimeoutMs : DEFAULT_NODE_TIMEOUT_MS
  const margin = 2000
  const migrateTimeoutMs = Math.max(100, Math.min(Math.floor(nt * 0.4), 60_000, commandTimeoutMs - margin))
  const maxMigratesPerRound = Math.max(1, Math.floor((commandTimeoutMs - margin) / migrateTimeoutMs))
  return {nodeTimeoutMs: nt, migrateTimeoutMs, roundTargetMs: Math.max(20, Math.min(500, Math.floor(nt / 10))), maxMigratesPerRound}
}

// cluster-node-timeout of the given nodes (the smallest: that node marks others failed first).
export async function readTiming(pool: NodePool, nodes: readonly ClusterNode[]): Promise<MigrateTiming> {
  const seen = await Promise.all(
    nodes.map((n) =>
      pool
        .run(n, (r) => r.call('CONFIG', 'GET', 'cluster-node-timeout'))
        .then((v) => (Array.isArray(v) ? Number(v[1]) : NaN))
        .catch(() => NaN),
    ),
  )
  const known = seen.filter((x) => Number.isFinite(x) && x > 0)
  return migrateTiming(known.length > 0 ? Math.min(...known) : DEFAULT_NODE_TIMEOUT_MS, pool.commandTimeoutMs)
}

/** The byte budget of one (source, target) pair, adapted round by round. */
export interface Pacer {
  budget: number
  targetMs: number
  min: number
  max: number
}

export const INITIAL_ROUND_BYTES = 1 << 20

export function newPacer(timing: MigrateTiming): Pacer {
  return {budget: INITIAL_ROUND_BYTES, targetMs: timing.roundTargetMs, min: 64 << 10, max: 32 << 20}
}

// Pure: the next round's budget from what the last one carried in how long (bytes/ms
// times the target), changing at most 4× per round so one slow or fast round does not swing it.
export function nextBudget(p: Pacer, bytes: number, ms: number): number {
  if (bytes <= 0) return p.budget
  const rate = bytes / Math.max(1, ms)
  const want = rate * p.targetMs
  return Math.round(Math.min(p.max, Math.max(p.min, Math.min(p.budget * 4, Math.max(p.budget / 4, want)))))
}

/** Keys of one slot still to move, with their MEMORY USAGE. */
export interface SlotKeys {
  slot: number
  keys: Buffer[]
  sizes: number[]
}

export interface MigrateCall {
  slot: number
  keys: Buffer[]
  bytes: number
}

// Pure: the MIGRATE calls of the next round (one per slot, at most maxKeys keys each, at
// most maxCalls calls) within `budget` bytes, and what is left. A round always takes at
// least one key, however big: it has to move some time.
export function takeRound(queue: readonly SlotKeys[], budget: number, maxKeys: number, maxCalls: number): {calls: MigrateCall[]; bytes: number; rest: SlotKeys[]} {
  const calls: MigrateCall[] = []
  const rest: SlotKeys[] = []
  let bytes = 0
  for (const q of queue) {
    let i = 0
    if (calls.length < maxCalls) {
      let callBytes = 0
      while (i < q.keys.length && i < maxKeys && (bytes + callBytes + q.sizes[i] <= budget || (calls.length === 0 && i === 0))) callBytes += q.sizes[i++]
      if (i > 0) {
        calls.push({slot: q.slot, keys: q.keys.slice(0, i), bytes: callBytes})
        bytes += callBytes
      }
    }
    if (i < q.keys.length) rest.push({slot: q.slot, keys: q.keys.slice(i), sizes: q.sizes.slice(i)})
  }
  return {calls, bytes, rest}
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
  /** Role changes (failovers) that make the slot impossible to settle safely now. */
  unresolved?: string[]
  /** Role changes that were reasoned about (a marker's id mapped to its shard's master). */
  notes?: string[]
}

/** The open-slot markers as the nodes print them, before any failover is accounted for. */
export interface OpenSlotMarkers {
  slot: number
  owners: string[]
  migrating: Array<{node: string; to: string}>
  importing: Array<{node: string; from: string}>
}

/** A node's role: from its own CLUSTER NODES line when it answers, else as others see it. */
export interface NodeRole {
  master: boolean
  /** The master it replicates (replicas). */
  masterId: string | null
  reachable: boolean
  /** Marked failed by a majority of masters. */
  fail: boolean
  slotCount: number
}

// Pure: the markers in terms of each shard's CURRENT master. A failover moves a shard's
// data (and the keys a move already put there) to the promoted replica, while the
// markers still name the old master, which is a replica now (or down): its keys are
// counted and its SETSLOT sent on the master that took over. A change that cannot be
// traced (a failed target whose replica took over: nothing links the two any more, or a
// marker on a replica) is `unresolved`: the slot stays open and named.
export function resolveOpenSlot(m: OpenSlotMarkers, roles: ReadonlyMap<string, NodeRole>): Omit<OpenSlotView, 'keys' | 'unreachable'> {
  const unresolved: string[] = []
  const notes: string[] = []
  const shard = (id: string, as: 'target' | 'source'): string | null => {
    const r = roles.get(id)
    if (!r) {
      unresolved.push(`${as} ${short(id)} is not known to the cluster any more`)
      return null
    }
    if (!r.reachable) {
      if (r.fail && r.slotCount === 0 && as === 'source' && m.owners.length === 1) {
        notes.push(`source ${short(id)} failed and serves no slot: ${short(m.owners[0])} took over its keys`)
        return m.owners[0]
      }
      if (r.fail && r.slotCount === 0) {
        unresolved.push(`${as} ${short(id)} failed and another node took over its shard; which one cannot be told`)
        return null
      }
      return id // unreachable: counted as such, the slot waits for it
    }
    if (r.master && !r.masterId) return id
    const up = r.masterId ? roles.get(r.masterId) : undefined
    if (r.masterId && up?.reachable && up.master && !up.masterId) {
      notes.push(`${as} ${short(id)} is a replica of ${short(r.masterId)} now (failed over): its keys are there`)
      return r.masterId
    }
    unresolved.push(`${as} ${short(id)} is a replica whose master ${r.masterId ? short(r.masterId) : '?'} is not a reachable master`)
    return null
  }
  for (const x of [...m.migrating.map((x) => x.node), ...m.importing.map((x) => x.node)]) {
    const r = roles.get(x)
    if (r && (!r.master || r.masterId)) unresolved.push(`${short(x)} has the slot open but is a replica`)
  }
  const migrating = m.migrating.flatMap((x) => {
    const to = shard(x.to, 'target')
    return to === null ? [] : [{node: x.node, to}]
  })
  const importing = m.importing.flatMap((x) => {
    const from = shard(x.from, 'source')
    return from === null ? [] : [{node: x.node, from}]
  })
  return {slot: m.slot, owners: m.owners, migrating, importing, ...(unresolved.length ? {unresolved: uniq(unresolved)} : {}), ...(notes.length ? {notes: uniq(notes)} : {})}
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
  const d = decideResolved(v)
  if (d.action === 'stuck' || !v.notes?.length) return d
  return {...d, why: `${d.why} (${v.notes.join('; ')})`}
}

function decideResolved(v: OpenSlotView): OpenSlotDecision {
  const {slot} = v
  if (v.unresolved?.length) return {slot, action: 'stuck', why: `${v.unresolved.join('; ')}: settle by hand (redis-cli --cluster fix) or bring the old master back as a replica, then run up again`}
  const involved = uniq([...v.owners, ...v.migrating.flatMap((m) => [m.node, m.to]), ...v.importing.flatMap((i) => [i.node, i.from])])
  const down = involved.filter((id) => v.unreachable.includes(id))
  if (down.length > 0) return {slot, action: 'stuck', why: `node(s) ${down.map(short).join(', ')} cannot be reached: the slot is settled once they answer`}
  const keys = (id: string) => v.keys[id] ?? 0
  const openNodes = uniq([...v.migrating.map((m) => m.node), ...v.importing.map((i) => i.node)])

  if (v.owners.length > 1) {
    // The target took the slot (SETSLOT NODE on it first) and the source has not yet.
    const dest = v.owners.filter((o) => v.migrating.some((m) => m.to === o && v.owners.includes(m.node)))
    if (dest.length !== 1)
      return {slot, action: 'stuck', why: `claimed by ${v.owners.length} masters (${v.owners.map(short).join(', ')}) with no move between them: Redis settles this by config epoch`}
    const from = v.owners.find((o) => o !== dest[0])!
    return {slot, action: 'finish', from, to: dest[0], stable: openNodes.filter((n) => n !== from && n !== dest[0]), why: `${short(dest[0])} already owns it; ${short(from)} still has it migrating`}
  }
  if (v.owners.length === 0) {
    const importers = uniq(v.importing.map((i) => i.node))
    if (importers.length === 1) return {slot, action: 'finish', from: null, to: importers[0], stable: openNodes.filter((n) => n !== importers[0]), why: 'no owner; one node imports it'}
    return {slot, action: 'stuck', why: `no owner and ${importers.length} importing nodes`}
  }

  const owner = v.owners[0]
  const targets = uniq([...v.importing.map((i) => i.node), ...v.migrating.filter((m) => m.node === owner).map((m) => m.to)]).filter((t) => t !== owner)
  if (targets.length === 0) return {slot, action: 'rollback', stable: openNodes, why: `owner ${short(owner)} is not moving it: stale open state cleared`}
  const withKeys = targets.filter((t) => keys(t) > 0)
  if (withKeys.length > 1) return {slot, action: 'stuck', why: `keys on several nodes besides the owner (${withKeys.map(short).join(', ')}): settle by hand (redis-cli --cluster fix)`}
  const ownerTo = v.migrating.find((m) => m.node === owner)?.to
  const target = withKeys[0] ?? (ownerTo && ownerTo !== owner ? ownerTo : targets[0])
  const importing = v.importing.some((i) => i.node === target)
  const others = openNodes.filter((n) => n !== owner && n !== target)
  if (keys(target) > 0 || (importing && ownerTo === target)) {
    return {
      slot,
      action: 'finish',
      from: owner,
      to: target,
      stable: others,
      why: keys(target) > 0 ? `${short(target)} already holds ${keys(target)} key(s)` : `${short(owner)} migrating to ${short(target)}, which imports it`,
    }
  }
  return {slot, action: 'rollback', stable: openNodes, why: `no key moved to ${short(target)} yet`}
}

const short = (id: string) => id.slice(0, 8)
