#!/usr/bin/env node
// Formation alone, several ways, on the same started nodes (reset to fresh in between,
// order rotating every run): `redis-cli --cluster create`, baremetal (`up --tags
// cluster`), and prototypes of the proposed fix (bench/lib/proto-form.mjs, not the
// product): the planned slot owners pushed to nodes that know every peer but miss slots,
// and the formation run under a shorter cluster-node-timeout (restored after). Also the
// product's formation phase by phase (in-process). Time = until cluster_state:ok on all.
//
//   node bench/formation-variants.mjs [--hosts 2] [--ports 100] [--runs 3] [--node-timeout 5000]
import {mkdirSync, writeFileSync} from 'node:fs'
import {cpus} from 'node:os'
import {join} from 'node:path'
import {parseArgs} from 'node:util'
import {profileFormation} from './lib/form-profile.mjs'
import {loadavg, median} from './lib/measure.mjs'
import {formProto} from './lib/proto-form.mjs'
import {configSetAll, nodesOf, redisCliCreate, resetNodes, shutdownAll, stillUp, waitClusterOk} from './lib/redis.mjs'
import {fmtRatio, fmtS, gitRevision, printTable} from './lib/report.mjs'
import {BENCH, ROOT, baremetal, ensurePackages, fleetOptions, log, openFleet, redisSource, scrubHosts, writeInventories} from './lib/tools.mjs'

const {values: opt} = parseArgs({
  options: {
    ...fleetOptions({hosts: '2', ports: '100'}),
    'node-timeout': {type: 'string', default: '5000'},
  },
})
const H = Number(opt.hosts)
const P = Number(opt.ports)
const RUNS = Number(opt.runs)
// The prototypes (bench/lib/proto-form.mjs), each one idea of the proposed fix.
const VARIANTS = {
  'redis-cli': null,
  baremetal: null,
  'proto: push slot owners': {pushSlots: true},
  'proto: node timeout 1000 while forming': {pushSlots: false, formingNodeTimeoutMs: 1000},
  'proto: both': {pushSlots: true, formingNodeTimeoutMs: 1000},
}

ensurePackages()
const {planCluster} = await import(join(ROOT, 'dist/src/redis/plan.js'))
const src = redisSource()
const {fleet, hosts} = await openFleet({hosts: H, nodes: H * P, maxNodes: Number(opt['max-nodes']), fleet: opt.fleet})
const BUILD = `/var/cache/baremetal-bench-build/redis-${src.version}`
const inv = writeInventories(fleet, {count: P, hosts, oursVars: {redis_src_dir: `${BUILD}/src`, redis_bin_dir: `${BUILD}/bin`}})
const nodes = nodesOf(hosts, 6379, P)
const out = {benchmark: 'formation-variants', date: new Date().toISOString(), revision: gitRevision(), cores: cpus().length, hosts: H, portsPerHost: P, nodeTimeoutMs: Number(opt['node-timeout']), runs: [], profile: null}
process.on('SIGINT', () => { shutdownAll(nodes).finally(() => (opt.fleet ? process.exit(130) : fleet.destroy().finally(() => process.exit(130)))) })

try {
  const b = await baremetal(fleet, inv.ours, 'up', ['--tags', 'build', '--limit', hosts[0].name])
  const s = b.ok ? await baremetal(fleet, inv.ours, 'up', ['--skip-tags', 'cluster']) : b
  if (!s.ok) throw new Error(`could not build/start: ${(s.stdout + s.stderr).slice(-3000)}`)
  await configSetAll(nodes, 'cluster-node-timeout', opt['node-timeout'])
  const sides = Object.keys(VARIANTS)
  for (let run = 1; run <= RUNS; run++) {
    for (const name of sides.map((_, i) => sides[(i + run - 1) % sides.length])) {
      await resetNodes(nodes)
      const load = loadavg()[0]
      let rec
      if (name === 'redis-cli') {
        const c = await redisCliCreate(nodes)
        rec = {ok: c.ok, s: c.totalS}
      } else if (name === 'baremetal') {
        const f = await baremetal(fleet, inv.ours, 'up', ['--tags', 'cluster'])
        const w = f.ok ? await waitClusterOk(nodes) : {ok: false, ms: 0}
        rec = {ok: f.ok && w.ok, s: f.wallS + w.ms / 1000, moduleS: (f.tasks.find((t) => t.module === 'redis_cluster')?.data?.elapsedMs ?? NaN) / 1000}
      } else {
        const t0 = Date.now()
        const p = await formProto(nodes, planCluster(nodes, 0), VARIANTS[name])
        const w = await waitClusterOk(nodes)
        rec = {ok: w.ok, s: (Date.now() - t0) / 1000, commands: p.commands, pushed: p.pushed, phases: p.phases}
      }
      out.runs.push({run, side: name, load, ...rec})
      log(`run ${run} ${name}: ${fmtS(rec.s)} ok=${rec.ok}`)
    }
  }
  await resetNodes(nodes)
  out.profile = await profileFormation(nodes)
  await resetNodes(nodes)
} catch (error) {
  out.error = String(error.stack ?? error)
  log(out.error)
} finally {
  await scrubHosts(fleet, hosts, inv.ours, nodes, {shutdownAll, stillUp}).catch((e) => log(String(e)))
  if (!opt.fleet) await fleet.destroy()
}

mkdirSync(join(BENCH, 'results'), {recursive: true})
writeFileSync(join(BENCH, 'results', 'formation-variants.json'), JSON.stringify(out, null, 2) + '\n')
const med = (side) => median(out.runs.filter((r) => r.side === side && r.ok).map((r) => r.s))
console.log(`\nformation of ${H * P} masters (${H} hosts × ${P}), cluster-node-timeout ${out.nodeTimeoutMs} ms, median of ${RUNS} alternating runs; ${out.cores} cores; ${out.date.slice(0, 10)}; rev ${out.revision}`)
printTable(['', 'seconds', 'vs redis-cli'], Object.keys(VARIANTS).map((s) => [s, fmtS(med(s)), fmtRatio(med('redis-cli') / med(s))]))
for (const name of Object.keys(VARIANTS).filter((v) => VARIANTS[v])) {
  const proto = out.runs.filter((r) => r.side === name && r.ok).at(-1)
  if (proto) console.log(`${name}, phases (last run): ${proto.phases.map((p) => `${p.phase} @${fmtS(p.ms / 1000)}`).join('; ')}; ${proto.pushed} slot owners pushed`)
}
if (out.profile?.phases) console.log(`baremetal phases (in-process): ${out.profile.phases.map((p) => `${p.phase} +${fmtS(p.ms / 1000)}`).join('; ')}`)
process.exitCode = out.error ? 1 : 0
