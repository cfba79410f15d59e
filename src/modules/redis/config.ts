// redis_config: make the running instances use the redis.conf `up` renders now. Runs once
// per play, over every host: a changed directive is applied live with CONFIG SET (one
// parameter per call, as 5.0.3 requires) where Redis allows it, otherwise the instance is
// restarted, one at a time per shard, replicas first, a master only after a manual
// failover to one of its replicas. Place it right after the instances are started.
//
// Parameters:
//   src      template file on the controller (relative to the playbook), rendered per port
//            with the host's variables and item = port, as the template task does (required)
//   timeout  seconds each restart step may take to come back (default 60 + 2 × cluster-node-timeout)
//   allow_data_loss  restart a master that cannot hand its role to an in-sync replica and has
//            no persistence, instead of refusing (default false)
//
// Per host, like redis_cluster, the instances come from the host's variables: ports
// redis_port_start … + redis_count - 1, directories under redis_cluster_dir, binaries in
// redis_bin_dir, address redis_bind (else the host's), password redis_password.
//
// AOF turned on by a restart would lose keys: Redis (5.0 and 7.x) started with appendonly yes
// and no AOF loads an empty one, never dump.rdb. So a port whose change turns AOF on gets it
// live first (CONFIG SET appendonly yes, then its rewrite waited for: INFO persistence
// aof_enabled:1, aof_rewrite_in_progress:0, aof_rewrite_scheduled:0), and only then is it
// restarted; redis.conf.applied keeps its old text meanwhile (the restart is still pending).
// A port whose AOF does not come on live is not restarted, and the task fails naming it.
//
// How it knows what a running instance uses: redis_instances copies redis.conf to
// redis.conf.applied (mode 0600) whenever it starts an instance, and this module rewrites
// that snapshot after a live change. One round trip per host reads the snapshots' hashes
// (and the text of those that differ from the rendered config); unchanged instances cost
// nothing more. An instance without a snapshot (started by an older baremetal) gets one
// recorded from its redis.conf. Check mode reads, plans and reports: the directives, the
// CONFIG SETs, the restarts and the failovers it would do.
//
// Example:
//   - name: Instances use the current configuration
//     redis_config:
//       src: ../templates/redis.conf.hbs

import {readFile} from 'node:fs/promises'
import {resolveIp, pickBindAddress} from '../../redis/inventory-nodes.js'
import {cliCommandLine, describeChange, planConfig, planRolling, requirepassOf, type ConfigPlan, type RollingStep} from '../../redis/config.js'
import {nodeAddr} from '../../redis/nodes.js'
import {inspectNode, rollingRestart, type RollingTarget} from '../../redis/rolling.js'
import {renderText} from '../../play/template.js'
import {expandHome, mask, quote} from '../../shell.js'
import {controllerPath} from '../copy.js'
import {aofOnScript, instancesScript, parseInstanceReport, portList, summarizeInstances} from './instances.js'
import {errorMessage, sha256, str} from '../remote.js'
import type {ItemResult, ModuleContext, PlayHost} from '../types.js'
import {definePlayModule} from '../define.js'

interface HostSetup {
  ph: PlayHost
  ports: number[]
  dir: string
  bin: string
  ip: string
  password?: string
  /** Rendered config per port. */
  wanted: Map<number, string>
}

/** What the facts script said about one port. */
export interface PortFacts {
  state: 'same' | 'diff' | 'none'
  running: boolean
  /** The snapshot's text (only when it differs from the rendered config). */
  applied?: string
}

// "@@ PORT same|diff|none RUNNING [base64]" per port; anything else is noise.
export function parseConfigFacts(stdout: string): Map<number, PortFacts> {
  const out = new Map<number, PortFacts>()
  for (const line of stdout.split('\n')) {
    const m = /^@@ (\d+) (same|diff|none) ([01])(?: (\S*))?$/.exec(line.trim())
    if (!m) continue
    out.set(Number(m[1]), {state: m[2] as PortFacts['state'], running: m[3] === '1', applied: m[4] !== undefined ? Buffer.from(m[4], 'base64').toString('utf8') : undefined})
  }
  return out
}

