// The Sentinel topology's modules (playbooks/redis-sentinel.yml):
//
// redis_sentinel_plan (once per play): the layout (src/redis/sentinel-layout.ts) and who is
//   the master of each group now (the Sentinels' view confirmed by ROLE, else the live
//   instances', else the layout's), waiting up to `timeout` seconds for the Sentinels to
//   promote a replica of a dead master; refuses (fails the play) where the only way on
//   would start a dead master as a master. Changes nothing. Register it: the other tasks
//   read each host's ports, roles and whether it runs a Sentinel from it.
//     password  string  requirepass of the instances (secret)
//     timeout   int     seconds to wait for a promotion (default 60)
//
// redis_sentinel_config (per host): each data instance's redis.conf and the Sentinel's
//   sentinel.conf, mode 0600, compared by what they declare (src/redis/sentinel-conf.ts),
//   never by bytes. An instance that is not running gets the plan's role written before it
//   starts; a running one keeps the role it has (Sentinel's). A drifted running instance
//   gets CONFIG SET, a drifted running Sentinel SENTINEL SET / MONITOR and FLUSHCONFIG.
//     plan          dict  the registered redis_sentinel_plan
//     src           path  the data instances' template; sentinel_src: the Sentinel's
//     dir           path  parent of the per-port directories (the Sentinel's: dir/<sentinel port>)
//     password      string
//
// redis_sentinel_ready (once per play): waits until every group's master has its replicas
//   connected and every Sentinel names it, knows its replicas and the other Sentinels.
//     plan, password, timeout (seconds, default 60)

import {posix} from 'node:path'
import {readFile} from 'node:fs/promises'
import {BaremetalError, ClusterError, InputError, hintText} from '../../errors.js'
import {renderText} from '../../play/template.js'
import {expandHome, mask, quote} from '../../shell.js'
import {confDrift, monitorMoved, roleOf, withRole} from '../../redis/sentinel-conf.js'
import {planSentinelLayout, type LayoutHost, type SentinelLayout} from '../../redis/sentinel-layout.js'
import {configGet, configSet, connectedReplicas, liveGroups, sentinelCommand, sentinelMasterInfo} from '../../redis/sentinel-live.js'
import {decideGroup, type GroupDecision} from '../../redis/sentinel-roles.js'
import {FENCE as UPGRADE_FENCE, sentinelUpgradePreflight} from './sentinel-upgrade.js'
import {controllerPath} from '../copy.js'
import {definePlayModule} from '../define.js'
import type {ItemResult, ModuleContext, ModuleSpec, TaskItem} from '../types.js'
import {NO_RETIRE, retireOf} from './sentinel-retire.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const num = (v: unknown, d: number) => (v === undefined || v === null || v === '' ? d : Number(v))
const pw = (v: unknown) => (v === undefined || v === null || v === '' ? undefined : String(v))

/** The layout from the play's variables (any host's: they are the deployment's). */
export function layoutOf(ctx: ModuleContext): SentinelLayout {
  const v = ctx.vars
  const groups = (v.groups ?? {}) as Record<string, string[]>
  const all = ctx.groupHosts && ctx.groupHosts.length > 0 ? ctx.groupHosts : ctx.playHosts
  const byName = new Map(all.map((h) => [h.host, h]))
  const hostsOf = (names: string[]): LayoutHost[] =>
    names.flatMap((n) => {
      const h = byName.get(n)
      return h ? [{host: n, ip: String(h.vars.redis_bind ?? h.vars.ansible_host_ip ?? h.address)}] : []
    })
  const dataGroup = String(v.baremetal_group ?? 'redis')
  const data = hostsOf(groups[dataGroup] ?? all.map((h) => h.host))
  const sg = String(v.redis_sentinel_hosts_group ?? 'sentinel')
  const hg = String(v.redis_haproxy_hosts_group ?? 'haproxy')
  const quorum = v.redis_sentinel_quorum
  return planSentinelLayout({
    clusterName: String(v.redis_cluster_name),
    data,
    sentinels: groups[sg] ? hostsOf(groups[sg]) : data,
    haproxy: groups[hg] ? hostsOf(groups[hg]) : [],
    portStart: Number(v.redis_port_start),
    groups: num(v.redis_sentinel_groups, 1),
    replicas: num(v.redis_replicas, 0),
    sentinelPort: num(v.redis_sentinel_port, 26379),
    ...(quorum === undefined || quorum === null || quorum === '' ? {} : {quorum: Number(quorum)}),
    forceFewSentinels: v.redis_sentinel_force_few === true || /^(yes|true|on|1)$/i.test(String(v.redis_sentinel_force_few ?? '')),
    haproxyPortStart: num(v.redis_haproxy_port_start, Number(v.redis_port_start)),
    haproxyReadPortStart: num(v.redis_haproxy_read_port_start, 0),
  })
}

