import assert from 'node:assert/strict'
import {execFileSync, spawn} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {instancesScript, libScript, type ScriptOpts, parseInstanceReport, parsePhases, planCheck, portList, resolvePorts, summarizeInstances} from '../../../../src/modules/redis/instances.js'

describe('redis_instances: ports', () => {
  it('port_start + count', () => assert.deepEqual(resolvePorts({port_start: 6379, count: 3}).ports, [6379, 6380, 6381]))
  it('a list, strings of digits accepted, duplicates dropped', () => assert.deepEqual(resolvePorts({ports: [7000, '7001', 7000]}).ports, [7000, 7001]))
  it('both forms → error', () => assert.match(resolvePorts({ports: [1], port_start: 2, count: 1}).error!, /either/))
  it('none → error', () => assert.match(resolvePorts({}).error!, /no ports/))
  it('out of range → error', () => assert.match(resolvePorts({ports: [70000]}).error!, /not a valid port: 70000/))
  it('injection attempt → error', () => assert.match(resolvePorts({ports: ['1; reboot']}).error!, /not a valid port/))
  it('portList compresses ranges', () => assert.equal(portList([6381, 6379, 6380, 7000, 7002]), '6379-6381, 7000, 7002'))
})

const report = [
  'noise before',
  '@@ 7000 running',
  '@@ 7001 started',
  '@@ 7002 failed did not answer on 127.0.0.1:7002 within 30 seconds',
  '| 123:M # Warning: Could not create server TCP listening socket 127.0.0.1:7002: bind: Address already in use',
  '|',
  '| port 7002 is in use: LISTEN 0 511 127.0.0.1:7002 0.0.0.0:* users:(("python3",pid=9,fd=3))',
  '@@ 7003 stopped SHUTDOWN NOSAVE ',
  '@@ 7003 removed',
  '@@ 7004 notrunning port 7004 is served by a redis-server not started from /d/7004 (pid 42): left running',
].join('\n')

describe('redis_instances: status parsing', () => {
  const r = parseInstanceReport(report)
  it('one record per port, states in order', () => {
    assert.deepEqual(r.get(7000), {states: ['running'], reasons: [''], detail: []})
    assert.deepEqual(r.get(7003)?.states, ['stopped', 'removed'])
    assert.equal(r.get(7003)?.reasons[0], 'SHUTDOWN NOSAVE')
  })
  it('detail lines belong to the record above', () => {
    assert.equal(r.get(7002)?.detail.length, 3)
    assert.match(r.get(7002)!.detail[0], /Address already in use/)
    assert.equal(r.get(7002)?.detail[1], '')
  })
})

describe('redis_instances: results', () => {
  const r = parseInstanceReport(report)
  it('started: running only → ok', () => {
    const res = summarizeInstances('started', [7000], r)
    assert.equal(res.status, 'ok')
    assert.match(res.msg!, /already running/)
  })
  it('started: some started → changed, data lists them', () => {
    const res = summarizeInstances('started', [7000, 7001], r)
    assert.equal(res.status, 'changed')
    assert.deepEqual(res.data, {started: [7001], running: [7000], failed: []})
  })
  it('started: a failed port → failed with the port and its log tail, the others reported', () => {
    const res = summarizeInstances('started', [7000, 7001, 7002], r)
    assert.equal(res.status, 'failed')
    assert.match(res.msg!, /1 of 3 instance\(s\) failed/)
    assert.match(res.msg!, /port 7002: did not answer/)
    assert.match(res.msg!, /Address already in use/)
    assert.match(res.msg!, /started 1 \(7001\)/)
    assert.deepEqual(res.data, {started: [7001], running: [7000], failed: [7002]})
  })
  it('a port missing from the report is failed, never silently ok', () => {
    const res = summarizeInstances('started', [7000, 7999], r)
    assert.equal(res.status, 'failed')
    assert.match(res.msg!, /port 7999: no status reported/)
  })
  it('stopped: stopped/removed → changed; foreign one noted, not failed', () => {
    const res = summarizeInstances('stopped', [7003, 7004], r, {remove: true})
    assert.equal(res.status, 'changed')
    assert.match(res.msg!, /stopped 1 \(7003\), removed 1/)
    assert.match(res.msg!, /left running/)
  })
  it('stopped: nothing running and nothing removed → ok', () => {
    const res = summarizeInstances('stopped', [7004], r, {remove: true})
    assert.equal(res.status, 'ok')
    assert.match(res.msg!, /no instance running and nothing to remove/)
  })
  it('check mode says would', () => {
    const st = parseInstanceReport('@@ 1 running\n@@ 2 stopped\n@@ 2 hasdir\n@@ 3 stopped\n')
    assert.equal(planCheck('started', [1, 2, 3], st, false).msg, 'would start 2 (2-3)')
    assert.equal(planCheck('started', [1], st, false).status, 'ok')
    assert.equal(planCheck('stopped', [1, 2], st, true).msg, 'would stop 1 (1), would remove 1 port dir(s)')
    assert.equal(planCheck('stopped', [3], st, true).status, 'ok')
  })
})

