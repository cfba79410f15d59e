import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {MANIFEST_FORMAT, type Manifest, type ManifestFile} from '../../../src/redis/backup-manifest.js'
import {parseClusterNodes} from '../../../src/redis/nodes.js'
import {factProblems, placePlan, type NodeFacts} from '../../../src/redis/restore-place.js'

const id = (c: string) => c.repeat(40)

function file(name: string, ranges: Array<[number, number]>, rdbVersion = 10): ManifestFile {
  return {
    file: name,
    sha256: 'a'.repeat(64),
    bytes: 1,
    rdbVersion,
    masterId: id('z'),
    nodeId: id('z'),
    node: '10.0.0.9:7000',
    role: 'master',
    redisVersion: '7.0.15',
    snapshotAt: '2026-01-01T00:00:00.000Z',
    keys: 0,
    expires: 0,
    ranges: ranges.map(([from, to]) => ({from, to, keys: 0})),
  }
}

const manifest = (files: ManifestFile[]): Manifest => ({format: MANIFEST_FORMAT, cluster: 'c', createdAt: '', redisVersion: '7.0.15', shape: {masters: files.length, replicas: 0}, nodes: [], files})

// Two masters (one with two ranges), each with a replica.
const VIEW = parseClusterNodes(
  [
    `${id('a')} 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5000 10000-12000`,
    `${id('b')} 10.0.0.2:7000@17000 master - 0 0 2 connected 5001-9999 12001-16383`,
    `${id('c')} 10.0.0.2:7001@17001 slave ${id('a')} 0 0 1 connected`,
    `${id('d')} 10.0.0.1:7001@17001 slave ${id('b')} 0 0 2 connected`,
  ].join('\n'),
)
const INV = new Set(['10.0.0.1:7000', '10.0.0.2:7000', '10.0.0.2:7001', '10.0.0.1:7001'])
const SAME = manifest([
  file('s1.rdb', [
    [5001, 9999],
    [12001, 16383],
  ]),
  file('s0.rdb', [
    [0, 5000],
    [10000, 12000],
  ]),
])

describe('placePlan (same-shape restore)', () => {
  it('maps each file onto the master with exactly its ranges, with that master’s replicas', () => {
    const p = placePlan(SAME, VIEW, {targetKeys: 0, inventory: INV})
    assert.ok(p.shards, p.reason)
    assert.deepEqual(
      p.shards.map((s) => [s.file.file, s.master.addr, s.replicas.map((r) => r.addr)]),
      [
        ['s1.rdb', '10.0.0.2:7000', ['10.0.0.1:7001']],
        ['s0.rdb', '10.0.0.1:7000', ['10.0.0.2:7001']],
      ],
    )
  })

  it('streams instead, saying why: another shape, ranges not exact, a non-empty target, a node outside the inventory, a failing node', () => {
    const why = (m: Manifest, o: Partial<{targetKeys: number; inventory: Set<string>}> = {}, view = VIEW) => {
      const p = placePlan(m, view, {targetKeys: 0, inventory: INV, ...o})
      assert.equal(p.shards, undefined)
      return p.reason
    }
    assert.match(why(manifest([file('x.rdb', [[0, 16383]])])), /the target has 2 masters, the backup 1 files/)
    assert.match(why(manifest([file('s0.rdb', [[0, 5000]]), file('s1.rdb', [[5001, 16383]])])), /no target master serves exactly the slots of s0.rdb \(0-5000\)/)
    assert.match(why(SAME, {targetKeys: 3}), /the target holds 3 keys: placing the files would drop/)
    assert.match(why(SAME, {inventory: new Set([...INV].slice(1))}), /10.0.0.1:7000 \(shard of s0.rdb\) is not in the inventory/)
    const failing = VIEW.map((e) => (e.addr === '10.0.0.2:7001' ? {...e, pfail: true, flags: [...e.flags, 'fail?']} : e))
    assert.match(why(SAME, {}, failing), /10.0.0.2:7001 \(shard of s0.rdb\) is not healthy/)
  })

  it('live facts: appendonly yes or a Redis too old for the RDB format refuse the placing', () => {
    const p = placePlan(
      manifest([
        file(
          's0.rdb',
          [
            [0, 5000],
            [10000, 12000],
          ],
          10,
        ),
        file(
          's1.rdb',
          [
            [5001, 9999],
            [12001, 16383],
          ],
          10,
        ),
      ]),
      VIEW,
      {targetKeys: 0, inventory: INV},
    )
    const facts = new Map<string, NodeFacts>(
      VIEW.map((e) => [e.addr, {addr: e.addr, version: '7.0.15', dir: `/root/redis_cluster/${e.port}`, dbfilename: 'dump.rdb', appendonly: false, bin: '/root/redis/7.0.15/bin'}]),
    )
    assert.deepEqual(factProblems(p.shards!, facts), [])
    facts.set('10.0.0.1:7001', {...facts.get('10.0.0.1:7001')!, appendonly: true})
    facts.set('10.0.0.2:7000', {...facts.get('10.0.0.2:7000')!, version: '5.0.3'})
    assert.deepEqual(factProblems(p.shards!, facts), [
      '10.0.0.2:7000 runs Redis 5.0.3, which cannot load RDB format 10 (s1.rdb)',
      '10.0.0.1:7001 runs with appendonly yes: on start Redis loads its AOF, not a placed RDB',
    ])
  })
})