/** Per HAProxy host, the haproxy module's frontends: every group's write (and read) port, its members and the Sentinels. */
export function haproxyFrontends(layout: SentinelLayout): Array<Record<string, unknown>> {
  const sentinels = layout.sentinels.map((s) => `${s.ip}:${s.port}`)
  return layout.groups.map((g) => ({
    name: g.name,
    port: g.writePort,
    read_port: g.readPort ?? 0,
    servers: [g.master, ...g.replicas].map((m) => `${m.ip}:${g.port}`),
    sentinels,
  }))
}

// Before any host changes: a HAProxy host with neither the binary nor an installable
// package would fail half-way through up, after the data hosts were built and started.
const HAPROXY_PROBE = (bin: string, pkg: string) =>
  [
    `b=${quote(bin)}`,
    'if [ -n "$b" ]; then [ -x "$b" ] && echo "bin=$b"; else',
    '  f=$(command -v haproxy 2>/dev/null) || for f in /usr/sbin/haproxy /usr/local/sbin/haproxy; do [ -x "$f" ] && break; f=""; done',
    '  [ -n "$f" ] && echo "bin=$f"; fi',
    // apt only when there is no binary: a re-run on an installed host asks nothing more.
    `[ -n "$b$f" ] && [ -x "$b$f" ] || { command -v apt-cache >/dev/null 2>&1 && echo "candidate=$(apt-cache policy ${quote(pkg)} 2>/dev/null | sed -n 's/^ *Candidate: *//p' | head -n 1)"; }`,
    ':',
  ].join('\n')

async function refuseMissingHaproxy(ctx: ModuleContext, layout: SentinelLayout): Promise<void> {
  const missing = await haproxyMissing(ctx, layout)
  if (!missing.length) return
  throw new ClusterError(`nothing changed: HAProxy cannot be installed on ${missing.join('; ')}`, {
    hint: [
      'make the package installable there (a reachable Debian/Ubuntu mirror, or a local one, in the apt sources, then apt-get update), or install HAProxy 2.0+ yourself (redis_haproxy_bin: its path)',
      `or deploy without HAProxy: remove the ${String(ctx.vars.redis_haproxy_hosts_group ?? 'haproxy')} group from the inventory`,
    ],
  })
}

async function haproxyMissing(ctx: ModuleContext, layout: SentinelLayout): Promise<string[]> {
  const want = new Set(layout.haproxy.map((h) => h.host))
  const out: string[] = []
  await Promise.all(
    ctx.playHosts
      .filter((h) => want.has(h.host))
      .map(async (h) => {
        const bin = String(h.vars.redis_haproxy_bin ?? '')
        const pkg = String(h.vars.redis_haproxy_package ?? 'haproxy') || 'haproxy'
        const r = await h.transport.exec('sh -s', {stdin: HAPROXY_PROBE(bin, pkg), timeoutMs: 60_000})
        if (/^bin=./m.test(r.stdout)) return
        const cand = /^candidate=(.*)$/m.exec(r.stdout)?.[1]?.trim() ?? ''
        if (cand && cand !== '(none)') return
        out.push(
          `${h.host}: no haproxy binary${bin ? ` at ${bin}` : ' in PATH, /usr/sbin or /usr/local/sbin'} and the ${pkg} package has no install candidate${cand ? '' : ' (apt-cache knows no such package)'}`,
        )
      }),
  )
  return out.sort()
}

