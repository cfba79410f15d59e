import {BaremetalError, ClusterError} from '../errors.js'
import {mask} from '../shell.js'
import type {ItemResult, ModuleContext, TaskItem} from './types.js'

// The modules that run once for the whole cluster (redis_cluster, redis_config,
// redis_failover, redis_members) share this: a thrown error is this task's failure with its
// hint, masked, the error kept as data — never the runner's crash.
export async function runEachItem(
  ctx: ModuleContext,
  items: readonly TaskItem[],
  runItem: (ctx: ModuleContext, args: Record<string, unknown>) => Promise<ItemResult>,
  prefix = '',
): Promise<ItemResult[]> {
  const out: ItemResult[] = []
  for (const item of items) {
    try {
      out.push(await runItem(ctx, item.args))
    } catch (error) {
      const e = error instanceof BaremetalError ? error : new ClusterError(error instanceof Error ? error.message : String(error), {cause: error})
      const hint = e.hint ? ` (hint: ${e.hint})` : ''
      out.push({status: 'failed', msg: mask(`${prefix}${e.message}${hint}`, ctx.secrets), data: {error: e.toJSON()}})
    }
  }
  return out
}