describe('redis_instances: script', () => {
  const o = {dir: "/d/it's", bin: '/b', bind: '127.0.0.1', waitSeconds: 5, remove: false, keepData: false, save: false}
  it('values are quoted and no ${…} survives String.raw', () => {
    const s = instancesScript('started', [1, 2], {...o, password: "p'w $(x)"})
    assert.ok(s.includes(`dir='/d/it'\\''s'`))
    assert.ok(s.includes(`PW='p'\\''w $(x)'`))
    assert.ok(!s.includes('\\${'))
  })
  it('a Sentinel: its own config file name, --sentinel, umask 077; an instance by default: redis.conf, none of them', () => {
    const s = instancesScript('started', [26379], {...o, conf: 'sentinel.conf', sentinel: true, private: true})
    assert.match(s, /CONF='?sentinel\.conf'?; XARGS=--sentinel; UMASK=077/)
    assert.ok(s.includes('exec "$bin/redis-server" "./$CONF" $XARGS )'))
    assert.match(instancesScript('started', [1], o), /CONF='?redis\.conf'?; XARGS=''; UMASK=''/)
  })
  it('the password reaches redis-cli only through REDISCLI_AUTH', () => {
    const s = instancesScript('stopped', [1], {...o, password: 'secret'})
    assert.ok(/REDISCLI_AUTH=\$c_auth/.test(s))
    assert.ok(!/ -a /.test(s) && !/--pass/.test(s) && !/\bAUTH\b.*secret/.test(s))
  })
})

describe('redis_instances: save', () => {
  const o = {dir: '/d', bin: '/b', bind: '127.0.0.1', waitSeconds: 5, remove: false, keepData: false, save: false}
  it('save: SHUTDOWN SAVE on teardown and restarts; without it NOSAVE', () => {
    assert.match(instancesScript('stopped', [1], {...o, save: true}), /SD_SAVE=1/)
    assert.match(instancesScript('restarted', [1], {...o, save: true}), /SD_SAVE=1/)
    assert.match(instancesScript('stopped', [1], o), /SD_SAVE=0/)
    // Teardown says NOW (one burst, then without NOW for the ports of a version that refuses it).
    assert.match(instancesScript('stopped', [1], o), /SD_NOW=1/)
    assert.match(instancesScript('stopped', [1], o), /sd_now=NOW/)
    assert.match(instancesScript('restarted', [1], o), /SD_NOW=0/)
  })
  it("a failed save fails the port with Redis' reply", () => {
    const r = parseInstanceReport('@@ 7000 failed not saved, left running (pid 9): ERR Errors trying to SHUTDOWN. Check logs.\n@@ 7001 stopped SHUTDOWN SAVE NOW\n')
    const res = summarizeInstances('stopped', [7000, 7001], r)
    assert.equal(res.status, 'failed')
    assert.match(res.msg!, /port 7000: not saved, left running \(pid 9\): ERR Errors trying to SHUTDOWN/)
    assert.match(res.msg!, /stopped 1 \(7001\)/)
  })
  it('AOF turned on after the RDB loaded is said', () => {
    const r = parseInstanceReport('@@ 7000 started\n@@ 7000 aofon\n@@ 7001 started\n')
    const res = summarizeInstances('started', [7000, 7001], r)
    assert.equal(res.status, 'changed')
    assert.match(res.msg!, /AOF turned on live after loading dump.rdb on 1 \(7000\)/)
    assert.deepEqual(res.data?.aof_on, [7000])
  })
})