/** Decide every group; "wait" ones are asked again until `deadline`. */
async function decideAll(ctx: ModuleContext, layout: SentinelLayout, password: string | undefined, deadline: number): Promise<Map<string, GroupDecision>> {
  for (;;) {
    const live = await liveGroups(layout, password)
    const out = new Map(layout.groups.map((g) => [g.name, decideGroup(g, live.get(g.name)!)]))
    const waiting = [...out.values()].filter((d) => d.kind === 'wait')
    if (waiting.length === 0 || ctx.check || Date.now() >= deadline) return out
    ctx.log(`waiting for the Sentinels: ${waiting[0].why}`)
    await sleep(1000)
  }
}

// HAProxy's frontends are open to the same sources as the data ports (controller, fleet,
// redis_allowed_clients), in the same per-cluster chain: one rule list per host.
function haproxyPlan(layout: SentinelLayout, hosts: Record<string, HostPlan>) {
  const frontends = haproxyFrontends(layout)
  const haproxy: Record<string, {frontends: Array<Record<string, unknown>>}> = {}
  const firewall: Record<string, string[]> = Object.fromEntries(Object.entries(hosts).map(([n, h]) => [n, h.firewall!]))
  const ports = layout.groups.flatMap((g) => [g.writePort, ...(g.readPort ? [g.readPort] : [])]).map(String)
  for (const h of layout.haproxy) {
    haproxy[h.host] = {frontends}
    firewall[h.host] = [...new Set([...(firewall[h.host] ?? []), ...ports])]
  }
  return {haproxy, firewall}
}

interface HostPlan {
  ports: number[]
  sentinel: boolean
  firewall?: string[]
  /** Per port: running now, the role it gets if it starts ("ip port" or ''), the role it runs with. */
  instances: Record<string, {running: boolean; replicaof: string; live: string}>
}

async function planItem(ctx: ModuleContext, args: Record<string, unknown>): Promise<ItemResult> {
  const password = pw(args.password)
  if (password) ctx.secrets.add(password)
  const layout = layoutOf(ctx)
  const timeout = num(args.timeout, 60)
  // live: false (down): the layout alone, nothing asked.
  const decisions =
    args.live === false ? new Map(layout.groups.map((g) => [g.name, decideGroup(g, {sentinelSays: [], members: new Map()})])) : await decideAll(ctx, layout, password, Date.now() + timeout * 1000)
  if (args.live !== false) await refuseMissingHaproxy(ctx, layout)
  // What the inventory no longer lists (before the generic refusal: a removed member that is the live master gets its own).
  // down (live: false) still asks the Sentinels what runs past the inventory, to stop it too: everything goes, nothing to refuse.
  const retiring =
    args.live === false
      ? args.retired === true
        ? await retireOf(ctx, layout, password, {allowDataLoss: true, down: true})
        : NO_RETIRE
      : await retireOf(ctx, layout, password, {allowDataLoss: args.allow_data_loss === true})
  const bad = [...decisions.values()].filter((d) => d.kind !== 'ok')
  if (bad.length && !ctx.check) {
    throw new ClusterError(`nothing started: ${bad.map((d) => d.why).join('; ')}${bad.some((d) => d.kind === 'wait') ? ` (waited ${timeout} s)` : ''}`, {
      hint: [
        'a dead master is never started as a master while its group has a replica that can be promoted',
        'check that a quorum of Sentinels runs (status), or promote a replica (SENTINEL FAILOVER), then run up again',
      ],
    })
  }
  // A version upgrade that would be refused fails here, before the build.
  const upgrade = args.live === false ? undefined : await sentinelUpgradePreflight(ctx, layout, password)
  const live = args.live === false ? new Map() : await liveGroups(layout, password)
  const hosts: Record<string, HostPlan> = {}
  for (const [host, ports] of layout.portsByHost) hosts[host] = {ports, sentinel: false, instances: {}}
  for (const s of layout.sentinels) hosts[s.host] = {...(hosts[s.host] ?? {ports: [], instances: {}}), sentinel: true}
  // Each host's rules guard exactly the ports it runs: another port on it stays as it was.
  for (const h of Object.values(hosts)) h.firewall = [...h.ports, ...(h.sentinel ? [layout.sentinels[0].port] : [])].map(String)
  const {haproxy, firewall} = haproxyPlan(layout, hosts)
  const monitors: Array<{name: string; ip: string; port: number}> = []
  for (const g of layout.groups) {
    const d = decisions.get(g.name)!
    const master = d.kind === 'ok' ? d.master : `${g.master.ip}:${g.port}`
    monitors.push({name: g.name, ip: master.slice(0, master.lastIndexOf(':')), port: g.port})
    for (const h of [g.master, ...g.replicas]) {
      const a = `${h.ip}:${g.port}`
      const m = live.get(g.name)?.members.get(a)
      const planned = d.kind === 'ok' ? d.replicaof.get(a)! : ''
      const running = m?.role === 'slave' ? m.masterAddr!.replace(/:(\d+)$/, ' $1') : ''
      hosts[h.host].instances[String(g.port)] = {running: m?.alive === true, replicaof: planned, live: m?.alive ? running : planned}
    }
  }
  const fleet = [...new Set([...layout.portsByHost.keys(), ...layout.sentinels.map((s) => s.host), ...layout.haproxy.map((h) => h.host)])]
  const ipOf = new Map([...layout.sentinels, ...layout.haproxy, ...layout.groups.flatMap((g) => [g.master, ...g.replicas])].map((h) => [h.host, h.ip]))
  const masters = monitors.map((m) => `${m.name} → ${m.ip}:${m.port}`)
  return {
    status: 'ok',
    msg: `${layout.groups.length} group(s), ${layout.sentinels.length} Sentinel(s), quorum ${layout.quorum}: ${masters.join(', ')}${bad.length ? `; would wait: ${bad.map((d) => d.why).join('; ')}` : ''}${retiring.lines.length ? `; ${retiring.lines.join('; ')}` : ''}${upgrade ? `; ${upgrade}` : ''}`,
    data: {hosts, haproxy, firewall, monitors, quorum: layout.quorum, fleet_ips: fleet.map((h) => ipOf.get(h)), retire: retiring.hosts, retiring},
  }
}

