import pLimit from 'p-limit'
import {BaremetalError, EXIT, TaskError, UnreachableError, type ErrorWhere} from '../errors.js'
import {type Host, type Inventory, selectHosts} from '../inventory/inventory.js'
import type {HostFacts, ItemResult, ModuleContext, PlayHost, TaskItem} from '../modules/types.js'
import {mask} from '../shell.js'
import {LocalTransport} from '../transport/local.js'
import {BecomeTransport} from '../transport/become.js'
import {SshTransport, type SshOptions} from '../transport/ssh.js'
import type {Transport, TransportStats} from '../transport/types.js'
import {evaluate} from './expr.js'
import {coerceValue, expandSequence, type Play, type Playbook, type Task} from './playbook.js'
import {renderDeep, renderString, renderText} from './template.js'
import {isSecretName, magicVars, resolveVars} from './vars.js'
import {hostIp} from '../redis/inventory-nodes.js'

// The linear strategy, as Ansible's default: every host finishes task N before any
// starts task N+1, hosts run in parallel up to --forks, and a task's loop items go to
// the module all at once so it can batch them into a few round trips.

export type HostStatus = 'ok' | 'changed' | 'failed' | 'skipped' | 'unreachable'

export interface TaskRecord {
  play: string
  task: string
  module: string
  host: string
  status: HostStatus
  ignored?: boolean
  msg: string
  items: number
  diff?: Array<{path: string; before: string; after: string}>
  data?: Record<string, unknown>
  durationMs: number
  /** SSH exec/upload round trips this task cost on this host (the unit of cost). */
  roundTrips?: number
  /** What the recap must repeat (a step done under --allow-data-loss). */
  warnings?: string[]
  where: ErrorWhere
}

export interface HostRecap {
  ok: number
  changed: number
  failed: number
  skipped: number
  unreachable: number
  ignored: number
}

export interface RunResult {
  recap: Record<string, HostRecap>
  tasks: TaskRecord[]
  warnings: string[]
  durationMs: number
  check: boolean
  aborted?: string
  stats: Record<string, TransportStats>
  exitCode: number
}

export interface Reporter {
  playStart(play: Play, hosts: string[]): void
  taskStart(task: Task, hostCount: number): void
  hostResult(rec: TaskRecord): void
  taskEnd(task: Task, records: TaskRecord[]): void
  log(host: string, msg: string): void
  warn(msg: string): void
}

export interface RunOptions {
  inventory: Inventory
  playbook: Playbook
  extraVars?: Record<string, unknown>
  limit?: string
  check?: boolean
  diff?: boolean
  forks?: number
  tags?: string[]
  skipTags?: string[]
  ssh?: SshOptions
  reporter: Reporter
  signal?: AbortSignal
  /** Reuse connections across several playbooks of one command (up = several plays). */
  transports?: Map<string, {transport: Transport; facts?: HostFacts}>
}

const emptyRecap = (): HostRecap => ({ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0, ignored: 0})

/** Connect a transport for an inventory host: local or SSH. */
export function transportFor(host: Host, ssh: SshOptions = {}): Transport {
  return host.connection.kind === 'local' ? new LocalTransport(host.name, host.connection.address) : new SshTransport(host.name, host.connection, ssh)
}

const FACTS_SCRIPT = `printf '%s\\n' "$HOME" "$(id -un)" "$(uname -s)" "$(uname -m)" "$(nproc 2>/dev/null || echo 1)" "$(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo 2>/dev/null)" "$( . /etc/os-release 2>/dev/null; echo "$PRETTY_NAME")" "\${SSH_CLIENT%% *}"`

/** One round trip per host: what modules need (home for ~, cores for make -j). */
export async function gatherFacts(t: Transport): Promise<HostFacts> {
  await t.connect()
  const r = await t.exec(FACTS_SCRIPT, {timeoutMs: 30000})
  if (r.failed) throw new UnreachableError(`cannot read host facts (exit ${r.exitCode}): ${r.stderr.trim().slice(-300)}`, {where: {host: t.host}})
  const [home, user, kernel, arch, cores, mem, pretty, client] = r.stdout.split('\n')
  return {home: home || '/root', user, os: pretty || kernel, arch, cores: Math.max(1, Number(cores) || 1), memMb: Number(mem) || 0, controllerIp: client || '127.0.0.1'}
}

