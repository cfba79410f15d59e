// The one module registry: every module a playbook can name. Generic modules first, in
// the order the README's module reference lists them, then the Redis ones in the order a
// deployment uses them (fetch the source, build it, open the firewall, run the
// instances, form and manage the cluster). A new module is its own file plus one line here.

import {aptModule} from './apt.js'
import {assertModule} from './assert.js'
import {blockinfileModule} from './blockinfile.js'
import {debugModule} from './debug.js'
import {failModule} from './fail.js'
import {lineinfileModule} from './lineinfile.js'
import {svcModule, systemdModule} from './service.js'
import {setFactModule} from './set_fact.js'
import {setupModule} from './setup.js'
import {statModule} from './stat.js'
import {commandModule, shellModule} from './command.js'
import {copyModule} from './copy.js'
import {fileModule} from './file.js'
import {firewallModule} from './firewall.js'
import {getUrlModule} from './get_url.js'
import {gitModule} from './git.js'
import {haproxyModule} from './haproxy.js'
import {redisBuildModule} from './redis/build.js'
import {redisClusterModule} from './redis/cluster.js'
import {clusterRecordModule} from './redis/cluster_record.js'
import {redisConfigModule} from './redis/config.js'
import {redisUpgradeModule} from './redis/upgrade.js'
import {redisFailoverModule} from './redis/failover.js'
import {redisInstancesModule} from './redis/instances.js'
import {redisSentinelConfigModule, redisSentinelPlanModule, redisSentinelReadyModule} from './redis/sentinel.js'
import {redisSentinelRetireModule} from './redis/sentinel-retire.js'
import {redisSentinelUpgradeModule} from './redis/sentinel-upgrade.js'
import {redisMembersModule} from './redis/members.js'
import {redisSourceModule} from './redis/source.js'
import {templateModule} from './template.js'
import type {ModuleSpec} from './types.js'
import {unarchiveModule} from './unarchive.js'

export const genericModules: ModuleSpec[] = [
  commandModule,
  shellModule,
  aptModule,
  fileModule,
  copyModule,
  templateModule,
  lineinfileModule,
  blockinfileModule,
  statModule,
  getUrlModule,
  unarchiveModule,
  gitModule,
  svcModule,
  systemdModule,
  firewallModule,
  debugModule,
  setFactModule,
  setupModule,
  assertModule,
  failModule,
]

export const redisModules: ModuleSpec[] = [
  redisSourceModule,
  redisBuildModule,
  redisInstancesModule,
  redisConfigModule,
  redisUpgradeModule,
  redisFailoverModule,
  redisMembersModule,
  redisClusterModule,
  redisSentinelPlanModule,
  redisSentinelConfigModule,
  redisSentinelReadyModule,
  redisSentinelRetireModule,
  redisSentinelUpgradeModule,
  clusterRecordModule,
  haproxyModule,
]

// Every module the playbooks can name, by name.
export function allModules(): Map<string, ModuleSpec> {
  return new Map([...genericModules, ...redisModules].map((m) => [m.name, m]))
}
