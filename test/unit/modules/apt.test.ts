import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {test} from 'node:test'
import {aptModule, aptNoChange, aptUpdateStep, baseName, packageNames, parseDpkg, parseSimulation, planApt, type AptFacts} from '../../../src/modules/apt.js'
import {context, runModule} from './harness.js'

const facts = (installed: Record<string, boolean>, pending?: string[]): AptFacts => ({installed: new Map(Object.entries(installed)), pending: pending ? new Set(pending) : undefined})

test('planApt: one merged install/remove list, the rest with a reason', () => {
  const table: Array<[string, Parameters<typeof planApt>, ReturnType<typeof planApt>]> = [
    [
      'all present',
      ['present', ['make', 'gcc'], facts({make: true, gcc: true})],
      {
        install: [],
        remove: [],
        ok: [
          {name: 'make', why: 'already installed'},
          {name: 'gcc', why: 'already installed'},
        ],
      },
    ],
    ['some missing', ['present', ['make', 'gcc', 'tcl'], facts({make: true, gcc: false})], {install: ['gcc', 'tcl'], remove: [], ok: [{name: 'make', why: 'already installed'}]}],
    ['duplicates once', ['present', ['gcc', 'gcc'], facts({})], {install: ['gcc'], remove: [], ok: []}],
    ['pinned version', ['present', ['redis-tools=5:7.0.15-1'], facts({'redis-tools': false})], {install: ['redis-tools=5:7.0.15-1'], remove: [], ok: []}],
    ['absent', ['absent', ['nginx', 'apache2'], facts({nginx: true})], {install: [], remove: ['nginx'], ok: [{name: 'apache2', why: 'not installed'}]}],
    ['latest, up to date', ['latest', ['make'], facts({make: true}, [])], {install: [], remove: [], ok: [{name: 'make', why: 'already the latest version'}]}],
    ['latest, upgradable', ['latest', ['make', 'gcc'], facts({make: true, gcc: true}, ['gcc', 'libc6'])], {install: ['gcc'], remove: [], ok: [{name: 'make', why: 'already the latest version'}]}],
    ['latest, simulation failed', ['latest', ['make'], facts({make: true})], {install: ['make'], remove: [], ok: []}],
  ]
  for (const [name, args, expected] of table) assert.deepEqual(planApt(...args), expected, name)
})

test('apt parsers: dpkg-query status, apt-get -s, summaries, names', () => {
  const dq = parseDpkg('make install ok installed\ngcc deinstall ok config-files\nlibc6 install ok installed\nlibc6 install ok installed\ntcl install ok half-configured\n')
  assert.deepEqual(
    [...dq],
    [
      ['make', true],
      ['gcc', false],
      ['libc6', true],
      ['tcl', false],
    ],
  )
  assert.deepEqual(
    [...parseSimulation('Reading package lists...\nInst gcc-12 [12.2.0-14] (12.2.0-14+deb12u1 Debian:12.9/stable [amd64])\nInst libc6:amd64 [2.36]\nConf gcc-12\n')],
    ['gcc-12', 'libc6'],
  )
  assert.equal(aptNoChange('0 upgraded, 0 newly installed, 0 to remove and 3 not upgraded.'), true)
  assert.equal(aptNoChange('0 upgraded, 2 newly installed, 0 to remove and 0 not upgraded.'), false)
  assert.deepEqual(packageNames('make, gcc tcl'), ['make', 'gcc', 'tcl'])
  assert.deepEqual(packageNames(['make', 'gcc']), ['make', 'gcc'])
  assert.equal(baseName('libc6:amd64'), 'libc6')
  assert.equal(baseName('redis=5:7.0'), 'redis')
})

const hasDpkg = existsSync('/usr/bin/dpkg-query')

test('apt: installed packages are ok with one dpkg-query and no apt-get (loop items merged)', {skip: !hasDpkg && 'no dpkg-query here'}, async () => {
  const ctx = context('/tmp')
  const calls: string[] = []
  const exec = ctx.transport.exec.bind(ctx.transport)
  ctx.transport.exec = (cmd, opts) => {
    calls.push(String(opts?.stdin ?? cmd))
    return exec(cmd, opts)
  }
  const {results, trips} = await runModule(aptModule, ctx, [
    {args: {name: 'coreutils'}, item: 'coreutils'},
    {args: {name: ['bash', 'dash']}, item: 'x'},
  ])
  assert.deepEqual(
    results.map((r) => r.status),
    ['ok', 'ok'],
    JSON.stringify(results),
  )
  assert.equal(results[0].msg, 'coreutils: already installed')
  assert.equal(trips, 1)
  assert.match(calls[0], /dpkg-query -W -f='\$\{Package\} \$\{Status\}\\n' coreutils bash dash/)
  assert.doesNotMatch(calls.join('\n'), /apt-get/)
})

