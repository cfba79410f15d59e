import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {after, before, test} from 'node:test'
import {argvLine, buildRunStep, commandModule, inlineOptions, shellModule, splitWords} from '../../../src/modules/command.js'
import {context, removeDir, runModule, statuses, tempDir} from './harness.js'

let dir: string
before(async () => {
  dir = await tempDir()
})
after(async () => {
  await removeDir(dir)
})

test('splitWords: shell-like splitting, nothing expanded', () => {
  const table: Array<[string, string[]]> = [
    ['echo hi', ['echo', 'hi']],
    ['  echo   a\tb  ', ['echo', 'a', 'b']],
    [`echo 'a b' "c d"`, ['echo', 'a b', 'c d']],
    [`echo "it's" 'say "x"'`, ['echo', "it's", 'say "x"']],
    [`echo a\\ b`, ['echo', 'a b']],
    [`echo "\\$HOME \\" \\\\ \\x"`, ['echo', '$HOME " \\ \\x']],
    ['echo $(touch /tmp/x) `id` $HOME', ['echo', '$(touch', '/tmp/x)', '`id`', '$HOME']],
    [`echo ''`, ['echo', '']],
    [`a'b'"c"d`, ['abcd']],
  ]
  for (const [input, words] of table) assert.deepEqual(splitWords(input), words, input)
  assert.deepEqual(splitWords(`ls ~ ~/a '~/b' \\~/c ~d a~`, '/home/r'), ['ls', '/home/r', '/home/r/a', '~/b', '~/c', '~d', 'a~'])
  assert.throws(() => splitWords(`echo 'oops`), /unterminated single quote/)
  assert.throws(() => splitWords(`echo "oops`), /unterminated double quote/)
})

test('inlineOptions: trailing chdir=/creates=/removes= of the free form (Ansible habit)', () => {
  assert.deepEqual(inlineOptions('./redis-server redis.conf chdir=/srv/6379 creates="/srv/6379/a b"'), {text: './redis-server redis.conf', options: {chdir: '/srv/6379', creates: '/srv/6379/a b'}})
  assert.deepEqual(inlineOptions('echo chdir=/x hi'), {text: 'echo chdir=/x hi', options: {}}, 'only trailing words')
  assert.deepEqual(inlineOptions(`echo "a chdir=x"`), {text: `echo "a chdir=x"`, options: {}})
  assert.deepEqual(inlineOptions('echo hi'), {text: 'echo hi', options: {}})
})

test('argvLine: every word quoted; a leading VAR=x is not an assignment', () => {
  assert.equal(argvLine(['echo', 'a b']), `echo 'a b'`)
  assert.equal(argvLine(['FOO=bar', 'x']), `'FOO=bar' x`)
  assert.equal(argvLine(['rm', `'; rm -rf ~ #`]), `rm ''\\''; rm -rf ~ #'`)
})

test('buildRunStep: guards, chdir, stdin, and check mode runs only the guards', () => {
  assert.equal(buildRunStep({display: 'x', line: 'x'}, false), '( x )')
  assert.equal(buildRunStep({display: 'x', line: 'x', chdir: '/a b'}, false), `( cd '/a b' && x )`)
  assert.equal(buildRunStep({display: 'x', line: 'x', creates: '/c'}, false), 'if [ -e /c ]; then bm_note=creates\nelse ( x )\nfi')
  assert.equal(buildRunStep({display: 'x', line: 'x', creates: '/c', removes: '/r'}, true), 'if [ -e /c ]; then bm_note=creates\nelif [ ! -e /r ]; then bm_note=removes\nelse :\nfi')
  assert.match(buildRunStep({display: 'x', line: 'x', stdin: 'hi'}, false), /^printf '%s\\n' aGkK \| base64 -d \| \( x \)$/)
})

test('command: 100 items with creates: changed, then ok, one round trip each run', async () => {
  const ctx = context(dir)
  const items = Array.from({length: 100}, (_, i) => ({args: {cmd: `touch ~/marker-${i}`.replace('~', dir), creates: `~/marker-${i}`}, item: i}))
  const first = await runModule(commandModule, ctx, items)
  assert.deepEqual(statuses(first.results), {changed: 100})
  assert.ok(first.trips <= 3, `first run: ${first.trips} round trips`)
  assert.equal(first.trips, 1)
  assert.ok(existsSync(join(dir, 'marker-99')))
  const second = await runModule(commandModule, ctx, items)
  assert.deepEqual(statuses(second.results), {ok: 100})
  assert.equal(second.trips, 1)
  assert.equal(second.results[5].msg, `not run: ${dir}/marker-5 exists (creates)`)
})

test('command: free-form options and a leading ~ work; explicit args win', async () => {
  const ctx = context(dir)
  const {results} = await runModule(commandModule, ctx, [{args: {cmd: `ls ~/sub-for-ls chdir=${dir}`}}, {args: {cmd: 'pwd chdir=/', chdir: dir}}, {args: {cmd: 'echo "$HOME" \\~ ~x'}}])
  assert.equal(results[0].status, 'failed', 'ls of a missing dir')
  assert.match(results[0].msg ?? '', new RegExp(`: ls ~/sub-for-ls\n.*${dir}/sub-for-ls`))
  assert.equal(results[1].stdout, `${dir}\n`)
  assert.equal(results[2].stdout, '$HOME ~ ~x\n')
})

