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
  /** Runtime cluster-node-timeout (CONFIG GET), when it could be read. */
  nodeTimeoutMs?: number
  /** INFO server redis_version: what it runs now. */
  version?: string
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
  version?: string
}

export interface ReportReplica {
  id: string
  addr: string
  host: string
  masterId: string | null
  masterAddr: string | null
  flags: string[]
  version?: string
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
  problems: ClusterProblem[]
  /** Risks of a healthy cluster (a host whose loss takes it down); `ok` does not depend on them. */
  warnings: string[]
  /** Running Redis version → how many reachable nodes run it (more than one: mixed, an upgrade under way or interrupted). */
  versions?: Record<string, number>
}

/** What a problem is about: callers decide by kind, never by matching its text. */
export type ProblemKind =
  | 'unreachable'
  /** Alone, not in the cluster, but holds keys. */
  | 'has-keys'
  /** Nothing formed or nothing reachable: there is no cluster to judge. */
  | 'no-cluster'
  /** Slots no master serves. */
  | 'uncovered'
  /** Members the inventory does not list. */
  | 'unknown-nodes'
  /** cluster_state is not ok. */
  | 'state'
  /** In another cluster than the reference node's. */
  | 'outside'
  /** Does not know the same nodes as the reference. */
  | 'unaware'
  /** Routes by another slot map than the majority. */
  | 'disagree'
  | 'open-slot'
  /** Marked failed by the cluster. */
  | 'failed'
  /** Runs with another cluster-node-timeout than declared (an interrupted formation's short one). */
  | 'node-timeout'

export interface ClusterProblem {
  kind: ProblemKind
  /** The node it is about; absent for cluster-wide ones and "… and N more" lines. */
  node?: string
  /** One line as `status` prints it. */
  text: string
}

/** Expected when a play goes on without some nodes (allow_partial): they are left out. */
export function leftOut(p: ClusterProblem): boolean {
  return p.kind === 'unreachable' || p.kind === 'failed'
}

/** The problems as printed: `status --json` and `register:` data keep this shape. */
export function problemTexts(problems: readonly ClusterProblem[]): string[] {
  return problems.map((p) => p.text)
}

// Type guard kept next to the union so callers never test `error` by hand.
export function probeOk(p: NodeProbe): p is NodeProbeOk {
  return p.error === undefined
}

// Handshake and address-less entries are transient: they are not members yet.
export function knownEntries(entries: readonly NodeEntry[]): NodeEntry[] {
  return entries.filter((e) => !e.handshake && !e.noaddr)
}

// A node is in a cluster once it knows another node or serves slots (a 1-node cluster is alone).
export function isMember(p: NodeProbeOk): boolean {
  return p.view.lines > 1 || p.myself.slots.length > 0
}

