import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {NodeIds, parseClusterNodes} from '../../../src/redis/nodes.js'
import type {ClusterNode} from '../../../src/redis/plan.js'
import {REMOVED_HOST, balanceLine, leavingMessage, planLayout, scaleMessage, shapeOf, type Member, type Observation, type ScaleResult} from '../../../src/redis/scale.js'
import {probeFromText, type ClusterReport} from '../../../src/redis/status.js'

// The scaling pass's pure decisions, from observations written by hand: who becomes a
// master, what the balance covers, what a live shape is, and the lines the task prints.

const id = (port: number) => String(port).repeat(8)

/** A member as its own line says: `master` with slots, or a replica of `of`. */
function member(port: number, host: string, opts: {slots?: string; of?: number; leaving?: boolean; reachable?: boolean} = {}): Member {
  const role = opts.of ? `slave ${id(opts.of)}` : 'master -'
  const [line] = parseClusterNodes(`${id(port)} 127.0.0.1:${port}@${port + 10000} myself,${role} 0 0 1 connected${opts.slots ? ` ${opts.slots}` : ''}`)
  const node: ClusterNode = {host: opts.leaving ? REMOVED_HOST : host, ip: '127.0.0.1', port}
  return {id: line.id, addr: `127.0.0.1:${port}`, node, inInventory: !opts.leaving, line, reachable: opts.reachable ?? true}
}

function lone(port: number, host: string) {
  const node = {host, ip: '127.0.0.1', port}
  return probeFromText(node, `127.0.0.1:${port}`, {cluster_state: 'ok'}, `${id(port)} :${port}@${port + 10000} myself,master - 0 0 0 connected`, 0, new NodeIds(), new Set())
}

function observation(members: Member[], loneNodes: ReturnType<typeof lone>[] = []): Observation {
  return {probes: [], members: new Map(members.map((m) => [m.id, m])), lone: loneNodes, leaving: members.filter((m) => !m.inInventory), unreachable: []}
}

// 3 masters on h1-h3, each with a replica on the next host.
const THREE = () => [
  member(30001, 'h1', {slots: '0-5460'}),
  member(30002, 'h2', {slots: '5461-10922'}),
  member(30003, 'h3', {slots: '10923-16383'}),
  member(30004, 'h2', {of: 30001}),
  member(30005, 'h3', {of: 30002}),
  member(30006, 'h1', {of: 30003}),
]

describe('planLayout', () => {
  it('a formed cluster as planned: no new master, nothing to attach, the balance covers the three', () => {
    const layout = planLayout(observation(THREE()), 1)
    assert.deepEqual(layout.roles.newMasters, [])
    assert.deepEqual(layout.roles.attach, [])
    assert.deepEqual(
      layout.balance.map((b) => b.id),
      [id(30001), id(30002), id(30003)],
    )
    assert.deepEqual(layout.leavingIds, [])
  })

  it('two new nodes with replicas 1: one becomes an empty master in the balance, the other its replica', () => {
    const layout = planLayout(observation(THREE(), [lone(30007, 'h4'), lone(30008, 'h5')]), 1)
    assert.equal(layout.roles.newMasters.length, 1)
    const added = layout.balance.find((b) => b.id === layout.roles.newMasters[0])!
    assert.deepEqual(added.slots, [])
    assert.equal(layout.roles.attach.length, 1)
    assert.equal(layout.roles.attach[0].master, layout.roles.newMasters[0])
  })

  it('a leaving master is in the balance (to be drained) and listed as leaving, never a replica target', () => {
    const members = [...THREE(), member(30009, 'gone', {slots: '16383', leaving: true})]
    const layout = planLayout(observation(members), 1)
    assert.deepEqual(layout.leavingIds, [id(30009)])
    assert.ok(layout.balance.some((b) => b.id === id(30009) && b.slots.length > 0))
    assert.ok(layout.roles.attach.every((a) => a.master !== id(30009)))
  })
})

