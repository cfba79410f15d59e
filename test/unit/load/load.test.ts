import assert from 'node:assert/strict'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import fc from 'fast-check'
import {Histogram} from '../../../src/load/histogram.js'
import {loadRecord, RangeSet, saveRecord, toRecord, valueOf} from '../../../src/load/keys.js'
import {errorKind} from '../../../src/load/run.js'

describe('RangeSet (the verification memory)', () => {
  it('in-order acknowledgements are one range, gaps start new ones', () => {
    const r = new RangeSet()
    for (let i = 0; i < 100_000; i++) if (i !== 500) r.add(i)
    assert.deepEqual(r.ranges, [
      [0, 499],
      [501, 99_999],
    ])
    assert.equal(r.count, 99_999)
  })

  it('holds exactly the added numbers, in any order (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({min: 0, max: 300}), {maxLength: 200}), (nums) => {
        const r = new RangeSet()
        for (const n of nums) r.add(n)
        const want = [...new Set(nums)].sort((a, b) => a - b)
        assert.deepEqual([...r], want)
        for (let i = 1; i < r.ranges.length; i++) assert.ok(r.ranges[i][0] > r.ranges[i - 1][1] + 1, 'disjoint, not adjacent')
      }),
    )
  })

  it('a record round-trips through its file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bm-load-'))
    try {
      const acked = new RangeSet()
      for (const n of [0, 1, 2, 5, 6]) acked.add(n)
      saveRecord(join(dir, 'k.json'), toRecord([{uuid: 'u1', acked}], 100))
      const back = loadRecord(join(dir, 'k.json'))
      assert.equal(back.dataSize, 100)
      assert.deepEqual([...back.workers[0].acked], [0, 1, 2, 5, 6])
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})

describe('values', () => {
  it('the key twice by default, exactly the data size otherwise', () => {
    assert.equal(valueOf('k-1'), 'k-1k-1')
    assert.equal(valueOf('k-1', 7), 'k-1k-1k')
    assert.equal(valueOf('k-1', 2), 'k-')
    assert.equal(valueOf('k-1', 1000).length, 1000)
    assert.equal(valueOf('k-1', 0), '')
  })
})

describe('Histogram', () => {
  it('percentiles within 4% of the exact ones, max exact', () => {
    const h = new Histogram()
    const xs: number[] = []
    let seed = 7
    for (let i = 0; i < 50_000; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      const v = 50 + (seed % 100_000) * ((seed >> 8) % 3 === 0 ? 10 : 1)
      xs.push(v)
      h.record(v)
    }
    xs.sort((a, b) => a - b)
    for (const q of [0.5, 0.9, 0.99, 0.999]) {
      const exact = xs[Math.ceil(q * xs.length) - 1]
      const got = h.percentile(q)
      assert.ok(got >= exact && got <= exact * 1.04, `p${q * 100}: ${got} vs exact ${exact}`)
    }
    assert.equal(h.max, xs[xs.length - 1])
    assert.equal(h.count, 50_000)
  })

  it('small values are exact', () => {
    const h = new Histogram()
    for (const v of [1, 2, 3, 4, 5]) h.record(v)
    assert.equal(h.percentile(0.5), 3)
    assert.equal(h.percentile(1), 5)
  })
})

describe('errorKind', () => {
  it('names redirections, cluster states and connection failures', () => {
    assert.equal(errorKind(new Error('MOVED 3999 10.1.1.1:7000')), 'MOVED')
    assert.equal(errorKind(new Error('TRYAGAIN Multiple keys request during rehashing of slot')), 'TRYAGAIN')
    assert.equal(errorKind(new Error('CLUSTERDOWN The cluster is down')), 'CLUSTERDOWN')
    assert.equal(errorKind(new Error('Connection is closed.')), 'CONNECTION_CLOSED')
    assert.equal(errorKind(new Error('connect ECONNREFUSED 127.0.0.1:7000')), 'ECONNREFUSED')
    assert.equal(errorKind(new Error('Command timed out')), 'TIMEOUT')
    assert.equal(errorKind(new Error('Too many Cluster redirections. Last error: MOVED')), 'REDIRECTIONS')
    assert.equal(errorKind(new Error('WRONGPASS invalid username-password pair')), 'NOAUTH')
    assert.equal(errorKind(new Error('something else')), 'OTHER')
  })
})
