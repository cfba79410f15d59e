import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import fc from 'fast-check'
import {NodeIds} from '../../../src/redis/nodes.js'
import {
  FORMING_TIMEOUT_FLOOR_MS,
  MESH_MAX,
  MESH_SEEDS,
  declaredNodeTimeouts,
  driftProblems,
  driftSummary,
  formingNodeTimeoutMs,
  freshMeets,
  freshNode,
  meetPairs,
  timeoutDrift,
} from '../../../src/redis/node-timeout.js'
import {probeFromText, type NodeProbe, type NodeProbeOk} from '../../../src/redis/status.js'

const id = (port: number) => port.toString(16).padStart(40, '0')

// One node's probe as the pool builds it: its own line, plus `peers` other lines.
function probe(port: number, o: {slots?: string; epoch?: number; keys?: number; peers?: number; host?: string; timeout?: number} = {}): NodeProbeOk {
  const lines = [`${id(port)} 127.0.0.1:${port}@${port + 10000} myself,master - 0 0 ${o.epoch ?? 0} connected${o.slots ? ` ${o.slots}` : ''}`]
  for (let k = 1; k <= (o.peers ?? 0); k++) lines.push(`${id(port + 100 * k)} 127.0.0.1:${port + 100 * k}@${port + 100 * k + 10000} master - 0 0 ${k} connected`)
  const p = probeFromText({host: o.host ?? 'h1', ip: '127.0.0.1', port}, `127.0.0.1:${port}`, {cluster_state: 'fail'}, lines.join('\n'), o.keys ?? 0, new NodeIds(), new Set())
  if (o.timeout !== undefined) p.nodeTimeoutMs = o.timeout
  return p
}

describe('formingNodeTimeoutMs: the short timeout scales with the bus traffic (N²)', () => {
  it('is the floor for small fleets, grows with N², and is never the declared value or more', () => {
    assert.equal(formingNodeTimeoutMs(8, 5000), 1000)
    assert.equal(formingNodeTimeoutMs(20, 5000), 1000)
    assert.equal(formingNodeTimeoutMs(100, 5000), 1000)
    assert.equal(formingNodeTimeoutMs(200, 5000), 3980)
    // 250 nodes would need 6225 ms: not shorter than 5000, nothing to gain.
    assert.equal(formingNodeTimeoutMs(250, 5000), undefined)
    assert.equal(formingNodeTimeoutMs(250, 15000), 6225)
    assert.equal(formingNodeTimeoutMs(8, 1000), undefined)
    assert.equal(formingNodeTimeoutMs(8, undefined), undefined)
  })

  it('keeps the fleet within the ping budget at any size (2·N·(N-1)/timeout pings/s)', () => {
    fc.assert(
      fc.property(fc.integer({min: 1, max: 2000}), fc.integer({min: 100, max: 3_600_000}), (n, declared) => {
        const ms = formingNodeTimeoutMs(n, declared)
        if (ms === undefined) return
        assert.ok(ms >= FORMING_TIMEOUT_FLOOR_MS && ms < declared)
        assert.ok((2 * n * (n - 1)) / (ms / 1000) <= 20_000 + 1e-9)
      }),
    )
  })
})

describe('freshNode: only nodes that hold nothing form under the short timeout', () => {
  it('accepts an alone, empty node and refuses one with slots, keys, an epoch or a peer', () => {
    assert.equal(freshNode(probe(7000)), true)
    assert.equal(freshNode(probe(7000, {slots: '0-99'})), false)
    assert.equal(freshNode(probe(7000, {keys: 3})), false)
    assert.equal(freshNode(probe(7000, {epoch: 4})), false)
    assert.equal(freshNode(probe(7000, {peers: 1})), false)
  })
})

