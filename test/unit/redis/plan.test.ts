import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import fc from 'fast-check'
import {interleaveByHost, planCluster, splitSlots, type ClusterNode, type ClusterPlan} from '../../../src/redis/plan.js'
import {CLUSTER_SLOTS} from '../../../src/redis/nodes.js'
import {ClusterError} from '../../../src/errors.js'

// N nodes dealt round-robin over H hosts, ports counting up per host, like the fleet.
function fleet(n: number, hosts: number): ClusterNode[] {
  const out: ClusterNode[] = []
  for (let i = 0; i < n; i++) out.push({host: `h${i % hosts}`, ip: `10.0.64.${(i % hosts) + 1}`, port: 6379 + Math.floor(i / hosts)})
  return out
}

// Every invariant a plan must satisfy, whatever the input.
function assertInvariants(nodes: ClusterNode[], replicas: number, plan: ClusterPlan): void {
  const N = nodes.length
  const M = plan.masters.length
  assert.equal(M + plan.replicas.length, N, 'every node is used exactly once')
  assert.equal(M, Math.max(1, Math.floor(N / (replicas + 1))))
  const addrs = new Set([...plan.masters.map((m) => m.addr), ...plan.replicas.map((r) => r.addr)])
  assert.equal(addrs.size, N, 'no node planned twice')

  // Every slot owned exactly once, each master one contiguous range, sizes balanced.
  const owner = new Array<number>(CLUSTER_SLOTS).fill(0)
  const lo = Math.floor(CLUSTER_SLOTS / M)
  const hi = Math.ceil(CLUSTER_SLOTS / M)
  for (const m of plan.masters) {
    assert.equal(m.slots.length, 1, 'contiguous')
    const [a, b] = m.slots[0]
    assert.equal(m.slotCount, b - a + 1)
    assert.ok(m.slotCount === lo || m.slotCount === hi, `master ${m.addr} has ${m.slotCount} slots, want ${lo} or ${hi}`)
    for (let s = a; s <= b; s++) owner[s]++
  }
  assert.ok(
    owner.every((c) => c === 1),
    'each of 16384 slots owned exactly once',
  )

  // Distinct epochs 1..N.
  const epochs = [...plan.masters.map((m) => m.epoch), ...plan.replicas.map((r) => r.epoch)].sort((a, b) => a - b)
  assert.deepEqual(
    epochs,
    Array.from({length: N}, (_, i) => i + 1),
  )

  // Masters spread over hosts as evenly as the fleet allows.
  const hostSizes = new Map<string, number>()
  for (const n of nodes) hostSizes.set(n.host, (hostSizes.get(n.host) ?? 0) + 1)
  const equalHosts = new Set(hostSizes.values()).size === 1
  if (equalHosts) {
    const counts = [...hostSizes.keys()].map((h) => plan.perHost[h].masters)
    assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `masters per host ${counts}`)
  }

  // Replica links are consistent both ways, and the shared-host report is exact.
  const masterByAddr = new Map(plan.masters.map((m) => [m.addr, m]))
  const expectedShared: string[] = []
  for (const m of plan.masters) {
    const seen = new Set<string>()
    for (const ra of m.replicas) {
      const r = plan.replicas.find((x) => x.addr === ra)!
      assert.equal(r.master, m.addr)
      if (r.host === m.host) expectedShared.push(`${ra}:master`)
      else if (seen.has(r.host)) expectedShared.push(`${ra}:replica`)
      seen.add(r.host)
    }
  }
  for (const r of plan.replicas) assert.ok(masterByAddr.get(r.master)!.replicas.includes(r.addr))
  assert.deepEqual(plan.sharedHost.map((s) => `${s.replica}:${s.sharesWith}`).sort(), expectedShared.sort())

  // Replica counts per master differ by at most one.
  const per = plan.masters.map((m) => m.replicas.length)
  assert.ok(Math.max(...per) - Math.min(...per) <= 1, `replicas per master ${per}`)
  if (N >= M * (replicas + 1)) assert.ok(Math.min(...per) >= replicas)
}

