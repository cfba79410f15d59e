// redis_sentinel_upgrade (once per play, playbooks/redis-sentinel.yml): move a Sentinel
// deployment's running instances and Sentinels to redis_version, one group at a time, then
// the Sentinels one at a time (src/redis/sentinel-upgrade.ts has the order and why). Every
// instance's own INFO server says what it runs: an upgrade that stopped half-way is planned
// again from there by the next up.
//
// Parameters:
//   version          the version everything must run (redis_version) (required)
//   bin_dir          where that version's redis-server is (redis_bin_dir) (required)
//   src              the data instances' redis.conf template: an instance is restarted from
//                    what we declare plus its role, never from what a fence or Sentinel's
//                    CONFIG REWRITE left in the file (required)
//   dir              parent of the per-port directories (redis_cluster_dir)
//   password         requirepass of the instances (secret)
//   timeout          seconds each wait may take (default 60)
//   allow_downtime   restart a master without replicas in place, after SHUTDOWN SAVE
//   allow_downgrade  as the cluster path: within one RDB format only
//
// The same inspection and plan refuse before any host changes: redis_sentinel_plan calls
// sentinelUpgradePreflight first thing.

import {randomBytes} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {ClusterError} from '../../errors.js'
import {renderText} from '../../play/template.js'
import {expandHome, mask} from '../../shell.js'
import {failoverGroup} from '../../redis/sentinel-failover.js'
import {withRole} from '../../redis/sentinel-conf.js'
import type {SentinelGroup, SentinelLayout} from '../../redis/sentinel-layout.js'
import {sentinelMasterInfo} from '../../redis/sentinel-live.js'
import {describeSentinelPlan, planSentinelUpgrade, type GroupState, type MemberState, type SentinelNodeState, type SentinelUpgradePlan, type SentinelUpgradeStep} from '../../redis/sentinel-upgrade.js'
import {readSentinelView, ViewConnections} from '../../redis/sentinel-view.js'
import {controllerPath} from '../copy.js'
import {definePlayModule} from '../define.js'
import type {ItemResult, ModuleContext, PlayHost} from '../types.js'
import {instancesScript, parseInstanceReport, summarizeInstances} from './instances.js'
import {groupPending, layoutOf} from './sentinel.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const pw = (v: unknown) => (v === undefined || v === null || v === '' ? undefined : String(v))
const truthy = (v: unknown) => v === true || /^(yes|true|on|1)$/i.test(String(v ?? ''))
const splitAddr = (a: string) => [a.slice(0, a.lastIndexOf(':')), a.slice(a.lastIndexOf(':') + 1)] as const

function infoFields(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const l of text.split(/\r?\n/)) {
    const i = l.indexOf(':')
    if (i > 0 && !l.startsWith('#')) out[l.slice(0, i)] = l.slice(i + 1)
  }
  return out
}

const refusedConn = (e: unknown) => /ECONNREFUSED|connect ECONNREFUSED|Connection is closed/i.test(e instanceof Error ? e.message : String(e))

async function serverInfo(conns: ViewConnections, addr: string): Promise<{alive: boolean; version?: string; executable?: string; error?: string}> {
  try {
    const f = infoFields(String(await conns.call(addr, 'INFO', 'server')))
    return {alive: true, version: f.redis_version, executable: f.executable}
  } catch (error) {
    return refusedConn(error) ? {alive: false} : {alive: true, error: error instanceof Error ? error.message : String(error)}
  }
}

/** Every group's members (role, version) and every Sentinel's version, from the controller. */
export async function inspectDeployment(layout: SentinelLayout, password: string | undefined): Promise<{groups: GroupState[]; sentinels: SentinelNodeState[]}> {
  const conns = new ViewConnections(password)
  try {
    const view = await readSentinelView(layout, {conns})
    const groups = await Promise.all(
      layout.groups.map(async (g, i): Promise<GroupState> => {
        const v = view.groups[i]
        const members = await Promise.all(
          [g.master, ...g.replicas].map(async (h): Promise<MemberState> => {
            const addr = `${h.ip}:${g.port}`
            const r = v.roles.find((x) => x.addr === addr)
            const s = await serverInfo(conns, addr)
            const role = r?.role === 'master' ? 'master' : r?.role === 'replica' ? 'replica' : undefined
            return {addr, ...s, ...(role ? {role} : {}), ...(r?.masterAddr ? {masterAddr: r.masterAddr} : {})}
          }),
        )
        const confirmed = v.master && v.roles.find((r) => r.addr === v.master)?.role === 'master' ? v.master : undefined
        return {name: g.name, layoutReplicas: g.replicas.length, members, ...(confirmed ? {master: confirmed} : {})}
      }),
    )
    const sentinels = await Promise.all(layout.sentinels.map(async (s) => ({addr: `${s.ip}:${s.port}`, ...(await serverInfo(conns, `${s.ip}:${s.port}`))})))
    return {groups, sentinels}
  } finally {
    await conns.close()
  }
}

