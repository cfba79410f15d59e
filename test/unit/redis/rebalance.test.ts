import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import fc from 'fast-check'
import {ClusterError} from '../../../src/errors.js'
import {decideOpenSlot, type OpenSlotView} from '../../../src/redis/migrate.js'
import {CLUSTER_SLOTS} from '../../../src/redis/nodes.js'
import {planCluster, type ClusterNode} from '../../../src/redis/plan.js'
import {planRebalance, planRoles, type BalanceMaster, type RoleInput, type RolePlan} from '../../../src/redis/rebalance.js'

// Masters owning the 16384 slots: `sizes` slots each, dealt in contiguous runs (like a
// formed cluster) or scattered (like one rebalanced many times).
function mastersWith(sizes: number[], scatter: (i: number) => number = (i) => i): BalanceMaster[] {
  const order = Array.from({length: CLUSTER_SLOTS}, (_, i) => scatter(i))
  const out: BalanceMaster[] = []
  let pos = 0
  sizes.forEach((n, i) => {
    out.push({id: `m${String(i).padStart(4, '0')}`, host: `h${i % 5}`, slots: order.slice(pos, pos + n).sort((a, b) => a - b)})
    pos += n
  })
  return out
}

// n positive sizes summing to 16384 (plus `empty` masters with none).
const sizesArb = (maxMasters: number) =>
  fc.integer({min: 1, max: maxMasters}).chain((n) =>
    fc.array(fc.integer({min: 1, max: 1000}), {minLength: n, maxLength: n}).map((w) => {
      const total = w.reduce((a, b) => a + b, 0)
      const sizes = w.map((x) => Math.floor((x * CLUSTER_SLOTS) / total))
      sizes[0] += CLUSTER_SLOTS - sizes.reduce((a, b) => a + b, 0)
      return sizes.filter((s) => s > 0).length === sizes.length ? sizes : sizes.map(() => 0).map((_, i, a) => (i === 0 ? CLUSTER_SLOTS - (a.length - 1) : 1))
    }),
  )

// Independent minimum: the fewest slots any balanced end state can move, by trying every
// choice of which staying masters get the ⌈⌉ target (small N only).
function bruteMinimum(have: number[], leaving: boolean[]): number {
  const stay = have.map((h, i) => ({h, i})).filter((x) => !leaving[x.i])
  const N = stay.length
  const base = Math.floor(CLUSTER_SLOTS / N)
  const extra = CLUSTER_SLOTS - base * N
  const gone = have.filter((_, i) => leaving[i]).reduce((a, b) => a + b, 0)
  let best = Infinity
  for (let mask = 0; mask < 1 << N; mask++) {
    let bits = 0
    for (let k = 0; k < N; k++) if (mask & (1 << k)) bits++
    if (bits !== extra) continue
    let surplus = 0
    stay.forEach((x, k) => (surplus += Math.max(0, x.h - (base + (mask & (1 << k) ? 1 : 0)))))
    best = Math.min(best, surplus)
  }
  return gone + best
}

function applyMoves(masters: BalanceMaster[], moves: ReturnType<typeof planRebalance>['moves']): Map<string, Set<number>> {
  const owned = new Map(masters.map((m) => [m.id, new Set(m.slots as number[])]))
  for (const mv of moves) {
    assert.notEqual(mv.from, mv.to, 'a move goes somewhere else')
    for (const s of mv.slots) {
      assert.ok(owned.get(mv.from)!.delete(s), `slot ${s} moved from ${mv.from}, which does not own it (or it moved twice)`)
      owned.get(mv.to)!.add(s)
    }
  }
  return owned
}

