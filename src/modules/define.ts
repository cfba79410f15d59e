import {BaremetalError, ClusterError, hintText, TaskError, UnreachableError} from '../errors.js'
import {mask} from '../shell.js'
import {failureMessage, interrupted, lostStep, runSteps, type Batch, type Plan, type StepResult} from './remote.js'
import type {ArgSpec, ItemResult, ModuleContext, ModuleSpec, TaskItem} from './types.js'

// The one driver of every batched host module (after pyinfra's operation decorator): a
// module says what each item wants, how to probe it, a pure plan and the steps that apply
// it; this file owns the rest — interrupts, validation errors, check mode's "would …",
// no-op reasons, lost steps, and the two round trips per host (all loop items' facts in
// one, all their changes in one) whatever the number of items.

/** A planned change of one item, with what the plan needs to apply and report it. */
export type Change<C> = Extract<Plan<C>, {kind: 'change'}>

/** One item that has something to do. */
export interface Todo<W, F, C> {
  /** Its index among the task's loop items. */
  i: number
  want: W
  facts: F
  plan: Change<C>
}

/** Per-run memory shared by the items of one task on one host (a file hashed once, say). */
export interface RunScope {
  memo<T>(key: string, make: () => T): T
}

/** One script: its steps, and shell functions they call. */
export interface Script {
  steps: string[]
  prelude?: string
}

/** A changed item's result, given its (masked) message: "would …" in check mode, else what was done. */
export type Finish<W, F, C> = (t: Todo<W, F, C>, msg: string) => ItemResult

export interface ApplyDef<W, F, C> {
  prelude?: string
  /** Work outside the script first (uploads): per todo, its failure, its finished result, or undefined to go on to step(). */
  before?(ctx: ModuleContext, todo: Array<Todo<W, F, C>>, finish: Finish<W, F, C>): Promise<Array<string | ItemResult | undefined>>
  /** The shell step that applies one item. */
  step(t: Todo<W, F, C>): string
  /**
   * All items' changes as fewer commands (100 mkdirs → one). Run first; the items' own
   * steps then run only if the group failed, to tell who failed (steps must be idempotent).
   */
  batch?(todo: Array<Todo<W, F, C>>): string[] | undefined
  /** A progress line before the item is applied. */
  log?(t: Todo<W, F, C>): string | undefined
  /** Its step finished (any exit code): the item's result. Default: rc 0 finish(), else failed. */
  done?(ctx: ModuleContext, t: Todo<W, F, C>, s: StepResult, finish: Finish<W, F, C>): ItemResult
  /** What `failed with exit code …` names when done is not given. */
  what?: string
  subject?(t: Todo<W, F, C>): string
}

export interface ModuleDef<W, F, C> {
  name: string
  description: string
  args: Record<string, ArgSpec>
  freeForm?: string
  /** Arguments → what the item wants, or why it is invalid (that item fails, the others go on). */
  want(ctx: ModuleContext, item: TaskItem, scope: RunScope): W | {error: string} | Promise<W | {error: string}>
  /** The fact probe of all valid items: one round trip. */
  probe(ctx: ModuleContext, wants: W[]): Script
  /** The probe's step results → each want's facts (undefined: its part never finished). */
  parse(wants: W[], steps: Array<StepResult | undefined>): Array<F | undefined>
  /** Pure: facts → a change, a no-op with its reason, or a failure. check: nothing earlier really ran. */
  plan(want: W, facts: F, check: boolean): Plan<C>
  /** `register:` data of a no-op or changed result. */
  data?(ctx: ModuleContext, want: W, facts: F, plan: Plan<C>): Record<string, unknown> | undefined
  /** How changed items report, set up once for all of them, check mode too (copy's diffs: one more round trip). */
  changed?(ctx: ModuleContext, todo: Array<Todo<W, F, C>>): Promise<Finish<W, F, C>>
  apply: ApplyDef<W, F, C>
}

function scope(): RunScope {
  const memory = new Map<string, unknown>()
  return {
    memo<T>(key: string, make: () => T): T {
      if (!memory.has(key)) memory.set(key, make())
      return memory.get(key) as T
    },
  }
}

function withData(r: ItemResult, data: Record<string, unknown> | undefined): ItemResult {
  return data === undefined ? r : {...r, data}
}