interface Where {
  ph: PlayHost
  ip: string
  port: number
}

// addr → the play host that runs it (data members and Sentinels).
function placesOf(ctx: ModuleContext, layout: SentinelLayout): Map<string, Where> {
  const byName = new Map(ctx.playHosts.map((h) => [h.host, h]))
  const out = new Map<string, Where>()
  const put = (host: string, ip: string, port: number) => {
    const ph = byName.get(host)
    if (ph) out.set(`${ip}:${port}`, {ph, ip, port})
  }
  for (const g of layout.groups) for (const m of [g.master, ...g.replicas]) put(m.host, m.ip, g.port)
  for (const s of layout.sentinels) put(s.host, s.ip, s.port)
  return out
}

const binOf = (w: Where, binArg: string) => expandHome(binArg, w.ph.facts?.home).replace(/(.)\/+$/, '$1')

/** The plan, from the live deployment; bin_dir per host for the "would overwrite the running binary" refusal. */
// A failover under way (an interrupted upgrade's, the Sentinels finishing it) leaves an old
// master unreconfigured for seconds: such refusals are asked again, up to waitMs.
export async function sentinelUpgradePlan(
  ctx: ModuleContext,
  layout: SentinelLayout,
  a: {version: string; binDir: string; password?: string; allowDowntime: boolean; allowDowngrade: boolean; waitMs: number},
) {
  const places = placesOf(ctx, layout)
  const deadline = Date.now() + (ctx.check ? 0 : a.waitMs)
  for (;;) {
    const live = await inspectDeployment(layout, a.password)
    const plan = planSentinelUpgrade(live.groups, live.sentinels, a.version, {
      allowDowntime: a.allowDowntime,
      allowDowngrade: a.allowDowngrade,
      binDirOf: (addr) => {
        const w = places.get(addr)
        return w ? binOf(w, a.binDir) : undefined
      },
    })
    if (!plan.refused.length || plan.refused.some((r) => !r.transient) || Date.now() >= deadline) return {plan, live, places}
    ctx.log(`redis_sentinel_upgrade: waiting for the Sentinels: ${plan.refused[0].addr}: ${plan.refused[0].why}`)
    await sleep(1000)
  }
}

function refusalText(plan: SentinelUpgradePlan): string {
  return [`upgrade to ${plan.target} refused, nothing changed:`, ...plan.refused.map((r) => `  ${r.addr}: ${r.why}`)].join('\n')
}

/** redis_sentinel_plan's first check: an upgrade that would be refused fails before any host changes. */
export async function sentinelUpgradePreflight(ctx: ModuleContext, layout: SentinelLayout, password: string | undefined): Promise<string | undefined> {
  const v = ctx.vars
  const version = String(v.redis_version ?? '')
  if (!version) return undefined
  const {plan} = await sentinelUpgradePlan(ctx, layout, {
    version,
    binDir: String(v.redis_bin_dir ?? '~/redis/bin'),
    password,
    allowDowntime: truthy(v.allow_downtime),
    allowDowngrade: truthy(v.allow_downgrade),
    waitMs: (Number(v.redis_sentinel_wait_timeout ?? 60) || 60) * 1000,
  })
  if (plan.refused.length) throw new ClusterError(mask(refusalText(plan), ctx.secrets), {hint: 'nothing was built, written or restarted'})
  if (!plan.groups.length && !plan.sentinels.length) return undefined
  return `upgrade possible: ${describeSentinelPlan(plan)[0].replace(/:$/, '')} (carried out once ${version} is built)`
}

interface Run {
  ctx: ModuleContext
  layout: SentinelLayout
  places: Map<string, Where>
  plan: SentinelUpgradePlan
  bin: string
  src: string
  dir: string
  password?: string
  timeoutMs: number
  log: (m: string) => void
}

// The instance's redis.conf as we declare it, with its role: whatever a fence or Sentinel's
// CONFIG REWRITE put there is gone before the new binary reads it.
async function writeConf(run: Run, w: Where, replicaof: string): Promise<void> {
  const dir = expandHome(run.dir, w.ph.facts?.home).replace(/(.)\/+$/, '$1')
  const idir = `${dir}/${w.port}`
  const declared = renderText(run.src, {...w.ph.vars, item: w.port, redis_instance_dir: idir}, {file: 'redis-sentinel-instance.conf'})
  await w.ph.transport.upload([{path: `${idir}/redis.conf`, content: withRole(declared, replicaof), mode: 0o600}])
}

