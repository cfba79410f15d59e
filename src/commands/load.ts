import {Command, Flags} from '@oclif/core'
import {inventoryFlag, loadInv, readExtraVars, redisPasswordVars, reportError} from '../cli/common.js'
import {targetCluster, type Transports} from '../cli/cluster-state.js'
import {redisHostVars} from '../cli/redis.js'
import {closeAll} from '../play/runner.js'
import {EXIT, InputError} from '../errors.js'
import {loadRecord, saveRecord, toRecord} from '../load/keys.js'
import {progressLine, renderLoadReport, type LoadReport} from '../load/report.js'
import {runLoad, verifyKeys, type LoadResult} from '../load/run.js'
import {clusterNodesFromHosts} from '../redis/cluster.js'

export default class Load extends Command {
  static override summary = 'Write keys into the cluster from N cluster clients; report ops/s, latency, errors; with --verify, read every acknowledged key back'
  static override description = `Each client SETs <uuid>-<counter> to a value derived from the key (the key twice, or --data-size bytes of it), one request in flight per client (--pipeline N: N of them), until --duration or --requests.
The acknowledged keys are remembered as uuid + counter ranges (a few bytes per client), so --verify can read all of them back and report lost and wrong keys.
Ctrl-C (or SIGTERM) stops writing and still verifies and reports; a second one exits at once.`
  static override examples = [
    '<%= config.bin %> load -i hosts.yml --clients 50 --duration 30',
    '<%= config.bin %> load -i hosts.yml --requests 1000000 --data-size 100 --verify --json',
    '<%= config.bin %> load -i hosts.yml --requests 100000 --record keys.json   # later: load -i hosts.yml --verify-record keys.json',
  ]
  static override flags = {
    inventory: inventoryFlag,
    limit: Flags.string({char: 'l', description: 'only hosts matching this pattern'}),
    group: Flags.string({description: 'inventory group (host pattern) holding the Redis hosts', default: 'redis'}),
    'extra-vars': Flags.string({char: 'e', description: 'variables as for up (e.g. redis_password=…)', multiple: true}),
    clients: Flags.integer({char: 'c', description: 'concurrent cluster clients', default: 50, min: 1}),
    connections: Flags.integer({description: 'sets of connections (one per master each) the clients share, round robin (default: one per client)', min: 1}),
    pipeline: Flags.integer({char: 'P', description: 'requests in flight per client, sent in one write (as redis-benchmark -P); each acknowledgement is recorded as it arrives', default: 1, min: 1}),
    duration: Flags.string({char: 'd', description: 'seconds to write for (default 10 when --requests is not given)'}),
    requests: Flags.integer({char: 'n', description: 'stop after this many SETs', min: 0}),
    'data-size': Flags.integer({description: 'value length in bytes (default: the key twice, ~80 bytes)', min: 0}),
    verify: Flags.boolean({description: 'read every acknowledged key back; exit 2 if any is lost or wrong', default: false}),
    record: Flags.string({description: 'write the acknowledged keys (uuid + counter ranges) to this file'}),
    'verify-record': Flags.string({description: 'write nothing: read back the keys of a record written by --record'}),
    json: Flags.boolean({description: 'print one JSON document instead of progress and text', default: false}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Load)
    const tty = Boolean(process.stderr.isTTY) && !flags.json
    const ac = new AbortController()
    let signals = 0
    const onSignal = () => {
      if (++signals > 1) process.exit(EXIT.interrupted)
      if (!flags.json) process.stderr.write('\nstopping: in-flight requests finish, then the report (again to exit now)\n')
      ac.abort()
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    try {
      const duration = flags.duration === undefined ? undefined : Number(flags.duration)
      if (duration !== undefined && !(duration > 0)) throw new InputError(`--duration must be a positive number of seconds, got ${flags.duration}`)
      const inv = loadInv(flags.inventory)
      const extra = readExtraVars(flags['extra-vars'])
      // The cluster up deployed (its record on the hosts) unless the inventory or -e says.
      const transports: Transports = new Map()
      const recorded = await targetCluster({inv, group: flags.group, extra, transports, ssh: {}, warnings: []}).finally(() => closeAll(transports))
      const hosts = await redisHostVars(inv, flags.limit ? `${flags.group}:&${flags.limit}` : flags.group, {...redisPasswordVars(extra, inv, flags.group), ...recorded.vars, ...extra})
      const nodes = await clusterNodesFromHosts(hosts)
      const password = String(hosts[0]?.vars.redis_password ?? '') || undefined
      const report: LoadReport = {ok: true}
      let workers: LoadResult['workers']
      let dataSize = flags['data-size']
      if (flags['verify-record']) {
        const rec = loadRecord(flags['verify-record'])
        workers = rec.workers
        dataSize = rec.dataSize
      } else {
        let lastLine = 0
        const load = await runLoad({
          nodes,
          password,
          clients: flags.clients,
          pipeline: flags.pipeline,
          connections: flags.connections,
          durationMs: duration !== undefined ? duration * 1000 : flags.requests === undefined ? 10_000 : undefined,
          requests: flags.requests,
          dataSize,
          signal: ac.signal,
          progress: flags.json
            ? undefined
            : p => {
                if (tty) process.stderr.write(`\r\x1b[2K${progressLine(p)}`)
                else if (p.elapsedMs - lastLine >= 10_000) {
                  lastLine = p.elapsedMs
                  process.stderr.write(`${progressLine(p)}\n`)
                }
              },
        })
        if (tty) process.stderr.write('\r\x1b[2K')
        const {workers: w, ...summary} = load
        workers = w
        report.load = summary
        if (load.acked === 0) report.ok = false
        if (flags.record) {
          saveRecord(flags.record, toRecord(workers, dataSize))
          report.record = flags.record
        }
      }
      if (flags.verify || flags['verify-record']) {
        report.verify = await verifyKeys(nodes, workers, {
          password,
          dataSize,
          progress: tty ? (done, total) => process.stderr.write(`\r\x1b[2Kverifying ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')}`) : undefined,
        })
        if (tty) process.stderr.write('\r\x1b[2K')
        const v = report.verify
        if (v.lost > 0 || v.wrong > 0 || v.unreadable > 0) report.ok = false
      }
      process.stdout.write((flags.json ? JSON.stringify(report, null, 2) : renderLoadReport(report)) + '\n')
      process.exitCode = report.ok ? EXIT.ok : EXIT.failed
    } catch (error) {
      process.exitCode = reportError(error, flags.json)
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  }
}
