// redis_failover: before the instances task starts dead instances again, hand every dead
// master's slots to one of its live replicas, so the master comes back as a replica instead
// of as the empty owner of its slots (which would make its replica resync from it and
// flush the only good copy). Runs once per play, from the controller, before "Instances running".
//
// Parameters:
//   password         string  requirepass of the instances (secret)
//   allow_data_loss  bool    start a dead master that has no live replica and no data on disk
//                            (its slots come back empty) instead of refusing (default false)
//   timeout          int     seconds to wait for each promotion (default 30)
//
// Dead: the port refuses connections and the pid of its own pidfile is gone or lives in
// another network namespace (a reused pid where hosts share one PID namespace) (read on its
// host, one script per host with dead ports, along with what is on disk). Decisions are
// src/redis/handover.ts: a dead master with a live replica is failed over first, the
// replica with the highest replication offset chosen, by CLUSTER FAILOVER FORCE (safe: its
// master is known dead), TAKEOVER when no majority of masters is alive to vote or FORCE
// got no votes; one election at a time. One without a live replica is started only when its
// data survives on disk (AOF, an RDB baremetal saved at its last stop, an RDB with save
// points) or it never reached cluster_state:ok; else the task fails, naming the slots, and
// no instance is started. A healthy re-run costs one CLUSTER INFO per node.
//
// Example:
//   - name: Dead masters failed over before they restart
//     redis_failover:
//       password: "{{ redis_password }}"

import {setTimeout as sleep} from 'node:timers/promises'
import {ClusterError} from '../../errors.js'
import {clusterNodesFromHosts} from '../../redis/inventory-nodes.js'
import {describeRedisError, infoAll, NodePool} from '../../redis/pool.js'
import {planHandover, type DataFacts, type DownNode, type Handover} from '../../redis/handover.js'
import {countSlots, nodeAddr, parseClusterInfo, parseClusterNodes, parseSlotRanges, rangesToString, type NodeEntry} from '../../redis/nodes.js'
import type {ClusterNode} from '../../redis/plan.js'
import {expandHome, mask, quote} from '../../shell.js'
import {portList} from './instances.js'
import type {GroupHost, ItemResult, ModuleContext, PlayHost} from '../types.js'
import {definePlayModule} from '../define.js'

// Per dead port: "@@ PORT running aof rdb saved savepoints log everok SLOTS…".
export function dataFactsScript(dir: string, ports: readonly number[]): string {
  return [
    `dir=${quote(dir)}`,
    `for p in ${ports.join(' ')}; do`,
    '  d="$dir/$p"; conf="$d/redis.conf.applied"; [ -f "$conf" ] || conf="$d/redis.conf"',
    '  run=0; pid=""; [ -f "$d/redis.pid" ] && read -r pid < "$d/redis.pid" 2>/dev/null',
    '  case "$pid" in ""|*[!0-9]*) ;; *) if kill -0 "$pid" 2>/dev/null && ! grep -q ") [ZX] " "/proc/$pid/stat" 2>/dev/null && { [ ! -e "/proc/$pid/ns/net" ] || [ "/proc/$pid/ns/net" -ef "/proc/$$/ns/net" ]; }; then',
    '    case "$(tr "\\000" " " < "/proc/$pid/cmdline" 2>/dev/null) " in *redis-server*":$p "*) run=1;; esac; fi;; esac',
    `  ao=$(sed -n 's/^[[:space:]]*appendonly[[:space:]][[:space:]]*//p' "$conf" 2>/dev/null | tail -n 1 | tr -d '"[:space:]')`,
    '  aof=0; [ "$ao" = yes ] && { [ -e "$d/appendonly.aof" ] || [ -d "$d/appendonlydir" ]; } && aof=1',
    '  rdb=0; [ -s "$d/dump.rdb" ] && rdb=1',
    '  saved=0; [ -f "$d/saved-by-baremetal" ] && saved=1',
    `  sp=0; grep -Eq '^[[:space:]]*save[[:space:]]+"?[0-9]+[[:space:]]+[0-9]+' "$conf" 2>/dev/null && sp=1`,
    '  lg=0; ok=0; if [ -f "$d/redis.log" ]; then lg=1; grep -q "Cluster state changed: ok" "$d/redis.log" && ok=1; fi',
    `  slots=$(awk '$3 ~ /myself/ && $3 ~ /master/ { for (i = 9; i <= NF; i++) if ($i !~ /^\\[/) printf "%s,", $i }' "$d/nodes.conf" 2>/dev/null)`,
    '  echo "@@ $p $run $aof $rdb $saved $sp $lg $ok ${slots%,}"',
    'done',
    'exit 0',
    '',
  ].join('\n')
}

