import assert from 'node:assert/strict'
import {test} from 'node:test'
import {assertItem} from '../../../src/modules/assert.js'
import {debugItem} from '../../../src/modules/debug.js'
import {failModule} from '../../../src/modules/fail.js'
import {setFactModule, badFactNames} from '../../../src/modules/set_fact.js'
import {noInitMessage, parseService, planService, type ServiceWant} from '../../../src/modules/service.js'
import {parseStatStep, statStep} from '../../../src/modules/stat.js'
import {context, runModule} from './harness.js'

const vars = {ports: [7000, 7001], name: 'r', redis_password: 's3cret', nested: {a: {b: 2}}}

test('debug: msg, var (expressions, undefined), verbosity, secrets masked', () => {
  assert.deepEqual(debugItem({msg: 'hi'}, vars, 0, []), {status: 'ok', msg: 'hi', data: {msg: 'hi'}})
  assert.equal(debugItem({}, vars, 0, []).msg, 'Hello world!')
  assert.equal(debugItem({var: 'ports | length'}, vars, 0, []).msg, 'ports | length = 2')
  assert.deepEqual(debugItem({var: 'nested.a'}, vars, 0, []).data, {'nested.a': {b: 2}})
  assert.equal(debugItem({var: 'nope'}, vars, 0, []).msg, 'nope = VARIABLE IS NOT DEFINED!')
  assert.equal(debugItem({var: 'redis_password'}, vars, 0, ['s3cret']).msg, 'redis_password = ********')
  assert.equal(debugItem({msg: 'x', verbosity: 2}, vars, 1, []).status, 'skipped')
  assert.equal(debugItem({msg: 'x', verbosity: 2}, vars, 2, []).status, 'ok')
  assert.equal(debugItem({msg: 'x', var: 'y'}, vars, 0, []).status, 'failed')
})

test('assert: every condition must hold; messages; undefined variable fails the item', () => {
  assert.deepEqual(assertItem({that: ['ports | length == 2', 'name == "r"']}, vars, []), {status: 'ok', msg: 'All assertions passed', data: {msg: 'All assertions passed'}})
  const bad = assertItem({that: ['ports | length == 2', 'name == "x"'], fail_msg: 'wrong name'}, vars, [])
  assert.equal(bad.status, 'failed')
  assert.equal(bad.msg, 'wrong name')
  assert.equal(bad.data?.assertion, 'name == "x"')
  assert.equal(assertItem({that: 'false'}, vars, []).msg, 'Assertion failed')
  assert.equal(assertItem({that: true, quiet: true}, vars, []).msg, '')
  assert.equal(assertItem({that: true, success_msg: 'fine'}, vars, []).msg, 'fine')
  assert.match(assertItem({that: 'missing_var > 1'}, vars, []).msg ?? '', /conditional check 'missing_var > 1' failed/)
})

test('fail and set_fact run on the controller: no round trip', async () => {
  const ctx = context('/tmp')
  const f = await runModule(failModule, ctx, [{args: {msg: 'stop here'}}])
  assert.deepEqual([f.results[0].status, f.results[0].msg, f.trips], ['failed', 'stop here', 0])
  const s = await runModule(setFactModule, ctx, [{args: {a: 1, b: [1, 2], cacheable: false}}])
  assert.deepEqual(s.results[0].facts, {a: 1, b: [1, 2]})
  assert.equal(s.trips, 0)
  assert.match(badFactNames({'bad-name': 1})!.msg, /not a valid variable name/)
  assert.match(badFactNames({})!.msg, /at least one/)
  assert.equal(badFactNames({ok_name: 1}), undefined)
})

test("stat: one step per path parsed into Ansible's stat dict", () => {
  assert.match(statStep({path: '/x', follow: false, checksum: 'sha1'}), /sha1sum/)
  const out = 'S|regular file|644|0|0|root|root|12|99|2049|1|1700000000|1700000001|1700000002\nA|rw\nC|da39a3ee5e6b4b0d3255bfef95601890afd80709\n'
  const st = parseStatStep({path: '/x', follow: false, checksum: 'sha1'}, {rc: 0, stdout: out, stderr: '', note: ''})
  assert.equal(st.exists, true)
  assert.equal(st.isreg, true)
  assert.equal(st.isdir, false)
  assert.equal(st.mode, '0644')
  assert.equal(st.size, 12)
  assert.equal(st.pw_name, 'root')
  assert.equal(st.mtime, 1700000001)
  assert.equal(st.checksum, 'da39a3ee5e6b4b0d3255bfef95601890afd80709')
  assert.equal(st.roth, true)
  assert.equal(st.woth, false)
  assert.equal(st.executable, false)
  const link = parseStatStep({path: '/l', follow: false}, {rc: 0, stdout: 'S|symbolic link|777|0|0|root|root|4|1|1|1|1|1|1\nA|r\nT|/x\nR|/x\n', stderr: '', note: ''})
  assert.deepEqual([link.islnk, link.lnk_target, link.lnk_source], [true, '/x', '/x'])
  assert.deepEqual(parseStatStep({path: '/m', follow: false}, {rc: 0, stdout: 'missing\n', stderr: '', note: ''}), {exists: false})
})

const sw = (o: Partial<ServiceWant>): ServiceWant => ({name: 'chrony', daemonReload: false, ...o})

test('service: systemd plans, SysV plans, and no init system fails with what to write instead', () => {
  const sd = parseService('init=systemd\nLoadState=loaded\nActiveState=inactive\nUnitFileState=disabled\npid1=systemd\nsystemctl=1\n')
  const p = planService(sw({state: 'started', enabled: true}), sd)
  assert.equal(p.kind, 'change')
  assert.deepEqual((p as {commands: string[]}).commands, ['systemctl enable chrony', 'systemctl start chrony'])
  const running = parseService('init=systemd\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\n')
  assert.equal(planService(sw({state: 'started', enabled: true}), running).kind, 'noop')
  assert.deepEqual((planService(sw({state: 'stopped'}), running) as {commands: string[]}).commands, ['systemctl stop chrony'])
  assert.equal((planService(sw({state: 'restarted'}), running) as {commands: string[]}).commands[0], 'systemctl restart chrony')
  const onlyReload = planService(sw({daemonReload: true}), running) as {onlyReload: boolean; commands: string[]}
  assert.deepEqual([onlyReload.onlyReload, onlyReload.commands], [true, ['systemctl daemon-reload']])
  assert.match((planService(sw({state: 'started'}), parseService('init=systemd\nLoadState=not-found\n')) as {msg: string}).msg, /could not find/)
  const sysv = parseService('init=sysv\nscript=1\nstatus=3\npid1=init\nservice=1\n')
  assert.deepEqual((planService(sw({state: 'started'}), sysv) as {commands: string[]}).commands, ['service chrony start'])
  const none = parseService('init=none\npid1=process_api\nsystemctl=1\nservice=1\n')
  const fail = planService(sw({state: 'started'}), none)
  assert.equal(fail.kind, 'fail')
  assert.equal((fail as {msg: string}).msg, noInitMessage(sw({}), none))
  assert.match((fail as {msg: string}).msg, /PID 1 is "process_api".*\/run\/systemd\/system is missing.*systemctl is installed.*pidfile.*redis_instances/)
})