/** Run every play of a playbook; never throws for host failures, only for bad input. */
export async function runPlaybook(opts: RunOptions): Promise<RunResult> {
  const started = Date.now()
  const {inventory, playbook, reporter} = opts
  const extra = opts.extraVars ?? {}
  const forks = opts.forks ?? 100
  const transports = opts.transports ?? new Map<string, {transport: Transport; facts?: HostFacts}>()
  const ownTransports = !opts.transports
  const signal = opts.signal ?? new AbortController().signal
  const recap: Record<string, HostRecap> = {}
  const records: TaskRecord[] = []
  const warnings: string[] = []
  const unreachable = new Set<string>()
  const registered = new Map<string, Record<string, unknown>>()
  const secrets = new Set<string>()
  let aborted: string | undefined

  const limited = opts.limit ? new Set(selectHosts(inventory, opts.limit).map((h) => h.name)) : undefined

  try {
    for (const play of playbook.plays) {
      if (signal.aborted) break
      const hosts = selectHosts(inventory, play.hosts, play.where).filter((h) => !limited || limited.has(h.name))
      for (const h of hosts) recap[h.name] ??= emptyRecap()
      reporter.playStart(play, hosts.map((h) => h.name))
      if (hosts.length === 0) {
        warnings.push(`play "${play.name}": no hosts matched "${play.hosts}"${opts.limit ? ` with --limit ${opts.limit}` : ''}`)
        continue
      }

      // Variables per host, resolved once per play (templated values rendered in order), also
      // for the hosts --limit leaves out: a cluster step must see the whole cluster.
      const hostVars = new Map<string, Record<string, unknown>>()
      const group = selectHosts(inventory, play.hosts, play.where)
      const ips = await resolveAddresses(group)
      for (const h of group) {
        // play_hosts_ips feeds the firewall: the fleet, not the hosts --limit picked (a limited
        // run must never close the bus ports to the rest of its cluster).
        const magic = {...magicVars(h, inventory, hosts), ansible_host_ip: ips.get(h.name), play_hosts_ips: group.map((x) => ips.get(x.name))}
        const vars = resolveVars([play.defaults, h.vars, magic, play.vars], extra)
        hostVars.set(h.name, vars)
        for (const [k, v] of Object.entries(vars)) {
          if ((isSecretName(k) || play.secretVars.includes(k)) && typeof v === 'string' && v) secrets.add(v)
        }
      }

      // Connect and gather facts for all hosts in parallel.
      const limit = pLimit(forks)
      const facts = new Map<string, HostFacts>()
      await Promise.all(
        hosts.map((h) =>
          limit(async () => {
            if (unreachable.has(h.name)) return
            let entry = transports.get(h.name)
            if (!entry) {
              entry = {transport: transportFor(h, opts.ssh)}
              transports.set(h.name, entry)
            }
            try {
              entry.facts ??= await gatherFacts(entry.transport)
              facts.set(h.name, entry.facts)
            } catch (error) {
              unreachable.add(h.name)
              const rec = record(play, {name: 'connect', module: {name: 'ssh'}, where: play.where} as unknown as Task, h.name, 'unreachable', describe(error), 0, Date.now())
              recap[h.name].unreachable++
              records.push(rec)
              reporter.hostResult(rec)
            }
          }),
        ),
      )

      for (const h of hosts) {
        const f = facts.get(h.name)
        if (f) Object.assign(hostVars.get(h.name)!, {ansible_user_dir: f.home, ansible_processor_vcpus: f.cores, baremetal_controller_ip: f.controllerIp})
      }
      const failedInPlay = new Set<string>()
      for (const task of play.tasks) {
        if (signal.aborted) {
          aborted ??= 'interrupted'
          break
        }
        if (!tagSelected(task, opts.tags, opts.skipTags)) continue
        const active = hosts.filter((h) => !unreachable.has(h.name) && !failedInPlay.has(h.name))
        if (active.length === 0) break
        reporter.taskStart(displayTask(task, hostVars.get(active[0].name)!), active.length)
        const taskRecords: TaskRecord[] = []
        const playHosts: PlayHost[] = active.map((h) => ({
          host: h.name,
          address: h.connection.address,
          vars: hostVars.get(h.name)!,
          facts: facts.get(h.name)!,
          transport: transports.get(h.name)!.transport,
        }))
        const groupHosts = group.map((h) => ({host: h.name, address: h.connection.address, vars: hostVars.get(h.name)!}))
        const targets = task.runOnce ? active.slice(0, 1) : active
        await Promise.all(
          targets.map((h) =>
            limit(async () => {
              if (signal.aborted) return
              const t0 = Date.now()
              const vars = {...hostVars.get(h.name)!, ...(registered.get(h.name) ?? {})}
              const st = transports.get(h.name)!.transport.stats
              const trips0 = st.execs + st.uploads
              let rec: TaskRecord
              try {
                const base = transports.get(h.name)!.transport
                const become = (task.become ?? play.become) && facts.get(h.name)!.user !== 'root'
                const ctx: ModuleContext = {
                  host: h.name,
                  address: h.connection.address,
                  transport: become ? new BecomeTransport(base) : base,
                  facts: facts.get(h.name)!,
                  check: opts.check ?? false,
                  diff: opts.diff ?? false,
                  vars,
                  playbookDir: playbook.dir,
                  secrets,
                  log: (m) => reporter.log(h.name, mask(m, secrets)),
                  signal,
                  playHosts,
                  groupHosts,
                  failedHosts: hosts.filter((x) => failedInPlay.has(x.name) || unreachable.has(x.name)).map((x) => x.name),
                }
                rec = await runTask(play, task, h.name, ctx, registered, secrets, t0)
              } catch (error) {
                if (error instanceof UnreachableError) {
                  unreachable.add(h.name)
                  rec = record(play, task, h.name, 'unreachable', mask(describe(error), secrets), 0, t0)
                } else if (error instanceof BaremetalError && error.exitCode === EXIT.usage) {
                  throw error
                } else {
                  rec = record(play, task, h.name, 'failed', mask(describe(error), secrets), 0, t0)
                }
              }
              rec.roundTrips = st.execs + st.uploads - trips0
              // The recap and JSON name the task as its header did: rendered for this host.
              rec.task = displayTask(task, hostVars.get(h.name)!).name
              if (rec.status === 'failed' && !task.ignoreErrors) failedInPlay.add(h.name)
              if (rec.status === 'failed' && task.ignoreErrors) rec.ignored = true
              const r = recap[h.name]
              if (rec.status === 'unreachable') r.unreachable++
              else if (rec.ignored) r.ignored++
              else r[rec.status]++
              for (const w of rec.warnings ?? []) warnings.push(w)
              taskRecords.push(rec)
              records.push(rec)
              reporter.hostResult(rec)
            }),
          ),
        )
        // Like Ansible's run_once: what the one run registered, every host of the play sees.
        if (task.runOnce && task.register && targets.length > 0) {
          const value = registered.get(targets[0].name)?.[task.register]
          if (value !== undefined) for (const h of active) registered.set(h.name, {...(registered.get(h.name) ?? {}), [task.register]: value})
        }
        reporter.taskEnd(task, taskRecords)
        // A task that runs once acts for the whole play (the cluster): its failure stops every
        // host, as Ansible applies a run_once result to all of them. Nothing is started over
        // a refusal to start it safely.
        if (task.runOnce && taskRecords.some((r) => r.status === 'failed' && !r.ignored)) {
          const stopped = active.filter((h) => !failedInPlay.has(h.name))
          for (const h of stopped) failedInPlay.add(h.name)
          if (stopped.length > 0) warnings.push(`task "${displayTask(task, hostVars.get(active[0].name)!).name}" runs once for the play and failed: the play stopped for ${stopped.map((h) => h.name).join(', ')} too`)
        }
        const failedNow = hosts.filter((h) => failedInPlay.has(h.name) || unreachable.has(h.name)).length
        if (play.anyErrorsFatal && taskRecords.some((r) => r.status === 'failed' && !r.ignored)) {
          aborted = `any_errors_fatal: task "${task.name}" failed`
          break
        }
        if (play.maxFailPercentage !== undefined && (failedNow / hosts.length) * 100 > play.maxFailPercentage) {
          aborted = `max_fail_percentage ${play.maxFailPercentage}% exceeded: ${failedNow} of ${hosts.length} hosts failed (task "${task.name}")`
          break
        }
      }
      if (aborted) {
        warnings.push(`play "${play.name}" stopped for all hosts: ${aborted}`)
        break
      }
    }
  } finally {
    if (ownTransports) await closeAll(transports)
  }
  if (signal.aborted) aborted ??= 'interrupted'
  const stats: Record<string, TransportStats> = {}
  for (const [h, e] of transports) stats[h] = {...e.transport.stats}
  const anyFailed = Object.values(recap).some((r) => r.failed > 0)
  const anyUnreachable = Object.values(recap).some((r) => r.unreachable > 0)
  const exitCode = signal.aborted ? EXIT.interrupted : anyUnreachable ? EXIT.unreachable : anyFailed || aborted ? EXIT.failed : EXIT.ok
  return {recap, tasks: records, warnings, durationMs: Date.now() - started, check: opts.check ?? false, aborted, stats, exitCode}
}

