import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {cliCommandLine, configValue, describeChange, parseRedisConf, planConfig, planRolling, requirepassOf, splitConfigLine, type RestartNode} from '../../../src/redis/config.js'
import {factsScript, liveScript, parseConfigFacts, turnsAofOn} from '../../../src/modules/redis/config.js'
import {changedLines} from '../../../src/play/output.js'
import type {RunResult} from '../../../src/play/runner.js'

const base = ['# comment', 'port 7000', 'bind 10.0.0.1', 'daemonize yes', 'cluster-enabled yes', 'cluster-node-timeout 5000', 'appendonly no', 'save ""', ''].join('\n')
const conf = (...extra: string[]) => base + extra.join('\n') + '\n'

describe('redis_config: reading redis.conf', () => {
  it('splits like sdssplitargs: quotes, escapes, empty strings', () => {
    assert.deepEqual(splitConfigLine('save ""'), ['save', ''])
    assert.deepEqual(splitConfigLine(`requirepass "a b\\"c"`), ['requirepass', 'a b"c'])
    assert.deepEqual(splitConfigLine(`x 'it\\'s' "\\x41\\n"`), ['x', "it's", 'A\n'])
    assert.equal(splitConfigLine('x "open'), undefined)
  })
  it('directives are case-insensitive; repeated lines kept in order', () => {
    const m = parseRedisConf('SAVE 900 1\nsave 300 10\n# x\n\nmaxmemory 1gb\n')
    assert.deepEqual(m.get('save'), [
      ['900', '1'],
      ['300', '10'],
    ])
    assert.equal(configValue('save', m.get('save')!), '900 1 300 10')
    assert.equal(configValue('maxmemory', [['1gb'], ['2gb']]), '2gb', 'last line wins')
  })
  it('requirepassOf reads the running password', () => {
    assert.equal(requirepassOf(conf('requirepass "s3 cret"')), 's3 cret')
    assert.equal(requirepassOf(conf()), undefined)
  })
})

describe('redis_config: plan', () => {
  const table: Array<{name: string; applied: string; wanted: string; live: string[]; restart: string[]; values?: Record<string, string>}> = [
    {name: 'same config → nothing', applied: conf(), wanted: conf(), live: [], restart: []},
    {name: 'only comments differ → nothing', applied: conf('# old'), wanted: conf('# new'), live: [], restart: []},
    {name: 'maxmemory added → live', applied: conf(), wanted: conf('maxmemory 100mb'), live: ['maxmemory'], restart: [], values: {maxmemory: '100mb'}},
    {name: 'maxmemory removed → live back to 0', applied: conf('maxmemory 100mb'), wanted: conf(), live: ['maxmemory'], restart: [], values: {maxmemory: '0'}},
    {name: 'node timeout changed → live', applied: conf(), wanted: conf().replace('5000', '3000'), live: ['cluster-node-timeout'], restart: [], values: {'cluster-node-timeout': '3000'}},
    {name: 'save points → one value', applied: conf(), wanted: conf().replace('save ""', 'save 900 1\nsave 300 10'), live: ['save'], restart: [], values: {save: '900 1 300 10'}},
    {name: 'port changed → restart', applied: conf(), wanted: conf().replace('port 7000', 'port 7001'), live: [], restart: ['port']},
    {name: 'bind changed → restart', applied: conf(), wanted: conf().replace('10.0.0.1', '10.0.0.2'), live: [], restart: ['bind']},
    {name: 'tcp-backlog added → restart', applied: conf(), wanted: conf('tcp-backlog 200'), live: [], restart: ['tcp-backlog']},
    {name: 'unknown directive removed → restart (default unknown)', applied: conf('lfu-log-factor 5'), wanted: conf(), live: [], restart: ['lfu-log-factor']},
    {name: 'mixed: both lists', applied: conf(), wanted: conf('maxmemory 1gb', 'databases 4'), live: ['maxmemory'], restart: ['databases']},
  ]
  for (const t of table) {
    it(t.name, () => {
      const p = planConfig(t.applied, t.wanted)
      assert.deepEqual(
        p.live.map((c) => c.name),
        t.live,
      )
      assert.deepEqual(
        p.restart.map((c) => c.name),
        t.restart,
      )
      for (const [k, v] of Object.entries(t.values ?? {})) assert.equal(p.live.find((c) => c.name === k)?.value, v)
    })
  }
  it('passwords are never described', () => {
    const p = planConfig(conf('requirepass old-secret'), conf('requirepass new-secret'))
    assert.equal(p.live[0].name, 'requirepass')
    const text = describeChange(p.live[0])
    assert.doesNotMatch(text, /secret/)
    assert.match(text, /requirepass \(changed\)/)
  })
  it('redis-cli lines quote every word', () => {
    assert.equal(cliCommandLine(['CONFIG', 'SET', 'save', '']), '"CONFIG" "SET" "save" ""')
    assert.equal(cliCommandLine(['x', 'a "b" \\c']), '"x" "a \\"b\\" \\\\c"')
  })
})

