import pLimit from 'p-limit'
import {BaremetalError, EXIT, hintText, InputError, TaskError, UnreachableError, type ErrorWhere} from '../errors.js'
import {resolve as resolvePath} from 'node:path'
import {type Connection, type Host, type Inventory, selectHosts} from '../inventory/inventory.js'
import type {HostFacts, ItemResult, ModuleContext, PlayHost, TaskItem} from '../modules/types.js'
import {mask} from '../shell.js'
import {LocalTransport} from '../transport/local.js'
import {BecomeTransport} from '../transport/become.js'
import {TracingTransport} from '../transport/tracing.js'
import {SshTransport, type SshOptions} from '../transport/ssh.js'
import type {Transport, TransportStats} from '../transport/types.js'
import {evaluate, ExprError} from './expr.js'
import {coerceValue, expandSequence, type Play, type Playbook, type Task} from './playbook.js'
import {conditionError, renderDeep, renderString, renderText} from './template.js'
import {isSecretName, magicVars, resolveVars} from './vars.js'
import {factVars, FACTS_SCRIPT, parseFacts} from './facts.js'
import {hostIp} from '../redis/inventory-nodes.js'
import {closeDelegates, type DelegateTarget, delegateTarget, withEnvironment, withoutExtraVars} from './delegate.js'
import {type FlowState, newFlow, playBatches, playEnded, runSections} from './flow.js'

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
  /** Failed inside a block with a rescue: the rescue decides (counted as rescued, not failed). */
  rescued?: boolean
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
  /** Failures inside a block with a rescue: not counted as failed (Ansible's rescued=). */
  rescued: number
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
  ssh?: ConnectOptions
  reporter: Reporter
  signal?: AbortSignal
  /** Reuse connections across several playbooks of one command (up = several plays). */
  transports?: Map<string, {transport: Transport; facts?: HostFacts}>
  /** --start-at-task: skip the tasks before the first one of this name (or glob). */
  startAtTask?: string
  /** -v count: 3 and more show every command a module runs and its output. */
  verbosity?: number
}

const emptyRecap = (): HostRecap => ({ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0, ignored: 0, rescued: 0})

/** How to connect where the inventory does not say: -u and --private-key. */
export interface ConnectOptions extends SshOptions {
  remoteUser?: string
  privateKeyFile?: string
}

/** Connect a transport for an inventory host: local or SSH. */
export function transportFor(host: Host, ssh: ConnectOptions = {}): Transport {
  return host.connection.kind === 'local' ? new LocalTransport(host.name, host.connection.address) : new SshTransport(host.name, connectionOf(host, ssh), ssh)
}

// As in Ansible, the inventory's ansible_user / ansible_ssh_private_key_file beat -u and
// --private-key, which beat the defaults ($USER, the agent).
export function connectionOf(host: Host, o: ConnectOptions): Connection {
  const c = host.connection
  const v = host.vars
  const user = o.remoteUser !== undefined && v.ansible_user === undefined && v.ansible_ssh_user === undefined ? o.remoteUser : c.user
  const ownKey = v.ansible_ssh_private_key_file !== undefined || v.ansible_private_key_file !== undefined
  const privateKeyFile = o.privateKeyFile !== undefined && !ownKey ? resolvePath(o.privateKeyFile) : c.privateKeyFile
  return {...c, user, privateKeyFile}
}

/** One round trip per host: what modules need (home for ~, cores for make -j) and Ansible's common facts. */
export async function gatherFacts(t: Transport): Promise<HostFacts> {
  await t.connect()
  const r = await t.exec('sh -s', {stdin: FACTS_SCRIPT, timeoutMs: 30000})
  if (r.failed) throw new UnreachableError(`cannot read host facts (exit ${r.exitCode}): ${r.stderr.trim().slice(-300)}`, {where: {host: t.host}})
  return parseFacts(r.stdout)
}

/** Run every play of a playbook; never throws for host failures, only for bad input. */
export async function runPlaybook(opts: RunOptions): Promise<RunResult> {
  const run = newRun(opts)
  try {
    for (const play of opts.playbook.plays) {
      if (run.signal.aborted) break
      const p = await preparePlay(run, play)
      if (!p) continue
      await runBatches(run, p)
      if (run.aborted) {
        run.warnings.push(`play "${play.name}" stopped for all hosts: ${run.aborted}`)
        break
      }
    }
  } finally {
    await closeDelegates(run)
    if (!opts.transports) await closeAll(run.transports)
  }
  return tallyRecap(run)
}

