import assert from 'node:assert/strict'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Cluster} from 'ioredis'
import {createFleet, type Fleet, type TestHost} from '../harness/fleet.js'
import {cli, show, type CliResult} from './cli.js'
import {sharedRedisBuild} from './fault-tools.js'
import {redisArgs, redisVersion} from './redis-fleet.js'

// Persistence across down --keep-data and AOF turned on (issue 10, cases 3 and 4), on one
// fleet of 2 hosts × 3 ports, in the default shape (save "", appendonly no). Every write
// counts only when acknowledged (WAIT 1 with a replica, the master's OK without), and no
// acknowledged write may be lost. Run on 5.0.3 too:
// BAREMETAL_REDIS_TARBALL=/work/shared/redis/redis-5.0.3.tar.gz.

const PORT = 7000
const COUNT = 3
const DIR = '/root/redis_cluster'
const BASE = {redis_port_start: PORT, redis_count: COUNT, redis_save: '', redis_appendonly: false, redis_cluster_node_timeout: 5000}
const ports = Array.from({length: COUNT}, (_, i) => PORT + i)

let fleet: Fleet
let inv: string
let build: Record<string, string> = {}
let BIN = ''
let replicas = 1

interface Task {
  task: string
  host: string
  status: string
  msg: string
}

function layout(vars: Record<string, unknown>): void {
  replicas = Number(vars.redis_replicas)
  inv = fleet.writeInventory({path: join(fleet.dir, 'redis.yml'), vars: {...BASE, ...vars, ...build}})
}

before(async () => {
  fleet = await createFleet(2)
  build = await sharedRedisBuild(fleet, fleet.hosts[0])
  BIN = build.redis_bin_dir
})

after(async () => {
  if (fleet) {
    await cli(['down', '-i', inv], {timeoutMs: 120_000}).catch(() => {})
    await fleet.destroy()
  }
})

const up = (...args: string[]) => cli(['up', '-i', inv, ...redisArgs(), ...args, '--json'], {timeoutMs: 900_000})
const down = (...args: string[]) => cli(['down', '-i', inv, ...args, '--json'], {timeoutMs: 300_000})
const byName = (r: CliResult, name: string) => (r.json?.tasks as Task[] | undefined ?? []).filter((t) => t.task === name)
const host = (name: string): TestHost => fleet.hosts.find((h) => h.name === name)!

async function sh(h: TestHost, cmd: string): Promise<string> {
  const r = await fleet.nsExec(h, cmd)
  assert.equal(r.code, 0, `${h.name}: ${cmd}\n${r.stdout}${r.stderr}`)
  return r.stdout
}

const redisCli = (h: TestHost, port: number, cmd: string) => sh(h, `${BIN}/redis-cli -h ${h.ip} -p ${port} ${cmd}`)

function client(): Cluster {
  return new Cluster(fleet.hosts.map((h) => ({host: h.ip, port: PORT})), {
    redisOptions: {connectTimeout: 3000, maxRetriesPerRequest: 3, commandTimeout: 5000},
    clusterRetryStrategy: (n) => (n > 50 ? null : 200),
    retryDelayOnFailover: 300,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 300,
    maxRedirections: 32,
  })
}

// SET, then WAIT 1 on the same connection: acknowledged = on a replica too (without
// replicas: the master said OK). Never hangs: a cluster down for longer makes it throw.
async function writeAcked(c: Cluster, key: string, value: string): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`write of ${key} timed out`)), 8000)))
  try {
    if (replicas === 0) return (await Promise.race([c.set(key, value), timeout])) === 'OK'
    const res = await Promise.race([c.pipeline().set(key, value).call('WAIT', '1', '2000').exec(), timeout])
    return !!res && !res[0][0] && !res[1][0] && Number(res[1][1]) >= 1
  } finally {
    clearTimeout(timer)
  }
}

const acked = new Map<string, string>()

async function writeKeys(prefix: string, n: number): Promise<void> {
  const c = client()
  try {
    for (let i = 0; i < n; i++) {
      const k = `${prefix}:${i}`
      const v = `v${i}-${prefix}`
      // Right after formation a replica may still be in its first sync: WAIT says 0 until then.
      let ok = false
      for (let t = 0; t < 40 && !ok; t++) {
        ok = await writeAcked(c, k, v).catch(() => false)
        if (!ok) await new Promise((r) => setTimeout(r, 500))
      }
      assert.ok(ok, `write of ${k} not acknowledged`)
      acked.set(k, v)
    }
  } finally {
    c.disconnect()
  }
}