test('command: check mode reports "would run" and runs nothing', async () => {
  const ctx = context(dir, {check: true})
  const target = join(dir, 'check-mode-file')
  const {results} = await runModule(commandModule, ctx, [{args: {cmd: `touch ${target}`}}, {args: {cmd: `touch ${target}`, removes: join(dir, 'nope')}}])
  assert.equal(results[0].status, 'changed')
  assert.match(results[0].msg ?? '', /^would run: touch /)
  assert.equal(results[1].status, 'ok')
  assert.match(results[1].msg ?? '', /does not exist \(removes\)/)
  assert.equal(existsSync(target), false)
  const noGuards = await runModule(commandModule, context(dir, {check: true}), [{args: {cmd: `touch ${target}`}}])
  assert.equal(noGuards.trips, 0, 'nothing to check on the host')
  assert.equal(noGuards.results[0].status, 'changed')
})

test('command: $(…), backticks and quotes in the command line are data', async () => {
  const ctx = context(dir)
  const pwned = join(dir, 'pwned')
  const cmd = `echo $(touch ${pwned}) \`touch ${pwned}\` "'; touch ${pwned} #" ; touch ${pwned}`
  const {results} = await runModule(commandModule, ctx, [{args: {cmd}}, {args: {argv: ['echo', `$(touch ${pwned})`, `'; touch ${pwned} #`]}}])
  assert.equal(results[0].status, 'changed')
  assert.equal(results[0].stdout, `$(touch ${pwned}) \`touch ${pwned}\` '; touch ${pwned} # ; touch ${pwned}\n`)
  assert.equal(results[1].stdout, `$(touch ${pwned}) '; touch ${pwned} #\n`)
  assert.equal(existsSync(pwned), false, 'the marker file must not exist')
})

test('command: injection through chdir/creates/stdin is data too', async () => {
  const ctx = context(dir)
  const pwned = join(dir, 'pwned2')
  const {results} = await runModule(commandModule, ctx, [{args: {cmd: 'cat', stdin: `$(touch ${pwned})'"`, creates: `$(touch ${pwned})`}}, {args: {cmd: 'pwd', chdir: `${dir}/$(touch ${pwned})`}}])
  assert.equal(results[0].stdout, `$(touch ${pwned})'"\n`)
  assert.equal(results[1].status, 'failed')
  assert.equal(existsSync(pwned), false)
})

test('command: results carry rc/stdout/stderr; failures say why before what and others still run', async () => {
  const ctx = context(dir)
  const {results, trips} = await runModule(commandModule, ctx, [
    {args: {cmd: 'no-such-program-xyz --flag'}},
    {args: {argv: ['sh', '-c', 'echo out; echo err >&2; exit 3']}},
    {args: {cmd: 'pwd', chdir: dir}},
    {args: {cmd: `echo "unterminated`}},
  ])
  assert.equal(trips, 1)
  assert.equal(results[0].status, 'failed')
  assert.equal(results[0].rc, 127)
  assert.match(results[0].msg ?? '', /^command failed with exit code 127 \(command not found\): no-such-program-xyz --flag\n.*not found/)
  assert.equal(results[1].status, 'failed')
  assert.deepEqual([results[1].rc, results[1].stdout, results[1].stderr], [3, 'out\n', 'err\n'])
  assert.equal((results[1].data as {cmd: string}).cmd, `sh -c 'echo out; echo err >&2; exit 3'`)
  assert.equal(results[2].status, 'changed')
  assert.equal(results[2].stdout, `${dir}\n`)
  assert.deepEqual((results[2].data as {stdout_lines: string[]}).stdout_lines, [dir])
  assert.equal(results[3].status, 'failed')
  assert.match(results[3].msg ?? '', /unterminated double quote/)
})

test('shell: pipes and variables work, one round trip for all items, creates honored', async () => {
  const ctx = context(dir)
  const out = join(dir, 'shell-out')
  const items = Array.from({length: 100}, (_, i) => ({args: {cmd: `echo ${i} | tr 0-9 a-j > ${out}-${i}; echo "$HOME" >/dev/null`, creates: `${out}-${i}`}}))
  const first = await runModule(shellModule, ctx, items)
  assert.deepEqual(statuses(first.results), {changed: 100})
  assert.equal(first.trips, 1)
  assert.equal(await readFile(`${out}-12`, 'utf8'), 'bc\n')
  const second = await runModule(shellModule, ctx, items)
  assert.deepEqual(statuses(second.results), {ok: 100})
  const bad = await runModule(shellModule, ctx, [{args: {cmd: 'echo ok; exit 7'}}, {args: {cmd: 'if then'}}, {args: {cmd: 'echo still'}}])
  assert.equal(bad.results[0].rc, 7)
  assert.match(bad.results[0].msg ?? '', /^shell command failed with exit code 7 \(failed\): echo ok; exit 7/)
  assert.equal(bad.results[1].status, 'failed', 'a syntax error fails its own item')
  assert.equal(bad.results[2].stdout, 'still\n', 'and not the next one')
})
