import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {groupSlots} from '../../../src/load/routes.js'
import {failoverRefusal} from '../../../src/redis/sentinel-failover.js'
import {classifyView, currentMaster, parseReplication, parseRole, replicaViews, sentinelsNeeded, type GroupView, type SentinelView} from '../../../src/redis/sentinel-view.js'

const S = ['10.0.0.1:26379', '10.0.0.2:26379', '10.0.0.3:26379']
const M = '10.0.0.1:7000'
const R = '10.0.0.2:7000'

function group(o: Partial<GroupView> = {}): GroupView {
  return {
    name: 'redis-7000-7000',
    port: 7000,
    answers: S.map((sentinel) => ({sentinel, master: M})),
    master: M,
    roles: [
      {addr: M, role: 'master', offset: 100},
      {addr: R, role: 'replica', masterAddr: M, link: 'connected', offset: 100},
    ],
    replicas: [{addr: R, state: 'online', link: 'connected', lagBytes: 0, lagSeconds: 0, inSync: true}],
    ...o,
  }
}

function view(groups: GroupView[], down: number[] = []): SentinelView {
  return {groups, sentinels: S.map((addr, i) => (down.includes(i) ? {addr, reachable: false, error: 'refused'} : {addr, reachable: true})), quorum: 2, readAt: ''}
}

describe('sentinel view: classification', () => {
  it('all Sentinels agree, ROLE confirms, replica in sync: ok', () => {
    const h = classifyView(view([group()]))
    assert.equal(h.health, 'ok')
    assert.deepEqual(h.groups[0].reasons, [])
    assert.equal(h.quorumReachable, true)
    assert.deepEqual(currentMaster(view([group()]), 'redis-7000-7000'), {ip: '10.0.0.1', port: 7000})
  })

  it('Sentinels naming different masters: split, and no current master', () => {
    const g = group({
      answers: [
        {sentinel: S[0], master: M},
        {sentinel: S[1], master: R},
        {sentinel: S[2], master: M},
      ],
      master: undefined,
    })
    const h = classifyView(view([g]))
    assert.equal(h.health, 'split')
    assert.match(h.groups[0].reasons[0], /disagree.*10\.0\.0\.1:7000 \(10\.0\.0\.1:26379, 10\.0\.0\.3:26379\) vs 10\.0\.0\.2:7000/)
    assert.equal(currentMaster(view([g]), g.name), undefined)
  })

  it('two members that say master (an empty old master back as master): split', () => {
    const g = group({
      roles: [
        {addr: M, role: 'master'},
        {addr: R, role: 'master'},
      ],
      replicas: [{addr: R, inSync: false}],
    })
    assert.equal(classifyView(view([g])).health, 'split')
  })

  it('the named master says replica: split, not the current master', () => {
    const g = group({
      roles: [
        {addr: M, role: 'replica', masterAddr: R, link: 'connected'},
        {addr: R, role: 'master'},
      ],
    })
    const h = classifyView(view([g]))
    assert.equal(h.health, 'split')
    assert.ok(h.groups[0].reasons.some((r) => /name 10\.0\.0\.1:7000, but it says replica of 10\.0\.0\.2:7000/.test(r)))
    assert.equal(currentMaster(view([g]), g.name), undefined)
  })

  it('a Sentinel down: degraded, quorum still reachable with 2 of 3; two down: not', () => {
    const g = group({
      answers: [
        {sentinel: S[0], master: M},
        {sentinel: S[1], master: M},
        {sentinel: S[2], error: 'connection refused'},
      ],
    })
    const h = classifyView(view([g], [2]))
    assert.equal(h.health, 'degraded')
    assert.ok(h.groups[0].reasons.some((r) => r.includes('Sentinel 10.0.0.3:26379 did not answer')))
    assert.equal(h.quorumReachable, true)
    const g2 = group({
      answers: [
        {sentinel: S[0], master: M},
        {sentinel: S[1], error: 'x'},
        {sentinel: S[2], error: 'x'},
      ],
    })
    const h2 = classifyView(view([g2], [1, 2]))
    assert.equal(h2.quorumReachable, false)
    assert.ok(h2.groups[0].reasons.some((r) => /only 1 Sentinel\(s\) answer; a failover needs 2/.test(r)))
  })

  it('a lagging replica: degraded, with no replica in sync said', () => {
    const g = group({replicas: [{addr: R, state: 'online', lagBytes: 5000, lagSeconds: 30, inSync: false}]})
    const h = classifyView(view([g]))
    assert.equal(h.health, 'degraded')
    assert.ok(h.groups[0].reasons.some((r) => /30 s ago/.test(r)))
    assert.ok(h.groups[0].reasons.some((r) => /no replica in sync/.test(r)))
  })

  it('the worst group sets the whole view', () => {
    const bad = group({name: 'g2', replicas: [{addr: R, inSync: false}]})
    assert.equal(classifyView(view([group(), bad])).health, 'degraded')
  })

  it('a failover needs max(quorum, majority) Sentinels', () => {
    assert.equal(sentinelsNeeded(3, 2), 2)
    assert.equal(sentinelsNeeded(5, 1), 3)
    assert.equal(sentinelsNeeded(5, 4), 4)
  })
})