export function parseDataFacts(stdout: string): Map<number, DataFacts> {
  const out = new Map<number, DataFacts>()
  for (const line of stdout.split('\n')) {
    const m = /^@@ (\d+) ([01]) ([01]) ([01]) ([01]) ([01]) ([01]) ([01]) ?(\S*)$/.exec(line.trim())
    if (!m) continue
    const b = (i: number) => m[i] === '1'
    let ownSlots: DataFacts['ownSlots'] = []
    try {
      ownSlots = parseSlotRanges(m[9] ?? '')
    } catch {
      ownSlots = []
    }
    out.set(Number(m[1]), {running: b(2), aof: b(3), rdb: b(4), saved: b(5), savePoints: b(6), log: b(7), everOk: b(8), ownSlots})
  }
  return out
}

const REFUSED = /ECONNREFUSED|connection refused/i

/** The host's redis_cluster_dir, ~ expanded, without a trailing slash. */
const clusterDir = (ph: PlayHost) => expandHome(String(ph.vars.redis_cluster_dir ?? '~/redis_cluster'), ph.facts.home).replace(/(.)\/+$/, '$1')

interface World {
  nodes: ClusterNode[]
  down: Array<DownNode & {node: ClusterNode}>
  live: Set<string>
  entries: NodeEntry[]
}

// Who answers, who refuses, and one live member's view of the cluster.
async function observe(pool: NodePool, hosts: readonly GroupHost[], playHosts: ReadonlySet<string>): Promise<World> {
  const nodes = await clusterNodesFromHosts(hosts)
  const infos = await infoAll(pool, nodes, 64)
  const live = new Set<string>()
  const down: World['down'] = []
  let member: ClusterNode | undefined
  infos.forEach((info, i) => {
    const n = nodes[i]
    if (typeof info !== 'string') {
      live.add(nodeAddr(n))
      if (!member && Number(info.cluster_known_nodes) > 1) member = n
    } else if (REFUSED.test(info) && playHosts.has(n.host)) down.push({addr: nodeAddr(n), host: n.host, node: n})
  })
  const entries = member && down.length > 0 ? parseClusterNodes(String(await pool.run(member, (r) => r.call('CLUSTER', 'NODES')))) : []
  return {nodes, down, live, entries}
}

async function hostFacts(ctx: ModuleContext, playHosts: readonly PlayHost[], down: World['down']): Promise<Map<string, DataFacts>> {
  const out = new Map<string, DataFacts>()
  await Promise.all(
    playHosts.map(async (ph) => {
      const mine = down.filter((d) => d.host === ph.host)
      if (mine.length === 0) return
      const dir = clusterDir(ph)
      const r = await ph.transport.exec('sh -s', {
        stdin: dataFactsScript(
          dir,
          mine.map((d) => d.node.port),
        ),
        timeoutMs: 60_000,
      })
      if (r.failed) throw new ClusterError(`${ph.host}: cannot read the dead instances' directories (exit ${r.exitCode}): ${mask(r.stderr, ctx.secrets).trim().slice(-300)}`, {where: {host: ph.host}})
      const facts = parseDataFacts(r.stdout)
      for (const d of mine) {
        const f = facts.get(d.node.port)
        if (f) out.set(d.addr, f)
      }
    }),
  )
  return out
}

