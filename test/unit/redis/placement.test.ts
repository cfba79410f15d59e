import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import fc from 'fast-check'
import {planCluster, type ClusterNode} from '../../../src/redis/plan.js'
import {planPlacement, placementWarnings, type PlacementInput, type PlacementMaster, type PlacementReplica} from '../../../src/redis/placement.js'
import {renderClusterReport, type ClusterReport} from '../../../src/redis/status.js'

// A cluster as planCluster forms it: hosts × ports, `replicas` per master, ids = addresses.
function formed(hosts: number, ports: number, replicas: number): PlacementInput {
  const nodes: ClusterNode[] = []
  for (let h = 1; h <= hosts; h++) for (let p = 0; p < ports; p++) nodes.push({host: `h${h}`, ip: `192.0.2.${h}`, port: 7000 + p})
  const plan = planCluster(nodes, replicas)
  return {
    masters: plan.masters.map((m) => ({id: m.addr, addr: m.addr, host: m.host, slotCount: m.slotCount})),
    replicas: plan.replicas.map((r) => ({id: r.addr, addr: r.addr, host: r.host, masterId: r.master})),
  }
}

// What a CLUSTER FAILOVER does to the layout: the replica is master of the shard, the old
// master and the shard's other replicas replicate it.
function failOver(input: PlacementInput, masterId: string, replicaId: string): PlacementInput {
  const m = input.masters.find((x) => x.id === masterId)!
  const r = input.replicas.find((x) => x.id === replicaId)!
  assert.equal(r.masterId, masterId, `${replicaId} replicates ${masterId}`)
  return {
    masters: input.masters.map((x) => (x.id === masterId ? {id: r.id, addr: r.addr, host: r.host, slotCount: m.slotCount} : x)),
    replicas: input.replicas.map((x) => (x.id === replicaId ? {id: m.id, addr: m.addr, host: m.host, masterId: r.id} : x.masterId === masterId ? {...x, masterId: r.id} : x)),
  }
}

function perHost(input: PlacementInput): Record<string, number> {
  const out: Record<string, number> = {}
  for (const h of new Set([...input.masters, ...input.replicas].map((n) => n.host))) out[h] = 0
  for (const m of input.masters) if (m.slotCount > 0) out[m.host]++
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)))
}

function apply(input: PlacementInput): PlacementInput {
  let s = input
  for (const f of planPlacement(input).failovers) s = failOver(s, f.master.id, f.replica.id)
  return s
}

// The case as filed: 3 hosts × 4 ports, 1 replica each, failovers gathered 4 masters on h1.
function drifted(): PlacementInput {
  let s = formed(3, 4, 1)
  for (const m of s.masters.filter((x) => x.host !== 'h1')) {
    const r = s.replicas.find((x) => x.masterId === m.id && x.host === 'h1')
    if (r && perHost(s).h1 < 4) s = failOver(s, m.id, r.id)
  }
  return s
}

