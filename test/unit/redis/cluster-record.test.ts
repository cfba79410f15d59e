import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {InputError} from '../../../src/errors.js'
import {listeningPorts, parseListing, planFirewall, portsInRanges} from '../../../src/modules/firewall.js'
import {chainName, type ClusterRecord, describeHolder, groupSlug, parseHolder, parseRecords, recordVars, sameRecord, selectRecord, validateClusterName} from '../../../src/redis/cluster-record.js'

const rec = (name: string, start: number, count = 4): ClusterRecord => ({
  name,
  group: 'redis',
  state: 'running',
  ports: {start, count},
  cluster_dir: '~/redis_cluster',
  bin_dir: '~/redis/bin',
  version: '7.0.15',
  firewall_chain: chainName(name),
  node_ids: {},
  written: '2026-01-01T00:00:00.000Z',
})

describe('cluster name → firewall chain', () => {
  it('is BAREMETAL-<name> while it fits in 28 characters', () => {
    assert.equal(chainName('redis-7000'), 'BAREMETAL-redis-7000')
    assert.equal(chainName('baremetal'), 'BAREMETAL-baremetal')
    assert.equal(chainName('a'.repeat(18)), `BAREMETAL-${'a'.repeat(18)}`)
  })
  it('past 28: a prefix and a stable hash, never a bare cut that two names share', () => {
    const a = chainName('shop-cache-production-eu-west-1')
    const b = chainName('shop-cache-production-eu-west-2')
    assert.equal(a.length, 28)
    assert.equal(b.length, 28)
    assert.notEqual(a, b)
    assert.equal(a, chainName('shop-cache-production-eu-west-1'))
    assert.match(a, /^BAREMETAL-shop-cach-[0-9a-f]{8}$/)
  })
  it('default name pieces and validation', () => {
    assert.equal(groupSlug('redis'), 'redis')
    assert.equal(groupSlug('redis:&eu'), 'redis_eu')
    assert.equal(groupSlug('!old'), 'old')
    assert.equal(groupSlug('*'), 'redis')
    assert.equal(validateClusterName('redis-7000'), 'redis-7000')
    assert.throws(() => validateClusterName('a b'), InputError)
    assert.throws(() => validateClusterName(''), InputError)
    assert.throws(
      () => validateClusterName('x'.repeat(65)),
      (e: unknown) => e instanceof InputError && /1-64 letters/.test(e.hint ?? ''),
    )
    assert.throws(() => validateClusterName('../etc'), InputError)
    assert.throws(() => validateClusterName('..'), InputError)
    assert.throws(() => validateClusterName('-x'), InputError)
    assert.equal(validateClusterName(7000), '7000')
  })
})

describe('record selection', () => {
  const found = [
    {host: 'h1', records: [rec('redis-7000', 7000), rec('redis-7100', 7100)]},
    {host: 'h2', records: [rec('redis-7000', 7000)]},
  ]
  it('an explicit name picks its record', () => {
    const s = selectRecord(found, {name: 'redis-7100'})
    assert.equal(s.kind === 'record' && s.record.name, 'redis-7100')
    assert.equal(selectRecord(found, {name: 'nope'}).kind, 'none')
  })
  it('explicit ports pick the record with that first port', () => {
    const s = selectRecord(found, {portStart: 7000})
    assert.ok(s.kind === 'record')
    assert.equal(s.record.name, 'redis-7000')
    assert.deepEqual(s.hosts, ['h1', 'h2'])
    assert.equal(selectRecord(found, {portStart: 6379}).kind, 'none')
  })
  it("nothing explicit: the only record, several refused naming them and the fix, none is today's behaviour", () => {
    const one = selectRecord(
      [
        {host: 'h1', records: [rec('redis-7200', 7200)]},
        {host: 'h2', records: []},
      ],
      {},
    )
    assert.equal(one.kind === 'record' && one.record.ports.start, 7200)
    assert.throws(
      () => selectRecord(found, {}),
      (e: unknown) => e instanceof InputError && e.exitCode === 5 && /redis-7000 \(ports 7000-7003\), redis-7100/.test(e.message) && /-e redis_cluster_name=redis-7000/.test(e.hint ?? ''),
    )
    assert.equal(selectRecord([{host: 'h1', records: []}], {}).kind, 'none')
  })
  it('a record never overrides what the inventory or -e set', () => {
    const v = recordVars(rec('redis-7200', 7200), new Set(['redis_bin_dir']))
    assert.deepEqual(v, {redis_cluster_name: 'redis-7200', redis_port_start: 7200, redis_count: 4, redis_cluster_dir: '~/redis_cluster', redis_version: '7.0.15'})
  })
  it('records are parsed per file; a broken one is named, not fatal', () => {
    const out = `@@ FILE /root/.baremetal/clusters/a.json\n${JSON.stringify(rec('a', 7000))}\n@@ FILE /root/.baremetal/clusters/b.json\n{broken\n`
    const {records, bad} = parseRecords(out)
    assert.deepEqual(
      records.map((r) => r.name),
      ['a'],
    )
    assert.deepEqual(bad, ['/root/.baremetal/clusters/b.json'])
  })
  it('the write time alone does not make a record differ', () => {
    const a = rec('a', 7000)
    assert.ok(sameRecord(a, {...a, written: 'later'}))
    assert.ok(!sameRecord(a, {...a, node_ids: {7000: 'x'}}))
    assert.ok(!sameRecord(a, {...a, ports: {start: 7000, count: 5}}))
    assert.ok(!sameRecord(undefined, a))
  })
  it('the lock holder line names command, controller, pid and start time', () => {
    const h = parseHolder('command=up controller=ctl pid=42 started=2026-01-01T00:00:00Z host_pid=7 from=10.0.0.1\n')
    assert.equal(describeHolder('h1', h), 'up started 2026-01-01T00:00:00Z by pid 42 on controller ctl (10.0.0.1) holds it on h1')
    assert.match(describeHolder('h1', parseHolder('')), /not written who it is yet/)
  })
})