/** Numeric IPs for every host: Redis 5.0.3 binds and MEETs by IP only, never by name. */
async function resolveAddresses(hosts: Host[]): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  await Promise.all(
    hosts.map(async (h) => {
      out.set(h.name, await hostIp(h.connection.address))
    }),
  )
  return out
}

/** Close every connection of a run (also on error). */
export async function closeAll(transports: Map<string, {transport: Transport}>): Promise<void> {
  await Promise.all([...transports.values()].map((e) => e.transport.close().catch(() => {})))
}

// Task names may use variables ("Redis {{ redis_version }} source"): show them rendered.
function displayTask(task: Task, vars: Record<string, unknown>): Task {
  if (!task.name.includes('{{')) return task
  try {
    return {...task, name: renderText(task.name, vars)}
  } catch {
    return task
  }
}

function tagSelected(task: Task, tags?: string[], skip?: string[]): boolean {
  if (task.tags.includes('always')) return !(skip ?? []).includes('always')
  if (skip?.some((t) => task.tags.includes(t))) return false
  if (!tags || tags.length === 0 || tags.includes('all')) return !task.tags.includes('never')
  return tags.some((t) => task.tags.includes(t))
}

function describe(error: unknown): string {
  if (error instanceof BaremetalError) return error.hint ? `${error.message} (hint: ${error.hint})` : error.message
  return error instanceof Error ? error.message : String(error)
}

