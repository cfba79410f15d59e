import assert from 'node:assert/strict'
import {readFile, stat, writeFile, symlink} from 'node:fs/promises'
import {join} from 'node:path'
import {after, before, test} from 'node:test'
import {applyLine, expandBackrefs, lineEdit, lineinfileModule, type LineEdit} from '../../../src/modules/lineinfile.js'
import {applyBlock, blockEdit, blockinfileModule, type BlockEdit} from '../../../src/modules/blockinfile.js'
import {pyRegex, splitLines} from '../../../src/modules/textfile.js'
import {context, removeDir, runModule, statuses, tempDir} from './harness.js'

let dir: string
before(async () => {
  dir = await tempDir()
})
after(async () => {
  await removeDir(dir)
})

const le = (a: Record<string, unknown>): LineEdit => {
  const e = lineEdit(a)
  if ('error' in e) throw new Error(e.error)
  return e
}
const file = (content: string) => ({exists: true, content, mode: 0o644})
const missing = {exists: false, content: ''}

// Ansible's documented lineinfile semantics, one row each: args, file before, after (or noop/fail).
test('lineinfile: Ansible semantics table', () => {
  const rows: Array<[string, Record<string, unknown>, string, string | {noop: string} | {fail: RegExp}]> = [
    ['append at EOF', {line: 'c'}, 'a\nb\n', 'a\nb\nc\n'],
    ['append adds the missing newline first', {line: 'c'}, 'a\nb', 'a\nb\nc\n'],
    ['exact line present: no change', {line: 'b'}, 'a\nb\nc\n', {noop: 'line already present'}],
    ['regexp replaces the LAST match', {regexp: '^port', line: 'port 7001'}, 'port 1\nx\nport 2\n', 'port 1\nx\nport 7001\n'],
    ['firstmatch replaces the first', {regexp: '^port', line: 'port 7001', firstmatch: true}, 'port 1\nx\nport 2\n', 'port 7001\nx\nport 2\n'],
    ['regexp already right', {regexp: '^port', line: 'port 1'}, 'port 1\n', {noop: 'line already present'}],
    ['regexp no match: added at EOF', {regexp: '^port', line: 'port 1'}, 'a\n', 'a\nport 1\n'],
    ['insertafter uses its last match', {line: 'new', insertafter: '^#'}, '# a\nx\n# b\ny\n', '# a\nx\n# b\nnew\ny\n'],
    ['insertafter firstmatch', {line: 'new', insertafter: '^#', firstmatch: true}, '# a\nx\n# b\n', '# a\nnew\nx\n# b\n'],
    ['insertafter no match: EOF', {line: 'new', insertafter: '^zzz'}, 'a\n', 'a\nnew\n'],
    ['insertbefore its last match', {line: 'new', insertbefore: '^y'}, 'y\nx\ny\n', 'y\nx\nnew\ny\n'],
    ['insertbefore BOF', {line: 'new', insertbefore: 'BOF'}, 'a\n', 'new\na\n'],
    ['insertafter EOF explicit', {line: 'new', insertafter: 'EOF'}, 'a\n', 'a\nnew\n'],
    ['regexp wins over insertafter when it matches', {regexp: '^k=', line: 'k=2', insertafter: '^a'}, 'a\nk=1\n', 'a\nk=2\n'],
    ['backrefs expand groups', {regexp: '^(bind) .*$', line: '\\1 10.0.0.1', backrefs: true}, 'bind 127.0.0.1\n', 'bind 10.0.0.1\n'],
    ['backrefs named group', {regexp: '^(?P<k>\\w+)=old', line: '\\g<k>=new', backrefs: true}, 'x=old\n', 'x=new\n'],
    ['backrefs no match: file left alone', {regexp: '^nothing', line: 'x', backrefs: true}, 'a\n', {noop: 'regexp matched nothing (backrefs: file left alone)'}],
    ['search_string replaces', {search_string: 'maxmemory ', line: 'maxmemory 1gb'}, 'maxmemory 2gb\n', 'maxmemory 1gb\n'],
    ['absent by regexp removes every match', {state: 'absent', regexp: '^#'}, '# a\nb\n# c\n', 'b\n'],
    ['absent by line', {state: 'absent', line: 'b'}, 'a\nb\nb\n', 'a\n'],
    ['absent nothing matches', {state: 'absent', line: 'z'}, 'a\n', {noop: 'no matching line'}],
    ['CRLF line kept', {regexp: '^a', line: 'A'}, 'a\r\nb\r\n', 'A\r\nb\r\n'],
    ['(?i) flag', {regexp: '(?i)^PORT', line: 'port 1'}, 'Port 0\n', 'port 1\n'],
  ]
  for (const [name, args, before, want] of rows) {
    const r = applyLine(le(args), file(before), '/f', false)
    if (typeof want === 'string') assert.deepEqual('content' in r ? r.content : r, want, name)
    else if ('noop' in want) assert.deepEqual(r, want, name)
  }
})

