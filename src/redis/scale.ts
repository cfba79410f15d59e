import {setTimeout as sleep} from 'node:timers/promises'
import pLimit from 'p-limit'
import {ClusterError} from '../errors.js'
import {defaultTimeoutMs, type ClusterOptions} from './cluster.js'
import {waitFor} from './helpers.js'
import {describeRedisError, infoAll, NodePool, probeAll} from './pool.js'
import {decideOpenSlot, moveBatch, moveSlots, resolveOpenSlot, type MigrateNode, type MoveOptions, type NodeRole, type OpenSlotDecision, type OpenSlotView} from './migrate.js'
import {countSlots, digestClusterNodes, nodeAddr, NodeIds, parseClusterInfo, parseClusterNodes, type NodeEntry} from './nodes.js'
import type {ClusterNode} from './plan.js'
import {planRebalance, planRoles, type BalanceMaster, type BalancePlan, type RolePlan} from './rebalance.js'
import {buildClusterReport, isMember, knownEntries, probeOk, problemTexts, type ClusterReport, type NodeProbe, type NodeProbeOk} from './status.js'

// Scaling an existing cluster to the inventory, from the controller, in one idempotent
// pass that a re-run after any interruption finishes:
//   1. read every inventory node and every member the cluster knows;
//   2. members the inventory no longer lists: without removeMissing, stop here and say
//      so (a typo in the inventory must never drain a host);
//   3. once every node says cluster_state:ok (a failover has settled), settle open slots
//      an interrupted run left (finish or roll back each, on each shard's current master);
//   4. the receivers' memory headroom is checked (refused, unless allowDataLoss, where a
//      receiver with maxmemory would evict or refuse keys); new empty nodes MEET the
//      cluster; roles planned (planRoles); replicas attached, except those of leaving
//      masters: they keep guarding the slots not moved yet;
//   5. slots rebalanced over the staying masters (planRebalance, moveSlots);
//   6. members that left: replicas re-attached (after the drain), CLUSTER FORGET on every
//      staying node, then, on each leaving node that holds no key only it has, CLUSTER
//      RESET HARD and SHUTDOWN NOSAVE (a failed RESET stops the removal);
//   7. wait until every node agrees on one healthy slot map.

export interface ScaleOptions extends ClusterOptions {
  replicas: number
  /** Drain and remove members the inventory does not list (else: refuse, change nothing). */
  removeMissing?: boolean
  /** Carry out a step that loses acknowledged writes (a drain without headroom) instead of refusing. */
  allowDataLoss?: boolean
  check?: boolean
  /** Slot batches in flight at once (default 8). */
  moveConcurrency?: number
  /** Slots per batch (default 32). */
  batchSlots?: number
  /** A probe round of `nodes` taken just now with nothing written since (formCluster's): the first observation starts from it instead of asking every node again. */
  probes?: readonly NodeProbe[]
}

export interface RemovedNode {
  id: string
  addr: string
  /** SHUTDOWN NOSAVE answered (or the node was already down). */
  stopped: boolean
  note?: string
}

export interface ScaleResult {
  changed: boolean
  /** Nothing done because some inventory nodes cannot be reached (with allow_partial). */
  skipped?: string
  /** Open slots found and what was (or would be) done with each. */
  openSlots: OpenSlotDecision[]
  joined: string[]
  newMasters: string[]
  attached: Array<{replica: string; master: string}>
  /** Slots planned to move (check mode: would move). */
  plannedSlots: number
  moved: {slots: number; keys: number; elapsedMs: number}
  /** Members the inventory no longer lists (removed with removeMissing). */
  leaving: string[]
  removed: RemovedNode[]
  warnings: string[]
  /** Live state at the end (before any change in check mode). */
  report: ClusterReport
  elapsedMs: number
}

export const REMOVED_HOST = '(not in inventory)'

// Exported with Observation for the unit tests of the pure planning below.
export interface Member {
  id: string
  addr: string
  node: ClusterNode
  inInventory: boolean
  /** Its own line when it answered, else how others see it. */
  line: NodeEntry
  reachable: boolean
}

export interface Observation {
  probes: NodeProbe[]
  members: Map<string, Member>
  lone: NodeProbeOk[]
  leaving: Member[]
  unreachable: string[]
}

// Everything the steps decide from: one probe round over the inventory, full lines for
// every id any member knows, and the own lines of members the inventory does not list.
async function observe(pool: NodePool, nodes: readonly ClusterNode[], concurrency: number, fresh?: readonly NodeProbe[]): Promise<Observation> {
  const usable = fresh !== undefined && fresh.length === nodes.length && fresh.every((p, i) => p.addr === nodeAddr(nodes[i]))
  const probes = usable ? [...fresh] : await probeAll(pool, nodes, concurrency)
  const ok = probes.filter(probeOk)
  const unreachable = probes.filter((p) => !probeOk(p)).map((p) => p.addr)
  // A node importing a slot ignores the slot's new owner after a failover (Redis keeps
  // its own map for slots it imports): how others are seen is read from the views of
  // nodes that import nothing first.
  const memberProbes = ok.filter(isMember).sort((a, b) => Number(a.myself.importing.length > 0) - Number(b.myself.importing.length > 0))
  const lone = ok.filter((p) => !isMember(p))
  const byId = new Map<string, NodeEntry>()
  const addEntries = (entries: readonly NodeEntry[]) => {
    for (const e of entries) if (!e.handshake && !(byId.has(e.id) && !byId.get(e.id)!.noaddr)) byId.set(e.id, e)
  }
  for (const p of memberProbes) if (p.entries) addEntries(p.entries)
  // Views with the same slot map share one kept copy; ask again where an id is missing.
  for (const p of memberProbes) {
    if (![...p.view.known].every((x) => byId.has(p.view.ids.ids[x]))) {
      const text = await pool.run(p.node, (r) => r.call('CLUSTER', 'NODES')).then(String, () => '')
      if (text) addEntries(parseClusterNodes(text))
    }
  }
  const members = new Map<string, Member>()
  for (const p of memberProbes) {
    members.set(p.myself.id, {id: p.myself.id, addr: p.addr, node: p.node, inInventory: true, line: p.myself, reachable: true})
  }
  const inventoryAddrs = new Set(probes.map((p) => p.addr))
  const others = [...byId.values()].filter((e) => !members.has(e.id) && !lone.some((l) => l.myself.id === e.id) && !(e.addr && inventoryAddrs.has(e.addr)))
  const otherProbes = await probeAll(
    pool,
    others.filter((e) => e.ip && !e.noaddr).map((e) => ({host: REMOVED_HOST, ip: e.ip, port: e.port})),
    concurrency,
  )
  const probeByAddr = new Map(otherProbes.map((p) => [p.addr, p]))
  const leaving: Member[] = []
  for (const e of others) {
    const p = probeByAddr.get(e.addr)
    const own = p && probeOk(p) && p.myself.id === e.id ? p.myself : undefined
    const m: Member = {id: e.id, addr: e.addr, node: {host: REMOVED_HOST, ip: e.ip, port: e.port}, inInventory: false, line: own ?? e, reachable: own !== undefined}
    members.set(e.id, m)
    leaving.push(m)
  }
  return {probes, members, lone, leaving, unreachable}
}