// One script per host: hashes of every snapshot in one sha256sum, pids read with shell
// builtins, the text of the differing snapshots base64-encoded.
export function factsScript(dir: string, want: Map<number, string>): string {
  const ports = [...want.keys()]
  return [
    `cd ${quote(dir)} 2>/dev/null || exit 0`,
    `T=$(mktemp) || exit 1; trap 'rm -f "$T"' EXIT`,
    `sha256sum -- ${ports.map((p) => `${p}/redis.conf.applied`).join(' ')} > "$T" 2>/dev/null`,
    // The wanted list comes first (never empty), so NR == FNR tells the two inputs apart.
    `awk 'NR == FNR { want[$1] = $2; order[n++] = $1; next } { split($2, a, "/"); have[a[1]] = $1 } END { for (i = 0; i < n; i++) { p = order[i]; print p, (!(p in have) ? "none" : have[p] == want[p] ? "same" : "diff") } }' - "$T" <<'EOF' |`,
    ...ports.map((p) => `${p} ${want.get(p)}`),
    'EOF',
    'while read p st; do',
    '  run=0; pid=""',
    '  [ -f "$p/redis.pid" ] && read pid < "$p/redis.pid" 2>/dev/null',
    '  case "$pid" in ""|*[!0-9]*) ;; *) kill -0 "$pid" 2>/dev/null && run=1;; esac',
    '  if [ "$st" = diff ]; then echo "@@ $p diff $run $(base64 -w0 < "$p/redis.conf.applied")"; else echo "@@ $p $st $run"; fi',
    'done',
    'exit 0',
    '',
  ].join('\n')
}

/** A port's planned work: live CONFIG SETs, or a restart (with why). */
export interface PortWork {
  port: number
  plan: ConfigPlan
  appliedPassword?: string
}

// Live changes for all ports of a host in one script: one redis-cli session per port
// (the commands on stdin, the password in REDISCLI_AUTH), then the snapshot rewritten
// only if every CONFIG SET said OK. Prints "@@ PORT applied|refused" and the replies.
export function liveScript(h: {dir: string; bin: string; ip: string; password?: string}, work: Array<PortWork & {wanted: string}>): string {
  const lines = [`dir=${quote(h.dir)}; CLI=${quote(`${h.bin}/redis-cli`)}; [ -x "$CLI" ] || CLI=$(command -v redis-cli)`, 'TO=""; command -v timeout >/dev/null 2>&1 && TO="timeout 10"']
  for (const w of work) {
    const cmds = w.plan.live.map((c) => cliCommandLine(['CONFIG', 'SET', c.name, c.value ?? '']))
    const pw = w.appliedPassword ?? h.password ?? ''
    lines.push(
      cmds.length === 0 ? 'out=' : `out=$(printf '%s\\n' ${cmds.map(quote).join(' ')} | ${pw ? `REDISCLI_AUTH=${quote(pw)} ` : ''}$TO "$CLI" -h ${quote(h.ip)} -p ${w.port} 2>&1)`,
      `if [ "$(printf '%s\\n' "$out" | grep -c '^OK$')" = ${cmds.length} ]; then`,
      `  f="$dir/${w.port}/redis.conf.applied"; printf '%s' ${quote(Buffer.from(w.wanted).toString('base64'))} | base64 -d > "$f.tmp" && chmod 600 "$f.tmp" && mv -f "$f.tmp" "$f" && echo "@@ ${w.port} applied" || echo "@@ ${w.port} refused cannot write $f"`,
      `else echo "@@ ${w.port} refused"; fi`,
      `printf '%s\\n' "$out" | sed 's/^/| /'`,
    )
  }
  lines.push('exit 0', '')
  return lines.join('\n')
}

// Snapshots for instances started before snapshots existed: their redis.conf is the best record.
function recordScript(dir: string, ports: number[]): string {
  return (
    ports
      .map(
        (p) =>
          `f=${quote(`${dir}/${p}`)}; [ -f "$f/redis.conf" ] && cp -f "$f/redis.conf" "$f/redis.conf.applied.tmp" && chmod 600 "$f/redis.conf.applied.tmp" && mv -f "$f/redis.conf.applied.tmp" "$f/redis.conf.applied"`,
      )
      .join('\n') + '\nexit 0\n'
  )
}

