import {clusterRecordModule} from './cluster_record.js'
import {coreModules} from './core.js'
import {redisClusterModule} from './redis_cluster.js'
import {redisMembersModule} from './redis_members.js'
import {redisConfigModule} from './redis_config.js'
import {redisFailoverModule} from './redis_failover.js'
import {redisHostModules} from './redis-host.js'
import type {ModuleSpec} from './types.js'

// Every module the playbooks can name, by name.
export function allModules(): Map<string, ModuleSpec> {
  const list: ModuleSpec[] = [...coreModules, ...redisHostModules, redisConfigModule, redisFailoverModule, redisMembersModule, redisClusterModule, clusterRecordModule]
  return new Map(list.map((m) => [m.name, m]))
}
