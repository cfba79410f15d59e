// What both upgrade e2e files (cluster and Sentinel topology) share: the two versions, the
// skip when this machine cannot run both, and `up` with a version's source and build.
import {existsSync} from 'node:fs'
import {resolve} from 'node:path'
import {Redis} from 'ioredis'
import {compareVersions} from '../../src/redis/upgrade.js'
import {cli, ROOT, type CliResult} from './cli.js'
import type * as ops from './cluster-ops.js'
import {redisArgs, redisTarball, redisVersion} from './redis-fleet.js'

export interface RedisSrc {
  tarball: string
  version: string
}
export const OLD: RedisSrc = {tarball: resolve(ROOT, '../shared/redis/redis-5.0.3.tar.gz'), version: '5.0.3'}
export const NEW: RedisSrc = {tarball: redisTarball(), version: redisVersion()}
export const skip = !existsSync(OLD.tarball) ? `no ${OLD.tarball}` : compareVersions(NEW.version, OLD.version) <= 0 ? `the e2e Redis ${NEW.version} is not newer than ${OLD.version}` : false

export const args = (b: Record<string, string>, v: RedisSrc) => redisArgs({redis_version: v.version, redis_source: v.tarball, ...b})
export const up = (i: string, b: Record<string, string>, v: RedisSrc, ...more: string[]) => cli(['up', '-i', i, ...args(b, v), ...more, '--json'], {timeoutMs: 900_000})
export const tasks = (r: CliResult) => (r.json?.tasks ?? []) as ops.Task[]
export const task = (r: CliResult, re: RegExp) => tasks(r).filter((t) => re.test(t.task))
export const changed = (r: CliResult) => tasks(r).filter((t) => t.status === 'changed')

// One node's INFO as key → value, on a connection of its own (no retries: a node that is down fails now).
export async function info(n: {host: string; port: number}, password?: string): Promise<Record<string, string>> {
  const r = new Redis({...n, password, lazyConnect: true, connectTimeout: 2000, commandTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null})
  r.on('error', () => {})
  try {
    await r.connect()
    const text = String(await r.call('INFO'))
    return Object.fromEntries(
      text
        .split(/\r?\n/)
        .filter((l) => l.includes(':') && !l.startsWith('#'))
        .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]),
    )
  } finally {
    r.disconnect()
  }
}
