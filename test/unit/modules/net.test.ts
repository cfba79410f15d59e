// get_url, unarchive and git against loopback only: a node http server on 127.0.0.1,
// tarballs and git repositories made in a temp directory.

import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdir, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'
import {after, before, test} from 'node:test'
import {getUrlModule, planGetUrl, urlName, type GetUrlFacts, type GetUrlWant} from '../../../src/modules/get_url.js'
import {gitModule, planGit, resolveTarget, type GitFacts, type GitWant} from '../../../src/modules/git.js'
import {sha256} from '../../../src/modules/remote.js'
import {MARKER, planUnarchive, unarchiveModule, type UnarchiveFacts, type UnarchiveWant} from '../../../src/modules/unarchive.js'
import {context, removeDir, runModule, tempDir} from './harness.js'

let dir: string
let server: Server
let base: string
const hits: string[] = []
const BODY = 'redis release\n'

before(async () => {
  dir = await tempDir()
  process.env.NO_PROXY = '127.0.0.1,localhost'
  process.env.no_proxy = '127.0.0.1,localhost'
  server = createServer((req, res) => {
    hits.push(req.url ?? '')
    if (req.url === '/files/redis.tar.gz' || req.url === '/other.txt') {
      res.end(req.url === '/other.txt' ? 'other\n' : BODY)
    } else {
      res.statusCode = 404
      res.end('not found')
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
after(async () => {
  await new Promise((resolve) => server.close(resolve))
  await removeDir(dir)
})

const sha = sha256(BODY)

test('planGetUrl: checksum, force and existing files', () => {
  const w = (o: Partial<GetUrlWant> = {}): GetUrlWant => ({url: 'http://x/a.tgz', dest: '/d/a.tgz', name: 'a.tgz', force: false, ...o})
  const f = (o: Partial<GetUrlFacts['dest']> | null): GetUrlFacts => ({intoDir: false, parent: true, dest: o ? {type: 'file', mode: 0o644, ...o} : {type: 'missing'}})
  const table: Array<[string, GetUrlWant, GetUrlFacts, Record<string, unknown>]> = [
    ['missing', w(), f(null), {kind: 'change', action: 'download'}],
    ['same checksum', w({checksum: sha}), f({sha256: sha}), {kind: 'noop', msg: `/d/a.tgz already has sha256 ${sha}`}],
    ['other checksum', w({checksum: sha}), f({sha256: 'b'.repeat(64)}), {kind: 'change', action: 'download'}],
    ['exists, no checksum', w(), f({sha256: 'b'.repeat(64)}), {kind: 'noop', msg: '/d/a.tgz exists (no checksum given, force: no)'}],
    ['exists, force', w({force: true}), f({sha256: 'b'.repeat(64)}), {kind: 'change', action: 'download'}],
    ['same, mode differs', w({checksum: sha, mode: 0o600}), f({sha256: sha}), {kind: 'change', action: 'chmod'}],
    ['no parent', w(), {...f(null), parent: false}, {kind: 'fail'}],
  ]
  for (const [name, want, facts, expected] of table) {
    const plan = planGetUrl(want, facts) as Record<string, unknown>
    for (const [k, v] of Object.entries(expected)) assert.deepEqual(plan[k], v, `${name}: ${k}`)
  }
  assert.equal(urlName('https://h/releases/redis-7.2.tar.gz?x=1'), 'redis-7.2.tar.gz')
  assert.equal(planGetUrl(w(), {...f(null), parent: false}, true).kind, 'change', 'check mode: an earlier task may create the directory')
})

test('get_url: download verified, then ok without downloading; mismatch replaces nothing', async () => {
  const ctx = context(dir)
  await mkdir(join(dir, 'dl'))
  const items = [{args: {url: `${base}/files/redis.tar.gz`, dest: '~/dl/r.tgz', checksum: `sha256:${sha}`, mode: 0o600}}, {args: {url: `${base}/files/redis.tar.gz`, dest: '~/dl/'}}]
  const dry = await runModule(getUrlModule, context(dir, {check: true}), items)
  assert.deepEqual(
    dry.results.map((r) => r.status),
    ['changed', 'changed'],
  )
  assert.equal(existsSync(join(dir, 'dl/r.tgz')), false)

  const first = await runModule(getUrlModule, ctx, items)
  assert.deepEqual(
    first.results.map((r) => r.status),
    ['changed', 'changed'],
    JSON.stringify(first.results),
  )
  assert.equal(first.trips, 2)
  assert.equal(await readFile(join(dir, 'dl/r.tgz'), 'utf8'), BODY)
  assert.equal((await stat(join(dir, 'dl/r.tgz'))).mode & 0o777, 0o600)
  assert.equal(await readFile(join(dir, 'dl/redis.tar.gz'), 'utf8'), BODY)
  const n = hits.length
  const second = await runModule(getUrlModule, ctx, items)
  assert.deepEqual(
    second.results.map((r) => r.status),
    ['ok', 'ok'],
  )
  assert.equal(second.trips, 1)
  assert.equal(hits.length, n, 'nothing downloaded')

  await writeFile(join(dir, 'dl/keep'), 'precious\n')
  const bad = await runModule(getUrlModule, ctx, [
    {args: {url: `${base}/other.txt`, dest: join(dir, 'dl/keep'), checksum: `sha256:${sha}`}},
    {args: {url: `${base}/missing`, dest: join(dir, 'dl/missing')}},
    {args: {url: `${base}/other.txt`, dest: join(dir, 'nodir/x')}},
  ])
  assert.deepEqual(
    bad.results.map((r) => r.status),
    ['failed', 'failed', 'failed'],
  )
  assert.equal(bad.results[0].msg, `${join(dir, 'dl/keep')}: checksum mismatch: expected sha256:${sha}, got sha256:${sha256('other\n')} (nothing replaced)`)
  assert.match(bad.results[1].msg ?? '', /^download failed with exit code 22 .*\/missing\n.*404/)
  assert.match(bad.results[2].msg ?? '', /parent directory .*nodir does not exist/)
  assert.equal(await readFile(join(dir, 'dl/keep'), 'utf8'), 'precious\n')
  assert.deepEqual((await readdir(join(dir, 'dl'))).sort(), ['keep', 'r.tgz', 'redis.tar.gz'], 'no temp file left behind')
})

test('get_url: a hostile url is one argument', async () => {
  const ctx = context(dir)
  const pwned = join(dir, 'pwned-url')
  const {results} = await runModule(getUrlModule, ctx, [{args: {url: `${base}/x$(touch ${pwned})';touch ${pwned}`, dest: join(dir, 'evil')}}])
  assert.equal(results[0].status, 'failed')
  assert.equal(existsSync(pwned), false)
})

function tar(cwd: string, out: string, ...entries: string[]): void {
  execFileSync('tar', ['-czf', out, ...entries], {cwd})
}

test('planUnarchive: marker, checksum, creates, push', () => {
  const s = 'c'.repeat(64)
  const w = (o: Partial<UnarchiveWant> = {}): UnarchiveWant => ({src: {kind: 'local', path: '/pb/r.tgz', sha256: s}, archive: '/h/.cache/baremetal/x', dest: '/srv/r', extraOpts: [], ...o})
  const f = (o: Partial<UnarchiveFacts> = {}): UnarchiveFacts => ({creates: false, dest: 'dir', marker: '', ...o})
  assert.equal(planUnarchive(w(), f({marker: s})).kind, 'noop')
  assert.deepEqual(planUnarchive(w(), f({archive: {type: 'missing'}})), {kind: 'change', sha256: s, push: true, msg: 'unpacked r.tgz into /srv/r', would: 'would unpack r.tgz into /srv/r'})
  assert.equal((planUnarchive(w(), f({archive: {type: 'file', sha256: s}})) as {push: boolean}).push, false, 'already cached')
  assert.match(planUnarchive(w({checksum: 'd'.repeat(64)}), f()).msg, /checksum mismatch .*expected sha256:d+, got sha256:c+ \(nothing unpacked\)/)
  assert.equal(planUnarchive(w({creates: '/srv/r/bin'}), f({creates: true})).kind, 'noop')
  assert.equal(planUnarchive(w(), f({dest: 'other'})).kind, 'fail')
  assert.equal(planUnarchive(w({src: {kind: 'remote', path: '/a.tgz'}}), f({archive: {type: 'missing'}})).kind, 'fail')
  assert.match(planUnarchive(w({src: {kind: 'remote', path: '/a.tgz'}}), f({archive: {type: 'missing'}}), true).msg, /^would unpack \/a.tgz into \/srv\/r \(\/a.tgz does not exist yet/)
  assert.equal(planUnarchive(w({src: {kind: 'remote', path: '/a.tgz'}}), f({archive: {type: 'file', sha256: s}, marker: s})).kind, 'noop')
})

test('unarchive: unpack once, cached push, checksum mismatch unpacks nothing, remote_src', async () => {
  const src = join(dir, 'tarsrc')
  await mkdir(join(src, 'redis-1.0/src'), {recursive: true})
  await writeFile(join(src, 'redis-1.0/Makefile'), 'all:\n')
  await writeFile(join(src, 'redis-1.0/src/server.c'), 'int main(){}\n')
  const pb = join(dir, 'pbu')
  await mkdir(pb)
  tar(src, join(pb, 'redis.tgz'), 'redis-1.0')
  const tsha = sha256(await readFile(join(pb, 'redis.tgz')))
  const ctx = context(dir, {playbookDir: pb})
  const item = {args: {src: 'redis.tgz', dest: '~/redis_src', extra_opts: ['--strip-components=1'], checksum: `sha256:${tsha}`}}

  const dry = await runModule(unarchiveModule, context(dir, {check: true, playbookDir: pb}), [item])
  assert.equal(dry.results[0].status, 'changed')
  assert.equal(existsSync(join(dir, 'redis_src')), false)

  const first = await runModule(unarchiveModule, ctx, [item])
  assert.equal(first.results[0].status, 'changed', first.results[0].msg)
  assert.equal(first.trips, 3, 'probe + push + unpack')
  assert.equal(await readFile(join(dir, 'redis_src/src/server.c'), 'utf8'), 'int main(){}\n')
  assert.equal((await readFile(join(dir, 'redis_src', MARKER), 'utf8')).trim(), tsha)

  const second = await runModule(unarchiveModule, ctx, [item])
  assert.equal(second.results[0].status, 'ok')
  assert.equal(second.trips, 1)

  // dest lost, archive still cached on the host: unpack again without pushing.
  await rm(join(dir, 'redis_src'), {recursive: true})
  const uploads = ctx.transport.stats.uploads
  const third = await runModule(unarchiveModule, ctx, [item])
  assert.equal(third.results[0].status, 'changed')
  assert.equal(ctx.transport.stats.uploads, uploads, 'no second push')

  const wrong = await runModule(unarchiveModule, ctx, [{args: {...item.args, dest: '~/wrong', checksum: `sha256:${'0'.repeat(64)}`}}])
  assert.equal(wrong.results[0].status, 'failed')
  assert.match(wrong.results[0].msg ?? '', new RegExp(`expected sha256:0{64}, got sha256:${tsha}`))
  assert.equal(existsSync(join(dir, 'wrong')), false)

  const remote = {args: {src: join(pb, 'redis.tgz'), remote_src: true, dest: '~/remote_src', creates: '~/remote_src/nothing-here'}}
  const r1 = await runModule(unarchiveModule, ctx, [remote])
  assert.equal(r1.results[0].status, 'changed')
  assert.ok(existsSync(join(dir, 'remote_src/redis-1.0/Makefile')))
  assert.equal((await runModule(unarchiveModule, ctx, [remote])).results[0].status, 'ok')
  const creates = await runModule(unarchiveModule, ctx, [{args: {...remote.args, dest: '~/other', creates: '~/remote_src'}}])
  assert.match(creates.results[0].msg ?? '', /creates/)
})

const g = (cwd: string, ...args: string[]): string => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'init.defaultBranch=main', ...args], {cwd, encoding: 'utf8'}).trim()

test('resolveTarget / planGit: tags, branches, shas, dirty checkouts', () => {
  const A = 'a'.repeat(40)
  const B = 'b'.repeat(40)
  const T = 't'.repeat(40)
  const remote = [`${A}\tHEAD`, `${A}\trefs/heads/main`, `${T}\trefs/tags/v2`, `${B}\trefs/tags/v2^{}`, `${B}\trefs/tags/v1`]
  const f = (o: Partial<GitFacts> = {}): GitFacts => ({state: 'repo', dirty: 0, head: B, origin: 'file:///r', remote, remoteRc: 0, ...o})
  assert.equal(resolveTarget('v2', f()), B, 'annotated tag: peeled commit')
  assert.equal(resolveTarget('main', f()), A)
  assert.equal(resolveTarget('HEAD', f()), A)
  assert.equal(resolveTarget(A, f({remote: undefined})), A)
  assert.equal(resolveTarget('v9', f()), undefined)
  const w = (o: Partial<GitWant> = {}): GitWant => ({repo: 'file:///r', dest: '/src', version: 'v1', force: false, ...o})
  assert.equal(planGit(w(), f()).kind, 'noop')
  assert.deepEqual((planGit(w({version: 'main'}), f()) as {commands: string[]}).commands, ['git -C /src fetch -q origin main', `git -C /src -c advice.detachedHead=false checkout -q --detach ${A}`])
  assert.deepEqual((planGit(w({depth: 1}), f({state: 'missing', head: undefined})) as {commands: string[]}).commands, [
    'git -c advice.detachedHead=false clone -q --depth 1 --branch v1 file:///r /src',
  ])
  assert.match(planGit(w({version: 'main'}), f({dirty: 2})).msg, /local modifications \(2 files\): set force: yes/)
  assert.equal(planGit(w({version: 'main', force: true}), f({dirty: 2})).kind, 'change')
  assert.match(planGit(w({version: 'v9'}), f()).msg, /version v9 not found/)
  assert.match(planGit(w({version: 'main'}), f({remote: [], remoteRc: 128, remoteErr: 'fatal: could not read'})).msg, /cannot read file:\/\/\/r \(git ls-remote exit 128\): fatal: could not read/)
  assert.equal(planGit(w(), f({state: 'notrepo'})).kind, 'fail')
})

test('git: clone at a tag, idempotent, move to an annotated tag / branch / sha, dirty checkouts', async () => {
  const repo = join(dir, 'origin')
  await mkdir(repo)
  g(repo, 'init', '-q')
  await writeFile(join(repo, 'version.txt'), '1\n')
  g(repo, 'add', '.')
  g(repo, 'commit', '-qm', 'one')
  g(repo, 'tag', 'v1')
  const c1 = g(repo, 'rev-parse', 'HEAD')
  await writeFile(join(repo, 'version.txt'), '2\n')
  g(repo, 'commit', '-qam', 'two')
  g(repo, 'tag', '-a', 'v2', '-m', 'release 2')
  const c2 = g(repo, 'rev-parse', 'HEAD')
  await writeFile(join(repo, 'version.txt'), '3\n')
  g(repo, 'commit', '-qam', 'three')
  const c3 = g(repo, 'rev-parse', 'HEAD')
  const url = `file://${repo}`
  const ctx = context(dir)

  const dry = await runModule(gitModule, context(dir, {check: true}), [{args: {repo: url, dest: '~/checkout', version: 'v1'}}])
  assert.equal(dry.results[0].status, 'changed')
  assert.match(dry.results[0].msg ?? '', /^would clone/)
  assert.equal(existsSync(join(dir, 'checkout')), false)

  const clone = await runModule(gitModule, ctx, [{args: {repo: url, dest: '~/checkout', version: 'v1'}}, {args: {repo: url, dest: '~/shallow', version: 'v2', depth: 1}}])
  assert.deepEqual(
    clone.results.map((r) => r.status),
    ['changed', 'changed'],
    JSON.stringify(clone.results),
  )
  assert.equal(clone.trips, 2)
  assert.deepEqual(clone.results[0].data, {before: undefined, after: c1, repo: url})
  assert.equal((clone.results[1].data as {after: string}).after, c2)
  assert.equal(await readFile(join(dir, 'checkout/version.txt'), 'utf8'), '1\n')

  const again = await runModule(gitModule, ctx, [{args: {repo: url, dest: '~/checkout', version: 'v1'}}, {args: {repo: url, dest: '~/shallow', version: 'v2', depth: 1}}])
  assert.deepEqual(
    again.results.map((r) => r.status),
    ['ok', 'ok'],
  )
  assert.equal(again.trips, 1)

  const v2 = await runModule(gitModule, ctx, [{args: {repo: url, dest: '~/checkout', version: 'v2'}}])
  assert.equal(v2.results[0].status, 'changed', v2.results[0].msg)
  assert.equal(await readFile(join(dir, 'checkout/version.txt'), 'utf8'), '2\n')
  const main = await runModule(gitModule, ctx, [{args: {repo: url, dest: '~/checkout', version: 'main'}}])
  assert.equal((main.results[0].data as {after: string}).after, c3)
  const bySha = await runModule(gitModule, ctx, [{args: {repo: url, dest: '~/checkout', version: c1}}])
  assert.equal((bySha.results[0].data as {after: string}).after, c1)
  assert.equal((await runModule(gitModule, ctx, [{args: {repo: url, dest: '~/checkout', version: c1}}])).results[0].status, 'ok')

  await writeFile(join(dir, 'checkout/version.txt'), 'local edit\n')
  const dirty = await runModule(gitModule, ctx, [{args: {repo: url, dest: '~/checkout', version: 'v2'}}])
  assert.equal(dirty.results[0].status, 'failed')
  assert.match(dirty.results[0].msg ?? '', /local modifications/)
  const forced = await runModule(gitModule, ctx, [{args: {repo: url, dest: '~/checkout', version: 'v2', force: true}}])
  assert.equal(forced.results[0].status, 'changed')
  assert.equal(await readFile(join(dir, 'checkout/version.txt'), 'utf8'), '2\n')

  const missing = await runModule(gitModule, ctx, [{args: {repo: url, dest: '~/x', version: 'v9'}}, {args: {repo: `file://${dir}/no-such-repo`, dest: '~/y'}}])
  assert.match(missing.results[0].msg ?? '', /version v9 not found/)
  assert.match(missing.results[1].msg ?? '', /cannot read/)
})