function assertBalanced(masters: BalanceMaster[], leaving: Set<string>, plan: ReturnType<typeof planRebalance>): void {
  const owned = applyMoves(masters, plan.moves)
  const seen = new Uint8Array(CLUSTER_SLOTS)
  for (const set of owned.values()) for (const s of set) seen[s]++
  assert.ok(
    seen.every((c) => c === 1),
    'every one of 16384 slots owned exactly once',
  )
  const staying = masters.filter((m) => !leaving.has(m.id))
  const lo = Math.floor(CLUSTER_SLOTS / staying.length)
  for (const m of masters) {
    const n = owned.get(m.id)!.size
    if (leaving.has(m.id)) assert.equal(n, 0, `leaving master ${m.id} keeps ${n} slots`)
    else {
      assert.ok(n === lo || n === lo + 1, `${m.id} ends with ${n} slots, want ${lo} or ${lo + 1}`)
      assert.equal(plan.targets[m.id], n)
    }
  }
  // Fewest moves: exactly the sum of the surpluses.
  const surplus = masters.reduce((t, m) => t + (leaving.has(m.id) ? m.slots.length : Math.max(0, m.slots.length - plan.targets[m.id])), 0)
  assert.equal(plan.moved, surplus)
  assert.equal(
    plan.moves.reduce((t, m) => t + m.slots.length, 0),
    plan.moved,
  )
  // Nothing moves into a master that gives, nor out of one that takes.
  const givers = new Set(plan.moves.map((m) => m.from))
  for (const mv of plan.moves) assert.ok(!givers.has(mv.to), `${mv.to} both gives and takes`)
}

describe('planRebalance', () => {
  it('scale-out 6 → 9 masters: balanced, moves exactly the surplus', () => {
    const masters = [...mastersWith([2731, 2731, 2731, 2731, 2730, 2730]), ...['n1', 'n2', 'n3'].map((id) => ({id, slots: [] as number[]}))]
    const plan = planRebalance(masters)
    assertBalanced(masters, new Set(), plan)
    // 9 masters: 16384 = 9 × 1820 + 4; the four ⌈⌉ targets go to the fullest old masters.
    assert.equal(plan.moved, 16384 - (4 * 1821 + 2 * 1820))
    assert.deepEqual(Object.values(plan.targets).sort(), [1820, 1820, 1820, 1820, 1820, 1821, 1821, 1821, 1821])
  })

  it('scale-in 9 → 6 masters: the leaving three give everything, nobody else gives', () => {
    const masters = mastersWith([1821, 1821, 1821, 1821, 1820, 1820, 1820, 1820, 1820])
    const leaving = new Set(['m0000', 'm0003', 'm0006'])
    const plan = planRebalance(masters, leaving)
    assertBalanced(masters, leaving, plan)
    assert.ok(plan.moves.every((m) => leaving.has(m.from)))
    assert.equal(plan.moved, 1821 * 2 + 1820)
  })

  it('a balanced cluster moves nothing', () => {
    const plan = planRebalance(mastersWith([5462, 5461, 5461]))
    assert.equal(plan.moved, 0)
    assert.deepEqual(plan.moves, [])
  })

  it('balance after adding and removing any number of masters, with the fewest moves (property)', () => {
    fc.assert(
      fc.property(sizesArb(12), fc.integer({min: 0, max: 6}), fc.array(fc.boolean(), {maxLength: 12}), fc.integer({min: 1, max: 16383}), (sizes, added, leaveFlags, stride) => {
        const odd = stride % 2 === 0 ? stride + 1 : stride
        const masters = [...mastersWith(sizes, (i) => (i * odd) % CLUSTER_SLOTS), ...Array.from({length: added}, (_, i) => ({id: `new${i}`, slots: [] as number[]}))]
        const leaving = new Set(masters.filter((_, i) => leaveFlags[i]).map((m) => m.id))
        if (leaving.size === masters.length) leaving.delete(masters[0].id)
        const plan = planRebalance(masters, leaving)
        assertBalanced(masters, leaving, plan)
        if (masters.length - leaving.size <= 12) {
          assert.equal(
            plan.moved,
            bruteMinimum(
              masters.map((m) => m.slots.length),
              masters.map((m) => leaving.has(m.id)),
            ),
          )
        }
      }),
      {numRuns: 150},
    )
  })

  it('refuses a map it cannot balance: a slot owned twice, slots with no owner, nobody left', () => {
    const twice = mastersWith([8192, 8192])
    ;(twice[1].slots as number[]).push(0)
    assert.throws(() => planRebalance(twice), ClusterError)
    assert.throws(() => planRebalance(mastersWith([8192])), /have no owner/)
    assert.throws(() => planRebalance(mastersWith([8192, 8192]), ['m0000', 'm0001']), /no master would be left/)
  })

  it('plans 1000 masters (+100 joining, 50 leaving) in milliseconds', () => {
    const base = Math.floor(CLUSTER_SLOTS / 1000)
    const sizes = Array.from({length: 1000}, (_, i) => base + (i < CLUSTER_SLOTS - base * 1000 ? 1 : 0))
    const masters = [...mastersWith(sizes), ...Array.from({length: 100}, (_, i) => ({id: `new${i}`, slots: [] as number[]}))]
    const leaving = new Set(masters.slice(0, 50).map((m) => m.id))
    const t0 = process.hrtime.bigint()
    const plan = planRebalance(masters, leaving)
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    process.stdout.write(`# planRebalance: 1100 masters (50 leaving) planned in ${ms.toFixed(1)} ms, ${plan.moved} slots in ${plan.moves.length} moves\n`)
    assertBalanced(masters, leaving, plan)
    assert.ok(ms < 500, `took ${ms} ms`)
  })
})