// Facts → results for the items with nothing to do, and the list of those that have.
async function planAll<W, F, C>(def: ModuleDef<W, F, C>, ctx: ModuleContext, valid: Array<{i: number; w: W}>, results: ItemResult[]): Promise<Array<Todo<W, F, C>>> {
  const wants = valid.map((v) => v.w)
  const probe = def.probe(ctx, wants)
  const facts = await runSteps(ctx.transport, probe.steps, probe.prelude)
  const parsed = def.parse(wants, facts.steps)
  const todo: Array<Todo<W, F, C>> = []
  valid.forEach(({i, w}, k) => {
    const f = parsed[k]
    if (f === undefined) {
      results[i] = {status: 'failed', msg: lostStep(facts)}
      return
    }
    const plan = def.plan(w, f, ctx.check)
    if (plan.kind === 'fail') results[i] = {status: 'failed', msg: mask(plan.msg, ctx.secrets)}
    else if (plan.kind === 'noop') results[i] = withData({status: 'ok', msg: mask(plan.msg, ctx.secrets)}, def.data?.(ctx, w, f, plan))
    else todo.push({i, want: w, facts: f, plan})
  })
  return todo
}

function finisher<W, F, C>(def: ModuleDef<W, F, C>, ctx: ModuleContext, todo: Array<Todo<W, F, C>>): Promise<Finish<W, F, C>> {
  if (def.changed) return def.changed(ctx, todo)
  return Promise.resolve((t, msg) => withData({status: 'changed', msg}, def.data?.(ctx, t.want, t.facts, t.plan)))
}

// The apply script: the grouped commands first when there are any, each item's own step
// only if the group failed. Returns the script and where the items' steps start.
function applyScript<W, F, C>(apply: ApplyDef<W, F, C>, todo: Array<Todo<W, F, C>>): {steps: string[]; offset: number} {
  const own = todo.map((t) => apply.step(t))
  const batch = apply.batch?.(todo)
  if (!batch) return {steps: own, offset: 0}
  const group = `if { ${batch.join(' &&\n')}; } 2>/dev/null; then bm_batch=1; else bm_batch=0; fi`
  return {steps: [group, ...own.map((s) => `if [ "$bm_batch" = 1 ]; then :; else ${s}\nfi`)], offset: 1}
}

function stepResult<W, F, C>(def: ModuleDef<W, F, C>, ctx: ModuleContext, t: Todo<W, F, C>, s: StepResult | undefined, batch: Batch, finish: Finish<W, F, C>): ItemResult {
  const a = def.apply
  if (!s) return {status: 'failed', msg: lostStep(batch)}
  if (a.done) return a.done(ctx, t, s, finish)
  if (s.rc === 0) return finish(t, mask(t.plan.msg, ctx.secrets))
  return {status: 'failed', msg: failureMessage(a.what ?? def.name, a.subject?.(t) ?? '', s.rc, s.stderr, ctx.secrets), rc: s.rc, stderr: s.stderr}
}

// Work outside the script (uploads) settles some items; the others go on to the script.
async function beforeScript<W, F, C>(apply: ApplyDef<W, F, C>, ctx: ModuleContext, todo: Array<Todo<W, F, C>>, results: ItemResult[], finish: Finish<W, F, C>): Promise<Array<Todo<W, F, C>>> {
  if (!apply.before) return todo
  const settled = await apply.before(ctx, todo, finish)
  return todo.filter((t, k) => {
    const r = settled[k]
    if (typeof r === 'string') results[t.i] = {status: 'failed', msg: mask(r, ctx.secrets)}
    else if (r) results[t.i] = r
    return r === undefined
  })
}

async function applyAll<W, F, C>(def: ModuleDef<W, F, C>, ctx: ModuleContext, todo: Array<Todo<W, F, C>>, results: ItemResult[]): Promise<void> {
  const a = def.apply
  const finish = await finisher(def, ctx, todo)
  if (ctx.check) {
    for (const t of todo) results[t.i] = finish(t, mask(t.plan.would, ctx.secrets))
    return
  }
  for (const t of todo) {
    const line = a.log?.(t)
    if (line) ctx.log(mask(line, ctx.secrets))
  }
  const ready = await beforeScript(a, ctx, todo, results, finish)
  if (ready.length === 0) return
  const {steps, offset} = applyScript(a, ready)
  const done = await runSteps(ctx.transport, steps, a.prelude)
  ready.forEach((t, k) => {
    results[t.i] = stepResult(def, ctx, t, done.steps[k + offset], done, finish)
  })
}

