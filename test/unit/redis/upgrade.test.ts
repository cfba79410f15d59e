import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {compareVersions, planUpgrade, rdbFormat, replicationViolations, type VersionedNode} from '../../../src/redis/upgrade.js'
import {describePlan} from '../../../src/modules/redis/upgrade.js'
import {NodeIds, parseClusterNodes} from '../../../src/redis/nodes.js'
import {buildClusterReport, probeFromText, renderClusterReport, type NodeProbeOk} from '../../../src/redis/status.js'

// 3 hosts × 4 ports, 1 replica each: 6 shards, each master's replica on another host.
function cluster(version: (addr: string) => string, replicas = 1): VersionedNode[] {
  const nodes: VersionedNode[] = []
  const hosts = ['10.0.0.1', '10.0.0.2', '10.0.0.3']
  let shard = 0
  for (const h of hosts)
    for (const port of [7000, 7001]) {
      const m = `${h}:${port}`
      const reps = Array.from({length: replicas}, (_, i) => `${hosts[(hosts.indexOf(h) + 1 + i) % 3]}:${7002 + (shard % 2) * 2 + i}`)
      nodes.push({addr: m, role: 'master', healthyReplicas: reps, version: version(m)})
      for (const r of reps) nodes.push({addr: r, role: 'replica', masterAddr: m, healthyReplicas: [], version: version(r)})
      shard++
    }
  return nodes
}