// A formed cluster as the role planner sees it.
function formed(hosts: number, perHost: number, replicas: number): RoleInput & {hostOf: Map<string, string>} {
  const nodes: ClusterNode[] = []
  for (let h = 0; h < hosts; h++) for (let p = 0; p < perHost; p++) nodes.push({host: `h${h}`, ip: `192.0.2.${h + 1}`, port: 7000 + p})
  const plan = planCluster(nodes, replicas)
  const hostOf = new Map(nodes.map((n) => [`${n.ip}:${n.port}`, n.host]))
  return {
    replicasPerMaster: replicas,
    masters: plan.masters.map((m) => ({id: m.addr, host: m.host})),
    replicas: plan.replicas.map((r) => ({id: r.addr, host: r.host, master: r.master})),
    spare: [],
    hostOf,
  }
}

function newHosts(first: number, count: number, perHost: number): Array<{id: string; host: string}> {
  const out: Array<{id: string; host: string}> = []
  for (let h = first; h < first + count; h++) for (let p = 0; p < perHost; p++) out.push({id: `192.0.2.${h + 1}:${7000 + p}`, host: `h${h}`})
  return out
}

function assertRoles(input: RoleInput, plan: RolePlan, expectDisjoint: boolean): void {
  const masters = [...input.masters.map((m) => m.id), ...plan.newMasters]
  const hostOf = new Map([...input.masters, ...input.replicas, ...input.spare].map((n) => [n.id, n.host]))
  const everyone = [...input.masters, ...input.replicas, ...input.spare].map((n) => n.id)
  // Every node exactly once: a master, or a replica of a master.
  for (const id of everyone) {
    const isMaster = masters.includes(id)
    assert.ok(isMaster !== id in plan.masterOf, `${id} is ${isMaster ? 'a master and a replica' : 'neither master nor replica'}`)
    if (!isMaster) assert.ok(masters.includes(plan.masterOf[id]), `${id} follows ${plan.masterOf[id]}, not a master`)
  }
  const per = new Map(masters.map((m) => [m, [] as string[]]))
  for (const [r, m] of Object.entries(plan.masterOf)) per.get(m)!.push(r)
  const counts = [...per.values()].map((l) => l.length)
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `replicas per master ${counts}`)
  // The shared-host report is exact, and empty when the fleet allows.
  const shared: string[] = []
  for (const [m, list] of per) {
    const seen = new Set<string>()
    for (const r of list) {
      if (hostOf.get(r) === hostOf.get(m)) shared.push(`${r}:master`)
      else if (seen.has(hostOf.get(r)!)) shared.push(`${r}:replica`)
      seen.add(hostOf.get(r)!)
    }
  }
  assert.deepEqual(plan.sharedHost.map((s) => `${s.replica}:${s.sharesWith}`).sort(), shared.sort())
  if (expectDisjoint) assert.deepEqual(plan.sharedHost, [], 'replicas host-disjoint from their master and siblings')
  // attach is exactly the replicas whose master changes.
  const current = new Map(input.replicas.map((r) => [r.id, r.master]))
  const changed = Object.entries(plan.masterOf)
    .filter(([r, m]) => current.get(r) !== m)
    .map(([r]) => r)
    .sort()
  assert.deepEqual(plan.attach.map((a) => a.replica).sort(), changed)
}

