// redis_upgrade: move the running instances to redis_version, shard by shard, one election
// at a time (src/redis/upgrade.ts has the plan and why it is ordered so). Runs once per
// play, over every host. Each node's own INFO server says what it runs: an upgrade that
// stopped half-way (controller killed, a node died) is simply planned again from there.
//
// Parameters:
//   version         the version every instance must run (redis_version) (required)
//   bin_dir         where that version's redis-server is (redis_bin_dir) (required)
//   timeout         seconds each step may take (default 60 + 2 × cluster-node-timeout)
//   allow_downtime  restart a master without a replica in place, after SHUTDOWN SAVE (default false)
//   allow_downgrade go down to an older version that writes the same RDB format (default false;
//                   across formats a downgrade is always refused: no replica could sync)
//   preflight       only plan and refuse: changes nothing, placed before the build so a
//                   refused upgrade leaves every host as it was (default false)
//
// Instances that do not run (connection refused) are left to redis_instances, which starts
// them on bin_dir. Check mode prints the plan: the order, the failovers, the in-place restarts.

import pLimit from 'p-limit'
import {randomBytes} from 'node:crypto'
import {createConnection} from 'node:net'
import {resolveIp, pickBindAddress} from '../../redis/inventory-nodes.js'
import {nodeAddr, parseClusterInfo} from '../../redis/nodes.js'
import {failover, inspectNode, waitReady, withNode, type RollingOptions, type RollingTarget} from '../../redis/rolling.js'
import {planUpgrade, type UpgradePlan, type UpgradeStep, type VersionedNode} from '../../redis/upgrade.js'
import {expandHome, mask} from '../../shell.js'
import {instancesScript, parseInstanceReport, summarizeInstances} from './instances.js'
import type {ItemResult, ModuleContext} from '../types.js'
import {definePlayModule} from '../define.js'

function intVar(v: unknown, dflt: number): number {
  const n = Number(v)
  return v === undefined || v === null || v === '' || !Number.isInteger(n) ? dflt : n
}

type Target = RollingTarget & {bin: string}

async function targetsOf(ctx: ModuleContext, binArg: string): Promise<Target[]> {
  const hosts = ctx.playHosts.length > 0 ? ctx.playHosts : [{host: ctx.host, address: ctx.address, vars: ctx.vars, facts: ctx.facts, transport: ctx.transport}]
  const out: Target[] = []
  for (const ph of hosts) {
    const v = ph.vars
    const start = intVar(v.redis_port_start, 6379)
    const count = intVar(v.redis_count, 100)
    const home = ph.facts?.home ?? ctx.facts.home
    const dir = expandHome(String(v.redis_cluster_dir ?? '~/redis_cluster'), home).replace(/(.)\/+$/, '$1')
    const bin = expandHome(binArg, home).replace(/(.)\/+$/, '$1')
    const ip = await resolveIp(pickBindAddress(v.redis_bind) ?? ph.address, ph.host)
    const password = v.redis_password === undefined || v.redis_password === null || v.redis_password === '' ? undefined : String(v.redis_password)
    if (password) ctx.secrets.add(password)
    const waitSeconds = intVar(v.redis_start_timeout, 60)
    for (let port = start; port < start + count; port++) {
      out.push({
        host: ph.host,
        bin,
        ip,
        port,
        passwords: [password],
        restart: async ({save}) => {
          const opts = {dir, bin, bind: ip, waitSeconds, password, remove: false, keepData: false, save}
          const r = await ph.transport.exec('sh -s', {stdin: instancesScript('restarted', [port], opts), timeoutMs: (22 * waitSeconds + 60) * 1000})
          const res = summarizeInstances('restarted', [port], parseInstanceReport(mask(r.stdout, ctx.secrets)))
          return {ok: res.status !== 'failed', msg: res.msg ?? ''}
        },
      })
    }
  }
  return out
}

const serverInfo = (t: {ip: string; port: number; passwords: Array<string | undefined>}) => withNode(t, (r) => r.call('INFO', 'server')).then((x) => parseClusterInfo(String(x)))
const versionOf = (t: {ip: string; port: number; passwords: Array<string | undefined>}) => serverInfo(t).then((i) => i.redis_version)

