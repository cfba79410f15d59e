// A throwaway formation, NOT the product's: it tests the fix proposed in bench/README.md
// for the slow end of a formation. Redis learns a master's slots only from a message that
// master sends after the handshake is complete (the handshake's own PONG is not read for
// slots), so after everyone knows everyone each node still waits up to
// cluster-node-timeout / 2 for the next ping of every master it learned about late.
// Here the controller, which knows the plan, tells each such node the owners directly
// (CLUSTER SETSLOT <slot> NODE <id>: the same owner the master's next ping would report),
// once it knows all peers and lacks at most `pushBudget` slots. Everything else is the
// product's formation: slots and epochs, every node MEETs the seed, nodes still missing
// peers after a second MEET them directly.
//   formProto(nodes, plan, {pushBudget, log}) → {ms, commands, pushed, phases}
import {Redis} from 'ioredis'

export async function formProto(nodes, plan, {pushSlots = true, pushBudget = 4096, formingNodeTimeoutMs, timeoutMs = 300_000, log = () => {}} = {}) {
  const t0 = Date.now()
  const phases = []
  const mark = (phase) => { phases.push({phase, ms: Date.now() - t0}); log(`${((Date.now() - t0) / 1000).toFixed(2)} ${phase}`) }
  const addr = (n) => `${n.ip}:${n.port}`
  const conns = new Map()
  const each = async (list, fn, c = 64) => {
    let i = 0
    await Promise.all(Array.from({length: Math.min(c, list.length)}, async () => { while (i < list.length) { const k = i++; await fn(list[k], k) } }))
  }
  await each(nodes, async (n) => {
    const r = new Redis({host: n.ip, port: n.port, lazyConnect: true, enableReadyCheck: false, disableClientInfo: true, maxRetriesPerRequest: 0, retryStrategy: () => null, commandTimeout: 30_000})
    r.on('error', () => {})
    await r.connect()
    conns.set(addr(n), r)
  })
  const ids = new Map()
  await each(nodes, async (n) => ids.set(addr(n), String(await conns.get(addr(n)).call('CLUSTER', 'MYID'))))
  mark('connected, ids read')
  // Option: form under a shorter cluster-node-timeout, restored at the end. Redis keeps a
  // master that has just got its first slots `fail` for min(node timeout, 5 s) (the
  // rejoin delay of clusterUpdateState: a master without slots counts as a minority
  // partition), and pings each peer every node timeout / 2: both shrink with it.
  let configured
  if (formingNodeTimeoutMs) {
    configured = (await conns.get(addr(nodes[0])).call('CONFIG', 'GET', 'cluster-node-timeout'))[1]
    await each(nodes, async (n) => conns.get(addr(n)).call('CONFIG', 'SET', 'cluster-node-timeout', String(formingNodeTimeoutMs)))
    mark(`cluster-node-timeout ${configured} -> ${formingNodeTimeoutMs} for the formation`)
  }
  let commands = 0
  await each(plan.masters, async (m) => {
    const p = conns.get(m.addr).pipeline()
    for (const [a, b] of m.slots) {
      const s = []
      for (let x = a; x <= b; x++) s.push(String(x))
      for (let i = 0; i < s.length; i += 1000) { p.call('CLUSTER', 'ADDSLOTS', ...s.slice(i, i + 1000)); commands++ }
    }
    p.call('CLUSTER', 'SET-CONFIG-EPOCH', String(m.epoch))
    commands++
    await p.exec()
  })
  mark('slots and epochs set')
  const seed = plan.masters[0]
  await each(nodes.filter((n) => addr(n) !== seed.addr), async (n) => { await conns.get(addr(n)).call('CLUSTER', 'MEET', seed.ip, String(seed.port)); commands++ })
  mark('all met the seed')
  const N = nodes.length
  let pushed = 0
  let allKnown = false
  const slotsOf = new Map(plan.masters.map((m) => [m.addr, m.slots]))
  const pushedTo = new Set()
  let lastNudge = Date.now()
  for (;;) {
    if (Date.now() - t0 > timeoutMs) throw new Error('prototype formation timed out')
    const infos = new Map()
    await each(nodes, async (n) => infos.set(addr(n), String(await conns.get(addr(n)).call('CLUSTER', 'INFO'))), 128)
    const num = (s, k) => Number(new RegExp(`${k}:(\\d+)`).exec(s)?.[1])
    const known = [...infos.values()].filter((s) => num(s, 'cluster_known_nodes') === N).length
    const ok = [...infos.values()].filter((s) => s.includes('cluster_state:ok')).length
    if (!allKnown && known === N) { allKnown = true; mark('every node knows every node') }
    if (ok === N) break
    // As the product does: every second, nodes gossip has not told about every peer MEET
    // the ones they miss.
    if (!allKnown && Date.now() - lastNudge >= 1000) {
      lastNudge = Date.now()
      const behind = nodes.filter((n) => num(infos.get(addr(n)), 'cluster_known_nodes') < N)
      await each(behind, async (n) => {
        const r = conns.get(addr(n))
        const view = String(await r.call('CLUSTER', 'NODES'))
        const knownIds = new Set(view.split('\n').filter((l) => l && !l.includes('handshake')).map((l) => l.slice(0, 40)))
        const p = r.pipeline()
        let k = 0
        for (const o of nodes) if (o !== n && !knownIds.has(ids.get(addr(o)))) { p.call('CLUSTER', 'MEET', o.ip, String(o.port)); k++ }
        if (k) { await p.exec(); commands += k }
      })
    }
    // Nodes that know everyone but miss slots: read their view, push the planned owners.
    const lagging = !pushSlots ? [] : nodes.filter((n) => num(infos.get(addr(n)), 'cluster_known_nodes') === N && num(infos.get(addr(n)), 'cluster_slots_assigned') < 16384 && !pushedTo.has(addr(n)))
    await each(lagging, async (n) => {
      const r = conns.get(addr(n))
      const view = String(await r.call('CLUSTER', 'NODES'))
      const withSlots = new Set(view.split('\n').filter((l) => l.split(' ').length > 8).map((l) => l.slice(0, 40)))
      const missing = []
      for (const m of plan.masters) {
        if (withSlots.has(ids.get(m.addr))) continue
        for (const [a, b] of slotsOf.get(m.addr)) for (let s = a; s <= b; s++) missing.push([s, ids.get(m.addr)])
      }
      if (missing.length === 0 || missing.length > pushBudget) return
      const p = r.pipeline()
      for (const [s, id] of missing) p.call('CLUSTER', 'SETSLOT', String(s), 'NODE', id)
      const res = await p.exec()
      commands += missing.length
      pushed += res.filter(([e]) => !e).length
      pushedTo.add(addr(n))
    })
    await new Promise((r) => setTimeout(r, 100))
  }
  mark('cluster_state:ok on every node')
  if (configured) {
    await each(nodes, async (n) => conns.get(addr(n)).call('CONFIG', 'SET', 'cluster-node-timeout', configured))
    mark(`cluster-node-timeout back to ${configured}`)
  }
  for (const r of conns.values()) r.disconnect()
  return {ms: Date.now() - t0, commands, pushed, phases}
}