// The host script's own functions, run by real sh in a temporary directory.
describe('redis_instances: script on a real sh', () => {
  const base = () => {
    const root = mkdtempSync(join(tmpdir(), 'bm-inst-'))
    mkdirSync(join(root, 'bin'))
    mkdirSync(join(root, 'd', '7000'), {recursive: true})
    return root
  }
  const opts = (root: string, save = false) => ({dir: join(root, 'd'), bin: join(root, 'bin'), bind: '127.0.0.1', waitSeconds: 1, remove: false, keepData: false, save})
  const put = (root: string, rel: string, text: string, mode = 0o644) => writeFileSync(join(root, rel), text, {mode})
  const rdbFirst = (root: string) => execFileSync('sh', ['-s'], {input: libScript('status', [7000], opts(root), ['rdb_first 7000 && echo first || echo normal']), encoding: 'utf8'}).trim()

  it('rdb_first: appendonly yes with a dump.rdb and no AOF (or a 0-byte one) loads the RDB first', () => {
    const root = base()
    try {
      put(root, 'd/7000/redis.conf', 'port 7000\nappendonly no\nappendonly yes\n')
      assert.equal(rdbFirst(root), 'normal', 'no dump.rdb: nothing to load')
      put(root, 'd/7000/dump.rdb', 'REDIS0009…')
      assert.equal(rdbFirst(root), 'first')
      put(root, 'd/7000/appendonly.aof', '')
      assert.equal(rdbFirst(root), 'first', 'a 0-byte AOF is what the empty start leaves')
      put(root, 'd/7000/appendonly.aof', '*2\r\n$6\r\nSELECT\r\n')
      assert.equal(rdbFirst(root), 'normal', 'an AOF with data is loaded as usual')
      put(root, 'd/7000/saved-by-baremetal', '1700000000\n')
      assert.equal(rdbFirst(root), 'first', 'the marker: dump.rdb is the newest save')
      put(root, 'd/7000/redis.conf', 'port 7000\nappendonly no\n')
      assert.equal(rdbFirst(root), 'normal', 'appendonly no loads the RDB anyway')
      rmSync(join(root, 'd/7000/saved-by-baremetal'))
      rmSync(join(root, 'd/7000/appendonly.aof'))
      mkdirSync(join(root, 'd/7000/appendonlydir'))
      put(root, 'd/7000/redis.conf', 'port 7000\nappendonly yes\n')
      assert.equal(rdbFirst(root), 'normal', "7.x's AOF directory is loaded as usual")
    } finally {
      rmSync(root, {recursive: true, force: true})
    }
  })

  it('start: the marker goes, an RDB-first instance gets --appendonly no and a snapshot saying so', () => {
    const root = base()
    try {
      put(root, 'bin/redis-server', '#!/bin/sh\necho "$@" > args\nexit 0\n', 0o755)
      put(root, 'd/7000/redis.conf', 'port 7000\nappendonly yes\n')
      put(root, 'd/7000/dump.rdb', 'REDIS0009…')
      put(root, 'd/7000/saved-by-baremetal', '1700000000\n')
      const out = execFileSync('sh', ['-s'], {input: instancesScript('started', [7000], opts(root)), encoding: 'utf8'})
      assert.match(out, /@@ 7000 failed did not answer/, 'the fake server never answers')
      assert.equal(existsSync(join(root, 'd/7000/saved-by-baremetal')), false)
      assert.equal(readFileSync(join(root, 'd/7000/args'), 'utf8').trim(), './redis.conf --appendonly no')
      assert.match(readFileSync(join(root, 'd/7000/redis.conf.applied'), 'utf8'), /appendonly yes\n\nappendonly no\n$/)
    } finally {
      rmSync(root, {recursive: true, force: true})
    }
  })

  it('stop with save: an instance that cannot be asked to save is left running, never SIGTERMed; without save it is', async () => {
    for (const save of [true, false]) {
      const root = base()
      // Ours by its pidfile and command line, but it listens nowhere: SHUTDOWN cannot reach it.
      put(root, 'bin/redis-server', '#!/bin/sh\nsleep 30 & wait\n', 0o755)
      const child = spawn(join(root, 'bin/redis-server'), ['127.0.0.1:7000'], {stdio: 'ignore', detached: true})
      try {
        await new Promise((r) => setTimeout(r, 200))
        put(root, 'd/7000/redis.pid', `${child.pid}\n`)
        put(root, 'd/7000/redis.conf', 'port 7000\n')
        const out = execFileSync('sh', ['-s'], {input: instancesScript('stopped', [7000], opts(root, save)), encoding: 'utf8'})
        await new Promise((r) => setTimeout(r, 200))
        if (save) {
          assert.match(out, /@@ 7000 failed not saved, left running \(pid \d+\): it does not answer/, out)
          assert.equal(child.exitCode === null && child.signalCode === null, true, 'still running')
        } else {
          assert.match(out, /@@ 7000 stopped SIGTERM to pid/, out)
          assert.equal(child.signalCode, 'SIGTERM')
        }
      } finally {
        // Its own process group (detached): the sleep goes with it.
        try {
          process.kill(-child.pid!, 'SIGKILL')
        } catch {}
        rmSync(root, {recursive: true, force: true})
      }
    }
  })
})