// serial: the whole play batch by batch; a batch whose every host failed ends the play, as Ansible's.
async function runBatches(run: RunState, p: PlayState): Promise<void> {
  const batches = playBatches(p)
  for (const [i, b] of batches.entries()) {
    await connectHosts(run, b)
    await runSections(run, b)
    if (run.aborted || run.signal.aborted || playEnded(b)) return
    const failed = b.hosts.filter((h) => b.failed.has(h.name) || run.unreachable.has(h.name))
    if (batches.length > 1 && failed.length === b.hosts.length && i < batches.length - 1) {
      run.aborted = `serial: every host of batch ${i + 1} (${failed.map((h) => h.name).join(', ')}) failed`
      return
    }
  }
}

// What one runPlaybook call carries from play to play (Ansible's TaskQueueManager state).
export interface RunState {
  opts: RunOptions
  started: number
  forks: ReturnType<typeof pLimit>
  transports: Map<string, {transport: Transport; facts?: HostFacts}>
  signal: AbortSignal
  recap: Record<string, HostRecap>
  records: TaskRecord[]
  warnings: string[]
  unreachable: Set<string>
  registered: Map<string, Record<string, unknown>>
  secrets: Set<string>
  limited?: Set<string>
  /** --start-at-task: tasks before the first one of that name are passed over. */
  startAt?: string
  aborted?: string
  /** The first bad-input error a task raised (template, arguments); how it ends the run depends on what ran before. */
  usageError?: BaremetalError
  /** delegate_to targets that are not hosts of the play (localhost, other inventory hosts). */
  delegates: Map<string, Promise<{transport: Transport; facts: HostFacts}>>
}

// One play's hosts: the ones it works on, its whole group, their variables and facts.
export interface PlayState extends FlowState {
  play: Play
  hosts: Host[]
  group: Host[]
  hostVars: Map<string, Record<string, unknown>>
  facts: Map<string, HostFacts>
  failed: Set<string>
}

function newRun(opts: RunOptions): RunState {
  const limited = opts.limit ? new Set(selectHosts(opts.inventory, opts.limit).map((h) => h.name)) : undefined
  return {
    opts,
    started: Date.now(),
    forks: pLimit(opts.forks ?? 100),
    limited,
    startAt: opts.startAtTask,
    transports: opts.transports ?? new Map(),
    signal: opts.signal ?? new AbortController().signal,
    recap: {},
    records: [],
    warnings: [],
    unreachable: new Set(),
    registered: new Map(),
    secrets: new Set(),
    delegates: new Map(),
  }
}

/** Select the play's hosts and resolve their variables; undefined when it has none. */
async function preparePlay(run: RunState, play: Play): Promise<PlayState | undefined> {
  const {inventory, limit, reporter} = run.opts
  const group = selectHosts(inventory, play.hosts, play.where)
  const hosts = group.filter((h) => !run.limited || run.limited.has(h.name))
  for (const h of hosts) run.recap[h.name] ??= emptyRecap()
  reporter.playStart(
    play,
    hosts.map((h) => h.name),
  )
  if (hosts.length === 0) {
    run.warnings.push(`play "${play.name}": no hosts matched "${play.hosts}"${limit ? ` with --limit ${limit}` : ''}`)
    return undefined
  }
  // Variables per host, resolved once per play (templated values rendered in order), also
  // for the hosts --limit leaves out: a cluster step must see the whole cluster.
  const hostVars = new Map<string, Record<string, unknown>>()
  const ips = await resolveAddresses(group)
  for (const h of group) {
    // play_hosts_ips feeds the firewall: the fleet, not the hosts --limit picked (a limited
    // run must never close the bus ports to the rest of its cluster).
    const magic = {...magicVars(h, inventory, hosts), ansible_host_ip: ips.get(h.name), play_hosts_ips: group.map((x) => ips.get(x.name))}
    const vars = resolveVars([play.defaults, h.vars, magic, play.vars], run.opts.extraVars ?? {})
    hostVars.set(h.name, vars)
    for (const [k, v] of Object.entries(vars)) {
      if ((isSecretName(k) || play.secretVars.includes(k)) && typeof v === 'string' && v) run.secrets.add(v)
    }
  }
  // hostvars[h].x, as in Ansible: every host's variables (one shared map, not copies).
  const hostvars = Object.fromEntries(hostVars)
  for (const v of hostVars.values()) v.hostvars = hostvars
  return {play, hosts, group, hostVars, facts: new Map(), failed: new Set(), ...newFlow()}
}

