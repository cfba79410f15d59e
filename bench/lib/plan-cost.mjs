#!/usr/bin/env node
// The pure part of forming a cluster, alone: the product's planner (src/redis/plan.ts)
// over H hosts × P ports, timed and weighed in this process. Prints one JSON line.
//   node bench/lib/plan-cost.mjs [hosts=10] [ports=100] [replicas=0]
import {join} from 'node:path'
import {ROOT} from './tools.mjs'

const [H = 10, P = 100, R = 0] = process.argv.slice(2).map(Number)
const {planCluster} = await import(join(ROOT, 'dist/src/redis/plan.js'))
const nodes = Array.from({length: H}, (_, h) => Array.from({length: P}, (_, i) => ({host: `h${h + 1}`, ip: `10.0.64.${h + 1}`, port: 6379 + i}))).flat()
globalThis.gc?.()
const heap0 = process.memoryUsage().heapUsed
const cpu0 = process.cpuUsage()
const t0 = performance.now()
const plan = planCluster(nodes, R)
const ms = performance.now() - t0
const cpu = process.cpuUsage(cpu0)
// What the former would send to fresh nodes for this plan: ADDSLOTS (chunks of 1000 slots)
// and SET-CONFIG-EPOCH per node, one MEET per node but the seed, REPLICATE per replica.
const addslots = plan.masters.reduce((a, m) => a + Math.ceil(m.slotCount / 1000), 0)
const commands = addslots + nodes.length + (nodes.length - 1) + plan.replicas.length
console.log(JSON.stringify({
  nodes: nodes.length, masters: plan.masters.length, replicas: plan.replicas.length,
  slotsPerMaster: [Math.min(...plan.masters.map((m) => m.slotCount)), Math.max(...plan.masters.map((m) => m.slotCount))],
  planMs: Number(ms.toFixed(2)), planCpuMs: (cpu.user + cpu.system) / 1000, heapDeltaMb: Number(((process.memoryUsage().heapUsed - heap0) / 2 ** 20).toFixed(2)),
  rssMb: Number((process.memoryUsage().rss / 2 ** 20).toFixed(1)), formationCommands: commands, warnings: plan.warnings,
}))