// The dead master's own nodes.conf, rewritten before it starts: itself a replica of the
// promoted node, owning no slot; the promoted node a master. Its epoch alone would make it
// give up its slots to the newer claim, but that is a race against gossip that an old
// master loaded with a stale dump.rdb can win; a node that starts as a replica cannot
// claim anything. Prints "@@ PORT demoted" when the file was rewritten.
export function demoteScript(dir: string, port: number, masterId: string): string {
  if (!/^[0-9a-f]{40}$/.test(masterId)) throw new ClusterError(`not a node id: ${masterId}`)
  const f = quote(`${dir}/${port}/nodes.conf`)
  return [
    `f=${f}; [ -s "$f" ] || { echo "@@ ${port} nofile"; exit 0; }`,
    `awk -v m=${masterId} '`,
    '  NF >= 8 && $3 ~ /(^|,)myself(,|$)/ { print $1, $2, "myself,slave", m, $5, $6, $7, $8; next }',
    '  NF >= 8 && $1 == m { print $1, $2, "master", "-", $5, $6, $7, $8; next }',
    `  { print }' "$f" > "$f.bm-tmp" && mv -f "$f.bm-tmp" "$f" && echo "@@ ${port} demoted"`,
    'exit 0',
    '',
  ].join('\n')
}

async function demoteOnDisk(ph: PlayHost, port: number, masterId: string): Promise<void> {
  const dir = clusterDir(ph)
  const r = await ph.transport.exec('sh -s', {stdin: demoteScript(dir, port, masterId), timeoutMs: 30_000})
  if (r.failed || !/^@@ \d+ (demoted|nofile)$/m.test(r.stdout)) {
    throw new ClusterError(`${ph.host}:${port}: cannot rewrite nodes.conf to restart it as a replica (exit ${r.exitCode}): ${r.stderr.trim().slice(-300)}`, {where: {host: ph.host}})
  }
}

const roleOf = (text: unknown) => parseClusterInfo(String(text)).role

// Promote the live replica with the highest offset; FORCE, then TAKEOVER if no election won.
async function promote(pool: NodePool, h: Extract<Handover, {action: 'failover'}>, byAddr: ReadonlyMap<string, ClusterNode>, timeoutMs: number, password?: string): Promise<{to: string; how: string}> {
  const offsets = await Promise.all(
    h.replicas.map((a) =>
      pool
        .run(byAddr.get(a)!, (r) => r.call('INFO', 'replication'))
        .then(
          (t) => Number(parseClusterInfo(String(t)).slave_repl_offset ?? -1),
          () => -1,
        ),
    ),
  )
  const best = h.replicas[offsets.indexOf(Math.max(...offsets))]
  const node = byAddr.get(best)!
  const modes = h.takeover ? ['TAKEOVER'] : ['FORCE', 'TAKEOVER']
  for (const mode of modes) {
    const already = await pool.run(node, (r) => r.call('INFO', 'replication')).then(roleOf, () => undefined)
    if (already === 'master') return {to: best, how: 'automatic failover'}
    await pool
      .run(node, (r) => r.call('CLUSTER', 'FAILOVER', mode))
      .catch((error) => {
        throw new ClusterError(`${best}: CLUSTER FAILOVER ${mode} failed: ${describeRedisError(error, password)}`, {where: {host: node.host}})
      })
    const deadline = Date.now() + (mode === 'FORCE' ? Math.min(timeoutMs, 8000) : timeoutMs)
    while (Date.now() < deadline) {
      if ((await pool.run(node, (r) => r.call('INFO', 'replication')).then(roleOf, () => undefined)) === 'master') return {to: best, how: mode}
      await sleep(100)
    }
  }
  throw new ClusterError(`${best} was not promoted in place of the dead master ${h.addr} (slots ${rangesToString(h.slots)})`, {
    where: {host: h.host},
    hint: 'check that a majority of masters is up and the bus ports are open, then run up again; the dead master is not started meanwhile',
  })
}

function describePlan(plan: readonly Handover[], check: boolean): string[] {
  const would = check ? 'would ' : ''
  const lines: string[] = []
  const fo = plan.filter((h) => h.action === 'failover')
  if (fo.length)
    lines.push(
      `${would}fail over ${fo.length} dead master(s) to a live replica before restarting them (they rejoin as replicas): ${fo.map((h) => `${h.addr} (${countSlots(h.slots)} slots)`).join(', ')}`,
    )
  for (const h of plan) if (h.action === 'refuse' || h.action === 'start-empty') lines.push(`${h.addr} (host ${h.host}): ${h.why}`)
  return lines
}