describe('meetPairs: who MEETs whom on a fresh formation', () => {
  const addrs = (n: number) => Array.from({length: n}, (_, i) => `10.0.0.${1 + (i % 3)}:${7000 + i}`)
  const key = ([a, b]: [string, string]) => [a, b].sort().join(' ')

  it('up to MESH_MAX nodes: every unordered pair exactly once, ~N/2 MEETs sent per node', () => {
    fc.assert(
      fc.property(fc.integer({min: 1, max: 60}), (n) => {
        const list = addrs(n)
        const pairs = meetPairs(list, list[0])
        assert.equal(pairs.length, (n * (n - 1)) / 2)
        assert.equal(new Set(pairs.map(key)).size, pairs.length, 'no pair twice')
        assert.ok(pairs.every(([a, b]) => a !== b))
        const sent = new Map<string, number>()
        for (const [a] of pairs) sent.set(a, (sent.get(a) ?? 0) + 1)
        for (const a of list) assert.ok((sent.get(a) ?? 0) <= Math.ceil(n / 2), `${a} sends ${sent.get(a)}`)
      }),
    )
    const at = meetPairs(addrs(MESH_MAX), addrs(MESH_MAX)[0])
    assert.equal(at.length, (MESH_MAX * (MESH_MAX - 1)) / 2)
    for (const n of [1, 2, 20, MESH_MAX, MESH_MAX + 1, 1000]) assert.equal(freshMeets(n), meetPairs(addrs(n), addrs(n)[0]).length, `${n} nodes`)
  })

  it('above MESH_MAX: every node MEETs the same MESH_SEEDS seeds (the planned seed among them), which MEET each other', () => {
    const n = MESH_MAX + 50
    const list = addrs(n)
    const pairs = meetPairs(list, list[7])
    const seeds = new Set(pairs.filter(([a]) => a === list[0]).map(([, b]) => b))
    assert.equal(seeds.size, MESH_SEEDS)
    assert.ok(seeds.has(list[7]))
    for (const a of list) {
      const peers = new Set(pairs.filter(([x, y]) => x === a || y === a).map(([x, y]) => (x === a ? y : x)))
      for (const s of seeds) if (s !== a) assert.ok(peers.has(s), `${a} does not meet seed ${s}`)
    }
    assert.equal(pairs.length, (MESH_SEEDS * (MESH_SEEDS - 1)) / 2 + (n - MESH_SEEDS) * MESH_SEEDS)
  })
})

describe('timeoutDrift: runtime cluster-node-timeout against the declared one', () => {
  const declared = declaredNodeTimeouts([
    {host: 'h1', vars: {redis_cluster_node_timeout: 5000}},
    {host: 'h2', vars: {redis_cluster_node_timeout: '7000'}},
    {host: 'h3', vars: {}},
  ])

  it('reads each host its own value, and none where the variable is not set', () => {
    assert.equal(declared({host: 'h1', ip: '', port: 1}), 5000)
    assert.equal(declared({host: 'h2', ip: '', port: 1}), 7000)
    assert.equal(declared({host: 'h3', ip: '', port: 1}), undefined)
  })

  it('lists nodes running another value; unread values, unknown declarations and unreachable nodes are not judged', () => {
    const probes: NodeProbe[] = [
      probe(7000, {timeout: 5000}),
      probe(7001, {timeout: 1000}),
      probe(7002, {host: 'h2', timeout: 1000}),
      probe(7003, {host: 'h3', timeout: 1000}),
      probe(7004),
      {node: {host: 'h1', ip: '127.0.0.1', port: 7005}, addr: '127.0.0.1:7005', error: 'connection refused'},
    ]
    const drift = timeoutDrift(probes, declared)
    assert.deepEqual(
      drift.map((d) => [d.addr, d.have, d.want]),
      [
        ['127.0.0.1:7001', 1000, 5000],
        ['127.0.0.1:7002', 1000, 7000],
      ],
    )
    assert.equal(driftSummary(drift), '1000 on 2 node(s)')
    const problems = driftProblems(drift)
    assert.deepEqual(
      problems.map((p) => [p.kind, p.node]),
      [
        ['node-timeout', '127.0.0.1:7001'],
        ['node-timeout', '127.0.0.1:7002'],
      ],
    )
    assert.match(problems[0].text, /127\.0\.0\.1:7001 \(host h1\) runs with cluster-node-timeout 1000, declared 5000/)
    assert.deepEqual(timeoutDrift(probes, undefined), [])
  })
})
