import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {
  NodeIds,
  compressSlots,
  countSlots,
  digestClusterNodes,
  expandRanges,
  mergeRanges,
  parseClusterInfo,
  parseClusterNodes,
  parseNodeAddress,
  parseSlotRanges,
  rangesToString,
  viewSignature,
} from '../../../src/redis/nodes.js'
import {buildClusterReport, probeFromText, problemTexts, renderClusterReport, type NodeProbe} from '../../../src/redis/status.js'
import {forEachNode} from '../../../src/redis/helpers.js'
import {pickBindAddress} from '../../../src/redis/inventory-nodes.js'

// Redis 7 output of a 3+3 cluster, as printed by the node on 30001 (hostnames announced).
const SIX = `07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,hostname4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002,hostname2 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003,hostname3 master - 0 1426238318243 3 connected 10923-16383
6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@31005,hostname5 slave 67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 0 1426238316232 5 connected
824fe116063bc5fcf9f4ffd895bc17aee7731ac3 127.0.0.1:30006@31006,hostname6 slave 292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 0 1426238317741 6 connected
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001,hostname1 myself,master - 0 0 1 connected 0-5460
`

// Redis 5.0.3 style (no hostname), a failed master, a handshake, an address-less node and open slots.
const MESSY = `a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1 192.0.2.1:6379@16379 myself,master - 0 0 7 connected 0-99 101 [100->-b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2] [16383-<-c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3]
b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2 192.0.2.2:6379@16379 master,fail - 1700000000000 1699999990000 8 disconnected 102-16382
c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3 192.0.2.3:6380@16380 slave,fail? b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2 0 1700000000000 8 connected
d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4 192.0.2.4:6381@16381 handshake - 1700000000000 0 0 disconnected
e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5 :0@0 master,noaddr - 1700000000000 1700000000000 9 disconnected
`

