#!/usr/bin/env node
// Scale: as many real gossiping nodes as this machine carries, and the 1000-master
// reference shape on simulated hosts.
//   up        10 hosts × 20 ports (200 masters): `up` to cluster_state:ok, the re-run, and
//             formation alone vs `redis-cli --cluster create` on the same nodes (alternating)
//   sweep     200 → 250 nodes on the same 10 hosts: where each tool stops converging within
//             --sweep-limit seconds, at cluster-node-timeout 5000 and 15000
//   plan      `up --check` against 10 hosts × 100 ports answered by simulated nodes
//             (bench/lib/sim-redis.mjs, no daemons): the plan for 1000 masters, the commands
//             and round trips it needs; then `up --tags cluster` forming those 1000 simulated
//             nodes; controller CPU and peak memory for both, and the planner alone
//
//   node bench/scale.mjs [--only up,sweep,plan] [--hosts 10] [--ports 20] [--runs 3]
//        [--sweep 200,220,240,250] [--timeouts 5000,15000] [--sweep-limit 120]
//
// Never more than --max-nodes (250) redis-server on the machine, everyone's counted; the
// sweep stops early when the kernel's TCP memory reaches its pressure threshold.
import {spawn} from 'node:child_process'
import {mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {cpus, totalmem} from 'node:os'
import {join} from 'node:path'
import {parseArgs} from 'node:util'
import {loadavg, measure, median} from './lib/measure.mjs'
import {configSetAll, nodesOf, redisCliCreate, resetNodes, shutdownAll, stillUp, waitClusterOk} from './lib/redis.mjs'
import {fmtMb, fmtRatio, fmtS, gitRevision, printTable} from './lib/report.mjs'
import {BENCH, baremetal, ensurePackages, fleetOptions, log, openFleet, redisSource, scrubHosts, tcpMemory, writeInventories} from './lib/tools.mjs'

const {values: opt} = parseArgs({
  options: {
    only: {type: 'string', default: 'up,sweep,plan'},
    ...fleetOptions({hosts: '10', ports: '20'}),
    sweep: {type: 'string', default: '200,220,240,250'},
    timeouts: {type: 'string', default: '5000,15000'},
    'sweep-limit': {type: 'string', default: '120'},
    'plan-ports': {type: 'string', default: '100'},
  },
})
const ONLY = new Set(opt.only.split(','))
const H = Number(opt.hosts)
const P = Number(opt.ports)
const RUNS = Number(opt.runs)
const SWEEP = opt.sweep
  .split(',')
  .map(Number)
  .filter((n) => n % H === 0)
const TIMEOUTS = opt.timeouts.split(',').map(Number)
const LIMIT = Number(opt['sweep-limit'])
const MAX = Number(opt['max-nodes'])

ensurePackages()
const src = redisSource()
const maxN = Math.max(H * P, ...(ONLY.has('sweep') ? SWEEP : []))
const {fleet, hosts, others} = await openFleet({hosts: H, nodes: maxN, maxNodes: MAX, fleet: opt.fleet})
// One build for all hosts (in this machine's shared /var): the build is not what scale measures.
const BUILD = `/var/cache/baremetal-bench-build/redis-${src.version}`
const shared = {redis_src_dir: `${BUILD}/src`, redis_bin_dir: `${BUILD}/bin`}
const sims = []
let active = []
let cleaning = false
const cleanup = async () => {
  if (cleaning) return
  cleaning = true
  for (const s of sims)
    try {
      process.kill(s.pid, 'SIGTERM')
    } catch {}
  await shutdownAll(active).catch(() => {})
  if (!opt.fleet) await fleet.destroy()
}
process.on('SIGINT', () => {
  log('interrupted: cleaning up')
  cleanup().finally(() => process.exit(130))
})

const out = {
  benchmark: 'scale',
  date: new Date().toISOString(),
  revision: gitRevision(),
  machine: {cores: cpus().length, cpu: cpus()[0]?.model, memGb: Math.round(totalmem() / 2 ** 30)},
  redis: src.version,
  hosts: H,
  portsPerHost: P,
  up: [],
  formation: [],
  sweep: [],
  plan: null,
}

try {
  if (ONLY.has('up') || ONLY.has('sweep')) {
    const inv = writeInventories(fleet, {count: P, hosts, oursVars: shared})
    log(`build once into ${BUILD} (h1), then the other hosts find it built`)
    const b = await baremetal(fleet, inv.ours, 'up', ['--tags', 'build', '--limit', hosts[0].name])
    const b2 = b.ok ? await baremetal(fleet, inv.ours, 'up', ['--tags', 'build']) : b
    if (!b2.ok) throw new Error(`build failed: ${(b2.stdout + b2.stderr).slice(-3000)}`)
    out.build = {s: b.wallS, rest: b2.wallS}

    if (ONLY.has('up')) await upSection(inv)
    if (ONLY.has('sweep')) await sweepSection()
  }
  if (ONLY.has('plan')) await planSection()
} catch (error) {
  out.error = String(error.stack ?? error)
  log(out.error)
} finally {
  await cleanup()
}

mkdirSync(join(BENCH, 'results'), {recursive: true})
const file = join(BENCH, 'results', 'scale.json')
writeFileSync(file, JSON.stringify(out, null, 2) + '\n')
report(out)
console.log(`\n(all figures: ${file})`)
process.exitCode = out.error ? 1 : 0

// 10 × 20: deploy, re-run, formation vs redis-cli, alternating.
async function upSection(inv) {
  const nodes = nodesOf(hosts, 6379, P)
  active = nodes
  const scrub = () => scrubHosts(fleet, hosts, inv.ours, nodes, {shutdownAll, stillUp})
  await scrub()
  for (let run = 1; run <= RUNS; run++) {
    const load = loadavg()[0]
    log(`up run ${run}: deploy ${H}×${P}`)
    const d = await baremetal(fleet, inv.ours, 'up')
    const w = d.ok ? await waitClusterOk(nodes, {timeoutS: 300}) : {ok: false, ms: 0, behind: []}
    const cluster = d.tasks.find((t) => t.module === 'redis_cluster')
    const rec = {
      run,
      load,
      deploy: {
        ok: d.ok && w.ok,
        s: d.wallS + w.ms / 1000,
        cpuS: d.userS + d.sysS,
        peakPssMb: d.peakPssKb / 1024,
        connections: d.connections,
        roundTrips: d.roundTrips,
        formS: (cluster?.data?.elapsedMs ?? NaN) / 1000,
        tasks: d.tasks.map((t) => ({task: t.task, host: t.host, s: t.durationMs / 1000, roundTrips: t.roundTrips})),
      },
    }
    if (!rec.deploy.ok) rec.deploy.error = (d.stdout + d.stderr).slice(-3000) + w.behind.slice(0, 5).join('\n')
    log(`up run ${run}: deploy ${fmtS(rec.deploy.s)} ok=${rec.deploy.ok}`)
    if (rec.deploy.ok) {
      const r = await baremetal(fleet, inv.ours, 'up')
      const w2 = await waitClusterOk(nodes, {timeoutS: 120})
      rec.rerun = {
        ok: r.ok && w2.ok,
        s: r.wallS + w2.ms / 1000,
        cpuS: r.userS + r.sysS,
        peakPssMb: r.peakPssKb / 1024,
        roundTrips: r.roundTrips,
        tasks: r.tasks.map((t) => ({task: t.task, host: t.host, s: t.durationMs / 1000})),
      }
      log(`up run ${run}: re-run ${fmtS(rec.rerun.s)} ok=${rec.rerun.ok}`)
      // Formation alone, same started nodes, reset to fresh between tools.
      for (const name of run % 2 ? ['redis-cli', 'baremetal'] : ['baremetal', 'redis-cli']) {
        await resetNodes(nodes)
        out.formation.push(await formOnce(name, nodes, inv.ours, {run}))
        log(`up run ${run}: formation ${name} ${fmtS(out.formation.at(-1).s)} ok=${out.formation.at(-1).ok}`)
      }
    }
    // The last formation left a formed cluster: stop all of it at once, for the record.
    if (rec.deploy.ok) {
      const t = Date.now()
      await shutdownAll(nodes)
      rec.parallelStopS = (Date.now() - t) / 1000
    }
    out.up.push(rec)
    await scrub()
  }
}

// One formation by one tool over fresh started nodes; time to cluster_state:ok everywhere.
async function formOnce(name, nodes, inventory, extra = {}, limitS = 300) {
  const load = loadavg()[0]
  let peakTcp = 0
  const tcpTimer = setInterval(() => {
    peakTcp = Math.max(peakTcp, tcpMemory().used)
  }, 500)
  try {
    if (name === 'redis-cli') {
      const c = await redisCliCreate(nodes, {timeoutS: limitS})
      return {
        ...extra,
        side: name,
        nodes: nodes.length,
        ok: c.ok,
        s: c.totalS,
        cliS: c.cliS,
        cpuS: c.userS + c.sysS,
        peakPssMb: c.peakPssKb / 1024,
        load,
        peakTcpPages: peakTcp,
        behind: c.ok ? undefined : summarizeBehind(c.behind),
        timedOut: c.timedOut,
      }
    }
    const f = await baremetal(fleet, inventory, 'up', ['--tags', 'cluster'], {timeoutS: limitS + 30, extraVars: {redis_count: nodes.length / H, redis_cluster_timeout: limitS}})
    const w = f.ok ? await waitClusterOk(nodes, {timeoutS: 60}) : {ok: false, ms: 0, behind: []}
    const task = f.tasks.find((t) => t.module === 'redis_cluster')
    return {
      ...extra,
      side: name,
      nodes: nodes.length,
      ok: f.ok && w.ok,
      s: f.wallS + w.ms / 1000,
      moduleS: (task?.data?.elapsedMs ?? NaN) / 1000,
      commands: task?.data?.commands,
      cpuS: f.userS + f.sysS,
      peakPssMb: f.peakPssKb / 1024,
      load,
      peakTcpPages: peakTcp,
      error: f.ok ? undefined : (task?.msg ?? f.stderr).slice(0, 600),
    }
  } finally {
    clearInterval(tcpTimer)
  }
}

function summarizeBehind(behind = []) {
  return behind.length ? `${behind.length} node(s) not ok, e.g. ${behind[0]}` : undefined
}

// 200 → 250 real nodes: start the most once, form growing prefixes, both node timeouts.
async function sweepSection() {
  const most = Math.max(...SWEEP)
  const per = most / H
  const inv = writeInventories(fleet, {count: per, hosts, oursVars: shared})
  const all = nodesOf(hosts, 6379, per)
  active = all
  log(`sweep: starting ${most} instances (${H} × ${per})`)
  const s = await baremetal(fleet, inv.ours, 'up', ['--skip-tags', 'cluster'])
  if (!s.ok) throw new Error(`could not start the sweep's instances: ${(s.stdout + s.stderr).slice(-3000)}`)
  const tcp = tcpMemory()
  let stop = false
  for (const n of SWEEP.sort((a, b) => a - b)) {
    const nodes = nodesOf(hosts, 6379, n / H)
    for (const timeout of TIMEOUTS) {
      for (const name of ['redis-cli', 'baremetal']) {
        if (stop) break
        if (others + n > MAX) {
          log(`sweep: skipping ${n}: over the ${MAX}-node budget`)
          continue
        }
        await resetNodes(all)
        await configSetAll(nodes, 'cluster-node-timeout', timeout)
        const rec = await formOnce(name, nodes, inv.ours, {nodeTimeoutMs: timeout}, LIMIT)
        out.sweep.push(rec)
        log(`sweep ${n} nodes, node-timeout ${timeout}: ${name} ${rec.ok ? fmtS(rec.s) : `no ok in ${LIMIT} s (${rec.behind ?? rec.error ?? ''})`}, TCP mem peak ${rec.peakTcpPages} pages`)
        if (rec.peakTcpPages >= tcp.pressure) {
          log(`sweep: TCP memory reached the pressure threshold (${tcp.pressure} pages): stopping the sweep`)
          stop = true
        }
      }
    }
  }
  await resetNodes(all).catch(() => {})
  await scrubHosts(fleet, hosts, inv.ours, all, {shutdownAll, stillUp})
}

// 1000 masters on simulated hosts: plan (check mode), then formation against the simulation.
async function planSection() {
  const PP = Number(opt['plan-ports'])
  const inv = writeInventories(fleet, {count: PP, hosts, oursVars: shared})
  const simNodes = nodesOf(hosts, 6379, PP)
  active = []
  const up = await stillUp(simNodes.filter((_, i) => i % PP === 0))
  if (up.length) throw new Error(`ports in use before simulating: ${up.join(', ')}`)
  const hostArg = hosts.map((h) => `${h.name}=${h.ip}`).join(',')
  const statsDir = join(fleet.dir, 'sim-stats')
  rmSync(statsDir, {recursive: true, force: true})
  mkdirSync(statsDir, {recursive: true})
  log(`plan: simulating ${hosts.length} × ${PP} nodes (no daemons)`)
  await Promise.all(
    hosts.map(
      (h) =>
        new Promise((resolve, reject) => {
          const child = spawn(
            'ip',
            [
              'netns',
              'exec',
              h.netns,
              process.execPath,
              join(BENCH, 'lib/sim-redis.mjs'),
              '--ip',
              h.ip,
              '--hosts',
              hostArg,
              '--port-start',
              '6379',
              '--count',
              String(PP),
              '--stats',
              join(statsDir, `${h.name}.json`),
            ],
            {stdio: ['ignore', 'pipe', 'inherit']},
          )
          sims.push(child)
          child.stdout.on('data', (d) => {
            if (String(d).includes('ready')) resolve()
          })
          child.once('exit', (code) => reject(new Error(`simulator on ${h.name} exited (${code})`)))
        }),
    ),
  )

  const cost = await measure(process.execPath, ['--expose-gc', join(BENCH, 'lib/plan-cost.mjs'), String(hosts.length), String(PP)])
  const planner = JSON.parse(cost.stdout)
  log(`plan: up --check against ${hosts.length * PP} simulated nodes`)
  const check = await baremetal(fleet, inv.ours, 'up', ['--check'])
  const ct = check.tasks.find((t) => t.module === 'redis_cluster')
  log(`plan: ${ct?.msg ?? check.stderr.slice(-500)}`)
  log('plan: up --tags cluster (forming the simulated nodes)')
  const form = await baremetal(fleet, inv.ours, 'up', ['--tags', 'cluster'], {extraVars: {redis_cluster_timeout: 600}})
  const ft = form.tasks.find((t) => t.module === 'redis_cluster')
  log(`plan: ${ft?.msg ?? form.stderr.slice(-500)}`)
  await new Promise((r) => setTimeout(r, 1500))
  const simStats = hosts.map((h) => {
    try {
      return JSON.parse(readFileSync(join(statsDir, `${h.name}.json`), 'utf8'))
    } catch {
      return {}
    }
  })
  const sum = (k) => simStats.reduce((a, s) => a + (s[k] ?? 0), 0)
  const perTask = new Map()
  for (const t of form.tasks) log(`plan: form ${t.task}: ${(t.durationMs / 1000).toFixed(2)} s ${t.status} ${t.msg.split('\n')[0].slice(0, 120)}`)
  for (const t of check.tasks) {
    const x = perTask.get(t.task) ?? {task: t.task, roundTrips: 0, hosts: 0, s: 0, status: new Set(), msg: t.msg}
    x.roundTrips += t.roundTrips ?? 0
    x.s = Math.max(x.s, t.durationMs / 1000)
    x.hosts++
    x.status.add(t.status)
    perTask.set(t.task, x)
  }
  out.plan = {
    nodes: hosts.length * PP,
    planner,
    check: {
      ok: check.ok,
      s: check.wallS,
      cpuS: check.userS + check.sysS,
      peakPssMb: check.peakPssKb / 1024,
      maxRssMb: check.maxRssKb / 1024,
      connections: check.connections,
      roundTrips: check.roundTrips,
      clusterMsg: ct?.msg,
      clusterCommands: ct?.data?.commands,
      tasks: [...perTask.values()].map((x) => ({...x, status: [...x.status].join('/'), msg: x.msg.split('\n')[0].slice(0, 160)})),
    },
    form: {
      ok: form.ok,
      s: form.wallS,
      moduleS: (ft?.data?.elapsedMs ?? NaN) / 1000,
      cpuS: form.userS + form.sysS,
      peakPssMb: form.peakPssKb / 1024,
      maxRssMb: form.maxRssKb / 1024,
      commands: ft?.data?.commands,
      msg: ft?.msg,
      redisCommandsReceived: sum('commands'),
      meets: sum('meets'),
      nodesReplies: sum('nodesReplies'),
      nodesMb: sum('nodesBytes') / 2 ** 20,
      slotMismatches: sum('slotMismatches'),
      epochMismatches: sum('epochMismatches'),
    },
  }
  for (const s of sims)
    try {
      s.kill('SIGTERM')
    } catch {}
  sims.length = 0
}

function report(o) {
  console.log(`\nscale: ${o.date.slice(0, 10)}, ${o.machine.cores} cores, Redis ${o.redis}, rev ${o.revision}`)
  if (o.up.length) {
    const m = (f) => median(o.up.map(f).filter(Number.isFinite))
    const cli = median(o.formation.filter((f) => f.side === 'redis-cli' && f.ok).map((f) => f.s))
    const ours = median(o.formation.filter((f) => f.side === 'baremetal' && f.ok).map((f) => f.s))
    console.log(`\n${o.hosts} hosts × ${o.portsPerHost} ports = ${o.hosts * o.portsPerHost} masters, median of ${o.up.length} runs`)
    printTable(
      ['', 'baremetal', 'redis-cli', 'ratio'],
      [
        ['deploy to cluster_state:ok', fmtS(m((r) => (r.deploy.ok ? r.deploy.s : NaN))), '', ''],
        ['  of which formation (module)', fmtS(m((r) => r.deploy.formS)), '', ''],
        ['re-run, nothing to change', fmtS(m((r) => (r.rerun?.ok ? r.rerun.s : NaN))), '', ''],
        ['formation alone, same nodes', fmtS(ours), fmtS(cli), fmtRatio(cli / ours)],
        ['SSH round trips (deploy / re-run)', `${m((r) => r.deploy.roundTrips)} / ${m((r) => r.rerun?.roundTrips)}`, '', ''],
        ['controller CPU, peak PSS (deploy)', `${m((r) => r.deploy.cpuS).toFixed(1)} s, ${fmtMb(m((r) => r.deploy.peakPssMb))}`, '', ''],
        ['SHUTDOWN NOSAVE to all at once', fmtS(m((r) => r.parallelStopS)), '', ''],
      ],
    )
  }
  if (o.sweep.length) {
    console.log(`\nconvergence sweep (one run each, limit ${LIMIT} s): seconds to cluster_state:ok on every node`)
    const keys = [...new Set(o.sweep.map((s) => `${s.nodes}/${s.nodeTimeoutMs}`))]
    printTable(
      ['nodes', 'node timeout', 'redis-cli', 'baremetal', 'TCP mem peak (pages)'],
      keys.map((k) => {
        const [n, t] = k.split('/').map(Number)
        const get = (side) => o.sweep.find((s) => s.nodes === n && s.nodeTimeoutMs === t && s.side === side)
        const cell = (r) => (!r ? '–' : r.ok ? fmtS(r.s) : `no (${LIMIT} s)`)
        return [String(n), `${t} ms`, cell(get('redis-cli')), cell(get('baremetal')), String(Math.max(get('redis-cli')?.peakTcpPages ?? 0, get('baremetal')?.peakTcpPages ?? 0))]
      }),
    )
  }
  if (o.plan) {
    const p = o.plan
    console.log(`\n${p.nodes} masters on ${o.hosts} simulated hosts (reference shape 10 × 100)`)
    printTable(
      ['', 'time', 'controller CPU', 'peak PSS', 'max RSS', 'SSH conn / round trips', 'Redis commands'],
      [
        [
          'planner alone (in-process)',
          `${p.planner.planMs} ms`,
          `${p.planner.planCpuMs.toFixed(0)} ms`,
          `heap +${p.planner.heapDeltaMb} MB`,
          `${p.planner.rssMb} MB`,
          '',
          String(p.planner.formationCommands),
        ],
        [
          'up --check (plan only)',
          fmtS(p.check.s),
          `${p.check.cpuS.toFixed(1)} s`,
          fmtMb(p.check.peakPssMb),
          fmtMb(p.check.maxRssMb),
          `${p.check.connections} / ${p.check.roundTrips}`,
          `${p.check.clusterCommands ?? '–'} planned`,
        ],
        [
          'up --tags cluster (forming)',
          fmtS(p.form.s),
          `${p.form.cpuS.toFixed(1)} s`,
          fmtMb(p.form.peakPssMb),
          fmtMb(p.form.maxRssMb),
          '',
          `${p.form.commands ?? '–'} sent, ${p.form.redisCommandsReceived} received`,
        ],
      ],
    )
    console.log(`  check: ${p.check.clusterMsg ?? '(no cluster task result)'}`)
    console.log(
      `  formed: ${p.form.msg ?? '(no cluster task result)'}; CLUSTER NODES read ${p.form.nodesReplies}× (${p.form.nodesMb.toFixed(0)} MB); slot/epoch mismatches ${p.form.slotMismatches}/${p.form.epochMismatches}`,
    )
    console.log('  up --check, per task (slowest host, round trips summed over hosts):')
    for (const t of p.check.tasks) console.log(`    ${t.task.padEnd(52)} ${fmtS(t.s).padStart(7)} ${String(t.roundTrips).padStart(4)}  ${t.status.padEnd(8)} ${t.msg}`)
  }
}
