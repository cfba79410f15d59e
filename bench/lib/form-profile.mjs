// Where baremetal's formation time goes: the product's own formCluster (dist/), run
// in-process over started fresh nodes, with every progress line it logs timestamped.
// Usage (from bench/*.mjs): const p = await profileFormation(nodes) → {ms, commands, phases}
import {join} from 'node:path'
import {ROOT} from './tools.mjs'

export async function profileFormation(nodes, {replicas = 0, timeoutMs} = {}) {
  const {formCluster} = await import(join(ROOT, 'dist/src/redis/cluster.js'))
  const {planCluster} = await import(join(ROOT, 'dist/src/redis/plan.js'))
  const started = Date.now()
  const lines = []
  const cpu0 = process.cpuUsage()
  const plan = planCluster(nodes, replicas)
  const planMs = Date.now() - started
  lines.push({ms: planMs, msg: `planned ${plan.masters.length} masters`})
  const r = await formCluster(nodes, plan, {timeoutMs, log: (msg) => lines.push({ms: Date.now() - started, msg})})
  const cpu = process.cpuUsage(cpu0)
  lines.push({ms: Date.now() - started, msg: `done: ${r.action}, ${r.commands} commands`})
  // Phase = time from one log line to the next, named by the line that opened it.
  const phases = lines.map((l, i) => ({phase: l.msg.replace(/^redis_cluster: /, ''), startMs: l.ms, ms: (lines[i + 1]?.ms ?? l.ms) - l.ms}))
  return {ms: Date.now() - started, action: r.action, commands: r.commands, cpuMs: (cpu.user + cpu.system) / 1000, phases}
}
