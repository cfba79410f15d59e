#!/usr/bin/env node
// Simulated Redis Cluster nodes, for measuring the controller at a scale this machine
// cannot run for real (1000 masters: the kernel's TCP memory gives out near 300 gossiping
// redis-servers). One process per test host answers on its ports with just what the
// formation and `up --check` ask: PING, INFO, DBSIZE, CLUSTER INFO/NODES/MYID, ADDSLOTS,
// SET-CONFIG-EPOCH, MEET, REPLICATE, CONFIG GET/SET. There is no gossip: once the host's
// first MEET arrived and --converge-ms passed, every node of the host reports the whole
// planned cluster (ids from the address, slots and epochs from the product's own planner
// over the same inventory). Slots a node receives are checked against that plan and
// mismatches are counted, so a wrong formation command is still caught.
//
//   ip netns exec NS node bench/lib/sim-redis.mjs --ip 10.213.7.11 --hosts h1=10.213.7.11,h2=… \
//       --port-start 6379 --count 100 [--converge-ms 500] [--stats FILE]
import {createHash} from 'node:crypto'
import {writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {join} from 'node:path'
import {parseArgs} from 'node:util'
import {ROOT} from './tools.mjs'

const {values: o} = parseArgs({
  options: {
    ip: {type: 'string'},
    hosts: {type: 'string'},
    'port-start': {type: 'string', default: '6379'},
    count: {type: 'string', default: '100'},
    'converge-ms': {type: 'string', default: '500'},
    stats: {type: 'string'},
  },
})
const {planCluster} = await import(join(ROOT, 'dist/src/redis/plan.js'))

const PORT0 = Number(o['port-start'])
const COUNT = Number(o.count)
const CONVERGE_MS = Number(o['converge-ms'])
const hosts = o.hosts.split(',').map((kv) => kv.split('='))
const all = hosts.flatMap(([host, ip]) => Array.from({length: COUNT}, (_, i) => ({host, ip, port: PORT0 + i})))
const plan = planCluster(all, 0)
const idOf = (ip, port) => createHash('sha1').update(`${ip}:${port}`).digest('hex')
const planned = new Map(plan.masters.map((m) => [m.addr, m]))
const rangeText = (ranges) => ranges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(' ')

const stats = {commands: 0, meets: 0, addslots: 0, slotMismatches: 0, epochMismatches: 0, nodesReplies: 0, nodesBytes: 0}
let firstMeetAt = 0
const converged = () => firstMeetAt > 0 && Date.now() - firstMeetAt >= CONVERGE_MS

// Everyone's line as the formed cluster would print it, the node's own added per reply.
let others
function clusterLines() {
  others ??= all.map((n) => {
    const m = planned.get(`${n.ip}:${n.port}`)
    return `${idOf(n.ip, n.port)} ${n.ip}:${n.port}@${n.port + 10000} master - 0 1700000000000 ${m?.epoch ?? 0} connected ${m ? rangeText(m.slots) : ''}`.trimEnd()
  })
  return others
}

function makeNode(port) {
  const ip = o.ip
  return {ip, port, id: idOf(ip, port), addr: `${ip}:${port}`, epoch: 0, slots: [], met: false}
}

function nodeInfo(n) {
  const own = n.slots.length
  if (converged()) {
    return {cluster_state: 'ok', cluster_slots_assigned: 16384, cluster_slots_ok: 16384, cluster_known_nodes: all.length, cluster_size: plan.masters.length, cluster_current_epoch: plan.masters.length, cluster_my_epoch: n.epoch}
  }
  return {cluster_state: 'fail', cluster_slots_assigned: own, cluster_slots_ok: own, cluster_known_nodes: 1, cluster_size: own ? 1 : 0, cluster_current_epoch: n.epoch, cluster_my_epoch: n.epoch}
}

function compress(slots) {
  const s = [...new Set(slots)].sort((a, b) => a - b)
  const out = []
  for (let i = 0; i < s.length; i++) {
    let j = i
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++
    out.push([s[i], s[j]])
    i = j
  }
  return out
}

function clusterNodes(n) {
  const mine = `${n.id} ${n.addr}@${n.port + 10000} myself,master - 0 0 ${n.epoch} connected ${rangeText(compress(n.slots))}`.trimEnd()
  if (!converged()) return mine + '\n'
  const lines = clusterLines()
  const at = all.findIndex((x) => x.ip === n.ip && x.port === n.port)
  return lines.map((l, i) => (i === at ? mine : l)).join('\n') + '\n'
}

// RESP replies.
const simple = (s) => `+${s}\r\n`
const error = (s) => `-${s}\r\n`
const int = (i) => `:${i}\r\n`
const bulk = (s) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`
const array = (xs) => `*${xs.length}\r\n${xs.map(bulk).join('')}`
const infoText = (fields) => Object.entries(fields).map(([k, v]) => `${k}:${v}`).join('\r\n') + '\r\n'

function command(n, argv) {
  stats.commands++
  const [c0 = '', c1 = ''] = argv
  const cmd = c0.toUpperCase()
  const sub = c1.toUpperCase()
  switch (cmd) {
    case 'PING': return simple('PONG')
    case 'QUIT': return simple('OK')
    case 'SELECT': case 'CLIENT': case 'READONLY': return simple('OK')
    case 'DBSIZE': return int(0)
    case 'COMMAND': return '*0\r\n'
    case 'INFO': return bulk(`# Server\r\n${infoText({redis_version: '7.0.15', redis_mode: 'cluster', process_id: process.pid, tcp_port: n.port, config_file: ''})}`)
    case 'CONFIG': return sub === 'GET' ? '*0\r\n' : simple('OK')
    case 'CLUSTER':
      switch (sub) {
        case 'INFO': return bulk(infoText(nodeInfo(n)))
        case 'MYID': return bulk(n.id)
        case 'NODES': {
          const text = clusterNodes(n)
          stats.nodesReplies++
          stats.nodesBytes += text.length
          return bulk(text)
        }
        case 'ADDSLOTS':
          stats.addslots++
          n.slots.push(...argv.slice(2).map(Number))
          return simple('OK')
        case 'ADDSLOTSRANGE':
          stats.addslots++
          for (let i = 2; i + 1 < argv.length; i += 2) for (let s = Number(argv[i]); s <= Number(argv[i + 1]); s++) n.slots.push(s)
          return simple('OK')
        case 'SET-CONFIG-EPOCH': {
          if (n.met) return error('ERR The user can assign a config epoch only when the node does not know any other node.')
          n.epoch = Number(argv[2])
          if (planned.get(n.addr)?.epoch !== n.epoch) stats.epochMismatches++
          // The former sends a node's ADDSLOTS and then its epoch in one pipeline.
          checkSlots(n)
          return simple('OK')
        }
        case 'MEET':
          stats.meets++
          n.met = true
          firstMeetAt ||= Date.now()
          return simple('OK')
        case 'REPLICATE': case 'RESET': case 'SETSLOT': return simple('OK')
        default: return error(`ERR unknown subcommand '${c1}' (simulated node)`)
      }
    default: return error(`ERR unknown command '${c0}' (simulated node)`)
  }
}

