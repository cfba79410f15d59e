import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {ADDSLOTS_CHUNK, classify, converge, freshCommands, roleMismatches} from '../../../src/redis/cluster-classify.js'
import {NodeIds, rangesToString} from '../../../src/redis/nodes.js'
import {planCluster, type ClusterNode, type ClusterPlan} from '../../../src/redis/plan.js'
import {probeFromText, type NodeProbeOk} from '../../../src/redis/status.js'

// formCluster sends only what classify and converge decide from the nodes' own CLUSTER
// NODES lines: here those lines are written by hand for each state a re-run can meet.

const NODES: ClusterNode[] = [30001, 30002, 30003, 30004, 30005, 30006].map((port, i) => ({host: `h${(i % 2) + 1}`, ip: '127.0.0.1', port}))
const PLAN: ClusterPlan = planCluster(NODES, 1)
const addrOf = (n: ClusterNode) => `${n.ip}:${n.port}`
const idOf = (addr: string) => addr.split(':')[1].repeat(8)

/** One node's state as its own line (and everyone's line about it) says. */
interface Live {
  addr: string
  /** Address of the master it replicates. */
  master?: string
  slots?: string
  epoch?: number
}

function line(n: Live, self: boolean): string {
  const port = Number(n.addr.split(':')[1])
  const role = n.master ? 'slave' : 'master'
  const slots = n.slots ? ` ${n.slots.replace(/,/g, ' ')}` : ''
  return `${idOf(n.addr)} ${n.addr}@${port + 10000} ${self ? 'myself,' : ''}${role} ${n.master ? idOf(n.master) : '-'} 0 0 ${n.epoch ?? 0} connected${slots}`
}

/** Probes of a round: each node sees itself and the `known` addresses (alone when none). */
function probes(live: Live[], known: (addr: string) => string[] = () => [], keys: Record<string, number> = {}): NodeProbeOk[] {
  const ids = new NodeIds()
  const keep = new Set<string>()
  const byAddr = new Map(live.map((l) => [l.addr, l]))
  return NODES.map((node) => {
    const addr = addrOf(node)
    const me = byAddr.get(addr) ?? {addr}
    const others = known(addr)
      .filter((a) => a !== addr)
      .map((a) => line(byAddr.get(a) ?? {addr: a}, false))
    const text = [line(me, true), ...others].join('\n') + '\n'
    return probeFromText(node, addr, {cluster_state: 'ok'}, text, keys[addr] ?? 0, ids, keep)
  })
}

const everyone = () => NODES.map(addrOf)
/** Masters with their planned slots and epochs, replicas with their epochs: what step 1 leaves. */
const setUp = (): Live[] => [...PLAN.masters.map((m) => ({addr: m.addr, slots: rangesToString(m.slots), epoch: m.epoch})), ...PLAN.replicas.map((r) => ({addr: r.addr, epoch: r.epoch}))]

describe('classify', () => {
  it('calls a fleet of lone empty nodes fresh', () => {
    assert.deepEqual(classify(PLAN, probes([])), {fresh: true, resume: false})
  })

  it('calls nodes that met with this plan’s slots and epochs a resumable formation', () => {
    assert.deepEqual(classify(PLAN, probes(setUp(), everyone)), {fresh: false, resume: true})
  })

  it('calls a cluster with other slots an existing cluster, not this plan', () => {
    const [a, b] = PLAN.masters
    const live = setUp().map((l) => (l.addr === a.addr ? {...l, slots: `${a.slots[0][0]}-${b.slots[0][1]}`} : l.addr === b.addr ? {...l, slots: undefined} : l))
    assert.deepEqual(classify(PLAN, probes(live, everyone)), {fresh: false, resume: false})
  })

  it('does not resume when a member knows a node the inventory does not list', () => {
    const live = [...setUp(), {addr: '127.0.0.1:30099'}]
    assert.deepEqual(
      classify(
        PLAN,
        probes(live, () => [...everyone(), '127.0.0.1:30099']),
      ),
      {fresh: false, resume: false},
    )
  })

  it('refuses a lone node that holds keys', () => {
    const addr = PLAN.replicas[0].addr
    assert.throws(() => classify(PLAN, probes([], undefined, {[addr]: 3})), new RegExp(`${addr}.*holds 3 key\\(s\\); refusing`))
  })

  it('refuses a lone node serving slots the plan does not give it', () => {
    const addr = PLAN.replicas[0].addr
    assert.throws(() => classify(PLAN, probes([{addr, slots: '0-10'}])), /serves slots 0-10 that this plan does not give it \(planned as a replica\)/)
  })

  it('accepts a lone master holding part of its planned slots before any MEET (an interrupted ADDSLOTS)', () => {
    const m = PLAN.masters[1]
    assert.deepEqual(classify(PLAN, probes([{addr: m.addr, slots: `${m.slots[0][0]}-${m.slots[0][0] + 5}`}])), {fresh: true, resume: false})
  })
})

