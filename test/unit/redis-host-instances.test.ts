import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {instancesScript, parseInstanceReport, planCheck, portList, resolvePorts, summarizeInstances} from '../../src/modules/redis_instances.js'

describe('redis_instances: ports', () => {
  it('port_start + count', () => assert.deepEqual(resolvePorts({port_start: 6379, count: 3}).ports, [6379, 6380, 6381]))
  it('a list, strings of digits accepted, duplicates dropped', () => assert.deepEqual(resolvePorts({ports: [7000, '7001', 7000]}).ports, [7000, 7001]))
  it('both forms → error', () => assert.match(resolvePorts({ports: [1], port_start: 2, count: 1}).error!, /either/))
  it('none → error', () => assert.match(resolvePorts({}).error!, /no ports/))
  it('out of range → error', () => assert.match(resolvePorts({ports: [70000]}).error!, /not a valid port: 70000/))
  it('injection attempt → error', () => assert.match(resolvePorts({ports: ['1; reboot']}).error!, /not a valid port/))
  it('portList compresses ranges', () => assert.equal(portList([6381, 6379, 6380, 7000, 7002]), '6379-6381, 7000, 7002'))
})

const report = [
  'noise before',
  '@@ 7000 running',
  '@@ 7001 started',
  '@@ 7002 failed did not answer on 127.0.0.1:7002 within 30 seconds',
  '| 123:M # Warning: Could not create server TCP listening socket 127.0.0.1:7002: bind: Address already in use',
  '|',
  '| port 7002 is in use: LISTEN 0 511 127.0.0.1:7002 0.0.0.0:* users:(("python3",pid=9,fd=3))',
  '@@ 7003 stopped SHUTDOWN NOSAVE ',
  '@@ 7003 removed',
  '@@ 7004 notrunning port 7004 is served by a redis-server not started from /d/7004 (pid 42): left running',
].join('\n')

describe('redis_instances: status parsing', () => {
  const r = parseInstanceReport(report)
  it('one record per port, states in order', () => {
    assert.deepEqual(r.get(7000), {states: ['running'], reasons: [''], detail: []})
    assert.deepEqual(r.get(7003)?.states, ['stopped', 'removed'])
    assert.equal(r.get(7003)?.reasons[0], 'SHUTDOWN NOSAVE')
  })
  it('detail lines belong to the record above', () => {
    assert.equal(r.get(7002)?.detail.length, 3)
    assert.match(r.get(7002)!.detail[0], /Address already in use/)
    assert.equal(r.get(7002)?.detail[1], '')
  })
})

describe('redis_instances: results', () => {
  const r = parseInstanceReport(report)
  it('started: running only → ok', () => {
    const res = summarizeInstances('started', [7000], r)
    assert.equal(res.status, 'ok')
    assert.match(res.msg!, /already running/)
  })
  it('started: some started → changed, data lists them', () => {
    const res = summarizeInstances('started', [7000, 7001], r)
    assert.equal(res.status, 'changed')
    assert.deepEqual(res.data, {started: [7001], running: [7000], failed: []})
  })
  it('started: a failed port → failed with the port and its log tail, the others reported', () => {
    const res = summarizeInstances('started', [7000, 7001, 7002], r)
    assert.equal(res.status, 'failed')
    assert.match(res.msg!, /1 of 3 instance\(s\) failed/)
    assert.match(res.msg!, /port 7002: did not answer/)
    assert.match(res.msg!, /Address already in use/)
    assert.match(res.msg!, /started 1 \(7001\)/)
    assert.deepEqual(res.data, {started: [7001], running: [7000], failed: [7002]})
  })
  it('a port missing from the report is failed, never silently ok', () => {
    const res = summarizeInstances('started', [7000, 7999], r)
    assert.equal(res.status, 'failed')
    assert.match(res.msg!, /port 7999: no status reported/)
  })
  it('stopped: stopped/removed → changed; foreign one noted, not failed', () => {
    const res = summarizeInstances('stopped', [7003, 7004], r, {remove: true})
    assert.equal(res.status, 'changed')
    assert.match(res.msg!, /stopped 1 \(7003\), removed 1/)
    assert.match(res.msg!, /left running/)
  })
  it('stopped: nothing running and nothing removed → ok', () => {
    const res = summarizeInstances('stopped', [7004], r, {remove: true})
    assert.equal(res.status, 'ok')
    assert.match(res.msg!, /no instance running and nothing to remove/)
  })
  it('check mode says would', () => {
    const st = parseInstanceReport('@@ 1 running\n@@ 2 stopped\n@@ 2 hasdir\n@@ 3 stopped\n')
    assert.equal(planCheck('started', [1, 2, 3], st, false).msg, 'would start 2 (2-3)')
    assert.equal(planCheck('started', [1], st, false).status, 'ok')
    assert.equal(planCheck('stopped', [1, 2], st, true).msg, 'would stop 1 (1), would remove 1 port dir(s)')
    assert.equal(planCheck('stopped', [3], st, true).status, 'ok')
  })
})

describe('redis_instances: script', () => {
  const o = {dir: "/d/it's", bin: '/b', bind: '127.0.0.1', waitSeconds: 5, remove: false, keepData: false, save: false}
  it('values are quoted and no ${…} survives String.raw', () => {
    const s = instancesScript('started', [1, 2], {...o, password: "p'w $(x)"})
    assert.ok(s.includes(`dir='/d/it'\\''s'`))
    assert.ok(s.includes(`PW='p'\\''w $(x)'`))
    assert.ok(!s.includes('\\${'))
  })
  it('the password reaches redis-cli only through REDISCLI_AUTH', () => {
    const s = instancesScript('stopped', [1], {...o, password: 'secret'})
    assert.ok(/REDISCLI_AUTH=\$c_auth/.test(s))
    assert.ok(!/ -a /.test(s) && !/--pass/.test(s) && !/\bAUTH\b.*secret/.test(s))
  })
})
