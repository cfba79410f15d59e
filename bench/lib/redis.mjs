// What the benchmarks ask every Redis node directly, the same way whichever tool made the
// cluster: "is cluster_state ok everywhere?", "is every port down?", and resetting
// started nodes so the next formation starts from fresh nodes.
import {spawn} from 'node:child_process'
import {Redis} from 'ioredis'
import {measure} from './measure.mjs'

export function nodesOf(hosts, portStart, count) {
  return hosts.flatMap((h) => Array.from({length: count}, (_, i) => ({host: h.name, ip: h.ip, port: portStart + i})))
}

const addr = (n) => `${n.ip}:${n.port}`

async function connect(n, timeoutMs = 3000) {
  const r = new Redis({
    host: n.ip, port: n.port, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0,
    retryStrategy: () => null, connectTimeout: timeoutMs, commandTimeout: 10_000, disableClientInfo: true, enableReadyCheck: false,
  })
  r.on('error', () => {})
  await r.connect()
  return r
}

async function forAll(nodes, fn, concurrency = 64) {
  const out = new Array(nodes.length)
  let next = 0
  await Promise.all(Array.from({length: Math.min(concurrency, nodes.length)}, async () => {
    while (next < nodes.length) {
      const i = next++
      out[i] = await fn(nodes[i], i)
    }
  }))
  return out
}

/** One CLUSTER INFO per node over short-lived connections: field map, or an error string. */
export async function clusterInfos(nodes) {
  return forAll(nodes, async (n) => {
    let r
    try {
      r = await connect(n)
      const text = String(await r.call('CLUSTER', 'INFO'))
      return Object.fromEntries(text.split(/\r?\n/).filter((l) => l.includes(':')).map((l) => l.split(':')))
    } catch (error) {
      return String(error.message ?? error)
    } finally {
      r?.disconnect()
    }
  })
}

/**
 * Poll until every node says cluster_state:ok with all 16384 slots and knows all nodes.
 * Resolves {ok, ms, behind}: ms from the call (the caller adds it to the tool's own time).
 * Connections stay open between polls so the poll does not itself cost much.
 */
export async function waitClusterOk(nodes, {timeoutS = 120, intervalMs = 100} = {}) {
  const started = Date.now()
  const conns = new Map()
  let behind = []
  try {
    for (;;) {
      behind = []
      await forAll(nodes, async (n) => {
        try {
          let r = conns.get(addr(n))
          if (!r || r.status !== 'ready') {
            r?.disconnect()
            r = await connect(n)
            conns.set(addr(n), r)
          }
          const info = String(await r.call('CLUSTER', 'INFO'))
          const known = Number(/cluster_known_nodes:(\d+)/.exec(info)?.[1])
          if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_assigned:16384') || known !== nodes.length) {
            behind.push(`${addr(n)}: ${/cluster_state:\w+/.exec(info)?.[0]} slots ${/cluster_slots_assigned:(\d+)/.exec(info)?.[1]} knows ${known}`)
          }
        } catch (error) {
          behind.push(`${addr(n)}: ${error.message ?? error}`)
        }
      }, 128)
      if (behind.length === 0) return {ok: true, ms: Date.now() - started, behind}
      if (Date.now() - started > timeoutS * 1000) return {ok: false, ms: Date.now() - started, behind}
      await new Promise((r) => setTimeout(r, intervalMs))
    }
  } finally {
    for (const r of conns.values()) r.disconnect()
  }
}

/** Ports still answering (after a teardown: should be none). */
export async function stillUp(nodes) {
  const res = await forAll(nodes, async (n) => {
    try {
      const r = await connect(n, 1000)
      r.disconnect()
      return addr(n)
    } catch {
      return null
    }
  }, 128)
  return res.filter(Boolean)
}

/**
 * Make started nodes fresh again (CLUSTER RESET HARD: new id, epochs 0, no peers) and
 * wait until each knows only itself, so the next formation starts like the first one.
 */
export async function resetNodes(nodes, {timeoutS = 60} = {}) {
  const deadline = Date.now() + timeoutS * 1000
  for (;;) {
    const res = await forAll(nodes, async (n) => {
      let r
      try {
        r = await connect(n)
        const info = String(await r.call('CLUSTER', 'INFO'))
        if (/cluster_known_nodes:1\r?\n/.test(info) && /cluster_slots_assigned:0\r?\n/.test(info) && /cluster_current_epoch:0\r?\n/.test(info)) return true
        await r.call('FLUSHALL')
        await r.call('CLUSTER', 'RESET', 'HARD')
        return false
      } catch {
        return false
      } finally {
        r?.disconnect()
      }
    })
    if (res.every(Boolean)) return
    if (Date.now() > deadline) throw new Error(`nodes not fresh after ${timeoutS} s of CLUSTER RESET HARD`)
    await new Promise((r) => setTimeout(r, 500))
  }
}

/** Settings every node takes at run time (e.g. cluster-node-timeout for a sweep). */
export async function configSetAll(nodes, name, value) {
  await forAll(nodes, async (n) => {
    const r = await connect(n)
    try { await r.call('CONFIG', 'SET', name, String(value)) } finally { r.disconnect() }
  })
}

/** SHUTDOWN NOSAVE to every node at once: the fast, storm-free way to stop a cluster. */
export async function shutdownAll(nodes) {
  await forAll(nodes, async (n) => {
    try {
      const r = await connect(n, 1000)
      await r.call('SHUTDOWN', 'NOSAVE').catch(() => {})
      r.disconnect()
    } catch {}
  }, 256)
}

/**
 * `redis-cli --cluster create` (Debian's redis-tools) from the controller over these
 * nodes, then the wait for cluster_state:ok everywhere. {wallS, cliS, waitS, ok, cpu…}
 */
export async function redisCliCreate(nodes, {timeoutS = 300} = {}) {
  const args = ['--cluster', 'create', ...nodes.map(addr), '--cluster-replicas', '0', '--cluster-yes']
  const m = await measure('redis-cli', args, {timeoutS})
  const w = m.code === 0 ? await waitClusterOk(nodes, {timeoutS: Math.max(10, timeoutS - m.wallS)}) : {ok: false, ms: 0, behind: [m.stdout.slice(-500)]}
  return {...m, cliS: m.wallS, waitS: w.ms / 1000, totalS: m.wallS + w.ms / 1000, ok: m.code === 0 && w.ok, behind: w.behind}
}

/** Redis-server processes on this whole machine (every engineer's): the gossip budget. */
export function redisServersOnMachine() {
  return new Promise((resolve) => {
    const p = spawn('pgrep', ['-c', '-x', 'redis-server'])
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.on('close', () => resolve(Number(out.trim()) || 0))
  })
}