describe('sentinel view: parsing', () => {
  it('ROLE of a master and of a replica (5.0.3 says slave)', () => {
    assert.deepEqual(parseRole(M, ['master', 3129659, [['10.0.0.2', '7000', '3129242']]]), {addr: M, role: 'master', offset: 3129659})
    assert.deepEqual(parseRole(R, ['slave', '10.0.0.1', 7000, 'connected', 3167038]), {addr: R, role: 'replica', masterAddr: M, link: 'connected', offset: 3167038})
  })

  it('INFO replication: replicas with lag in bytes and seconds', () => {
    const text = 'role:master\r\nconnected_slaves:1\r\nslave0:ip=10.0.0.2,port=7000,state=online,offset=90,lag=1\r\nmaster_repl_offset:100\r\n'
    const repl = parseReplication(text)
    assert.deepEqual(repl, {offset: 100, replicas: [{addr: R, state: 'online', offset: 90, lag: 1}]})
    const roles = [{addr: R, role: 'replica', masterAddr: M, link: 'connected'}]
    assert.deepEqual(replicaViews(M, [M, R], roles, repl, undefined), [{addr: R, state: 'online', lagSeconds: 1, lagBytes: 10, link: 'connected', inSync: true}])
    // A member the master does not list, and one a Sentinel flags s_down, are not in sync.
    assert.equal(replicaViews(M, [M, R], roles, {offset: 100, replicas: []}, undefined)[0].inSync, false)
    assert.equal(replicaViews(M, [M, R], roles, repl, new Map([[R, ['s_down', 'slave']]]))[0].inSync, false)
  })
})

describe('failover refusals', () => {
  it('a healthy group may fail over', () => {
    assert.deepEqual(failoverRefusal(view([group()]), 'redis-7000-7000'), [])
  })
  it('no replica in sync, or Sentinels that disagree: refused, with why', () => {
    const lag = group({replicas: [{addr: R, state: 'online', lagSeconds: 30, inSync: false}]})
    assert.match(failoverRefusal(view([lag]), lag.name).join(), /no replica is in sync/)
    const split = group({
      answers: [
        {sentinel: S[0], master: M},
        {sentinel: S[1], master: R},
        {sentinel: S[2], master: M},
      ],
      master: undefined,
    })
    assert.match(failoverRefusal(view([split]), split.name).join(), /disagree/)
  })
})

describe('load: keys to groups', () => {
  it('the 16384 slots split into contiguous ranges in port order, covering all', () => {
    assert.deepEqual(
      [0, 1, 2].map((i) => groupSlots(i, 3)),
      [
        {start: 0, end: 5460},
        {start: 5461, end: 10921},
        {start: 10922, end: 16383},
      ],
    )
    assert.deepEqual(groupSlots(0, 1), {start: 0, end: 16383})
  })
})
