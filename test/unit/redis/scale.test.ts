import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {parseClusterNodes} from '../../../src/redis/nodes.js'
import {failsOnlyOnImports, planHeadroom, removalBlockers, type MemoryInfo} from '../../../src/redis/scale.js'

// The pure checks of scale-in: the receivers' memory headroom before a drain, and which
// leaving nodes may be reset and stopped.

const MB = 1 << 20
const mem = (used: number, maxmemory: number, keys: number, policy = 'allkeys-lru'): MemoryInfo => ({used: used * MB, startup: 1 * MB, notCounted: 0, maxmemory: maxmemory * MB, policy, keys})

describe('planHeadroom', () => {
  it('a receiver close to maxmemory that would receive half a leaving master is named with its bytes', () => {
    const m = new Map([
      ['L', mem(25, 32, 24_000)],
      ['A', mem(25, 32, 24_000)],
      ['B', mem(10, 32, 9_000)],
    ])
    const short = planHeadroom(
      [
        {from: 'L', to: 'A', keys: 12_000},
        {from: 'L', to: 'B', keys: 12_000},
      ],
      m,
    )
    assert.deepEqual(
      short.map((s) => s.id),
      ['A'],
    )
    assert.equal(short[0].incoming, 12 * MB)
    assert.equal(short[0].maxmemory, 32 * MB)
  })

  it('no maxmemory, or enough of it: nothing to refuse', () => {
    assert.deepEqual(
      planHeadroom(
        [{from: 'L', to: 'A', keys: 100}],
        new Map([
          ['L', mem(500, 0, 100)],
          ['A', mem(500, 0, 100)],
        ]),
      ),
      [],
    )
    assert.deepEqual(
      planHeadroom(
        [{from: 'L', to: 'A', keys: 100}],
        new Map([
          ['L', mem(11, 0, 100)],
          ['A', mem(5, 32, 100)],
        ]),
      ),
      [],
    )
  })

  it('several sources add up on one receiver; output buffers do not count', () => {
    const m = new Map([
      ['L1', mem(9, 0, 10)],
      ['L2', mem(9, 0, 10)],
      ['A', {...mem(20, 32, 10), notCounted: 2 * MB}],
    ])
    assert.deepEqual(planHeadroom([{from: 'L1', to: 'A', keys: 10}], m), [])
    const s = planHeadroom(
      [
        {from: 'L1', to: 'A', keys: 10},
        {from: 'L2', to: 'A', keys: 10},
      ],
      m,
    )
    assert.equal(s.length, 1)
    assert.equal(s[0].used, 18 * MB)
    assert.equal(s[0].incoming, 16 * MB)
  })
})

describe('removalBlockers', () => {
  const staying = new Map([
    ['A', {master: true, slotCount: 8192}],
    ['E', {master: true, slotCount: 0}],
    ['R', {master: false, slotCount: 0}],
  ])
  const node = (o: Partial<Parameters<typeof removalBlockers>[0][0]>) => ({id: 'x', addr: '192.0.2.1:7000', master: true, masterId: null, keys: 0, reachable: true, ...o})

  it('an empty drained master, and a replica of a staying master (its keys are copies), may go', () => {
    assert.deepEqual(removalBlockers([node({}), node({master: false, masterId: 'A', keys: 500})], staying), [])
  })

  it('a master still holding keys, a replica of no staying master, an unreadable DBSIZE: refused', () => {
    assert.equal(removalBlockers([node({keys: 3})], staying).length, 1)
    assert.equal(removalBlockers([node({master: false, masterId: 'E', keys: 3})], staying).length, 1)
    assert.equal(removalBlockers([node({master: false, masterId: 'gone', keys: 3})], staying).length, 1)
    assert.equal(removalBlockers([node({keys: -1})], staying).length, 1)
  })

  it('an unreachable leaving node is only forgotten', () => {
    assert.deepEqual(removalBlockers([node({keys: 0, reachable: false})], staying), [])
  })
})

describe('failsOnlyOnImports', () => {
  const S = 'a'.repeat(40)
  const T = 'b'.repeat(40)
  const R = 'c'.repeat(40)
  // T imports 100-101 from S, which failed; R (S's replica) took S's other slots, but
  // T keeps S as the owner of what it imports.
  const view = (importing: string) =>
    parseClusterNodes(
      [
        `${T} 192.0.2.2:7000@17000 myself,master - 0 0 2 connected 0-99 102-8191${importing}`,
        `${S} 192.0.2.1:7000@17000 master,fail - 0 0 1 disconnected 100-101`,
        `${R} 192.0.2.3:7000@17000 master - 0 0 3 connected 8192-16383`,
      ].join('\n'),
    )
  it('cluster_state:fail only over the slots it imports from a failed node: the open slot itself', () => {
    assert.equal(failsOnlyOnImports(view(` [100-<-${S}] [101-<-${S}]`)), true)
  })
  it('any other failed or unserved slot: a real failure, wait', () => {
    assert.equal(failsOnlyOnImports(view(` [100-<-${S}]`)), false)
    assert.equal(failsOnlyOnImports(view('')), false)
  })
})