// Writes until stopped, through restarts; only acknowledged keys count.
function backgroundWriter(prefix: string): {stop(): Promise<number>} {
  let running = true
  let count = 0
  const c = client()
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const k = `${prefix}:${i}`
      const v = `w${i}`
      try {
        if (await writeAcked(c, k, v)) {
          acked.set(k, v)
          count++
        }
      } catch {
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  })()
  return {
    async stop() {
      running = false
      await loop
      c.disconnect()
      return count
    },
  }
}

async function assertNoKeyLost(): Promise<void> {
  const c = client()
  try {
    const keys = [...acked.keys()]
    const missing: string[] = []
    for (let i = 0; i < keys.length; i += 50) {
      const vals = await Promise.all(keys.slice(i, i + 50).map((k) => Promise.race([c.get(k), new Promise<string>((r) => setTimeout(() => r('(read timed out)'), 10_000))])))
      vals.forEach((v, j) => {
        if (v !== acked.get(keys[i + j])) missing.push(`${keys[i + j]}=${v}`)
      })
    }
    assert.deepEqual(missing.slice(0, 20), [], `${missing.length} of ${keys.length} acknowledged key(s) lost or wrong`)
  } finally {
    c.disconnect()
  }
}

async function waitClusterOk(ms = 90_000): Promise<{masters: Array<{id: string; slots: string}>}> {
  const deadline = Date.now() + ms
  for (;;) {
    const r = await cli(['status', '-i', inv, '--json'], {timeoutMs: 60_000})
    if (r.json?.ok) return r.json
    if (Date.now() > deadline) assert.fail(`cluster not ok: ${show(r)}`)
    await new Promise((res) => setTimeout(res, 1000))
  }
}

// Shell: a pid counts as alive until it is gone or a zombie.
const ALIVE = `alive() { [ -r /proc/$1/stat ] && ! grep -q ') [ZX]' /proc/$1/stat; }`
const aliveCount = (h: TestHost) => sh(h, `${ALIVE}; n=0; for f in ${DIR}/*/redis.pid; do [ -f "$f" ] && alive $(cat $f) && n=$((n+1)); done; echo $n`).then(Number)

// Every instance says AOF is on, its rewrite done.
async function assertAofOn(): Promise<void> {
  for (const h of fleet.hosts) {
    for (const p of ports) {
      const info = await redisCli(h, p, 'INFO persistence')
      assert.match(info, /aof_enabled:1/, `${h.name}:${p}`)
      assert.match(info, /aof_rewrite_in_progress:0/, `${h.name}:${p}`)
    }
  }
}

