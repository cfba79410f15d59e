import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {splitWords} from '../../../../src/modules/command.js'
import {buildMarker, effectiveMakeArgs, parseBuildFacts, planBuild, type BuildFacts} from '../../../../src/modules/redis/build.js'
import {needsFcommon, parseVersion, supportsDirective, versionFromHeader} from '../../../../src/redis/versions.js'

const facts = (f: Partial<BuildFacts> = {}): BuildFacts => ({
  srcOk: true,
  sourceMarker: 'sha256:aa',
  version: '7.0.15',
  buildMarker: '',
  haveServer: true,
  haveCli: true,
  haveMake: true,
  haveCc: true,
  platform: {},
  sha: {},
  ...f,
})

describe('redis_build: -fcommon for 5.0.0–5.0.7', () => {
  const table: Array<[string | null, boolean]> = [
    ['5.0.0', true],
    ['5.0.3', true],
    ['5.0.7', true],
    ['5.0.8', false],
    ['5.0.14', false],
    ['4.0.14', false],
    ['6.0.20', false],
    ['7.0.15', false],
    ['unstable', false],
    [null, false],
  ]
  for (const [v, want] of table) it(`${v} → ${want}`, () => assert.equal(needsFcommon(v), want))

  it('adds REDIS_CFLAGS=-fcommon', () => assert.deepEqual(effectiveMakeArgs('5.0.3', ['MALLOC=libc']), ['MALLOC=libc', 'REDIS_CFLAGS=-fcommon']))
  it('extends a user REDIS_CFLAGS', () => assert.deepEqual(effectiveMakeArgs('5.0.3', ['REDIS_CFLAGS=-O0']), ['REDIS_CFLAGS=-O0 -fcommon']))
  it('leaves it when already there', () => assert.deepEqual(effectiveMakeArgs('5.0.3', ['REDIS_CFLAGS=-fcommon']), ['REDIS_CFLAGS=-fcommon']))
  it('never for newer versions', () => assert.deepEqual(effectiveMakeArgs('7.0.15', ['MALLOC=libc']), ['MALLOC=libc']))
  it('reads the version from src/version.h', () => {
    assert.equal(versionFromHeader('#define REDIS_VERSION "5.0.3"\n'), '5.0.3')
    assert.equal(versionFromHeader('nothing'), null)
    assert.deepEqual(parseVersion('7.2'), [7, 2, 0])
  })
})

describe('redis_build: make_args words', () => {
  const table: Array<[string, string[]]> = [
    ['', []],
    ['MALLOC=libc BUILD_TLS=no', ['MALLOC=libc', 'BUILD_TLS=no']],
    ['  REDIS_CFLAGS="-O2 -g"   V=1 ', ['REDIS_CFLAGS=-O2 -g', 'V=1']],
    [`A='x y' B=a\\ b`, ['A=x y', 'B=a b']],
    ['X=$(reboot)', ['X=$(reboot)']],
    [`C="a\\"b"`, ['C=a"b']],
  ]
  for (const [s, want] of table) it(JSON.stringify(s), () => assert.deepEqual(splitWords(s), want))
  it('unterminated quote is an error', () => assert.throws(() => splitWords('A="x'), /unterminated/))
})

describe('redis_build: plan', () => {
  const marker = buildMarker('sha256:aa', ['MALLOC=libc'])
  it('same source + args + binaries → noop', () => {
    assert.equal(planBuild(facts({buildMarker: marker}), ['MALLOC=libc'], '/s').action, 'noop')
  })
  it('other make args → build', () => {
    assert.equal(planBuild(facts({buildMarker: marker}), ['MALLOC=jemalloc'], '/s').action, 'build')
  })
  it('new source → build', () => {
    assert.equal(planBuild(facts({buildMarker: marker, sourceMarker: 'sha256:bb'}), ['MALLOC=libc'], '/s').action, 'build')
  })
  it('binary deleted → build', () => {
    assert.equal(planBuild(facts({buildMarker: marker, haveCli: false}), ['MALLOC=libc'], '/s').action, 'build')
  })
  it('5.0.3 marker records the added -fcommon', () => {
    const p = planBuild(facts({version: '5.0.3'}), [], '/s')
    assert.equal(p.action, 'build')
    assert.deepEqual((p as {makeArgs: string[]}).makeArgs, ['REDIS_CFLAGS=-fcommon'])
    assert.match((p as {marker: string}).marker, /make REDIS_CFLAGS=-fcommon$/)
  })
  it('no source tree → fail naming redis_source', () => {
    const p = planBuild(facts({srcOk: false}), [], '/home/u/redis_src')
    assert.equal(p.action, 'fail')
    assert.match((p as {msg: string}).msg, /no Redis source tree at \/home\/u\/redis_src .*redis_source/)
  })
  it('no compiler → fail with what to install', () => {
    assert.match((planBuild(facts({haveCc: false}), [], '/s') as {msg: string}).msg, /C compiler/)
  })
  it('a tree without marker is known by its version', () => {
    const p = planBuild(facts({sourceMarker: ''}), [], '/s') as {marker: string}
    assert.match(p.marker, /^source unmarked:7\.0\.15/)
  })
  it('parses the facts script output (multi-line marker)', () => {
    const f = parseBuildFacts(`src=yes\nsm=sha256:aa\nvh=#define REDIS_VERSION "5.0.3"\nbm=source sha256:aa\nbm=make MALLOC=libc\nserver=yes\nmake=yes\ncc=yes\n`)
    assert.deepEqual(f, {
      srcOk: true,
      sourceMarker: 'sha256:aa',
      version: '5.0.3',
      buildMarker: 'source sha256:aa\nmake MALLOC=libc',
      haveServer: true,
      haveCli: false,
      haveMake: true,
      haveCc: true,
      platform: {},
      sha: {},
    })
  })
})

describe('versions: directives', () => {
  it('knows when directives appeared', () => {
    assert.equal(supportsDirective('5.0.3', 'cluster-port'), false)
    assert.equal(supportsDirective('7.0.15', 'cluster-port'), true)
    assert.equal(supportsDirective('6.0.20', 'io-threads'), true)
    assert.equal(supportsDirective('5.0.14', 'io-threads'), false)
    assert.equal(supportsDirective('5.0.3', 'cluster-enabled'), true)
    assert.equal(supportsDirective('unstable', 'locale-collate'), true)
  })
})
