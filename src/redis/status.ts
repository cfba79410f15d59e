import {
  CLUSTER_SLOTS,
  digestClusterNodes,
  mergeRanges,
  parseClusterNodes,
  rangesFromSlots,
  rangesToString,
  slotOwners,
  type NodeEntry,
  type NodeIds,
  type NodesDigest,
  type SlotRange,
} from './nodes.js'
import {placementInput, placementWarnings} from './placement.js'
import type {ClusterNode} from './plan.js'

// What `redis-cli --cluster check` tells people, as data: built from what every node
// said (pure, so the former's wait loop, `baremetal status` and tests share one
// judgement of "healthy"), then rendered as text or printed as JSON unchanged.

export interface NodeProbeOk {
  node: ClusterNode
  addr: string
  info: Record<string, string>
  myself: NodeEntry
  view: NodesDigest
  /** Full lines, kept only for the first node of each distinct view (the reference, and
   *  to explain disagreements): 1000 full views would be a million objects. */
  entries?: NodeEntry[]
  dbsize: number
  error?: undefined
}

export interface NodeProbeFailed {
  node: ClusterNode
  addr: string
  error: string
}

export type NodeProbe = NodeProbeOk | NodeProbeFailed

export interface ReportMaster {
  id: string
  addr: string
  host: string
  slots: string
  slotCount: number
  replicas: number
  flags: string[]
}

export interface ReportReplica {
  id: string
  addr: string
  host: string
  masterId: string | null
  masterAddr: string | null
  flags: string[]
}

export interface ReportHostCounts {
  masters: number
  replicas: number
  /** Alone and empty: not in the cluster yet. */
  new: number
  unreachable: number
}

export interface OpenSlot {
  addr: string
  slot: number
  state: 'migrating' | 'importing'
  peer: string
}

export interface ClusterReport {
  /** No problems: all slots covered, all nodes agree and know each other, state ok everywhere. */
  ok: boolean
  /** The node whose view the lists below come from (first node holding the majority view). */
  seed: string | null
  nodes: number
  reachable: number
  masters: ReportMaster[]
  replicas: ReportReplica[]
  perHost: Record<string, ReportHostCounts>
  slotsCovered: number
  /** Compressed ranges nobody serves, '' when covered. */
  uncovered: string
  openSlots: OpenSlot[]
  /** Inventory nodes alone and empty: not part of the cluster (scaling adds them). */
  newNodes: string[]
  unreachable: string[]
  /** Cluster members the inventory does not list. */
  unknownNodes: string[]
  /** Inventory nodes in some other cluster than the reference node's. */
  outside: string[]
  problems: string[]
  /** Risks of a healthy cluster (a host whose loss takes it down); `ok` does not depend on them. */
  warnings: string[]
}

// Type guard kept next to the union so callers never test `error` by hand.
export function probeOk(p: NodeProbe): p is NodeProbeOk {
  return p.error === undefined
}

// Handshake and address-less entries are transient: they are not members yet.
export function knownEntries(entries: readonly NodeEntry[]): NodeEntry[] {
  return entries.filter(e => !e.handshake && !e.noaddr)
}

// A node is in a cluster once it knows another node or serves slots (a 1-node cluster is alone).
export function isMember(p: NodeProbeOk): boolean {
  return p.view.lines > 1 || p.myself.slots.length > 0
}

// Digest a node's answer; keep its full lines only when no node with the same view has
// them yet (`keep` remembers which views are covered across one probe round).
export function probeFromText(
  node: ClusterNode,
  addr: string,
  info: Record<string, string>,
  nodesText: string,
  dbsize: number,
  ids: NodeIds,
  keep: Set<string>,
): NodeProbeOk {
  const view = digestClusterNodes(nodesText, ids)
  const probe: NodeProbeOk = {node, addr, info, myself: view.myself, view, dbsize}
  const key = `${view.signature}/${isMember(probe) ? 'member' : 'alone'}`
  if (!keep.has(key)) {
    keep.add(key)
    probe.entries = parseClusterNodes(nodesText)
  }
  return probe
}

const LIST_MAX = 10

function capped(lines: string[], more: (n: number) => string): string[] {
  if (lines.length <= LIST_MAX) return lines
  return [...lines.slice(0, LIST_MAX), more(lines.length - LIST_MAX)]
}

function listAddrs(addrs: readonly string[]): string {
  return addrs.length <= LIST_MAX ? addrs.join(', ') : `${addrs.slice(0, LIST_MAX).join(', ')} and ${addrs.length - LIST_MAX} more`
}