// Two clusters on one host, and a host deployed before clusters had names.
const LEGACY = `-P INPUT ACCEPT
-N BAREMETAL-baremetal
-A INPUT -p tcp -m tcp --dport 17000:17003 -m comment --comment baremetal -j BAREMETAL-baremetal
-A INPUT -p tcp -m tcp --dport 7000:7003 -m comment --comment baremetal -j BAREMETAL-baremetal
-A BAREMETAL-baremetal -s 10.0.0.1/32 -m comment --comment baremetal -j ACCEPT
-A BAREMETAL-baremetal -i lo -m comment --comment baremetal -j ACCEPT
-A BAREMETAL-baremetal -m comment --comment baremetal -j DROP
`
const want = (name: string, start: number) => ({
  chain: chainName(name),
  tag: name,
  ranges: [`${start}:${start + 3}`, `${start + 10000}:${start + 10003}`],
  sources: ['10.0.0.1/32'],
  adopt: ['BAREMETAL-baremetal'],
})

describe('firewall: one chain per cluster, legacy chain adopted', () => {
  it('up adopts the legacy chain: our jumps in first, then its jumps for our ports go, then the chain (nothing else jumps to it)', () => {
    const p = planFirewall('present', parseListing(LEGACY), want('redis-7000', 7000))
    const cmds = p.commands.map((c) => c.join(' '))
    const lastJump = cmds.map((c) => c.startsWith('-I INPUT 1')).lastIndexOf(true)
    const firstLegacyDel = cmds.findIndex((c) => c.startsWith('-D INPUT') && c.endsWith('BAREMETAL-baremetal'))
    assert.ok(lastJump >= 0 && firstLegacyDel > lastJump, cmds.join('\n'))
    assert.deepEqual(cmds.slice(-2), ['-F BAREMETAL-baremetal', '-X BAREMETAL-baremetal'])
  })
  it("another cluster's ports keep the legacy chain and its jumps", () => {
    const p = planFirewall('present', parseListing(LEGACY), want('redis-7100', 7100))
    assert.ok(!p.commands.some((c) => c.includes('BAREMETAL-baremetal')), p.commands.map((c) => c.join(' ')).join('\n'))
  })
  it("absent removes only this cluster's chain, never the other one's", () => {
    const both =
      LEGACY.replaceAll('BAREMETAL-baremetal', 'BAREMETAL-redis-7000').replaceAll('comment baremetal', 'comment redis-7000') +
      LEGACY.replaceAll('BAREMETAL-baremetal', 'BAREMETAL-redis-7100')
        .replaceAll('comment baremetal', 'comment redis-7100')
        .replaceAll('7000:7003', '7100:7103')
        .replaceAll('17000:17003', '17100:17103')
        .replace('-P INPUT ACCEPT\n', '')
    const p = planFirewall('absent', parseListing(both), want('redis-7100', 7100))
    assert.ok(p.commands.length > 0)
    assert.ok(
      p.commands.every((c) => c.includes('BAREMETAL-redis-7100')),
      p.commands.map((c) => c.join(' ')).join('\n'),
    )
  })
  it('listening ports in the ranges are found (they keep the rules)', () => {
    const ports = listeningPorts(['1B58', '4268', '0016'])
    assert.deepEqual(portsInRanges(ports, ['7000:7003', '17000:17003']), [7000, 17000])
    assert.deepEqual(portsInRanges(ports, ['7100:7103']), [])
  })
})