const planSpec = definePlayModule({
  name: 'redis_sentinel_plan',
  description: "The Sentinel topology's layout and each group's current master (Sentinels' view, confirmed by ROLE); waits for a pending promotion, refuses to start a dead master",
  args: {
    password: {type: 'string', secret: true},
    timeout: {type: 'int', default: 60},
    live: {type: 'bool', default: true},
    allow_data_loss: {type: 'bool', default: false},
    retired: {type: 'bool', default: false},
  },
  runItem: planItem,
})

// A refusal only the live deployment shows (a removal that would lose keys or the live
// master) is bad input like the inventory's own: thrown, so that the run exits 5 with
// nothing changed, where any other failure is this task's.
export const redisSentinelPlanModule: ModuleSpec = {
  ...planSpec,
  async run(ctx, items) {
    const out: ItemResult[] = []
    for (const item of items) {
      try {
        out.push(await planItem(ctx, item.args))
      } catch (error) {
        if (error instanceof InputError) throw error
        const e = error instanceof BaremetalError ? error : new ClusterError(error instanceof Error ? error.message : String(error), {cause: error})
        out.push({status: 'failed', msg: mask(`${e.message}${e.hint ? ` (hint: ${hintText(e.hint)})` : ''}`, ctx.secrets), data: {error: e.toJSON()}})
      }
    }
    return out
  },
}

interface FileWant {
  path: string
  /** What we declare (rendered), without any role line. */
  declared: string
  /** The whole file we write when we write it. */
  text: (existing: string | undefined) => string
  /** Must be written even when the declared lines match (a role to set before a start). */
  force: (existing: string) => boolean
  running: boolean
  port: number
  sentinel: boolean
}

const READ = (paths: string[]) => paths.map((p) => `echo "@@F ${p}"; if [ -f ${quote(p)} ]; then stat -c '@@M %a' ${quote(p)}; cat ${quote(p)}; echo; else echo "@@MISSING"; fi`).join('\n')

