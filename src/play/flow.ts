import {BaremetalError, TaskError} from '../errors.js'
import type {Host} from '../inventory/inventory.js'
import {evaluate, ExprError} from './expr.js'
import type {Block, MetaTask, PlayItem, Task} from './playbook.js'
import {type PlayState, type RunState, record, runOneTask, tagSelected} from './runner.js'
import {isTask, serialBatches} from './structure.js'
import {conditionError} from './template.js'

// The play's control flow over the linear strategy: sections in Ansible's order with
// handlers flushed after each, blocks with rescue/always decided per host, include gates,
// meta actions, and serial batches. A task itself is runOneTask's (runner.ts).

/** What the flow keeps per play batch, beside the runner's PlayState. */
export interface FlowState {
  /** Handler names / listen topics notified per host, not yet run. */
  notified: Map<string, Set<string>>
  /** Hosts that ended the play (meta: end_host / end_play): not failed, just done. */
  ended: Set<string>
  /** Hosts whose failure in a block waits for its rescue (not failed yet). */
  pendingRescue: Set<string>
  /** How many enclosing blocks with a rescue are in their block: section. */
  rescueDepth: number
  /** Inside an include gate, a rescue or an always: the hosts it applies to. */
  only?: Set<string>
}

export const newFlow = (): FlowState => ({notified: new Map(), ended: new Set(), pendingRescue: new Set(), rescueDepth: 0})

/** The hosts a task of the play runs on now. */
export function activeHosts(run: RunState, p: PlayState): Host[] {
  return p.hosts.filter((h) => !run.unreachable.has(h.name) && !p.failed.has(h.name) && !p.ended.has(h.name) && !p.pendingRescue.has(h.name) && (!p.only || p.only.has(h.name)))
}

/** The play's batches (serial), each a PlayState of its own over the same variables and facts. */
export function playBatches(p: PlayState): PlayState[] {
  endedPlays.delete(p.play)
  const batches = serialBatches(p.hosts, p.play.serial)
  if (batches.length === 1) return [p]
  return batches.map((hosts) => {
    const names = hosts.map((h) => h.name)
    for (const n of names) Object.assign(p.hostVars.get(n)!, {ansible_play_batch: names})
    return {...p, hosts, failed: new Set<string>(), ...newFlow()}
  })
}

/** pre_tasks, (flush), roles + tasks, (flush), post_tasks, (flush). */
export async function runSections(run: RunState, p: PlayState): Promise<void> {
  const s = p.play.sections ?? {pre: [], main: p.play.tasks, post: []}
  for (const items of [s.pre, s.main, s.post]) {
    await runItems(run, p, items)
    if (run.aborted) {
      if (p.play.forceHandlers) await flushHandlers(run, p)
      return
    }
    await flushHandlers(run, p)
    if (run.aborted) return
  }
}

async function runItems(run: RunState, p: PlayState, items: PlayItem[]): Promise<void> {
  for (const item of items) {
    if (run.aborted) return
    if (isTask(item)) {
      const records = await runOneTask(run, p, item, activeHosts(run, p))
      if (records) noteNotify(p, item, records)
    } else if (item.kind === 'meta') await runMeta(run, p, item)
    else await runBlock(run, p, item)
  }
}

function noteNotify(p: PlayState, task: Task, records: Array<{host: string; status: string}>): void {
  if (task.notify.length === 0) return
  for (const r of records) {
    if (r.status !== 'changed') continue
    const set = p.notified.get(r.host) ?? new Set<string>()
    for (const n of task.notify) set.add(n)
    p.notified.set(r.host, set)
  }
}

/** Run every notified handler, in definition order, on the hosts that notified it; once each. */
export async function flushHandlers(run: RunState, p: PlayState): Promise<void> {
  for (let pass = 0; pass < 10 && [...p.notified.values()].some((s) => s.size > 0); pass++) {
    for (const h of p.play.handlers) {
      if (run.aborted && !p.play.forceHandlers) return
      const topics = [h.name, ...h.listen]
      const hit = p.hosts.filter((x) => topics.some((t) => p.notified.get(x.name)?.has(t)))
      for (const x of hit) for (const t of topics) p.notified.get(x.name)!.delete(t)
      // A failed host runs no handlers, unless force_handlers.
      const targets = hit.filter((x) => !run.unreachable.has(x.name) && !p.ended.has(x.name) && (p.play.forceHandlers || !p.failed.has(x.name)))
      if (targets.length === 0) continue
      const forced = targets.filter((x) => p.failed.has(x.name))
      for (const x of forced) p.failed.delete(x.name)
      const records = await withOnly(p, targets, () => runOneTask(run, p, h, activeHosts(run, p), {handler: true}))
      for (const x of forced) p.failed.add(x.name)
      if (records) noteNotify(p, h, records)
    }
  }
}