// Digest a node's answer; keep its full lines only when no node with the same view has
// them yet (`keep` remembers which views are covered across one probe round).
export function probeFromText(node: ClusterNode, addr: string, info: Record<string, string>, nodesText: string, dbsize: number, ids: NodeIds, keep: Set<string>): NodeProbeOk {
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

type Problem = Omit<ClusterProblem, 'kind'>

// At most LIST_MAX of a kind, then one line counting the rest (same kind, no node).
function capped(kind: ProblemKind, lines: readonly Problem[], more: (n: number) => string): ClusterProblem[] {
  const shown = lines.slice(0, LIST_MAX).map((l) => ({kind, ...l}))
  return lines.length <= LIST_MAX ? shown : [...shown, {kind, text: more(lines.length - LIST_MAX)}]
}

function listAddrs(addrs: readonly string[]): string {
  return addrs.length <= LIST_MAX ? addrs.join(', ') : `${addrs.slice(0, LIST_MAX).join(', ')} and ${addrs.length - LIST_MAX} more`
}

// One judgement of cluster health for check, status and the formation wait loop.
export function buildClusterReport(probes: readonly NodeProbe[]): ClusterReport {
  const j = judge(probes)
  const perHost: Record<string, ReportHostCounts> = {}
  for (const p of probes) perHost[p.node.host] ??= {masters: 0, replicas: 0, new: 0, unreachable: 0}
  const problems: ClusterProblem[] = []
  const unreachable = j.failed.map((p) => p.addr)
  for (const p of j.failed) perHost[p.node.host].unreachable++
  problems.push(
    ...capped(
      'unreachable',
      j.failed.map((p) => ({node: p.addr, text: `${p.addr} (host ${p.node.host}) is unreachable: ${p.error}`})),
      (n) => `… and ${n} more unreachable node(s)`,
    ),
  )

  const members = j.ok.filter(isMember)
  const lone = j.ok.filter((p) => !isMember(p))
  const newNodes = lone.map((p) => p.addr)
  for (const p of lone) perHost[p.node.host].new++
  for (const p of lone) if (p.dbsize > 0) problems.push({kind: 'has-keys', node: p.addr, text: `${p.addr} (host ${p.node.host}) is not in the cluster but holds ${p.dbsize} key(s)`})

  const empty: ClusterReport = {
    ok: false,
    seed: null,
    nodes: probes.length,
    reachable: j.ok.length,
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
    versions: versionCounts(j.ok),
  }
  if (members.length === 0) {
    problems.push({kind: 'no-cluster', text: j.ok.length === 0 ? 'no node could be reached' : `no cluster formed: all ${j.ok.length} reachable node(s) are alone and serve no slots`})
    return empty
  }
  const ref = reference(members)
  if (!ref) {
    problems.push({kind: 'no-cluster', text: 'no full view of the cluster was kept (internal error): run the check again'})
    return empty
  }
  const {masters, replicas} = roles(j, ref.view, perHost)
  const owners = slotOwners(ref.view)
  const {count: uncoveredCount, uncovered} = uncoveredOf(owners)
  if (uncoveredCount > 0) problems.push({kind: 'uncovered', text: `${uncoveredCount} slot(s) not served by any master: ${uncovered}`})

  const unknownNodes = ref.view.filter((e) => !j.byId.has(e.id) && !j.unreachableByAddr.has(e.addr)).map((e) => e.addr)
  if (unknownNodes.length > 0) problems.push({kind: 'unknown-nodes', text: `the cluster has node(s) the inventory does not list: ${listAddrs(unknownNodes)}`})
  const views = compareViews(j, members, ref, owners)
  problems.push(...views.problems, ...failedProblems(j, members, ref))
  return {
    ok: problems.length === 0,
    seed: ref.probe.addr,
    nodes: probes.length,
    reachable: j.ok.length,
    masters,
    replicas,
    perHost,
    slotsCovered: CLUSTER_SLOTS - uncoveredCount,
    uncovered,
    openSlots: views.openSlots,
    newNodes,
    unreachable,
    unknownNodes,
    outside: views.outside,
    problems,
    warnings: [...placementWarnings(placementInput({masters, replicas})), ...mixedWarning(versionCounts(j.ok))],
    versions: versionCounts(j.ok),
  }
}

function uncoveredOf(owners: ReturnType<typeof slotOwners>): {count: number; uncovered: string} {
  const slots: number[] = []
  owners.forEach((o, s) => {
    if (!o) slots.push(s)
  })
  return {count: slots.length, uncovered: rangesToString(rangesFromSlots(slots))}
}

function versionCounts(ok: readonly NodeProbeOk[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const p of ok) if (p.version) out[p.version] = (out[p.version] ?? 0) + 1
  return out
}

function mixedWarning(v: Record<string, number>): string[] {
  const list = Object.entries(v).sort(([a], [b]) => a.localeCompare(b, undefined, {numeric: true}))
  if (list.length < 2) return []
  return [`mixed Redis versions: ${list.map(([ver, n]) => `${n} node(s) on ${ver}`).join(', ')} (an upgrade under way or interrupted: \`baremetal up\` with the declared redis_version finishes it)`]
}

/** Who answered, and how to name a node from an entry or an id. */
interface Judging {
  ok: NodeProbeOk[]
  failed: NodeProbeFailed[]
  byId: Map<string, NodeProbeOk>
  unreachableByAddr: Map<string, NodeProbeFailed>
  nameOf: (e: NodeEntry) => {addr: string; host: string}
  addrOfId: (id: string, view: readonly NodeEntry[]) => string
}

function judge(probes: readonly NodeProbe[]): Judging {
  const ok = probes.filter(probeOk)
  const failed = probes.filter((p): p is NodeProbeFailed => !probeOk(p))
  const byId = new Map<string, NodeProbeOk>()
  for (const p of ok) byId.set(p.myself.id, p)
  const unreachableByAddr = new Map(failed.map((p) => [p.addr, p]))
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
    const e = view.find((x) => x.id === id)
    return e ? nameOf(e).addr : id.slice(0, 8)
  }
  return {ok, failed, byId, unreachableByAddr, nameOf, addrOfId}
}