describe('parseClusterNodes', () => {
  it('reads the Redis 7 format with hostnames', () => {
    const nodes = parseClusterNodes(SIX)
    assert.equal(nodes.length, 6)
    const me = nodes.find((n) => n.myself)!
    assert.equal(me.id, 'e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca')
    assert.equal(me.addr, '127.0.0.1:30001')
    assert.equal(me.busPort, 31001)
    assert.equal(me.hostname, 'hostname1')
    assert.deepEqual(me.slots, [[0, 5460]])
    assert.ok(me.master && !me.replica)
    const r = nodes[0]
    assert.ok(r.replica)
    assert.equal(r.masterId, me.id)
    assert.equal(r.configEpoch, 4)
    assert.equal(r.pongRecv, 1426238317239)
    assert.equal(r.linkState, 'connected')
  })

  it('reads fail flags, handshakes, :0@0 addresses and open slots', () => {
    const [me, failed, pfail, hs, noaddr] = parseClusterNodes(MESSY)
    assert.deepEqual(me.slots, [
      [0, 99],
      [101, 101],
    ])
    assert.deepEqual(me.migrating, [{slot: 100, to: 'b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2'}])
    assert.deepEqual(me.importing, [{slot: 16383, from: 'c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3'}])
    assert.ok(failed.fail && !failed.pfail && failed.linkState === 'disconnected')
    assert.ok(pfail.pfail && !pfail.fail && pfail.replica)
    assert.ok(hs.handshake && !hs.master)
    assert.ok(noaddr.noaddr)
    assert.equal(noaddr.ip, '')
    assert.equal(noaddr.port, 0)
    assert.equal(noaddr.busPort, 0)
  })

  it('reads the 3.x address without bus port, a lone node and IPv6', () => {
    assert.deepEqual(parseNodeAddress('10.0.0.1:7000'), {ip: '10.0.0.1', port: 7000, busPort: 17000})
    assert.deepEqual(parseNodeAddress(':6379@16379'), {ip: '', port: 6379, busPort: 16379})
    assert.deepEqual(parseNodeAddress('::1:6379@16379'), {ip: '::1', port: 6379, busPort: 16379})
    const [lone] = parseClusterNodes('f00df00df00df00df00df00df00df00df00df00d :6379@16379 myself,master - 0 0 0 connected\n')
    assert.equal(lone.configEpoch, 0)
    assert.deepEqual(lone.slots, [])
    assert.equal(parseClusterNodes('aaaa ::1:7000@17000 myself,master - 0 0 1 connected 5')[0].addr, '[::1]:7000')
  })

  it('names the line when a token is not understood', () => {
    assert.throws(() => parseClusterNodes('abc 192.0.2.9:1@2 master - 0 0'), /expected at least 8/)
    assert.throws(() => parseClusterNodes('abc 192.0.2.9:1@2 master - 0 0 1 connected 20000'), /out of bounds/)
    assert.throws(() => parseClusterNodes('abc 192.0.2.9:1@2 master - 0 0 1 connected [1-x-y]'), /open-slot token/)
  })

  it('digests agree with the full parse and ignore line order, replicas and open slots', () => {
    const ids = new NodeIds()
    const a = digestClusterNodes(SIX, ids)
    const b = digestClusterNodes(SIX.split('\n').reverse().join('\n'), ids)
    assert.equal(a.signature, b.signature)
    assert.equal(a.signature, viewSignature(parseClusterNodes(SIX)))
    assert.match(a.signature, /^3\./)
    assert.equal(a.lines, 6)
    assert.equal(a.known.length, 6)
    assert.deepEqual([...a.known], [...b.known])
    assert.equal(a.myself.id, 'e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca')
    const m = digestClusterNodes(MESSY, ids)
    assert.equal(m.lines, 5)
    assert.equal(m.known.length, 3, 'handshake and noaddr are not known nodes')
    assert.deepEqual(
      m.failed.map((x) => ids.ids[x]),
      ['b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2'],
    )
    assert.equal(m.signature, viewSignature(parseClusterNodes(MESSY)))
    const moved = digestClusterNodes(SIX.replace('0-5460', '0-5459').replace('5461-10922', '5460-10922'), ids)
    assert.notEqual(moved.signature, a.signature)
  })

  it('digests agree with the full parse on random views (flags, open slots, CRLF, fail vs fail?)', () => {
    let seed = 7
    const rnd = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n
    const flagSets = ['master', 'myself,master', 'slave', 'master,fail', 'master,fail?', 'handshake', 'master,noaddr', 'myself,slave']
    for (let round = 0; round < 200; round++) {
      const lines: string[] = []
      const n = 1 + rnd(12)
      for (let i = 0; i < n; i++) {
        const id = (i.toString(16) + round.toString(16)).padStart(40, 'a')
        const flags = i === 0 ? (rnd(2) ? 'myself,master' : 'myself,slave') : flagSets[2 + rnd(flagSets.length - 2)]
        const slots: string[] = []
        for (let k = rnd(4); k > 0; k--) slots.push(rnd(3) === 0 ? `[${rnd(16384)}->-${id}]` : rnd(2) ? String(rnd(16384)) : `${rnd(8000)}-${8000 + rnd(8000)}`)
        lines.push(`${id} 10.0.0.${i}:7000@17000 ${flags} - 0 0 ${i} connected${slots.length ? ' ' + slots.join(' ') : ''}`)
      }
      const text = lines.join(rnd(2) ? '\n' : '\r\n') + '\n'
      const d = digestClusterNodes(text, new NodeIds())
      const full = parseClusterNodes(text)
      assert.equal(d.signature, viewSignature(full), text)
      assert.equal(d.known.length, full.filter((e) => !e.handshake && !e.noaddr).length)
      assert.equal(d.failed.length, full.filter((e) => e.fail && !e.handshake && !e.noaddr).length, text)
    }
  })
})

describe('parseClusterInfo', () => {
  it('reads key:value lines with CRLF', () => {
    const info = parseClusterInfo('cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_known_nodes:6\r\n')
    assert.deepEqual(info, {cluster_state: 'ok', cluster_slots_assigned: '16384', cluster_known_nodes: '6'})
  })
})

