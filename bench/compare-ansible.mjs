#!/usr/bin/env node
// baremetal side by side with what users run today: the Ansible playbook of
// bench/ansible/ (apt, source, make, then one with_sequence loop per per-port step) and
// `redis-cli --cluster create`. Same test hosts, same Redis source, same N, build done for
// both first (timed separately), alternating runs, medians:
//   1. deployment up to cluster_state:ok on every node
//   2. re-run with nothing to change
//   3. teardown
//   4. cluster formation alone: redis-cli --cluster create vs baremetal, same started nodes
// Prints one table (seconds, speed-up ratios, SSH connections and round trips, controller
// CPU and peak memory) and writes bench/results/compare-ansible.json.
//
//   node bench/compare-ansible.mjs [--hosts 2] [--ports 100] [--runs 3]
//        [--variants default,tuned] [--only 1,2,3,4] [--teardown-cap 600]
//
// Root on Debian 12 (network namespaces); installs ansible and time with apt-get.
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {cpus, totalmem} from 'node:os'
import {join} from 'node:path'
import {parseArgs} from 'node:util'
import {profileFormation} from './lib/form-profile.mjs'
import {loadavg, median} from './lib/measure.mjs'
import {nodesOf, redisCliCreate, resetNodes, shutdownAll, stillUp, waitClusterOk} from './lib/redis.mjs'
import {BENCH, ansible, ansibleVersion, baremetal, ensurePackages, fleetOptions, log, openFleet, redisSource, scrubHosts, writeInventories} from './lib/tools.mjs'
import {gitRevision, fmtS, fmtRatio, fmtMb, printTable} from './lib/report.mjs'

const {values: opt} = parseArgs({
  options: {
    ...fleetOptions({hosts: '2', ports: '100'}),
    variants: {type: 'string', default: 'default,tuned'},
    only: {type: 'string', default: '1,2,3,4'},
    'teardown-cap': {type: 'string', default: '600'},
    // Print the table again from a results file, running nothing.
    report: {type: 'string'},
  },
})
const H = Number(opt.hosts)
const P = Number(opt.ports)
const RUNS = Number(opt.runs)
const ONLY = new Set(opt.only.split(',').map(Number))
const TEARDOWN_CAP = Number(opt['teardown-cap'])
const SIDES = [...opt.variants.split(',').filter(Boolean).map((v) => `ansible-${v}`), 'baremetal']
const RESULTS = join(BENCH, 'results', 'compare-ansible.json')

if (opt.report) {
  const saved = JSON.parse(readFileSync(opt.report, 'utf8'))
  SIDES.splice(0, SIDES.length, ...new Set(saved.runs.map((r) => r.side)))
  report(saved, saved.runs.length ? Math.max(...saved.runs.map((r) => r.run)) : 0)
  process.exit(0)
}

ensurePackages()
const {fleet, hosts} = await openFleet({hosts: H, nodes: H * P, maxNodes: Number(opt['max-nodes']), fleet: opt.fleet})
let cleaning = false
const cleanup = async () => {
  if (cleaning) return
  cleaning = true
  await shutdownAll(nodes).catch(() => {})
  if (!opt.fleet) await fleet.destroy()
}
process.on('SIGINT', () => { log('interrupted: destroying the test hosts'); cleanup().finally(() => process.exit(130)) })

const nodes = nodesOf(hosts, 6379, P)
const inv = writeInventories(fleet, {count: P, hosts})
const src = redisSource()
const out = {
  benchmark: 'compare-ansible',
  date: new Date().toISOString(),
  machine: {cores: cpus().length, cpu: cpus()[0]?.model, memGb: Math.round(totalmem() / 2 ** 30)},
  revision: gitRevision(),
  ansible: ansibleVersion(),
  redis: src.version,
  hosts: H, portsPerHost: P, nodes: H * P, runs: RUNS,
  build: {},
  runs: [],
  formation: [],
  profile: null,
}