async function restart(run: Run, addr: string, o: {save?: boolean; sentinel?: boolean}): Promise<void> {
  const w = run.places.get(addr)
  if (!w) throw new ClusterError(`${addr}: its host is not in this run (--limit, or it failed earlier)`)
  const dir = expandHome(run.dir, w.ph.facts?.home).replace(/(.)\/+$/, '$1')
  const waitSeconds = Number(w.ph.vars.redis_start_timeout ?? 60) || 60
  const opts = {dir, bin: binOf(w, run.bin), bind: w.ip, waitSeconds, password: o.sentinel ? undefined : run.password, remove: false, keepData: false, save: o.save === true, private: true}
  const extra = o.sentinel ? {conf: 'sentinel.conf', sentinel: true} : {}
  const r = await w.ph.transport.exec('sh -s', {stdin: instancesScript('restarted', [w.port], {...opts, ...extra}), timeoutMs: (22 * waitSeconds + 60) * 1000})
  const res = summarizeInstances('restarted', [w.port], parseInstanceReport(mask(r.stdout, run.ctx.secrets)))
  if (res.status === 'failed') throw new ClusterError(`${addr}: restart on ${run.plan.target} failed: ${res.msg ?? ''}`)
}

// Until `fn` gives no reason to wait (undefined), or the step's time is up.
async function until(run: Run, what: string, fn: () => Promise<string | undefined>): Promise<void> {
  const deadline = Date.now() + run.timeoutMs
  for (;;) {
    const why = await fn().catch((e: Error) => e.message)
    if (why === undefined) return
    if (Date.now() > deadline) throw new ClusterError(`${what}: not done within ${run.timeoutMs / 1000} s: ${why}`)
    await sleep(200)
  }
}

// A replica on the target version, linked to `master`, which streams to it (state online).
async function synced(run: Run, conns: ViewConnections, addr: string, master: string): Promise<void> {
  await until(run, `${addr} in sync with ${master}`, async () => {
    const me = infoFields(String(await conns.call(addr, 'INFO')))
    if (me.redis_version !== run.plan.target) return `runs ${me.redis_version}`
    if (`${me.master_host}:${me.master_port}` !== master) return `replicates ${me.master_host ?? 'nothing'}:${me.master_port ?? ''}`
    if (me.master_link_status !== 'up' || me.master_sync_in_progress !== '0') return `link ${me.master_link_status}, sync in progress ${me.master_sync_in_progress}`
    const [ip, port] = splitAddr(addr)
    const m = String(await conns.call(master, 'INFO', 'replication'))
    return new RegExp(`^slave\\d+:ip=${ip.replace(/\./g, '\\.')},port=${port},state=online`, 'm').test(m) ? undefined : `${master} does not stream to it yet`
  })
}

// Before the failover: a masterauth no master accepts, so that once the old master is a
// replica of the upgraded one it cannot even start a sync (a 5.0 replica cannot load a 7.x
// RDB) until its restart. Returns how to lift it, should the failover not happen.
export const FENCE = 'baremetal-upgrade-fence-'
// src/redis/sentinel-failover.ts's min-replicas-to-write fence.
const WRITE_FENCE = '1000000'
async function fenceSync(conns: ViewConnections, master: string, password: string | undefined): Promise<() => Promise<void>> {
  const got = (await conns.call(master, 'CONFIG', 'GET', 'masterauth')) as string[]
  const before = String(got?.[1] ?? '').startsWith(FENCE) ? (password ?? '') : String(got?.[1] ?? '')
  await conns.call(master, 'CONFIG', 'SET', 'masterauth', `${FENCE}${randomBytes(12).toString('hex')}`)
  return () => conns.call(master, 'CONFIG', 'SET', 'masterauth', before).then(() => undefined)
}

// The write fence of a failover whose controller was killed is still on: lifted to what we
// declare first, or failoverGroup would take it for the declared value and put it back.
async function staleWriteFence(run: Run, conns: ViewConnections, master: string): Promise<void> {
  const got = (await conns.call(master, 'CONFIG', 'GET', 'min-replicas-to-write')) as string[]
  if (String(got?.[1]) !== WRITE_FENCE) return
  const w = run.places.get(master)
  await conns.call(master, 'CONFIG', 'SET', 'min-replicas-to-write', String(Number(w?.ph.vars.redis_min_replicas_to_write ?? 0) || 0))
}