function parseRead(stdout: string, modes: Map<string, string>): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>()
  let cur: string | undefined
  let lines: string[] = []
  const flush = () => {
    if (cur !== undefined) out.set(cur, lines.length === 1 && lines[0] === '@@MISSING' ? undefined : lines.join('\n'))
  }
  for (const l of stdout.split('\n')) {
    if (l.startsWith('@@F ')) {
      flush()
      cur = l.slice(4)
      lines = []
    } else if (cur !== undefined && lines.length === 0 && l.startsWith('@@M ')) modes.set(cur, l.slice(4))
    else lines.push(l)
  }
  flush()
  return out
}

async function wantsOf(ctx: ModuleContext, a: Record<string, unknown>, hp: HostPlan, plan: Record<string, unknown>, dir: string): Promise<FileWant[]> {
  const src = await readFile(controllerPath(ctx, String(a.src), 'templates'), 'utf8')
  const out: FileWant[] = []
  for (const port of hp.ports) {
    const inst = hp.instances[String(port)]
    const idir = `${dir}/${port}`
    const declared = renderText(src, {...ctx.vars, item: port, redis_instance_dir: idir}, {file: String(a.src)})
    const role = inst.running ? inst.live : inst.replicaof
    out.push({path: `${idir}/redis.conf`, declared, text: () => withRole(declared, role), force: (e) => !inst.running && roleOf(e) !== role, running: inst.running, port, sentinel: false})
  }
  if (hp.sentinel) {
    const sport = Number(ctx.vars.redis_sentinel_port ?? 26379)
    const sdir = `${dir}/${sport}`
    const ssrc = await readFile(controllerPath(ctx, String(a.sentinel_src), 'templates'), 'utf8')
    const vars = {...ctx.vars, redis_sentinel_dir: sdir, redis_sentinel_monitors: plan.monitors, redis_sentinel_quorum_value: plan.quorum}
    const declared = renderText(ssrc, vars, {file: String(a.sentinel_src)})
    // A stopped Sentinel whose file watches a master that is no longer one starts afresh
    // from the current masters (a running one follows the others by itself).
    const up = (await sentinelCommand(String(ctx.vars.redis_bind ?? ctx.address), sport, ['PING'])).ok
    out.push({path: `${sdir}/sentinel.conf`, declared, text: () => declared, force: (e) => !up && monitorMoved(declared, e).length > 0, running: up, port: sport, sentinel: true})
  }
  return out
}

// A running Sentinel keeps its state in memory and rewrites its file from it: drift in the
// per-master settings goes in live (SENTINEL SET, MONITOR for a group it does not know).
async function repairSentinel(ip: string, port: number, drift: string[], plan: Record<string, unknown>, v: Record<string, unknown>): Promise<string | undefined> {
  const monitors = plan.monitors as Array<{name: string; ip: string; port: number}>
  for (const key of drift) {
    const [, sub, name] = key.split(' ')
    const m = monitors.find((x) => x.name === name)
    if (!m) return `${key} differs and cannot be set on a running Sentinel (stop it, or run down and up)`
    const set: Record<string, string> = {
      monitor: String(plan.quorum),
      'down-after-milliseconds': String(v.redis_sentinel_down_after_ms),
      'failover-timeout': String(v.redis_sentinel_failover_timeout),
      'parallel-syncs': String(v.redis_sentinel_parallel_syncs),
      'auth-pass': String(v.redis_password ?? ''),
    }
    const known = await sentinelCommand(ip, port, ['SENTINEL', 'SET', name, 'quorum', String(plan.quorum)])
    if (!known.ok && /No such master/i.test(known.reply)) {
      const r = await sentinelCommand(ip, port, ['SENTINEL', 'MONITOR', name, m.ip, String(m.port), String(plan.quorum)])
      if (!r.ok) return `SENTINEL MONITOR ${name}: ${r.reply}`
    }
    const args = sub === 'monitor' ? ['quorum', set.monitor] : [sub, set[sub]]
    const r = await sentinelCommand(ip, port, ['SENTINEL', 'SET', name, ...args])
    if (!r.ok) return `SENTINEL SET ${name} ${args[0]}: ${r.reply}`
  }
  const f = await sentinelCommand(ip, port, ['SENTINEL', 'FLUSHCONFIG'])
  return f.ok ? undefined : `SENTINEL FLUSHCONFIG: ${f.reply}`
}