describe('planRoles', () => {
  it('an unchanged cluster keeps every role', () => {
    const input = formed(3, 4, 1)
    const plan = planRoles(input)
    assert.deepEqual(plan.newMasters, [])
    assert.deepEqual(plan.attach, [])
    assertRoles(input, plan, true)
  })

  it('scale-out with replicas 0: every new node becomes a master', () => {
    const input = {...formed(2, 3, 0), spare: newHosts(2, 1, 3)}
    const plan = planRoles(input)
    assert.equal(plan.newMasters.length, 3)
    assertRoles(input, plan, true)
  })

  it('scale-out with replicas 1: new masters and replicas, host-disjoint, few existing replicas moved', () => {
    const input = {...formed(3, 4, 1), spare: newHosts(3, 1, 4)}
    const plan = planRoles(input)
    assert.equal(plan.newMasters.length, 2, '16 nodes / 2 = 8 masters: 2 new')
    assertRoles(input, plan, true)
    const movedExisting = plan.attach.filter((a) => input.replicas.some((r) => r.id === a.replica)).length
    assert.ok(movedExisting <= 2, `${movedExisting} existing replicas re-attached`)
  })

  it('scale-in: replicas of leaving masters re-attached host-disjointly, the rest kept', () => {
    const input = formed(4, 4, 1)
    const gone = 'h3'
    const leaving = new Set([...input.masters, ...input.replicas].filter((n) => n.host === gone).map((n) => n.id))
    const staying: RoleInput = {
      replicasPerMaster: 1,
      masters: input.masters.filter((m) => !leaving.has(m.id)),
      replicas: input.replicas.filter((r) => !leaving.has(r.id)),
      spare: [],
    }
    const plan = planRoles(staying)
    assertRoles(staying, plan, true)
    const orphans = staying.replicas
      .filter((r) => leaving.has(r.master!))
      .map((r) => r.id)
      .sort()
    for (const id of orphans)
      assert.ok(
        plan.attach.some((a) => a.replica === id),
        `${id} lost its master and must be re-attached`,
      )
  })

  it('reports the clashes a fleet cannot avoid (one host)', () => {
    const input = {...formed(1, 4, 1), spare: newHosts(0, 1, 6).slice(4)}
    const plan = planRoles(input)
    assertRoles(input, plan, false)
    assert.ok(plan.sharedHost.some((s) => s.sharesWith === 'master'))
    assert.match(plan.warnings.join(' '), /share a host with their master/)
  })

  it('keeps replicas host-disjoint for any fleet of equal hosts that allows it (property)', () => {
    fc.assert(
      fc.property(fc.integer({min: 3, max: 6}), fc.integer({min: 2, max: 6}), fc.integer({min: 1, max: 2}), fc.integer({min: 1, max: 3}), (hosts, perHost, replicas, added) => {
        fc.pre(hosts >= replicas + 1 && perHost * hosts >= replicas + 1)
        const input = {...formed(hosts, perHost, replicas), spare: newHosts(hosts, added, perHost)}
        const plan = planRoles(input)
        assertRoles(input, plan, hosts + added >= replicas + 2)
      }),
      {numRuns: 60},
    )
  })

  it('plans roles for 1000 masters in milliseconds', () => {
    const input = {...formed(10, 200, 1), spare: newHosts(10, 1, 200)}
    const t0 = process.hrtime.bigint()
    const plan = planRoles(input)
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    process.stdout.write(`# planRoles: ${input.masters.length + plan.newMasters.length} masters, ${Object.keys(plan.masterOf).length} replicas in ${ms.toFixed(1)} ms\n`)
    assertRoles(input, plan, true)
    assert.ok(ms < 2000, `took ${ms} ms`)
  })
})

