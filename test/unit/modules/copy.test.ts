import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {chmod, mkdir, readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {after, before, test} from 'node:test'
import {chunkBySize, copyModule, planPush, pushFacts, pushProbePaths, type PushFacts, type PushWant} from '../../../src/modules/copy.js'
import {sha256} from '../../../src/modules/remote.js'
import {templateModule} from '../../../src/modules/template.js'
import {context, removeDir, runModule, statuses, tempDir} from './harness.js'

let dir: string
before(async () => {
  dir = await tempDir()
})
after(async () => {
  await removeDir(dir)
})

const data = (s: string): PushWant['source'] => ({kind: 'data', data: Buffer.from(s), sha256: sha256(s)})
const want = (o: Partial<PushWant> = {}): PushWant => ({dest: '/etc/r.conf', force: true, secret: false, source: data('port 1\n'), ...o})
const fileFact = (content: string, mode = 0o644): PushFacts => ({intoDir: false, parent: true, dest: {type: 'file', mode, sha256: sha256(content), size: content.length}})
const none: PushFacts = {intoDir: false, parent: true, dest: {type: 'missing'}}

test('planPush: write, chmod or nothing, by sha256', () => {
  const table: Array<[string, PushWant, PushFacts, Record<string, unknown>]> = [
    ['new file', want(), none, {kind: 'change', action: 'write', isNew: true, mode: 0o644, path: '/etc/r.conf'}],
    ['new file with mode', want({mode: 0o600}), none, {kind: 'change', mode: 0o600, msg: 'created /etc/r.conf (mode 0600)'}],
    ['same content', want(), fileFact('port 1\n'), {kind: 'noop'}],
    ['same content, mode differs', want({mode: 0o600}), fileFact('port 1\n'), {kind: 'change', action: 'chmod', mode: 0o600, msg: 'mode 0644 → 0600'}],
    ['content differs keeps mode', want(), fileFact('port 2\n', 0o640), {kind: 'change', action: 'write', isNew: false, mode: 0o640}],
    ['force no', want({force: false}), fileFact('port 2\n'), {kind: 'noop', msg: '/etc/r.conf exists; not replaced (force: no)'}],
    ['no parent', want(), {...none, parent: false}, {kind: 'fail', msg: 'parent directory /etc does not exist (create it first, e.g. with the file module and state: directory)'}],
    ['dest is dir, no name', want(), {...none, dest: {type: 'directory'}}, {kind: 'fail'}],
    ['dest dir + name', want({dest: '/etc', name: 'r.conf'}), {...none, intoDir: true}, {kind: 'change', path: '/etc/r.conf'}],
    ['trailing slash', want({dest: '/etc/', name: 'x'}), none, {kind: 'change', path: '/etc/x'}],
    ['remote src missing', want({source: {kind: 'remote', path: '/s'}}), {...none, src: {type: 'missing'}}, {kind: 'fail', msg: 'src /s not found on the host'}],
    ['remote src same', want({source: {kind: 'remote', path: '/s'}}), {...fileFact('bin'), src: {type: 'file', mode: 0o755, sha256: sha256('bin')}}, {kind: 'noop'}],
    ['remote src new keeps src mode', want({source: {kind: 'remote', path: '/s'}}), {...none, src: {type: 'file', mode: 0o755, sha256: sha256('bin')}}, {kind: 'change', mode: 0o755}],
  ]
  for (const [name, w, f, expected] of table) {
    const plan = planPush(w, f) as Record<string, unknown>
    for (const [k, v] of Object.entries(expected)) assert.deepEqual(plan[k], v, `${name}: ${k}`)
  }
  // Check mode: what an earlier task would have created is not an error.
  const noParent = planPush(want(), {...none, parent: false}, true)
  assert.equal(noParent.kind, 'change')
  assert.match(noParent.msg, /^would create \/etc\/r.conf \(mode 0644; its directory does not exist yet/)
  const noSrc = planPush(want({source: {kind: 'remote', path: '/s'}}), {...none, src: {type: 'missing'}}, true)
  assert.match(noSrc.msg, /^would copy \/s to \/etc\/r.conf \(\/s does not exist yet/)
})

test('chunkBySize: uploads split only past the byte limit', () => {
  assert.deepEqual(
    chunkBySize([1, 2, 3], (n) => n, 100),
    [[1, 2, 3]],
  )
  assert.deepEqual(
    chunkBySize([60, 30, 20, 200, 5], (n) => n, 100),
    [[60, 30], [20], [200], [5]],
  )
  assert.deepEqual(
    chunkBySize([], (n: number) => n, 100),
    [],
  )
})

test('pushProbePaths / pushFacts: dest, dest/name and their parents decide the target', () => {
  const w1 = want({dest: '/d', name: 'n'})
  assert.deepEqual(pushProbePaths(w1), ['/d', '/d/n', '/', '/d'])
  const sha = sha256('x')
  const probe = new Map([
    ['/d', {type: 'directory' as const, mode: 0o755}],
    ['/d/n', {type: 'file' as const, mode: 0o600, sha256: sha}],
  ])
  assert.deepEqual(pushFacts(w1, probe), {intoDir: true, parent: true, src: undefined, dest: {type: 'file', mode: 0o600, sha256: sha}})
  assert.deepEqual(pushFacts(want({dest: '/x/y'}), new Map()), {intoDir: false, parent: false, src: undefined, dest: {type: 'missing'}})
  const remote = want({dest: '/d/', name: 'n', source: {kind: 'remote', path: '/s'}})
  assert.deepEqual(pushProbePaths(remote), ['/d/n', '/d', '/s'])
})

test('template: 100 items: changed, then ok; ≤ 3 round trips; check mode writes nothing', async () => {
  const pb = join(dir, 'pb')
  await mkdir(join(pb, 'templates'), {recursive: true})
  await writeFile(join(pb, 'templates/redis.conf.hbs'), 'port {{ item }}\ncluster-enabled yes\nbind {{ bind }}\n')
  const items = []
  for (let i = 0; i < 100; i++) {
    await mkdir(join(dir, 'tcluster', String(6379 + i)), {recursive: true})
    items.push({args: {src: 'templates/redis.conf.hbs', dest: `~/tcluster/${6379 + i}/redis.conf`, mode: 0o644}, item: 6379 + i})
  }
  const vars = {bind: '0.0.0.0'}
  const dry = await runModule(templateModule, context(dir, {check: true, vars, playbookDir: pb}), items)
  assert.deepEqual(statuses(dry.results), {changed: 100})
  assert.match(dry.results[0].msg ?? '', /^would create .*6379\/redis.conf \(mode 0644\)$/)
  assert.equal(existsSync(join(dir, 'tcluster/6379/redis.conf')), false)

  const ctx = context(dir, {vars, playbookDir: pb})
  const first = await runModule(templateModule, ctx, items)
  assert.deepEqual(statuses(first.results), {changed: 100})
  assert.ok(first.trips <= 3, `${first.trips} round trips`)
  assert.equal(first.trips, 2)
  assert.equal(await readFile(join(dir, 'tcluster/6400/redis.conf'), 'utf8'), 'port 6400\ncluster-enabled yes\nbind 0.0.0.0\n')

  const second = await runModule(templateModule, ctx, items)
  assert.deepEqual(statuses(second.results), {ok: 100})
  assert.equal(second.trips, 1)

  // One variable changes for every item, diff on: facts + old contents + upload.
  const diffCtx = context(dir, {vars: {bind: '10.0.0.1'}, playbookDir: pb, diff: true})
  const third = await runModule(templateModule, diffCtx, items)
  assert.deepEqual(statuses(third.results), {changed: 100})
  assert.equal(third.trips, 3)
  assert.deepEqual(third.results[1].diff, [
    {path: join(dir, 'tcluster/6380/redis.conf'), before: 'port 6380\ncluster-enabled yes\nbind 0.0.0.0\n', after: 'port 6380\ncluster-enabled yes\nbind 10.0.0.1\n'},
  ])
})

test('template: secrets never reach a diff; template errors fail their item only', async () => {
  const pb = join(dir, 'pb2')
  await mkdir(pb, {recursive: true})
  await writeFile(join(pb, 'auth.hbs'), 'requirepass {{ pw }}\n')
  await writeFile(join(pb, 'bad.hbs'), 'port {{ nope }}\n')
  const ctx = context(dir, {vars: {pw: 'hunter2'}, playbookDir: pb, diff: true, secrets: new Set(['hunter2'])})
  const {results} = await runModule(templateModule, ctx, [
    {args: {src: 'auth.hbs', dest: join(dir, 'auth-a.conf')}},
    {args: {src: 'auth.hbs', dest: join(dir, 'auth-b.conf'), secret: true}},
    {args: {src: 'bad.hbs', dest: join(dir, 'bad.conf')}},
    {args: {src: 'missing.hbs', dest: join(dir, 'm.conf')}},
  ])
  assert.deepEqual(
    results.map((r) => r.status),
    ['changed', 'changed', 'failed', 'failed'],
  )
  // Not marked secret, but it holds requirepass: no line of it is shown either.
  assert.equal(results[0].diff, undefined)
  assert.match(results[0].msg ?? '', /content differs: secret file, not shown/)
  assert.equal(results[1].diff, undefined)
  assert.match(results[1].msg ?? '', /content differs: secret file, not shown/)
  assert.match(results[2].msg ?? '', /undefined variable "nope"/)
  assert.match(results[3].msg ?? '', /not found/)
  assert.equal(await readFile(join(dir, 'auth-b.conf'), 'utf8'), 'requirepass hunter2\n')
  assert.doesNotMatch(JSON.stringify(results), /hunter2/)
})

test('template: a file whose OLD content holds a password is never diffed, though the new one has none', async () => {
  const pb = join(dir, 'pb2b')
  await mkdir(pb, {recursive: true})
  await writeFile(join(pb, 'open.hbs'), 'port 7000\nprotected-mode no\n')
  await writeFile(join(dir, 'was-secret.conf'), 'port 7000\nrequirepass old-s3cret\nmasterauth old-s3cret\n')
  await writeFile(join(dir, 'plain.conf'), 'port 6999\n')
  const ctx = context(dir, {vars: {}, playbookDir: pb, diff: true, check: true})
  const {results} = await runModule(templateModule, ctx, [{args: {src: 'open.hbs', dest: join(dir, 'was-secret.conf')}}, {args: {src: 'open.hbs', dest: join(dir, 'plain.conf')}}])
  assert.deepEqual(
    results.map((r) => r.status),
    ['changed', 'changed'],
  )
  assert.equal(results[0].diff, undefined)
  assert.match(results[0].msg ?? '', /content differs: secret file, not shown/)
  assert.doesNotMatch(JSON.stringify(results), /old-s3cret|requirepass|masterauth/)
  assert.equal(results[1].diff?.length, 1)
})

test('copy: content, controller src, remote_src, mode-only change, into a directory', async () => {
  const pb = join(dir, 'pb3')
  await mkdir(join(dir, 'cdest'), {recursive: true})
  await mkdir(pb, {recursive: true})
  await writeFile(join(pb, 'redis-server'), '#!/bin/sh\necho fake\n')
  const ctx = context(dir, {playbookDir: pb})
  const items = [
    {args: {content: 'hello\n', dest: '~/cdest/hello.txt'}},
    {args: {src: 'redis-server', dest: '~/cdest/', mode: 0o755}},
    {args: {src: '~/cdest/hello.txt', remote_src: true, dest: '~/cdest/hello-copy.txt'}},
    {args: {content: 'x', dest: '~/no-such-dir/x'}},
  ]
  const first = await runModule(copyModule, ctx, items)
  assert.deepEqual(
    first.results.map((r) => r.status),
    ['changed', 'changed', 'failed', 'failed'],
    JSON.stringify(first.results),
  )
  // remote_src failed: hello.txt did not exist when facts were gathered. Second run: it does.
  const second = await runModule(copyModule, ctx, items.slice(0, 3))
  assert.deepEqual(
    second.results.map((r) => r.status),
    ['ok', 'ok', 'changed'],
  )
  assert.equal(await readFile(join(dir, 'cdest/hello-copy.txt'), 'utf8'), 'hello\n')
  assert.equal((await stat(join(dir, 'cdest/redis-server'))).mode & 0o777, 0o755)
  const third = await runModule(copyModule, ctx, items.slice(0, 3))
  assert.deepEqual(statuses(third.results), {ok: 3})
  assert.equal(third.trips, 1)

  await chmod(join(dir, 'cdest/redis-server'), 0o700)
  const fourth = await runModule(copyModule, ctx, [items[1]])
  assert.equal(fourth.results[0].msg, 'mode 0700 → 0755')
  assert.equal(fourth.trips, 2, 'probe + one chmod script, no upload')

  const force = await runModule(copyModule, ctx, [{args: {content: 'other\n', dest: '~/cdest/hello.txt', force: false}}])
  assert.equal(force.results[0].status, 'ok')
  assert.equal(await readFile(join(dir, 'cdest/hello.txt'), 'utf8'), 'hello\n')
})

test('copy: 100 remote copies cost ≤ 3 round trips; check mode copies nothing', async () => {
  await mkdir(join(dir, 'bin'), {recursive: true})
  await writeFile(join(dir, 'bin/redis-server'), 'binary')
  const items = []
  for (let i = 0; i < 100; i++) {
    await mkdir(join(dir, 'rc', String(i)), {recursive: true})
    items.push({args: {src: '~/bin/redis-server', remote_src: true, dest: `~/rc/${i}/redis-server`, mode: 0o755}})
  }
  const dry = await runModule(copyModule, context(dir, {check: true}), items)
  assert.deepEqual(statuses(dry.results), {changed: 100})
  assert.equal(existsSync(join(dir, 'rc/0/redis-server')), false)
  const ctx = context(dir)
  const first = await runModule(copyModule, ctx, items)
  assert.deepEqual(statuses(first.results), {changed: 100})
  assert.equal(first.trips, 2)
  const second = await runModule(copyModule, ctx, items)
  assert.deepEqual(statuses(second.results), {ok: 100})
  assert.equal(second.trips, 1)
})

test('copy: hostile content and dest names are written literally', async () => {
  const ctx = context(dir)
  const pwned = join(dir, 'pwned')
  // No slash in the name: the payload reaches the marker through an environment variable.
  process.env.BM_PWNED = pwned
  const dest = join(dir, `x$(touch "$BM_PWNED")'y;touch "$BM_PWNED";\`touch "$BM_PWNED"\``)
  const content = `$(touch ${pwned})\n\`touch ${pwned}\`\n__BAREMETAL_EOF_0__\n'"`
  const {results} = await runModule(copyModule, ctx, [{args: {content, dest}}])
  assert.equal(results[0].status, 'changed')
  assert.equal(await readFile(dest, 'utf8'), content)
  assert.equal(existsSync(pwned), false)
})