// A running data instance: the drifted directives Redis can change live, by CONFIG SET.
async function repairInstance(ip: string, port: number, drift: string[], declared: string, password: string | undefined): Promise<string[]> {
  const notes: string[] = []
  const lines = new Map(
    declared.split('\n').map((l) => [
      l.trim().split(/\s+/)[0]?.toLowerCase(),
      l
        .trim()
        .replace(/^\S+\s*/, '')
        .replace(/^"(.*)"$/, '$1'),
    ]),
  )
  for (const key of drift) {
    if (['port', 'bind', 'daemonize', 'dir', 'pidfile', 'logfile'].includes(key)) {
      notes.push(`${key} takes effect at the next restart`)
      continue
    }
    // The fence of an interrupted upgrade: this old instance replicates an upgraded master
    // and must not sync from it (it cannot load a newer RDB); the upgrade restarts it on
    // the new binary with the declared masterauth.
    if (key === 'masterauth' && (await configGet(ip, port, password, 'masterauth'))?.startsWith(UPGRADE_FENCE)) {
      notes.push('masterauth fenced by an interrupted upgrade: set at its restart on the new version')
      continue
    }
    const r = await configSet(ip, port, password, key, lines.get(key) ?? '')
    if (!r.ok) notes.push(`CONFIG SET ${key}: ${r.reply}`)
  }
  return notes
}

async function configItem(ctx: ModuleContext, item: TaskItem): Promise<ItemResult> {
  const a = item.args
  const plan = (a.plan ?? {}) as Record<string, unknown>
  const hp = (plan.hosts as Record<string, HostPlan> | undefined)?.[ctx.host]
  if (!hp) return {status: 'ok', msg: 'no instance or Sentinel of this deployment on this host'}
  const password = pw(a.password)
  const dir = expandHome(String(a.dir ?? '~/redis_cluster'), ctx.facts.home).replace(/(.)\/+$/, '$1')
  const wants = await wantsOf(ctx, a, hp, plan, dir)
  const read = await ctx.transport.exec('sh -s', {stdin: READ(wants.map((w) => w.path)), timeoutMs: 60_000})
  if (read.failed) return {status: 'failed', msg: `reading the config files: ${read.stderr.trim()}`}
  const modes = new Map<string, string>()
  const have = parseRead(read.stdout, modes)
  const ip = String(ctx.vars.redis_bind ?? ctx.address)
  const writes: Array<{w: FileWant; why: string}> = []
  const notes: string[] = []
  for (const w of wants) {
    const e = have.get(w.path)
    if (e === undefined) {
      writes.push({w, why: 'new'})
      continue
    }
    const drift = confDrift(w.declared, e, posix.dirname(w.path))
    if (drift.length && w.sentinel && !ctx.check && w.running) {
      const err = await repairSentinel(ip, w.port, drift, plan, ctx.vars)
      if (err) return {status: 'failed', msg: mask(`Sentinel ${ip}:${w.port}: ${err}`, ctx.secrets)}
      notes.push(`Sentinel ${w.port}: ${drift.join(', ')} set live`)
      continue
    }
    if (drift.length) {
      writes.push({w, why: drift.join(', ')})
      if (w.running && !ctx.check) notes.push(...(await repairInstance(ip, w.port, drift, w.declared, password)).map((n) => `${w.port}: ${n}`))
    } else if (w.force(e)) writes.push({w, why: w.sentinel ? 'masters moved while it was down' : 'role before start'})
    else if (modes.get(w.path) !== '600') writes.push({w, why: `mode ${modes.get(w.path) ?? '?'}`})
  }
  if (!writes.length && !notes.length) return {status: 'ok', msg: `${wants.length} config file(s) as declared`}
  const what = writes.map(({w, why}) => `${posix.basename(posix.dirname(w.path))}/${posix.basename(w.path)} (${why})`)
  if (ctx.check) return {status: 'changed', msg: `would write ${what.join(', ')}`}
  if (writes.length) {
    const dirs = [...new Set(writes.map(({w}) => posix.dirname(w.path)))]
    const mk = await ctx.transport.exec(`mkdir -p ${dirs.map(quote).join(' ')} && chmod 750 ${dirs.map(quote).join(' ')}`, {timeoutMs: 30_000})
    if (mk.failed) return {status: 'failed', msg: `mkdir: ${mk.stderr.trim()}`}
    const content = (w: FileWant, why: string) => (why.startsWith('mode ') ? have.get(w.path)! : w.text(have.get(w.path)))
    await ctx.transport.upload(writes.map(({w, why}) => ({path: w.path, content: content(w, why), mode: 0o600})))
  }
  return {status: 'changed', msg: mask([what.length ? `wrote ${what.join(', ')}` : '', ...notes].filter(Boolean).join('; '), ctx.secrets)}
}

