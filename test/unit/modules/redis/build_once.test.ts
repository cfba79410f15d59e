import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {parseBuildFacts} from '../../../../src/modules/redis/build.js'
import {type Artifact, chooseProvider, installScript, parseFetched, platformKey, Rendezvous, rendezvousFor} from '../../../../src/modules/redis/build_once.js'

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')
const art = (from: string, server = '#!/bin/sh\necho "Redis server v=7.0.15 sha=00000000:0"\n', cli = '#!/bin/sh\necho cli\n'): Artifact => ({
  from,
  files: [
    {name: 'redis-server', content: Buffer.from(server), sha256: sha(server)},
    {name: 'redis-cli', content: Buffer.from(cli), sha256: sha(cli)},
  ],
})

describe('build_once: platform and provider', () => {
  it('platformKey: OS release, arch and libc; any part unknown → null (that host builds itself)', () => {
    assert.equal(platformKey({os: 'debian:12', arch: 'x86_64', libc: 'ldd (Debian GLIBC 2.36-9+deb12u14) 2.36'}), 'debian:12 x86_64 ldd (Debian GLIBC 2.36-9+deb12u14) 2.36')
    assert.equal(platformKey({os: ':', arch: 'x86_64', libc: 'x'}), null)
    assert.equal(platformKey({os: 'debian:', arch: 'x86_64', libc: 'x'}), null)
    assert.equal(platformKey({os: 'debian:12', arch: '', libc: 'x'}), null)
    assert.equal(platformKey({os: 'debian:12', arch: 'x86_64'}), null)
  })
  it('facts: platform lines and the installed binaries’ sha256 are read', () => {
    const f = parseBuildFacts(
      `src=yes\nos=ubuntu:22.04\narch=aarch64\nlibc=ldd (Ubuntu GLIBC 2.35-0ubuntu3) 2.35\nsha=${'a'.repeat(64)}  /root/redis/bin/redis-server\nsha=${'b'.repeat(64)}  /root/redis/bin/redis-cli\n`,
    )
    assert.deepEqual(f.platform, {os: 'ubuntu:22.04', arch: 'aarch64', libc: 'ldd (Ubuntu GLIBC 2.35-0ubuntu3) 2.35'})
    assert.deepEqual(f.sha, {'redis-server': 'a'.repeat(64), 'redis-cli': 'b'.repeat(64)})
  })
  it('chooseProvider: a host that has the binaries, else the first (play order) that needs them builds', () => {
    assert.deepEqual(
      chooseProvider([
        {host: 'h3', order: 2, has: false},
        {host: 'h2', order: 1, has: false},
      ]),
      {host: 'h2', build: true},
    )
    assert.deepEqual(
      chooseProvider([
        {host: 'h1', order: 0, has: false},
        {host: 'h3', order: 2, has: true},
      ]),
      {host: 'h3', build: false},
    )
    assert.equal(chooseProvider([]), undefined)
  })
})

describe('build_once: rendezvous', () => {
  it('one task execution, one rendezvous (keyed by the playHosts array)', () => {
    const ph = [{host: 'a'}, {host: 'b'}]
    assert.equal(rendezvousFor(ph), rendezvousFor(ph))
    assert.notEqual(rendezvousFor(ph), rendezvousFor([...ph]))
  })
  it('all need: the first builds, the others get its binaries once it is done', async () => {
    const rv = new Rendezvous(['h1', 'h2', 'h3'])
    const [r3, r1, r2] = [rv.need('k', 'h3', 5000), rv.need('k', 'h1', 5000), rv.need('k', 'h2', 5000)]
    assert.deepEqual(await r1, {role: 'build'})
    rv.built('k', 'h1', Promise.resolve(art('h1')))
    const [c2, c3] = [await r2, await r3]
    assert.equal(c2.role === 'copy' && c2.from, 'h1')
    assert.equal(c3.role === 'copy' && c3.artifact?.from, 'h1')
  })
  it('a host that has them is the source: nobody builds, fetched once', async () => {
    const rv = new Rendezvous(['h1', 'h2', 'h3'])
    let fetched = 0
    const n1 = rv.need('k', 'h1', 5000)
    const n3 = rv.need('k', 'h3', 5000)
    rv.offer('k', 'h2', async () => (fetched++, art('h2')))
    const [a, b] = [await n1, await n3]
    assert.equal(a.role === 'copy' && a.artifact?.from, 'h2')
    assert.equal(b.role === 'copy' && b.artifact?.from, 'h2')
    assert.equal(fetched, 1)
  })
  it('another platform or marker is another group: it builds itself', async () => {
    const rv = new Rendezvous(['h1', 'h2'])
    const [a, b] = await Promise.all([rv.need('debian:12', 'h1', 5000), rv.need('alpine:3.19', 'h2', 5000)])
    assert.deepEqual([a, b], [{role: 'build'}, {role: 'build'}])
  })
  it('a failed build: the waiting hosts get nothing and build themselves', async () => {
    const rv = new Rendezvous(['h1', 'h2'])
    const n2 = rv.need('k', 'h2', 5000)
    assert.deepEqual(await rv.need('k', 'h1', 5000), {role: 'build'})
    rv.built('k', 'h1', Promise.reject(new Error('make failed')))
    const r = await n2
    assert.equal(r.role === 'copy' && r.artifact, undefined)
  })
  it('a host that never arrives (when: false, forks) only delays the decision by waitMs', async () => {
    const rv = new Rendezvous(['h1', 'h2', 'h3'])
    const t0 = Date.now()
    assert.deepEqual(await rv.need('k', 'h2', 100), {role: 'build'})
    assert.ok(Date.now() - t0 >= 90)
    // A late arrival follows the decision already made.
    const late = rv.need('k', 'h1', 100)
    rv.built('k', 'h2', Promise.resolve(art('h2')))
    const r = await late
    assert.equal(r.role === 'copy' && r.from, 'h2')
  })
})