const isMaster = (m: Member) => m.line.master && !m.line.replica

function nodeRoles(obs: Observation): Map<string, NodeRole> {
  return new Map(
    [...obs.members.values()].map((m) => [
      m.id,
      {master: isMaster(m), masterId: m.line.replica ? m.line.masterId : null, reachable: m.reachable, fail: m.line.fail, slotCount: countSlots(m.line.slots)},
    ]),
  )
}

// Per open slot: who claims it, who moves it (each id mapped to its shard's current
// master: a failover since the move moved its keys there), and how many keys those hold.
async function openSlotViews(pool: NodePool, obs: Observation): Promise<OpenSlotView[]> {
  const slots = new Set<number>()
  for (const m of obs.members.values()) for (const x of [...m.line.migrating, ...m.line.importing]) slots.add(x.slot)
  const roles = nodeRoles(obs)
  const views: OpenSlotView[] = []
  for (const slot of [...slots].sort((a, b) => a - b)) {
    const owners = [...obs.members.values()].filter((m) => isMaster(m) && m.line.slots.some(([a, b]) => slot >= a && slot <= b)).map((m) => m.id)
    const migrating = [...obs.members.values()].flatMap((m) => m.line.migrating.filter((x) => x.slot === slot).map((x) => ({node: m.id, to: x.to})))
    const importing = [...obs.members.values()].flatMap((m) => m.line.importing.filter((x) => x.slot === slot).map((x) => ({node: m.id, from: x.from})))
    const v = resolveOpenSlot({slot, owners, migrating, importing}, roles)
    const involved = [...new Set([...v.owners, ...v.migrating.flatMap((x) => [x.node, x.to]), ...v.importing.flatMap((x) => [x.node, x.from])])]
    const keys: Record<string, number> = {}
    const unreachable: string[] = []
    for (const id of involved) {
      const m = obs.members.get(id)
      if (!m || !m.reachable) {
        unreachable.push(id)
        continue
      }
      try {
        keys[id] = Number(await pool.run(m.node, (r) => r.call('CLUSTER', 'COUNTKEYSINSLOT', String(slot))))
      } catch {
        unreachable.push(id)
      }
    }
    views.push({...v, keys, unreachable})
  }
  return views
}

// Every staying node says cluster_state:ok: roles after a failover have settled, and a
// node that just joined accepts MIGRATE's RESTORE (it refuses with CLUSTERDOWN before).
async function waitClusterOk(pool: NodePool, obs: Observation, deadline: number, opts: ScaleOptions, log: (m: string) => void, why: string, exceptImports = false): Promise<void> {
  const staying = [...obs.members.values()].filter((m) => m.inInventory)
  await waitFor(
    deadline,
    opts.signal,
    staying.length,
    async () => {
      const infos = await infoAll(
        pool,
        staying.map((m) => m.node),
        64,
      )
      const bad = await Promise.all(
        infos.map(async (info, i) => {
          if (typeof info !== 'string' && info.cluster_state === 'ok') return null
          // An importing node keeps a failed source as the owner of what it imports until
          // the slot is settled: that is the open slot itself, not a failover in progress.
          if (exceptImports && typeof info !== 'string') {
            const text = await pool.run(staying[i].node, (r) => r.call('CLUSTER', 'NODES')).then(String, () => '')
            if (text && failsOnlyOnImports(parseClusterNodes(text))) return null
          }
          return `${staying[i].addr} ${typeof info === 'string' ? info : `cluster_state:${info.cluster_state ?? '?'}`}`
        }),
      )
      return bad.filter((x): x is string => x !== null)
    },
    `cluster_state:ok on every node ${why}`,
    log,
  )
}

// Pure: in this view, every slot served by a failed node (or by none) is one it imports.
export function failsOnlyOnImports(entries: readonly NodeEntry[]): boolean {
  const me = entries.find((e) => e.myself)
  if (!me || me.importing.length === 0) return false
  const importing = new Set(me.importing.map((x) => x.slot))
  const served = new Array<boolean>(16384).fill(false)
  for (const e of entries) {
    for (const [a, b] of e.slots) {
      for (let s = a; s <= b; s++) {
        if (!e.fail) served[s] = true
        else if (!importing.has(s)) return false
      }
    }
  }
  return served.every((ok, s) => ok || importing.has(s))
}

function migrateNode(m: Member): MigrateNode {
  return {...m.node, id: m.id}
}

// Finish or roll back every open slot the decisions allow; the rest is an error.
async function settleOpenSlots(pool: NodePool, obs: Observation, decisions: readonly OpenSlotDecision[], opts: MoveOptions): Promise<void> {
  const nodes = new Map([...obs.members.values()].map((m) => [m.id, migrateNode(m)]))
  const masters = [...obs.members.values()].filter((m) => isMaster(m) && m.reachable).map((m) => m.id)
  for (const d of decisions) {
    if (d.action === 'stuck') continue
    if (d.action === 'finish') {
      const to = nodes.get(d.to)!
      if (d.from) {
        const from = obs.members.get(d.from)!
        const ownsFrom = from.line.slots.some(([a, b]) => d.slot >= a && d.slot <= b)
        const toLine = obs.members.get(d.to)!.line
        const toOwns = toLine.slots.some(([a, b]) => d.slot >= a && d.slot <= b)
        await moveBatch(nodes.get(d.from)!, to, [d.slot], masters, nodes, opts, {skipImporting: toOwns, skipMigrating: !ownsFrom})
      } else {
        for (const id of masters) await pool.run(nodes.get(id)!, (r) => r.call('CLUSTER', 'SETSLOT', String(d.slot), 'NODE', d.to)).catch(() => undefined)
      }
    }
    for (const id of d.stable) {
      const n = nodes.get(id)
      if (!n) continue
      await pool
        .run(n, (r) => r.call('CLUSTER', 'SETSLOT', String(d.slot), 'STABLE'))
        .catch((error) => {
          throw new ClusterError(`${nodeAddr(n)}: SETSLOT ${d.slot} STABLE failed: ${describeRedisError(error, opts.password)}`, {where: {host: n.host}})
        })
    }
  }
}

