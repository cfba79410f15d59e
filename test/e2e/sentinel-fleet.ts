// A Sentinel deployment started by hand, laid out exactly as planSentinelLayout says (group
// i on port start + i, master on host i mod H, replicas on the next hosts, master names
// `<cluster>-<port>`, Sentinels with announce-ip on the data hosts), for the tests of the
// controller-side commands (status, failover, load) until `up` builds it. Everything runs
// from /root/sentinel-fleet on each host and is stopped by its pidfiles.
import assert from 'node:assert/strict'
import {Redis} from 'ioredis'
import type {Fleet, TestHost} from '../harness/fleet.js'
import {planSentinelLayout, type SentinelLayout} from '../../src/redis/sentinel-layout.js'

export const DIR = '/root/sentinel-fleet'

export interface SentinelFleetOptions {
  bin: string
  portStart: number
  groups: number
  replicas: number
  clusterName: string
  password?: string
  sentinelPort?: number
  downAfterMs?: number
  failoverTimeoutMs?: number
}

export interface SentinelFleet {
  layout: SentinelLayout
  hostOf(ip: string): TestHost
  /** kill -9 the Sentinel on this host (by its pidfile); returns once it is gone. */
  killSentinel(h: TestHost): Promise<void>
  startSentinel(h: TestHost): Promise<void>
  /** Every instance and Sentinel of ours stopped (by pidfile), the directory removed. */
  stop(): Promise<void>
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

function dataConf(o: SentinelFleetOptions, ip: string, port: number, master?: string): string {
  const lines = [
    `port ${port}`,
    `bind ${ip}`,
    'protected-mode no',
    'daemonize yes',
    `pidfile ${DIR}/${port}/redis.pid`,
    `logfile ${DIR}/${port}/redis.log`,
    `dir ${DIR}/${port}`,
    'save ""',
    'appendonly no',
    `replica-announce-ip ${ip}`,
  ]
  if (o.password) lines.push(`requirepass ${o.password}`, `masterauth ${o.password}`)
  if (master) lines.push(`replicaof ${master.replace(':', ' ')}`)
  return lines.join('\n') + '\n'
}

function sentinelConf(o: SentinelFleetOptions, layout: SentinelLayout, ip: string): string {
  const port = o.sentinelPort ?? 26379
  const lines = [
    `port ${port}`,
    `bind ${ip}`,
    'protected-mode no',
    'daemonize yes',
    `pidfile ${DIR}/sentinel/sentinel.pid`,
    `logfile ${DIR}/sentinel/sentinel.log`,
    `dir ${DIR}/sentinel`,
    `sentinel announce-ip ${ip}`,
  ]
  for (const g of layout.groups) {
    lines.push(`sentinel monitor ${g.name} ${g.master.ip} ${g.port} ${layout.quorum}`)
    lines.push(`sentinel down-after-milliseconds ${g.name} ${o.downAfterMs ?? 5000}`)
    lines.push(`sentinel failover-timeout ${g.name} ${o.failoverTimeoutMs ?? 60000}`)
    lines.push(`sentinel parallel-syncs ${g.name} 1`)
    if (o.password) lines.push(`sentinel auth-pass ${g.name} ${o.password}`)
  }
  return lines.join('\n') + '\n'
}

async function run(fleet: Fleet, h: TestHost, cmd: string): Promise<string> {
  const r = await fleet.nsExec(h, cmd)
  assert.equal(r.code, 0, `${h.name}: ${cmd}\n${r.stdout}${r.stderr}`)
  return r.stdout
}

const STOP = (pidfile: string) =>
  `[ -f ${pidfile} ] && { p=$(cat ${pidfile}); kill -KILL $p 2>/dev/null; n=0; while [ -r /proc/$p/stat ] && ! grep -q ') [ZX]' /proc/$p/stat && [ $n -lt 100 ]; do sleep 0.05; n=$((n+1)); done; rm -f ${pidfile}; }; true`

/** Start the deployment and wait until every Sentinel knows every group's replicas and the other Sentinels. */
export async function startSentinelFleet(fleet: Fleet, o: SentinelFleetOptions): Promise<SentinelFleet> {
  const data = fleet.hosts.map((h) => ({host: h.name, ip: h.ip}))
  const layout = planSentinelLayout({
    clusterName: o.clusterName,
    data,
    sentinels: data,
    haproxy: [],
    portStart: o.portStart,
    groups: o.groups,
    replicas: o.replicas,
    sentinelPort: o.sentinelPort ?? 26379,
  })
  const hostOf = (ip: string) => fleet.hosts.find((h) => h.ip === ip)!
  const startData = async (h: TestHost) => {
    const mine = layout.groups.filter((g) => [g.master, ...g.replicas].some((m) => m.host === h.name))
    const cmds = mine.map((g) => {
      const master = g.master.host === h.name ? undefined : `${g.master.ip}:${g.port}`
      return `mkdir -p ${DIR}/${g.port} && printf %s ${q(dataConf(o, h.ip, g.port, master))} > ${DIR}/${g.port}/redis.conf && ${o.bin}/redis-server ${DIR}/${g.port}/redis.conf`
    })
    if (cmds.length) await run(fleet, h, cmds.join(' && '))
  }
  const startSentinel = async (h: TestHost) => {
    await run(fleet, h, `mkdir -p ${DIR}/sentinel && printf %s ${q(sentinelConf(o, layout, h.ip))} > ${DIR}/sentinel/sentinel.conf && ${o.bin}/redis-server ${DIR}/sentinel/sentinel.conf --sentinel`)
  }
  await Promise.all(fleet.hosts.map(startData))
  await Promise.all(fleet.hosts.map(startSentinel))
  await waitSentinelsReady(layout, o.replicas)
  return {
    layout,
    hostOf,
    killSentinel: (h) => run(fleet, h, STOP(`${DIR}/sentinel/sentinel.pid`)).then(() => {}),
    startSentinel,
    async stop() {
      await Promise.all(fleet.hosts.map((h) => fleet.nsExec(h, `for f in ${DIR}/*/*.pid; do ${STOP('"$f"')}; done; rm -rf ${DIR}`)))
    },
  }
}

/** Until every Sentinel lists each group's replicas and the other Sentinels (hello messages take a few seconds). */
export async function waitSentinelsReady(layout: SentinelLayout, replicas: number, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms
  let last = ''
  while (Date.now() < deadline) {
    const ok = await Promise.all(
      layout.sentinels.map(async (s) => {
        const r = new Redis({host: s.ip, port: s.port, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000})
        r.on('error', () => {})
        try {
          await r.connect()
          for (const g of layout.groups) {
            const a = (await r.call('SENTINEL', 'master', g.name)) as string[]
            const f: Record<string, string> = {}
            for (let i = 0; i + 1 < a.length; i += 2) f[a[i]] = a[i + 1]
            if (Number(f['num-slaves']) < replicas || Number(f['num-other-sentinels']) < layout.sentinels.length - 1) {
              last = `${s.ip}: ${g.name} num-slaves=${f['num-slaves']} num-other-sentinels=${f['num-other-sentinels']}`
              return false
            }
          }
          return true
        } catch (e) {
          last = `${s.ip}: ${(e as Error).message}`
          return false
        } finally {
          r.disconnect()
        }
      }),
    )
    if (ok.every(Boolean)) return
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`Sentinels not ready after ${ms} ms: ${last}`)
}