describe('slot ranges', () => {
  it('compresses like redis-cli prints them', () => {
    assert.equal(compressSlots([10923, 0, 1, 2, 3, 5, 5, 4]), '0-5,10923')
    assert.equal(compressSlots([]), '')
    assert.equal(compressSlots(Array.from({length: 16384}, (_, i) => i)), '0-16383')
    assert.equal(
      rangesToString([
        [5, 9],
        [0, 4],
        [12, 12],
      ]),
      '0-9,12',
    )
  })
  it('round-trips and counts', () => {
    const r = parseSlotRanges('0-5460,10923,10924-16383')
    assert.deepEqual(r, [
      [0, 5460],
      [10923, 16383],
    ])
    assert.equal(countSlots(r), 5461 + 5461)
    assert.equal(
      expandRanges([
        [3, 5],
        [4, 6],
      ]).join(','),
      '3,4,5,6',
    )
    assert.deepEqual(
      mergeRanges([
        [1, 2],
        [3, 4],
        [10, 11],
      ]),
      [
        [1, 4],
        [10, 11],
      ],
    )
  })
})

describe('pickBindAddress', () => {
  it('picks the first concrete, non-loopback address', () => {
    assert.equal(pickBindAddress('127.0.0.1 192.0.2.1'), '192.0.2.1')
    assert.equal(pickBindAddress('-::1 127.0.0.1'), '127.0.0.1')
    assert.equal(pickBindAddress('127.0.0.1 -::1'), '127.0.0.1')
    assert.equal(pickBindAddress('0.0.0.0'), undefined)
    assert.equal(pickBindAddress('* -::*'), undefined)
    assert.equal(pickBindAddress(undefined), undefined)
  })
})

// Six probes built from one text: each node sees the same lines with its own marked myself.
function probesFrom(text: string, hosts: string[], mutate?: (addr: string, lines: string) => string): NodeProbe[] {
  const lines = text
    .trim()
    .split('\n')
    .map((l) => l.replace('myself,', ''))
  const all = parseClusterNodes(lines.join('\n'))
  const ids = new NodeIds()
  const keep = new Set<string>()
  return all.map((n, i) => {
    const own = lines.map((l) => (l.startsWith(n.id) ? l.replace(/ (master|slave) /, ' myself,$1 ') : l)).join('\n')
    const view = mutate ? mutate(n.addr, own) : own
    return probeFromText({host: hosts[i], ip: n.ip, port: n.port}, n.addr, {cluster_state: 'ok'}, view, 0, ids, keep)
  })
}