// A node importing a slot ignores every claim on it by gossip (Redis: "it should be
// modified only manually"), so after the source died and its replica took over, an
// importing node still maps the slot to the dead master: it says cluster_state:fail
// (a slot served by a failed node) and refuses MIGRATE's RESTORE with CLUSTERDOWN for
// as long as ANY slot it imports is mapped so — a finish of one slot then waits on the
// others forever. SETSLOT NODE <current owner> on the importer fixes its map (allowed:
// it does not own the slot) and keeps its imported keys; moveBatch re-opens IMPORTING
// from that owner for a finish, and SETSLOT STABLE closes a rollback. All of them first.
async function rebindImports(pool: NodePool, obs: Observation, views: readonly OpenSlotView[], password?: string): Promise<void> {
  const maps = new Map<string, NodeEntry[]>()
  for (const v of views) {
    if (v.owners.length !== 1) continue
    const owner = v.owners[0]
    for (const id of new Set(v.importing.map((i) => i.node))) {
      const m = obs.members.get(id)
      if (id === owner || !m?.reachable) continue
      if (!maps.has(id)) maps.set(id, parseClusterNodes(await pool.run(m.node, (r) => r.call('CLUSTER', 'NODES')).then(String)))
      const seen = maps.get(id)!.find((e) => e.slots.some(([a, b]) => v.slot >= a && v.slot <= b))
      if (seen?.id !== owner) await rebindOne(pool, m, v.slot, owner, seen, password)
    }
  }
}

async function rebindOne(pool: NodePool, m: Member, slot: number, owner: string, seen: NodeEntry | undefined, password?: string): Promise<void> {
  await pool
    .run(m.node, (r) => r.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', owner))
    .catch((error) => {
      throw new ClusterError(
        `${m.addr}: SETSLOT ${slot} NODE ${owner.slice(0, 8)} (its map still names ${seen ? `${seen.addr}${seen.fail ? ', failed' : ''}` : 'no owner'}) failed: ${describeRedisError(error, password)}`,
        {
          where: {host: m.node.host},
          hint: 'run up again: open slots are found and finished, then the rebalance continues',
        },
      )
    })
}

/** INFO memory of a master, and DBSIZE. */
export interface MemoryInfo {
  used: number
  /** What the server uses empty (used_memory_startup): not part of what its keys take. */
  startup: number
  /** Output buffers Redis leaves out of the eviction check (mem_not_counted_for_evict). */
  notCounted: number
  /** 0: no limit. */
  maxmemory: number
  policy: string
  keys: number
}

/** A receiver that would exceed its maxmemory. */
export interface Shortfall {
  id: string
  used: number
  incoming: number
  maxmemory: number
  policy: string
}

// Pure: what each receiver would hold after the planned moves, estimated from each
// source's memory per key times the keys in the slots it gives (COUNTKEYSINSLOT), and
// the receivers it would push past maxmemory (at which Redis evicts keys under an
// allkeys-*/volatile-* policy, or refuses MIGRATE's RESTORE under noeviction).
export function planHeadroom(moved: ReadonlyArray<{from: string; to: string; keys: number}>, mem: ReadonlyMap<string, MemoryInfo>): Shortfall[] {
  const incoming = new Map<string, number>()
  for (const m of moved) {
    const src = mem.get(m.from)
    if (!src || src.keys <= 0 || m.keys <= 0) continue
    const perKey = Math.max(0, src.used - src.startup - src.notCounted) / src.keys
    incoming.set(m.to, (incoming.get(m.to) ?? 0) + perKey * Math.min(m.keys, src.keys))
  }
  const out: Shortfall[] = []
  for (const [id, bytes] of incoming) {
    const r = mem.get(id)
    if (!r || r.maxmemory <= 0) continue
    const used = Math.max(0, r.used - r.notCounted)
    if (used + bytes > r.maxmemory) out.push({id, used, incoming: Math.round(bytes), maxmemory: r.maxmemory, policy: r.policy})
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : 1))
}

const mb = (n: number) => `${(n / (1 << 20)).toFixed(1)} MB`

// Refuses a rebalance that would push a receiver past maxmemory (unless allowDataLoss):
// nothing has changed yet when it does.
async function checkHeadroom(pool: NodePool, obs: Observation, plan: BalancePlan, opts: ScaleOptions, log: (m: string) => void, result: ScaleResult): Promise<void> {
  const nodeOf = (id: string) => obs.members.get(id)?.node ?? obs.lone.find((p) => p.myself.id === id)?.node
  const addrOf = (id: string) => {
    const n = nodeOf(id)
    return n ? nodeAddr(n) : id
  }
  const ids = [...new Set(plan.moves.flatMap((m) => [m.from, m.to]))]
  const mem = new Map<string, MemoryInfo>()
  await Promise.all(
    ids.map(async (id) => {
      const n = nodeOf(id)
      if (!n) return
      const res = await pool.run(n, (r) => r.pipeline().call('INFO', 'memory').call('CONFIG', 'GET', 'maxmemory-policy').dbsize().exec()).catch(() => null)
      if (!res || res[0][0]) return
      const info = parseClusterInfo(String(res[0][1]))
      const policy = !res[1][0] && Array.isArray(res[1][1]) ? String(res[1][1][1]) : (info.maxmemory_policy ?? '?')
      const num = (k: string) => Number(info[k] ?? 0) || 0
      mem.set(id, {used: num('used_memory'), startup: num('used_memory_startup'), notCounted: num('mem_not_counted_for_evict'), maxmemory: num('maxmemory'), policy, keys: Number(res[2][1]) || 0})
    }),
  )
  // Only a receiver with maxmemory makes the keys per moved slot worth counting.
  if (![...mem.values()].some((m) => m.maxmemory > 0) || !plan.moves.some((m) => (mem.get(m.to)?.maxmemory ?? 0) > 0)) return
  const moved = await Promise.all(
    plan.moves.map(async (m) => {
      const n = nodeOf(m.from)
      if (!n || (mem.get(m.from)?.keys ?? 0) === 0) return {from: m.from, to: m.to, keys: 0}
      const res = await pool.run(n, (r) => {
        const p = r.pipeline()
        for (const s of m.slots) p.call('CLUSTER', 'COUNTKEYSINSLOT', String(s))
        return p.exec()
      })
      return {from: m.from, to: m.to, keys: (res ?? []).reduce((a, [err, v]) => a + (err ? 0 : Number(v) || 0), 0)}
    }),
  )
  const short = planHeadroom(moved, mem)
  if (short.length === 0) return
  const what = short.map((x) => `${addrOf(x.id)} (uses ${mb(x.used)}, would receive ~${mb(x.incoming)}, maxmemory ${mb(x.maxmemory)}, ${x.policy})`).join('; ')
  if (opts.allowDataLoss) {
    result.warnings.push(`allow_data_loss: moving slots past maxmemory on ${what}`)
    log(`redis_cluster: WARNING allow_data_loss: receivers will exceed maxmemory: ${what}`)
    return
  }
  throw new ClusterError(`not moving slots: ${short.length} receiving master(s) would exceed maxmemory, and Redis would evict (or refuse) keys: ${what}; nothing was changed`, {
    hint: 'raise redis_maxmemory (it is changed live), or add hosts so each master receives less; --allow-data-loss moves them anyway',
  })
}

