import {TaskError} from '../errors.js'
import type {HostFacts} from '../modules/types.js'
import {LocalTransport} from '../transport/local.js'
import {EnvTransport} from '../transport/env.js'
import type {Transport} from '../transport/types.js'
import type {Host} from '../inventory/inventory.js'
import type {Task} from './playbook.js'
import {gatherFacts, type PlayState, type RunState, transportFor} from './runner.js'
import {renderDeep, renderText} from './template.js'
import {isSecretName} from './vars.js'

// delegate_to and environment: where a task's commands run and what they see. The task
// keeps the delegating host's variables (as in Ansible); only the connection changes.

export interface DelegateTarget {
  transport: Transport
  facts: HostFacts
  address: string
}

const LOCAL_NAMES = new Set(['localhost', '127.0.0.1', '::1'])

/** The connection delegate_to names for this host: localhost (the controller), or an inventory host. */
export async function delegateTarget(run: RunState, p: PlayState, task: Task, h: Host): Promise<DelegateTarget | undefined> {
  const vars = {...p.hostVars.get(h.name)!, ...(run.registered.get(h.name) ?? {})}
  const name = renderText(task.delegateTo!, vars, task.where).trim()
  if (name === h.name) return undefined
  const inv = run.opts.inventory.hosts.get(name)
  if (!inv && !LOCAL_NAMES.has(name))
    throw new TaskError(`delegate_to "${name}" is neither localhost nor a host of the inventory`, {where: task.where, hint: 'delegate to localhost, 127.0.0.1 or an inventory host name'})
  const own = run.transports.get(name)
  if (own?.facts) return {transport: own.transport, facts: own.facts, address: own.transport.address}
  let pending = run.delegates.get(name)
  if (!pending) {
    const transport = inv ? transportFor(inv, run.opts.ssh) : new LocalTransport(name, '127.0.0.1')
    pending = gatherFacts(transport).then((facts) => ({transport, facts}))
    run.delegates.set(name, pending)
  }
  const d = await pending
  return {...d, address: d.transport.address}
}

/** Close the delegates' own connections at the end of a run. */
export async function closeDelegates(run: RunState): Promise<void> {
  await Promise.all([...run.delegates.values()].map((p) => p.then((d) => d.transport.close()).catch(() => {})))
}

/** The task's environment: templated for this host, exported before each of its commands; secret-named values are masked. */
export function withEnvironment(run: RunState, task: Task, vars: Record<string, unknown>, transport: Transport): Transport {
  if (!task.environment || Object.keys(task.environment).length === 0) return transport
  const scope: Record<string, unknown> = {...vars}
  for (const [k, v] of Object.entries(task.vars)) scope[k] = renderDeep(v, scope, task.where)
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(task.environment)) {
    const r = renderDeep(v, scope, task.where)
    env[k] = r === null || r === undefined ? '' : String(r)
    if (isSecretName(k) && env[k]) run.secrets.add(env[k])
  }
  return new EnvTransport(transport, env)
}

/** -e beats every variable of a play, role vars and task vars included, as in Ansible. */
export function withoutExtraVars(task: Task, extra: Record<string, unknown> | undefined): Task {
  if (!extra || !Object.keys(task.vars).some((k) => k in extra)) return task
  return {...task, vars: Object.fromEntries(Object.entries(task.vars).filter(([k]) => !(k in extra)))}
}