function parseLive(stdout: string): Map<number, {ok: boolean; replies: string[]}> {
  const out = new Map<number, {ok: boolean; replies: string[]}>()
  let cur: {ok: boolean; replies: string[]} | undefined
  for (const line of stdout.split('\n')) {
    const m = /^@@ (\d+) (applied|refused)/.exec(line)
    if (m) {
      cur = {ok: m[2] === 'applied', replies: []}
      out.set(Number(m[1]), cur)
    } else if (cur && line.startsWith('| ')) cur.replies.push(line.slice(2))
  }
  return out
}

function intVar(v: unknown, dflt: number): number {
  if (v === undefined || v === null || v === '') return dflt
  const n = Number(v)
  return Number.isInteger(n) ? n : dflt
}

async function setupHost(ctx: ModuleContext, ph: PlayHost, src: string, source: string): Promise<HostSetup> {
  const v = ph.vars
  const start = intVar(v.redis_port_start, 6379)
  const count = intVar(v.redis_count, 100)
  const ports = Array.from({length: count}, (_, i) => start + i)
  const home = ph.facts?.home ?? ctx.facts.home
  const dir = expandHome(String(v.redis_cluster_dir ?? '~/redis_cluster'), home).replace(/(.)\/+$/, '$1')
  const bin = expandHome(String(v.redis_bin_dir ?? '~/redis/bin'), home).replace(/(.)\/+$/, '$1')
  const ip = await resolveIp(pickBindAddress(v.redis_bind) ?? ph.address, ph.host)
  const password = v.redis_password === undefined || v.redis_password === null || v.redis_password === '' ? undefined : String(v.redis_password)
  const wanted = new Map<number, string>()
  for (const p of ports) wanted.set(p, renderText(source, {...v, item: p}, {file: src}))
  return {ph, ports, dir, bin, ip, password, wanted}
}

/** Hosts' ports as "h1 7000-7003, h2 7000" from "host:port" keys. */
function byHost(keys: readonly string[]): string {
  const m = new Map<string, number[]>()
  for (const k of keys) {
    const i = k.lastIndexOf(':')
    const list = m.get(k.slice(0, i)) ?? []
    list.push(Number(k.slice(i + 1)))
    m.set(k.slice(0, i), list)
  }
  return [...m].map(([h, ports]) => `${h} ${portList(ports)}`).join(', ')
}

// Change lists grouped by their text, so 300 instances with the same change are one line.
function groupChanges(entries: Array<{key: string; text: string}>): string[] {
  const g = new Map<string, string[]>()
  for (const e of entries) g.set(e.text, [...(g.get(e.text) ?? []), e.key])
  return [...g].map(([text, keys]) => `${text} on ${keys.length} instance(s): ${byHost(keys)}`)
}

function describeSteps(plan: RollingStep[][], hostOf: Map<string, string>): {restarts: number; failovers: string[]; saved: string[]; refused: string[]} {
  const steps = plan.flat()
  const failovers = steps
    .filter((s): s is Extract<RollingStep, {kind: 'failover'}> => s.kind === 'failover')
    .map((s) => `${s.master} → ${s.replica}${hostOf.has(s.replica) ? ` (${hostOf.get(s.replica)})` : ''}`)
  const saved = steps.filter((s) => s.kind === 'restart' && s.save).map((s) => (s as {addr: string}).addr)
  const refused = steps.filter((s): s is Extract<RollingStep, {kind: 'refuse'}> => s.kind === 'refuse').map((s) => `${s.addr}: ${s.why}`)
  return {restarts: steps.filter((s) => s.kind === 'restart').length, failovers, saved, refused}
}

/** The change turns AOF on: a restart must not do that (it would start from an empty AOF). */
export function turnsAofOn(plan: ConfigPlan): boolean {
  return plan.changes.some((c) => c.name === 'appendonly' && (c.after ?? '').toLowerCase() === 'yes' && (c.before ?? 'no').toLowerCase() !== 'yes')
}