export interface Layout {
  roles: RolePlan
  /** Masters for the balance: staying ones, spare ones becoming masters, leaving ones. */
  balance: BalanceMaster[]
  leavingIds: string[]
}

// Roles (planRoles) and the masters to balance over, from one observation: staying
// slot holders, spare nodes turned masters (empty), leaving masters (drained to zero).
export function planLayout(obs: Observation, replicas: number): Layout {
  const staying = [...obs.members.values()].filter((m) => m.inInventory)
  const holders = staying.filter((m) => isMaster(m) && m.line.slots.length > 0)
  const emptyMasters = staying.filter((m) => isMaster(m) && m.line.slots.length === 0)
  const roles = planRoles({
    replicasPerMaster: replicas,
    masters: holders.map((m) => ({id: m.id, host: m.node.host})),
    replicas: staying.filter((m) => m.line.replica).map((m) => ({id: m.id, host: m.node.host, master: m.line.masterId})),
    spare: [...emptyMasters.map((m) => ({id: m.id, host: m.node.host})), ...obs.lone.map((p) => ({id: p.myself.id, host: p.node.host}))],
  })
  const leavingMasters = obs.leaving.filter((m) => isMaster(m) && m.line.slots.length > 0)
  const balance: BalanceMaster[] = [
    ...holders.map((m) => ({id: m.id, host: m.node.host, slots: m.line.slots})),
    ...roles.newMasters.map((id) => ({id, slots: [] as number[]})),
    ...leavingMasters.map((m) => ({id: m.id, host: m.node.host, slots: m.line.slots})),
  ]
  return {roles, balance, leavingIds: obs.leaving.map((m) => m.id)}
}

export interface LiveShape {
  /** Slot-holding masters and how many replicas follow each. */
  masters: Array<{addr: string; replicas: number}>
  /** Nodes without a role (new ones, empty masters): they can become masters. */
  spare: number
  /** Replicas that follow no slot-holding master. */
  orphans: number
}

export function shapeOf(obs: Observation): LiveShape {
  const staying = [...obs.members.values()].filter((m) => m.inInventory)
  const holders = staying.filter((m) => isMaster(m) && m.line.slots.length > 0)
  const replicas = staying.filter((m) => m.line.replica)
  const follow = (id: string) => replicas.filter((r) => r.line.masterId === id).length
  const masters = holders.map((m) => ({addr: m.addr, replicas: follow(m.id)}))
  const spare = staying.filter((m) => isMaster(m) && m.line.slots.length === 0).length + obs.lone.length
  return {masters, spare, orphans: replicas.length - masters.reduce((t, m) => t + m.replicas, 0)}
}

// A changed redis_replicas with the same nodes needs a reshape: replicas promoted to
// masters (1 → 0) or masters drained and demoted (0 → 1). The scaling pass never
// demotes a slot-holding master nor promotes a replica, so it would report "nothing to
// do" while the cluster is not as declared: refused here, naming both shapes.
export function reshapeRefusal(shape: LiveShape, replicas: number, newMasters: number): {message: string; hint: string} | undefined {
  const total = shape.masters.length + shape.masters.reduce((t, m) => t + m.replicas, 0) + shape.orphans + shape.spare
  const want = Math.min(16384, Math.max(1, Math.floor(total / (replicas + 1))))
  const planned = shape.masters.length + newMasters
  if (planned === want) return undefined
  const counts = [...new Set(shape.masters.map((m) => m.replicas))].sort((a, b) => a - b)
  const perMaster =
    shape.masters
      .slice(0, 6)
      .map((m) => `${m.addr}: ${m.replicas}`)
      .join(', ') + (shape.masters.length > 6 ? ', …' : '')
  const current = counts.length === 1 ? counts[0] : `${counts[0]}-${counts[counts.length - 1]}`
  return {
    message: `redis_replicas is ${replicas}, but the live cluster has ${shape.masters.length} master(s) with ${current} replica(s) each (${perMaster}): ${total} node(s) with ${replicas} replica(s) per master means ${want} master(s); changing the replicas of a live cluster (${planned > want ? 'masters drained and turned into replicas' : 'replicas turned into masters'}) is not supported; nothing was changed`,
    hint: `set redis_replicas back to ${current} to keep the cluster as it is; to reshape it, back the data up, run down and then up with redis_replicas: ${replicas}`,
  }
}

export function leavingMessage(leaving: readonly Member[]): string {
  const list = leaving.slice(0, 10).map((m) => `${m.addr} (${isMaster(m) ? `master, ${countSlots(m.line.slots)} slots` : 'replica'}${m.reachable ? '' : ', unreachable'})`)
  return `${leaving.length} node(s) of the cluster are not in the inventory: ${list.join(', ')}${leaving.length > 10 ? ', …' : ''}`
}

// One scaling call: what every step needs. `obs` is the latest observation, read again
// after each step that changes the cluster; later steps (and addrOf) see the new one.
interface ScaleRun {
  nodes: readonly ClusterNode[]
  opts: ScaleOptions
  log: (msg: string) => void
  concurrency: number
  /** A fresh bound for each wait: every step gets the whole timeout. */
  deadline: () => number
  pool: NodePool
  moveOpts: MoveOptions
  result: ScaleResult
  started: number
  /** Keys that were on both ends of an interrupted move with the same value: dropped from the source. */
  twins: {keys: number; slots: Set<number>}
  obs: Observation
}

// The whole pass; changes nothing in check mode and returns what it would do.
export async function scaleCluster(nodes: readonly ClusterNode[], opts: ScaleOptions): Promise<ScaleResult> {
  const started = Date.now()
  const concurrency = opts.concurrency ?? 64
  const pool = new NodePool({password: opts.password, connectTimeoutMs: opts.connectTimeoutMs ?? 5000})
  const result: ScaleResult = {
    changed: false,
    openSlots: [],
    joined: [],
    newMasters: [],
    attached: [],
    plannedSlots: 0,
    moved: {slots: 0, keys: 0, elapsedMs: 0},
    leaving: [],
    removed: [],
    warnings: [],
    report: undefined as unknown as ClusterReport,
    elapsedMs: 0,
  }
  const moveOpts: MoveOptions = {
    pool,
    password: opts.password,
    concurrency: opts.moveConcurrency,
    batchSlots: opts.batchSlots,
    signal: opts.signal,
    onTwins: (slots, keys) => {
      twins.keys += keys
      for (const s of slots) twins.slots.add(s)
    },
  }
  const twins = {keys: 0, slots: new Set<number>()}
  try {
    const run: ScaleRun = {
      nodes,
      opts,
      log: opts.log ?? (() => {}),
      concurrency,
      deadline: () => Date.now() + (opts.timeoutMs ?? defaultTimeoutMs(nodes.length)),
      pool,
      moveOpts,
      result,
      started,
      twins,
      obs: await observe(pool, nodes, concurrency, opts.probes),
    }
    return await scalePass(run)
  } finally {
    await pool.closeAll()
  }
}