async function handOver(run: Run, conns: ViewConnections, g: SentinelGroup, master: string): Promise<string> {
  await staleWriteFence(run, conns, master)
  const lift = await fenceSync(conns, master, run.password)
  const deadline = Date.now() + run.timeoutMs
  for (;;) {
    try {
      // down-after bounds how long the failover may hold the old master's hellos (Sentinel's
      // PINGs queue behind them): the declared one, not failoverGroup's default.
      const downAfterMs = Number(run.places.get(master)?.ph.vars.redis_sentinel_down_after_ms) || undefined
      const r = await failoverGroup(run.layout, g, {password: run.password, timeoutMs: run.timeoutMs, downAfterMs})
      run.log(`${g.name}: master ${r.from} → ${r.to} in ${r.ms} ms (fenced failover)`)
      return r.to
    } catch (error) {
      // A restarted replica the Sentinels do not count as promotable yet (NOGOODSLAVE), or a
      // replica not caught up: asked again until the step's time is up, unfenced meanwhile.
      if (Date.now() > deadline || !/NOGOODSLAVE|not every replica caught up|no replica is in sync/.test((error as Error).message)) {
        await lift().catch(() => {})
        throw error
      }
      run.log(`${g.name}: failover not yet possible (${(error as Error).message.slice(0, 160)}); again in 1 s`)
      await sleep(1000)
    }
  }
}

async function upgradeGroup(run: Run, conns: ViewConnections, name: string, steps: SentinelUpgradeStep[], out: Outcome): Promise<void> {
  const g = run.layout.groups.find((x) => x.name === name)!
  let master = ''
  for (const s of steps) {
    if (run.ctx.signal.aborted) throw new ClusterError('interrupted')
    if (s.kind === 'replica') {
      master = s.master
      run.log(`${name}: restarting replica ${s.addr} on ${run.plan.target} (was ${s.from})`)
      await writeConf(run, run.places.get(s.addr)!, splitAddr(s.master).join(' '))
      await restart(run, s.addr, {})
      await synced(run, conns, s.addr, s.master)
      out.upgraded.push(s.addr)
    } else if (s.kind === 'failover') {
      run.log(`${name}: fenced failover of ${s.master}; it syncs from no one until its restart`)
      master = await handOver(run, conns, g, s.master)
      out.failovers.push({group: name, from: s.master, to: master})
    } else if (s.kind === 'old-master') {
      run.log(`${name}: restarting ${s.addr} on ${run.plan.target} as a replica of ${master}`)
      await writeConf(run, run.places.get(s.addr)!, splitAddr(master).join(' '))
      await restart(run, s.addr, {})
      await synced(run, conns, s.addr, master)
      out.upgraded.push(s.addr)
    } else if (s.kind === 'in-place') {
      run.log(`${name}: restarting master ${s.addr} in place on ${run.plan.target} after SHUTDOWN SAVE (its writes wait)`)
      await writeConf(run, run.places.get(s.addr)!, '')
      await restart(run, s.addr, {save: true})
      await until(run, `${s.addr} back as master`, async () => {
        const f = infoFields(String(await conns.call(s.addr, 'INFO')))
        return f.role === 'master' && f.redis_version === run.plan.target && f.loading === '0' ? undefined : `role ${f.role}, ${f.redis_version}, loading ${f.loading}`
      })
      out.upgraded.push(s.addr)
    }
  }
}

// A restarted Sentinel knows every group's master (the one the others name), its replicas
// and the other Sentinels again before the next one goes down: a majority always runs.
async function sentinelBack(run: Run, conns: ViewConnections, addr: string): Promise<void> {
  const [ip, port] = splitAddr(addr)
  const view = await readSentinelView(run.layout, {conns})
  await until(run, `Sentinel ${addr} back`, async () => {
    const f = infoFields(String(await conns.call(addr, 'INFO', 'server')))
    if (f.redis_version !== run.plan.target) return `runs ${f.redis_version}`
    for (const g of view.groups) {
      const i = await sentinelMasterInfo(ip, Number(port), g.name)
      if (!i) return `does not know ${g.name}`
      if (`${i.ip}:${i.port}` !== g.master) return `names ${i.ip}:${i.port} for ${g.name}, the others ${g.master}`
      if (i.otherSentinels < run.layout.sentinels.length - 1) return `knows ${i.otherSentinels} other Sentinel(s)`
      const reps = run.layout.groups.find((x) => x.name === g.name)!.replicas.length
      if (i.replicas < reps) return `knows ${i.replicas} replica(s) of ${g.name}`
    }
    return undefined
  })
}