type Restart = {s: HostSetup; work: PortWork}

// AOF on, live, for the ports to restart whose change turns it on: one round trip per host
// and password, all its ports at once. Returns the ports where it did not come on, and why.
async function aofBeforeRestart(ctx: ModuleContext, list: Restart[]): Promise<Array<Restart & {why: string}>> {
  const groups = new Map<string, Restart[]>()
  for (const r of list.filter((x) => turnsAofOn(x.work.plan))) {
    const k = `${r.s.ph.host}\n${r.work.appliedPassword ?? r.s.password ?? ''}`
    groups.set(k, [...(groups.get(k) ?? []), r])
  }
  const failed: Array<Restart & {why: string}> = []
  await Promise.all(
    [...groups.values()].map(async (g) => {
      const s = g[0].s
      const ports = g.map((r) => r.work.port)
      const opts = {
        dir: s.dir,
        bin: s.bin,
        bind: s.ip,
        waitSeconds: intVar(s.ph.vars.redis_start_timeout, 60),
        password: g[0].work.appliedPassword ?? s.password,
        remove: false,
        keepData: false,
        save: false,
      }
      const r = await s.ph.transport.exec('sh -s', {stdin: aofOnScript(ports, opts), timeoutMs: (11 * opts.waitSeconds + 60) * 1000})
      const reports = parseInstanceReport(mask(r.stdout, ctx.secrets))
      for (const x of g) {
        const rep = reports.get(x.work.port)
        if (rep?.states.includes('aofon')) continue
        const why = rep ? rep.reasons[rep.states.lastIndexOf('failed')] || 'failed' : `no answer (exit ${r.exitCode}${r.timedOut ? ', timed out' : ''})`
        failed.push({...x, why})
      }
    }),
  )
  return failed
}

type LiveWork = {s: HostSetup; work: PortWork & {wanted: string}}
interface PortPlans {
  live: LiveWork[]
  restart: Restart[]
  unrecorded: Array<{s: HostSetup; port: number}>
}

const key = (s: HostSetup, port: number) => `${s.ph.host}:${port}`

async function readTemplate(ctx: ModuleContext, args: Record<string, unknown>): Promise<{src: string; source: string} | ItemResult> {
  const src = str(args.src)
  if (!src) return {status: 'failed', msg: 'redis_config: src (the redis.conf template) is required'}
  const file = controllerPath(ctx, src)
  try {
    return {src, source: await readFile(file, 'utf8')}
  } catch (error) {
    return {status: 'failed', msg: `redis_config: cannot read template ${file}: ${errorMessage(error)}`}
  }
}

// Facts: one round trip per host.
async function readFacts(ctx: ModuleContext, setups: HostSetup[]): Promise<Array<ReturnType<typeof parseConfigFacts>> | ItemResult> {
  const problems: string[] = []
  const facts = await Promise.all(
    setups.map(async (s) => {
      const want = new Map([...s.wanted].map(([p, text]) => [p, sha256(text)]))
      const r = await s.ph.transport.exec('sh -s', {stdin: factsScript(s.dir, want), timeoutMs: 60_000 + 100 * s.ports.length})
      if (r.failed) problems.push(`${s.ph.host}: cannot read the applied configs (exit ${r.exitCode}): ${mask(r.stderr, ctx.secrets).trim().slice(-300)}`)
      return parseConfigFacts(r.stdout)
    }),
  )
  if (problems.length) return {status: 'failed', msg: problems.join('\n')}
  return facts
}

// Pure plan per running port.
function planPorts(ctx: ModuleContext, setups: HostSetup[], facts: Array<ReturnType<typeof parseConfigFacts>>): PortPlans {
  const live: LiveWork[] = []
  const restart: Restart[] = []
  const unrecorded: Array<{s: HostSetup; port: number}> = []
  setups.forEach((s, i) => {
    for (const port of s.ports) {
      const f = facts[i].get(port)
      if (!f || !f.running) continue // not running: it gets the new config when it starts
      if (f.state === 'none') unrecorded.push({s, port})
      if (f.state !== 'diff' || f.applied === undefined) continue
      const plan = planConfig(f.applied, s.wanted.get(port)!)
      const appliedPassword = requirepassOf(f.applied)
      if (appliedPassword) ctx.secrets.add(appliedPassword)
      if (plan.changes.length === 0) {
        // Only comments or spacing differ: the snapshot is refreshed along with the live ones.
        live.push({s, work: {port, plan, appliedPassword, wanted: s.wanted.get(port)!}})
      } else if (plan.restart.length > 0) restart.push({s, work: {port, plan, appliedPassword}})
      else live.push({s, work: {port, plan, appliedPassword, wanted: s.wanted.get(port)!}})
    }
  })
  return {live, restart, unrecorded}
}