function finish(run: ScaleRun, report: ClusterReport): ScaleResult {
  const {keys, slots} = run.twins
  const warnings =
    keys === 0
      ? run.result.warnings
      : [
          ...run.result.warnings,
          `${keys} key(s) in ${slots.size} slot(s) (${[...slots].slice(0, 5).join(', ')}${slots.size > 5 ? ', …' : ''}) were on both ends of a move with the same value (the dead source's DEL never reached its replica): the source's copies were dropped`,
        ]
  return {...run.result, warnings, report, elapsedMs: Date.now() - run.started}
}

function addrOf(run: ScaleRun, id: string): string {
  return run.obs.members.get(id)?.addr ?? run.obs.lone.find((p) => p.myself.id === id)?.addr ?? id
}

// Steps 2-7 in order; each returns early only where the original plan says "stop here".
async function scalePass(run: ScaleRun): Promise<ScaleResult> {
  const {opts, result} = run
  if (run.obs.unreachable.length > 0) {
    result.skipped = `${run.obs.unreachable.length} inventory node(s) unreachable (${run.obs.unreachable.slice(0, 5).join(', ')}): no scaling step until they answer`
    return finish(run, buildClusterReport(run.obs.probes))
  }
  result.leaving = run.obs.leaving.map((m) => m.addr)
  if (run.obs.leaving.length > 0 && !opts.removeMissing) {
    throw new ClusterError(`${leavingMessage(run.obs.leaving)}; nothing was changed`, {
      hint: 'if these hosts are meant to leave, run up --remove-missing (drains their slots, then forgets and stops them); otherwise put them back in the inventory',
    })
  }
  if (!(await settleOpen(run))) return finish(run, buildClusterReport(run.obs.probes))
  await awaitLeavingHolders(run)
  // 4-5. Roles and moves (planned on what is there; a plan that cannot hold fails here).
  let layout = planScale(run)
  const work = run.obs.lone.length + layout.roles.attach.length + result.plannedSlots + run.obs.leaving.length
  if (work > 0) result.changed = true
  if (opts.check || work === 0) return finish(run, buildClusterReport(run.obs.probes))
  layout = await grow(run, layout)
  await rebalance(run, layout)
  layout = await removeLeft(run, layout)
  return finish(run, await awaitScaled(run, layout))
}

// 3. Open slots left by an interrupted run. Often a failover interrupted it: its roles
//    must have settled before they are read (counting keys on a demoted master, or
//    SETSLOT on it, is what strands keys or fails every run). False: check mode stops here.
async function settleOpen(run: ScaleRun): Promise<boolean> {
  const {pool, opts, log, result} = run
  let views = await openSlotViews(pool, run.obs)
  if (views.length > 0 && !opts.check) {
    await waitClusterOk(
      pool,
      run.obs,
      run.deadline(),
      opts,
      log,
      `before settling open slot(s) ${views
        .slice(0, 10)
        .map((v) => v.slot)
        .join(', ')}`,
      true,
    )
    run.obs = await observe(pool, run.nodes, run.concurrency)
    views = await openSlotViews(pool, run.obs)
  }
  result.openSlots = views.map(decideOpenSlot)
  const stuck = result.openSlots.filter((d) => d.action === 'stuck')
  if (opts.check) {
    if (result.openSlots.length > 0) result.changed = true
    if (stuck.length > 0 || result.openSlots.length > 0) {
      result.warnings.push(`${result.openSlots.length} open slot(s) are settled first; the rest of the plan is computed after that`)
      return false
    }
    return true
  }
  if (result.openSlots.length === 0) return true
  const settled = result.openSlots.filter((d) => d.action !== 'stuck')
  log(
    `redis_cluster: settling ${settled.length} open slot(s) left by an interrupted run (${settled.filter((d) => d.action === 'finish').length} finished, ${settled.filter((d) => d.action === 'rollback').length} rolled back)`,
  )
  await rebindImports(pool, run.obs, views, run.moveOpts.password)
  await settleOpenSlots(pool, run.obs, settled, run.moveOpts)
  result.changed = true
  // Replicas learn a settled slot's owner by gossip only. A move that bumps another
  // master's epoch before they have (the rebalance next) leaves them preferring the
  // old owner's higher epoch for good, and their UPDATE messages can take the slot
  // back from its new owner (seen on 5.0.3): every node agrees first.
  await waitFor(
    run.deadline(),
    opts.signal,
    run.nodes.length,
    async () => {
      const r = buildClusterReport(await probeAll(pool, run.nodes, run.concurrency))
      return problemTexts(r.problems.filter((p) => p.kind === 'disagree'))
    },
    'every node to agree on the settled slots',
    log,
  )
  if (stuck.length > 0) {
    throw new ClusterError(
      `${stuck.length} open slot(s) cannot be settled now: ${stuck
        .slice(0, 5)
        .map((d) => `slot ${d.slot}: ${d.why}`)
        .join('; ')}`,
      {
        hint: 'bring the named nodes back and run up again',
      },
    )
  }
  run.obs = await observe(pool, run.nodes, run.concurrency)
  return true
}

// A leaving master that holds slots but does not answer cannot be drained.
async function awaitLeavingHolders(run: ScaleRun): Promise<void> {
  const holdingDown = (o: Observation) => o.leaving.filter((m) => !m.reachable && isMaster(m) && m.line.slots.length > 0)
  let unreachableLeaving = holdingDown(run.obs)
  if (unreachableLeaving.length > 0 && !run.opts.check) {
    // Its replica may be taking over right now (a killed leaving master): once every node
    // says ok, the slots are the replica's and the drain goes on from there.
    await waitClusterOk(run.pool, run.obs, run.deadline(), run.opts, run.log, `(${unreachableLeaving.map((m) => m.addr).join(', ')} not answering)`, true).catch((error) => {
      if (run.opts.signal?.aborted) throw error
    })
    run.obs = await observe(run.pool, run.nodes, run.concurrency)
    unreachableLeaving = holdingDown(run.obs)
  }
  if (unreachableLeaving.length > 0) {
    throw new ClusterError(`cannot drain ${unreachableLeaving.map((m) => m.addr).join(', ')}: the node(s) hold slots but do not answer`, {
      hint: 'start them again so their keys can move, or fail their slots over to a replica first',
    })
  }
}