// Nothing listens (the connection is refused): the instance does not run, redis_instances
// starts it on the declared binary. Anything else (a timeout) is a node to inspect.
function refused(ip: string, port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = createConnection({host: ip, port, timeout: 3000})
    const end = (v: boolean) => {
      s.destroy()
      done(v)
    }
    s.once('connect', () => end(false))
    s.once('timeout', () => end(false))
    s.once('error', (e: NodeJS.ErrnoException) => end(e.code === 'ECONNREFUSED'))
  })
}

// Every instance that runs, with its role and version.
async function inspectAll(targets: Target[]): Promise<VersionedNode[]> {
  const limit = pLimit(32)
  const nodes = await Promise.all(
    targets.map((t) =>
      limit(async (): Promise<VersionedNode | undefined> => {
        if (await refused(t.ip, t.port)) return undefined
        const n = await inspectNode(t)
        if (n.role === 'unknown') return n
        const info = await serverInfo(t).catch(() => undefined)
        const version = info?.redis_version
        return {...n, version, executable: info?.executable, ...(version ? {} : {role: 'unknown' as const, error: 'INFO server did not answer'})}
      }),
    ),
  )
  return nodes.filter((n): n is VersionedNode => n !== undefined)
}

export function describePlan(plan: UpgradePlan): string[] {
  const lines: string[] = []
  const steps = plan.shards.flat()
  const restarts = steps.filter((s) => s.kind === 'restart')
  const from = [...new Set(Object.values(plan.versions).filter((v) => v !== plan.target))].sort()
  lines.push(`${restarts.length} instance(s) on ${from.join(', ')} → ${plan.target}, ${plan.shards.length} shard(s) side by side, one election at a time:`)
  plan.shards.forEach((shard, i) => {
    const text = shard.map((s) =>
      s.kind === 'failover' ? `CLUSTER FAILOVER ${s.master} → ${s.replica}` : `restart ${s.addr} (${s.from}) as ${s.as}${s.save ? ' after SHUTDOWN SAVE (downtime)' : ''}`,
    )
    lines.push(`  shard ${i + 1}: ${text.join('; ')}`)
  })
  return lines
}

// A fence on the old master before its failover: a masterauth no master accepts, so that as
// a replica of the upgraded node it cannot sync (and fail loading a newer RDB) until its
// restart on the new binary. Returns how to lift it, should the failover not happen.
const FENCE = 'baremetal-upgrade-fence-'
async function fence(t: RollingTarget): Promise<() => Promise<void>> {
  const got = await withNode(t, (r) => r.call('CONFIG', 'GET', 'masterauth')).then((x) => String((x as string[])[1] ?? ''))
  // Still fenced by an upgrade that was interrupted: what to lift it to is redis.conf's (the password).
  const before = got.startsWith(FENCE) ? (t.passwords[0] ?? '') : got
  await withNode(t, (r) => r.call('CONFIG', 'SET', 'masterauth', `${FENCE}${randomBytes(12).toString('hex')}`))
  return () => withNode(t, (r) => r.call('CONFIG', 'SET', 'masterauth', before)).then(() => undefined)
}

interface Outcome {
  upgraded: string[]
  failovers: Array<{from: string; to: string}>
  failed: Array<{addr: string; msg: string}>
}

async function runStep(step: UpgradeStep, byAddr: Map<string, Target>, target: string, opts: RollingOptions, oneElection: ReturnType<typeof pLimit>, out: Outcome): Promise<boolean> {
  const log = opts.log ?? (() => {})
  if (step.kind === 'failover') {
    const master = byAddr.get(step.master)!
    const replica = byAddr.get(step.replica)!
    const why = await oneElection(async () => {
      log(`manual failover ${step.master} → ${step.replica} (${target}); ${step.master} fenced from syncing until its restart`)
      const lift = await fence(master)
      const w = await failover(replica, master, opts)
      if (w) await lift().catch(() => {})
      return w
    })
    if (why) out.failed.push({addr: step.master, msg: `failover to ${step.replica} did not complete: ${why}; not restarted`})
    else out.failovers.push({from: step.master, to: step.replica})
    return !why
  }
  const t = byAddr.get(step.addr)!
  log(`restarting ${step.addr} (${t.host}) on ${target} (was ${step.from}) as ${step.as}${step.save ? ' after SHUTDOWN SAVE' : ''}`)
  const r = await t.restart({save: step.save === true})
  const why = r.ok ? await waitReady(t, step.as, opts) : r.msg
  const now = why ? undefined : await versionOf(t).catch(() => undefined)
  if (why || now !== target) {
    out.failed.push({addr: step.addr, msg: why ?? `restarted, but runs ${now ?? '?'}, not ${target}`})
    return false
  }
  out.upgraded.push(step.addr)
  return true
}