async function checkResult(ctx: ModuleContext, {live, restart, unrecorded}: PortPlans, data: Record<string, unknown>, hostOf: Map<string, string>): Promise<ItemResult> {
  const liveText = live.filter((l) => l.work.plan.live.length > 0).map((l) => ({key: key(l.s, l.work.port), text: `CONFIG SET ${l.work.plan.live.map(describeChange).join(', ')}`}))
  if (!live.some((l) => l.work.plan.live.length > 0) && restart.length === 0) {
    return {
      status: 'ok',
      msg: unrecorded.length
        ? `no change known; would record the applied config of ${unrecorded.length} instance(s) started without one`
        : 'every running instance already uses its rendered configuration',
      data,
    }
  }
  const lines = groupChanges(liveText).map((l) => `would ${l}`)
  if (restart.length) {
    const nodes = await Promise.all(restart.map((r) => inspectNode({ip: r.s.ip, port: r.work.port, passwords: [r.s.password, r.work.appliedPassword]})))
    const plan = planRolling(nodes)
    const d = describeSteps(plan, hostOf)
    data.rolling = plan
    lines.push(...groupChanges(restartTextFor(restart)).map((l) => `would ${l}`))
    lines.push(
      `would restart ${d.restarts} instance(s) one at a time per shard, replicas first${d.failovers.length ? `; CLUSTER FAILOVER before restarting ${d.failovers.length} master(s): ${d.failovers.join(', ')}` : ''}`,
    )
    if (d.saved.length) lines.push(`would stop ${d.saved.length} master(s) without an in-sync replica by SHUTDOWN SAVE (their keys come back from that RDB): ${d.saved.join(', ')}`)
    if (d.refused.length) lines.push(`would refuse ${d.refused.length}: ${d.refused.join('; ')}`)
  }
  const aofFirst = restart.filter((r) => turnsAofOn(r.work.plan))
  if (aofFirst.length)
    lines.push(...groupChanges(aofFirst.map((r) => ({key: key(r.s, r.work.port), text: 'would turn AOF on live (CONFIG SET appendonly yes, its rewrite waited for) before the restart'}))))
  return {status: 'changed', msg: mask(lines.join('\n'), ctx.secrets), data}
}

// Live changes: one round trip per host; a refused CONFIG SET turns into a restart.
async function applyLive(ctx: ModuleContext, setups: HostSetup[], {live, restart}: PortPlans): Promise<string[]> {
  const refusedNotes: string[] = []
  await Promise.all(
    setups.map(async (s) => {
      const mine = live.filter((l) => l.s === s).map((l) => l.work)
      if (mine.length === 0) return
      const r = await s.ph.transport.exec('sh -s', {stdin: liveScript(s, mine), timeoutMs: 60_000 + 1000 * mine.length})
      const res = parseLive(mask(r.stdout, ctx.secrets))
      for (const w of mine) {
        const x = res.get(w.port)
        if (x?.ok) continue
        const why = x ? x.replies.filter((l) => l && l !== 'OK').join('; ') : `no answer (exit ${r.exitCode})`
        refusedNotes.push(`${s.ph.host}:${w.port} refused CONFIG SET (${why || 'not applied'}): restarting it instead`)
        restart.push({s, work: w})
      }
    }),
  )
  return refusedNotes
}