// One judgement of cluster health for check, status and the formation wait loop.
export function buildClusterReport(probes: readonly NodeProbe[]): ClusterReport {
  const ok = probes.filter(probeOk)
  const failed = probes.filter((p): p is NodeProbeFailed => !probeOk(p))
  const byId = new Map<string, NodeProbeOk>()
  for (const p of ok) byId.set(p.myself.id, p)
  const unreachableByAddr = new Map(failed.map(p => [p.addr, p]))

  const nameOf = (e: NodeEntry): {addr: string; host: string} => {
    const p = byId.get(e.id)
    if (p) return {addr: p.addr, host: p.node.host}
    const u = unreachableByAddr.get(e.addr)
    if (u) return {addr: u.addr, host: u.node.host}
    return {addr: e.addr, host: '?'}
  }
  const addrOfId = (id: string, view: readonly NodeEntry[]): string => {
    const p = byId.get(id)
    if (p) return p.addr
    const e = view.find(x => x.id === id)
    return e ? nameOf(e).addr : id.slice(0, 8)
  }

  const perHost: Record<string, ReportHostCounts> = {}
  for (const p of probes) perHost[p.node.host] ??= {masters: 0, replicas: 0, new: 0, unreachable: 0}

  const problems: string[] = []
  const unreachable = failed.map(p => p.addr)
  for (const p of failed) perHost[p.node.host].unreachable++
  problems.push(...capped(failed.map(p => `${p.addr} (host ${p.node.host}) is unreachable: ${p.error}`), n => `… and ${n} more unreachable node(s)`))

  const members = ok.filter(isMember)
  const lone = ok.filter(p => !isMember(p))
  const newNodes = lone.map(p => p.addr)
  for (const p of lone) perHost[p.node.host].new++
  for (const p of lone) if (p.dbsize > 0) problems.push(`${p.addr} (host ${p.node.host}) is not in the cluster but holds ${p.dbsize} key(s)`)

  const empty: ClusterReport = {
    ok: false,
    seed: null,
    nodes: probes.length,
    reachable: ok.length,
    masters: [],
    replicas: [],
    perHost,
    slotsCovered: 0,
    uncovered: `0-${CLUSTER_SLOTS - 1}`,
    openSlots: [],
    newNodes,
    unreachable,
    unknownNodes: [],
    outside: [],
    problems,
    warnings: [],
  }
  if (members.length === 0) {
    problems.push(ok.length === 0 ? 'no node could be reached' : `no cluster formed: all ${ok.length} reachable node(s) are alone and serve no slots`)
    return empty
  }

  // The majority view is the reference; ties go to the first node in inventory order.
  const sigs = members.map(p => p.view.signature)
  const freq = new Map<string, number>()
  for (const s of sigs) freq.set(s, (freq.get(s) ?? 0) + 1)
  let majority = sigs[0]
  for (const [s, n] of freq) if (n > (freq.get(majority) ?? 0)) majority = s
  const fullViews = new Map<string, NodeEntry[]>()
  for (const p of members) if (p.entries && !fullViews.has(p.view.signature)) fullViews.set(p.view.signature, knownEntries(p.entries))
  const ref = members.find(p => p.view.signature === majority && p.entries) ?? members.find(p => p.entries)
  if (!ref) {
    problems.push('no full view of the cluster was kept (internal error): run the check again')
    return empty
  }
  const refView = knownEntries(ref.entries!)
  const ids = ref.view.ids
  const refKnown = ref.view.known
  const refIdx = new Set(refKnown)
  const masters: ReportMaster[] = []
  const replicas: ReportReplica[] = []
  // A node's own line is the authority on its role (others learn it by gossip, seconds
  // later); slots come from the majority view, which is what clients are routed by.
  const roleOf = (e: NodeEntry): NodeEntry => {
    const self = byId.get(e.id)?.myself
    return self && (self.replica || self.master) ? self : e
  }
  const replicaCount = new Map<string, number>()
  for (const e of refView) {
    const r = roleOf(e)
    if (r.replica && r.masterId) replicaCount.set(r.masterId, (replicaCount.get(r.masterId) ?? 0) + 1)
  }
  for (const e of refView) {
    const {addr, host} = nameOf(e)
    const role = roleOf(e)
    // Flags as the reference sees them, but with the role the node itself states.
    const flags = [role.replica ? 'slave' : 'master', ...e.flags.filter(f => !['master', 'slave', 'replica', 'myself'].includes(f))]
    if (role.replica) {
      replicas.push({id: e.id, addr, host, masterId: role.masterId, masterAddr: role.masterId ? addrOfId(role.masterId, refView) : null, flags})
      if (perHost[host]) perHost[host].replicas++
    } else {
      const slots = mergeRanges(e.slots)
      masters.push({
        id: e.id,
        addr,
        host,
        slots: rangesToString(slots),
        slotCount: slots.reduce((n, [a, b]) => n + b - a + 1, 0),
        replicas: replicaCount.get(e.id) ?? 0,
        flags,
      })
      if (perHost[host]) perHost[host].masters++
    }
  }
  const firstSlot = (m: ReportMaster) => (m.slots ? Number(m.slots.split(/[-,]/)[0]) : CLUSTER_SLOTS)
  masters.sort((a, b) => firstSlot(a) - firstSlot(b) || a.addr.localeCompare(b.addr))

  const owners = slotOwners(refView)
  const uncoveredSlots: number[] = []
  owners.forEach((o, s) => {
    if (!o) uncoveredSlots.push(s)
  })
  const uncovered = rangesToString(rangesFromSlots(uncoveredSlots))
  if (uncoveredSlots.length > 0) problems.push(`${uncoveredSlots.length} slot(s) not served by any master: ${uncovered}`)

  const unknownNodes = refView.filter(e => !byId.has(e.id) && !unreachableByAddr.has(e.addr)).map(e => e.addr)
  if (unknownNodes.length > 0) problems.push(`the cluster has node(s) the inventory does not list: ${listAddrs(unknownNodes)}`)

  const stateLines: string[] = []
  const splitLines: string[] = []
  const knowLines: string[] = []
  const disagreeLines: string[] = []
  const openSlots: OpenSlot[] = []
  const outside: string[] = []
  members.forEach((p, i) => {
    const state = p.info.cluster_state
    if (state !== 'ok') stateLines.push(`${p.addr} (host ${p.node.host}) reports cluster_state:${state ?? 'unknown'}`)
    for (const m of p.myself.migrating) openSlots.push({addr: p.addr, slot: m.slot, state: 'migrating', peer: addrOfId(m.to, refView)})
    for (const m of p.myself.importing) openSlots.push({addr: p.addr, slot: m.slot, state: 'importing', peer: addrOfId(m.from, refView)})
    const self = ids.get(p.myself.id)
    if (self === undefined || !refIdx.has(self)) {
      outside.push(p.addr)
      splitLines.push(`${p.addr} (host ${p.node.host}) is not part of the cluster seen by ${ref.addr}: a separate cluster?`)
      return
    }
    const {missing, extra} = diffSorted(refKnown, p.view.known)
    if (missing.length > 0) {
      knowLines.push(`${p.addr} knows ${refKnown.length - missing.length} of ${refKnown.length} nodes (missing: ${listAddrs(missing.map(x => addrOfId(ids.ids[x], refView)))})`)
    } else if (extra.length > 0) {
      knowLines.push(`${p.addr} knows ${extra.length} node(s) that ${ref.addr} does not: ${listAddrs(extra.map(x => addrOfId(ids.ids[x], refView)))}`)
    }
    if (sigs[i] !== majority) {
      const view = fullViews.get(sigs[i])
      const why = view ? explainDisagreement(view, owners, id => addrOfId(id, refView)) : 'its slot map differs'
      disagreeLines.push(`${p.addr} disagrees on the slot map: ${why}`)
    }
  })
  problems.push(...capped(stateLines, n => `… and ${n} more node(s) not in state ok`))
  problems.push(...capped(splitLines, n => `… and ${n} more node(s) outside the cluster`))
  problems.push(...capped(knowLines, n => `… and ${n} more node(s) that do not know every node`))
  const agreeing = freq.get(majority) ?? 0
  problems.push(...capped(disagreeLines, n => `… and ${n} more node(s) disagree with the ${agreeing} that agree`))
  problems.push(...capped(openSlots.map(o => `${o.addr} has slot ${o.slot} open (${o.state} ${o.state === 'migrating' ? 'to' : 'from'} ${o.peer})`), n => `… and ${n} more open slot(s)`))

  // FAIL is agreed by a majority of masters (PFAIL is one node's suspicion, not reported).
  const failedBy = new Map<number, number>()
  for (const p of members) for (const x of p.view.failed) failedBy.set(x, (failedBy.get(x) ?? 0) + 1)
  problems.push(...capped([...failedBy].map(([x, n]) => `${addrOfId(ids.ids[x], refView)} is marked failed by ${n} node(s)`), n => `… and ${n} more failed node(s)`))

  return {
    ok: problems.length === 0,
    seed: ref.addr,
    nodes: probes.length,
    reachable: ok.length,
    masters,
    replicas,
    perHost,
    slotsCovered: CLUSTER_SLOTS - uncoveredSlots.length,
    uncovered,
    openSlots,
    newNodes,
    unreachable,
    unknownNodes,
    outside,
    problems,
    warnings: placementWarnings(placementInput({masters, replicas})),
  }
}