test('lineinfile: a missing file fails without create, is created with it, and absent is a no-op', () => {
  assert.match(String((applyLine(le({line: 'x'}), missing, '/f', false) as {fail: string}).fail), /does not exist.*create: yes/)
  assert.deepEqual(applyLine(le({line: 'x'}), missing, '/f', true), {content: 'x\n', msg: 'line added'})
  assert.deepEqual(applyLine(le({line: 'x', state: 'absent'}), missing, '/f', false), {noop: 'file not present'})
})

test('lineinfile: argument combinations Ansible refuses are refused', () => {
  assert.match((lineEdit({state: 'present'}) as {error: string}).error, /line is required/)
  assert.match((lineEdit({line: 'x', regexp: 'a', search_string: 'b'}) as {error: string}).error, /mutually exclusive/)
  assert.match((lineEdit({line: 'x', insertafter: 'a', insertbefore: 'b'}) as {error: string}).error, /mutually exclusive/)
  assert.match((lineEdit({line: 'x', backrefs: true}) as {error: string}).error, /regexp is required/)
  assert.match((lineEdit({line: 'x', regexp: '('}) as {error: string}).error, /cannot read regular expression/)
  assert.match((lineEdit({state: 'absent'}) as {error: string}).error, /one of line, regexp/)
})

test('helpers: splitLines keeps endings, pyRegex reads Python syntax, expandBackrefs', () => {
  assert.deepEqual(splitLines('a\nb\r\nc'), ['a\n', 'b\r\n', 'c'])
  assert.deepEqual(splitLines(''), [])
  assert.equal(pyRegex('(?P<x>a)(?P=x)').test('aa'), true)
  assert.equal(expandBackrefs('\\2-\\1\\\\', /(a)(b)/.exec('ab')!), 'b-a\\')
})

const be = (a: Record<string, unknown>): BlockEdit => {
  const e = blockEdit(a)
  if ('error' in e) throw new Error(e.error)
  return e
}

test('blockinfile: Ansible semantics table', () => {
  const B = '# BEGIN ANSIBLE MANAGED BLOCK\n'
  const E = '# END ANSIBLE MANAGED BLOCK\n'
  const rows: Array<[string, Record<string, unknown>, string, string | {noop: string}]> = [
    ['new block at EOF', {block: 'x\ny'}, 'a\n', `a\n${B}x\ny\n${E}`],
    ['newline added before a block', {block: 'x'}, 'a', `a\n${B}x\n${E}`],
    ['block replaced in place', {block: 'new'}, `a\n${B}old\n${E}b\n`, `a\n${B}new\n${E}b\n`],
    ['same block: no change', {block: 'x'}, `${B}x\n${E}`, {noop: 'block already present'}],
    ['insertbefore BOF', {block: 'x', insertbefore: 'BOF'}, 'a\n', `${B}x\n${E}a\n`],
    ['insertafter its last match', {block: 'x', insertafter: '^#x'}, '#x\n1\n#x\n2\n', `#x\n1\n#x\n${B}x\n${E}2\n`],
    ['insertbefore a regexp', {block: 'x', insertbefore: '^2'}, '1\n2\n', `1\n${B}x\n${E}2\n`],
    ['insertafter no match: EOF', {block: 'x', insertafter: '^zz'}, '1\n', `1\n${B}x\n${E}`],
    ['an existing block stays where it is', {block: 'y', insertbefore: 'BOF'}, `a\n${B}x\n${E}`, `a\n${B}y\n${E}`],
    ['custom marker and marks', {block: 'x', marker: '// {mark} redis', marker_begin: 'start', marker_end: 'stop'}, '', '// start redis\nx\n// stop redis\n'],
    ['absent removes the block', {state: 'absent'}, `a\n${B}x\n${E}b\n`, 'a\nb\n'],
    ['empty block removes it', {block: ''}, `a\n${B}x\n${E}`, 'a\n'],
    ['absent without a block', {state: 'absent'}, 'a\n', {noop: 'no block to remove'}],
    ['prepend/append newline', {block: 'x', prepend_newline: true, append_newline: true, insertafter: '^a'}, 'a\nb\n', `a\n\n${B}x\n${E}\nb\n`],
  ]
  for (const [name, args, before, want] of rows) {
    const r = applyBlock(be(args), file(before), '/f', false)
    if (typeof want === 'string') assert.equal('content' in r ? r.content : JSON.stringify(r), want, name)
    else assert.deepEqual(r, want, name)
  }
  assert.match(String((applyBlock(be({block: 'x'}), missing, '/f', false) as {fail: string}).fail), /does not exist/)
  assert.deepEqual(applyBlock(be({block: 'x'}), missing, '/f', true), {content: `${B}x\n${E}`, msg: 'file created'})
  assert.match((blockEdit({marker: 'same'}) as {error: string}).error, /same line/)
})