// A master's slots must be exactly the plan's.
function checkSlots(n) {
  const want = planned.get(n.addr)
  if (want && rangeText(compress(n.slots)) !== rangeText(want.slots)) stats.slotMismatches++
}

// Minimal RESP request parser: arrays of bulk strings (what ioredis and redis-cli send).
function parser(onCommand) {
  let buf = Buffer.alloc(0)
  return (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk
    for (;;) {
      if (buf.length === 0) return
      if (buf[0] !== 0x2a) { // inline command
        const end = buf.indexOf('\r\n')
        if (end < 0) return
        onCommand(buf.subarray(0, end).toString().trim().split(/\s+/))
        buf = buf.subarray(end + 2)
        continue
      }
      let pos = buf.indexOf('\r\n')
      if (pos < 0) return
      const n = Number(buf.subarray(1, pos).toString())
      let at = pos + 2
      const argv = []
      for (let i = 0; i < n; i++) {
        const e = buf.indexOf('\r\n', at)
        if (e < 0) return
        const len = Number(buf.subarray(at + 1, e).toString())
        if (buf.length < e + 2 + len + 2) return
        argv.push(buf.subarray(e + 2, e + 2 + len).toString())
        at = e + 2 + len + 2
      }
      buf = buf.subarray(at)
      onCommand(argv)
    }
  }
}

let listening = 0
for (let i = 0; i < COUNT; i++) {
  const node = makeNode(PORT0 + i)
  const server = createServer((sock) => {
    sock.setNoDelay(true)
    sock.on('error', () => {})
    sock.on('data', parser((argv) => {
      const reply = command(node, argv)
      sock.write(reply)
      if (argv[0]?.toUpperCase() === 'QUIT') sock.end()
    }))
  })
  server.listen(node.port, node.ip, () => {
    if (++listening === COUNT) console.log(`ready ${o.ip} ${COUNT} ports`)
  })
}

const dump = () => { if (o.stats) writeFileSync(o.stats, JSON.stringify(stats) + '\n') }
setInterval(dump, 1000).unref()
process.on('SIGTERM', () => { dump(); process.exit(0) })