function record(play: Play, task: Task, host: string, status: HostStatus, msg: string, items: number, t0: number, extra: Partial<TaskRecord> = {}): TaskRecord {
  return {play: play.name, task: task.name, module: task.module.name, host, status, msg, items, durationMs: Date.now() - t0, where: task.where, ...extra}
}

async function runTask(
  play: Play,
  task: Task,
  host: string,
  ctx: ModuleContext,
  registered: Map<string, Record<string, unknown>>,
  secrets: Set<string>,
  t0: number,
): Promise<TaskRecord> {
  const where = task.where
  // Task vars see every other variable; values coming from -e are never re-rendered.
  const taskVars: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(task.vars)) taskVars[k] = renderDeep(v, {...ctx.vars, ...taskVars}, where)
  const baseVars = {...ctx.vars, ...taskVars}
  ctx.vars = baseVars
  // Loop items: a list, a "{{ var }}" that is a list, or with_sequence.
  let loopItems: unknown[] | undefined
  if (task.loop) {
    const v = task.loop.value
    if (task.loop.kind === 'with_sequence') {
      try {
        loopItems = expandSequence(renderText(String(v), baseVars, where))
      } catch (error) {
        if (error instanceof BaremetalError) throw error
        throw new TaskError((error as Error).message, {where, hint: 'with_sequence: start=1 end=10 format=%d, or count=N'})
      }
    } else {
      const rendered = typeof v === 'string' ? renderString(v, baseVars, where) : renderDeep(v, baseVars, where)
      if (!Array.isArray(rendered)) throw new TaskError(`${task.loop.kind} must be a list, got ${typeof rendered}`, {where, hint: 'give a YAML list, or a variable holding one'})
      loopItems = task.loop.kind === 'with_items' ? rendered.flat() : rendered
    }
  }
  const units = loopItems ?? [undefined]
  const items: TaskItem[] = []
  const itemIndex: number[] = []
  const results: ItemResult[] = units.map(() => ({status: 'skipped', msg: 'condition false'}))
  for (let i = 0; i < units.length; i++) {
    const vars = loopItems ? {...baseVars, [task.loopVar]: units[i]} : baseVars
    if (!whenTrue(task, vars)) continue
    const args = renderDeep(task.args, vars, where) as Record<string, unknown>
    items.push({args: coerceArgs(task, args), item: units[i]})
    itemIndex.push(i)
  }
  for (const it of items) {
    for (const [name, spec] of Object.entries(task.module.args)) {
      if (spec.secret && typeof it.args[name] === 'string' && it.args[name]) secrets.add(it.args[name] as string)
    }
  }
  if (items.length > 0) {
    if (ctx.check && !task.module.checkMode) {
      for (const i of itemIndex) results[i] = {status: 'skipped', msg: 'not run in check mode (this module cannot predict its effect)'}
    } else {
      const out = await task.module.run(ctx, items)
      out.forEach((r, k) => (results[itemIndex[k]] = r))
    }
  }
  // changed_when / failed_when see the item's result as `result` and under the register name.
  for (let k = 0; k < itemIndex.length; k++) {
    const i = itemIndex[k]
    const r = results[i]
    if (task.changedWhen === undefined && task.failedWhen === undefined) continue
    if (r.status === 'skipped') continue
    const res = resultVar(r)
    const vars = {...baseVars, ...(loopItems ? {[task.loopVar]: units[i]} : {}), ...res, result: res, ...(task.register ? {[task.register]: res} : {})}
    try {
      if (task.failedWhen !== undefined) {
        const failed = evaluate(task.failedWhen, vars)
        if (failed && r.status !== 'failed') results[i] = {...r, status: 'failed', msg: `failed_when matched: ${String(task.failedWhen)}`}
        else if (!failed && r.status === 'failed') results[i] = {...r, status: 'changed', msg: r.msg}
      }
      if (task.changedWhen !== undefined && results[i].status !== 'failed') {
        results[i] = {...results[i], status: evaluate(task.changedWhen, vars) ? 'changed' : 'ok'}
      }
    } catch (error) {
      throw new TaskError(`cannot evaluate condition: ${(error as Error).message}`, {where, hint: 'conditions support names, literals, ==, !=, <, >, in, not, and, or, is defined, | length, | bool, | int'})
    }
  }
  // register: what Ansible users read (rc, stdout, stdout_lines, changed, failed, results).
  if (task.register) {
    const res = loopItems ? {results: results.map((r, i) => ({...resultVar(r), item: units[i]})), changed: results.some((r) => r.status === 'changed'), failed: results.some((r) => r.status === 'failed')} : resultVar(results[0])
    const reg = registered.get(host) ?? {}
    reg[task.register] = res
    registered.set(host, reg)
  }
  const status: HostStatus = results.some((r) => r.status === 'failed') ? 'failed' : results.some((r) => r.status === 'changed') ? 'changed' : results.every((r) => r.status === 'skipped') ? 'skipped' : 'ok'
  let msg = summarize(results, status)
  if (task.noLog) msg = `${status} (output hidden by no_log)`
  msg = mask(msg, secrets)
  const diffs = task.noLog ? undefined : results.flatMap((r) => r.diff ?? []).map((d) => ({path: d.path, before: mask(d.before, secrets), after: mask(d.after, secrets)}))
  const data = task.noLog ? undefined : maskDeep(results.length === 1 ? results[0].data : mergeData(results), secrets)
  const warnings = results.flatMap((r) => r.warnings ?? []).map((w) => mask(w, secrets))
  return record(play, task, host, status, msg, loopItems ? loopItems.length : 1, t0, {diff: diffs && diffs.length ? diffs : undefined, data, ...(warnings.length ? {warnings} : {})})
}