test('apt: check mode says what it would install and installs nothing; absent of a missing package is ok', {skip: !hasDpkg && 'no dpkg-query here'}, async () => {
  const dry = await runModule(aptModule, context('/tmp', {check: true}), [{args: {name: ['coreutils', 'baremetal-no-such-package']}}])
  assert.equal(dry.results[0].status, 'changed')
  assert.equal(dry.results[0].msg, 'would install baremetal-no-such-package')
  assert.equal(dry.trips, 1)
  const gone = await runModule(aptModule, context('/tmp'), [{args: {name: 'baremetal-no-such-package', state: 'absent'}}])
  assert.equal(gone.results[0].status, 'ok')
  assert.equal(gone.trips, 1)
  const bad = await runModule(aptModule, context('/tmp'), [{args: {name: 'x; rm -rf / #'}}])
  assert.equal(bad.results[0].status, 'failed')
  assert.match(bad.results[0].msg ?? '', /invalid package name/)
  assert.equal(bad.trips, 0)
})

test('apt update_cache waits while the package lists are locked (hosts sharing /var), then gives up with both messages', async () => {
  const {mkdtempSync, writeFileSync, chmodSync, readFileSync} = await import('node:fs')
  const {spawnSync} = await import('node:child_process')
  const {join} = await import('node:path')
  const {tmpdir} = await import('node:os')
  const dir = mkdtempSync(join(tmpdir(), 'bm-apt-'))
  // A fake apt-get: locked for the first LOCKED calls, then fine.
  writeFileSync(
    join(dir, 'apt-get'),
    `#!/bin/sh\nn=$(cat ${dir}/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${dir}/n\nif [ $n -le $LOCKED ]; then echo 'E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)' >&2; exit 100; fi\necho 'Reading package lists...'\n`,
  )
  chmodSync(join(dir, 'apt-get'), 0o755)
  const run = (locked: number, waitS: number) => {
    writeFileSync(join(dir, 'n'), '0')
    const r = spawnSync('sh', ['-c', `${aptUpdateStep(waitS, 0)}; echo "rc=$?"`], {env: {...process.env, PATH: `${dir}:${process.env.PATH}`, LOCKED: String(locked)}, encoding: 'utf8'})
    return {out: r.stdout, err: r.stderr, calls: Number(readFileSync(join(dir, 'n'), 'utf8'))}
  }
  const waited = run(2, 300)
  assert.match(waited.out, /Reading package lists[^]*rc=0/)
  assert.equal(waited.calls, 3, 'two locked tries, then the update')
  const gaveUp = run(1000, 0)
  assert.match(gaveUp.out, /rc=100/)
  assert.match(gaveUp.err, /held by process 4242[^]*stayed locked for 0 s/)
})

test('apt update_cache fails when a package list could not be fetched, though apt-get exits 0 (as Ansible fails it)', async () => {
  const {mkdtempSync, writeFileSync, chmodSync} = await import('node:fs')
  const {spawnSync} = await import('node:child_process')
  const {join} = await import('node:path')
  const {tmpdir} = await import('node:os')
  const dir = mkdtempSync(join(tmpdir(), 'bm-apt-'))
  // What apt-get update prints on a host with no route to its mirror, exit 0.
  writeFileSync(
    join(dir, 'apt-get'),
    `#!/bin/sh\necho 'Err:1 http://deb.debian.org/debian bookworm InRelease'\necho "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure resolving 'deb.debian.org'" >&2\necho 'W: Some index files failed to download. They have been ignored, or old ones used instead.' >&2\nexit 0\n`,
  )
  chmodSync(join(dir, 'apt-get'), 0o755)
  const r = spawnSync('sh', ['-c', `${aptUpdateStep(300, 0)}; echo "rc=$?"`], {env: {...process.env, PATH: `${dir}:${process.env.PATH}`}, encoding: 'utf8'})
  assert.match(r.stdout, /rc=100/)
  assert.match(r.stderr, /Temporary failure resolving[^]*could not fetch every package list[^]*local mirror/)
})
