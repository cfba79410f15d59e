import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {after, before, test} from 'node:test'
import {ClusterError} from '../../../src/errors.js'
import {quote} from '../../../src/shell.js'
import {defineModule, definePlayModule, eachStep, type ModuleDef} from '../../../src/modules/define.js'
import {parseKv, str} from '../../../src/modules/remote.js'
import {context, removeDir, runModule, statuses, tempDir} from './harness.js'

let dir: string
before(async () => {
  dir = await tempDir()
})
after(async () => {
  await removeDir(dir)
})

// A toy module: "this file holds exactly this line". Everything generic is defineModule's.
interface LineWant {
  path: string
  line: string
}
const wants: string[] = []
const lineDef: ModuleDef<LineWant, {now?: string}, {}> = {
  name: 'line',
  description: 'a file holds one line',
  args: {path: {type: 'path', required: true}, line: {type: 'string', required: true}},
  want(ctx, item, scope) {
    scope.memo('once', () => wants.push('made'))
    const path = str(item.args.path)
    if (!path || path.includes('bad')) return {error: `line: bad path ${path}`}
    return {path: join(ctx.facts.home, path), line: str(item.args.line) ?? ''}
  },
  ...eachStep(
    (w: LineWant) => `if [ -f ${quote(w.path)} ]; then printf 'now=%s\\n' "$(cat ${quote(w.path)})"; fi`,
    (s) => ({now: parseKv(s.stdout).now}),
  ),
  plan(w, f) {
    if (w.line === 'refuse') return {kind: 'fail', msg: 'refused: hunter2'}
    if (f.now === w.line) return {kind: 'noop', msg: `${w.path} already holds it`}
    return {kind: 'change', msg: `wrote ${w.path}`, would: `would write ${w.path}`}
  },
  apply: {step: ({want: w}) => `printf '%s\\n' ${quote(w.line)} > ${quote(w.path)}`, subject: (t) => t.want.path},
}
const lineModule = defineModule(lineDef)

test('defineModule: all items in one fact and one apply round trip; a second run is one round trip of no-ops', async () => {
  const ctx = context(dir)
  const items = [1, 2, 3, 4].map((n) => ({args: {path: `a${n}`, line: `v${n}`}}))
  const first = await runModule(lineModule, ctx, items)
  assert.deepEqual(statuses(first.results), {changed: 4})
  assert.equal(first.trips, 2)
  assert.equal(first.results[0].msg, `wrote ${join(dir, 'a1')}`)
  assert.equal((await readFile(join(dir, 'a3'), 'utf8')).trim(), 'v3')
  const again = await runModule(lineModule, ctx, items)
  assert.deepEqual(statuses(again.results), {ok: 4})
  assert.equal(again.trips, 1)
  assert.equal(again.results[1].msg, `${join(dir, 'a2')} already holds it`)
})

test('defineModule: check mode says "would …" and changes nothing; invalid items fail alone; failures are masked', async () => {
  const ctx = context(dir, {check: true, secrets: new Set(['hunter2'])})
  const {results, trips} = await runModule(lineModule, ctx, [{args: {path: 'c1', line: 'x'}}, {args: {path: 'bad', line: 'x'}}, {args: {path: 'c2', line: 'refuse'}}])
  assert.equal(trips, 1)
  assert.deepEqual(results[0], {status: 'changed', msg: `would write ${join(dir, 'c1')}`})
  assert.deepEqual(results[1], {status: 'failed', msg: 'line: bad path bad'})
  assert.deepEqual(results[2], {status: 'failed', msg: 'refused: ********'})
  assert.equal(existsSync(join(dir, 'c1')), false)
})

test('defineModule: an interrupt skips every item before any round trip', async () => {
  const ctx = {...context(dir), signal: AbortSignal.abort()}
  const {results, trips} = await runModule(lineModule, ctx, [{args: {path: 'i1', line: 'x'}}, {args: {path: 'i2', line: 'y'}}])
  assert.equal(trips, 0)
  assert.deepEqual(results, [
    {status: 'skipped', msg: 'interrupted'},
    {status: 'skipped', msg: 'interrupted'},
  ])
})

test('defineModule: the run scope is shared by the items of one run', async () => {
  wants.length = 0
  await runModule(lineModule, context(dir, {check: true}), [{args: {path: 's1', line: 'x'}}, {args: {path: 's2', line: 'x'}}])
  assert.deepEqual(wants, ['made'])
})