test('lineinfile module: 50 items on one file chain on the controller, one read and one write', async () => {
  const path = join(dir, 'many.conf')
  await writeFile(path, 'keep\nk0 = old\n', {mode: 0o600})
  const ctx = context(dir)
  const items = Array.from({length: 50}, (_, i) => ({args: {path, regexp: `^k${i} =`, line: `k${i} = ${i}`, state: 'present', create: false, firstmatch: false, backrefs: false}}))
  const {results, trips} = await runModule(lineinfileModule, ctx, items)
  assert.deepEqual(statuses(results), {changed: 50})
  assert.equal(trips, 2)
  const text = await readFile(path, 'utf8')
  assert.equal(text, ['keep', ...Array.from({length: 50}, (_, i) => `k${i} = ${i}`)].join('\n') + '\n')
  assert.equal((await stat(path)).mode & 0o777, 0o600, 'mode kept across the atomic write')
  const again = await runModule(lineinfileModule, ctx, items)
  assert.deepEqual(statuses(again.results), {ok: 50})
  assert.equal(again.trips, 1, 'nothing to do: only the read')
})

test('lineinfile module: check mode and diff change nothing and show the change; symlinks are written through', async () => {
  const real = join(dir, 'real.conf')
  const link = join(dir, 'link.conf')
  await writeFile(real, 'a\n')
  await symlink(real, link)
  const ctx = context(dir, {check: true, diff: true})
  const {results} = await runModule(lineinfileModule, ctx, [{args: {path: link, line: 'b', state: 'present'}}])
  assert.equal(results[0].status, 'changed')
  assert.match(results[0].msg ?? '', /^would change: line added/)
  assert.deepEqual(results[0].diff, [{path: link, before: 'a\n', after: 'a\nb\n'}])
  assert.equal(await readFile(real, 'utf8'), 'a\n')
  const real2 = await runModule(lineinfileModule, context(dir), [{args: {path: link, line: 'b', state: 'present', mode: '0640'}}])
  assert.equal(real2.results[0].status, 'changed')
  assert.equal(await readFile(real, 'utf8'), 'a\nb\n')
  assert.equal((await stat(real)).mode & 0o777, 0o640)
  assert.ok((await import('node:fs')).lstatSync(link).isSymbolicLink())
})

test('blockinfile module: create with parent directory, then idempotent', async () => {
  const path = join(dir, 'sub', 'limits.conf')
  const ctx = context(dir)
  const args = {path, block: 'a\nb\n', create: true, state: 'present'}
  const first = await runModule(blockinfileModule, ctx, [{args}])
  assert.equal(first.results[0].status, 'changed', first.results[0].msg)
  assert.equal(await readFile(path, 'utf8'), '# BEGIN ANSIBLE MANAGED BLOCK\na\nb\n# END ANSIBLE MANAGED BLOCK\n')
  const second = await runModule(blockinfileModule, ctx, [{args}])
  assert.equal(second.results[0].status, 'ok')
  const dirFail = await runModule(blockinfileModule, ctx, [{args: {path: dir, block: 'x'}}])
  assert.match(dirFail.results[0].msg ?? '', /is a directory/)
})