const A = 'a'.repeat(40)
const B = 'b'.repeat(40)
const C = 'c'.repeat(40)

function view(v: Partial<OpenSlotView>): OpenSlotView {
  return {slot: 42, owners: [], migrating: [], importing: [], keys: {}, unreachable: [], ...v}
}

describe('decideOpenSlot (recovery after an interrupted move)', () => {
  const cases: Array<[string, Partial<OpenSlotView>, {action: string; from?: string | null; to?: string; stable?: string[]}]> = [
    ['both ends open: finish', {owners: [A], migrating: [{node: A, to: B}], importing: [{node: B, from: A}], keys: {[A]: 10, [B]: 3}}, {action: 'finish', from: A, to: B, stable: []}],
    [
      'both ends open, nothing moved yet: still finish (clients may write to the target)',
      {owners: [A], migrating: [{node: A, to: B}], importing: [{node: B, from: A}], keys: {[A]: 10, [B]: 0}},
      {action: 'finish', from: A, to: B},
    ],
    ['killed after IMPORTING, before MIGRATING: roll back', {owners: [A], importing: [{node: B, from: A}], keys: {[A]: 10, [B]: 0}}, {action: 'rollback', stable: [B]}],
    ['importing target already holds keys: finish', {owners: [A], importing: [{node: B, from: A}], keys: {[A]: 10, [B]: 2}}, {action: 'finish', from: A, to: B}],
    ['source migrating, target neither importing nor holding keys: roll back', {owners: [A], migrating: [{node: A, to: B}], keys: {[A]: 5, [B]: 0}}, {action: 'rollback', stable: [A]}],
    ['target took the slot, source still migrating: finish on the source', {owners: [A, B], migrating: [{node: A, to: B}], keys: {[A]: 0, [B]: 7}}, {action: 'finish', from: A, to: B, stable: []}],
    ['no owner, one importer: give it the slot', {owners: [], importing: [{node: B, from: A}], keys: {[B]: 1}}, {action: 'finish', from: null, to: B}],
    ['stale migrating on a node that does not own the slot: clear it', {owners: [A], migrating: [{node: C, to: B}], keys: {[A]: 1, [B]: 0, [C]: 0}}, {action: 'rollback', stable: [C]}],
  ]
  for (const [name, v, want] of cases) {
    it(name, () => {
      const d = decideOpenSlot(view(v))
      assert.equal(d.action, want.action, JSON.stringify(d))
      if (d.action === 'finish') {
        if ('from' in want) assert.equal(d.from, want.from)
        if (want.to) assert.equal(d.to, want.to)
        if (want.stable) assert.deepEqual(d.stable, want.stable)
      }
      if (d.action === 'rollback' && want.stable) assert.deepEqual(d.stable.sort(), want.stable.sort())
    })
  }

  it('leaves a slot alone while a node involved cannot be reached', () => {
    const d = decideOpenSlot(view({owners: [A], migrating: [{node: A, to: B}], importing: [{node: B, from: A}], keys: {[A]: 3}, unreachable: [B]}))
    assert.equal(d.action, 'stuck')
    assert.match(d.why, /cannot be reached/)
  })

  it('does not guess when keys sit on two non-owners', () => {
    const d = decideOpenSlot(
      view({
        owners: [A],
        importing: [
          {node: B, from: A},
          {node: C, from: A},
        ],
        keys: {[A]: 1, [B]: 1, [C]: 1},
      }),
    )
    assert.equal(d.action, 'stuck')
  })

  it('two owners with no move between them: Redis settles it, we do not', () => {
    assert.equal(decideOpenSlot(view({owners: [A, B], importing: [{node: C, from: A}]})).action, 'stuck')
  })
})
