import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {cli, show, type CliResult} from './cli.js'
import {redisArgs, redisVersion} from './redis-fleet.js'

// Issue 14: hosts of one platform compile Redis once; the others get the binaries copied
// (sha256-checked) and run them. The test hosts share /usr and /var but each has its own
// /root: the default ~/redis_src and ~/redis/<version>/bin are per host, so the copy is real.
// One real compile (the first case); the opt-out case uses a fake source tree whose
// "make" only writes two scripts, so building on every host costs nothing.

let fleet: Fleet
let inv: string

before(async () => {
  fleet = await createFleet(3)
  inv = fleet.writeInventory({path: join(fleet.dir, 'build.yml'), vars: {redis_install_build_deps: false}})
})

after(async () => {
  if (fleet) await fleet.destroy()
})

interface Task {
  task: string
  host: string
  status: string
  msg?: string
  data?: Record<string, unknown>
}
const tasks = (r: CliResult, name: string) => (r.json.tasks as Task[]).filter((t) => t.task === name)
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')
const inHome = (h: TestHost, rel: string) => join(h.home, rel)
// The default redis_bin_dir: one directory per version.
const BIN_DIR = `redis/${redisVersion()}/bin`

describe('build once, copy everywhere (issue 14)', () => {
  it('one host compiles, the others get its binaries, verified, and run them; a re-run does nothing', async () => {
    const r = await cli(['up', '-i', inv, ...redisArgs(), '--tags', 'build', '--json'], {timeoutMs: 20 * 60_000})
    assert.equal(r.code, 0, show(r))
    const rec = tasks(r, 'Redis compiled')
    assert.equal(rec.length, 3, show(r))
    const built = rec.filter((t) => t.data?.built === true)
    // The saving, for the report: the compile on the builder against each copy.
    console.log(`# build once: ${rec.map((t) => `${t.host} ${t.data?.built ? `compiled ${t.data?.seconds} s` : `copied ${t.data?.ms} ms`}`).join(', ')}`)
    assert.deepEqual(
      built.map((t) => t.host),
      ['h1'],
      show(r),
    )
    for (const t of rec.filter((x) => x.host !== 'h1')) {
      assert.equal(t.status, 'changed', show(r))
      assert.equal(t.data?.copied_from, 'h1', show(r))
      assert.match(t.msg ?? '', /copied from h1 .*sha256 verified/)
    }
    // Object files only where make ran; the same binaries everywhere, and they run.
    const [h1, ...others] = fleet.hosts
    assert.ok(existsSync(inHome(h1, 'redis_src/src/server.o')), 'h1 compiled')
    for (const h of others) {
      assert.ok(existsSync(inHome(h, 'redis_src/src/version.h')), `${h.name} has the source tree`)
      assert.ok(!existsSync(inHome(h, 'redis_src/src/server.o')), `${h.name} did not compile`)
    }
    for (const b of ['redis-server', 'redis-cli']) {
      const want = sha(inHome(h1, `${BIN_DIR}/${b}`))
      for (const h of others) assert.equal(sha(inHome(h, `${BIN_DIR}/${b}`)), want, `${h.name} ${b}`)
    }
    for (const h of fleet.hosts) {
      const v = await fleet.nsExec(h, `/root/${BIN_DIR}/redis-server --version && /root/${BIN_DIR}/redis-cli --version`)
      assert.equal(v.code, 0, `${h.name}: ${v.stderr}`)
      assert.match(v.stdout, new RegExp(`v=${redisVersion().replace(/\./g, '\\.')} `))
      assert.ok(existsSync(inHome(h, `${BIN_DIR}/.baremetal-build`)), `${h.name} marker`)
    }

    const again = await cli(['up', '-i', inv, ...redisArgs(), '--tags', 'build', '--json'], {timeoutMs: 10 * 60_000})
    assert.equal(again.code, 0, show(again))
    assert.deepEqual(
      tasks(again, 'Redis compiled').map((t) => t.status),
      ['ok', 'ok', 'ok'],
      show(again),
    )
  })

  it('redis_build_once false: every host builds; true: one builds, the others copy; other make arguments: built again once', async () => {
    // A source tree whose make writes a marker and two scripts: what matters is where make ran.
    const version = '7.0.15'
    const makefile = [
      'all:',
      '\t@touch built-here',
      `\t@printf '#!/bin/sh\\necho "Redis server v=${version} sha=0:0 make=$(ARG)"\\n' > src/redis-server`,
      `\t@printf '#!/bin/sh\\necho "redis-cli ${version}"\\n' > src/redis-cli`,
      '\t@chmod 755 src/redis-server src/redis-cli',
      '',
    ].join('\n')
    const reset = () => {
      for (const h of fleet.hosts) {
        rmSync(inHome(h, 'fake_src'), {recursive: true, force: true})
        rmSync(inHome(h, 'fake_bin'), {recursive: true, force: true})
        mkdirSync(inHome(h, 'fake_src/src'), {recursive: true})
        writeFileSync(inHome(h, 'fake_src/Makefile'), makefile)
        writeFileSync(inHome(h, 'fake_src/src/version.h'), `#define REDIS_VERSION "${version}"\n`)
      }
    }
    const pb = join(fleet.dir, 'fake-build.yml')
    writeFileSync(
      pb,
      [
        '- hosts: redis',
        '  tasks:',
        '    - name: Fake compiled',
        '      redis_build:',
        '        src: ~/fake_src',
        '        bin_dir: ~/fake_bin',
        '        make_args: "ARG={{ arg }}"',
        '        build_once: "{{ once }}"',
        '',
      ].join('\n'),
    )
    const run = (once: boolean, arg = 'a') => cli(['run', '-i', inv, pb, '-e', `once=${once}`, '-e', `arg=${arg}`, '--json'], {timeoutMs: 300_000})
    const compiledOn = () => fleet.hosts.filter((h) => existsSync(inHome(h, 'fake_src/built-here'))).map((h) => h.name)

    reset()
    let r = await run(false)
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(compiledOn(), ['h1', 'h2', 'h3'], 'opt-out: make on every host')
    assert.ok(
      tasks(r, 'Fake compiled').every((t) => t.data?.built === true && t.data?.copied_from === undefined),
      show(r),
    )

    reset()
    r = await run(true)
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(compiledOn(), ['h1'], 'build once: make on h1 only')
    for (const h of fleet.hosts.slice(1)) {
      assert.equal(sha(inHome(h, 'fake_bin/redis-server')), sha(inHome(fleet.hosts[0], 'fake_bin/redis-server')))
      const v = await fleet.nsExec(h, '/root/fake_bin/redis-server --version')
      assert.match(v.stdout, /v=7\.0\.15 sha=0:0 make=a/)
    }

    // Other make arguments: another marker, so one host builds again and the rest copy.
    for (const h of fleet.hosts) rmSync(inHome(h, 'fake_src/built-here'), {force: true})
    r = await run(true, 'b')
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(compiledOn(), ['h1'])
    for (const h of fleet.hosts) assert.match((await fleet.nsExec(h, '/root/fake_bin/redis-server --version')).stdout, /make=b/)

    // A host that already has the binaries is the source: the one that lost them copies, nobody builds.
    for (const h of fleet.hosts) rmSync(inHome(h, 'fake_src/built-here'), {force: true})
    rmSync(inHome(fleet.hosts[0], 'fake_bin'), {recursive: true, force: true})
    r = await run(true, 'b')
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(compiledOn(), [], 'nobody compiled')
    const h1 = tasks(r, 'Fake compiled').find((t) => t.host === 'h1')!
    assert.equal(h1.status, 'changed', show(r))
    assert.equal(h1.data?.copied_from, 'h2', show(r))
  })
})