test("defineModule: a failing step is that item's failure with exit code and stderr; a step that never finished is a lost result", async () => {
  const failing = defineModule<LineWant, {now?: string}, {}>({
    ...lineDef,
    apply: {step: ({want: w}) => (w.line === 'die' ? 'exit 3' : w.line === 'no' ? 'echo nope >&2; false' : `: > ${quote(w.path)}`), subject: (t) => t.want.path},
  })
  const {results} = await runModule(failing, context(dir), [{args: {path: 'f1', line: 'ok'}}, {args: {path: 'f2', line: 'no'}}, {args: {path: 'f3', line: 'die'}}, {args: {path: 'f4', line: 'after'}}])
  assert.equal(results[0].status, 'changed')
  assert.equal(results[1].status, 'failed')
  assert.equal(results[1].rc, 1)
  assert.match(results[1].msg ?? '', /^line failed with exit code 1 .*: .*f2\nnope$/)
  assert.match(results[2].msg ?? '', /^no result: the script stopped early \(exit 3/)
  assert.match(results[3].msg ?? '', /^no result/)
})

test("defineModule: grouped commands first; when the group fails, each item's own step tells who failed", async () => {
  const grouped = defineModule<LineWant, {now?: string}, {}>({
    ...lineDef,
    apply: {
      ...lineDef.apply,
      batch: (todo) => [`touch -- ${todo.map((t) => quote(t.want.path)).join(' ')}`, ...(todo.some((t) => t.want.line === 'bad') ? ['false'] : [])],
      step: ({want: w}) => (w.line === 'bad' ? 'echo broken >&2; (exit 2)' : `printf '%s\\n' ${quote(w.line)} > ${quote(w.path)}`),
    },
  })
  const ok = await runModule(grouped, context(dir), [{args: {path: 'g1', line: 'x'}}, {args: {path: 'g2', line: 'y'}}])
  assert.deepEqual(statuses(ok.results), {changed: 2})
  assert.equal(ok.trips, 2)
  // The group ran (touch) and the items' own steps did not (the files stay empty).
  assert.equal(await readFile(join(dir, 'g1'), 'utf8'), '')
  const mixed = await runModule(grouped, context(dir), [{args: {path: 'g3', line: 'x'}}, {args: {path: 'g4', line: 'bad'}}])
  assert.equal(mixed.trips, 2)
  assert.equal(mixed.results[0].status, 'changed')
  assert.equal((await readFile(join(dir, 'g3'), 'utf8')).trim(), 'x')
  assert.equal(mixed.results[1].status, 'failed')
  assert.equal(mixed.results[1].rc, 2)
})

test('defineModule: work before the script settles items (a failure, a result) or leaves them to the script; data and a custom finish', async () => {
  await writeFile(join(dir, 'b3'), 'old\n')
  const staged = defineModule<LineWant, {now?: string}, {}>({
    ...lineDef,
    data: (_ctx, w, f, plan) => (plan.kind === 'noop' ? {path: w.path, now: f.now} : undefined),
    changed: async () => (t, msg) => ({status: 'changed', msg: `${msg}!`, data: {path: t.want.path}}),
    apply: {
      ...lineDef.apply,
      before: async (_ctx, todo, finish) => todo.map((t) => (t.want.line === 'up' ? finish(t, 'uploaded') : t.want.line === 'lost' ? 'upload failed: hunter2' : undefined)),
    },
  })
  const ctx = context(dir, {secrets: new Set(['hunter2'])})
  const {results} = await runModule(staged, ctx, [{args: {path: 'b1', line: 'up'}}, {args: {path: 'b2', line: 'lost'}}, {args: {path: 'b3', line: 'old'}}, {args: {path: 'b4', line: 'script'}}])
  assert.deepEqual(results[0], {status: 'changed', msg: 'uploaded!', data: {path: join(dir, 'b1')}})
  assert.deepEqual(results[1], {status: 'failed', msg: 'upload failed: ********'})
  assert.deepEqual(results[2], {status: 'ok', msg: `${join(dir, 'b3')} already holds it`, data: {path: join(dir, 'b3'), now: 'old'}})
  assert.deepEqual(results[3], {status: 'changed', msg: `wrote ${join(dir, 'b4')}!`, data: {path: join(dir, 'b4')}})
  assert.equal(existsSync(join(dir, 'b1')), false)
  const check = await runModule(staged, context(dir, {check: true}), [{args: {path: 'b5', line: 'up'}}])
  assert.deepEqual(check.results[0], {status: 'changed', msg: `would write ${join(dir, 'b5')}!`, data: {path: join(dir, 'b5')}})
})

test("definePlayModule: runs once for the play; a thrown error is the item's failure with its hint, masked, the error kept as data", async () => {
  const play = definePlayModule({
    name: 'toy_cluster',
    description: 'toy',
    args: {},
    prefix: 'toy: ',
    async runItem(_ctx, args) {
      if (args.fail) throw new ClusterError('no quorum with password hunter2', {hint: 'start more nodes'})
      if (args.crash) throw new Error('plain crash')
      return {status: 'ok', msg: 'formed'}
    },
  })
  assert.equal(play.runOnce, true)
  assert.equal(play.checkMode, true)
  const ctx = context(dir, {secrets: new Set(['hunter2'])})
  const results = await play.run(ctx, [{args: {}}, {args: {fail: true}}, {args: {crash: true}}])
  assert.deepEqual(results[0], {status: 'ok', msg: 'formed'})
  assert.equal(results[1].status, 'failed')
  assert.equal(results[1].msg, 'toy: no quorum with password ******** (hint: start more nodes)')
  assert.ok(results[1].data?.error)
  assert.equal(results[2].msg, 'toy: plain crash')
})
