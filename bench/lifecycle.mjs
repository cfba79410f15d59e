// Lifecycle benchmark: re-run time of `baremetal up` on a healthy 3-host cluster
// (target: under 3 s for 3 hosts × 100 ports on the 2-core dev machine), and `baremetal
// down` time. Prints figures, asserts nothing.
//
// 3 × 100 = 300 gossiping nodes exhausts this machine's kernel TCP memory (for every
// namespace at once): the default is 3 × 66 = 198 nodes with 1 replica each, and the script
// refuses to pass 200 redis-server on the machine (BM_BENCH_MAX_NODES to override elsewhere).
//
//   npm run build && node bench/lifecycle.mjs            # a new fleet of 3 hosts
//   BM_BENCH_FLEET=name node bench/lifecycle.mjs          # reuse `npm run hosts -- up 3 --name name`
//   BM_BENCH_PORTS=50 BM_BENCH_RUNS=5 node bench/lifecycle.mjs
//
// The first `up` (start, formation) is not part of the figures. The fleet is always
// taken down (`down`) and, when this script created it, destroyed.
import {join} from 'node:path'
import {loadavg, median} from './lib/measure.mjs'
import {ROOT, baremetal, ensurePackages, openFleet} from './lib/tools.mjs'

const {sharedRedisBuild} = await import(join(ROOT, 'dist/test/e2e/fault-tools.js'))

const PORTS = Number(process.env.BM_BENCH_PORTS ?? 66)
const RUNS = Number(process.env.BM_BENCH_RUNS ?? 3)

const s = (ms) => `${(ms / 1000).toFixed(2)} s`
const load = () => loadavg().join(' ')
// The figures come from the run's own JSON: a failed run is an error, not a number.
async function run(cmd, inventory) {
  const r = await baremetal(fleet, inventory, cmd)
  if (!r.ok) throw new Error(`baremetal ${cmd} exited ${r.code}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`)
  return {wallMs: r.wallS * 1000, json: r.result}
}

ensurePackages({ansible: false}) // /usr/bin/time, for the measurements
const {fleet} = await openFleet({hosts: 3, nodes: 3 * PORTS, maxNodes: Number(process.env.BM_BENCH_MAX_NODES ?? 200), fleet: process.env.BM_BENCH_FLEET})
// The build the e2e suites share (built once per machine, then found in place by every host):
// this measures re-runs and teardown, not the compiler.
const build = await sharedRedisBuild(fleet, fleet.hosts[0])
const inv = fleet.writeInventory({path: join(fleet.dir, 'bench-lifecycle.yml'), vars: {redis_port_start: 7000, redis_count: PORTS, redis_replicas: 1, ...build}})
const up = () => run('up', inv)
try {
  console.log(`lifecycle bench: ${fleet.hosts.length} hosts × ${PORTS} ports (replicas 1), fleet ${fleet.name}, load ${load()}`)
  const first = await up()
  console.log(`first up (build/start/form, not counted): ${s(first.wallMs)}`)

  const reruns = []
  for (let i = 0; i < RUNS; i++) {
    const r = await up()
    const changed = Object.values(r.json.recap).reduce((n, h) => n + h.changed, 0)
    const tasks = r.json.tasks
    const trips = Object.fromEntries(fleet.hosts.map((h) => [h.name, tasks.filter((t) => t.host === h.name).reduce((n, t) => n + (t.roundTrips ?? 0), 0)]))
    const slowest = [...tasks].sort((a, b) => b.durationMs - a.durationMs).slice(0, 3).map((t) => `${t.task} ${t.host} ${t.durationMs} ms`)
    reruns.push({wallMs: r.wallMs, runMs: r.json.durationMs, changed, trips, slowest})
  }
  const downRun = await run('down', inv)
  const downTrips = Object.values(downRun.json.stats).map((st) => st.execs + st.uploads)
  const downSlowest = [...downRun.json.tasks].sort((a, b) => b.durationMs - a.durationMs).slice(0, 3).map((t) => `${t.task} ${t.host} ${t.durationMs} ms`)

  console.log('')
  console.log('| measure | value |')
  console.log('|---|---|')
  console.log(`| re-run, wall (process start to exit), median of ${RUNS} | ${s(median(reruns.map((r) => r.wallMs)))} |`)
  console.log(`| re-run, playbook time (recap), median of ${RUNS} | ${s(median(reruns.map((r) => r.runMs)))} |`)
  console.log(`| re-run, all runs (wall) | ${reruns.map((r) => s(r.wallMs)).join(', ')} |`)
  console.log(`| re-run, changed tasks | ${reruns.map((r) => r.changed).join(', ')} |`)
  console.log(`| re-run, SSH round trips per host (facts excluded) | ${JSON.stringify(reruns[0].trips)} |`)
  console.log(`| re-run, slowest tasks (first run) | ${reruns[0].slowest.join('; ')} |`)
  console.log(`| down, wall | ${s(downRun.wallMs)} (playbook ${s(downRun.json.durationMs)}, ${downTrips.join('/')} round trips per host) |`)
  console.log(`| down, slowest tasks | ${downSlowest.join('; ')} |`)
  console.log(`| load average after | ${load()} |`)
} finally {
  await run('down', inv).catch(() => {})
  if (!process.env.BM_BENCH_FLEET) await fleet.destroy()
}
