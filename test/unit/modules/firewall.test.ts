import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {chainName, firewallModule, flattenList, NO_TOOL_MSG, normalizePortRange, normalizeSource, parseListing, planFirewall, tokenizeRule, type FirewallWant} from '../../../src/modules/firewall.js'
import type {ModuleContext} from '../../../src/modules/types.js'
import type {ExecResult, Transport} from '../../../src/transport/types.js'

const W: FirewallWant = {chain: 'BAREMETAL-baremetal', tag: 'baremetal', ranges: ['6379:6478', '16379:16478'], sources: ['198.51.100.7/32', '203.0.113.0/24']}

// What `iptables -S` prints once the wanted state is in place (plus rules that are not ours).
const COMPLETE = `-P INPUT ACCEPT
-P FORWARD ACCEPT
-P OUTPUT ACCEPT
-N BAREMETAL-baremetal
-N OTHER
-A INPUT -p tcp -m tcp --dport 16379:16478 -m comment --comment baremetal -j BAREMETAL-baremetal
-A INPUT -p tcp -m tcp --dport 6379:6478 -m comment --comment baremetal -j BAREMETAL-baremetal
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -m comment --comment "someone's rule" -j OTHER
-A BAREMETAL-baremetal -s 203.0.113.0/24 -m comment --comment baremetal -j ACCEPT
-A BAREMETAL-baremetal -s 198.51.100.7/32 -m comment --comment baremetal -j ACCEPT
-A BAREMETAL-baremetal -i lo -m comment --comment baremetal -j ACCEPT
-A BAREMETAL-baremetal -m comment --comment baremetal -j DROP
-A OTHER -j RETURN
`
const FRESH = `-P INPUT ACCEPT
-P FORWARD ACCEPT
-P OUTPUT ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
`

describe('firewall: inputs', () => {
  it('port ranges', () => {
    assert.equal(normalizePortRange('6379:6478').range, '6379:6478')
    assert.equal(normalizePortRange('6379-6478').range, '6379:6478')
    assert.equal(normalizePortRange(6379).range, '6379')
    assert.equal(normalizePortRange('7000:7000').range, '7000')
    assert.match(normalizePortRange('6478:6379').error!, /not a valid/)
    assert.match(normalizePortRange('22; reboot').error!, /not a port/)
  })
  it('sources in the form iptables prints', () => {
    assert.equal(normalizeSource('198.51.100.7').cidr, '198.51.100.7/32')
    assert.equal(normalizeSource('203.0.113.77/24').cidr, '203.0.113.0/24')
    assert.equal(normalizeSource('0.0.0.0/0').cidr, '0.0.0.0/0')
    assert.match(normalizeSource('::1').error!, /IPv4/)
    assert.match(normalizeSource('300.1.1.1').error!, /not a valid/)
    assert.match(normalizeSource('redis1.example').error!, /host names/)
  })
  it('lists of lists and blanks from templated playbook values', () => {
    assert.deepEqual(flattenList([['198.51.100.1', '198.51.100.2'], '', undefined, '192.0.2.0/24, 192.0.2.9', '["203.0.113.1"]', []]), [
      '198.51.100.1',
      '198.51.100.2',
      '192.0.2.0/24',
      '192.0.2.9',
      '203.0.113.1',
    ])
    assert.deepEqual(flattenList(['6379:6478', 16379]), ['6379:6478', '16379'])
  })
  it('chain names fit in 28 characters', () => {
    assert.equal(chainName('baremetal'), 'BAREMETAL-baremetal')
    assert.equal(chainName('a-very-long-tag-for-this-cluster').length, 28)
  })
  it('tokenizes quoted comments', () => {
    assert.deepEqual(tokenizeRule('-A X -m comment --comment "a b\\"c" -j ACCEPT'), ['-A', 'X', '-m', 'comment', '--comment', 'a b"c', '-j', 'ACCEPT'])
  })
})

