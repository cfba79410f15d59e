import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {planSentinelLayout} from '../../../src/redis/sentinel-layout.js'
import {describeRetire, ourName, planRetire, retireByIp, type SentinelKnows} from '../../../src/redis/sentinel-retire.js'

const hosts = (n: number) => Array.from({length: n}, (_, i) => ({host: `h${i + 1}`, ip: `10.0.0.${10 + i}`}))
const layout = (groups: number, replicas: number, sentinels = hosts(3)) =>
  planSentinelLayout({clusterName: 'redis-7000', data: hosts(3), sentinels, haproxy: [], portStart: 7000, groups, replicas, sentinelPort: 26379})

/** A Sentinel that knows every group of `l` with these extra replicas/Sentinels. */
function knows(
  l: ReturnType<typeof layout>,
  o: {extraReplica?: Record<string, string[]>; extraSentinels?: string[]; groups?: Array<[string, string, string[]]>; master?: Record<string, string>} = {},
): SentinelKnows {
  const k: SentinelKnows = {addr: '10.0.0.10:26379', masters: new Map(), replicas: new Map(), sentinels: new Map()}
  for (const g of l.groups) {
    k.masters.set(g.name, o.master?.[g.name] ?? `${g.master.ip}:${g.port}`)
    k.replicas.set(g.name, [...g.replicas.map((r) => `${r.ip}:${g.port}`), ...(o.extraReplica?.[g.name] ?? [])])
    k.sentinels.set(g.name, ['10.0.0.11:26379', '10.0.0.12:26379', ...(o.extraSentinels ?? [])])
  }
  for (const [name, master, reps] of o.groups ?? []) {
    k.masters.set(name, master)
    k.replicas.set(name, reps)
    k.sentinels.set(name, [])
  }
  k.masters.set('someone-else-7000', '10.0.0.99:7000')
  return k
}

describe('planRetire', () => {
  it('a healthy deployment: nothing goes, nothing to reset', () => {
    const l = layout(2, 1)
    const p = planRetire(l, 'redis-7000', [knows(l)])
    assert.deepEqual(p, {groups: [], replicas: [], sentinels: [], reset: [], masterGoes: []})
  })

  it('redis_replicas lowered: the replica the layout no longer has goes, its group is reset', () => {
    const l = layout(2, 1)
    const p = planRetire(l, 'redis-7000', [knows(l, {extraReplica: {'redis-7000-7000': ['10.0.0.12:7000']}})])
    assert.deepEqual(p.replicas, [{group: 'redis-7000-7000', addr: '10.0.0.12:7000'}])
    assert.deepEqual(p.reset, ['redis-7000-7000'])
    assert.deepEqual([...retireByIp(p)], [['10.0.0.12', {ports: [7000], sentinel: false}]])
  })

  it('the current master is a member that goes (after a failover): masterGoes, never a replica to stop', () => {
    const l = layout(1, 1)
    const p = planRetire(l, 'redis-7000', [knows(l, {master: {'redis-7000-7000': '10.0.0.12:7000'}})])
    assert.deepEqual(p.masterGoes, [{group: 'redis-7000-7000', addr: '10.0.0.12:7000'}])
  })

  it('a Sentinel out of the Sentinel group: every group is reset; a group past redis_sentinel_groups goes whole; other names are not ours', () => {
    const l = layout(1, 1)
    const p = planRetire(l, 'redis-7000', [knows(l, {extraSentinels: ['10.0.0.13:26379'], groups: [['redis-7000-7001', '10.0.0.11:7001', ['10.0.0.12:7001']]]})])
    assert.deepEqual(p.sentinels, ['10.0.0.13:26379'])
    assert.deepEqual(p.reset, ['redis-7000-7000'])
    assert.deepEqual(p.groups, [{name: 'redis-7000-7001', port: 7001, master: '10.0.0.11:7001', members: ['10.0.0.11:7001', '10.0.0.12:7001']}])
    assert.equal(ourName('redis-7000', 'someone-else-7000'), false)
    assert.deepEqual(describeRetire(p, new Map([['redis-7000-7001', 5]])), [
      'group redis-7000-7001 removed (10.0.0.11:7001, 10.0.0.12:7001; DBSIZE 5)',
      'Sentinel 10.0.0.13:26379 removed',
      'SENTINEL RESET redis-7000-7000 on each remaining Sentinel, one at a time',
    ])
  })
})