async function withOnly<T>(p: PlayState, hosts: Host[], f: () => Promise<T>): Promise<T> {
  const saved = p.only
  p.only = new Set(hosts.map((h) => h.name).filter((n) => !saved || saved.has(n)))
  try {
    return await f()
  } finally {
    p.only = saved
  }
}

async function runMeta(run: RunState, p: PlayState, m: MetaTask): Promise<void> {
  if (!tagSelected(m as unknown as Task, run.opts.tags, run.opts.skipTags)) return
  if (m.action === 'noop') return
  if (m.action === 'flush_handlers') return flushHandlers(run, p)
  const hosts = gateHosts(run, p, m.when, m)
  if (m.action === 'end_host') for (const h of hosts) p.ended.add(h.name)
  else if (hosts.length > 0) {
    for (const h of p.hosts) p.ended.add(h.name)
    endedPlays.add(p.play)
  }
}

// end_play ends the play for every host, the batches serial has not started included.
const endedPlays = new WeakSet<object>()
export const playEnded = (p: PlayState): boolean => endedPlays.has(p.play)

/** The active hosts for which every condition holds (evaluated once each); a bad condition fails that host. */
function gateHosts(run: RunState, p: PlayState, when: Array<string | boolean>, label: {name: string; where: Task['where']}): Host[] {
  const out: Host[] = []
  for (const h of activeHosts(run, p)) {
    const vars = {...p.hostVars.get(h.name)!, ...(run.registered.get(h.name) ?? {})}
    let current: string | boolean = ''
    try {
      if (when.every((w) => evaluate((current = w), vars))) out.push(h)
    } catch (error) {
      const e = error instanceof ExprError ? conditionError(error, String(current), label.where) : error instanceof BaremetalError ? error : new TaskError(String(error), {where: label.where})
      failHost(run, p, h, label, (e as Error).message)
    }
  }
  return out
}

function failHost(run: RunState, p: PlayState, h: Host, label: {name: string; where: Task['where']}, msg: string): void {
  const rec = record(p.play, {name: label.name, module: 'include_tasks', where: label.where}, h.name, 'failed', msg, 0, Date.now())
  p.failed.add(h.name)
  run.recap[h.name].failed++
  run.records.push(rec)
  run.opts.reporter.hostResult(rec)
}

// block / rescue / always, as Ansible: hosts that fail in block: run rescue (and count as
// rescued, not failed, if it succeeds); every host that entered the block runs always.
async function runBlock(run: RunState, p: PlayState, b: Block): Promise<void> {
  let entered = activeHosts(run, p)
  if (b.gate) {
    if (!tagSelected({tags: b.gate.tags} as Task, run.opts.tags, run.opts.skipTags)) return
    entered = gateHosts(run, p, b.gate.when, b)
  }
  if (entered.length === 0) return
  await withOnly(p, entered, async () => {
    const rescuable = b.rescue.length > 0
    const pendingBefore = new Set(p.pendingRescue)
    if (rescuable) p.rescueDepth++
    try {
      await runItems(run, p, b.block)
    } finally {
      if (rescuable) p.rescueDepth--
    }
    const failedHere = entered.filter((h) => (rescuable ? p.pendingRescue.has(h.name) && !pendingBefore.has(h.name) : p.failed.has(h.name)))
    if (rescuable && failedHere.length > 0) {
      for (const h of failedHere) {
        p.pendingRescue.delete(h.name)
        noteFailure(run, h.name)
      }
      await withOnly(p, failedHere, () => runItems(run, p, b.rescue))
    }
    if (b.always.length > 0) await runAlways(run, p, b, entered)
  })
}

// ansible_failed_task / ansible_failed_result in rescue: the task that failed on this host.
function noteFailure(run: RunState, host: string): void {
  const rec = [...run.records].reverse().find((r) => r.host === host && r.status === 'failed')
  if (!rec) return
  const reg = run.registered.get(host) ?? {}
  reg.ansible_failed_task = {name: rec.task, action: rec.module}
  reg.ansible_failed_result = {...(rec.data ?? {}), msg: rec.msg, failed: true, changed: false}
  run.registered.set(host, reg)
}

// always runs on the hosts that failed in the block too (also those an outer rescue waits
// for); afterwards they are as failed as before.
async function runAlways(run: RunState, p: PlayState, b: Block, entered: Host[]): Promise<void> {
  const failed = entered.filter((h) => p.failed.has(h.name) && !run.unreachable.has(h.name))
  const pending = entered.filter((h) => p.pendingRescue.has(h.name))
  for (const h of failed) p.failed.delete(h.name)
  for (const h of pending) p.pendingRescue.delete(h.name)
  try {
    await withOnly(p, entered, () => runItems(run, p, b.always))
  } finally {
    for (const h of failed) p.failed.add(h.name)
    for (const h of pending) if (!p.failed.has(h.name)) p.pendingRescue.add(h.name)
  }
}
