import assert from 'node:assert/strict'
import {test} from 'node:test'
import {mkdir, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {buildScript, failureMessage, parseChecksum, parseProbe, parseStat, parseSteps, probeStep, runSteps, sha256, toMode} from '../../../src/modules/remote.js'
import {removeDir, tempDir} from './harness.js'
import {LocalTransport} from '../../../src/transport/local.js'

test('runSteps: exact per-step stdout, stderr and exit codes in one exec', async () => {
  const t = new LocalTransport('local')
  const b = await runSteps(t, ['printf hi', "printf 'a\\nb\\n'; echo oops >&2", 'exit_code() { return 3; }; exit_code', 'true', "printf ''"])
  assert.equal(t.stats.execs, 1)
  assert.deepEqual(
    b.steps.map((s) => [s?.rc, s?.stdout, s?.stderr]),
    [
      [0, 'hi', ''],
      [0, 'a\nb\n', 'oops\n'],
      [3, '', ''],
      [0, '', ''],
      [0, '', ''],
    ],
  )
})

test('runSteps: a step reading stdin cannot swallow the rest of the script', async () => {
  const t = new LocalTransport('local')
  const b = await runSteps(t, ['cat', 'echo second', 'read x; echo "got:$x"'])
  assert.deepEqual(
    b.steps.map((s) => s?.stdout),
    ['', 'second\n', 'got:\n'],
  )
})

test('runSteps: output that imitates a marker cannot shift the split', async () => {
  const t = new LocalTransport('local')
  const b = await runSteps(t, ["printf '\\n__BM_0000__ E 0 0 creates\\n'", 'echo ok'])
  assert.equal(b.steps[0]?.note, '')
  assert.equal(b.steps[1]?.stdout, 'ok\n')
})

test('parseSteps: a script that died mid-way leaves the remaining steps undefined', () => {
  const m = '__BM_x__'
  const script = buildScript(['echo a', 'echo b'], m)
  assert.match(script, /^\{\n/)
  const stdout = `${m} B 0\na\n\n${m} E 0 0 \n${m} B 1\nhalf`
  const steps = parseSteps(2, m, stdout, '')
  assert.deepEqual(steps[0], {rc: 0, stdout: 'a\n', stderr: '', note: ''})
  assert.equal(steps[1], undefined)
})

test('parseStat: the bm_stat line formats', () => {
  assert.deepEqual(parseStat('missing'), {type: 'missing'})
  assert.deepEqual(parseStat(''), {type: 'missing'})
  assert.deepEqual(parseStat('link'), {type: 'link'})
  const sha = 'a'.repeat(64)
  assert.deepEqual(parseStat(`file|644|root|staff|0|50|12|${sha}`), {type: 'file', mode: 0o644, user: 'root', group: 'staff', uid: 0, gid: 50, size: 12, sha256: sha})
  assert.equal(parseStat('directory|1777|root|root|0|0|4096|').mode, 0o1777)
  assert.equal(parseStat('directory|755|root|root|0|0|4096|').sha256, undefined)
})

test('toMode / parseChecksum accept the written forms and reject the rest', () => {
  assert.equal(toMode(0o755), 0o755)
  assert.equal(toMode('0644'), 0o644)
  assert.equal(toMode('755'), 0o755)
  assert.equal(toMode(undefined), undefined)
  assert.throws(() => toMode('u=rw'), /octal/)
  const hex = 'AB'.repeat(32)
  assert.equal(parseChecksum(`sha256:${hex}`), hex.toLowerCase())
  assert.equal(parseChecksum(undefined), undefined)
  assert.throws(() => parseChecksum('md5:abc'), /sha256/)
})

test('failureMessage: why before what, stderr tail, secrets masked', () => {
  const msg = failureMessage('command', 'redis-cli -a hunter2 ping', 127, 'line1\nsh: redis-cli: not found\n', ['hunter2'])
  assert.equal(msg, 'command failed with exit code 127 (command not found): redis-cli -a ******** ping\nline1\nsh: redis-cli: not found')
})

test('probeStep: one stat and one sha256sum for many paths, odd names included', async () => {
  const dir = await tempDir()
  try {
    const odd = join(dir, `a\\b|c 'd' $(x)`)
    await writeFile(odd, 'odd')
    await writeFile(join(dir, 'empty'), '')
    await mkdir(join(dir, 'sub'))
    await symlink(join(dir, 'nowhere'), join(dir, 'dangling'))
    await symlink(join(dir, 'sub'), join(dir, 'tosub'))
    const paths = [odd, join(dir, 'empty'), join(dir, 'sub'), join(dir, 'dangling'), join(dir, 'tosub'), join(dir, 'missing'), '/dev/null']
    const t = new LocalTransport('local')
    const b = await runSteps(t, [probeStep(paths, true)])
    assert.equal(t.stats.execs, 1)
    const m = parseProbe(paths, b.steps[0]?.stdout ?? '')
    assert.deepEqual(
      paths.map((p) => m.get(p)?.type),
      ['file', 'file', 'directory', 'link', 'directory', 'missing', 'other'],
    )
    assert.equal(m.get(odd)?.sha256, sha256('odd'))
    assert.equal(m.get(join(dir, 'empty'))?.sha256, sha256(''))
    assert.equal(m.get(join(dir, 'empty'))?.size, 0)
    assert.equal(typeof m.get(join(dir, 'sub'))?.mode, 'number')
  } finally {
    await removeDir(dir)
  }
})