export const redisSentinelConfigModule: ModuleSpec = {
  name: 'redis_sentinel_config',
  description: "Each data instance's redis.conf and the Sentinel's sentinel.conf (0600), compared by what they declare; roles written only before a start",
  args: {
    plan: {type: 'dict', required: true},
    src: {type: 'path', required: true, controllerPath: true},
    sentinel_src: {type: 'path', required: true, controllerPath: true},
    dir: {type: 'path', default: '~/redis_cluster'},
    password: {type: 'string', secret: true},
  },
  checkMode: true,
  async run(ctx, items) {
    const out: ItemResult[] = []
    for (const item of items) {
      try {
        out.push(await configItem(ctx, item))
      } catch (error) {
        out.push({status: 'failed', msg: mask(error instanceof Error ? error.message : String(error), ctx.secrets)})
      }
    }
    return out
  },
}

// Every group: the master the Sentinels name answers ROLE master with all its replicas
// connected, and every Sentinel knows it, its replicas and the other Sentinels.
export async function groupPending(layout: SentinelLayout, password: string | undefined, replicas: number): Promise<string[]> {
  const pending: string[] = []
  await Promise.all(
    layout.groups.map(async (g) => {
      const infos = await Promise.all(layout.sentinels.map((s) => sentinelMasterInfo(s.ip, s.port, g.name)))
      const first = infos.find((i) => i !== undefined)
      if (!first) return pending.push(`${g.name}: no Sentinel knows it`)
      const link = await connectedReplicas(first.ip, first.port, password)
      if (link === undefined) return pending.push(`${g.name}: ${first.ip}:${first.port} is not a master`)
      if (link < replicas) return pending.push(`${g.name}: ${link} of ${replicas} replica(s) connected`)
      const off = infos.findIndex((i) => !i || i.ip !== first.ip || i.port !== first.port || i.replicas < replicas || i.otherSentinels < layout.sentinels.length - 1 || !/^master$/.test(i.flags))
      if (off >= 0) pending.push(`${g.name}: Sentinel ${layout.sentinels[off].ip}:${layout.sentinels[off].port} does not agree yet (${JSON.stringify(infos[off] ?? 'no answer')})`)
    }),
  )
  return pending
}

async function readyItem(ctx: ModuleContext, args: Record<string, unknown>): Promise<ItemResult> {
  const password = pw(args.password)
  if (password) ctx.secrets.add(password)
  if (ctx.check) return {status: 'ok', msg: 'check mode: not waited for'}
  const layout = layoutOf(ctx)
  const replicas = num(ctx.vars.redis_replicas, 0)
  const deadline = Date.now() + num(args.timeout, 60) * 1000
  const t0 = Date.now()
  for (;;) {
    const pending = await groupPending(layout, password, replicas)
    if (!pending.length) return {status: 'ok', msg: `${layout.groups.length} group(s) replicating, ${layout.sentinels.length} Sentinels agree (${((Date.now() - t0) / 1000).toFixed(1)} s)`}
    if (Date.now() >= deadline) return {status: 'failed', msg: `not ready within ${num(args.timeout, 60)} s: ${pending.slice(0, 5).join('; ')}`}
    await sleep(500)
  }
}

export const redisSentinelReadyModule = definePlayModule({
  name: 'redis_sentinel_ready',
  description: 'Wait until every Sentinel group replicates and all Sentinels agree on its master, replicas and each other',
  args: {password: {type: 'string', secret: true}, timeout: {type: 'int', default: 60}},
  runItem: readyItem,
})