// Roles and the balance planned on what is there; what would be done goes into the result.
function planScale(run: ScaleRun): Layout {
  const {obs, result} = run
  const layout = planLayout(obs, run.opts.replicas)
  if (obs.leaving.length === 0) {
    const why = reshapeRefusal(shapeOf(obs), run.opts.replicas, layout.roles.newMasters.length)
    if (why) throw new ClusterError(why.message, {hint: why.hint})
  }
  result.warnings.push(...layout.roles.warnings)
  result.newMasters = layout.roles.newMasters.map((id) => addrOf(run, id))
  result.attached = layout.roles.attach.map((a) => ({replica: addrOf(run, a.replica), master: addrOf(run, a.master)}))
  result.joined = obs.lone.map((p) => p.addr)
  result.plannedSlots = planRebalance(layout.balance, layout.leavingIds).moved
  return layout
}

// 4. Headroom of the receivers before anything changes, then new nodes join and replicas
//    attach. Returns the layout planned again on the grown cluster.
async function grow(run: ScaleRun, layout: Layout): Promise<Layout> {
  const {pool, opts, log} = run
  const preview = planRebalance(layout.balance, layout.leavingIds)
  if (preview.moved > 0) await checkHeadroom(pool, run.obs, preview, opts, log, run.result)
  if (run.obs.lone.length > 0) {
    await join(pool, run.obs, run.deadline(), opts, log)
    run.obs = await observe(pool, run.nodes, run.concurrency)
    if (run.obs.lone.length > 0) throw new ClusterError(`${run.obs.lone.length} node(s) did not join: ${run.obs.lone.map((p) => p.addr).join(', ')}`)
    layout = planLayout(run.obs, opts.replicas)
  }
  // A replica of a leaving master stays with it until the drain is over: re-attached now,
  // the slots not yet moved would have no replica for the whole drain.
  const leavingIds = new Set(layout.leavingIds)
  await attachReplicas(
    pool,
    run.obs,
    layout.roles.attach.filter((a) => !leavingIds.has(run.obs.members.get(a.replica)?.line.masterId ?? '')),
    run.deadline(),
    opts,
    log,
  )
  return layout
}

// 5. Moves.
async function rebalance(run: ScaleRun, layout: Layout): Promise<void> {
  const {obs, log} = run
  const plan = planRebalance(layout.balance, layout.leavingIds)
  if (plan.moved === 0) return
  const members = new Map([...obs.members.values()].map((m) => [m.id, migrateNode(m)]))
  const masters = [
    ...new Set(
      [...obs.members.values()]
        .filter((m) => isMaster(m) && m.reachable)
        .map((m) => m.id)
        .concat(layout.roles.newMasters),
    ),
  ]
  // A node that just joined says cluster_state:fail for a moment (Redis waits ~2 s after
  // start, and for the slot map) and refuses MIGRATE's RESTORE with CLUSTERDOWN meanwhile.
  await waitClusterOk(run.pool, obs, run.deadline(), run.opts, log, 'before moving slots')
  log(`redis_cluster: moving ${plan.moved} slot(s) in ${plan.moves.length} move(s) to balance ${Object.keys(plan.targets).length} master(s)`)
  let lastLog = Date.now()
  const moved = await moveSlots(plan.moves, members, masters, {
    ...run.moveOpts,
    progress: (p) => {
      if (Date.now() - lastLog < 2000) return
      lastLog = Date.now()
      log(`redis_cluster: moved ${p.slots}/${p.totalSlots} slot(s), ${p.keys} key(s), ${Math.round(p.keys / Math.max(0.001, p.elapsedMs / 1000))} keys/s`)
    },
  })
  run.result.moved = moved
  log(`redis_cluster: moved ${moved.slots} slot(s) and ${moved.keys} key(s) in ${(moved.elapsedMs / 1000).toFixed(1)} s`)
}

// 6. Removal: the drained masters' replicas get their staying masters now (roles
//    planned again: Redis may have moved them to a drain target meanwhile), then forget.
async function removeLeft(run: ScaleRun, layout: Layout): Promise<Layout> {
  if (run.obs.leaving.length === 0) return layout
  const {pool, opts, log, result} = run
  run.obs = await observe(pool, run.nodes, run.concurrency)
  layout = planLayout(run.obs, opts.replicas)
  result.attached = layout.roles.attach.map((a) => ({replica: addrOf(run, a.replica), master: addrOf(run, a.master)}))
  await attachReplicas(pool, run.obs, layout.roles.attach, run.deadline(), opts, log)
  run.obs = await observe(pool, run.nodes, run.concurrency)
  result.removed = await removeLeaving(pool, run.obs, run.deadline(), opts, log)
  return layout
}

// 7. One healthy slot map, planned roles in place.
async function awaitScaled(run: ScaleRun, layout: Layout): Promise<ClusterReport> {
  run.log('redis_cluster: waiting for every node to agree on the new slot map')
  let report: ClusterReport | undefined
  await waitFor(
    run.deadline(),
    run.opts.signal,
    run.nodes.length,
    async () => {
      const fresh = await probeAll(run.pool, run.nodes, run.concurrency)
      report = buildClusterReport(fresh)
      const byId = new Map(fresh.filter(probeOk).map((p) => [p.myself.id, p]))
      const roles = layout.roles.attach
        .filter((a) => byId.has(a.replica) && byId.get(a.replica)!.myself.masterId !== a.master)
        .map((a) => `${byId.get(a.replica)!.addr} is not yet a replica of ${addrOf(run, a.master)}`)
      return [...problemTexts(report.problems), ...roles]
    },
    'the cluster to agree after scaling',
    run.log,
  )
  return report!
}