describe('planPlacement', () => {
  it('a freshly formed cluster is the planned spread: nothing to do', () => {
    for (const [h, p, r] of [
      [3, 4, 1],
      [3, 6, 2],
      [5, 4, 1],
      [2, 6, 1],
      [1, 6, 1],
      [4, 3, 0],
      [7, 10, 1],
    ]) {
      assert.deepEqual(planPlacement(formed(h, p, r)).failovers, [], `${h} hosts × ${p}, ${r} replica(s)`)
    }
  })

  it('4 of 6 masters on h1, none on another: two failovers back to 2 per host, to replicas of those very shards', () => {
    const s = drifted()
    assert.deepEqual(Object.values(perHost(s)).sort(), [0, 2, 4])
    const plan = planPlacement(s)
    assert.equal(plan.failovers.length, 2)
    assert.deepEqual(plan.after, {h1: 2, h2: 2, h3: 2})
    assert.deepEqual([plan.floor, plan.cap], [2, 2])
    for (const f of plan.failovers) {
      assert.equal(f.master.host, 'h1')
      assert.notEqual(f.replica.host, 'h1')
      assert.equal(s.replicas.find((r) => r.id === f.replica.id)?.masterId, f.master.id)
    }
    const after = apply(s)
    assert.deepEqual(perHost(after), {h1: 2, h2: 2, h3: 2})
    assert.deepEqual(planPlacement(after).failovers, [], 'a second run has nothing to do')
  })

  it('deterministic: the same layout always gives the same ordered failovers', () => {
    const a = planPlacement(drifted()).failovers.map((f) => `${f.master.addr}>${f.replica.addr}`)
    const b = planPlacement(drifted()).failovers.map((f) => `${f.master.addr}>${f.replica.addr}`)
    assert.deepEqual(a, b)
  })

  it('hands over only to a replica of that shard on a lighter host; no such replica, no failover', () => {
    const s: PlacementInput = {
      masters: [
        {id: 'a', addr: 'h1:1', host: 'h1', slotCount: 100},
        {id: 'b', addr: 'h1:2', host: 'h1', slotCount: 100},
        {id: 'c', addr: 'h1:3', host: 'h1', slotCount: 100},
      ],
      // Every replica sits on h1 too, or replicates nothing: h2 and h3 cannot take over.
      replicas: [
        {id: 'ra', addr: 'h1:4', host: 'h1', masterId: 'a'},
        {id: 'x', addr: 'h2:1', host: 'h2', masterId: null},
        {id: 'y', addr: 'h3:1', host: 'h3', masterId: 'zzz'},
      ],
    }
    const plan = planPlacement(s)
    assert.deepEqual(plan.failovers, [])
    assert.deepEqual(plan.after, {h1: 3, h2: 0, h3: 0})
  })

  it('skips replicas marked failing, and masters without slots (they do not vote)', () => {
    const s: PlacementInput = {
      masters: [
        {id: 'a', addr: 'h1:1', host: 'h1', slotCount: 100},
        {id: 'b', addr: 'h1:2', host: 'h1', slotCount: 100},
        {id: 'e', addr: 'h2:9', host: 'h2', slotCount: 0},
      ],
      replicas: [
        {id: 'ra', addr: 'h2:1', host: 'h2', masterId: 'a', healthy: false},
        {id: 'rb', addr: 'h2:2', host: 'h2', masterId: 'b'},
      ],
    }
    const plan = planPlacement(s)
    assert.deepEqual(plan.before, {h1: 2, h2: 0})
    assert.deepEqual(
      plan.failovers.map((f) => [f.master.id, f.replica.id]),
      [['b', 'rb']],
    )
  })

  it('7 masters over 3 hosts (4, 3, 0): every host ends with 2 or 3', () => {
    const m = (id: string, host: string): PlacementMaster => ({id, addr: `${host}:${id}`, host, slotCount: 10})
    const r = (id: string, host: string, masterId: string): PlacementReplica => ({id, addr: `${host}:${id}`, host, masterId})
    const s: PlacementInput = {
      masters: [m('a', 'h1'), m('b', 'h1'), m('c', 'h1'), m('d', 'h1'), m('e', 'h2'), m('f', 'h2'), m('g', 'h2')],
      replicas: ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((x) => r(`r${x}`, 'h3', x)),
    }
    const plan = planPlacement(s)
    assert.deepEqual([plan.floor, plan.cap], [2, 3])
    assert.equal(plan.failovers.length, 2)
    assert.ok(
      Object.values(plan.after).every((n) => n === 2 || n === 3),
      JSON.stringify(plan.after),
    )
    assert.deepEqual(perHost(apply(s)), plan.after)
  })

  it('property: any layout reached by failovers is brought back within [⌊M/H⌋, ⌈M/H⌉], each shard at most once, to its own replicas', () => {
    const arb = fc.record({
      hosts: fc.integer({min: 2, max: 6}),
      ports: fc.integer({min: 2, max: 8}),
      replicas: fc.integer({min: 1, max: 2}),
      swaps: fc.array(fc.tuple(fc.nat(), fc.nat()), {maxLength: 30}),
    })
    fc.assert(
      fc.property(arb, ({hosts, ports, replicas, swaps}) => {
        let s = formed(hosts, ports, replicas)
        // Random failovers, as rolling restarts and repairs leave them.
        for (const [i, j] of swaps) {
          const m = s.masters[i % s.masters.length]
          const reps = s.replicas.filter((r) => r.masterId === m.id)
          if (reps.length) s = failOver(s, m.id, reps[j % reps.length].id)
        }
        const plan = planPlacement(s)
        assert.equal(new Set(plan.failovers.map((f) => f.master.id)).size, plan.failovers.length)
        let t = s
        for (const f of plan.failovers) {
          assert.notEqual(f.master.host, f.replica.host)
          t = failOver(t, f.master.id, f.replica.id)
        }
        assert.deepEqual(perHost(t), plan.after)
        // Every shard has a replica on every other host in these layouts only when
        // replicas ≥ hosts - 1; otherwise levelling may stop early but never overshoots.
        const counts = Object.values(plan.after)
        if (replicas >= hosts - 1)
          assert.ok(
            counts.every((n) => n >= plan.floor && n <= plan.cap),
            JSON.stringify(plan),
          )
        assert.ok(Math.max(...counts) <= Math.max(...Object.values(plan.before)))
        assert.ok(Math.max(...counts) - Math.min(...counts) <= Math.max(...Object.values(plan.before)) - Math.min(...Object.values(plan.before)))
        assert.deepEqual(planPlacement(t).failovers, [], 'idempotent')
      }),
      {numRuns: 300},
    )
  })
})