/** The reference: the first member holding the majority view, with its known entries. */
interface Reference {
  probe: NodeProbeOk
  view: NodeEntry[]
  majority: string
  /** How many members share the majority view. */
  agreeing: number
  /** Known entries of the first member of each distinct view. */
  fullViews: Map<string, NodeEntry[]>
}

// The majority view is the reference; ties go to the first node in inventory order.
function reference(members: readonly NodeProbeOk[]): Reference | undefined {
  const sigs = members.map((p) => p.view.signature)
  const freq = new Map<string, number>()
  for (const s of sigs) freq.set(s, (freq.get(s) ?? 0) + 1)
  let majority = sigs[0]
  for (const [s, n] of freq) if (n > (freq.get(majority) ?? 0)) majority = s
  const fullViews = new Map<string, NodeEntry[]>()
  for (const p of members) if (p.entries && !fullViews.has(p.view.signature)) fullViews.set(p.view.signature, knownEntries(p.entries))
  const probe = members.find((p) => p.view.signature === majority && p.entries) ?? members.find((p) => p.entries)
  if (!probe) return undefined
  return {probe, view: knownEntries(probe.entries!), majority, agreeing: freq.get(majority) ?? 0, fullViews}
}

// A node's own line is the authority on its role (others learn it by gossip, seconds
// later); slots come from the majority view, which is what clients are routed by.
function roles(j: Judging, refView: readonly NodeEntry[], perHost: Record<string, ReportHostCounts>): {masters: ReportMaster[]; replicas: ReportReplica[]} {
  const masters: ReportMaster[] = []
  const replicas: ReportReplica[] = []
  const roleOf = (e: NodeEntry): NodeEntry => {
    const self = j.byId.get(e.id)?.myself
    return self && (self.replica || self.master) ? self : e
  }
  const replicaCount = new Map<string, number>()
  for (const e of refView) {
    const r = roleOf(e)
    if (r.replica && r.masterId) replicaCount.set(r.masterId, (replicaCount.get(r.masterId) ?? 0) + 1)
  }
  for (const e of refView) {
    const {addr, host} = j.nameOf(e)
    const role = roleOf(e)
    // Flags as the reference sees them, but with the role the node itself states.
    const flags = [role.replica ? 'slave' : 'master', ...e.flags.filter((f) => !['master', 'slave', 'replica', 'myself'].includes(f))]
    if (role.replica) {
      replicas.push({id: e.id, addr, host, masterId: role.masterId, masterAddr: role.masterId ? j.addrOfId(role.masterId, refView) : null, flags, version: j.byId.get(e.id)?.version})
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
        version: j.byId.get(e.id)?.version,
      })
      if (perHost[host]) perHost[host].masters++
    }
  }
  const firstSlot = (m: ReportMaster) => (m.slots ? Number(m.slots.split(/[-,]/)[0]) : CLUSTER_SLOTS)
  masters.sort((a, b) => firstSlot(a) - firstSlot(b) || a.addr.localeCompare(b.addr))
  return {masters, replicas}
}

// Every member against the reference: its state, whether it is in the same cluster,
// knows the same nodes and routes by the same map, and the slots it holds open.
function compareViews(j: Judging, members: readonly NodeProbeOk[], ref: Reference, owners: readonly string[]): {problems: ClusterProblem[]; openSlots: OpenSlot[]; outside: string[]} {
  const {ids, known: refKnown} = ref.probe.view
  const refIdx = new Set(refKnown)
  const addrOfId = (id: string) => j.addrOfId(id, ref.view)
  const state: Problem[] = []
  const split: Problem[] = []
  const know: Problem[] = []
  const disagree: Problem[] = []
  const openSlots: OpenSlot[] = []
  const outside: string[] = []
  for (const p of members) {
    const cs = p.info.cluster_state
    if (cs !== 'ok') state.push({node: p.addr, text: `${p.addr} (host ${p.node.host}) reports cluster_state:${cs ?? 'unknown'}`})
    for (const m of p.myself.migrating) openSlots.push({addr: p.addr, slot: m.slot, state: 'migrating', peer: addrOfId(m.to)})
    for (const m of p.myself.importing) openSlots.push({addr: p.addr, slot: m.slot, state: 'importing', peer: addrOfId(m.from)})
    const self = ids.get(p.myself.id)
    if (self === undefined || !refIdx.has(self)) {
      outside.push(p.addr)
      split.push({node: p.addr, text: `${p.addr} (host ${p.node.host}) is not part of the cluster seen by ${ref.probe.addr}: a separate cluster?`})
      continue
    }
    const {missing, extra} = diffSorted(refKnown, p.view.known)
    if (missing.length > 0) {
      know.push({node: p.addr, text: `${p.addr} knows ${refKnown.length - missing.length} of ${refKnown.length} nodes (missing: ${listAddrs(missing.map((x) => addrOfId(ids.ids[x])))})`})
    } else if (extra.length > 0) {
      know.push({node: p.addr, text: `${p.addr} knows ${extra.length} node(s) that ${ref.probe.addr} does not: ${listAddrs(extra.map((x) => addrOfId(ids.ids[x])))}`})
    }
    if (p.view.signature !== ref.majority) {
      const view = ref.fullViews.get(p.view.signature)
      const why = view ? explainDisagreement(view, owners, addrOfId) : 'its slot map differs'
      disagree.push({node: p.addr, text: `${p.addr} disagrees on the slot map: ${why}`})
    }
  }
  const open = openSlots.map((o) => ({node: o.addr, text: `${o.addr} has slot ${o.slot} open (${o.state} ${o.state === 'migrating' ? 'to' : 'from'} ${o.peer})`}))
  const problems = [
    ...capped('state', state, (n) => `… and ${n} more node(s) not in state ok`),
    ...capped('outside', split, (n) => `… and ${n} more node(s) outside the cluster`),
    ...capped('unaware', know, (n) => `… and ${n} more node(s) that do not know every node`),
    ...capped('disagree', disagree, (n) => `… and ${n} more node(s) disagree with the ${ref.agreeing} that agree`),
    ...capped('open-slot', open, (n) => `… and ${n} more open slot(s)`),
  ]
  return {problems, openSlots, outside}
}