// New nodes MEET one staying member; gossip spreads them. Nodes still missing peers after
// a few seconds are introduced directly to the ones they lack.
async function join(pool: NodePool, obs: Observation, deadline: number, opts: ScaleOptions, log: (m: string) => void): Promise<void> {
  const staying = [...obs.members.values()].filter((m) => m.inInventory && m.reachable)
  const seed = staying[0]
  log(`redis_cluster: ${obs.lone.length} new node(s) meeting ${seed.addr}`)
  await Promise.all(
    obs.lone.map((p) =>
      pool
        .run(p.node, (r) => r.call('CLUSTER', 'MEET', seed.node.ip, String(seed.node.port)))
        .catch((error) => {
          throw new ClusterError(`${p.addr} (host ${p.node.host}): CLUSTER MEET ${seed.addr} failed: ${describeRedisError(error, opts.password)}`, {where: {host: p.node.host}})
        }),
    ),
  )
  const everyone = [...staying.map((m) => ({id: m.id, node: m.node})), ...obs.lone.map((p) => ({id: p.myself.id, node: p.node}))]
  const ids = new NodeIds()
  const want = everyone.map((e) => ids.intern(e.id))
  const limit = pLimit(64)
  let lastNudge = Date.now()
  await waitFor(
    deadline,
    opts.signal,
    everyone.length,
    async () => {
      const behind: string[] = []
      const lagging: Array<{node: ClusterNode; known: Set<number>}> = []
      await Promise.all(
        everyone.map((e) =>
          limit(async () => {
            const text = await pool.run(e.node, (r) => r.call('CLUSTER', 'NODES')).then(String, () => '')
            const known = new Set(text ? digestClusterNodes(text, ids).known : [])
            const missing = want.filter((x) => !known.has(x))
            if (missing.length > 0) {
              behind.push(`${nodeAddr(e.node)} does not know ${missing.length} node(s) yet`)
              lagging.push({node: e.node, known})
            }
          }),
        ),
      )
      if (lagging.length > 0 && Date.now() - lastNudge > 3000) {
        lastNudge = Date.now()
        await Promise.all(
          lagging.map((l) =>
            limit(() =>
              pool
                .run(l.node, async (r) => {
                  const p = r.pipeline()
                  everyone.forEach((e, k) => {
                    if (!l.known.has(want[k]) && nodeAddr(e.node) !== nodeAddr(l.node)) p.call('CLUSTER', 'MEET', e.node.ip, String(e.node.port))
                  })
                  await p.exec()
                })
                .catch(() => undefined),
            ),
          ),
        )
      }
      return behind
    },
    'new nodes to join',
    log,
  )
}

// CLUSTER REPLICATE for every replica whose master is new or changes; a master the
// replica does not know yet is retried until gossip has brought it.
async function attachReplicas(pool: NodePool, obs: Observation, attach: RolePlan['attach'], deadline: number, opts: ScaleOptions, log: (m: string) => void): Promise<void> {
  let pending = attach.filter((a) => obs.members.get(a.replica)?.line.masterId !== a.master)
  if (pending.length === 0) return
  log(`redis_cluster: attaching ${pending.length} replica(s)`)
  await waitFor(
    deadline,
    opts.signal,
    obs.members.size,
    async () => {
      const still: typeof pending = []
      const why: string[] = []
      for (const a of pending) {
        const m = obs.members.get(a.replica)!
        try {
          await pool.run(m.node, (r) => r.call('CLUSTER', 'REPLICATE', a.master))
        } catch (error) {
          const msg = describeRedisError(error, opts.password)
          if (!/unknown node|not a master|only replicate a master/i.test(msg)) {
            throw new ClusterError(`${m.addr}: CLUSTER REPLICATE ${a.master.slice(0, 8)} failed: ${msg}`, {where: {host: m.node.host}})
          }
          still.push(a)
          why.push(`${m.addr}: ${msg}`)
        }
      }
      pending = still
      return why
    },
    'replicas to attach',
    log,
  )
}

// Staying nodes forget the leaving ones (all within the 60 s FORGET window, re-sent to
// any node that still lists one), then each leaving node is reset and stopped.
async function removeLeaving(pool: NodePool, obs: Observation, deadline: number, opts: ScaleOptions, log: (m: string) => void): Promise<RemovedNode[]> {
  const leaving = obs.leaving
  const holding = leaving.filter((m) => isMaster(m) && m.line.slots.length > 0)
  if (holding.length > 0) throw new ClusterError(`not removing ${holding.map((m) => m.addr).join(', ')}: still serving slots after the drain`, {hint: 'run up --remove-missing again'})
  const staying = [...obs.members.values()].filter((m) => m.inInventory && m.reachable)
  const ids = new Set(leaving.map((m) => m.id))
  const dependent = staying.filter((m) => m.line.replica && m.line.masterId && ids.has(m.line.masterId))
  if (dependent.length > 0) throw new ClusterError(`${dependent.map((m) => m.addr).join(', ')} still replicate a leaving node`, {hint: 'run up --remove-missing again'})
  // Before anything is forgotten: no leaving node may hold the only copy of a key.
  const held = await Promise.all(leaving.map((m) => (m.reachable ? pool.run(m.node, (r) => r.dbsize()).catch(() => -1) : Promise.resolve(0))))
  const blockers = removalBlockers(
    leaving.map((m, i) => ({id: m.id, addr: m.addr, master: isMaster(m), masterId: m.line.replica ? m.line.masterId : null, keys: held[i], reachable: m.reachable})),
    new Map(staying.map((m) => [m.id, {master: isMaster(m), slotCount: countSlots(m.line.slots)}])),
  )
  if (blockers.length > 0) {
    throw new ClusterError(`not removing the leaving nodes: ${blockers.join('; ')}; nothing was forgotten or stopped`, {
      hint: 'run up --remove-missing again once the drain has finished (the keys move first); a replica needs its master among the staying ones',
    })
  }
  log(`redis_cluster: removing ${leaving.length} node(s): CLUSTER FORGET on ${staying.length} node(s), then reset and stop them`)
  const forgetAll = async (targets: readonly Member[]) =>
    Promise.all(
      targets.map((m) =>
        pool.run(m.node, async (r) => {
          const p = r.pipeline()
          for (const id of ids) p.call('CLUSTER', 'FORGET', id)
          const res = (await p.exec()) ?? []
          for (const [err] of res)
            if (err && !/unknown node/i.test(err.message)) throw new ClusterError(`${m.addr}: CLUSTER FORGET failed: ${describeRedisError(err, opts.password)}`, {where: {host: m.node.host}})
        }),
      ),
    )
  await forgetAll(staying)
  const removed: RemovedNode[] = []
  for (const m of leaving) {
    if (!m.reachable) {
      removed.push({id: m.id, addr: m.addr, stopped: true, note: 'was not reachable: forgotten only'})
      continue
    }
    removed.push(await resetAndStop(pool, m, opts.password))
  }
  // Forgotten nodes come back only through gossip from a node that still lists them.
  await waitFor(
    deadline,
    opts.signal,
    staying.length,
    async () => {
      const remembering: Member[] = []
      const limit = pLimit(64)
      await Promise.all(
        staying.map((m) =>
          limit(async () => {
            // Any mention counts (also an address-less line, or as someone's master).
            const text = await pool.run(m.node, (r) => r.call('CLUSTER', 'NODES')).then(String, () => '')
            if ([...ids].some((id) => text.includes(id))) remembering.push(m)
          }),
        ),
      )
      if (remembering.length > 0) {
        await forgetAll(remembering).catch(() => undefined)
        await sleep(200)
      }
      return remembering.map((m) => `${m.addr} still lists a removed node`)
    },
    'removed nodes to be forgotten',
    log,
  )
  return removed
}

