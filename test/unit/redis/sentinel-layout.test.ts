import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {InputError} from '../../../src/errors.js'
import {planSentinelLayout, type SentinelLayoutInput} from '../../../src/redis/sentinel-layout.js'

const hosts = (n: number, base = 10) => Array.from({length: n}, (_, i) => ({host: `h${i + 1}`, ip: `10.0.0.${base + i}`}))
const input = (o: Partial<SentinelLayoutInput> = {}): SentinelLayoutInput => ({
  clusterName: 'redis-7000',
  data: hosts(3),
  sentinels: hosts(3),
  haproxy: [],
  portStart: 7000,
  groups: 2,
  replicas: 1,
  sentinelPort: 26379,
  ...o,
})

describe('planSentinelLayout', () => {
  it('places group i on port start+i, its master on host i mod H and replicas on the next hosts', () => {
    const l = planSentinelLayout(input({groups: 4}))
    assert.deepEqual(
      l.groups.map((g) => [g.name, g.port, g.master.host, g.replicas.map((r) => r.host).join(',')]),
      [
        ['redis-7000-7000', 7000, 'h1', 'h2'],
        ['redis-7000-7001', 7001, 'h2', 'h3'],
        ['redis-7000-7002', 7002, 'h3', 'h1'],
        ['redis-7000-7003', 7003, 'h1', 'h2'],
      ],
    )
    assert.deepEqual(Object.fromEntries(l.portsByHost), {h1: [7000, 7002, 7003], h2: [7000, 7001, 7003], h3: [7001, 7002]})
    assert.equal(l.quorum, 2)
    assert.deepEqual(
      l.groups.map((g) => [g.writePort, g.readPort]),
      [
        [7000, undefined],
        [7001, undefined],
        [7002, undefined],
        [7003, undefined],
      ],
    )
  })

  it('never puts two members of a group on one host', () => {
    for (const h of [2, 3, 5]) {
      for (let r = 0; r < h; r++) {
        for (const g of planSentinelLayout(input({data: hosts(h), groups: 7, replicas: r})).groups) {
          const on = [g.master, ...g.replicas].map((m) => m.host)
          assert.equal(new Set(on).size, on.length)
        }
      }
    }
  })

  it('HAProxy write and read frontends follow their own port starts', () => {
    const l = planSentinelLayout(input({haproxyPortStart: 6000, haproxyReadPortStart: 6100}))
    assert.deepEqual(
      l.groups.map((g) => [g.writePort, g.readPort]),
      [
        [6000, 6100],
        [6001, 6101],
      ],
    )
  })

  it('refuses what cannot be placed or cannot fail over, with the fix', () => {
    assert.throws(
      () => planSentinelLayout(input({replicas: 3})),
      (e: unknown) => e instanceof InputError && /redis_replicas is 3/.test(e.message) && /≤ 2/.test(String(e.hint)),
    )
    assert.throws(
      () => planSentinelLayout(input({sentinels: hosts(2)})),
      (e: unknown) => e instanceof InputError && /2 Sentinel host\(s\)/.test(e.message),
    )
    assert.equal(planSentinelLayout(input({sentinels: hosts(1), forceFewSentinels: true})).quorum, 1)
    assert.throws(
      () => planSentinelLayout(input({quorum: 4})),
      (e: unknown) => e instanceof InputError && /quorum is 4/.test(e.message) && /between 1 and 3/.test(String(e.hint)),
    )
    assert.throws(() => planSentinelLayout(input({groups: 0})), InputError)
    assert.equal(planSentinelLayout(input({sentinels: hosts(5)})).quorum, 3)
  })
})
