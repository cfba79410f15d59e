import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import fc from 'fast-check'
import {decideOpenSlot, downReason, migrateTiming, newPacer, nextBudget, resolveOpenSlot, takeRound, type NodeRole, type OpenSlotMarkers, type SlotKeys} from '../../../src/redis/migrate.js'
import {parseClusterNodes} from '../../../src/redis/nodes.js'

// The pure parts of moving slots: MIGRATE timing from cluster-node-timeout, the byte
// budget of a round, and open-slot recovery after a failover of one end of a move.

const keysOf = (slot: number, sizes: number[]): SlotKeys => ({slot, keys: sizes.map((_, i) => Buffer.from(`k${slot}-${i}`)), sizes})

describe('migrateTiming', () => {
  it('keeps MIGRATE below half the node timeout and below the client timeout', () => {
    fc.assert(
      fc.property(fc.integer({min: 500, max: 600_000}), fc.integer({min: 5_000, max: 120_000}), (nt, client) => {
        const t = migrateTiming(nt, client)
        assert.ok(t.migrateTimeoutMs < nt / 2 || t.migrateTimeoutMs === 100, `${t.migrateTimeoutMs} vs node timeout ${nt}`)
        assert.ok(t.migrateTimeoutMs * t.maxMigratesPerRound < client, `${t.maxMigratesPerRound} × ${t.migrateTimeoutMs} vs client ${client}`)
        assert.ok(t.roundTargetMs <= nt / 10 || t.roundTargetMs === 20)
      }),
    )
  })

  it('the old fixed 60 s against the defaults: now 2 s for the playbook default of 5000 ms', () => {
    const t = migrateTiming(5000, 30_000)
    assert.equal(t.migrateTimeoutMs, 2000)
    assert.equal(t.roundTargetMs, 500)
    assert.equal(t.maxMigratesPerRound, 14)
    assert.equal(migrateTiming(NaN, 30_000).nodeTimeoutMs, 15_000, 'unknown: Redis default')
  })
})

describe('takeRound', () => {
  it('1000 keys of 1 MB: one key per round under a 1 MB budget, never 1000 at once', () => {
    const q = [keysOf(7, Array(1000).fill(1 << 20))]
    const r = takeRound(q, 1 << 20, 1000, 14)
    assert.equal(r.calls.length, 1)
    assert.equal(r.calls[0].keys.length, 1)
    assert.equal(r.rest[0].keys.length, 999)
  })

  it('a key bigger than the budget still moves, alone', () => {
    const r = takeRound([keysOf(1, [10 << 20, 5]), keysOf(2, [5])], 1 << 20, 1000, 14)
    assert.deepEqual(
      r.calls.map((c) => [c.slot, c.keys.length]),
      [[1, 1]],
    )
    assert.deepEqual(
      r.rest.map((x) => [x.slot, x.keys.length]),
      [
        [1, 1],
        [2, 1],
      ],
    )
  })

  it('small keys: one MIGRATE per slot, at most maxKeys each and maxCalls per round', () => {
    const q = Array.from({length: 32}, (_, i) => keysOf(i, Array(1500).fill(100)))
    const r = takeRound(q, 1 << 30, 1000, 14)
    assert.equal(r.calls.length, 14)
    assert.ok(r.calls.every((c) => c.keys.length === 1000))
    assert.equal(r.rest.length, 32)
  })

  it('every key is taken exactly once over the rounds, each round within budget unless one key alone', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.integer({min: 0, max: 5000}), {minLength: 1, maxLength: 40}), {minLength: 1, maxLength: 10}),
        fc.integer({min: 1, max: 20_000}),
        fc.integer({min: 1, max: 50}),
        fc.integer({min: 1, max: 8}),
        (slots, budget, maxKeys, maxCalls) => {
          let q = slots.map((s, i) => keysOf(i, s))
          const seen: string[] = []
          for (let n = 0; q.length > 0; n++) {
            assert.ok(n < 100_000)
            const r = takeRound(q, budget, maxKeys, maxCalls)
            assert.ok(r.calls.length >= 1 && r.calls.length <= maxCalls)
            assert.ok(r.bytes <= budget || (r.calls.length === 1 && r.calls[0].keys.length === 1))
            for (const c of r.calls) {
              assert.ok(c.keys.length <= maxKeys)
              seen.push(...c.keys.map(String))
            }
            q = r.rest
          }
          assert.deepEqual(seen.sort(), slots.flatMap((s, i) => s.map((_, j) => `k${i}-${j}`)).sort())
        },
      ),
    )
  })
})