describe('buildClusterReport', () => {
  const hosts = ['h1', 'h2', 'h3', 'h2', 'h3', 'h1']

  it('a healthy cluster: masters with ranges, replicas with masters, per-host counts', () => {
    const r = buildClusterReport(probesFrom(SIX, hosts))
    assert.deepEqual(r.problems, [])
    assert.ok(r.ok)
    assert.equal(r.slotsCovered, 16384)
    assert.deepEqual(
      r.masters.map((m) => m.slots),
      ['0-5460', '5461-10922', '10923-16383'],
    )
    assert.equal(r.replicas.length, 3)
    assert.equal(r.replicas.find((x) => x.addr === '127.0.0.1:30004')!.masterAddr, '127.0.0.1:30001')
    assert.deepEqual(r.perHost.h1, {masters: 1, replicas: 1, new: 0, unreachable: 0})
    assert.ok(JSON.parse(JSON.stringify(r)).ok)
    const text = renderClusterReport(r)
    assert.match(text, /^cluster ok: 3 master\(s\), 3 replica\(s\), 16384\/16384 slots covered/)
    assert.match(text, /M 127\.0\.0\.1:30001 .* slots 0-5460 \(5461\)/)
  })

  it('names disagreeing nodes, open slots, uncovered slots, unreachable and new nodes', () => {
    const probes = probesFrom(SIX, hosts, (addr, view) => {
      // 30003 believes 30002 also serves 10923-10930 (a stale view).
      if (addr === '127.0.0.1:30003') return view.replace(' 5461-10922', ' 5461-10930').replace(' 10923-16383', ' 10931-16383')
      // 30002 has slot 6000 open towards 30003.
      if (addr === '127.0.0.1:30002') return view.replace(' 5461-10922', ' 5461-10922 [6000->-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]')
      // 30006 has not heard of the replica on 30004 yet.
      if (addr === '127.0.0.1:30006')
        return view
          .split('\n')
          .filter((l) => !l.includes(':30004@'))
          .join('\n')
      return view
    })
    const down = probes.findIndex((p) => p.addr === '127.0.0.1:30005')
    probes[down] = {node: probes[down].node, addr: probes[down].addr, error: 'connection refused'}
    probes.push(probeFromText({host: 'h4', ip: '127.0.0.1', port: 30007}, '127.0.0.1:30007', {cluster_state: 'fail'}, 'ffff :30007@31007 myself,master - 0 0 0 connected', 0, new NodeIds(), new Set()))
    const r = buildClusterReport(probes)
    assert.ok(!r.ok)
    assert.deepEqual(r.newNodes, ['127.0.0.1:30007'])
    assert.deepEqual(r.unreachable, ['127.0.0.1:30005'])
    const texts = problemTexts(r.problems)
    assert.ok(
      texts.some((p) => /30005 \(host h2\) is unreachable: connection refused/.test(p)),
      texts.join('\n'),
    )
    assert.ok(
      texts.some((p) => /30003 disagrees on the slot map: 8 slot\(s\) differ, e\.g\. slot 10923 is served by 127\.0\.0\.1:30002 here but by 127\.0\.0\.1:30003/.test(p)),
      texts.join('\n'),
    )
    assert.ok(texts.some((p) => /30002 has slot 6000 open \(migrating to 127\.0\.0\.1:30003\)/.test(p)))
    assert.ok(texts.includes('127.0.0.1:30006 knows 5 of 6 nodes (missing: 127.0.0.1:30004)'), texts.join('\n'))
    // Callers filter by kind, never by text: each line names its kind and node.
    assert.deepEqual(
      r.problems.find((p) => p.kind === 'unreachable'),
      {kind: 'unreachable', node: '127.0.0.1:30005', text: '127.0.0.1:30005 (host h2) is unreachable: connection refused'},
    )
    assert.deepEqual(
      r.problems.filter((p) => p.kind === 'disagree').map((p) => p.node),
      ['127.0.0.1:30003'],
    )
    assert.deepEqual(
      r.problems.filter((p) => p.kind === 'open-slot').map((p) => p.node),
      ['127.0.0.1:30002'],
    )
    assert.deepEqual(
      r.problems.filter((p) => p.kind === 'unaware').map((p) => p.node),
      ['127.0.0.1:30006'],
    )
    assert.deepEqual(r.openSlots, [{addr: '127.0.0.1:30002', slot: 6000, state: 'migrating', peer: '127.0.0.1:30003'}])
    assert.equal(r.perHost.h4.new, 1)
    // The unreachable node is still named by its inventory host, not reported as foreign.
    assert.deepEqual(r.unknownNodes, [])
    assert.equal(r.replicas.find((x) => x.addr === '127.0.0.1:30005')!.host, 'h2')
  })

  it('reports nothing formed when every node is alone', () => {
    const lone = probeFromText({host: 'a', ip: '127.0.0.1', port: 30007}, '127.0.0.1:30007', {}, 'ffff :30007@31007 myself,master - 0 0 0 connected', 3, new NodeIds(), new Set())
    const r = buildClusterReport([lone])
    assert.ok(!r.ok)
    assert.match(problemTexts(r.problems).join('\n'), /holds 3 key\(s\)/)
    assert.match(problemTexts(r.problems).join('\n'), /no cluster formed/)
    assert.deepEqual(
      r.problems.map((p) => p.kind),
      ['has-keys', 'no-cluster'],
    )
  })
})

describe('forEachNode', () => {
  it('lets every call finish before the first failure propagates (nothing runs after the caller cleaned up)', async () => {
    const finished: number[] = []
    const err = await forEachNode([1, 2, 3], 3, async (n) => {
      if (n === 1) throw new Error('first fails at once')
      await new Promise((r) => setTimeout(r, 30 * n))
      finished.push(n)
      return n
    }).catch((e: Error) => e)
    assert.ok(err instanceof Error)
    assert.equal(err.message, 'first fails at once')
    assert.deepEqual(finished, [2, 3])
  })

  it('returns the results in order, concurrency bounded', async () => {
    let inFlight = 0
    let peak = 0
    const out = await forEachNode([5, 1, 3, 2], 2, async (n) => {
      peak = Math.max(peak, ++inFlight)
      await new Promise((r) => setTimeout(r, n * 5))
      inFlight--
      return n * 10
    })
    assert.deepEqual(out, [50, 10, 30, 20])
    assert.equal(peak, 2)
  })
})