describe('redis_config: scripts', () => {
  it('facts: one sha256sum for every snapshot, the wanted hashes on stdin', () => {
    const s = factsScript(
      '/r c',
      new Map([
        [7000, 'aa'],
        [7001, 'bb'],
      ]),
    )
    assert.equal((s.match(/sha256sum/g) ?? []).length, 1)
    assert.match(s, /^cd '\/r c'/)
    assert.match(s, /\n7000 aa\n7001 bb\nEOF\n/)
  })
  it('facts parsing: states, running, the snapshot text', () => {
    const text = Buffer.from('port 7000\n').toString('base64')
    const m = parseConfigFacts(`noise\n@@ 7000 same 1\n@@ 7001 diff 1 ${text}\n@@ 7002 none 0\n`)
    assert.deepEqual(m.get(7000), {state: 'same', running: true, applied: undefined})
    assert.equal(m.get(7001)?.applied, 'port 7000\n')
    assert.equal(m.get(7002)?.running, false)
  })
  it('live: password only in REDISCLI_AUTH, one CONFIG SET per parameter, snapshot only if all OK', () => {
    const plan = planConfig(conf(), conf('maxmemory 1gb', 'maxmemory-policy allkeys-lru'))
    const s = liveScript({dir: '/d', bin: '/b', ip: '10.0.0.1', password: 'pw'}, [{port: 7000, plan, appliedPassword: 'old pw', wanted: 'x'}])
    assert.match(s, /REDISCLI_AUTH='old pw'/)
    assert.doesNotMatch(s, /-a /)
    assert.equal((s.match(/"CONFIG" "SET"/g) ?? []).length, 2)
    assert.match(s, /grep -c '\^OK\$'\)" = 2 \]/)
  })
})