describe('converge', () => {
  it('sends the whole formation to a fresh fleet, as many commands as freshCommands counts', () => {
    const steps = converge(PLAN, probes([]))
    const m = PLAN.masters[0]
    assert.equal(steps.setup.get(m.addr)!.addslots.length, Math.ceil(m.slotCount / ADDSLOTS_CHUNK))
    assert.equal(steps.setup.get(m.addr)!.epoch, m.epoch)
    assert.deepEqual(steps.setup.get(PLAN.replicas[0].addr), {addslots: [], epoch: PLAN.replicas[0].epoch})
    assert.equal(steps.meetTarget, PLAN.seed)
    assert.deepEqual(
      steps.meet.sort(),
      everyone()
        .filter((a) => a !== PLAN.seed)
        .sort(),
    )
    assert.deepEqual(
      steps.replicate,
      PLAN.replicas.map((r) => [r.addr, r.master]),
    )
    assert.equal(steps.total, freshCommands(PLAN))
  })

  it('sends only the missing slots to a master interrupted mid-ADDSLOTS', () => {
    const m = PLAN.masters[0]
    const [first] = m.slots[0]
    const steps = converge(PLAN, probes([{addr: m.addr, slots: `${first}-${first + 9}`, epoch: m.epoch}]))
    const sent = steps.setup.get(m.addr)!
    assert.equal(sent.addslots.flat().length, m.slotCount - 10)
    assert.equal(sent.epoch, undefined, 'the epoch is set already')
  })

  it('only attaches replicas once every node has met', () => {
    const steps = converge(PLAN, probes(setUp(), everyone))
    assert.equal(steps.setup.size, 0)
    assert.deepEqual(steps.meet, [])
    assert.deepEqual(
      steps.replicate,
      PLAN.replicas.map((r) => [r.addr, r.master]),
    )
    assert.equal(steps.total, PLAN.replicas.length)
  })

  it('has nothing to send for the formed cluster', () => {
    const live = [...PLAN.masters.map((m) => ({addr: m.addr, slots: rangesToString(m.slots), epoch: m.epoch})), ...PLAN.replicas.map((r) => ({addr: r.addr, master: r.master, epoch: r.epoch}))]
    assert.equal(converge(PLAN, probes(live, everyone)).total, 0)
  })

  it('lets lone nodes MEET a member when the seed itself is alone (restarted without nodes.conf)', () => {
    const members = everyone().filter((a) => a !== PLAN.seed && a !== PLAN.replicas[0].addr)
    const live = setUp().map((l) => (l.addr === PLAN.seed ? {addr: l.addr} : l))
    const steps = converge(
      PLAN,
      probes(live, (a) => (members.includes(a) ? members : [])),
    )
    assert.ok(members.includes(steps.meetTarget), steps.meetTarget)
    assert.deepEqual(steps.meet.sort(), [PLAN.seed, PLAN.replicas[0].addr].sort())
  })
})

describe('roleMismatches', () => {
  const formed = (swap = false): Live[] => {
    const [r] = PLAN.replicas
    return [
      ...PLAN.masters.map((m) => (swap && m.addr === r.master ? {addr: m.addr, master: r.addr} : {addr: m.addr, slots: rangesToString(m.slots)})),
      ...PLAN.replicas.map((x) => (swap && x === r ? {addr: x.addr, slots: rangesToString(PLAN.masters.find((m) => m.addr === r.master)!.slots)} : {addr: x.addr, master: x.master})),
    ]
  }

  it('names a replica not yet following its planned master', () => {
    const [r] = PLAN.replicas
    const live = formed().map((l) => (l.addr === r.addr ? {addr: r.addr} : l))
    assert.deepEqual(roleMismatches(PLAN, probes(live, everyone)), [`${r.addr} is not yet a replica of ${r.master}`])
  })

  it('accepts a shard whose replica took over (a failover swapped the pair)', () => {
    assert.deepEqual(roleMismatches(PLAN, probes(formed(true), everyone)), [])
    assert.deepEqual(roleMismatches(PLAN, probes(formed(), everyone)), [])
  })
})