// Issue 11 case 3: an instance whose pidfile is gone is still known by its cwd or config.
describe('redis_instances: identity without a pidfile', () => {
  it('started: a restored pidfile is a change, named; check mode says it would restore it', () => {
    const r = parseInstanceReport('@@ 7000 running\n@@ 7000 pidrestored 42\n@@ 7001 running\n')
    const res = summarizeInstances('started', [7000, 7001], r)
    assert.equal(res.status, 'changed')
    assert.equal(res.msg, '2 already running, pidfile restored for 7000')
    assert.deepEqual(res.data, {started: [], running: [7000, 7001], failed: [], pidfile_restored: [7000]})
    const c = planCheck('started', [7000, 7001], parseInstanceReport('@@ 7000 running\n@@ 7000 pidmissing\n@@ 7001 running\n'), false)
    assert.equal(c.status, 'changed')
    assert.equal(c.msg, 'would restore the pidfile for 7000')
  })

  const root = mkdtempSync(join(tmpdir(), 'bm-ours-'))
  const o = {dir: join(root, 'd'), bin: join(root, 'bin'), bind: '127.0.0.1', waitSeconds: 1, remove: false, keepData: false, save: false}
  const run = (body: string[]) => execFileSync('sh', ['-s'], {input: libScript('status', [7000], o, body), encoding: 'utf8'}).trim()
  it('is_ours: by cwd (also deleted), or by the config path INFO reports ("./" kept); another dir is not ours', async () => {
    mkdirSync(join(root, 'd', '7000'), {recursive: true})
    mkdirSync(join(root, 'other'))
    const ours = spawn('sleep', ['30'], {cwd: join(root, 'd', '7000'), stdio: 'ignore'})
    const other = spawn('sleep', ['30'], {cwd: join(root, 'other'), stdio: 'ignore'})
    try {
      await new Promise((r) => setTimeout(r, 100))
      const ask = (pid: number | undefined, conf = '') => run([`is_ours ${pid} "$(our_dir 7000)" '${conf}' && echo ours || echo foreign`])
      assert.equal(ask(ours.pid), 'ours')
      assert.equal(ask(other.pid), 'foreign')
      assert.equal(ask(other.pid, `${join(root, 'd', '7000')}/./redis.conf`), 'ours', 'its config is ours')
      assert.equal(ask(other.pid, `${join(root, 'other')}/./redis.conf`), 'foreign')
      assert.equal(run(['is_ours "" "$(our_dir 7000)" "" && echo ours || echo foreign']), 'foreign', 'no pid, never ours')
      rmSync(join(root, 'd', '7000'), {recursive: true})
      assert.equal(ask(ours.pid), 'ours', 'a deleted cwd still names our dir')
      assert.equal(ask(other.pid), 'foreign')
    } finally {
      ours.kill('SIGKILL')
      other.kill('SIGKILL')
      rmSync(root, {recursive: true, force: true})
    }
  })
})