describe('redis_config: rolling restarts', () => {
  const m = (addr: string, healthyReplicas: string[] = []): RestartNode => ({addr, role: 'master', healthyReplicas})
  const r = (addr: string, masterAddr: string): RestartNode => ({addr, role: 'replica', masterAddr, healthyReplicas: []})
  it('per shard: replicas first, then failover, then the old master', () => {
    const plan = planRolling([m('a:1', ['b:1']), r('b:1', 'a:1'), m('c:1', ['d:1']), r('d:1', 'c:1')])
    assert.deepEqual(plan, [
      [
        {kind: 'restart', addr: 'b:1', as: 'replica'},
        {kind: 'failover', replica: 'b:1', master: 'a:1'},
        {kind: 'restart', addr: 'a:1', as: 'replica'},
      ],
      [
        {kind: 'restart', addr: 'd:1', as: 'replica'},
        {kind: 'failover', replica: 'd:1', master: 'c:1'},
        {kind: 'restart', addr: 'c:1', as: 'replica'},
      ],
    ])
  })
  it('a master without healthy replicas is never restarted with SHUTDOWN NOSAVE: only by SHUTDOWN SAVE (its keys come back from that RDB); lone nodes too', () => {
    assert.deepEqual(planRolling([m('a:1')]), [[{kind: 'restart', addr: 'a:1', as: 'master', save: true}]])
    assert.deepEqual(planRolling([{addr: 'x:1', role: 'alone', healthyReplicas: []}]), [[{kind: 'restart', addr: 'x:1', as: 'alone', save: true}]])
  })
  it('a node that could not be inspected is refused, never taken for alone; its shard stops there', () => {
    const plan = planRolling([{addr: 'a:1', role: 'unknown', healthyReplicas: [], error: 'LOADING Redis is loading the dataset in memory'}, r('b:1', 'a:1')])
    assert.equal(plan.length, 1)
    assert.deepEqual(plan[0][0], {kind: 'restart', addr: 'b:1', as: 'replica'})
    assert.equal(plan[0][1].kind, 'refuse')
    assert.match((plan[0][1] as {why: string}).why, /could not be inspected \(LOADING/)
    assert.equal(plan[0].length, 2, 'nothing after the refusal')
  })
  it('every node restarted exactly once, at most one node of a shard at a time', () => {
    const nodes: RestartNode[] = []
    for (let i = 0; i < 20; i++) {
      nodes.push(m(`m:${i}`, i % 3 ? [`r:${i}`] : []))
      if (i % 2) nodes.push(r(`r:${i}`, `m:${i}`))
    }
    const plan = planRolling(nodes)
    const restarted = plan
      .flat()
      .filter((s) => s.kind === 'restart')
      .map((s) => (s as {addr: string}).addr)
      .sort()
    assert.deepEqual(restarted, nodes.map((n) => n.addr).sort())
    for (const shard of plan) {
      const masters = shard.filter((s) => s.kind === 'restart' && s.addr.startsWith('m:'))
      assert.ok(masters.length <= 1)
      assert.equal(shard[shard.length - 1].kind, 'restart', 'the master comes last')
      const last = shard[shard.length - 1] as {addr: string; save?: boolean}
      const handedOver = shard.some((s) => s.kind === 'failover')
      assert.equal(last.save === true, !handedOver, `${last.addr}: SHUTDOWN SAVE exactly when there is no failover`)
    }
  })
})

describe('recap names what changed', () => {
  const rec = (task: string, host: string, status: string, msg: string) => ({play: 'p', task, module: 'm', host, status, msg, items: 1, durationMs: 1, where: {}})
  it('one line per changed task, hosts listed, first line of the message', () => {
    const result = {
      tasks: [
        rec('Instances running', 'h1', 'changed', 'started 2 (7000-7001), 2 already running'),
        rec('Instances running', 'h2', 'ok', 'all'),
        rec('Firewall', 'h3', 'changed', 'chain: 1 rule(s) added\nmore'),
      ],
      check: false,
    } as unknown as RunResult
    assert.deepEqual(changedLines(result), ['  changed: Instances running on h1 — started 2 (7000-7001), 2 already running', '  changed: Firewall on h3 — chain: 1 rule(s) added'])
  })
})

describe('redis_config: AOF turned on before a restart', () => {
  it('a change that turns appendonly on, with a restart-only one, is flagged: AOF goes on live first', () => {
    const plan = planConfig(conf(), conf('tcp-backlog 200').replace('appendonly no', 'appendonly yes'))
    assert.deepEqual(
      plan.restart.map((c) => c.name),
      ['tcp-backlog'],
    )
    assert.ok(turnsAofOn(plan))
  })
  it('appendonly added where the old config had none (default no) turns it on; turning it off or leaving it does not', () => {
    assert.ok(turnsAofOn(planConfig(conf().replace('appendonly no\n', ''), conf('appendonly YES'))))
    assert.equal(turnsAofOn(planConfig(conf().replace('appendonly no', 'appendonly yes'), conf('tcp-backlog 200'))), false)
    assert.equal(turnsAofOn(planConfig(conf(), conf('tcp-backlog 200'))), false)
  })
})
