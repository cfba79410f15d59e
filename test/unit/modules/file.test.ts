import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {chmod, mkdir, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {after, before, test} from 'node:test'
import {batchCommands, driftStep, fileModule, planCommands, planFile, type FileFacts, type FileWant} from '../../../src/modules/file.js'
import {copyModule} from '../../../src/modules/copy.js'
import {context, removeDir, runModule, statuses, tempDir} from './harness.js'

let dir: string
before(async () => {
  dir = await tempDir()
})
after(async () => {
  await removeDir(dir)
})

const dirStat = (mode: number, user = 'redis', group = 'redis'): FileFacts => ({stat: {type: 'directory', mode, user, group, uid: 1000, gid: 1000}})
const fileStat = (mode: number): FileFacts => ({stat: {type: 'file', mode, user: 'root', group: 'root', uid: 0, gid: 0}})
const missing: FileFacts = {stat: {type: 'missing'}}
const w = (o: Partial<FileWant>): FileWant => ({path: '/srv/r', state: 'directory', recurse: false, ...o})

test('planFile: facts in, commands or the no-op reason out', () => {
  const table: Array<[string, FileWant, FileFacts, Record<string, unknown>]> = [
    ['missing dir', w({mode: 0o755}), missing, {kind: 'change', commands: ['mkdir -p -- /srv/r', 'chmod 0755 -- /srv/r'], msg: 'created directory (mode 0755)'}],
    ['dir ok', w({mode: 0o755}), dirStat(0o755), {kind: 'noop', msg: 'already a directory with mode 0755'}],
    ['dir ok no mode', w({}), dirStat(0o700), {kind: 'noop', msg: 'already a directory'}],
    ['dir mode drift', w({mode: 0o755}), dirStat(0o700), {kind: 'change', commands: ['chmod 0755 -- /srv/r'], msg: 'mode 0700 → 0755'}],
    ['owner by name', w({owner: 'redis', group: 'redis'}), dirStat(0o755), {kind: 'noop', msg: 'already a directory owned by redis:redis'}],
    ['owner by uid', w({owner: '1000'}), dirStat(0o755), {kind: 'noop'}],
    ['owner change', w({owner: 'root'}), dirStat(0o755), {kind: 'change', commands: ['chown root -- /srv/r'], msg: 'owner redis → root'}],
    ['recurse drift inside', w({mode: 0o755, recurse: true}), {...dirStat(0o755), innerDrift: true}, {kind: 'change', commands: ['chmod -R 0755 -- /srv/r']}],
    ['recurse clean', w({mode: 0o755, recurse: true}), {...dirStat(0o755), innerDrift: false}, {kind: 'noop'}],
    ['dir over file', w({}), fileStat(0o644), {kind: 'fail', msg: '/srv/r exists and is a regular file, not a directory'}],
    ['absent missing', w({state: 'absent'}), missing, {kind: 'noop', msg: 'already absent'}],
    ['absent dir', w({state: 'absent'}), dirStat(0o755), {kind: 'change', commands: ['rm -rf -- /srv/r'], msg: 'removed directory'}],
    ['absent /', w({state: 'absent', path: '/'}), dirStat(0o755), {kind: 'fail', msg: 'refusing to remove /'}],
    ['relative', w({path: 'srv'}), missing, {kind: 'fail'}],
    ['touch missing', w({state: 'touch', mode: 0o600}), missing, {kind: 'change', commands: ['touch -- /srv/r', 'chmod 0600 -- /srv/r']}],
    ['touch existing keeps it', w({state: 'touch'}), fileStat(0o644), {kind: 'noop', msg: 'already a regular file'}],
    ['file missing', w({state: 'file'}), missing, {kind: 'fail'}],
    ['file mode', w({state: 'file', mode: 0o600}), fileStat(0o644), {kind: 'change', commands: ['chmod 0600 -- /srv/r']}],
    ['quoted path', w({path: "/srv/$(x) 'y'"}), missing, {kind: 'change', commands: [`mkdir -p -- '/srv/$(x) '\\''y'\\'''`]}],
  ]
  for (const [name, want, facts, expected] of table) {
    const plan = planFile(want, facts)
    const got: Record<string, unknown> = {...plan, commands: plan.kind === 'change' ? planCommands(want.path, plan.ops) : undefined}
    for (const [k, v] of Object.entries(expected)) assert.deepEqual(got[k], v, `${name}: ${k}`)
  }
})

test('driftStep / batchCommands: recursion probe, and grouping of the same change over many paths', () => {
  assert.equal(driftStep(w({})), undefined)
  assert.equal(driftStep(w({recurse: true})), undefined, 'nothing to compare')
  assert.equal(
    driftStep(w({mode: 0o755, recurse: true, owner: 'redis', group: '0'})),
    'if [ -d /srv/r ]; then find /srv/r \\( ! -perm 0755 -o ! -user redis -o ! -gid 0 \\) -print 2>/dev/null | head -n 1; fi',
  )
  const mk = (path: string, mode: string) => ({path, ops: [{op: 'mkdir' as const}, {op: 'chmod' as const, arg: mode}]})
  assert.deepEqual(batchCommands([mk('/a', '0755'), mk('/b c', '0755'), mk('/d', '0700')]), ["mkdir -p -- /a '/b c' /d", "chmod 0755 -- /a '/b c'", 'chmod 0700 -- /d'])
  assert.equal(batchCommands([mk('/a', '0755')]), undefined, 'one item: no point')
  assert.equal(batchCommands([mk('/a', '0755'), {path: '/b', ops: [{op: 'rm'}]}]), undefined, 'rm is never reordered')
})

test('file: 100 directories: changed, then ok; at most 2 round trips; check mode touches nothing', async () => {
  const items = Array.from({length: 100}, (_, i) => ({args: {path: `~/cluster/${6379 + i}`, state: 'directory', mode: 0o750}, item: 6379 + i}))
  const checkCtx = context(dir, {check: true})
  const dry = await runModule(fileModule, checkCtx, items)
  assert.deepEqual(statuses(dry.results), {changed: 100})
  assert.equal(dry.results[0].msg, 'would create directory (mode 0750)')
  assert.equal(dry.trips, 1)
  assert.equal(existsSync(join(dir, 'cluster')), false, 'check mode created nothing')

  const ctx = context(dir)
  const first = await runModule(fileModule, ctx, items)
  assert.deepEqual(statuses(first.results), {changed: 100})
  assert.ok(first.trips <= 3)
  assert.equal(first.trips, 2)
  assert.equal((await stat(join(dir, 'cluster/6478'))).mode & 0o7777, 0o750)

  const second = await runModule(fileModule, ctx, items)
  assert.deepEqual(statuses(second.results), {ok: 100})
  assert.equal(second.trips, 1)
  assert.equal(second.results[0].msg, 'already a directory with mode 0750')

  await chmod(join(dir, 'cluster/6400'), 0o700)
  const third = await runModule(fileModule, ctx, items)
  assert.deepEqual(statuses(third.results), {ok: 99, changed: 1})
  assert.equal(third.results[6400 - 6379].msg, 'mode 0700 → 0750')
})

test('file: touch, file, absent and recurse on a real tree', async () => {
  const ctx = context(dir)
  const base = join(dir, 'tree')
  await mkdir(join(base, 'sub'), {recursive: true})
  await writeFile(join(base, 'sub/f'), 'x')
  await chmod(join(base, 'sub/f'), 0o600)
  const r1 = await runModule(fileModule, ctx, [
    {args: {path: join(dir, 'touched'), state: 'touch', mode: 0o640}},
    {args: {path: join(base, 'nope'), state: 'file'}},
    {args: {path: base, state: 'directory', mode: 0o755, recurse: true}},
    {args: {path: join(base, 'gone'), state: 'absent'}},
  ])
  assert.deepEqual(
    r1.results.map((r) => r.status),
    ['changed', 'failed', 'changed', 'ok'],
  )
  assert.match(r1.results[1].msg ?? '', /does not exist .*state: touch/)
  assert.equal((await stat(join(base, 'sub/f'))).mode & 0o777, 0o755, 'recurse reached the file inside')
  const r2 = await runModule(fileModule, ctx, [
    {args: {path: join(dir, 'touched'), state: 'touch', mode: 0o640}},
    {args: {path: base, state: 'directory', mode: 0o755, recurse: true}},
    {args: {path: join(base, 'sub'), state: 'absent'}},
  ])
  assert.deepEqual(
    r2.results.map((r) => r.status),
    ['ok', 'ok', 'changed'],
  )
  assert.equal(existsSync(join(base, 'sub')), false)
})

test('file: when the grouped apply fails, items are retried one by one and only the culprit fails', async () => {
  const ctx = context(dir)
  await writeFile(join(dir, 'blocker'), 'x')
  const {results, trips} = await runModule(fileModule, ctx, [
    {args: {path: join(dir, 'fb/a'), state: 'directory'}},
    {args: {path: join(dir, 'blocker/sub'), state: 'directory'}},
    {args: {path: join(dir, 'fb/b'), state: 'directory'}},
  ])
  assert.equal(trips, 2)
  assert.deepEqual(
    results.map((r) => r.status),
    ['changed', 'failed', 'changed'],
  )
  assert.match(results[1].msg ?? '', /^file failed with exit code 1 \(general error\): .*blocker\/sub\n.*Not a directory/)
  assert.ok(existsSync(join(dir, 'fb/b')))
})

test('file: a path full of shell syntax is created literally, nothing executed', async () => {
  const ctx = context(dir)
  const pwned = join(dir, 'pwned')
  const evil = join(dir, `$(touch ${pwned})'; touch ${pwned} #`)
  const {results} = await runModule(fileModule, ctx, [{args: {path: evil, state: 'directory', owner: `$(touch ${pwned})`}}, {args: {path: `${evil}-2`, state: 'directory'}}])
  assert.equal(results[0].status, 'failed', 'no such owner')
  assert.equal(results[1].status, 'changed')
  assert.ok(existsSync(`${evil}-2`))
  assert.equal(existsSync(pwned), false)
})

test('file and copy: symbolic modes resolve against the mode on the host (u+x on 0644 is 0744), then change nothing', async () => {
  await writeFile(join(dir, 'sym.sh'), '#!/bin/sh\n')
  await chmod(join(dir, 'sym.sh'), 0o644)
  const ctx = context(dir)
  const items = [{args: {path: '~/sym.sh', state: 'file', mode: 'u+x'}}, {args: {path: '~/symdir', state: 'directory', mode: 'u=rwx,g=rx,o='}}]
  const first = await runModule(fileModule, ctx, items)
  assert.deepEqual(statuses(first.results), {changed: 2}, JSON.stringify(first.results))
  assert.equal((await stat(join(dir, 'sym.sh'))).mode & 0o7777, 0o744)
  assert.equal((await stat(join(dir, 'symdir'))).mode & 0o7777, 0o750)
  const again = await runModule(fileModule, ctx, items)
  assert.deepEqual(statuses(again.results), {ok: 2}, JSON.stringify(again.results))
  const cp = [{args: {src: '~/sym.sh', remote_src: true, dest: '~/sym-copy.sh', mode: 'g+x,o-r'}}]
  const copied = await runModule(copyModule, ctx, cp)
  assert.deepEqual(statuses(copied.results), {changed: 1}, JSON.stringify(copied.results))
  assert.equal((await stat(join(dir, 'sym-copy.sh'))).mode & 0o7777, 0o750, "the source's 0744 with g+x,o-r")
  assert.deepEqual(statuses((await runModule(copyModule, ctx, cp)).results), {ok: 1})
  const bad = await runModule(fileModule, ctx, [{args: {path: '~/symdir', state: 'directory', mode: 'u+x', recurse: true}}])
  assert.match(bad.results[0].msg ?? '', /symbolic mode with recurse/)
})

test('file state link / hard: created, kept, repointed; a real file is refused unless force; two round trips, then one', async () => {
  const {lstat, readlink} = await import('node:fs/promises')
  await writeFile(join(dir, 'target-a'), 'a\n')
  await writeFile(join(dir, 'target-b'), 'b\n')
  await writeFile(join(dir, 'plain'), 'x\n')
  const ctx = context(dir)
  const items = [
    {args: {src: join(dir, 'target-a'), dest: '~/cli-link', state: 'link'}},
    {args: {src: join(dir, 'target-a'), dest: '~/hard', state: 'hard'}},
    {args: {src: 'target-b', dest: '~/rel-link', state: 'link'}},
  ]
  const first = await runModule(fileModule, ctx, items)
  assert.deepEqual(statuses(first.results), {changed: 3}, JSON.stringify(first.results))
  assert.equal(first.trips, 2)
  assert.equal(await readlink(join(dir, 'cli-link')), join(dir, 'target-a'))
  assert.equal(await readlink(join(dir, 'rel-link')), 'target-b', 'a relative target is kept as written')
  assert.equal((await stat(join(dir, 'hard'))).ino, (await stat(join(dir, 'target-a'))).ino)
  const again = await runModule(fileModule, ctx, items)
  assert.deepEqual(statuses(again.results), {ok: 3}, JSON.stringify(again.results))
  assert.equal(again.trips, 1)
  const moved = await runModule(fileModule, ctx, [{args: {src: join(dir, 'target-b'), dest: '~/cli-link', state: 'link'}}])
  assert.match(moved.results[0].msg ?? '', /replaced symlink \(was → .*target-a\) → .*target-b/)
  assert.equal(await readlink(join(dir, 'cli-link')), join(dir, 'target-b'))
  const refused = await runModule(fileModule, ctx, [{args: {src: join(dir, 'target-a'), dest: '~/plain', state: 'link'}}])
  assert.equal(refused.results[0].status, 'failed')
  assert.match(refused.results[0].msg ?? '', /not a symlink .*force: yes replaces it/)
  assert.ok((await lstat(join(dir, 'plain'))).isFile(), 'the file is still there')
  const forced = await runModule(fileModule, ctx, [{args: {src: join(dir, 'target-a'), dest: '~/plain', state: 'link', force: true}}])
  assert.equal(forced.results[0].status, 'changed', JSON.stringify(forced.results))
  assert.equal(await readlink(join(dir, 'plain')), join(dir, 'target-a'))
  const noSrc = await runModule(fileModule, ctx, [{args: {src: join(dir, 'nope'), dest: '~/hard2', state: 'hard'}}])
  assert.match(noSrc.results[0].msg ?? '', /does not exist on the host/)
})