describe(`durability: down --keep-data and AOF turned on (Redis ${redisVersion()})`, () => {
  it('case 3: down --keep-data saves every instance (save ""), up brings every acknowledged key back; a save that fails leaves that instance running, exit != 0', async () => {
    layout({redis_replicas: 1})
    let r = await up()
    assert.equal(r.code, 0, show(r))
    const before = await waitClusterOk()
    await writeKeys('keep', 300)

    const t0 = Date.now()
    r = await down('--keep-data')
    const downMs = Date.now() - t0
    assert.equal(r.code, 0, show(r))
    for (const t of byName(r, 'Instances stopped')) assert.match(t.msg, new RegExp(`^stopped ${COUNT} `), t.msg)
    // What down left, checked after the keys (the symptom comes first when this fails).
    const left = await Promise.all(fleet.hosts.map(async (h) => ({h, alive: await aliveCount(h), files: (await fleet.nsExec(h, `for p in ${ports.join(' ')}; do ls ${DIR}/$p; cat ${DIR}/$p/saved-by-baremetal; done`)).stdout})))
    console.log(`# down --keep-data of ${2 * COUNT} instances: ${downMs} ms`)

    r = await up()
    assert.equal(r.code, 0, show(r))
    const again = await waitClusterOk()
    assert.deepEqual(again.masters.map((m) => m.slots).sort(), before.masters.map((m) => m.slots).sort())
    await assertNoKeyLost()
    for (const {h, alive, files} of left) {
      assert.equal(alive, 0, `${h.name}: every instance stopped`)
      assert.equal(files.match(/^dump\.rdb$/gm)?.length, COUNT, `${h.name}: a dump.rdb per port\n${files}`)
      assert.equal(files.match(/^\d{10}$/gm)?.length, COUNT, `${h.name}: the saved-by-baremetal marker per port\n${files}`)
    }
    for (const h of fleet.hosts) assert.doesNotMatch(await sh(h, `ls ${DIR}/${PORT}`), /saved-by-baremetal/, 'the marker goes when the instance starts')

    // A save that cannot be written: a directory where Redis writes its temp RDB.
    await writeKeys('keep2', 100)
    const h1 = host('h1')
    const pid = (await sh(h1, `cat ${DIR}/${PORT}/redis.pid`)).trim()
    await sh(h1, `mkdir ${DIR}/${PORT}/temp-${pid}.rdb`)
    r = await down('--keep-data')
    assert.notEqual(r.code, 0, show(r))
    const failed = byName(r, 'Instances stopped').find((t) => t.host === 'h1')!
    assert.equal(failed.status, 'failed', failed.msg)
    assert.match(failed.msg, new RegExp(`port ${PORT}: not saved, left running \\(pid ${pid}\\): .*Errors trying to SHUTDOWN`), failed.msg)
    assert.match(await redisCli(h1, PORT, 'PING'), /PONG/, 'the instance whose save failed still runs')
    assert.equal(await aliveCount(h1), 1, 'the others of h1 saved and stopped')
    assert.equal(await aliveCount(host('h2')), 0)

    await sh(h1, `rmdir ${DIR}/${PORT}/temp-${pid}.rdb`)
    r = await up()
    assert.equal(r.code, 0, show(r))
    await waitClusterOk()
    await assertNoKeyLost()
  })

  it('case 4b: an instance started (not restarted) with appendonly yes, no AOF and a dump.rdb loads the RDB, then AOF is on', async () => {
    // A fresh cluster without replicas: a master that comes up empty has no one to sync from.
    await down()
    acked.clear()
    layout({redis_replicas: 0})
    let r = await up()
    assert.equal(r.code, 0, show(r))
    await waitClusterOk()
    await writeKeys('rdb', 300)
    r = await down('--keep-data')
    assert.equal(r.code, 0, show(r))

    r = await up('-e', 'redis_appendonly=true')
    assert.equal(r.code, 0, show(r))
    await waitClusterOk()
    await assertNoKeyLost()
    for (const t of byName(r, 'Instances running')) assert.match(t.msg, new RegExp(`AOF turned on live after loading dump.rdb on ${COUNT} `), t.msg)
    await assertAofOn()
    // Converged: the snapshot says appendonly yes now, nothing left to do.
    r = await up('-e', 'redis_appendonly=true')
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(byName(r, 'Instances use the current configuration').map((t) => t.status), ['ok'])
  })

  it('case 4: appendonly turned on together with a restart-only change (tcp-backlog), writer running: AOF on live first, then the restart; 0 acknowledged writes lost', async () => {
    // Back to appendonly no (live): the AOF files of case 4b stay behind, stale.
    let r = await up()
    assert.equal(r.code, 0, show(r))
    await writeKeys('aof', 200)
    const w = backgroundWriter('bg')
    await new Promise((res) => setTimeout(res, 1000))
    const t0 = Date.now()
    r = await up('-e', 'redis_appendonly=true', '-e', JSON.stringify({redis_extra_config: ['tcp-backlog 200']}))
    const upMs = Date.now() - t0
    await new Promise((res) => setTimeout(res, 1000))
    const written = await w.stop()
    assert.equal(r.code, 0, show(r))
    console.log(`# up with appendonly + tcp-backlog (AOF on live, then rolling restart of ${2 * COUNT} masters): ${upMs} ms; ${written} background writes acknowledged`)
    assert.ok(written > 0, 'the writer got acknowledged writes through')
    await waitClusterOk()
    await assertNoKeyLost()
    const cfg = byName(r, 'Instances use the current configuration')[0]
    assert.match(cfg.msg, /AOF turned on live before the restart on 6 instance\(s\)/, cfg.msg)
    assert.match(cfg.msg, /restarted for tcp-backlog/, cfg.msg)
    await assertAofOn()
    for (const h of fleet.hosts) assert.match(await redisCli(h, PORT, 'CONFIG GET tcp-backlog'), /^200$/m)
  })
})