/** Connect and gather facts on every host of the play in parallel; a host that cannot be reached is recorded once. */
async function connectHosts(run: RunState, p: PlayState): Promise<void> {
  await Promise.all(p.hosts.map((h) => run.forks(() => connectHost(run, p, h))))
  for (const h of p.hosts) {
    const f = p.facts.get(h.name)
    if (f) exposeFacts(p.hostVars.get(h.name)!, f, p.play.gatherFacts !== false)
  }
}

// Facts sit below play vars and -e, as in Ansible: a variable the user set wins. Without
// gather_facts only the few the bundled playbooks read are kept (Ansible would have none).
function exposeFacts(vars: Record<string, unknown>, f: HostFacts, gather: boolean): void {
  Object.assign(vars, {ansible_user_dir: f.home, ansible_processor_vcpus: f.cores, baremetal_controller_ip: f.controllerIp})
  if (!gather) return
  for (const [k, v] of Object.entries(factVars(f))) if (!(k in vars) || k === 'ansible_user_dir' || k === 'ansible_processor_vcpus') vars[k] = v
}

// Who each transport this runner opened logs in as (transports handed in by the CLI
// connected with -u and the inventory).
const connectedAs = new WeakMap<Transport, string>()

async function connectHost(run: RunState, p: PlayState, h: Host): Promise<void> {
  if (run.unreachable.has(h.name)) return
  let entry = run.transports.get(h.name)
  // A play's remote_user sits between the inventory's ansible_user and -u, as in Ansible.
  const ssh = p.play.remoteUser !== undefined ? {...run.opts.ssh, remoteUser: p.play.remoteUser} : run.opts.ssh
  const want = connectionOf(h, ssh ?? {}).user
  if (!entry) {
    entry = {transport: transportFor(h, ssh)}
    run.transports.set(h.name, entry)
    connectedAs.set(entry.transport, want)
  } else {
    // One connection per host per run: a play that needs another user cannot reuse it.
    const have = connectedAs.get(entry.transport) ?? connectionOf(h, run.opts.ssh ?? {}).user
    if (want !== have)
      throw new InputError(`play "${p.play.name}" connects to ${h.name} as ${want}, but this run is already connected there as ${have}`, {
        where: p.play.where,
        hint: 'use one remote_user for a host in all plays of a run, or set ansible_user in the inventory',
      })
  }
  try {
    entry.facts ??= await gatherFacts(entry.transport)
    p.facts.set(h.name, entry.facts)
  } catch (error) {
    run.unreachable.add(h.name)
    const rec = record(p.play, {name: 'connect', module: 'ssh', where: p.play.where}, h.name, 'unreachable', describe(error), 0, Date.now())
    run.recap[h.name].unreachable++
    run.records.push(rec)
    run.opts.reporter.hostResult(rec)
  }
}

/** One task of the linear strategy on the given hosts: every host finishes it before any starts the next. */
export async function runOneTask(run: RunState, p: PlayState, task: Task, active: Host[], o: {handler?: boolean} = {}): Promise<TaskRecord[] | undefined> {
  if (run.signal.aborted) {
    run.aborted ??= 'interrupted'
    return undefined
  }
  // Handlers are not tag-selected or passed over by --start-at-task: notified means they run.
  if (!o.handler && (!tagSelected(task, run.opts.tags, run.opts.skipTags) || !reachedStart(run, task))) return undefined
  if (active.length === 0) return undefined
  run.opts.reporter.taskStart(displayTask(task, p.hostVars.get(active[0].name)!), active.length)
  const targets = task.runOnce ? active.slice(0, 1) : active
  const taskRecords = await runTaskOnHosts(run, p, task, active, targets)
  shareRunOnce(run, task, active, targets)
  run.opts.reporter.taskEnd(task, taskRecords)
  endOnBadInput(run)
  run.aborted = afterTask(run, p, task, active, taskRecords)
  return taskRecords
}

