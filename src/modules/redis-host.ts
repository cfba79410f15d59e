// The Redis-specific host modules, in the order a deployment uses them: fetch the source,
// build it, open the firewall, run the instances. (redis.conf files come from `template`;
// forming the cluster is redis_cluster's job.)

import {firewall} from './firewall.js'
import {redisBuild} from './redis_build.js'
import {redisInstances} from './redis_instances.js'
import {redisSource} from './redis_source.js'
import type {ModuleSpec} from './types.js'

export {firewall, redisBuild, redisInstances, redisSource}

/** Registered by the module registry alongside the generic modules. */
export const redisHostModules: ModuleSpec[] = [redisSource, redisBuild, firewall, redisInstances]
