import {dirname} from 'node:path'
import {Flags} from '@oclif/core'
import {BaseCommand, type Outcome} from '../cli/base-command.js'
import {bundled, executePlaybooks, loadInv, PASSWORD_ENV, readExtraVars, recapText, redisPasswordVars, sshOptions} from '../cli/common.js'
import {playFlags, redisFlags} from '../cli/flags.js'
import {clusterNameOf, type ClusterLock, lockCluster, type Transports} from '../cli/cluster-state.js'
import {controllerTarballVersion, inventoryVarWhere, redisHostVars} from '../cli/redis.js'
import {InputError} from '../errors.js'
import {selectHosts} from '../inventory/inventory.js'
import {withLimit} from '../inventory/pattern.js'
import {detectSource} from '../modules/redis/source.js'
import {closeAll, type RunResult} from '../play/runner.js'
import {groupSlug} from '../redis/cluster-record.js'
import {validateLayout, type ValidateOptions} from '../redis/validate.js'
import {topologyGroups, topologyOf, validateSentinel} from '../redis/sentinel-validate.js'
import {loadYaml} from '../yamlfile.js'

export default class Up extends BaseCommand<RunResult> {
  static override summary = 'Build Redis, configure and start every instance, open the firewall, form the cluster (idempotent)'
  static override description = `Runs the bundled playbook playbooks/redis-cluster.yml against the hosts of the inventory's "redis" group (or --group).
Re-running on a healthy cluster changes nothing. Variables (redis_version, redis_count, redis_replicas, redis_password, …) are listed in playbooks/defaults.yml.
The password (requirepass and masterauth) is taken from, first found: -e redis_password, -e redis_password_file=PATH, $${PASSWORD_ENV}, the inventory's redis_password_file or redis_password. Without one, the recap warns that the cluster is unauthenticated.`
  static override examples = [
    '<%= config.bin %> up                       # the local default cluster (inventory/local.yml)',
    '<%= config.bin %> up -i hosts.yml -e redis_version=7.0.15 -e redis_source=/srv/redis-7.0.15.tar.gz',
    '<%= config.bin %> up -i hosts.yml --check --diff',
    '<%= config.bin %> up -i hosts.yml --remove-missing   # scale in: drain and remove the hosts taken out of the inventory',
  ]
  static override flags = {
    ...playFlags,
    ...redisFlags,
    'allow-partial': Flags.boolean({description: 'form the cluster even if some hosts failed or were unreachable', default: false}),
    'remove-missing': Flags.boolean({description: "drain, forget and stop the cluster's nodes the inventory no longer lists (without it they are reported and nothing changes)", default: false}),
    'allow-data-loss': Flags.boolean({
      description: 'go on where the only way forward loses acknowledged writes (without it such a step is refused, naming the slots); the recap repeats it',
      default: false,
    }),
    'allow-downtime': Flags.boolean({
      description: 'a version upgrade restarts masters without a replica in place (SHUTDOWN SAVE first): their slots are unavailable meanwhile (without it such an upgrade is refused, naming them)',
      default: false,
    }),
    'allow-downgrade': Flags.boolean({
      description:
        'go down to an older redis_version that writes the same RDB format (the older one may lack commands clients use or directives redis.conf has); across RDB formats a downgrade is always refused',
      default: false,
    }),
    playbook: Flags.string({description: 'use another playbook instead of the bundled one', default: bundled('playbooks/redis-cluster.yml')}),
  }

