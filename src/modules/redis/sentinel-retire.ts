// What up removes from a Sentinel deployment (a group past redis_sentinel_groups, a replica
// past redis_replicas, a Sentinel out of the Sentinel group), in the order Redis's own
// documentation gives for it:
//
// retireOf (inside redis_sentinel_plan, before any host changes): what the Sentinels know
//   that the inventory no longer lists (src/redis/sentinel-retire.ts), and the refusals,
//   exit 5: a removed replica that is its group's current master (a failover put it
//   there), a removed group that holds keys (DBSIZE on its master; --allow-data-loss drops
//   them), a removed member that still answers on an address no host of the play has.
//
// redis_sentinel_retire (once per play), phase:
//   unwatch  SENTINEL REMOVE of each removed group on every Sentinel, before its instances
//            stop: a stopped master must not start a failover.
//   forget   after the removed replicas and Sentinels stopped: SENTINEL RESET of the groups
//            that had one, on each remaining Sentinel in turn, waiting until it lists the
//            group's connected replicas and the other running Sentinels again before the
//            next one (never all of them blind at once).
//     plan     dict  the registered redis_sentinel_plan
//     timeout  int   seconds to wait for one Sentinel to re-discover (default 60)

import {InputError} from '../../errors.js'
import {type SentinelLayout} from '../../redis/sentinel-layout.js'
import {connectedReplicas, dbsize, memberRole, sentinelCommand, sentinelKnows, sentinelMasterInfo} from '../../redis/sentinel-live.js'
import {describeRetire, ipOf, ourName, planRetire, retireByIp, type RetirePlan} from '../../redis/sentinel-retire.js'
import {addrOf} from '../../redis/sentinel-roles.js'
import {definePlayModule} from '../define.js'
import type {ItemResult, ModuleContext} from '../types.js'
import {layoutOf} from './sentinel.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export interface RetireData {
  /** Per host: the data ports to stop and remove, whether its Sentinel goes. */
  hosts: Record<string, {ports: number[]; sentinel: boolean}>
  groups: string[]
  reset: string[]
  sentinels: string[]
  lines: string[]
}

export const NO_RETIRE: RetireData = {hosts: {}, groups: [], reset: [], sentinels: [], lines: []}

/** The play's host at each address (the address instances bind to, as layoutOf reads it). */
function hostsByIp(ctx: ModuleContext): Map<string, string> {
  const all = ctx.groupHosts && ctx.groupHosts.length > 0 ? ctx.groupHosts : ctx.playHosts
  return new Map(all.map((h) => [String(h.vars.redis_bind ?? h.vars.ansible_host_ip ?? h.address), h.host]))
}

function refuseMasterGoes(plan: RetirePlan, layout: SentinelLayout): void {
  const m = plan.masterGoes[0]
  if (!m) return
  const g = layout.groups.find((x) => x.name === m.group)!
  const stay = [g.master, ...g.replicas].map((h) => addrOf(h, g.port))
  throw new InputError(
    `nothing changed: ${m.addr}, the current master of ${m.group} (the Sentinels' word), is not one of its members any more (${stay.join(', ')}): removing it would demote the live master`,
    {
      hint: [`move the master first: baremetal failover -i INVENTORY --group ${m.group} (the Sentinels promote a replica that stays), then run up again`, 'keep redis_replicas as it was'],
    },
  )
}

async function sizes(plan: RetirePlan, password: string | undefined): Promise<Map<string, number | undefined>> {
  const out = new Map<string, number | undefined>()
  await Promise.all(plan.groups.map(async (g) => out.set(g.name, await dbsize(ipOf(g.master), g.port, password))))
  return out
}

// A removed member still running where no host of the play can stop it.
async function unreachableOwners(plan: RetirePlan, byIp: Map<string, string>, password: string | undefined): Promise<string[]> {
  const data = [...plan.groups.flatMap((g) => g.members), ...plan.replicas.map((r) => r.addr)].filter((a) => !byIp.has(ipOf(a)))
  const sentinels = plan.sentinels.filter((a) => !byIp.has(ipOf(a)))
  const port = (a: string) => Number(a.slice(a.lastIndexOf(':') + 1))
  const live = await Promise.all([
    ...data.map(async (a) => ((await memberRole(ipOf(a), port(a), password)).alive ? a : '')),
    ...sentinels.map(async (a) => ((await sentinelCommand(ipOf(a), port(a), ['PING'])).ok ? `Sentinel ${a}` : '')),
  ])
  return live.filter(Boolean)
}

