import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {decideLeave, leaveRefusal} from '../../../src/redis/leave.js'
import {parseClusterNodes} from '../../../src/redis/nodes.js'
import {EXIT} from '../../../src/errors.js'

// CLUSTER NODES of a 3-host cluster: h1 = 10.0.0.1, h2 = 10.0.0.2, h3 = 10.0.0.3.
const line = (id: string, addr: string, flags: string, master: string, slots = '') => `${id} ${addr}@1${addr.split(':')[1]} ${flags} ${master} 0 0 1 connected${slots ? ' ' + slots : ''}`
const hostOf = new Map([
  ['10.0.0.1:7000', 'h1'],
  ['10.0.0.1:7001', 'h1'],
  ['10.0.0.2:7000', 'h2'],
  ['10.0.0.2:7001', 'h2'],
  ['10.0.0.3:7000', 'h3'],
  ['10.0.0.3:7001', 'h3'],
])
const h2 = new Set(['10.0.0.2:7000', '10.0.0.2:7001'])

describe('decideLeave: down --limit on members of a live cluster', () => {
  const masters = parseClusterNodes(
    [
      line('a1', '10.0.0.1:7000', 'myself,master', '-', '0-5460'),
      line('b1', '10.0.0.2:7000', 'master', '-', '5461-10922'),
      line('c1', '10.0.0.3:7000', 'master', '-', '10923-16383'),
      line('a2', '10.0.0.1:7001', 'slave', 'c1'),
      line('b2', '10.0.0.2:7001', 'slave', 'a1'),
      line('c2', '10.0.0.3:7001', 'slave', 'b1'),
    ].join('\n'),
  )

  it('a master with slots on a limited host, the cluster running on the others: refused, naming it and its slots', () => {
    const d = decideLeave(masters, h2, hostOf)
    assert.equal(d.refuse, true)
    assert.deepEqual(d.masters, [{addr: '10.0.0.2:7000', host: 'h2', slots: '5461-10922', slotCount: 5462}])
    assert.deepEqual(d.lastReplicas, [{addr: '10.0.0.2:7001', host: 'h2', masterAddr: '10.0.0.1:7000'}], 'a1 keeps no other copy')
    assert.deepEqual(d.staying, ['h1', 'h3'])
    const e = leaveRefusal(d, 'h2', 'inv.yml')
    assert.equal(e.exitCode, EXIT.usage)
    assert.match(
      e.message,
      /down --limit h2 would take .* running on h1, h3: master\(s\) 10\.0\.0\.2:7000 \(h2\) slots 5461-10922 — 5462 slot\(s\) would go unserved; the last replica\(s\) 10\.0\.0\.2:7001 \(h2\) of 10\.0\.0\.1:7000\. Nothing was changed/,
    )
    assert.match(e.hint!, /--remove-missing/)
    assert.match(e.hint!, /baremetal down -i inv\.yml` without --limit/)
  })

  it('the last replica of a staying master is refused too', () => {
    const d = decideLeave(masters, new Set(['10.0.0.2:7001']), hostOf)
    assert.equal(d.refuse, true)
    assert.deepEqual(d.masters, [])
    assert.deepEqual(d.lastReplicas, [{addr: '10.0.0.2:7001', host: 'h2', masterAddr: '10.0.0.1:7000'}])
    assert.match(leaveRefusal(d, 'h2', 'i.yml').message, /last replica\(s\) 10\.0\.0\.2:7001 \(h2\) of 10\.0\.0\.1:7000/)
  })

  it('a replica whose master keeps another copy leaves freely', () => {
    const view = parseClusterNodes([line('a1', '10.0.0.1:7000', 'myself,master', '-', '0-16383'), line('b2', '10.0.0.2:7001', 'slave', 'a1'), line('c2', '10.0.0.3:7001', 'slave', 'a1')].join('\n'))
    assert.equal(decideLeave(view, h2, hostOf).refuse, false)
  })

  it('every member limited (the whole cluster goes): allowed', () => {
    assert.equal(decideLeave(masters, new Set(hostOf.keys()), hostOf).refuse, false)
  })

  it('nodes already removed by up --remove-missing are not in the view: allowed', () => {
    const after = parseClusterNodes([line('a1', '10.0.0.1:7000', 'myself,master', '-', '0-8191'), line('c1', '10.0.0.3:7000', 'master', '-', '8192-16383')].join('\n'))
    assert.deepEqual(decideLeave(after, h2, hostOf), {refuse: false, masters: [], lastReplicas: [], staying: []})
  })

  it('the others are all failed (torn down before): no live cluster keeps running, allowed', () => {
    const view = parseClusterNodes(
      [line('b1', '10.0.0.2:7000', 'myself,master', '-', '0-8191'), line('a1', '10.0.0.1:7000', 'master,fail', '-', '8192-16383'), line('x', ':0', 'master,fail,noaddr', '-')].join('\n'),
    )
    assert.equal(decideLeave(view, h2, hostOf).refuse, false)
  })

  it('a member the inventory does not name keeps the cluster running: named by its address', () => {
    const view = parseClusterNodes([line('b1', '10.0.0.2:7000', 'myself,master', '-', '0-8191'), line('z1', '10.0.9.9:7000', 'master', '-', '8192-16383')].join('\n'))
    const d = decideLeave(view, h2, hostOf)
    assert.equal(d.refuse, true)
    assert.deepEqual(d.staying, ['10.0.9.9:7000'])
  })
})