  protected async work(): Promise<Outcome<RunResult>> {
    const {flags} = await this.parse(Up)
    const warnings: string[] = []
    const transports: Transports = new Map()
    let lock: ClusterLock | undefined
    const group = {baremetal_group: groupSlug(flags.group)}
    try {
      // Check the layout of every host first: nothing runs on bad numbers.
      const inv = loadInv(flags.inventory)
      const extra = readExtraVars(flags['extra-vars'])
      const defaults = loadYaml(bundled('playbooks/defaults.yml')).value as Record<string, unknown>
      if (flags.limit && flags['remove-missing']) {
        throw new InputError(`--remove-missing with --limit ${flags.limit}: refused`, {
          hint: 'scale-in drains the nodes the inventory no longer lists; run it over the whole inventory (without --limit)',
        })
      }
      const hosts = selectHosts(inv, withLimit(flags.group, flags.limit))
      const sources = validationSources(inv.file, extra, dirname(flags.playbook))
      validateLayout(hosts, defaults, extra, inv.file, sources)
      // redis_topology: sentinel picks the Sentinel playbook (and its hosts) over the cluster's.
      const topo = sentinelTopology(inv, hosts, defaults, extra, sources, flags.group)
      if (topo && flags.playbook === bundled('playbooks/redis-cluster.yml')) flags.playbook = bundled('playbooks/redis-sentinel.yml')
      const password = redisPasswordVars(extra, inv, flags.group, warnings)
      if (flags['allow-data-loss']) warnings.push('--allow-data-loss: steps that lose acknowledged writes are carried out instead of refused')
      const resolved = await redisHostVars(inv, flags.group, {...password, ...group, ...extra})
      const name = clusterNameOf(resolved, inv.file)
      // One up or down of a cluster at a time (--check changes nothing: it takes no lock).
      if (!flags.check) lock = await lockCluster(selectHosts(inv, flags.group), transports, sshOptions(flags), name, 'up')
      const open = resolved.filter((h) => h.vars.redis_password === undefined || h.vars.redis_password === null || h.vars.redis_password === '')
      // Neither a replica nor persistence: a crashed master takes its keys with it, and no
      // repair can bring them back (the legacy shape stays available, said once per run).
      const bool = (v: unknown) => v === true || /^(yes|true|on|1)$/i.test(String(v))
      const fragile = resolved.filter((h) => Number(h.vars.redis_replicas ?? 0) === 0 && !bool(h.vars.redis_appendonly) && String(h.vars.redis_save ?? '').trim() === '')
      if (fragile.length > 0) {
        warnings.push(
          `redis_replicas is 0 and neither redis_appendonly nor redis_save is set${fragile.length < resolved.length ? ` for ${fragile.length} host(s)` : ''}: a master that crashes loses every key it held, and up refuses to restart it empty (set redis_replicas: 1, or redis_appendonly: true)`,
        )
      }
      if (open.length > 0) {
        warnings.push(
          `redis_password is not set${open.length < resolved.length ? ` for ${open.length} host(s)` : ''}: the cluster is unauthenticated; anyone the firewall lets through can read and write it (set ${PASSWORD_ENV}, -e redis_password_file=PATH, or redis_password in the inventory)`,
        )
      }
      const result = await executePlaybooks({
        playbooks: [flags.playbook],
        flags: {...flags, json: this.jsonEnabled()},
        hosts: topo?.hosts ?? flags.group,
        transports,
        vars: {
          ...password,
          ...group,
          ...(flags['allow-partial'] ? {allow_partial: true} : {}),
          ...(flags['remove-missing'] ? {remove_missing: true} : {}),
          ...(flags['allow-data-loss'] ? {allow_data_loss: true} : {}),
          ...(flags['allow-downtime'] ? {allow_downtime: true} : {}),
          ...(flags['allow-downgrade'] ? {allow_downgrade: true} : {}),
        },
        warnings,
      }).finally(() => lock?.release())
      return {result, exitCode: result.exitCode, text: recapText(result)}
    } finally {
      await closeAll(transports)
    }
  }
}

/** The Sentinel topology's play hosts when the group asks for it (its variables and layout checked), else undefined. */
export function sentinelTopology(
  inv: ReturnType<typeof loadInv>,
  hosts: ReturnType<typeof selectHosts>,
  defaults: Record<string, unknown>,
  extra: Record<string, unknown>,
  sources: ValidateOptions,
  group: string,
): {hosts: string} | undefined {
  const data = hosts.map((host) => ({host, vars: {...defaults, ...host.vars, ...extra}}))
  const topologies = new Set(
    data.map((d) =>
      topologyOf(d.vars, (what, hint) => {
        const src = sources.whereOf?.(d.host.name, 'redis_topology')
        throw new InputError(`redis_topology${src ? ` (${src.label})` : ''} ${what}`, {where: {...(src?.where ?? {file: inv.file}), host: d.host.name}, hint})
      }),
    ),
  )
  if (!topologies.has('sentinel')) return undefined
  if (topologies.size > 1) throw new InputError(`the hosts of ${group} mix redis_topology cluster and sentinel`, {where: {file: inv.file}, hint: 'set redis_topology on the group, not per host'})
  const g = topologyGroups(inv, data[0]?.vars ?? {})
  validateSentinel({
    data,
    ...(g.sentinel ? {sentinels: selectHosts(inv, g.sentinel)} : {}),
    ...(g.haproxy ? {haproxy: selectHosts(inv, g.haproxy)} : {}),
    file: inv.file,
    whereOf: sources.whereOf,
  })
  // The Sentinel and HAProxy hosts join the play: the firewall lets them in, and each task
  // runs only where the layout puts something.
  return {hosts: [group, g.sentinel, g.haproxy].filter(Boolean).join(':')}
}

// Where each value came from (-e, or the inventory's file:line:col) and what a controller
// tarball holds, so validation names the source and checks the version before any host.
function validationSources(invFile: string, extra: Record<string, unknown>, playbookDir: string): ValidateOptions {
  const where = inventoryVarWhere(invFile)
  return {
    whereOf: (host, name) => {
      if (name in extra) return {label: '-e'}
      const w = where(host, name)
      return w ? {where: w, label: 'inventory'} : undefined
    },
    tarballVersion: (_host, source) => {
      const src = detectSource(source, '', playbookDir)
      return src.kind === 'controller' ? {path: src.path, ...controllerTarballVersion(src.path)} : undefined
    },
  }
}