describe('nextBudget', () => {
  const p = newPacer(migrateTiming(5000, 30_000))
  it('follows the link: a slow link shrinks the budget towards rate × target', () => {
    // 1 MB took 2 s: 512 bytes/ms × 500 ms = 256 KB.
    assert.equal(nextBudget(p, 1 << 20, 2000), 256 << 10)
  })
  it('changes at most 4× per round and stays within its bounds', () => {
    assert.equal(nextBudget(p, 1 << 20, 1), 4 << 20)
    assert.equal(nextBudget({...p, budget: 100 << 10}, 100 << 10, 100_000), 64 << 10)
    assert.equal(nextBudget({...p, budget: 32 << 20}, 32 << 20, 1), 32 << 20)
    assert.equal(nextBudget(p, 0, 5), p.budget)
  })
})

const S = 'a'.repeat(40)
const T = 'b'.repeat(40)
const T2 = 'c'.repeat(40)
const S2 = 'd'.repeat(40)
const master = (slotCount = 1): NodeRole => ({master: true, masterId: null, reachable: true, fail: false, slotCount})
const replicaOf = (m: string): NodeRole => ({master: false, masterId: m, reachable: true, fail: false, slotCount: 0})

function decide(m: OpenSlotMarkers, roles: Record<string, NodeRole>, keys: Record<string, number>) {
  const v = resolveOpenSlot(m, new Map(Object.entries(roles)))
  return {v, d: decideOpenSlot({...v, keys, unreachable: []})}
}