/** What the Sentinels know that the inventory no longer lists; refuses (exit 5) what must not go. */
export async function retireOf(ctx: ModuleContext, layout: SentinelLayout, password: string | undefined, o: {allowDataLoss: boolean; down?: boolean}): Promise<RetireData> {
  const cluster = String(ctx.vars.redis_cluster_name)
  const knows = (await Promise.all(layout.sentinels.map((s) => sentinelKnows(s.ip, s.port, (n) => ourName(cluster, n))))).filter((k) => k !== undefined)
  const plan = planRetire(layout, cluster, knows)
  if (!o.down) refuseMasterGoes(plan, layout)
  const n = await sizes(plan, password)
  const full = plan.groups.filter((g) => n.get(g.name) !== 0)
  if (full.length && !o.allowDataLoss) {
    throw new InputError(
      `nothing changed: lowering redis_sentinel_groups to ${layout.groups.length} removes ${full.map((g) => `${g.name} (${n.get(g.name) === undefined ? 'its master does not answer DBSIZE' : `${n.get(g.name)} keys`})`).join(', ')}`,
      {
        hint: ['move its keys elsewhere and empty it (FLUSHALL on its master), then run up again', 'run up --allow-data-loss to delete the group and its keys', 'keep redis_sentinel_groups as it was'],
      },
    )
  }
  const byIp = hostsByIp(ctx)
  const stray = await unreachableOwners(plan, byIp, password)
  if (stray.length && !o.down) {
    throw new InputError(`nothing changed: ${stray.join(', ')} still run(s) but no host of this run has that address, so up cannot stop them`, {
      hint: 'keep that host in the inventory (in the data, Sentinel or haproxy group) for this run, or stop that instance on it yourself, then run up again',
    })
  }
  const hosts: RetireData['hosts'] = {}
  for (const [ip, r] of retireByIp(plan)) if (byIp.has(ip)) hosts[byIp.get(ip)!] = r
  // down: a member the inventory no longer lists that a failover made master stops as well.
  for (const m of o.down ? plan.masterGoes : []) {
    const h = byIp.get(ipOf(m.addr))
    if (h) (hosts[h] ??= {ports: [], sentinel: false}).ports.push(Number(m.addr.slice(m.addr.lastIndexOf(':') + 1)))
  }
  const lines = describeRetire(plan, n)
  if (full.length && !o.down) lines.push(`--allow-data-loss: ${full.map((g) => g.name).join(', ')} deleted with its keys`)
  return {hosts, groups: plan.groups.map((g) => g.name), reset: plan.reset, sentinels: plan.sentinels, lines}
}

async function unwatch(ctx: ModuleContext, layout: SentinelLayout, r: RetireData): Promise<ItemResult> {
  if (!r.groups.length) return {status: 'ok', msg: 'no group removed'}
  if (ctx.check) return {status: 'changed', msg: `would SENTINEL REMOVE ${r.groups.join(', ')} on every Sentinel`}
  const all = [...layout.sentinels.map((s) => addrOf(s, s.port)), ...r.sentinels]
  const notes: string[] = []
  for (const a of all) {
    for (const g of r.groups) {
      const res = await sentinelCommand(ipOf(a), Number(a.slice(a.lastIndexOf(':') + 1)), ['SENTINEL', 'REMOVE', g])
      if (!res.ok && !/No such master/i.test(res.reply)) notes.push(`${a}: ${res.reply}`)
    }
  }
  // A Sentinel that did not answer still watches the group in its file: say so, go on.
  return {status: 'changed', msg: `SENTINEL REMOVE ${r.groups.join(', ')} on ${all.length} Sentinel(s)${notes.length ? `; not on ${notes.join('; ')}` : ''}`}
}

// After SENTINEL RESET: the Sentinel lists the master's connected replicas and the other running Sentinels again.
async function rediscovered(ip: string, port: number, group: string, others: number, password: string | undefined): Promise<string | undefined> {
  const i = await sentinelMasterInfo(ip, port, group)
  if (!i) return `${group}: no answer`
  const link = await connectedReplicas(i.ip, i.port, password)
  if (link === undefined) return `${group}: ${i.ip}:${i.port} is not a master`
  if (i.replicas !== link || i.otherSentinels !== others) return `${group}: lists ${i.replicas} of ${link} replica(s), ${i.otherSentinels} of ${others} other Sentinel(s)`
  return undefined
}

async function forget(ctx: ModuleContext, layout: SentinelLayout, r: RetireData, password: string | undefined, timeoutS: number): Promise<ItemResult> {
  if (!r.reset.length) return {status: 'ok', msg: 'nothing for the Sentinels to forget'}
  if (ctx.check) return {status: 'changed', msg: `would SENTINEL RESET ${r.reset.join(', ')} on each Sentinel, one at a time`}
  const up = (await Promise.all(layout.sentinels.map(async (s) => ((await sentinelCommand(s.ip, s.port, ['PING'])).ok ? s : undefined)))).filter((s) => s !== undefined)
  const t0 = Date.now()
  for (const s of up) {
    for (const g of r.reset) {
      const res = await sentinelCommand(s.ip, s.port, ['SENTINEL', 'RESET', g])
      if (!res.ok) return {status: 'failed', msg: `SENTINEL RESET ${g} on ${s.ip}:${s.port}: ${res.reply}`}
    }
    const deadline = Date.now() + timeoutS * 1000
    for (;;) {
      const pending = (await Promise.all(r.reset.map((g) => rediscovered(s.ip, s.port, g, up.length - 1, password)))).filter(Boolean)
      if (!pending.length) break
      if (Date.now() >= deadline) return {status: 'failed', msg: `Sentinel ${s.ip}:${s.port} did not re-discover within ${timeoutS} s after SENTINEL RESET: ${pending.join('; ')}`}
      await sleep(250)
    }
  }
  return {status: 'changed', msg: `SENTINEL RESET ${r.reset.join(', ')} on ${up.length} Sentinel(s), one at a time, each re-discovered (${((Date.now() - t0) / 1000).toFixed(1)} s)`}
}

export const redisSentinelRetireModule = definePlayModule({
  name: 'redis_sentinel_retire',
  description: 'Sentinels stop watching removed groups (SENTINEL REMOVE) and forget removed replicas and Sentinels (SENTINEL RESET, one Sentinel at a time)',
  args: {plan: {type: 'dict', required: true}, phase: {type: 'string', choices: ['unwatch', 'forget'], required: true}, password: {type: 'string', secret: true}, timeout: {type: 'int', default: 60}},
  async runItem(ctx, args) {
    const password = args.password === undefined || args.password === null || args.password === '' ? undefined : String(args.password)
    if (password) ctx.secrets.add(password)
    const r = ((args.plan as Record<string, unknown> | undefined)?.retiring ?? NO_RETIRE) as RetireData
    const layout = layoutOf(ctx)
    return args.phase === 'unwatch' ? unwatch(ctx, layout, r) : forget(ctx, layout, r, password, Number(args.timeout ?? 60))
  },
})