// Saved after every measurement: a run that dies after hours keeps what it measured.
function save() {
  mkdirSync(join(BENCH, 'results'), {recursive: true})
  writeFileSync(RESULTS, JSON.stringify(out, null, 2) + '\n')
}

const summary = (r, extra = {}) => ({
  ok: r.ok, s: r.wallS, toolS: r.toolS ?? r.wallS, cpuS: r.userS + r.sysS, peakPssMb: r.peakPssKb / 1024, maxRssMb: r.maxRssKb / 1024,
  connections: r.connections, roundTrips: r.roundTrips, timedOut: r.timedOut, load: r.load, ...extra,
})

// Fresh state for the next side: nothing listening, no instance dirs, no firewall chain.
const scrub = () => scrubHosts(fleet, hosts, inv.ours, nodes, {shutdownAll, stillUp})

async function side(name, what) {
  const load = loadavg()[0]
  let r
  if (name === 'baremetal') {
    r = what === 'down' ? await baremetal(fleet, inv.ours, 'down', [], {timeoutS: TEARDOWN_CAP}) : await baremetal(fleet, inv.ours, 'up')
  } else {
    const variant = name.replace('ansible-', '')
    const book = what === 'down' ? 'redis-down.yml' : 'redis-cluster.yml'
    r = await ansible(fleet, inv.ansible, book, variant, {args: inv.ansibleArgs, timeoutS: what === 'down' ? TEARDOWN_CAP : 3600})
  }
  r.load = load
  return r
}