interface Outcome {
  upgraded: string[]
  failovers: Array<{group: string; from: string; to: string}>
}

async function execute(run: Run): Promise<Outcome> {
  const out: Outcome = {upgraded: [], failovers: []}
  const conns = new ViewConnections(run.password)
  try {
    for (const g of run.plan.groups) await upgradeGroup(run, conns, g.name, g.steps, out)
    for (const s of run.plan.sentinels) {
      if (s.kind !== 'sentinel') continue
      run.log(`restarting Sentinel ${s.addr} on ${run.plan.target} (was ${s.from})`)
      await restart(run, s.addr, {sentinel: true})
      await sentinelBack(run, conns, s.addr)
      out.upgraded.push(s.addr)
    }
  } catch (error) {
    throw Object.assign(error instanceof ClusterError ? error : new ClusterError(String((error as Error)?.message ?? error)), {outcome: out})
  } finally {
    await conns.close()
  }
  return out
}

async function runItem(ctx: ModuleContext, args: Record<string, unknown>): Promise<ItemResult> {
  const version = String(args.version ?? '')
  const password = pw(args.password)
  if (password) ctx.secrets.add(password)
  const layout = layoutOf(ctx)
  const timeoutMs = (Number(args.timeout ?? 60) || 60) * 1000
  const flags = {version, binDir: String(args.bin_dir), password, allowDowntime: args.allow_downtime === true, allowDowngrade: args.allow_downgrade === true, waitMs: timeoutMs}
  const {plan, places} = await sentinelUpgradePlan(ctx, layout, flags)
  const data: Record<string, unknown> = {versions: plan.versions, plan: {groups: plan.groups, sentinels: plan.sentinels}, refused: plan.refused}
  if (plan.refused.length) return {status: 'failed', msg: mask(refusalText(plan), ctx.secrets), data}
  if (!plan.groups.length && !plan.sentinels.length) return {status: 'ok', msg: `every running instance and Sentinel runs ${version}`, data}
  const lines = describeSentinelPlan(plan)
  if (ctx.check) return {status: 'changed', msg: ['would upgrade ' + lines[0], ...lines.slice(1)].join('\n'), data}
  const src = await readFile(controllerPath(ctx, String(args.src), 'templates'), 'utf8')
  const run: Run = {ctx, layout, places, plan, bin: String(args.bin_dir), src, dir: String(args.dir ?? '~/redis_cluster'), password, timeoutMs, log: (m) => ctx.log(`redis_sentinel_upgrade: ${m}`)}
  const t0 = Date.now()
  let out: Outcome
  try {
    out = await execute(run)
  } catch (error) {
    const done = (error as {outcome?: Outcome}).outcome
    Object.assign(data, {upgraded: done?.upgraded ?? [], failovers: done?.failovers ?? [], ms: Date.now() - t0})
    return {status: 'failed', msg: mask(`${(error as Error).message} (upgraded so far: ${done?.upgraded.length ?? 0}; run up again to resume from the live versions)`, ctx.secrets), data}
  }
  await until(run, 'groups replicating, Sentinels agreeing', async () => (await groupPending(layout, password, Number(ctx.vars.redis_replicas ?? 0))).join('; ') || undefined)
  const ms = Date.now() - t0
  Object.assign(data, {upgraded: out.upgraded, failovers: out.failovers, ms})
  const fo = out.failovers.map((f) => `${f.from} → ${f.to}`).join(', ')
  return {
    status: 'changed',
    msg: `upgraded ${out.upgraded.length} instance(s) and Sentinel(s) to ${version} in ${(ms / 1000).toFixed(1)} s; ${out.failovers.length} fenced failover(s)${fo ? `: ${fo}` : ''}`,
    data,
  }
}

export const redisSentinelUpgradeModule = definePlayModule({
  name: 'redis_sentinel_upgrade',
  description:
    'Rolling Redis version upgrade of a Sentinel deployment: per group replicas first, a fenced failover to an upgraded replica, the old master as its replica; then the Sentinels one at a time',
  args: {
    version: {type: 'string', required: true},
    bin_dir: {type: 'path', required: true},
    src: {type: 'path', required: true, controllerPath: true},
    dir: {type: 'path', default: '~/redis_cluster'},
    password: {type: 'string', secret: true},
    timeout: {type: 'int', default: 60},
    allow_downtime: {type: 'bool', default: false},
    allow_downgrade: {type: 'bool', default: false},
  },
  prefix: 'redis_sentinel_upgrade: ',
  runItem,
})