describe('build_once: transfer', () => {
  it('parseFetched: base64 per binary, checked against the sha256 the host printed', () => {
    const a = art('h1')
    const out = a.files.map((f) => `@@F ${f.name} ${f.sha256}\n${f.content.toString('base64').replace(/(.{76})/g, '$1\n')}\n`).join('') + '@@END\n'
    assert.deepEqual(
      parseFetched(out, 'h1').map((f) => f.content.toString()),
      a.files.map((f) => f.content.toString()),
    )
    assert.throws(() => parseFetched(out.replace(a.files[0].sha256, 'f'.repeat(64)), 'h1'), /transfer damaged/)
    assert.throws(() => parseFetched('@@END\n', 'h1'), /expected redis-server, redis-cli/)
  })
  it('installScript on a real sh: verified, version checked, moved into place with the marker; a wrong version is refused', () => {
    const root = mkdtempSync(join(tmpdir(), 'bm-once-'))
    try {
      const bin = join(root, 'bin')
      const run = (a: Artifact, have: Record<string, string>, version: string) =>
        execFileSync('sh', ['-s'], {input: installScript(bin, a, have, version, 'source sha256:aa\nmake', 'h2'), encoding: 'utf8'})
      assert.match(run(art('h1'), {}, '7.0.15'), /@@ COPIED/)
      assert.equal(readFileSync(join(bin, '.baremetal-build'), 'utf8'), 'source sha256:aa\nmake\n')
      assert.equal(sha(readFileSync(join(bin, 'redis-server'))), art('h1').files[0].sha256)
      assert.match(execFileSync(join(bin, 'redis-server'), {encoding: 'utf8'}), /v=7\.0\.15/)
      // Already in place (same sha): nothing sent, still checked.
      const a = art('h1')
      const s = installScript(bin, a, {'redis-server': a.files[0].sha256, 'redis-cli': a.files[1].sha256}, '7.0.15', 'm', 'h2')
      assert.ok(!s.includes('base64 -d'))
      assert.match(execFileSync('sh', ['-s'], {input: s, encoding: 'utf8'}), /@@ COPIED/)
      // Another version: refused, nothing replaced.
      rmSync(join(bin, 'redis-server'))
      const other = art('h1', '#!/bin/sh\necho "Redis server v=7.0.150 sha=0"\n')
      let out = ''
      try {
        run(other, {}, '7.0.15')
      } catch (e) {
        out = String((e as {stdout?: string}).stdout)
      }
      assert.match(out, /@@ NOTRUN Redis server v=7\.0\.150/)
      assert.equal(existsSync(join(bin, 'redis-server')), false)
      // A binary that does not run at all.
      const broken = art('h1', '\x7fELF not really')
      out = ''
      try {
        run(broken, {}, '7.0.15')
      } catch (e) {
        out = String((e as {stdout?: string}).stdout)
      }
      assert.match(out, /@@ NOTRUN/)
      mkdirSync(join(root, 'x'))
      chmodSync(join(root, 'x'), 0o755)
      writeFileSync(join(root, 'x', 'f'), '')
    } finally {
      rmSync(root, {recursive: true, force: true})
    }
  })
})