// A forgotten leaving node: RESET HARD, then SHUTDOWN NOSAVE only once it holds no key.
async function resetAndStop(pool: NodePool, m: Member, password?: string): Promise<RemovedNode> {
  let note: string | undefined
  // RESET refuses a master that holds keys; a replica it empties (its master has them).
  // Either way SHUTDOWN NOSAVE follows only once the node is empty.
  const left = await pool
    .run(m.node, async (r) => {
      await r.call('CLUSTER', 'RESET', 'HARD')
      return r.dbsize()
    })
    .catch((error) => {
      throw new ClusterError(`${m.addr}: CLUSTER RESET HARD failed: ${describeRedisError(error, password)}; it is left running with its keys`, {
        hint: 'it is forgotten by the staying nodes already; check its keys (DBSIZE), then run CLUSTER RESET HARD and SHUTDOWN on it by hand',
      })
    })
  if (left !== 0) {
    throw new ClusterError(`${m.addr}: still holds ${left} key(s) after CLUSTER RESET HARD: not stopped`, {hint: 'check where its keys belong before stopping it by hand'})
  }
  let stopped = false
  try {
    await pool.run(m.node, (r) => r.call('SHUTDOWN', 'NOSAVE'))
  } catch (error) {
    // The answer to a successful SHUTDOWN is the connection closing.
    stopped = /closed|ECONNRESET|end of stream/i.test(error instanceof Error ? error.message : String(error))
    if (!stopped) note = [note, `SHUTDOWN NOSAVE failed: ${describeRedisError(error, password)}`].filter(Boolean).join('; ')
  }
  return {id: m.id, addr: m.addr, stopped, ...(note ? {note} : {})}
}

/** A leaving node as removal sees it: its role and DBSIZE (-1: could not be read). */
export interface LeavingNode {
  id: string
  addr: string
  master: boolean
  masterId: string | null
  keys: number
  reachable: boolean
}

// Pure: why a leaving node must not be reset and stopped. A master (drained: no slot)
// must be empty; a replica's keys are copies only when its master stays and serves slots.
export function removalBlockers(leaving: readonly LeavingNode[], staying: ReadonlyMap<string, {master: boolean; slotCount: number}>): string[] {
  const out: string[] = []
  for (const m of leaving) {
    if (!m.reachable) continue
    if (m.keys < 0) {
      out.push(`${m.addr}: DBSIZE could not be read`)
      continue
    }
    if (m.keys === 0) continue
    if (m.master) {
      out.push(`${m.addr} is a master without slots that still holds ${m.keys} key(s)`)
      continue
    }
    const up = m.masterId ? staying.get(m.masterId) : undefined
    if (!up || !up.master || up.slotCount === 0)
      out.push(`${m.addr} holds ${m.keys} key(s) and replicates ${m.masterId ? m.masterId.slice(0, 8) : 'no master'}, which is not a staying master with slots`)
  }
  return out
}

/** Slots per master as a compact, printable line: "6 masters, 2730-2731 slots". */
export function balanceLine(report: ClusterReport): string {
  const sizes = report.masters.map((m) => m.slotCount)
  if (sizes.length === 0) return 'no masters'
  const lo = Math.min(...sizes)
  const hi = Math.max(...sizes)
  return `${sizes.length} masters, ${lo === hi ? lo : `${lo}-${hi}`} slots each`
}

// The task line: what happened (or would), then the balance it ended with.
export function scaleMessage(r: ScaleResult, check = false): string {
  const parts: string[] = []
  const settled = r.openSlots.filter((d) => d.action !== 'stuck')
  if (settled.length > 0)
    parts.push(
      `${check ? 'would settle' : 'settled'} ${settled.length} open slot(s) (${settled.filter((d) => d.action === 'finish').length} finished, ${settled.filter((d) => d.action === 'rollback').length} rolled back)`,
    )
  if (r.joined.length > 0) parts.push(`${check ? 'would join' : 'joined'} ${r.joined.length} node(s) (${r.newMasters.length} as masters)`)
  if (r.attached.length > 0) parts.push(`${check ? 'would attach' : 'attached'} ${r.attached.length} replica(s)`)
  if (check && r.plannedSlots > 0) parts.push(`would move ${r.plannedSlots} slot(s)`)
  if (!check && r.moved.slots > 0) {
    const secs = r.moved.elapsedMs / 1000
    parts.push(`moved ${r.moved.slots} slot(s) and ${r.moved.keys} key(s) in ${secs.toFixed(1)} s (${Math.round(r.moved.keys / Math.max(secs, 0.001))} keys/s)`)
  }
  if (check && r.leaving.length > 0) parts.push(`would remove ${r.leaving.length} node(s)`)
  if (r.removed.length > 0) {
    const stopped = r.removed.filter((x) => x.stopped).length
    parts.push(
      `removed ${r.removed.length} node(s) (${stopped} stopped${stopped < r.removed.length ? `, ${r.removed.length - stopped} could not be stopped: ${r.removed.find((x) => !x.stopped)?.note ?? ''}` : ''}); ` +
        'their directories stay on the removed hosts: `baremetal down -i <inventory listing them>` deletes them',
    )
  }
  if (parts.length === 0) parts.push('nothing to do')
  const tail = check ? '' : `: ${balanceLine(r.report)}`
  return `${parts.join(', ')}${tail}${r.warnings.length ? ` (warning: ${r.warnings.join('; ')})` : ''}`
}

export interface Members {
  /** ip:port of every node some member knows. */
  members: string[]
  /** Their distinct IPs. */
  ips: string[]
  /** Members whose address is not one of `nodes`. */
  missing: string[]
}

// Who is in the cluster, asked of the first node of every host (cheap: one connection
// per host). Nothing running yet gives empty lists.
export async function readMembers(nodes: readonly ClusterNode[], opts: ClusterOptions = {}): Promise<Members> {
  const firsts = [...new Map(nodes.map((n) => [n.host, n])).values()]
  const pool = new NodePool({password: opts.password, connectTimeoutMs: opts.connectTimeoutMs ?? 3000})
  try {
    const texts = await probeAll(pool, firsts, opts.concurrency ?? 32)
    const known = new Map<string, NodeEntry>()
    for (const p of texts) {
      if (!probeOk(p) || !isMember(p)) continue
      // The probe keeps full lines for the first node of each view; others are read again.
      const entries = p.entries ?? parseClusterNodes(await pool.run(p.node, (r) => r.call('CLUSTER', 'NODES')).then(String, () => ''))
      for (const e of knownEntries(entries)) if (e.ip) known.set(e.addr, e)
    }
    const inventory = new Set(nodes.map((n) => nodeAddr(n)))
    const members = [...known.keys()].sort()
    return {members, ips: [...new Set([...known.values()].map((e) => e.ip))].sort(), missing: members.filter((a) => !inventory.has(a))}
  } finally {
    await pool.closeAll()
  }
}