describe('shapeOf', () => {
  it('counts replicas per slot-holding master, spare nodes and orphans', () => {
    const members = [...THREE(), member(30010, 'h4'), member(30011, 'h4', {of: 30010})]
    assert.deepEqual(shapeOf(observation(members, [lone(30012, 'h5')])), {
      masters: [
        {addr: '127.0.0.1:30001', replicas: 1},
        {addr: '127.0.0.1:30002', replicas: 1},
        {addr: '127.0.0.1:30003', replicas: 1},
      ],
      // the empty master and the lone node
      spare: 2,
      // 30011 follows a master without slots
      orphans: 1,
    })
  })

  it('leaves nodes the inventory no longer lists out of the shape', () => {
    const members = [...THREE(), member(30009, 'gone', {slots: '0', leaving: true})]
    assert.equal(shapeOf(observation(members)).masters.length, 3)
  })
})

describe('leavingMessage', () => {
  it('names role, slots and reachability, ten at most', () => {
    const gone = Array.from({length: 11}, (_, i) => member(31000 + i, 'x', {slots: i === 0 ? '0-9' : undefined, of: i === 0 ? undefined : 31000, leaving: true, reachable: i !== 1}))
    const msg = leavingMessage(gone)
    assert.match(msg, /^11 node\(s\) of the cluster are not in the inventory: 127\.0\.0\.1:31000 \(master, 10 slots\), 127\.0\.0\.1:31001 \(replica, unreachable\), /)
    assert.ok(msg.endsWith(', …'), msg)
    assert.ok(!msg.includes('31010'), msg)
  })
})

const report = (sizes: number[]): ClusterReport => ({masters: sizes.map((slotCount) => ({slotCount}))}) as unknown as ClusterReport

describe('balanceLine', () => {
  it('one size, a range of sizes, no masters', () => {
    assert.equal(balanceLine(report([5461, 5461])), '2 masters, 5461 slots each')
    assert.equal(balanceLine(report([5461, 5462, 5461])), '3 masters, 5461-5462 slots each')
    assert.equal(balanceLine(report([])), 'no masters')
  })
})

describe('scaleMessage', () => {
  const base = (over: Partial<ScaleResult> = {}): ScaleResult => ({
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
    report: report([8192, 8192]),
    elapsedMs: 0,
    ...over,
  })

  it('nothing to do, with the balance it ended with', () => {
    assert.equal(scaleMessage(base()), 'nothing to do: 2 masters, 8192 slots each')
  })

  it('check mode says "would" and what would move, without a balance', () => {
    const r = base({joined: ['a', 'b'], newMasters: ['a'], attached: [{replica: 'b', master: 'a'}], plannedSlots: 4096, leaving: ['c']})
    assert.equal(scaleMessage(r, true), 'would join 2 node(s) (1 as masters), would attach 1 replica(s), would move 4096 slot(s), would remove 1 node(s)')
  })

  it('a real run reports moves with their rate, removals with the one that could not be stopped, and warnings', () => {
    const r = base({
      moved: {slots: 100, keys: 2000, elapsedMs: 4000},
      removed: [
        {id: 'x', addr: 'x', stopped: true},
        {id: 'y', addr: 'y', stopped: false, note: 'SHUTDOWN refused'},
      ],
      warnings: ['host h1 holds 2 of 2 masters'],
    })
    assert.equal(
      scaleMessage(r),
      'moved 100 slot(s) and 2000 key(s) in 4.0 s (500 keys/s), removed 2 node(s) (1 stopped, 1 could not be stopped: SHUTDOWN refused); ' +
        'their directories stay on the removed hosts: `baremetal down -i <inventory listing them>` deletes them: 2 masters, 8192 slots each (warning: host h1 holds 2 of 2 masters)',
    )
  })

  it('settled open slots count finishes and rollbacks, never the stuck ones', () => {
    const openSlots = [{action: 'finish'}, {action: 'rollback'}, {action: 'stuck'}] as unknown as ScaleResult['openSlots']
    assert.match(scaleMessage(base({openSlots}), true), /^would settle 2 open slot\(s\) \(1 finished, 1 rolled back\)/)
  })
})