// FAIL is agreed by a majority of masters (PFAIL is one node's suspicion, not reported).
function failedProblems(j: Judging, members: readonly NodeProbeOk[], ref: Reference): ClusterProblem[] {
  const ids = ref.probe.view.ids
  const failedBy = new Map<number, number>()
  for (const p of members) for (const x of p.view.failed) failedBy.set(x, (failedBy.get(x) ?? 0) + 1)
  const lines = [...failedBy].map(([x, n]) => {
    const addr = j.addrOfId(ids.ids[x], ref.view)
    return {node: addr, text: `${addr} is marked failed by ${n} node(s)`}
  })
  return capped('failed', lines, (n) => `… and ${n} more failed node(s)`)
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
    const bad = flags.filter((f) => f === 'fail' || f === 'fail?' || f === 'handshake' || f === 'noaddr')
    return bad.length ? `  [${bad.join(',')}]` : ''
  }
  const ver = (v?: string) => (v ? `  ${v}` : '')
  const width = Math.max(0, ...r.masters.map((m) => m.addr.length), ...r.replicas.map((x) => x.addr.length + 2))
  for (const m of r.masters) {
    lines.push(`M ${m.addr.padEnd(width)}  ${m.host}  ${m.id.slice(0, 8)}  slots ${m.slots || '-'} (${m.slotCount})  ${m.replicas} replica(s)${ver(m.version)}${flagNote(m.flags)}`)
    for (const rep of byMaster.get(m.id) ?? []) lines.push(`  S ${rep.addr.padEnd(width - 2)}  ${rep.host}  ${rep.id.slice(0, 8)}${ver(rep.version)}${flagNote(rep.flags)}`)
  }
  const masterIds = new Set(r.masters.map((m) => m.id))
  for (const rep of r.replicas) {
    if (!rep.masterId || !masterIds.has(rep.masterId)) lines.push(`S ${rep.addr.padEnd(width)}  ${rep.host}  ${rep.id.slice(0, 8)}  master ${rep.masterAddr ?? '?'} (unknown)${flagNote(rep.flags)}`)
  }
  const hosts = Object.keys(r.perHost)
  if (hosts.length > 0) {
    lines.push('per host:')
    const hw = Math.max(...hosts.map((h) => h.length))
    for (const h of hosts) {
      const c = r.perHost[h]
      const extra = [c.new ? `${c.new} new` : '', c.unreachable ? `${c.unreachable} unreachable` : ''].filter(Boolean).join(', ')
      lines.push(`  ${h.padEnd(hw)}  ${c.masters} master(s), ${c.replicas} replica(s)${extra ? `, ${extra}` : ''}`)
    }
  }
  if (r.newNodes.length > 0) lines.push(`new nodes (not in the cluster): ${listAddrs(r.newNodes)}`)
  if (r.problems.length > 0) {
    lines.push('problems:')
    for (const p of r.problems) lines.push(`  - ${p.text}`)
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