// AOF on live before a restart that turns it on; those it did not come on for stay down.
async function turnAofOnFirst(ctx: ModuleContext, restart: Restart[], data: Record<string, unknown>, lines: string[]): Promise<boolean> {
  let failed = false
  const aofFirst = restart.filter((r) => turnsAofOn(r.work.plan))
  if (aofFirst.length) {
    const notOn = await aofBeforeRestart(ctx, aofFirst)
    const isNotOn = (r: Restart) => notOn.some((f) => f.s === r.s && f.work.port === r.work.port)
    restart.splice(0, restart.length, ...restart.filter((r) => !isNotOn(r)))
    const on = aofFirst.filter((r) => !isNotOn(r))
    data.aof_first = on.map((r) => ({host: r.s.ph.host, port: r.work.port}))
    if (on.length) lines.push(...groupChanges(on.map((r) => ({key: key(r.s, r.work.port), text: 'AOF turned on live before the restart'}))))
    if (notOn.length) {
      failed = true
      lines.unshift(
        `${notOn.length} instance(s) not restarted: AOF did not come on live, and a restart with appendonly yes would start from an empty AOF and lose its keys (fix what the reason says, then run up again):`,
        ...notOn.map((f) => `  ${f.s.ph.host}:${f.work.port}: ${f.why}`),
      )
    }
  }
  return failed
}

async function restartAll(
  ctx: ModuleContext,
  args: Record<string, unknown>,
  setups: HostSetup[],
  restart: Restart[],
  data: Record<string, unknown>,
  lines: string[],
  hostOf: Map<string, string>,
): Promise<boolean> {
  let failed = false
  if (restart.length) {
    const nodeTimeout = Math.max(...setups.map((s) => intVar(s.ph.vars.redis_cluster_node_timeout, 15000)))
    const stepSec = args.timeout === undefined || args.timeout === null || Number(args.timeout) === 0 ? 60 + (2 * nodeTimeout) / 1000 : Number(args.timeout)
    const targets: RollingTarget[] = restart.map(({s, work}) => ({
      host: s.ph.host,
      ip: s.ip,
      port: work.port,
      passwords: [s.password, work.appliedPassword],
      restart: async ({save}) => {
        const opts = {dir: s.dir, bin: s.bin, bind: s.ip, waitSeconds: intVar(s.ph.vars.redis_start_timeout, 60), password: work.appliedPassword ?? s.password, remove: false, keepData: false, save}
        // The script's own limits: a save (10 × wait), the exit, the start, an AOF rewrite (10 × wait).
        const r = await s.ph.transport.exec('sh -s', {stdin: instancesScript('restarted', [work.port], opts), timeoutMs: (22 * opts.waitSeconds + 60) * 1000})
        const res = summarizeInstances('restarted', [work.port], parseInstanceReport(mask(r.stdout, ctx.secrets)))
        return {ok: res.status !== 'failed', msg: res.msg ?? ''}
      },
    }))
    const rr = await rollingRestart(targets, {stepTimeoutMs: stepSec * 1000, allowDataLoss: args.allow_data_loss === true, log: (m) => ctx.log(`redis_config: ${m}`), signal: ctx.signal})
    data.rolling = rr.plan
    data.restarted = rr.restarted
    data.failovers = rr.failovers
    const restartedKeys = restart.filter(({s, work}) => rr.restarted.includes(nodeAddr({ip: s.ip, port: work.port})))
    if (restartedKeys.length) {
      lines.push(...groupChanges(restartTextFor(restartedKeys)).map((l) => l.replace(/^restart for/, 'restarted for')))
      lines.push(
        `restarted ${rr.restarted.length} instance(s) one at a time per shard, replicas first${rr.failovers.length ? `; ${rr.failovers.length} master(s) handed over first by CLUSTER FAILOVER: ${rr.failovers.map((f) => `${f.from} → ${f.to}`).join(', ')}` : ''}`,
      )
    }
    if (rr.failed.length) {
      failed = true
      lines.unshift(`${rr.failed.length} instance(s) could not be restarted:`, ...rr.failed.map((f) => `  ${f.addr} (${hostOf.get(f.addr) ?? '?'}): ${f.msg}`))
    }
  }
  return failed
}