try {
  // Build, once per side (not part of 1–4).
  log('build: baremetal')
  const b1 = await baremetal(fleet, inv.ours, 'up', ['--tags', 'build'])
  out.build.baremetal = summary(b1, {make: `make -j${cpus().length} ${src.makeArgs}`})
  log(`build: baremetal ${fmtS(b1.wallS)} ok=${b1.ok}; ansible`)
  const b2 = await ansible(fleet, inv.ansible, 'redis-cluster.yml', 'default', {args: [...inv.ansibleArgs, '--tags', 'build']})
  out.build.ansible = summary(b2, {make: `make ${src.makeArgs}`})
  log(`build: ansible ${fmtS(b2.wallS)} ok=${b2.ok}`)
  if (!b1.ok || !b2.ok) throw new Error(`build failed:\n${b1.stderr.slice(-2000)}\n${b2.stdout.slice(-3000)}`)
  await scrub() // reused hosts may hold instances from an earlier run

  // 1–3, alternating: the order rotates every run.
  const measureTeardown = Object.fromEntries(SIDES.map((s) => [s, true]))
  if (ONLY.has(1) || ONLY.has(2) || ONLY.has(3)) {
    for (let run = 1; run <= RUNS; run++) {
      const order = SIDES.map((_, i) => SIDES[(i + run - 1) % SIDES.length])
      for (const name of order) {
        const rec = {run, side: name}
        out.runs.push(rec)
        log(`run ${run} ${name}: deploy`)
        const d = await side(name, 'up')
        const w = d.ok ? await waitClusterOk(nodes, {timeoutS: 300}) : {ok: false, ms: 0, behind: []}
        d.toolS = d.wallS
        d.wallS += w.ms / 1000
        rec.deploy = summary(d, {waitS: w.ms / 1000, clusterOk: w.ok, profile: d.profile ?? taskProfile(d.tasks)})
        rec.deploy.ok = d.ok && w.ok
        if (!d.ok || !w.ok) rec.deploy.error = (d.stdout + d.stderr).slice(-3000) + w.behind.slice(0, 5).join('\n')
        log(`run ${run} ${name}: deploy ${fmtS(d.wallS)} ok=${d.ok && w.ok}`)
        if (d.ok && w.ok) {
          const r = await side(name, 'up')
          const w2 = await waitClusterOk(nodes, {timeoutS: 120})
          r.toolS = r.wallS
          r.wallS += w2.ms / 1000
          rec.rerun = summary(r, {clusterOk: w2.ok, profile: r.profile ?? taskProfile(r.tasks)})
          rec.rerun.ok = r.ok && w2.ok
          if (!r.ok || !w2.ok) rec.rerun.error = (r.stdout + r.stderr).slice(-3000)
          log(`run ${run} ${name}: re-run ${fmtS(r.wallS)} ok=${r.ok && w2.ok}`)
        }
        if (measureTeardown[name] && ONLY.has(3)) {
          const t = await side(name, 'down')
          const left = await stillUp(nodes)
          rec.teardown = summary(t, {left: left.length, profile: t.profile ?? taskProfile(t.tasks)})
          rec.teardown.ok = t.ok && left.length === 0
          log(`run ${run} ${name}: teardown ${fmtS(t.wallS)}${t.timedOut ? ' (cap reached: stopped)' : ''} ok=${rec.teardown.ok}`)
          // A capped teardown keeps the machine busy for everyone: measure it once only.
          if (t.timedOut) measureTeardown[name] = false
        }
        save()
        await scrub()
      }
    }
  }

  // 4. Formation alone: the same started nodes, reset to fresh between tools.
  if (ONLY.has(4)) {
    log('formation: starting the instances (baremetal up --skip-tags cluster)')
    const s = await baremetal(fleet, inv.ours, 'up', ['--skip-tags', 'cluster'])
    if (!s.ok) throw new Error(`could not start the instances:\n${s.stdout.slice(-3000)}`)
    for (let run = 1; run <= RUNS; run++) {
      const order = run % 2 ? ['redis-cli', 'baremetal'] : ['baremetal', 'redis-cli']
      for (const name of order) {
        await resetNodes(nodes)
        const load = loadavg()[0]
        let rec
        if (name === 'redis-cli') {
          const c = await redisCliCreate(nodes, {timeoutS: 300})
          rec = {run, side: name, ok: c.ok, s: c.totalS, toolS: c.cliS, waitS: c.waitS, cpuS: c.userS + c.sysS, peakPssMb: c.peakPssKb / 1024, load}
        } else {
          const f = await baremetal(fleet, inv.ours, 'up', ['--tags', 'cluster'])
          const w = f.ok ? await waitClusterOk(nodes, {timeoutS: 300}) : {ok: false, ms: 0}
          const task = f.tasks.find((t) => t.module === 'redis_cluster')
          rec = {
            run, side: name, ok: f.ok && w.ok, s: f.wallS + w.ms / 1000, toolS: f.wallS, waitS: w.ms / 1000, moduleS: (task?.data?.elapsedMs ?? NaN) / 1000,
            commands: task?.data?.commands, cpuS: f.userS + f.sysS, peakPssMb: f.peakPssKb / 1024, connections: f.connections, roundTrips: f.roundTrips, load,
          }
          if (!rec.ok) rec.error = (f.stdout + f.stderr).slice(-3000)
        }
        out.formation.push(rec)
        save()
        log(`formation run ${run} ${name}: ${fmtS(rec.s)} ok=${rec.ok}`)
      }
    }
    // One more, not in the medians: the product's formation in-process, phase by phase.
    await resetNodes(nodes)
    out.profile = await profileFormation(nodes).catch((e) => ({error: String(e)}))
    out.profile.load = loadavg()[0]
    await resetNodes(nodes)
    await scrub()
  }
} catch (error) {
  out.error = String(error.stack ?? error)
  log(out.error)
} finally {
  await cleanup()
}

save()
report(out, RUNS)
console.log(`\n(all figures: ${RESULTS})`)
process.exitCode = out.error ? 1 : 0

function taskProfile(tasks = []) {
  const byTask = new Map()
  for (const t of tasks) byTask.set(t.task, Math.max(byTask.get(t.task) ?? 0, t.durationMs / 1000))
  return [...byTask].map(([task, s]) => ({task, s}))
}

