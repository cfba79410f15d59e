// What baremetal knows about Redis releases without asking the network: the sha256 of
// each official tarball (as published in github.com/redis/redis-hashes), the build
// quirks of old versions on new compilers, and which redis.conf directives a version
// accepts (an unknown directive makes redis-server refuse to start).

/** sha256 of https://download.redis.io/releases/redis-<version>.tar.gz, from redis/redis-hashes. */
export const RELEASE_SHA256: Readonly<Record<string, string>> = {
  '5.0.3': 'e290b4ddf817b26254a74d5d564095b11f9cd20d8f165459efa53eb63cd93e02',
  '5.0.7': '61db74eabf6801f057fd24b590232f2f337d422280fd19486eca03be87d3a82b',
  '5.0.14': '3ea5024766d983249e80d4aa9457c897a9f079957d0fb1f35682df233f997f32',
  '6.0.20': '173d4c5f44b5d7186da96c4adc5cb20e8018b50ec3a8dfe0d191dbbab53952f0',
  '6.2.14': '34e74856cbd66fdb3a684fb349d93961d8c7aa668b06f81fd93ff267d09bc277',
  '7.0.15': '98066f5363504b26c34dd20fbcc3c957990d764cdf42576c836fc021073f4341',
  '7.2.4': '8d104c26a154b29fd67d6568b4f375212212ad41e0c2caa3d66480e78dbd3b59',
}

/** The official release tarball, used when a playbook names only a version. */
export function releaseUrl(version: string): string {
  return `https://download.redis.io/releases/redis-${version}.tar.gz`
}

export type Version = [number, number, number]

/** "7.0.15" → [7, 0, 15]; anything else (branch names, rc tags) → null. */
export function parseVersion(v: string): Version | null {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?$/.exec(v.trim())
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : null
}

// Numeric, not lexical: 5.0.14 is newer than 5.0.7.
export function compareVersions(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2]
}

/** The version a source tree really holds: `#define REDIS_VERSION "5.0.3"` in src/version.h. */
export function versionFromHeader(text: string): string | null {
  const m = /#define\s+REDIS_VERSION\s+"([^"]+)"/.exec(text)
  return m ? m[1] : null
}

/**
 * 5.0.0–5.0.7 define SDS_NOINIT in a header without `extern`; gcc ≥ 10 defaults to
 * -fno-common and the link fails with "multiple definition of `SDS_NOINIT'".
 */
export function needsFcommon(version: string | null): boolean {
  const v = version ? parseVersion(version) : null
  return !!v && v[0] === 5 && v[1] === 0 && v[2] <= 7
}

// First version accepting each directive that a cluster config may use. Directives not
// listed here exist in every version baremetal supports (5.0 and later).
const DIRECTIVE_SINCE: Readonly<Record<string, string>> = {
  'io-threads': '6.0.0',
  'io-threads-do-reads': '6.0.0',
  'tls-port': '6.0.0',
  'tls-cluster': '6.0.0',
  'tls-replication': '6.0.0',
  aclfile: '6.0.0',
  'acllog-max-len': '6.0.0',
  user: '6.0.0',
  'cluster-allow-reads-when-down': '6.0.0',
  'cluster-allow-replica-migration': '6.2.0',
  'oom-score-adj': '6.2.0',
  'set-proc-title': '6.2.0',
  'proc-title-template': '6.2.0',
  'cluster-port': '7.0.0',
  'cluster-announce-hostname': '7.0.0',
  'cluster-preferred-endpoint-type': '7.0.0',
  'cluster-allow-pubsubshard-when-down': '7.0.0',
  'cluster-link-sendbuf-limit': '7.0.0',
  'shutdown-timeout': '7.0.0',
  'enable-debug-command': '7.0.0',
  'enable-protected-configs': '7.0.0',
  'enable-module-command': '7.0.0',
  'maxmemory-clients': '7.0.0',
  'latency-tracking': '7.0.0',
  'locale-collate': '7.2.0',
  'cluster-announce-human-nodename': '7.2.0',
}

/** Whether redis-server <version> starts with this directive in its config (unknown version: assume yes). */
export function supportsDirective(version: string, directive: string): boolean {
  const since = DIRECTIVE_SINCE[directive.toLowerCase()]
  const v = parseVersion(version)
  if (!since || !v) return true
  return compareVersions(v, parseVersion(since)!) >= 0
}