async function runItem(ctx: ModuleContext, args: Record<string, unknown>): Promise<ItemResult> {
  const tpl = await readTemplate(ctx, args)
  if ('status' in tpl) return tpl
  const hosts = ctx.playHosts.length > 0 ? ctx.playHosts : [{host: ctx.host, address: ctx.address, vars: ctx.vars, facts: ctx.facts, transport: ctx.transport}]
  const setups = await Promise.all(hosts.map((ph) => setupHost(ctx, ph, tpl.src, tpl.source)))
  for (const s of setups) if (s.password) ctx.secrets.add(s.password)
  const facts = await readFacts(ctx, setups)
  if (!Array.isArray(facts)) return facts
  const plans = planPorts(ctx, setups, facts)
  const {live, restart, unrecorded} = plans
  const hostOf = new Map(setups.flatMap((s) => s.ports.map((p) => [nodeAddr({ip: s.ip, port: p}), s.ph.host] as const)))
  const data: Record<string, unknown> = {
    live: live.filter((l) => l.work.plan.live.length > 0).map((l) => ({host: l.s.ph.host, port: l.work.port, params: l.work.plan.live.map((c) => c.name)})),
    restart: restart.map((r) => ({host: r.s.ph.host, port: r.work.port, params: r.work.plan.restart.map((c) => c.name)})),
  }

  if (ctx.check) return checkResult(ctx, plans, data, hostOf)

  // Snapshots missing: record them, no change to any instance (status stays ok).
  await Promise.all(
    setups.map(async (s) => {
      const ports = unrecorded.filter((u) => u.s === s).map((u) => u.port)
      if (ports.length) await s.ph.transport.exec('sh -s', {stdin: recordScript(s.dir, ports), timeoutMs: 60_000})
    }),
  )

  const refusedNotes = await applyLive(ctx, setups, plans)
  const liveDone = live.filter((l) => l.work.plan.live.length > 0 && !restart.some((r) => r.s === l.s && r.work.port === l.work.port))
  data.live = liveDone.map((l) => ({host: l.s.ph.host, port: l.work.port, params: l.work.plan.live.map((c) => c.name)}))
  data.restart = restart.map((r) => ({host: r.s.ph.host, port: r.work.port, params: r.work.plan.changes.map((c) => c.name)}))

  const lines: string[] = []
  if (liveDone.length) lines.push(...groupChanges(liveDone.map((l) => ({key: key(l.s, l.work.port), text: `changed live: CONFIG SET ${l.work.plan.live.map(describeChange).join(', ')}`}))))
  let failed = await turnAofOnFirst(ctx, restart, data, lines)
  if (await restartAll(ctx, args, setups, restart, data, lines, hostOf)) failed = true
  lines.push(...refusedNotes)
  if (failed) return {status: 'failed', msg: mask(lines.join('\n'), ctx.secrets), data}
  if (liveDone.length === 0 && restart.length === 0) {
    const refreshed = live.length ? ` (snapshot of ${live.length} refreshed: only comments or spacing differed)` : ''
    return {status: 'ok', msg: `every running instance already uses its rendered configuration${refreshed}`, data}
  }
  return {status: 'changed', msg: mask(lines.join('\n'), ctx.secrets), data}
}

function restartTextFor(list: Array<{s: HostSetup; work: PortWork}>): Array<{key: string; text: string}> {
  return list.map((r) => ({
    key: `${r.s.ph.host}:${r.work.port}`,
    text: r.work.plan.restart.length
      ? `restart for ${r.work.plan.restart.map(describeChange).join(', ')}${r.work.plan.live.length ? ` (with ${r.work.plan.live.map((c) => c.name).join(', ')})` : ''}`
      : `restart for ${r.work.plan.live.map(describeChange).join(', ')} (refused live)`,
  }))
}

export const redisConfigModule = definePlayModule({
  name: 'redis_config',
  description: 'Apply changed redis.conf directives to running instances: CONFIG SET where Redis allows it, else a rolling restart (replicas first, masters after a manual failover)',
  args: {
    src: {type: 'path', required: true, controllerPath: true},
    timeout: {type: 'int'},
    allow_data_loss: {type: 'bool', default: false},
  },
  prefix: 'redis_config: ',
  runItem,
})
