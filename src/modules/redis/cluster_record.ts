// cluster_record: keep the host's record of a cluster, ~/.baremetal/clusters/<name>.json
// (a fixed place, whatever the variables say), so that down, status and load know what
// `up` deployed there without -e: ports, directories, binaries, version, firewall chain
// and each port's node id. Never a secret.
//
// Parameters:
//   name         string  the cluster's name (redis_cluster_name; required)
//   group        string  the inventory group it was deployed from
//   port_start   int     first port
//   count        int     number of ports
//   cluster_dir  path    parent of the per-port directories (node ids come from <port>/nodes.conf)
//   bin_dir      path    where redis-server and redis-cli are
//   version      string  Redis version
//   chain        string  the cluster's firewall chain
//   state        present | stopped | absent (default present): stopped keeps the record marked
//                stopped (down --keep-data), absent removes it (the lock file stays: a run may hold it)
//
// One round trip reads the record and the node ids; a second writes it (temp file + rename)
// only when something but its write time differs. Check mode reads and reports.
//
// Example:
//   - name: Cluster record
//     cluster_record:
//       name: "{{ redis_cluster_name }}"
//       port_start: "{{ redis_port_start }}"
//       count: "{{ redis_count }}"

import {chainName, RECORD_DIR, sameRecord, type ClusterRecord, validateClusterName} from '../../redis/cluster-record.js'
import {quote} from '../../shell.js'
import type {ItemResult, ModuleContext, ModuleSpec} from '../types.js'

function readScript(file: string, dir: string, start: number, count: number): string {
  return (
    [
      `f=${quote(file)}; d=${quote(dir)}`,
      'echo "@@ RECORD"; [ -f "$f" ] && cat "$f"; echo; echo "@@ IDS"',
      `p=${start}; while [ "$p" -lt ${start + count} ]; do`,
      `  [ -f "$d/$p/nodes.conf" ] && awk -v p="$p" '/myself/ { print "@@ ID " p " " $1; exit }' "$d/$p/nodes.conf"`,
      '  p=$((p + 1))',
      'done; true',
    ].join('\n') + '\n'
  )
}

function writeScript(file: string, content: string): string {
  const b64 = Buffer.from(content)
    .toString('base64')
    .replace(/(.{76})/g, '$1\n')
  return (
    [
      'set -e',
      `f=${quote(file)}`,
      'mkdir -p "$(dirname "$f")"',
      // Its own temp name: inventory hosts that share a machine write at the same moment.
      `{ base64 -d > "$f.tmp.$$" <<'__BAREMETAL_RECORD__'`,
      b64,
      '__BAREMETAL_RECORD__',
      'chmod 644 "$f.tmp.$$" && mv -f "$f.tmp.$$" "$f"; }',
      'echo "@@ DONE"',
    ].join('\n') + '\n'
  )
}

function parseRead(out: string): {old?: ClusterRecord; ids: Record<string, string>} {
  const rec = out.split('@@ RECORD\n')[1]?.split('@@ IDS')[0]?.trim() ?? ''
  let old: ClusterRecord | undefined
  try {
    old = rec ? (JSON.parse(rec) as ClusterRecord) : undefined
  } catch {
    old = undefined
  }
  const ids: Record<string, string> = {}
  for (const m of out.matchAll(/^@@ ID (\d+) ([0-9a-f]{40})$/gm)) ids[m[1]] = m[2]
  return {old, ids}
}

async function runOne(ctx: ModuleContext, a: Record<string, unknown>): Promise<ItemResult> {
  let name: string
  try {
    name = validateClusterName(a.name)
  } catch (error) {
    return {status: 'failed', msg: (error as Error).message}
  }
  const state = String(a.state ?? 'present')
  const file = `${ctx.facts.home}/${RECORD_DIR}/${name}.json`
  const clusterDir = String(a.cluster_dir ?? '~/redis_cluster')
  const dir = clusterDir.startsWith('~/') ? `${ctx.facts.home}/${clusterDir.slice(2)}` : clusterDir
  const start = Number(a.port_start)
  const count = Number(a.count)
  if (state !== 'absent' && !(Number.isInteger(start) && Number.isInteger(count) && count > 0)) return {status: 'failed', msg: `port_start/count must be whole numbers, got ${a.port_start}/${a.count}`}
  const read = await ctx.transport.exec('sh -s', {stdin: readScript(file, dir, state === 'absent' ? 0 : start, state === 'absent' ? 0 : count), timeoutMs: 60_000})
  if (read.failed) return {status: 'failed', msg: `cannot read ${file}: ${read.stderr.trim().slice(-300)}`, rc: read.exitCode}
  const {old, ids} = parseRead(read.stdout)
  if (state === 'absent') {
    if (!read.stdout.includes('@@ RECORD\n{')) return {status: 'ok', msg: `no record ${file}`}
    if (ctx.check) return {status: 'changed', msg: `would remove ${file}`}
    const r = await ctx.transport.exec(`rm -f -- ${quote(file)}`, {timeoutMs: 30_000})
    return r.failed ? {status: 'failed', msg: `cannot remove ${file}: ${r.stderr.trim()}`} : {status: 'changed', msg: `removed ${file}`}
  }
  const rec: ClusterRecord = {
    name,
    group: String(a.group ?? ''),
    state: state === 'stopped' ? 'stopped' : 'running',
    ports: {start, count},
    cluster_dir: clusterDir,
    bin_dir: String(a.bin_dir ?? ''),
    version: String(a.version ?? ''),
    firewall_chain: String(a.chain || chainName(name)),
    // A stopped cluster's ids stay as recorded when its nodes.conf files are gone.
    node_ids: Object.keys(ids).length > 0 || state !== 'stopped' ? ids : (old?.node_ids ?? {}),
    written: new Date().toISOString(),
  }
  if (sameRecord(old, rec)) return {status: 'ok', msg: `${file} up to date`, data: {record: old}}
  const what = old ? 'updated' : 'written'
  if (ctx.check) return {status: 'changed', msg: `would write ${file}`, data: {record: rec}}
  const w = await ctx.transport.exec('sh -s', {stdin: writeScript(file, JSON.stringify(rec, null, 2) + '\n'), timeoutMs: 60_000})
  if (w.failed || !w.stdout.includes('@@ DONE')) return {status: 'failed', msg: `cannot write ${file}: ${w.stderr.trim().slice(-300)}`, rc: w.exitCode}
  return {status: 'changed', msg: `${file} ${what} (${rec.state}, ports ${start}-${start + count - 1}, ${Object.keys(ids).length} node id(s))`, data: {record: rec}}
}

export const clusterRecordModule: ModuleSpec = {
  name: 'cluster_record',
  description: "Keep the host's record of a cluster (~/.baremetal/clusters/<name>.json) that down, status and load read",
  args: {
    name: {type: 'string', required: true},
    group: {type: 'string', default: ''},
    port_start: {type: 'any'},
    count: {type: 'any'},
    cluster_dir: {type: 'string', default: '~/redis_cluster'},
    bin_dir: {type: 'string', default: ''},
    version: {type: 'string', default: ''},
    chain: {type: 'string', default: ''},
    state: {type: 'string', choices: ['present', 'stopped', 'absent'], default: 'present'},
  },
  checkMode: true,
  async run(ctx, items) {
    const out: ItemResult[] = []
    for (const item of items) out.push(await runOne(ctx, item.args))
    return out
  },
}