function report(o, runs) {
  const good = (x) => x?.ok && x.clusterOk !== false
  const med = (side, what, key = 's') => median(o.runs.filter((r) => r.side === side && good(r[what])).map((r) => r[what][key]))
  const anyCapped = (side) => o.runs.some((r) => r.side === side && r.teardown?.timedOut)
  const cell = (side, what) => {
    const v = med(side, what)
    if (what === 'teardown' && anyCapped(side)) {
      const capped = o.runs.filter((r) => r.side === side && r.teardown?.timedOut).map((r) => r.teardown.s)
      return `> ${fmtS(Math.max(...capped))}`
    }
    return fmtS(v)
  }
  const value = (side, what) => (what === 'teardown' && anyCapped(side) ? Math.max(...o.runs.filter((r) => r.side === side && r.teardown?.timedOut).map((r) => r.teardown.s)) : med(side, what))
  const ansibles = SIDES.filter((s) => s !== 'baremetal')
  const head = ['', ...ansibles.map((s) => s.replace('ansible-', 'Ansible ')), 'baremetal', ...ansibles.map((s) => `speed-up vs ${s.replace('ansible-', '')}`)]
  const rows = []
  const ratioRow = (label, what) => {
    const ours = value('baremetal', what)
    rows.push([label, ...ansibles.map((s) => cell(s, what)), cell('baremetal', what), ...ansibles.map((s) => (anyCapped(s) && what === 'teardown' ? '> ' : '') + fmtRatio(value(s, what) / ours))])
  }
  ratioRow('1. deploy to cluster_state:ok', 'deploy')
  ratioRow('2. re-run, nothing to change', 'rerun')
  ratioRow('3. teardown', 'teardown')
  const fcli = median(o.formation.filter((r) => r.side === 'redis-cli' && r.ok).map((r) => r.s))
  const fours = median(o.formation.filter((r) => r.side === 'baremetal' && r.ok).map((r) => r.s))
  rows.push(['4. formation: redis-cli create', ...ansibles.map((_, i) => (i === 0 ? fmtS(fcli) : '')), fmtS(fours), ...ansibles.map((_, i) => (i === 0 ? fmtRatio(fcli / fours) : ''))])
  for (const [label, key, f] of [['SSH connections (deploy)', 'connections', String], ['SSH round trips (deploy)', 'roundTrips', String], ['SSH round trips (re-run)', 'roundTrips', String], ['controller CPU s (deploy)', 'cpuS', (v) => v.toFixed(1)], ['controller peak PSS (deploy)', 'peakPssMb', fmtMb]]) {
    const what = label.includes('re-run') ? 'rerun' : 'deploy'
    rows.push([label, ...ansibles.map((s) => fmt(med(s, what, key), f)), fmt(med('baremetal', what, key), f), ...ansibles.map(() => '')])
  }
  rows.push(['build, once (not in 1–4)', ...ansibles.map((_, i) => (i === 0 ? fmtS(o.build.ansible?.s) : '')), fmtS(o.build.baremetal?.s), ...ansibles.map(() => '')])
  console.log(`\nbaremetal vs Ansible (${o.ansible}) and redis-cli: ${o.hosts} hosts × ${o.portsPerHost} ports = ${o.nodes} masters, Redis ${o.redis}, ` +
    `median of ${runs} alternating runs; ${o.machine.cores} cores; ${o.date.slice(0, 10)}; rev ${o.revision}`)
  printTable(head, rows)
  if (o.profile && !o.profile.error) {
    console.log(`\nbaremetal formation, phase by phase (one extra run, in-process, load ${o.profile.load}):`)
    for (const p of o.profile.phases) console.log(`  ${fmtS(p.startMs / 1000).padStart(8)}  +${fmtS(p.ms / 1000).padEnd(8)} ${p.phase}`)
  }
}

function fmt(v, f) {
  return Number.isFinite(v) ? f(v) : '–'
}