describe('placementWarnings', () => {
  it('the planned spread over 3 hosts: no warning', () => {
    assert.deepEqual(placementWarnings(formed(3, 4, 1)), [])
    assert.deepEqual(placementWarnings(formed(5, 4, 1)), [])
  })

  it('a host holding ⌈M/2⌉ or more masters: losing it leaves no majority, and up can fix it', () => {
    const w = placementWarnings(drifted())
    assert.equal(w.length, 1, w.join('\n'))
    assert.match(
      w[0],
      /^host h1 holds 4 of 6 masters: losing it leaves 2, short of the 4 \(a majority of all masters\) a failover needs, and the cluster goes down; `baremetal up` hands 2 of them over/,
    )
    // 3 of 6 is already too many: the other 3 are not a majority of 6.
    let s = formed(3, 4, 1)
    const m = s.masters.find((x) => x.host === 'h2')!
    s = failOver(s, m.id, s.replicas.find((r) => r.masterId === m.id)!.id)
    const hosts = perHost(s)
    const heavy = Object.keys(hosts).find((h) => hosts[h] === 3)!
    assert.match(placementWarnings(s).join('\n'), new RegExp(`host ${heavy} holds 3 of 6 masters`))
  })

  it('2 hosts: half the masters on each is always too many, and says why', () => {
    const w = placementWarnings(formed(2, 6, 1))
    assert.equal(w.length, 2)
    assert.match(w[0], /host h1 holds 3 of 6 masters.*with 2 hosts one of them always holds half the masters/)
  })

  it('one host: one line', () => {
    assert.deepEqual(placementWarnings(formed(1, 6, 1)), ['all 3 master(s) and their replicas are on one host (h1): losing it takes the cluster down; spread the nodes over 3 or more hosts'])
  })

  it('a shard whose master and every replica share a host (or no replica at all)', () => {
    const s: PlacementInput = {
      masters: [
        {id: 'a', addr: 'h1:1', host: 'h1', slotCount: 100},
        {id: 'b', addr: 'h2:1', host: 'h2', slotCount: 100},
        {id: 'c', addr: 'h3:1', host: 'h3', slotCount: 100},
        {id: 'd', addr: 'h4:1', host: 'h4', slotCount: 100},
      ],
      replicas: [
        {id: 'ra', addr: 'h1:2', host: 'h1', masterId: 'a'},
        {id: 'rc', addr: 'h4:2', host: 'h4', masterId: 'c'},
        {id: 'rd', addr: 'h1:3', host: 'h1', masterId: 'd'},
      ],
    }
    assert.deepEqual(placementWarnings(s), ['2 host(s) hold shards with no replica on another host (h1: 1, h2: 1): losing one of them leaves those slots unserved and the cluster down'])
  })

  it('status prints them under warnings:, and they do not make the cluster unhealthy', () => {
    const report: ClusterReport = {
      ok: true,
      seed: 'h1:1',
      nodes: 2,
      reachable: 2,
      masters: [],
      replicas: [],
      perHost: {},
      slotsCovered: 16384,
      uncovered: '',
      openSlots: [],
      newNodes: [],
      unreachable: [],
      unknownNodes: [],
      outside: [],
      problems: [],
      warnings: ['host h1 holds 4 of 6 masters: …'],
    }
    const text = renderClusterReport(report)
    assert.match(text, /^cluster ok: /)
    assert.match(text, /\nwarnings:\n {2}- host h1 holds 4 of 6 masters: …$/)
  })
})
