import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {
  countMismatches,
  coverageProblems,
  fileProblems,
  keySlot,
  MANIFEST_FORMAT,
  parseManifest,
  rangeCounts,
  rdbHeaderVersion,
  rdbVersionOf,
  versionProblems,
  type Manifest,
  type ManifestFile,
} from '../../../src/redis/backup-manifest.js'

const SHA = 'a'.repeat(64)

function file(name: string, ranges: Array<[number, number, number]>, extra: Partial<ManifestFile> = {}): ManifestFile {
  return {
    file: name,
    sha256: SHA,
    bytes: 100,
    rdbVersion: 10,
    masterId: 'm'.repeat(40),
    nodeId: 'm'.repeat(40),
    node: '10.0.0.1:7000',
    role: 'master',
    redisVersion: '7.0.15',
    snapshotAt: '2026-01-01T00:00:00.000Z',
    keys: ranges.reduce((s, r) => s + r[2], 0),
    expires: 0,
    ranges: ranges.map(([from, to, keys]) => ({from, to, keys})),
    ...extra,
  }
}

function manifest(files: ManifestFile[]): Manifest {
  return {format: MANIFEST_FORMAT, cluster: 'redis-7000', createdAt: '2026-01-01T00:00:00.000Z', redisVersion: '7.0.15', shape: {masters: files.length, replicas: 0}, nodes: [], files}
}

describe('backup manifest', () => {
  it('a whole cluster in two files parses', () => {
    const r = parseManifest(manifest([file('a.rdb', [[0, 8191, 5]]), file('b.rdb', [[8192, 16383, 7]])]))
    assert.deepEqual(r.problems, [])
    assert.ok(r.manifest)
  })

  it('refuses overlapping, missing and out-of-range slots', () => {
    assert.match(
      coverageProblems([
        {file: 'a.rdb', ranges: [{from: 0, to: 100}]},
        {file: 'b.rdb', ranges: [{from: 100, to: 16383}]},
      ]).join(),
      /slot 100 is in both a.rdb and b.rdb/,
    )
    assert.match(coverageProblems([{file: 'a.rdb', ranges: [{from: 0, to: 16000}]}]).join(), /383 slot\(s\) are in no file/)
    assert.match(coverageProblems([{file: 'a.rdb', ranges: [{from: 0, to: 16384}]}]).join(), /not within 0-16383/)
  })

  it('refuses a path in a file name, a bad sha256, another format, a shape that does not match the files', () => {
    const bad = parseManifest(manifest([file('../x.rdb', [[0, 16383, 1]], {sha256: 'xyz'})]))
    assert.match(bad.problems.join(), /not a plain \*\.rdb file name/)
    assert.match(bad.problems.join(), /sha256 is not 64 hex digits/)
    assert.match(parseManifest({...manifest([file('a.rdb', [[0, 16383, 1]])]), format: 'other/9'}).problems.join(), /format is "other\/9"/)
    assert.match(parseManifest({...manifest([file('a.rdb', [[0, 16383, 1]])]), shape: {masters: 3, replicas: 0}}).problems.join(), /3 masters but 1 files/)
    assert.deepEqual(parseManifest(null).problems, ['not a JSON object'])
    assert.match(parseManifest({...manifest([]), files: []}).problems.join(), /no snapshot listed/)
  })

  it('a file is checked for presence, size, sha256 and RDB format', () => {
    const f = file('a.rdb', [[0, 16383, 1]])
    assert.deepEqual(fileProblems(f, {bytes: 100, sha256: SHA, rdbVersion: 10}), [])
    assert.match(fileProblems(f, undefined)[0], /missing/)
    assert.match(fileProblems(f, {bytes: 100, sha256: 'b'.repeat(64), rdbVersion: 10})[0], /sha256 bbbbbbbbbbbb…, the manifest says aaaaaaaaaaaa…/)
    assert.match(fileProblems(f, {bytes: 99, sha256: SHA, rdbVersion: 10})[0], /99 bytes/)
    assert.match(fileProblems(f, {bytes: 100, sha256: SHA, rdbVersion: 9})[0], /RDB format 9/)
  })

  it('per-slot counts sum into the ranges', () => {
    const per = new Array(16384).fill(0)
    per[0] = 2
    per[5] = 3
    per[100] = 7
    assert.deepEqual(
      rangeCounts(
        [
          [0, 5],
          [6, 16383],
        ],
        per,
      ),
      [
        {from: 0, to: 5, keys: 5},
        {from: 6, to: 16383, keys: 7},
      ],
    )
  })
})

