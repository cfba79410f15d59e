import {existsSync, readdirSync} from 'node:fs'
import {join} from 'node:path'

// Redis for the e2e tests comes from Debian's pristine source tarball (no internet
// here), pushed from the controller by the product's own `redis_source` path.
const CACHE = process.env.BAREMETAL_SRC_CACHE ?? '/var/cache/baremetal-src'

export function redisTarball(): string {
  const fromEnv = process.env.BAREMETAL_REDIS_TARBALL
  if (fromEnv) return fromEnv
  const files = existsSync(CACHE)
    ? readdirSync(CACHE)
        .filter((f) => /^redis_[\d.]+\.orig\.tar\.gz$/.test(f))
        .sort()
    : []
  if (files.length === 0) throw new Error(`no Redis source tarball in ${CACHE}: run scripts/redis-source.sh first`)
  return join(CACHE, files[files.length - 1])
}

// Debian's redis_7.0.15.orig.tar.gz, or ../shared/redis/redis-5.0.3.tar.gz (our users' version)
// through BAREMETAL_REDIS_TARBALL.
export function redisVersion(): string {
  const m = /redis[_-]([\d.]+?)(?:\.orig)?\.tar\.gz$/.exec(redisTarball())
  return m ? m[1] : '7.0.15'
}

/** -e arguments every e2e `up` passes: local tarball, its version, a faster build (libc malloc, no TLS). */
export function redisArgs(extra: Record<string, string | number | boolean> = {}): string[] {
  const vars: Record<string, string | number | boolean> = {
    redis_version: redisVersion(),
    redis_source: redisTarball(),
    redis_make_args: 'MALLOC=libc BUILD_TLS=no',
    ...extra,
  }
  return Object.entries(vars).flatMap(([k, v]) => ['-e', `${k}=${v}`])
}
