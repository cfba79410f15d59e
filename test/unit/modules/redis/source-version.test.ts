import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {after, before, test} from 'node:test'
import {controllerTarballVersion} from '../../../../src/cli/redis.js'
import {redisSourceModule} from '../../../../src/modules/redis/source.js'
import {context, removeDir, runModule, tempDir} from '../harness.js'

// The version a source holds is checked on the host right after it is unpacked or
// cloned, before the swap and the build: a tag or URL that holds another version than
// redis_version fails naming both, and the tree in place is left as it was.

let dir: string
const tree = async (root: string, version: string) => {
  await mkdir(join(root, 'src'), {recursive: true})
  await writeFile(join(root, 'src/version.h'), `#define REDIS_VERSION "${version}"\n`)
  await writeFile(join(root, 'Makefile'), 'all:\n')
}

before(async () => {
  dir = await tempDir('bm-srcver-')
  await tree(join(dir, 'redis-6.2.0'), '6.2.0')
  execFileSync('tar', ['-czf', join(dir, 'redis-6.2.0.tar.gz'), '-C', dir, 'redis-6.2.0'])
  // A git repository whose tag 7.0.15 holds a 6.2.0 tree (a mislabelled mirror).
  const repo = join(dir, 'repo')
  await tree(repo, '6.2.0')
  const git = (...a: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.email=t@t', '-c', 'user.name=t', ...a], {stdio: 'pipe'})
  git('init', '-q')
  git('add', '.')
  git('commit', '-qm', 'x')
  git('tag', '7.0.15')
  git('tag', '6.2.0')
})
after(() => removeDir(dir))

test('controller tarball: src/version.h read on the controller without unpacking', () => {
  assert.deepEqual(controllerTarballVersion(join(dir, 'redis-6.2.0.tar.gz')), {version: '6.2.0'})
  assert.match(controllerTarballVersion(join(dir, 'missing.tar.gz')).error ?? '', /no such file/)
})

test('a tarball holding another version fails on the host before the swap; the tree in place stays', async () => {
  const dest = join(dir, 'dest-tar')
  await tree(dest, '5.0.3')
  const ctx = context(dir)
  const {results} = await runModule(redisSourceModule, ctx, [{args: {version: '7.0.15', source: join(dir, 'redis-6.2.0.tar.gz'), dest}}])
  assert.equal(results[0].status, 'failed')
  assert.match(results[0].msg ?? '', /redis_version is 7\.0\.15, but .* is Redis 6\.2\.0 \(its src\/version\.h\): nothing built; set redis_version to "6\.2\.0"/)
  assert.match(await readFile(join(dest, 'src/version.h'), 'utf8'), /5\.0\.3/)
  assert.equal(existsSync(`${dest}.baremetal-new`), false)
})

test('a git tag holding another version fails the same way; the matching version installs, and a changed redis_version with the same tree fails', async () => {
  const dest = join(dir, 'dest-git')
  const ctx = context(dir)
  const bad = await runModule(redisSourceModule, ctx, [{args: {version: '7.0.15', source: `git+file://${join(dir, 'repo')}`, dest}}])
  assert.equal(bad.results[0].status, 'failed')
  assert.match(bad.results[0].msg ?? '', /redis_version is 7\.0\.15, but .* is Redis 6\.2\.0/)
  assert.equal(existsSync(dest), false)
  const good = await runModule(redisSourceModule, ctx, [{args: {version: '6.2.0', source: `git+file://${join(dir, 'repo')}`, dest}}])
  assert.equal(good.results[0].status, 'changed', good.results[0].msg)
  // Both tags are one commit: the tree in place is "the declared source", but not its version.
  const again = await runModule(redisSourceModule, ctx, [{args: {version: '7.0.15', source: `git+file://${join(dir, 'repo')}`, dest}}])
  assert.equal(again.results[0].status, 'failed')
  assert.match(again.results[0].msg ?? '', /but the tree already in place is Redis 6\.2\.0/)
})