function unevenFleet(sizes: number[]): ClusterNode[] {
  const nodes: ClusterNode[] = []
  sizes.forEach((c, h) => {
    for (let i = 0; i < c; i++) nodes.push({host: `h${h}`, ip: `10.1.0.${h + 1}`, port: 7000 + i})
  })
  return nodes
}

// Exhaustive check, independent of the planner: is there any number of masters per host
// (and of masters with one extra replica) for which every host's replicas-to-serve fit
// on the other hosts? With P replicas in all, host h needs demand(h) + supply(h) ≤ P.
function avoidable(sizes: number[], M: number): boolean {
  const N = sizes.reduce((a, b) => a + b, 0)
  const P = N - M
  const base = Math.floor(P / M)
  const E = P - base * M
  const m = new Array<number>(sizes.length).fill(0)
  const rec = (h: number, left: number): boolean => {
    if (h === sizes.length) {
      if (left !== 0) return false
      let extraRoom = 0
      for (let i = 0; i < sizes.length; i++) {
        const r = P - sizes[i] - (base - 1) * m[i]
        if (r < 0) return false
        extraRoom += Math.min(m[i], r)
      }
      return extraRoom >= E
    }
    for (let k = 0; k <= Math.min(left, sizes[h]); k++) {
      m[h] = k
      if (rec(h + 1, left - k)) return true
    }
    return false
  }
  return rec(0, M)
}

describe('splitSlots', () => {
  it('rounds like redis-cli', () => {
    assert.deepEqual(splitSlots(3), [
      [0, 5460],
      [5461, 10922],
      [10923, 16383],
    ])
    assert.deepEqual(splitSlots(1), [[0, 16383]])
    const r = splitSlots(1000)
    assert.ok(r.every(([a, b]) => b - a + 1 === 16 || b - a + 1 === 17))
    assert.equal(r[999][1], 16383)
  })
  it('refuses impossible splits', () => {
    assert.throws(() => splitSlots(0), ClusterError)
    assert.throws(() => splitSlots(16385), ClusterError)
  })
})

describe('interleaveByHost', () => {
  it('deals one node per host in turn', () => {
    const nodes = [
      {host: 'a', n: 1},
      {host: 'a', n: 2},
      {host: 'a', n: 3},
      {host: 'b', n: 1},
      {host: 'c', n: 1},
      {host: 'c', n: 2},
    ]
    assert.deepEqual(
      interleaveByHost(nodes).map((x) => `${x.host}${x.n}`),
      ['a1', 'b1', 'c1', 'a2', 'c2', 'a3'],
    )
  })
})

