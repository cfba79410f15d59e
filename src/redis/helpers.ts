import {setTimeout as sleep} from 'node:timers/promises'
import pLimit from 'p-limit'
import {ClusterError} from '../errors.js'
import {nodeAddr, type ClusterNode} from './plan.js'

// Small pieces every controller-side cluster step shares: errors named by node, the
// bounded fan-out over nodes, interrupt checks and the poll-until-settled loop.

export function where(node: ClusterNode): {host: string} {
  return {host: node.host}
}

export function nodeError(node: ClusterNode, what: string, hint?: string): ClusterError {
  return new ClusterError(`${nodeAddr(node)} (host ${node.host}): ${what}`, {where: where(node), hint})
}

// Every call settles before the first failure propagates: with Promise.all the others
// would go on opening connections after the caller's `finally` closed the pool, and one
// leaked socket keeps the process alive after its output is printed.
export async function forEachNode<T, R>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const limit = pLimit(concurrency)
  const settled = await Promise.allSettled(items.map((item) => limit(() => fn(item))))
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed) throw failed.reason
  return settled.map((s) => (s as PromiseFulfilledResult<R>).value)
}

export function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new ClusterError('interrupted', {hint: 'run the play again: formation resumes where it stopped'})
}

// Polls until `pending` returns nothing; on timeout names who is behind and on what,
// instead of hanging like "Waiting for the cluster to join".
export async function waitFor(deadline: number, signal: AbortSignal | undefined, n: number, pending: () => Promise<string[]>, what: string, log: (msg: string) => void): Promise<void> {
  const interval = Math.min(1000, 100 + n)
  let lastLog = Date.now()
  for (;;) {
    checkAbort(signal)
    const behind = await pending()
    if (behind.length === 0) return
    if (Date.now() - lastLog >= 10_000) {
      log(`redis_cluster: still waiting for ${what}: ${behind.length} pending, e.g. ${behind[0]}`)
      lastLog = Date.now()
    }
    if (Date.now() >= deadline) {
      const shown = behind.slice(0, 10).join('; ')
      throw new ClusterError(`timed out waiting for ${what}: ${behind.length} problem(s): ${shown}${behind.length > 10 ? '; …' : ''}`, {
        hint: 'check that the cluster bus ports (port + 10000) are open between all hosts; run the play again to resume',
      })
    }
    await sleep(Math.min(interval, Math.max(0, deadline - Date.now())))
  }
}