function mergeData(results: ItemResult[]): Record<string, unknown> | undefined {
  const withData = results.filter((r) => r.data)
  if (withData.length === 0) return undefined
  return {items: results.map((r) => r.data ?? null)}
}

function maskDeep<T>(v: T, secrets: Set<string>): T {
  if (v === undefined || secrets.size === 0) return v
  return JSON.parse(mask(JSON.stringify(v), [...secrets].map((s) => JSON.stringify(s).slice(1, -1))))
}

function whenTrue(task: Task, vars: Record<string, unknown>): boolean {
  try {
    return task.when.every((w) => evaluate(w, vars))
  } catch (error) {
    throw new TaskError(`cannot evaluate "when": ${(error as Error).message}`, {
      where: task.where,
      hint: 'conditions support names, literals, ==, !=, <, >, in, not, and, or, is defined, | length, | bool, | int, | default(x)',
    })
  }
}

function coerceArgs(task: Task, args: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, spec] of Object.entries(task.module.args)) {
    let v = args[name]
    if (v === undefined || v === null || v === '') v = v === '' && spec.type === 'string' ? '' : spec.default
    if (v === undefined) {
      if (spec.required) throw new TaskError(`module ${task.module.name}: argument "${name}" is empty after templating`, {where: task.where, hint: `give "${name}" a value`})
      continue
    }
    try {
      out[name] = coerceValue(spec, v)
    } catch (error) {
      throw new TaskError(`module ${task.module.name}: argument "${name}": ${(error as Error).message}`, {where: task.where})
    }
    if (spec.choices && !spec.choices.includes(String(out[name]))) {
      throw new TaskError(`module ${task.module.name}: argument "${name}" is "${String(out[name])}"`, {where: task.where, hint: `use one of: ${spec.choices.join(', ')}`})
    }
  }
  return out
}