describe('open slots after a failover', () => {
  it('the target failed over (case 5): keys are counted on, and the move finished to, the promoted replica', () => {
    // S migrating to T; T is a replica of T2 now (its IMPORTING went with its role).
    const {v, d} = decide({slot: 5, owners: [S], migrating: [{node: S, to: T}], importing: []}, {[S]: master(), [T]: replicaOf(T2), [T2]: master()}, {[S]: 10, [T2]: 4})
    assert.deepEqual(v.migrating, [{node: S, to: T2}])
    assert.equal(d.action, 'finish')
    assert.equal(d.action === 'finish' && d.to, T2)
    assert.equal(d.action === 'finish' && d.from, S)
    assert.match(d.why, /replica of cccccccc now/)
  })

  it('before: counted on the old target (a replica), the move was finished to it (SETSLOT on a replica fails every run)', () => {
    const d = decideOpenSlot({slot: 5, owners: [S], migrating: [{node: S, to: T}], importing: [], keys: {[S]: 10, [T]: 4}, unreachable: []})
    assert.equal(d.action === 'finish' && d.to, T)
  })

  it('the target failed over and no key had moved: rolled back', () => {
    const {d} = decide({slot: 5, owners: [S], migrating: [{node: S, to: T}], importing: []}, {[S]: master(), [T]: replicaOf(T2), [T2]: master()}, {[S]: 10, [T2]: 0})
    assert.equal(d.action, 'rollback')
  })

  it('the source failed over: the target imports from the promoted replica, which owns the slot', () => {
    const {v, d} = decide({slot: 9, owners: [S2], migrating: [], importing: [{node: T, from: S}]}, {[S]: replicaOf(S2), [S2]: master(), [T]: master()}, {[S2]: 3, [T]: 2})
    assert.deepEqual(v.importing, [{node: T, from: S2}])
    assert.equal(d.action === 'finish' && `${d.from}>${d.to}`, `${S2}>${T}`)
  })

  it('the source failed (down, marked fail, slots taken over): its marker is ignored, the owner finishes the move', () => {
    const {d} = decide(
      {slot: 9, owners: [S2], migrating: [], importing: [{node: T, from: S}]},
      {[S]: {master: true, masterId: null, reachable: false, fail: true, slotCount: 0}, [S2]: master(), [T]: master()},
      {[S2]: 3, [T]: 2},
    )
    assert.equal(d.action === 'finish' && `${d.from}>${d.to}`, `${S2}>${T}`)
    assert.match(d.why, /failed and serves no slot/)
  })

  it('the target failed and was taken over: nothing links it to its successor, the slot stays open and named', () => {
    const {d} = decide({slot: 3, owners: [S], migrating: [{node: S, to: T}], importing: []}, {[S]: master(), [T]: {master: true, masterId: null, reachable: false, fail: true, slotCount: 0}}, {[S]: 1})
    assert.equal(d.action, 'stuck')
    assert.match(d.why, /target bbbbbbbb failed/)
  })

  it('a role it cannot reason about (a replica of a replica, an unknown id, a marker on a replica) is stuck', () => {
    assert.equal(decide({slot: 1, owners: [S], migrating: [{node: S, to: T}], importing: []}, {[S]: master(), [T]: replicaOf(T2), [T2]: replicaOf(S)}, {}).d.action, 'stuck')
    assert.equal(decide({slot: 1, owners: [S], migrating: [{node: S, to: T}], importing: []}, {[S]: master()}, {}).d.action, 'stuck')
    assert.equal(decide({slot: 1, owners: [S], migrating: [{node: S, to: T}], importing: []}, {[S]: replicaOf(T), [T]: master()}, {}).d.action, 'stuck')
  })

  it('no failover: the markers are kept as they are', () => {
    const m: OpenSlotMarkers = {slot: 2, owners: [S], migrating: [{node: S, to: T}], importing: [{node: T, from: S}]}
    const v = resolveOpenSlot(
      m,
      new Map([
        [S, master()],
        [T, master(0)],
      ]),
    )
    assert.deepEqual({...v}, {...m})
  })
})

describe('downReason', () => {
  const line = (id: string, port: number, flags: string, slots: string, extra = '') => `${id} 10.0.0.1:${port}@${port + 10000} ${flags} - 0 0 1 connected ${slots}${extra}`.trim()
  it('names slots a failed node still serves in the map of a node importing them', () => {
    const text = [
      line('a'.repeat(40), 7000, 'myself,master', '0-5460', ` [12000-<-${'c'.repeat(40)}]`),
      line('b'.repeat(40), 7001, 'master', '5461-10922'),
      line('c'.repeat(40), 7002, 'master,fail', '12000'),
      line('d'.repeat(40), 7003, 'master', '10923-11999 12001-16383'),
    ].join('\n')
    assert.equal(downReason(parseClusterNodes(text)), 'slot(s) 12000 served by failed node 10.0.0.1:7002; importing 12000')
  })
  it('names unassigned slots and a lost quorum; nothing when the map is whole', () => {
    const whole = [line('a'.repeat(40), 7000, 'myself,master', '0-8191'), line('b'.repeat(40), 7001, 'master', '8192-16383')]
    assert.equal(downReason(parseClusterNodes(whole.join('\n'))), '')
    const gap = [line('a'.repeat(40), 7000, 'myself,master', '0-8191'), line('b'.repeat(40), 7001, 'master,fail?', '8192-16380')]
    assert.equal(downReason(parseClusterNodes(gap.join('\n'))), 'slot(s) 16381, 16382, 16383 unassigned; 1 of 2 slot-serving masters unreachable (10.0.0.1:7001)')
  })
})