/** The module the runner registers, from what the module itself knows. */
export function defineModule<W, F, C>(def: ModuleDef<W, F, C>): ModuleSpec {
  return {
    name: def.name,
    description: def.description,
    args: def.args,
    freeForm: def.freeForm,
    checkMode: true,
    async run(ctx, items) {
      const stop = interrupted(ctx, items.length)
      if (stop) return stop
      const memo = scope()
      const wants = await Promise.all(items.map((it) => def.want(ctx, it, memo)))
      const results: ItemResult[] = wants.map((w) => ({status: 'failed', msg: isError(w) ? w.error : 'not planned'}))
      const valid = wants.flatMap((w, i) => (isError(w) ? [] : [{i, w}]))
      const todo = await planAll(def, ctx, valid, results)
      if (todo.length > 0) await applyAll(def, ctx, todo, results)
      return results
    },
  }
}

function isError(w: unknown): w is {error: string} {
  return typeof w === 'object' && w !== null && 'error' in w
}

/** Per-item facts: one step per want, parsed alone (git, unarchive). */
export function eachStep<W, F>(step: (w: W) => string, parse: (s: StepResult, w: W) => F, prelude?: (ctx: ModuleContext, wants: W[]) => string): Pick<ModuleDef<W, F, unknown>, 'probe' | 'parse'> {
  return {
    probe: (ctx, wants) => ({steps: wants.map(step), prelude: prelude?.(ctx, wants)}),
    parse: (wants, steps) =>
      wants.map((w, k) => {
        const s = steps[k]
        return s ? parse(s, w) : undefined
      }),
  }
}

/** A lost upload or connection is the host's state, not this item's: the runner marks the host. */
export function rethrowHostLoss(error: unknown): void {
  if (error instanceof UnreachableError || error instanceof TaskError) throw error
}

/**
 * Modules whose items run one after another, each with its own scripts (redis_source,
 * redis_build, firewall: an item is a whole tree or a whole chain, and rarely looped).
 */
export function defineItemModule(def: Omit<PlayModuleDef, 'prefix'>): ModuleSpec {
  return {
    name: def.name,
    description: def.description,
    args: def.args,
    checkMode: true,
    async run(ctx, items) {
      const results: ItemResult[] = []
      for (const item of items) results.push(await def.runItem(ctx, item.args))
      return results
    },
  }
}

/** What a module that runs once for the play (redis_cluster, redis_config, …) supplies. */
export interface PlayModuleDef {
  name: string
  description: string
  args: Record<string, ArgSpec>
  /** Its failures read "<prefix>what went wrong". */
  prefix?: string
  runItem(ctx: ModuleContext, args: Record<string, unknown>): Promise<ItemResult>
}

/**
 * Play-level modules: run on the first host's context, once per item. A thrown error is
 * this task's failure with its hint, masked, the error kept as data — never the runner's crash.
 */
export function definePlayModule(def: PlayModuleDef): ModuleSpec {
  return {
    name: def.name,
    description: def.description,
    args: def.args,
    checkMode: true,
    runOnce: true,
    run: (ctx, items) => runEachItem(ctx, items, def.runItem, def.prefix),
  }
}

async function runEachItem(ctx: ModuleContext, items: readonly TaskItem[], runItem: PlayModuleDef['runItem'], prefix = ''): Promise<ItemResult[]> {
  const out: ItemResult[] = []
  for (const item of items) {
    try {
      out.push(await runItem(ctx, item.args))
    } catch (error) {
      const e = error instanceof BaremetalError ? error : new ClusterError(error instanceof Error ? error.message : String(error), {cause: error})
      const hint = e.hint ? ` (hint: ${hintText(e.hint)})` : ''
      out.push({status: 'failed', msg: mask(`${prefix}${e.message}${hint}`, ctx.secrets), data: {error: e.toJSON()}})
    }
  }
  return out
}
