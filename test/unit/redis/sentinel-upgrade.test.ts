import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {describeSentinelPlan, planSentinelUpgrade, sentinelReplicationViolations, type GroupState, type SentinelNodeState, type SentinelUpgradePlan} from '../../../src/redis/sentinel-upgrade.js'
import {planSentinelLayout} from '../../../src/redis/sentinel-layout.js'
import {sentinelStatusReport, renderSentinelStatus} from '../../../src/redis/sentinel-status.js'
import type {SentinelView} from '../../../src/redis/sentinel-view.js'

const H = ['10.0.0.1', '10.0.0.2', '10.0.0.3']

// 2 groups × 1 replica on 3 hosts (group i: master on host i, replica on host i+1), 3 Sentinels.
function deployment(version: (addr: string) => string, replicas = 1): {groups: GroupState[]; sentinels: SentinelNodeState[]} {
  const groups = [0, 1].map((i): GroupState => {
    const port = 7000 + i
    const master = `${H[i]}:${port}`
    const reps = Array.from({length: replicas}, (_, k) => `${H[(i + 1 + k) % 3]}:${port}`)
    return {
      name: `redis-7000-${port}`,
      master,
      layoutReplicas: replicas,
      members: [{addr: master, alive: true, role: 'master', version: version(master)}, ...reps.map((r) => ({addr: r, alive: true, role: 'replica' as const, masterAddr: master, version: version(r)}))],
    }
  })
  return {groups, sentinels: H.map((h) => ({addr: `${h}:26379`, alive: true, version: version(`${h}:26379`)}))}
}

const kinds = (p: SentinelUpgradePlan) => p.groups.map((g) => g.steps.map((s) => s.kind))

describe('sentinel upgrade plan', () => {
  it('per group: replicas first, a fenced failover, the old master last; then the Sentinels one at a time', () => {
    const d = deployment(() => '5.0.3')
    const plan = planSentinelUpgrade(d.groups, d.sentinels, '7.0.15')
    assert.deepEqual(plan.refused, [])
    assert.deepEqual(kinds(plan), [
      ['replica', 'failover', 'old-master'],
      ['replica', 'failover', 'old-master'],
    ])
    assert.deepEqual(
      plan.sentinels.map((s) => s.kind === 'sentinel' && s.addr),
      H.map((h) => `${h}:26379`),
    )
    assert.deepEqual(sentinelReplicationViolations(d.groups, plan), [])
    const text = describeSentinelPlan(plan)
    assert.match(text[0], /^7 instance\(s\) and Sentinel\(s\) on 5\.0\.3 → 7\.0\.15/)
    assert.equal(text.join('\n').match(/fenced failover/g)?.length, 2)
  })

  it('the replay catches an order where an old replica would follow an upgraded master', () => {
    const d = deployment(() => '5.0.3')
    const plan = planSentinelUpgrade(d.groups, d.sentinels, '7.0.15')
    const masterFirst: SentinelUpgradePlan = {...plan, groups: plan.groups.map((g) => ({...g, steps: [{kind: 'in-place', group: g.name, addr: d.groups[0].master!, from: '5.0.3'}, ...g.steps]}))}
    masterFirst.groups[1].steps[0] = {kind: 'in-place', group: masterFirst.groups[1].name, addr: d.groups[1].master!, from: '5.0.3'}
    assert.ok(sentinelReplicationViolations(d.groups, masterFirst).length >= 2)
  })

  it('nothing to do when everything runs the target; a half-done upgrade resumes with what is left', () => {
    let d = deployment(() => '7.0.15')
    let plan = planSentinelUpgrade(d.groups, d.sentinels, '7.0.15')
    assert.deepEqual([plan.groups, plan.sentinels, plan.refused], [[], [], []])
    // Group 0 done (its old master now a replica of the upgraded one), group 1 and the Sentinels not.
    d = deployment((a) => (a.endsWith(':7000') ? '7.0.15' : '5.0.3'))
    plan = planSentinelUpgrade(d.groups, d.sentinels, '7.0.15')
    assert.deepEqual(kinds(plan), [['replica', 'failover', 'old-master']])
    assert.equal(plan.sentinels.length, 3)
    // Interrupted after the failover: the fenced old master replicates the upgraded one; it restarts, no second failover.
    d = deployment((a) => (a === `${H[1]}:7000` ? '7.0.15' : '5.0.3'))
    d.groups[0].master = `${H[1]}:7000`
    d.groups[0].members = [
      {addr: `${H[0]}:7000`, alive: true, role: 'replica', masterAddr: `${H[1]}:7000`, version: '5.0.3'},
      {addr: `${H[1]}:7000`, alive: true, role: 'master', version: '7.0.15'},
    ]
    plan = planSentinelUpgrade(d.groups, d.sentinels, '7.0.15')
    assert.deepEqual(kinds(plan)[0], ['replica'])
  })

  it('groups without replicas: refused naming the master and --allow-downtime; with it, restarted in place', () => {
    const d = deployment(() => '5.0.3', 0)
    let plan = planSentinelUpgrade(d.groups, d.sentinels, '7.0.15')
    assert.deepEqual(plan.groups, [])
    assert.deepEqual(
      plan.refused.map((r) => r.addr),
      [`${H[0]}:7000`, `${H[1]}:7001`],
    )
    assert.match(plan.refused[0].why, /no replica to hand over to.*--allow-downtime/)
    plan = planSentinelUpgrade(d.groups, d.sentinels, '7.0.15', {allowDowntime: true})
    assert.deepEqual(kinds(plan), [['in-place'], ['in-place']])
    assert.deepEqual(plan.downtime, [`${H[0]}:7000`, `${H[1]}:7001`])
  })

  it('downgrades refused as on the cluster path; a running binary under the target bin dir refused; a failover under way is transient', () => {
    const d = deployment(() => '7.0.15')
    let plan = planSentinelUpgrade(d.groups, d.sentinels, '5.0.3')
    assert.match(plan.refused[0].why, /a downgrade across RDB formats is refused, no flag allows it/)
    assert.deepEqual([plan.groups, plan.sentinels], [[], []])
    const e = deployment(() => '5.0.3')
    for (const m of e.groups[0].members) m.executable = '/opt/redis/bin/redis-server'
    plan = planSentinelUpgrade(e.groups, e.sentinels, '7.0.15', {binDirOf: () => '/opt/redis/bin'})
    assert.match(plan.refused[0].why, /over the binary it runs/)
    const f = deployment(() => '5.0.3')
    f.groups[1].master = undefined
    plan = planSentinelUpgrade(f.groups, f.sentinels, '7.0.15')
    assert.equal(plan.refused[0].addr, 'redis-7000-7001')
    assert.equal(plan.refused[0].transient, true)
  })

  it('dead members are left to the instances task, not refused', () => {
    const d = deployment(() => '5.0.3')
    d.groups[0].members[1] = {addr: d.groups[0].members[1].addr, alive: false}
    const plan = planSentinelUpgrade(d.groups, d.sentinels, '7.0.15')
    assert.deepEqual(plan.refused, [])
    assert.deepEqual(kinds(plan)[0], ['failover', 'old-master'])
  })
})