function resultVar(r: ItemResult): Record<string, unknown> {
  // Like Ansible, registered stdout/stderr lose their final newline: `x.stdout == "yes"` works.
  const stdout = (r.stdout ?? (r.data?.stdout as string | undefined) ?? '').replace(/\n$/, '')
  const stderr = (r.stderr ?? (r.data?.stderr as string | undefined) ?? '').replace(/\n$/, '')
  return {
    ...(r.data ?? {}),
    changed: r.status === 'changed',
    failed: r.status === 'failed',
    skipped: r.status === 'skipped',
    msg: r.msg ?? '',
    rc: r.rc ?? (r.data?.rc as number | undefined) ?? 0,
    stdout,
    stderr,
    stdout_lines: stdout.split('\n').filter((l, i, a) => !(i === a.length - 1 && l === '')),
  }
}

function summarize(results: ItemResult[], status: HostStatus): string {
  if (results.length === 1) return results[0].msg ?? status
  const count = (s: string) => results.filter((r) => r.status === s).length
  const parts = ['changed', 'ok', 'failed', 'skipped'].filter((s) => count(s) > 0).map((s) => `${count(s)} ${s}`)
  const firstFail = results.find((r) => r.status === 'failed')
  const firstChange = results.find((r) => r.status === 'changed')
  const detail = firstFail?.msg ?? (status === 'changed' ? firstChange?.msg : results[0].msg)
  return `${results.length} items: ${parts.join(', ')}${detail ? ` — ${firstFail ? 'first failure: ' : 'e.g. '}${detail}` : ''}`
}