// --start-at-task: Ansible matches the name exactly or as a glob; from there on every task runs.
function reachedStart(run: RunState, task: Task): boolean {
  if (run.startAt === undefined) return true
  if (!taskNameMatches(task.name, run.startAt)) return false
  run.startAt = undefined
  return true
}

/** A task name matches --start-at-task NAME as Ansible's fnmatch does (* ? [..]). */
export function taskNameMatches(name: string, pattern: string): boolean {
  if (name === pattern) return true
  const re = pattern
    .replace(/[.+^${}()|\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.')
  try {
    return new RegExp(`^${re}$`).test(name)
  } catch {
    return false
  }
}

/** One task on its target hosts, forks at a time; every host's record counted as it ends. */
async function runTaskOnHosts(run: RunState, p: PlayState, task: Task, active: Host[], targets: Host[]): Promise<TaskRecord[]> {
  const playHosts: PlayHost[] = active.map((h) => ({
    host: h.name,
    address: h.connection.address,
    vars: p.hostVars.get(h.name)!,
    facts: p.facts.get(h.name)!,
    transport: run.transports.get(h.name)!.transport,
  }))
  const groupHosts = p.group.map((h) => ({host: h.name, address: h.connection.address, vars: p.hostVars.get(h.name)!}))
  const taskRecords: TaskRecord[] = []
  await Promise.all(
    targets.map((h) =>
      run.forks(async () => {
        if (run.signal.aborted) return
        const rec = await runOnHost(run, p, task, h, {playHosts, groupHosts})
        countRecord(run, p, task, rec)
        taskRecords.push(rec)
      }),
    ),
  )
  return taskRecords
}

/** The task on one host: its record, whatever went wrong (only bad input is kept aside for the run to decide). */
async function runOnHost(run: RunState, p: PlayState, task: Task, h: Host, peers: Pick<ModuleContext, 'playHosts' | 'groupHosts'>): Promise<TaskRecord> {
  const t0 = Date.now()
  const st = run.transports.get(h.name)!.transport.stats
  const trips0 = st.execs + st.uploads
  let rec: TaskRecord
  try {
    const target = task.delegateTo === undefined ? undefined : await delegateTarget(run, p, task, h)
    rec = await runTask(p.play, withoutExtraVars(task, run.opts.extraVars), h.name, moduleContext(run, p, task, h, peers, target), run.registered, run.secrets, t0)
  } catch (error) {
    if (error instanceof UnreachableError) run.unreachable.add(h.name)
    if (error instanceof BaremetalError && error.exitCode === EXIT.usage) run.usageError ??= error
    rec = record(p.play, labelOf(task), h.name, error instanceof UnreachableError ? 'unreachable' : 'failed', mask(describe(error), run.secrets), 0, t0)
  }
  rec.roundTrips = st.execs + st.uploads - trips0
  // The recap and JSON name the task as its header did: rendered for this host.
  rec.task = displayTask(task, p.hostVars.get(h.name)!).name
  return rec
}

function moduleContext(run: RunState, p: PlayState, task: Task, h: Host, peers: Pick<ModuleContext, 'playHosts' | 'groupHosts'>, target?: DelegateTarget): ModuleContext {
  const {opts, secrets, signal} = run
  const base = target?.transport ?? run.transports.get(h.name)!.transport
  const facts = target?.facts ?? p.facts.get(h.name)!
  const becomeUser = task.becomeUser ?? 'root'
  // become_user without become does nothing, as in Ansible.
  const become = (task.become ?? p.play.become) && facts.user !== becomeUser
  const log = (m: string) => opts.reporter.log(h.name, mask(m, secrets))
  // -e beats everything, registered results and set_fact too (as in Ansible).
  const hostVars = {...p.hostVars.get(h.name)!, ...(run.registered.get(h.name) ?? {}), ...(opts.extraVars ?? {})}
  const transport = withEnvironment(run, task, hostVars, become ? new BecomeTransport(base, becomeUser, task.becomeMethod) : base)
  return {
    host: h.name,
    address: h.connection.address,
    facts,
    check: opts.check ?? false,
    diff: opts.diff ?? false,
    verbosity: opts.verbosity ?? 0,
    signal,
    secrets,
    log,
    ...peers,
    transport: (opts.verbosity ?? 0) >= 3 ? new TracingTransport(transport, (m) => log(m)) : transport,
    vars: hostVars,
    playbookDir: p.play.dir ?? opts.playbook.dir,
    ...(task.roleDir ? {roleDir: task.roleDir} : {}),
    ...(target ? {address: target.address} : {}),
    failedHosts: p.hosts.filter((x) => p.failed.has(x.name) || run.unreachable.has(x.name)).map((x) => x.name),
  }
}

function countRecord(run: RunState, p: PlayState, task: Task, rec: TaskRecord): void {
  if (rec.status === 'failed' && task.ignoreErrors) rec.ignored = true
  else if (rec.status === 'failed' && p.rescueDepth > 0) rec.rescued = true
  if (rec.status === 'failed' && !rec.ignored) (rec.rescued ? p.pendingRescue : p.failed).add(rec.host)
  const r = run.recap[rec.host]
  if (rec.status === 'unreachable') r.unreachable++
  else if (rec.ignored) r.ignored++
  else if (rec.rescued) r.rescued++
  else r[rec.status]++
  for (const w of rec.warnings ?? []) run.warnings.push(w)
  run.records.push(rec)
  run.opts.reporter.hostResult(rec)
}

// Like Ansible's run_once: what the one run registered, every host of the play sees.
function shareRunOnce(run: RunState, task: Task, active: Host[], targets: Host[]): void {
  if (!task.runOnce || !task.register || targets.length === 0) return
  const value = run.registered.get(targets[0].name)?.[task.register]
  if (value === undefined) return
  for (const h of active) run.registered.set(h.name, {...(run.registered.get(h.name) ?? {}), [task.register]: value})
}

// Bad input found by a task (an undefined variable in a template, an argument that is
// wrong after templating) means "nothing ran" (exit 5) only while no host has changed;
// after a change it is that host's task failure (exit 2), as the README's exit codes say.
function endOnBadInput(run: RunState): void {
  if (!run.usageError) return
  if (!run.records.some((r) => r.status === 'changed')) throw run.usageError
  run.usageError = undefined
}

/** What a finished task means for the play: run_once failures, any_errors_fatal, max_fail_percentage. */
function afterTask(run: RunState, p: PlayState, task: Task, active: Host[], taskRecords: TaskRecord[]): string | undefined {
  const failedHere = taskRecords.some((r) => r.status === 'failed' && !r.ignored && !r.rescued)
  // A task that runs once acts for the whole play (the cluster): its failure stops every
  // host, as Ansible applies a run_once result to all of them. Nothing is started over
  // a refusal to start it safely.
  if (task.runOnce && failedHere) {
    const stopped = active.filter((h) => !p.failed.has(h.name))
    for (const h of stopped) p.failed.add(h.name)
    if (stopped.length > 0)
      run.warnings.push(`task "${displayTask(task, p.hostVars.get(active[0].name)!).name}" runs once for the play and failed: the play stopped for ${stopped.map((h) => h.name).join(', ')} too`)
  }
  const failedNow = p.hosts.filter((h) => p.failed.has(h.name) || run.unreachable.has(h.name)).length
  if (p.play.anyErrorsFatal && failedHere) return `any_errors_fatal: task "${task.name}" failed`
  if (p.play.maxFailPercentage !== undefined && (failedNow / p.hosts.length) * 100 > p.play.maxFailPercentage) {
    return `max_fail_percentage ${p.play.maxFailPercentage}% exceeded: ${failedNow} of ${p.hosts.length} hosts failed (task "${task.name}")`
  }
  return undefined
}

/** The recap, every record, transport counters and the exit code of the whole run. */
function tallyRecap(run: RunState): RunResult {
  if (run.signal.aborted) run.aborted ??= 'interrupted'
  const stats: Record<string, TransportStats> = {}
  for (const [h, e] of run.transports) stats[h] = {...e.transport.stats}
  const recaps = Object.values(run.recap)
  const anyFailed = recaps.some((r) => r.failed > 0)
  const anyUnreachable = recaps.some((r) => r.unreachable > 0)
  const exitCode = run.signal.aborted ? EXIT.interrupted : anyUnreachable ? EXIT.unreachable : anyFailed || run.aborted ? EXIT.failed : EXIT.ok
  const {recap, records: tasks, warnings, aborted} = run
  return {recap, tasks, warnings, durationMs: Date.now() - run.started, check: run.opts.check ?? false, aborted, stats, exitCode}
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

export function tagSelected(task: Pick<Task, 'tags'>, tags?: string[], skip?: string[]): boolean {
  if (task.tags.includes('always')) return !(skip ?? []).includes('always')
  if (skip?.some((t) => task.tags.includes(t))) return false
  if (!tags || tags.length === 0 || tags.includes('all')) return !task.tags.includes('never')
  return tags.some((t) => task.tags.includes(t))
}

function describe(error: unknown): string {
  if (error instanceof BaremetalError) return error.hint ? `${error.message} (hint: ${hintText(error.hint)})` : error.message
  return error instanceof Error ? error.message : String(error)
}

/** What a record names: a task of the play, or a step of the runner's own (connect). */
interface RecordLabel {
  name: string
  module: string
  where: ErrorWhere
}

const labelOf = (task: Task): RecordLabel => ({name: task.name, module: task.module.name, where: task.where})

export function record(play: Play, label: RecordLabel, host: string, status: HostStatus, msg: string, items: number, t0: number, extra: Partial<TaskRecord> = {}): TaskRecord {
  return {play: play.name, task: label.name, module: label.module, host, status, msg, items, durationMs: Date.now() - t0, where: label.where, ...extra}
}

async function runTask(play: Play, task: Task, host: string, ctx: ModuleContext, registered: Map<string, Record<string, unknown>>, secrets: Set<string>, t0: number): Promise<TaskRecord> {
  const where = task.where
  // Task vars see every other variable; values coming from -e are never re-rendered.
  const taskVars: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(task.vars)) taskVars[k] = renderDeep(v, {...ctx.vars, ...taskVars}, where)
  const baseVars = {...ctx.vars, ...taskVars}
  ctx.vars = baseVars
  const loopItems = loopItemsOf(task, baseVars)
  const units = loopItems ?? [undefined]
  const items: TaskItem[] = []
  const itemIndex: number[] = []
  const results: ItemResult[] = units.map(() => ({status: 'skipped', msg: 'condition false'}))
  for (let i = 0; i < units.length; i++) {
    const vars = loopItems ? {...baseVars, [task.loopVar]: units[i]} : baseVars
    if (!whenTrue(task, vars)) continue
    const args = renderDeep(task.args, vars, where) as Record<string, unknown>
    items.push({args: coerceArgs(task, args), item: units[i], vars})
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
  for (const i of itemIndex) {
    const itemVars = loopItems ? {...baseVars, [task.loopVar]: units[i]} : baseVars
    results[i] = applyResultConditions(task, results[i], itemVars)
  }
  setFacts(registered, host, results)
  // register: what Ansible users read (rc, stdout, stdout_lines, changed, failed, results).
  if (task.register) {
    const res = loopItems
      ? {results: results.map((r, i) => ({...resultVar(r), item: units[i]})), changed: results.some((r) => r.status === 'changed'), failed: results.some((r) => r.status === 'failed')}
      : resultVar(results[0])
    const reg = registered.get(host) ?? {}
    reg[task.register] = res
    registered.set(host, reg)
  }
  const status: HostStatus = results.some((r) => r.status === 'failed')
    ? 'failed'
    : results.some((r) => r.status === 'changed')
      ? 'changed'
      : results.every((r) => r.status === 'skipped')
        ? 'skipped'
        : 'ok'
  let msg = summarize(results, status)
  if (task.noLog) msg = `${status} (output hidden by no_log)`
  msg = mask(msg, secrets)
  const diffs = task.noLog ? undefined : results.flatMap((r) => r.diff ?? []).map((d) => ({path: d.path, before: mask(d.before, secrets), after: mask(d.after, secrets)}))
  const data = task.noLog ? undefined : maskDeep(results.length === 1 ? results[0].data : mergeData(results), secrets)
  const warnings = results.flatMap((r) => r.warnings ?? []).map((w) => mask(w, secrets))
  return record(play, labelOf(task), host, status, msg, loopItems ? loopItems.length : 1, t0, {diff: diffs && diffs.length ? diffs : undefined, data, ...(warnings.length ? {warnings} : {})})
}

// set_fact: per host, visible to later tasks, above play vars (kept with registered results).
function setFacts(registered: Map<string, Record<string, unknown>>, host: string, results: ItemResult[]): void {
  for (const r of results) {
    if (r.facts && r.status !== 'failed' && r.status !== 'skipped') registered.set(host, {...(registered.get(host) ?? {}), ...r.facts})
  }
}

// Loop items: a list, a "{{ var }}" that is a list, or with_sequence; undefined without a loop.
function loopItemsOf(task: Task, vars: Record<string, unknown>): unknown[] | undefined {
  if (!task.loop) return undefined
  const where = task.where
  const v = task.loop.value
  if (task.loop.kind === 'with_sequence') {
    try {
      return expandSequence(renderText(String(v), vars, where))
    } catch (error) {
      if (error instanceof BaremetalError) throw error
      throw new TaskError((error as Error).message, {where, hint: 'with_sequence: start=1 end=10 format=%d, or count=N'})
    }
  }
  const rendered = typeof v === 'string' ? renderString(v, vars, where) : renderDeep(v, vars, where)
  if (!Array.isArray(rendered)) throw new TaskError(`${task.loop.kind} must be a list, got ${typeof rendered}`, {where, hint: 'give a YAML list, or a variable holding one'})
  return task.loop.kind === 'with_items' ? rendered.flat() : rendered
}

// changed_when / failed_when see the item's result as `result` and under the register name.
function applyResultConditions(task: Task, r: ItemResult, itemVars: Record<string, unknown>): ItemResult {
  if ((task.changedWhen === undefined && task.failedWhen === undefined) || r.status === 'skipped') return r
  const res = resultVar(r)
  const vars = {...itemVars, ...res, result: res, ...(task.register ? {[task.register]: res} : {})}
  let out = r
  try {
    if (task.failedWhen !== undefined) {
      const failed = evaluate(task.failedWhen, vars)
      if (failed && r.status !== 'failed') out = {...r, status: 'failed', msg: `failed_when matched: ${String(task.failedWhen)}`}
      else if (!failed && r.status === 'failed') out = {...r, status: 'changed', msg: r.msg}
    }
    if (task.changedWhen !== undefined && out.status !== 'failed') out = {...out, status: evaluate(task.changedWhen, vars) ? 'changed' : 'ok'}
  } catch (error) {
    if (error instanceof ExprError) throw conditionError(error, String(task.failedWhen ?? task.changedWhen), task.where)
    throw new TaskError(`cannot evaluate condition: ${(error as Error).message}`, {
      where: task.where,
      hint: 'conditions support names, literals, ==, !=, <, >, in, not, and, or, is defined, | length, | bool, | int',
    })
  }
  return out
}

function mergeData(results: ItemResult[]): Record<string, unknown> | undefined {
  const withData = results.filter((r) => r.data)
  if (withData.length === 0) return undefined
  return {items: results.map((r) => r.data ?? null)}
}

function maskDeep<T>(v: T, secrets: Set<string>): T {
  if (v === undefined || secrets.size === 0) return v
  return JSON.parse(
    mask(
      JSON.stringify(v),
      [...secrets].map((s) => JSON.stringify(s).slice(1, -1)),
    ),
  )
}

function whenTrue(task: Task, vars: Record<string, unknown>): boolean {
  let current: string | boolean = ''
  try {
    return task.when.every((w) => evaluate((current = w), vars))
  } catch (error) {
    if (error instanceof ExprError) throw conditionError(error, String(current), task.where)
    throw new TaskError(`cannot evaluate "when": ${(error as Error).message}`, {
      where: task.where,
      hint: 'conditions support names, literals, ==, !=, <, >, in, not, and, or, is defined, | length, | bool, | int, | default(x)',
    })
  }
}

function coerceArgs(task: Task, args: Record<string, unknown>): Record<string, unknown> {
  if (task.module.freeArgs) return args
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