describe('sentinel status: versions', () => {
  it('each instance and Sentinel with its version; a mixed deployment is a warning, not a failure', () => {
    const layout = planSentinelLayout({
      clusterName: 'redis-7000',
      data: H.map((ip, i) => ({host: `h${i + 1}`, ip})),
      sentinels: H.map((ip, i) => ({host: `h${i + 1}`, ip})),
      haproxy: [],
      portStart: 7000,
      groups: 1,
      replicas: 1,
      sentinelPort: 26379,
    })
    const M = `${H[0]}:7000`
    const R = `${H[1]}:7000`
    const view: SentinelView = {
      groups: [
        {
          name: 'redis-7000-7000',
          port: 7000,
          answers: H.map((h) => ({sentinel: `${h}:26379`, master: M})),
          master: M,
          roles: [
            {addr: M, role: 'master', offset: 10, version: '5.0.3'},
            {addr: R, role: 'replica', masterAddr: M, link: 'connected', offset: 10, version: '7.0.15'},
          ],
          replicas: [{addr: R, state: 'online', link: 'connected', lagBytes: 0, lagSeconds: 0, inSync: true}],
        },
      ],
      sentinels: H.map((h) => ({addr: `${h}:26379`, reachable: true, version: '5.0.3'})),
      quorum: 2,
      readAt: '',
    }
    const r = sentinelStatusReport(layout, view)
    assert.equal(r.ok, true)
    assert.deepEqual(r.versions, {'5.0.3': 4, '7.0.15': 1})
    assert.match(r.warnings[0], /^mixed Redis versions: 4 on 5\.0\.3, 1 on 7\.0\.15/)
    assert.equal(r.groups[0].masterVersion, '5.0.3')
    assert.equal(r.groups[0].replicas[0].version, '7.0.15')
    assert.match(renderSentinelStatus(r, view), /\[WARNING\] mixed Redis versions/)
  })
})