// Both ascending: what `b` lacks from `a`, and what it has beyond it.
function diffSorted(a: Int32Array, b: Int32Array): {missing: number[]; extra: number[]} {
  const missing: number[] = []
  const extra: number[] = []
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i] < b[j])) missing.push(a[i++])
    else if (i >= a.length || b[j] < a[i]) extra.push(b[j++])
    else {
      i++
      j++
    }
  }
  return {missing, extra}
}

function explainDisagreement(view: readonly NodeEntry[], refOwners: readonly string[], addrOf: (id: string) => string): string {
  const mine = slotOwners(view)
  let diff = 0
  let first = -1
  for (let s = 0; s < CLUSTER_SLOTS; s++) {
    if (mine[s] !== refOwners[s]) {
      diff++
      if (first < 0) first = s
    }
  }
  if (first < 0) return 'same owners, different epochs or roles'
  const who = (id: string) => (id ? addrOf(id) : 'nobody')
  return `${diff} slot(s) differ, e.g. slot ${first} is served by ${who(mine[first])} here but by ${who(refOwners[first])} in the majority view`
}

// Text for `baremetal status`: the shape of `redis-cli --cluster check`, one line per node.
export function renderClusterReport(r: ClusterReport): string {
  const lines: string[] = []
  const head = r.ok ? 'cluster ok' : 'cluster has problems'
  lines.push(
    `${head}: ${r.masters.length} master(s), ${r.replicas.length} replica(s), ${r.slotsCovered}/${CLUSTER_SLOTS} slots covered` +
      `, ${r.reachable}/${r.nodes} node(s) reachable${r.seed ? `, seed ${r.seed}` : ''}`,
  )
  const byMaster = new Map<string, ReportReplica[]>()
  for (const rep of r.replicas) {
    const list = byMaster.get(rep.masterId ?? '') ?? []
    list.push(rep)
    byMaster.set(rep.masterId ?? '', list)
  }
  const flagNote = (flags: string[]) => {
    const bad = flags.filter(f => f === 'fail' || f === 'fail?' || f === 'handshake' || f === 'noaddr')
    return bad.length ? `  [${bad.join(',')}]` : ''
  }
  const width = Math.max(0, ...r.masters.map(m => m.addr.length), ...r.replicas.map(x => x.addr.length + 2))
  for (const m of r.masters) {
    lines.push(`M ${m.addr.padEnd(width)}  ${m.host}  ${m.id.slice(0, 8)}  slots ${m.slots || '-'} (${m.slotCount})  ${m.replicas} replica(s)${flagNote(m.flags)}`)
    for (const rep of byMaster.get(m.id) ?? []) lines.push(`  S ${rep.addr.padEnd(width - 2)}  ${rep.host}  ${rep.id.slice(0, 8)}${flagNote(rep.flags)}`)
  }
  const masterIds = new Set(r.masters.map(m => m.id))
  for (const rep of r.replicas) {
    if (!rep.masterId || !masterIds.has(rep.masterId)) lines.push(`S ${rep.addr.padEnd(width)}  ${rep.host}  ${rep.id.slice(0, 8)}  master ${rep.masterAddr ?? '?'} (unknown)${flagNote(rep.flags)}`)
  }
  const hosts = Object.keys(r.perHost)
  if (hosts.length > 0) {
    lines.push('per host:')
    const hw = Math.max(...hosts.map(h => h.length))
    for (const h of hosts) {
      const c = r.perHost[h]
      const extra = [c.new ? `${c.new} new` : '', c.unreachable ? `${c.unreachable} unreachable` : ''].filter(Boolean).join(', ')
      lines.push(`  ${h.padEnd(hw)}  ${c.masters} master(s), ${c.replicas} replica(s)${extra ? `, ${extra}` : ''}`)
    }
  }
  if (r.newNodes.length > 0) lines.push(`new nodes (not in the cluster): ${listAddrs(r.newNodes)}`)
  if (r.problems.length > 0) {
    lines.push('problems:')
    for (const p of r.problems) lines.push(`  - ${p}`)
  }
  if (r.warnings.length > 0) {
    lines.push('warnings:')
    for (const w of r.warnings) lines.push(`  - ${w}`)
  }
  if (r.openSlots.length > 0) lines.push('open slots (an interrupted move): the next `baremetal up` finishes or rolls back each one')
  if (r.unknownNodes.length > 0) lines.push('nodes not in the inventory: `baremetal up --remove-missing` drains and removes them; or list their hosts again')
  return lines.join('\n')
}

// Slots as sorted ranges for a plan-vs-live comparison, independent of line order.
export function sameSlots(a: readonly SlotRange[], b: readonly SlotRange[]): boolean {
  return rangesToString(a) === rangesToString(b)
}