describe('planCluster invariants', () => {
  for (const N of [1, 3, 6, 7, 100, 300, 1000]) {
    for (const R of [0, 1, 2]) {
      for (const H of [1, 3, 10]) {
        it(`N=${N} R=${R} hosts=${H}`, () => {
          const nodes = fleet(N, H)
          const plan = planCluster(nodes, R)
          assertInvariants(nodes, R, plan)
          // With two or more hosts no replica sits on its master's host.
          if (Math.min(N, H) >= 2) {
            const hostOf = new Map(plan.masters.map((m) => [m.addr, m.host]))
            for (const r of plan.replicas) assert.notEqual(r.host, hostOf.get(r.master), `${r.addr} is on its master's host`)
          }
        })
      }
    }
  }

  it('R=0: 1000 nodes give 1000 masters of 16 or 17 slots, 100 per host', () => {
    const plan = planCluster(fleet(1000, 10), 0)
    assert.equal(plan.masters.length, 1000)
    assert.equal(plan.replicas.length, 0)
    assert.ok(plan.masters.every((m) => m.slotCount === 16 || m.slotCount === 17))
    for (const h of Object.values(plan.perHost)) assert.deepEqual(h, {masters: 100, replicas: 0})
    assert.deepEqual(plan.sharedHost, [])
  })

  it('the 6-node, 3-machine layout of the reference write-up', () => {
    const plan = planCluster(fleet(6, 3), 1)
    assert.deepEqual(
      plan.masters.map((m) => m.slots[0]),
      [
        [0, 5460],
        [5461, 10922],
        [10923, 16383],
      ],
    )
    assert.deepEqual(
      plan.masters.map((m) => m.host),
      ['h0', 'h1', 'h2'],
    )
    for (const r of plan.replicas) assert.notEqual(r.host, plan.masters.find((m) => m.addr === r.master)!.host)
    assert.equal(plan.seed, plan.masters[0].addr)
    assert.deepEqual(plan.sharedHost, [])
  })

  it('R=2 on 3 hosts puts the two replicas of each master on the two other hosts', () => {
    const plan = planCluster(fleet(300, 3), 2)
    for (const m of plan.masters) {
      const hosts = m.replicas.map((a) => plan.replicas.find((r) => r.addr === a)!.host)
      assert.deepEqual(new Set([m.host, ...hosts]).size, 3)
    }
  })

  it('one host: falls back to same-host replicas and says so', () => {
    const plan = planCluster(fleet(6, 1), 1)
    assert.equal(plan.sharedHost.length, 3)
    assert.ok(plan.sharedHost.every((s) => s.sharesWith === 'master'))
    assert.ok(plan.warnings.some((w) => /share a host with their master/.test(w)))
  })

  it('is deterministic', () => {
    assert.deepEqual(planCluster(fleet(300, 10), 2), planCluster(fleet(300, 10), 2))
  })

  it('warns when there are too few nodes for the replicas asked', () => {
    const plan = planCluster(fleet(1, 1), 2)
    assert.equal(plan.masters.length, 1)
    assert.ok(plan.warnings.some((w) => /cannot give/.test(w)))
    assert.ok(planCluster(fleet(7, 3), 1).warnings.some((w) => /extra replicas/.test(w)))
  })

  it('rejects duplicates, bad ports, empty inventories, bad replica counts', () => {
    assert.throws(() => planCluster([], 0), /no Redis nodes/)
    assert.throws(
      () =>
        planCluster(
          [
            {host: 'a', ip: '10.0.0.1', port: 7000},
            {host: 'b', ip: '10.0.0.1', port: 7000},
          ],
          0,
        ),
      /listed twice \(hosts a and b\)/,
    )
    assert.throws(() => planCluster([{host: 'a', ip: '10.0.0.1', port: 60000}], 0), /cluster bus/)
    assert.throws(() => planCluster(fleet(3, 1), -1), ClusterError)
    assert.throws(() => planCluster(fleet(3, 1), 1.5), ClusterError)
  })

  it('property: invariants hold for uneven fleets, no swap of two replicas would take one off its master host', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({min: 1, max: 12}), {minLength: 1, maxLength: 8}), fc.integer({min: 0, max: 3}), (sizes, R) => {
        const nodes = unevenFleet(sizes)
        const plan = planCluster(nodes, R)
        assertInvariants(nodes, R, plan)
        const masterHost = new Map(plan.masters.map((m) => [m.addr, m.host]))
        for (const x of plan.replicas.filter((r) => r.host === masterHost.get(r.master))) {
          for (const y of plan.replicas) {
            if (y.master === x.master) continue
            const fixes = y.host !== masterHost.get(x.master) && x.host !== masterHost.get(y.master)
            assert.ok(!fixes, `swapping ${x.addr} and ${y.addr} would take ${x.addr} off its master's host`)
          }
        }
      }),
      {numRuns: 300},
    )
  })

  it('property: a replica shares its master host only when no spread of masters could avoid it', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({min: 1, max: 6}), {minLength: 2, maxLength: 4}), fc.integer({min: 1, max: 3}), (sizes, R) => {
        const nodes = unevenFleet(sizes)
        const plan = planCluster(nodes, R)
        const shared = plan.sharedHost.filter((s) => s.sharesWith === 'master').length
        if (shared > 0) assert.ok(!avoidable(sizes, plan.masters.length), `avoidable, yet ${shared} replica(s) share their master's host: ${JSON.stringify(sizes)} R=${R}`)
      }),
      {numRuns: 500},
    )
  })

  it('plans 1000 nodes in milliseconds', () => {
    for (const R of [0, 1, 2]) {
      const nodes = fleet(1000, 10)
      const t = performance.now()
      const plan = planCluster(nodes, R)
      const ms = performance.now() - t
      console.log(`# plan 1000 nodes, 10 hosts, replicas=${R}: ${plan.masters.length} masters, ${plan.replicas.length} replicas in ${ms.toFixed(2)} ms`)
    }
  })
})