describe('firewall: plan', () => {
  it('from nothing: chain, ACCEPTs, DROP last, then the jumps', () => {
    const p = planFirewall('present', parseListing(FRESH), W)
    assert.deepEqual(
      p.commands.map((c) => c.slice(0, 3).join(' ')),
      ['-N BAREMETAL-baremetal', '-I BAREMETAL-baremetal 1', '-I BAREMETAL-baremetal 1', '-I BAREMETAL-baremetal 1', '-A BAREMETAL-baremetal -m', '-I INPUT 1', '-I INPUT 1'],
    )
    assert.ok(p.commands.every((c) => (c.includes('--comment') && c[c.indexOf('--comment') + 1] === 'baremetal') || c[0] === '-N'))
    assert.deepEqual(p.commands[4], ['-A', 'BAREMETAL-baremetal', '-m', 'comment', '--comment', 'baremetal', '-j', 'DROP'])
    assert.equal(p.removed.length, 0)
  })
  it('already complete → no command (second run is ok)', () => {
    assert.deepEqual(planFirewall('present', parseListing(COMPLETE), W).commands, [])
  })
  it('a source added and one dropped: insert one at the top, delete one, nothing else', () => {
    const p = planFirewall('present', parseListing(COMPLETE), {...W, sources: ['198.51.100.7/32', '192.0.2.5/32']})
    assert.deepEqual(p.commands, [
      ['-I', 'BAREMETAL-baremetal', '1', '-s', '192.0.2.5/32', '-m', 'comment', '--comment', 'baremetal', '-j', 'ACCEPT'],
      ['-D', 'BAREMETAL-baremetal', '-s', '203.0.113.0/24', '-m', 'comment', '--comment', 'baremetal', '-j', 'ACCEPT'],
    ])
  })
  it('a port range dropped: its jump deleted, the chain untouched', () => {
    const p = planFirewall('present', parseListing(COMPLETE), {...W, ranges: ['6379:6478']})
    assert.deepEqual(p.commands, [['-D', 'INPUT', '-p', 'tcp', '-m', 'tcp', '--dport', '16379:16478', '-m', 'comment', '--comment', 'baremetal', '-j', 'BAREMETAL-baremetal']])
  })
  it('DROP not last (a rule appended by hand after it) → re-appended last', () => {
    const listing = parseListing(COMPLETE + '-A BAREMETAL-baremetal -s 192.0.2.9/32 -j ACCEPT\n')
    const p = planFirewall('present', listing, W)
    assert.deepEqual(
      p.commands.map((c) => `${c[0]} ${c.at(-1)}`),
      ['-D DROP', '-D ACCEPT', '-A DROP'],
    )
  })
  it('duplicates of our rules are removed', () => {
    const dup = '-A BAREMETAL-baremetal -i lo -m comment --comment baremetal -j ACCEPT\n'
    const listing = parseListing(COMPLETE.replace(dup, dup + dup))
    assert.deepEqual(planFirewall('present', listing, W).commands, [['-D', 'BAREMETAL-baremetal', '-i', 'lo', '-m', 'comment', '--comment', 'baremetal', '-j', 'ACCEPT']])
  })
  it('absent: our jumps, then flush and delete our chain; nothing else', () => {
    const p = planFirewall('absent', parseListing(COMPLETE), W)
    assert.deepEqual(
      p.commands.map((c) => c.slice(0, 2).join(' ')),
      ['-D INPUT', '-D INPUT', '-F BAREMETAL-baremetal', '-X BAREMETAL-baremetal'],
    )
    assert.ok(p.commands.every((c) => c.includes('BAREMETAL-baremetal')))
  })
  it('absent when nothing is there → no command', () => {
    assert.deepEqual(planFirewall('absent', parseListing(FRESH), W).commands, [])
  })
  it('a chain of another tag is not ours', () => {
    const other = COMPLETE.replaceAll('BAREMETAL-baremetal', 'BAREMETAL-blue').replaceAll('--comment baremetal', '--comment blue')
    const p = planFirewall('absent', parseListing(other), W)
    assert.deepEqual(p.commands, [])
  })
  it('0.0.0.0/0 as a source reads back without -s', () => {
    const p = planFirewall('present', parseListing(FRESH), {...W, sources: ['0.0.0.0/0']})
    assert.ok(p.commands.some((c) => c.join(' ') === '-I BAREMETAL-baremetal 1 -m comment --comment baremetal -j ACCEPT'))
    const after = parseListing(
      FRESH +
        '-N BAREMETAL-baremetal\n-A BAREMETAL-baremetal -m comment --comment baremetal -j ACCEPT\n-A BAREMETAL-baremetal -i lo -m comment --comment baremetal -j ACCEPT\n-A BAREMETAL-baremetal -m comment --comment baremetal -j DROP\n',
    )
    const p2 = planFirewall('present', after, {...W, ranges: [], sources: ['0.0.0.0/0']})
    assert.deepEqual(p2.commands, [])
  })
})

function stubCtx(stdout: string): ModuleContext {
  const t: Transport = {
    host: 'h',
    address: 'h',
    stats: {connections: 0, execs: 0, uploads: 0},
    connect: async () => {},
    close: async () => {},
    upload: async () => {},
    putFile: async () => {},
    exec: async (command: string): Promise<ExecResult> => ({command, exitCode: 0, signal: null, stdout, stderr: '', failed: false, timedOut: false}),
  }
  return {
    host: 'h',
    address: 'h',
    transport: t,
    facts: {home: '/root', user: 'root', os: 'linux', arch: 'x64', cores: 1, memMb: 1},
    check: false,
    diff: false,
    vars: {},
    playbookDir: '/',
    secrets: new Set(),
    log: () => {},
    signal: new AbortController().signal,
    playHosts: [],
  }
}

describe('firewall: host without iptables', () => {
  it('ok, says so, and sets data.warning', async () => {
    const [r] = await firewallModule.run(stubCtx('@@ NOTOOL\n'), [{args: {ports: ['6379:6478'], sources: [], state: 'present', tag: 'baremetal'}}])
    assert.equal(r.status, 'ok')
    assert.equal(r.msg, NO_TOOL_MSG)
    assert.equal(r.data?.warning, NO_TOOL_MSG)
  })
  it('bad input fails before touching the host', async () => {
    const [r] = await firewallModule.run(stubCtx(''), [{args: {ports: ['6379:6478'], sources: ['fe80::1'], state: 'present', tag: 'baremetal'}}])
    assert.equal(r.status, 'failed')
  })
})