describe('versions', () => {
  it('Redis versions map to RDB formats; the header is read', () => {
    assert.equal(rdbVersionOf('5.0.3'), 9)
    assert.equal(rdbVersionOf('6.2.14'), 9)
    assert.equal(rdbVersionOf('7.0.15'), 10)
    assert.equal(rdbVersionOf('7.2.4'), 11)
    assert.equal(rdbHeaderVersion(Buffer.from('REDIS0010\xfa', 'latin1')), 10)
    assert.equal(rdbHeaderVersion(Buffer.from('NOTREDIS!')), undefined)
  })

  it('backup ≤ loader ≤ target, else refused naming the direction', () => {
    assert.deepEqual(versionProblems(9, {version: '7.0.15'}, {version: '7.0.15'}), [])
    assert.deepEqual(versionProblems(9, {version: '5.0.3'}, {version: '5.0.3'}), [])
    // 7.x backup into 5.0.3: neither a 5.0.3 loader reads it, nor a 7.x loader's DUMP restores there.
    assert.match(versionProblems(10, {version: '5.0.3'}, {version: '5.0.3'}).join(), /a backup of a newer Redis cannot be restored into an older one/)
    assert.match(versionProblems(10, {version: '5.0.3'}, {version: '7.0.15'}).join(), /RDB format 10, which redis-server 5.0.3 \(the loader\) cannot read/)
    assert.match(versionProblems(10, {version: '7.0.15'}, {version: '5.0.3'}).join(), /a backup of a newer Redis cannot be restored into an older one/)
    // A 5.0.3 backup into 5.0.3 through a 7.x loader: the loader's payloads are too new.
    assert.match(versionProblems(9, {version: '7.0.15'}, {version: '5.0.3'}).join(), /give --redis-server of the target's version/)
  })
})

describe('keySlot', () => {
  it('matches Redis (CLUSTER KEYSLOT) including hash tags', () => {
    assert.equal(keySlot('foo'), 12182)
    assert.equal(keySlot('bar'), 5061)
    assert.equal(keySlot('123456789'), 0x31c3 % 16384)
    assert.equal(keySlot('{user1000}.following'), keySlot('user1000'))
    // The values of the CLUSTER KEYSLOT documentation.
    assert.equal(keySlot('somekey'), 11058)
    assert.equal(keySlot('foo{hash_tag}'), 2515)
    assert.notEqual(keySlot('foo{}{bar}'), keySlot('bar'))
    assert.equal(keySlot('foo{{bar}}zap'), keySlot('{bar'))
    assert.equal(keySlot(Buffer.from('foo')), 12182)
  })
})

describe('countMismatches', () => {
  const r = (manifest: number, restored: number, target: number) => ({from: 0, to: 10, manifest, restored, target})
  it('exact onto an empty target, at least with --force', () => {
    assert.deepEqual(countMismatches([{file: 'a.rdb', expires: 0, ranges: [r(5, 5, 5)]}], {targetWasEmpty: true}), [])
    assert.match(countMismatches([{file: 'a.rdb', expires: 0, ranges: [r(5, 5, 4)]}], {targetWasEmpty: true})[0], /slots 0-10 \(a.rdb\): the target holds 4 keys, 5 were restored/)
    assert.match(countMismatches([{file: 'a.rdb', expires: 0, ranges: [r(5, 5, 6)]}], {targetWasEmpty: true})[0], /holds 6/)
    assert.deepEqual(countMismatches([{file: 'a.rdb', expires: 0, ranges: [r(5, 5, 6)]}], {targetWasEmpty: false}), [])
  })
  it('a snapshot short of the manifest only by keys with a TTL', () => {
    assert.deepEqual(countMismatches([{file: 'a.rdb', expires: 2, ranges: [r(5, 3, 3)]}], {targetWasEmpty: true}), [])
    assert.match(countMismatches([{file: 'a.rdb', expires: 1, ranges: [r(5, 3, 3)]}], {targetWasEmpty: true})[0], /2 keys of the manifest are not in the snapshot/)
  })
})