// Issue 14: the stop path reads files, passwords and command lines with builtins only.
describe('redis_instances: fork-free stop helpers', () => {
  const put = (root: string, rel: string, text: string) => writeFileSync(join(root, rel), text)
  const root = mkdtempSync(join(tmpdir(), 'bm-stop-'))
  const o = {dir: join(root, 'd'), bin: join(root, 'bin'), bind: '127.0.0.1', waitSeconds: 1, remove: false, keepData: false, save: false}
  const run = (body: string[], opts: ScriptOpts = o) => execFileSync('sh', ['-s'], {input: libScript('stopped', [7000], opts, body), encoding: 'utf8'})
  it('pw_of reads requirepass as pw_for does: the last line wins, quotes stripped; the given password wins', () => {
    mkdirSync(join(root, 'd', '7000'), {recursive: true})
    for (const conf of ['port 7000\n', 'requirepass  a b  \n', 'requirepass one\n  requirepass "two words"\nport 7000', '\trequirepass\tx$y\\z\n']) {
      put(root, 'd/7000/redis.conf', conf)
      assert.equal(run(['pw_of 7000; printf "[%s]" "$pw_v"']), run(['printf "[%s]" "$(pw_for 7000)"']), JSON.stringify(conf))
    }
    assert.equal(run(['pw_of 7000; printf "[%s]" "$pw_v"'], {...o, password: 'given'}), '[given]')
  })
  it('slurp joins lines (no trailing separator) and fails on a missing file; cmdline_of reads /proc', () => {
    put(root, 'f', 'SHUTDOWN NOSAVE NOW\nSIGTERM to pid 1 from its pidfile\n')
    assert.equal(run([`slurp ${join(root, 'f')} " "; printf "[%s]" "$rd_v"`]), '[SHUTDOWN NOSAVE NOW SIGTERM to pid 1 from its pidfile]')
    assert.equal(run([`slurp ${join(root, 'f')}; printf "[%s]" "$rd_v"`]), '[SHUTDOWN NOSAVE NOW\nSIGTERM to pid 1 from its pidfile]')
    assert.equal(run([`slurp ${join(root, 'nope')} && echo yes || echo no`]).trim(), 'no')
    assert.match(run(['cmdline_of $$; printf "[%s]" "$co_v"']), /^\[sh/)
    rmSync(root, {recursive: true, force: true})
  })
  it('parsePhases: ms per phase from the stamps; none without %N', () => {
    const s =
      '@@ 7000 stopped\n@@T start=1700000000000000000 verified=1700000000100000000 shutdown=1700000000350000000 exited=1700000000400000000 reported=1700000000410000000 removed=1700000000500000000\n'
    assert.deepEqual(parsePhases(s), {verify: 100, shutdown: 250, exit: 50, report: 10, remove: 90})
    assert.equal(parsePhases('@@T start=1700000000%N verified=1700000001%N\n'), undefined)
    assert.equal(parsePhases('@@ 7000 stopped\n'), undefined)
  })
})