describe('redis upgrade plan', () => {
  it('compares versions numerically', () => {
    assert.ok(compareVersions('7.0.15', '5.0.3') > 0)
    assert.ok(compareVersions('7.0.9', '7.0.15') < 0)
    assert.equal(compareVersions('5.0.3', '5.0.3'), 0)
  })

  it('per shard: replicas first, CLUSTER FAILOVER to an upgraded replica, then the old master as replica', () => {
    const nodes = cluster(() => '5.0.3')
    const plan = planUpgrade(nodes, '7.0.15')
    assert.deepEqual(plan.refused, [])
    assert.equal(plan.shards.length, 6)
    for (const shard of plan.shards) {
      assert.deepEqual(
        shard.map((s) => s.kind + (s.kind === 'restart' ? `:${s.as}` : '')),
        ['restart:replica', 'failover', 'restart:replica'],
      )
      const [r, f, m] = shard
      assert.ok(r.kind === 'restart' && f.kind === 'failover' && m.kind === 'restart')
      assert.equal(f.replica, r.addr, 'the master role goes to the replica upgraded just before')
      assert.equal(m.addr, f.master)
    }
    assert.equal(plan.shards.flat().filter((s) => s.kind === 'restart').length, 12)
  })

  it('no node ever replicates from a newer master at any step (2 replicas per shard too)', () => {
    for (const replicas of [1, 2]) {
      const nodes = cluster(() => '5.0.3', replicas)
      const plan = planUpgrade(nodes, '7.0.15')
      assert.deepEqual(replicationViolations(nodes, plan), [], `replicas ${replicas}`)
    }
  })

  it('the replay catches an unsafe order (master first)', () => {
    const nodes = cluster(() => '5.0.3')
    const plan = planUpgrade(nodes, '7.0.15')
    const bad = {...plan, shards: plan.shards.map((s) => [{kind: 'restart' as const, addr: (s[1] as {master: string}).master, as: 'master' as const, from: '5.0.3'}])}
    assert.ok(replicationViolations(nodes, bad).length > 0)
  })

  it('resumes from the live versions: done nodes are skipped, a half-done shard continues', () => {
    // Shard of 10.0.0.1:7000: its replica is upgraded already; shard of 10.0.0.1:7001 fully done
    // (the old master already restarted as the replica of its upgraded former replica).
    const nodes = cluster(() => '5.0.3')
    const set = (addr: string, v: string) => (nodes.find((n) => n.addr === addr)!.version = v)
    const m0 = nodes.find((n) => n.addr === '10.0.0.1:7000')!
    set(m0.healthyReplicas[0], '7.0.15')
    const m1 = nodes.find((n) => n.addr === '10.0.0.1:7001')!
    const r1 = nodes.find((n) => n.addr === m1.healthyReplicas[0])!
    Object.assign(r1, {role: 'master', masterAddr: undefined, healthyReplicas: [m1.addr], version: '7.0.15'})
    Object.assign(m1, {role: 'replica', masterAddr: r1.addr, healthyReplicas: [], version: '7.0.15'})
    const plan = planUpgrade(nodes, '7.0.15')
    assert.equal(plan.shards.length, 5)
    const s0 = plan.shards.find((s) => s.some((x) => x.kind === 'failover' && x.master === m0.addr))!
    assert.deepEqual(
      s0.map((s) => s.kind),
      ['failover', 'restart'],
    )
    assert.ok(!plan.shards.flat().some((s) => s.kind === 'restart' && (s.addr === m1.addr || s.addr === r1.addr)))
    assert.deepEqual(replicationViolations(nodes, plan), [])
  })

  it('nothing to do when every node runs the target; a node that did not answer then blocks nothing', () => {
    const plan = planUpgrade(
      cluster(() => '7.0.15'),
      '7.0.15',
    )
    assert.deepEqual(plan.shards, [])
    assert.deepEqual(plan.refused, [])
    const nodes = cluster(() => '7.0.15')
    nodes[0] = {...nodes[0], role: 'unknown', version: undefined, error: 'timeout'}
    assert.deepEqual(planUpgrade(nodes, '7.0.15').refused, [])
  })

  it('masters without replicas: refused, naming them and the fix; --allow-downtime restarts them in place after SHUTDOWN SAVE', () => {
    const nodes = ['10.0.0.1:7000', '10.0.0.2:7000'].map((addr): VersionedNode => ({addr, role: 'master', healthyReplicas: [], version: '5.0.3'}))
    const plan = planUpgrade(nodes, '7.0.15')
    assert.deepEqual(plan.shards, [])
    assert.deepEqual(
      plan.refused.map((r) => r.addr),
      ['10.0.0.1:7000', '10.0.0.2:7000'],
    )
    assert.match(plan.refused[0].why, /no healthy replica.*--allow-downtime.*SHUTDOWN SAVE/)
    const ok = planUpgrade(nodes, '7.0.15', {allowDowntime: true})
    assert.deepEqual(ok.refused, [])
    assert.deepEqual(ok.downtime, ['10.0.0.1:7000', '10.0.0.2:7000'])
    assert.deepEqual(ok.shards, [
      [{kind: 'restart', addr: '10.0.0.1:7000', as: 'master', from: '5.0.3', save: true}],
      [{kind: 'restart', addr: '10.0.0.2:7000', as: 'master', from: '5.0.3', save: true}],
    ])
  })

  it('a downgrade is refused, so is a node that did not answer; then nothing at all is planned', () => {
    const down = planUpgrade(
      cluster(() => '7.0.15'),
      '5.0.3',
    )
    assert.equal(down.shards.length, 0)
    assert.equal(down.refused.length, 12)
    assert.match(down.refused[0].why, /downgrade across RDB formats is refused, no flag allows it \(7\.0\.15 writes RDB format 10, which 5\.0\.3 cannot load/)
    assert.equal(
      planUpgrade(
        cluster(() => '7.0.15'),
        '5.0.3',
        {allowDowngrade: true},
      ).refused.length,
      12,
      'no flag makes a cross-format downgrade possible',
    )
    const nodes = cluster(() => '5.0.3')
    nodes[0] = {...nodes[0], role: 'unknown', version: undefined, error: 'timeout'}
    const plan = planUpgrade(nodes, '7.0.15')
    assert.deepEqual(plan.shards, [])
    assert.deepEqual(
      plan.refused.map((r) => r.addr),
      [nodes[0].addr],
    )
  })

  it('--check text: the order and the failovers', () => {
    const lines = describePlan(
      planUpgrade(
        cluster(() => '5.0.3'),
        '7.0.15',
      ),
    )
    assert.match(lines[0], /12 instance\(s\) on 5\.0\.3 → 7\.0\.15, 6 shard\(s\)/)
    assert.match(lines[1], /shard 1: restart \S+ \(5\.0\.3\) as replica; CLUSTER FAILOVER \S+ → \S+; restart/)
  })

  it('RDB formats by release; a downgrade within one format only with allowDowngrade', () => {
    assert.deepEqual(['4.0.14', '5.0.3', '6.2.14', '7.0.15', '7.2.4', '7.4.1'].map(rdbFormat), [8, 9, 9, 10, 11, 12])
    const no = planUpgrade(
      cluster(() => '7.0.15'),
      '7.0.11',
    )
    assert.equal(no.shards.length, 0)
    assert.match(no.refused[0].why, /a downgrade is refused \(rerun with --allow-downgrade: both write RDB format 10/)
    const yes = planUpgrade(
      cluster(() => '7.0.15'),
      '7.0.11',
      {allowDowngrade: true},
    )
    assert.deepEqual(yes.refused, [])
    assert.equal(yes.shards.length, 6)
  })

  it('refused when the target would be built over the binary a node runs (a fixed redis_bin_dir)', () => {
    const nodes = cluster(() => '5.0.3').map((n) => ({...n, executable: '/opt/redis/bin/redis-server'}))
    const same = planUpgrade(nodes, '7.0.15', {binDirOf: () => '/opt/redis/bin'})
    assert.equal(same.refused.length, 12)
    assert.match(same.refused[0].why, /redis_bin_dir \/opt\/redis\/bin is where 7\.0\.15 would be built, over the binary it runs/)
    assert.deepEqual(planUpgrade(nodes, '7.0.15', {binDirOf: () => '/opt/redis/7.0.15/bin'}).refused, [])
    // Nothing to upgrade: the same directory is no problem.
    assert.deepEqual(
      planUpgrade(
        nodes.map((n) => ({...n, version: '7.0.15'})),
        '7.0.15',
        {binDirOf: () => '/opt/redis/bin'},
      ).refused,
      [],
    )
  })
})

describe('status: running versions', () => {
  // 2 masters, 1 replica each, as each node states it.
  const LINES = [
    'aaaa000000000000000000000000000000000001 10.0.0.1:7000@17000 master - 0 0 1 connected 0-8191',
    'aaaa000000000000000000000000000000000002 10.0.0.2:7000@17000 master - 0 0 2 connected 8192-16383',
    'aaaa000000000000000000000000000000000003 10.0.0.1:7001@17001 slave aaaa000000000000000000000000000000000002 0 0 2 connected',
    'aaaa000000000000000000000000000000000004 10.0.0.2:7001@17001 slave aaaa000000000000000000000000000000000001 0 0 1 connected',
  ]
  const probes = (version: (i: number) => string) => {
    const ids = new NodeIds()
    const keep = new Set<string>()
    return parseClusterNodes(LINES.join('\n')).map((n, i) => {
      const own = LINES.map((l) => (l.startsWith(n.id) ? l.replace(/ (master|slave) /, ' myself,$1 ') : l)).join('\n')
      const p: NodeProbeOk = probeFromText({host: `h${(i % 2) + 1}`, ip: n.ip, port: n.port}, n.addr, {cluster_state: 'ok'}, own, 0, ids, keep)
      p.version = version(i)
      return p
    })
  }

  it('each node shows its version; one version: no warning', () => {
    const r = buildClusterReport(probes(() => '7.0.15'))
    assert.deepEqual(r.versions, {'7.0.15': 4})
    assert.ok([...r.masters, ...r.replicas].every((n) => n.version === '7.0.15'))
    assert.ok(!r.warnings.some((w) => /mixed/.test(w)))
    assert.match(renderClusterReport(r), /M 10\.0\.0\.1:7000 .* 1 replica\(s\)  7\.0\.15/)
  })

  it('a mixed-version cluster is reported (a warning: it still serves every slot)', () => {
    const r = buildClusterReport(probes((i) => (i >= 2 ? '7.0.15' : '5.0.3')))
    assert.ok(r.ok)
    assert.deepEqual(r.versions, {'5.0.3': 2, '7.0.15': 2})
    assert.ok(
      r.warnings.some((w) => /^mixed Redis versions: 2 node\(s\) on 5\.0\.3, 2 node\(s\) on 7\.0\.15 .*baremetal up/.test(w)),
      r.warnings.join('\n'),
    )
  })
})