async function runItem(ctx: ModuleContext, args: Record<string, unknown>): Promise<ItemResult> {
  const password = args.password === undefined || args.password === null || args.password === '' ? undefined : String(args.password)
  if (password) ctx.secrets.add(password)
  const timeoutMs = Number(args.timeout ?? 30) * 1000
  const hosts = ctx.groupHosts && ctx.groupHosts.length > 0 ? ctx.groupHosts : ctx.playHosts
  const pool = new NodePool({password, connectTimeoutMs: 3000})
  try {
    const world = await observe(pool, hosts, new Set(ctx.playHosts.map((h) => h.host)))
    if (world.down.length === 0) return {status: 'ok', msg: 'no instance down'}
    const data = await hostFacts(ctx, ctx.playHosts, world.down)
    const dead = world.down.filter((d) => data.get(d.addr)?.running !== true)
    const plan = planHandover(dead, world.live, world.entries, data, args.allow_data_loss === true)
    const resultData = {plan: plan.map((h) => ({addr: h.addr, host: h.host, action: h.action, ...(h.action === 'start' ? {} : {slots: rangesToString(h.slots)})}))}
    const refused = plan.filter((h) => h.action === 'refuse')
    const lines = describePlan(plan, ctx.check)
    if (refused.length > 0) {
      return {
        status: 'failed',
        data: resultData,
        msg: [
          `refusing to start ${refused.length} dead master(s) as the empty owners of their slots; no instance started:`,
          ...lines,
          'fix: bring back the host or data of that master (its AOF/RDB), or run up --allow-data-loss to serve those slots empty',
        ].join('\n'),
      }
    }
    const empty = plan.filter((h): h is Extract<Handover, {why: string; slots: unknown}> => h.action === 'start-empty')
    const warnings = empty.map((h) => `--allow-data-loss: ${h.addr} (host ${h.host}) starts as the empty owner of slots ${rangesToString(h.slots)}: their keys are lost`)
    const failovers = plan.filter((h): h is Extract<Handover, {action: 'failover'}> => h.action === 'failover')
    if (failovers.length === 0 && empty.length === 0)
      return {
        status: 'ok',
        msg: `${dead.length} instance(s) down (${portList(dead.map((d) => d.node.port))}), safe to start: ${[...new Set(plan.map((h) => (h as {why?: string}).why))].join('; ')}`,
        data: resultData,
      }
    if (ctx.check) return {status: 'changed', msg: lines.join('\n'), data: resultData, warnings}
    const byAddr = new Map(world.nodes.map((n) => [nodeAddr(n), n]))
    const done: string[] = []
    // One election at a time: two at once compete for the masters' one vote per epoch.
    for (const h of failovers) {
      const p = await promote(pool, h, byAddr, timeoutMs, password)
      const id = world.entries.find((e) => e.addr === p.to)?.id
      const ph = ctx.playHosts.find((x) => x.host === h.host)
      if (id && ph) await demoteOnDisk(ph, byAddr.get(h.addr)!.port, id)
      done.push(`${h.addr} → ${p.to} (${p.how})`)
      ctx.log(`redis_failover: ${h.addr} (dead, ${countSlots(h.slots)} slots) → ${p.to} promoted by ${p.how}`)
    }
    const msg = [failovers.length ? `failed over ${failovers.length} dead master(s) before restarting them (they rejoin as replicas): ${done.join(', ')}` : '', ...warnings].filter(Boolean).join('\n')
    return {status: 'changed', msg, data: {...resultData, failovers: done}, warnings}
  } finally {
    await pool.closeAll()
  }
}

export const redisFailoverModule = definePlayModule({
  name: 'redis_failover',
  description: 'Before dead instances restart: fail each dead master over to a live replica, or refuse to start it as the empty owner of its slots',
  args: {
    password: {type: 'string', secret: true},
    allow_data_loss: {type: 'bool', default: false},
    timeout: {type: 'int', default: 30},
  },
  runItem,
})
