import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, writeFileSync, mkdirSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {dataFactsScript, demoteScript, parseDataFacts} from '../../../src/modules/redis/failover.js'
import {dataSurvives, planHandover, type DataFacts} from '../../../src/redis/handover.js'
import {parseClusterNodes} from '../../../src/redis/nodes.js'

// Three shards on 192.0.2.{1,2,3} (documentation addresses): A (7000 on .1) replicated by
// .2:7001, B (7000 on .2) by .3:7001, C (7000 on .3) by .1:7001.
const NODES = [
  'aaaa 192.0.2.1:7000@17000 myself,master - 0 0 1 connected 0-5460',
  'bbbb 192.0.2.2:7000@17000 master - 0 0 2 connected 5461-10922',
  'cccc 192.0.2.3:7000@17000 master - 0 0 3 connected 10923-16383',
  'rrr1 192.0.2.2:7001@17001 slave aaaa 0 0 1 connected',
  'rrr2 192.0.2.3:7001@17001 slave bbbb 0 0 2 connected',
  'rrr3 192.0.2.1:7001@17001 slave cccc 0 0 3 connected',
].join('\n')
const entries = parseClusterNodes(NODES)
const all = entries.map((e) => e.addr)
const nothing: DataFacts = {running: false, aof: false, rdb: false, saved: false, savePoints: false, log: true, everOk: true, ownSlots: []}
const down = (...addrs: string[]) => addrs.map((addr) => ({addr, host: `h${addr.split('.')[3][0]}`}))
const liveBut = (...dead: string[]) => new Set(all.filter((a) => !dead.includes(a)))

describe('handover: dead masters before they restart', () => {
  it('a dead master with a live replica is failed over first (FORCE while a majority of masters lives)', () => {
    const plan = planHandover(down('192.0.2.1:7000'), liveBut('192.0.2.1:7000'), entries, new Map([['192.0.2.1:7000', nothing]]), false)
    assert.deepEqual(plan, [{addr: '192.0.2.1:7000', host: 'h1', action: 'failover', id: 'aaaa', slots: [[0, 5460]], replicas: ['192.0.2.2:7001'], takeover: false}])
  })

  it('a whole host down: its master is failed over, its replica just starts', () => {
    const dead = ['192.0.2.1:7000', '192.0.2.1:7001']
    const plan = planHandover(down(...dead), liveBut(...dead), entries, new Map(dead.map((a) => [a, nothing])), false)
    assert.deepEqual(
      plan.map((h) => h.action),
      ['failover', 'start'],
    )
  })

  it('no majority of live masters to vote: TAKEOVER (the dead master is known dead on its host)', () => {
    const dead = ['192.0.2.1:7000', '192.0.2.2:7000']
    const plan = planHandover(down(...dead), liveBut(...dead), entries, new Map(dead.map((a) => [a, nothing])), false)
    // 1 of 3 masters lives: no majority for the first; after it is promoted, 2 of 3 vote.
    assert.deepEqual(
      plan.map((h) => h.action === 'failover' && h.takeover),
      [true, false],
    )
  })

  it('no live replica and no data on disk: refused, naming the slots; with allowDataLoss started empty', () => {
    const dead = ['192.0.2.1:7000', '192.0.2.2:7001']
    const data = new Map(dead.map((a) => [a, nothing]))
    const [m] = planHandover(down(...dead), liveBut(...dead), entries, data, false)
    assert.equal(m.action, 'refuse')
    assert.match((m as {why: string}).why, /5461 slot\(s\) \(0-5460\).*no live replica and no data on disk/)
    assert.equal(planHandover(down(...dead), liveBut(...dead), entries, data, true)[0].action, 'start-empty')
  })

  it('no live replica but the data survives: started', () => {
    const dead = ['192.0.2.1:7000', '192.0.2.2:7001']
    for (const d of [{aof: true}, {rdb: true, saved: true}, {rdb: true, savePoints: true}, {everOk: false}]) {
      const [m] = planHandover(down(...dead), liveBut(...dead), entries, new Map(dead.map((a) => [a, {...nothing, ...d}])), false)
      assert.equal(m.action, 'start', JSON.stringify(d))
    }
    // An RDB alone is the leftover of an old full sync: it does not count.
    assert.equal(dataSurvives({...nothing, rdb: true}), undefined)
    // No log at all: it may have served writes.
    assert.equal(dataSurvives({...nothing, log: false, everOk: false}), undefined)
  })

  it("every node down (a cold start): each one's own nodes.conf says what it owned", () => {
    const own = {...nothing, ownSlots: [[0, 5460]] as Array<[number, number]>}
    const plan = planHandover(
      down('192.0.2.1:7000', '192.0.2.2:7001'),
      new Set(),
      [],
      new Map([
        ['192.0.2.1:7000', own],
        ['192.0.2.2:7001', nothing],
      ]),
      false,
    )
    assert.deepEqual(
      plan.map((h) => h.action),
      ['refuse', 'start'],
    )
  })

  it('the host script reports what is on disk, one line per port', () => {
    const s = dataFactsScript('/root/redis cluster', [7000, 7001])
    assert.match(s, /^dir='\/root\/redis cluster'$/m)
    assert.match(s, /for p in 7000 7001; do/)
    const f = parseDataFacts('noise\n@@ 7000 0 1 0 0 0 1 1 0-5460,6000\n@@ 7001 1 0 1 1 1 0 0 \n')
    assert.deepEqual(f.get(7000), {
      running: false,
      aof: true,
      rdb: false,
      saved: false,
      savePoints: false,
      log: true,
      everOk: true,
      ownSlots: [
        [0, 5460],
        [6000, 6000],
      ],
    })
    assert.deepEqual(f.get(7001), {running: true, aof: false, rdb: true, saved: true, savePoints: true, log: false, everOk: false, ownSlots: []})
  })

  it("a dead master's nodes.conf is rewritten before it starts: itself a replica of the promoted node, owning nothing (real sh + awk)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'bm-demote-'))
    mkdirSync(join(dir, '7000'))
    const a = 'a'.repeat(40)
    const b = 'b'.repeat(40)
    writeFileSync(
      join(dir, '7000/nodes.conf'),
      [
        `${a} 192.0.2.1:7000@17000 myself,master - 0 0 14 connected 0-2730 [5->-${b}]`,
        `${b} 192.0.2.2:7002@17002 slave ${a} 0 1796117516515 14 connected`,
        'cccc 192.0.2.3:7000@17000 master - 0 1 3 connected 5461-8191',
        'vars currentEpoch 18 lastVoteEpoch 0',
      ].join('\n') + '\n',
    )
    const r = spawnSync('sh', ['-s'], {input: demoteScript(dir, 7000, b)})
    assert.equal(r.stdout.toString().trim(), '@@ 7000 demoted')
    assert.deepEqual(readFileSync(join(dir, '7000/nodes.conf'), 'utf8').split('\n'), [
      `${a} 192.0.2.1:7000@17000 myself,slave ${b} 0 0 14 connected`,
      `${b} 192.0.2.2:7002@17002 master - 0 1796117516515 14 connected`,
      'cccc 192.0.2.3:7000@17000 master - 0 1 3 connected 5461-8191',
      'vars currentEpoch 18 lastVoteEpoch 0',
      '',
    ])
    assert.throws(() => demoteScript(dir, 7000, "x'; rm -rf /"), /not a node id/)
  })
})
