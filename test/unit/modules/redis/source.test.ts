import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {detectSource, expectedSha256, parseSourceFacts, planSource, remoteCommit, type SourceFacts} from '../../../../src/modules/redis/source.js'
import {RELEASE_SHA256, releaseUrl} from '../../../../src/redis/versions.js'

const SHA = 'ab'.repeat(32)
const OTHER = 'cd'.repeat(32)
const facts = (f: Partial<SourceFacts> = {}): SourceFacts => ({marker: '', stagedSha: '', fetcher: 'curl', git: true, remote: [], remoteError: '', ...f})

describe('redis_source: source kind', () => {
  const table: Array<[string, ReturnType<typeof detectSource>]> = [
    ['', {kind: 'release', url: 'https://download.redis.io/releases/redis-7.0.15.tar.gz'}],
    ['  ', {kind: 'release', url: 'https://download.redis.io/releases/redis-7.0.15.tar.gz'}],
    ['https://example.org/r.tar.gz', {kind: 'url', url: 'https://example.org/r.tar.gz'}],
    ['http://mirror.local/r.tgz', {kind: 'url', url: 'http://mirror.local/r.tgz'}],
    ['git+https://github.com/redis/redis.git', {kind: 'git', url: 'https://github.com/redis/redis.git'}],
    ['git+file:///srv/redis', {kind: 'git', url: 'file:///srv/redis'}],
    ['/abs/redis.tar.gz', {kind: 'controller', path: '/abs/redis.tar.gz'}],
    ['files/redis.tar.gz', {kind: 'controller', path: '/play/files/redis.tar.gz'}],
    ['../r.tar.gz', {kind: 'controller', path: '/r.tar.gz'}],
  ]
  for (const [source, want] of table) {
    it(`"${source}" → ${want.kind}`, () => assert.deepEqual(detectSource(source, '7.0.15', '/play'), want))
  }
})

describe('redis_source: expected sha256', () => {
  it('release uses the built-in table', () => {
    assert.deepEqual(expectedSha256(detectSource('', '5.0.3', '/'), '5.0.3', ''), {sha: RELEASE_SHA256['5.0.3']})
  })
  it('release of an unknown version needs sha256', () => {
    assert.match(expectedSha256(detectSource('', '9.9.9', '/'), '9.9.9', '').error!, /no published sha256 .*9\.9\.9/)
  })
  it('an explicit sha256 wins and is lower-cased', () => {
    assert.deepEqual(expectedSha256(detectSource('', '5.0.3', '/'), '5.0.3', SHA.toUpperCase()), {sha: SHA})
  })
  it('a URL without sha256 is refused', () => {
    assert.match(expectedSha256(detectSource('https://x/r.tgz', '1', '/'), '1', '').error!, /sha256 is required/)
  })
  it('a malformed sha256 is refused', () => {
    assert.match(expectedSha256(detectSource('https://x/r.tgz', '1', '/'), '1', 'abc').error!, /64 hex/)
  })
  it('git refuses sha256', () => {
    assert.match(expectedSha256(detectSource('git+https://x', '1', '/'), '1', SHA).error!, /does not apply/)
  })
  it('a controller file may omit it (computed locally)', () => {
    assert.deepEqual(expectedSha256(detectSource('/f.tgz', '1', '/'), '1', ''), {})
  })
  it('known versions are all present with 64 hex digits', () => {
    for (const v of ['5.0.3', '5.0.14', '6.0.20', '6.2.14', '7.0.15', '7.2.4']) assert.match(RELEASE_SHA256[v], /^[0-9a-f]{64}$/, v)
    assert.equal(releaseUrl('7.2.4'), 'https://download.redis.io/releases/redis-7.2.4.tar.gz')
  })
})

describe('redis_source: plan', () => {
  const rel = detectSource('', '7.0.15', '/')
  const ctl = detectSource('/f.tgz', '7.0.15', '/')
  const git = detectSource('git+https://h/redis', '7.0.15', '/')
  it('same identity already there → noop, nothing transferred', () => {
    assert.equal(planSource(rel, {sha: SHA, version: '7.0.15'}, facts({marker: `sha256:${SHA}`})).action, 'noop')
  })
  it('another tree there → download', () => {
    assert.deepEqual(planSource(rel, {sha: SHA, version: '7.0.15'}, facts({marker: `sha256:${OTHER}`})), {action: 'fetch', identity: `sha256:${SHA}`, transfer: 'download'})
  })
  it('verified tarball cached on the host → no transfer', () => {
    assert.equal((planSource(ctl, {sha: SHA, version: '7.0.15'}, facts({stagedSha: SHA})) as {transfer: string}).transfer, 'cached')
  })
  it('cached tarball with another hash → push again', () => {
    assert.equal((planSource(ctl, {sha: SHA, version: '7.0.15'}, facts({stagedSha: OTHER})) as {transfer: string}).transfer, 'push')
  })
  it('no curl nor wget → failed before anything', () => {
    assert.match((planSource(rel, {sha: SHA, version: '7.0.15'}, facts({fetcher: ''})) as {msg: string}).msg, /neither curl nor wget/)
  })
  it('git: the peeled commit of an annotated tag is the identity', () => {
    const remote = [`${'1'.repeat(40)}\trefs/tags/7.0.15`, `${'2'.repeat(40)}\trefs/tags/7.0.15^{}`]
    assert.deepEqual(planSource(git, {version: '7.0.15'}, facts({remote})), {action: 'fetch', identity: `git:${'2'.repeat(40)}`, transfer: 'clone'})
    assert.equal(planSource(git, {version: '7.0.15'}, facts({remote, marker: `git:${'2'.repeat(40)}`})).action, 'noop')
  })
  it('git: unknown tag → failed with the remote error', () => {
    const p = planSource(git, {version: '7.0.15'}, facts({remoteError: 'fatal: repository not found\n'}))
    assert.equal(p.action, 'fail')
    assert.match((p as {msg: string}).msg, /tag 7\.0\.15 not found .*repository not found/)
  })
  it('remoteCommit prefers tag^{} then tag then branch', () => {
    assert.equal(remoteCommit([`${'3'.repeat(40)}\trefs/heads/x`], 'x'), '3'.repeat(40))
    assert.equal(remoteCommit([`${'3'.repeat(40)}\trefs/heads/x`, `${'4'.repeat(40)}\trefs/tags/x`], 'x'), '4'.repeat(40))
    assert.equal(remoteCommit(['garbage'], 'x'), null)
  })
  it('parses the facts script output', () => {
    const f = parseSourceFacts(`marker=sha256:${SHA}\nstaged=${OTHER.toUpperCase()}\nfetch=wget\ngit=yes\nls=${'1'.repeat(40)}\trefs/tags/v\nnoise\n`)
    assert.deepEqual(f, {marker: `sha256:${SHA}`, stagedSha: OTHER, fetcher: 'wget', git: true, remote: [`${'1'.repeat(40)}\trefs/tags/v`], remoteError: ''})
  })
})