async function execute(plan: UpgradePlan, targets: Target[], opts: RollingOptions): Promise<Outcome> {
  const byAddr = new Map(targets.map((t) => [nodeAddr(t), t]))
  const out: Outcome = {upgraded: [], failovers: [], failed: []}
  const limit = pLimit(4)
  // Two elections at once compete for the masters' one vote per epoch.
  const oneElection = pLimit(1)
  await Promise.all(
    plan.shards.map((steps) =>
      limit(async () => {
        for (const step of steps) {
          if (opts.signal?.aborted) return
          if (!(await runStep(step, byAddr, plan.target, opts, oneElection, out))) return
        }
      }),
    ),
  )
  return out
}

async function runItem(ctx: ModuleContext, args: Record<string, unknown>): Promise<ItemResult> {
  const version = String(args.version ?? '')
  if (!version || !args.bin_dir) return {status: 'failed', msg: 'redis_upgrade: version and bin_dir are required'}
  const targets = await targetsOf(ctx, String(args.bin_dir))
  const nodes = await inspectAll(targets)
  const binOf = new Map(targets.map((t) => [nodeAddr(t), t.bin]))
  const plan = planUpgrade(nodes, version, {allowDowntime: args.allow_downtime === true, allowDowngrade: args.allow_downgrade === true, binDirOf: (a) => binOf.get(a)})
  const data: Record<string, unknown> = {versions: plan.versions, plan: plan.shards, refused: plan.refused}
  if (plan.refused.length)
    return {
      status: 'failed',
      msg: mask([`upgrade to ${version} refused, nothing changed:`, ...plan.refused.map((r) => `  ${r.addr}: ${r.why}`)].join('\n'), ctx.secrets),
      data,
    }
  if (plan.shards.length === 0) return {status: 'ok', msg: `every running instance runs ${version}`, data}
  const lines = describePlan(plan)
  // The plan is printed once, by the task that carries it out (or would, in check mode).
  if (args.preflight === true) return {status: 'ok', msg: `upgrade possible: ${lines[0].replace(/:$/, '')} (carried out once ${version} is built)`, data}
  if (ctx.check) return {status: 'changed', msg: ['would upgrade ' + lines[0], ...lines.slice(1)].join('\n'), data}
  const nodeTimeout = Math.max(...ctx.playHosts.map((p) => intVar(p.vars.redis_cluster_node_timeout, 15000)), 15000)
  const stepSec = intVar(args.timeout, 0) || 60 + (2 * nodeTimeout) / 1000
  const started = Date.now()
  const out = await execute(plan, targets, {stepTimeoutMs: stepSec * 1000, log: (m) => ctx.log(`redis_upgrade: ${m}`), signal: ctx.signal})
  Object.assign(data, {upgraded: out.upgraded, failovers: out.failovers, failed: out.failed, ms: Date.now() - started})
  const done = `upgraded ${out.upgraded.length} instance(s) to ${version} in ${((Date.now() - started) / 1000).toFixed(1)} s; ${out.failovers.length} master(s) handed over first by CLUSTER FAILOVER${out.failovers.length ? `: ${out.failovers.map((f) => `${f.from} → ${f.to}`).join(', ')}` : ''}`
  if (out.failed.length)
    return {
      status: 'failed',
      msg: mask([`${out.failed.length} instance(s) not upgraded (run up again to resume from the live versions):`, ...out.failed.map((f) => `  ${f.addr}: ${f.msg}`), done].join('\n'), ctx.secrets),
      data,
    }
  return {status: 'changed', msg: done, data}
}

export const redisUpgradeModule = definePlayModule({
  name: 'redis_upgrade',
  description: 'Rolling Redis version upgrade: replicas first, masters handed over by CLUSTER FAILOVER to an upgraded replica, then restarted on the new binary',
  args: {
    version: {type: 'string', required: true},
    bin_dir: {type: 'path', required: true},
    timeout: {type: 'int'},
    allow_downtime: {type: 'bool', default: false},
    allow_downgrade: {type: 'bool', default: false},
    preflight: {type: 'bool', default: false},
  },
  prefix: 'redis_upgrade: ',
  runItem,
})
