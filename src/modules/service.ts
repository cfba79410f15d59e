// service: start, stop, restart or reload a system service and enable it at boot, as
// Ansible's service and systemd (the same module under both names). Works where the host has an init system to ask:
// systemd running as PID 1 (/run/systemd/system exists, systemctl present), or SysV init
// (PID 1 is init, the `service` command and /etc/init.d/NAME). Where there is none (a
// container, a network-namespace test host) the task fails on that host, naming what is
// missing and what to write instead. All loop items in two round trips.
//
// Parameters:
//   name           the service (unit) name
//   state          started | stopped | restarted | reloaded (restarted and reloaded always act)
//   enabled        start at boot (systemctl enable / update-rc.d or chkconfig)
//   daemon_reload  systemd: systemctl daemon-reload first (does not count as a change)
//
// Check mode says what it would do (from the probe), doing nothing.
//
// Example:
//   - name: chrony runs
//     service:
//       name: chrony
//       state: started
//       enabled: yes

import {quote} from '../shell.js'
import {defineModule, type Todo} from './define.js'
import {parseKv, str, type Plan} from './remote.js'
import type {ArgSpec, ModuleSpec} from './types.js'

export interface ServiceWant {
  name: string
  state?: 'started' | 'stopped' | 'restarted' | 'reloaded'
  enabled?: boolean
  daemonReload: boolean
}

export interface ServiceFacts {
  init: 'systemd' | 'sysv' | 'none'
  pid1: string
  systemctl: boolean
  service: boolean
  found: boolean
  active: boolean
  enabled: boolean
  unitState?: string
}

export type ServiceChange = {commands: string[]; onlyReload: boolean; init: ServiceFacts['init']}

export function serviceProbe(w: ServiceWant): string {
  const n = quote(w.name)
  return [
    `if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then echo init=systemd; systemctl show --property=LoadState,ActiveState,UnitFileState -- ${n} 2>/dev/null`,
    `elif [ "$(cat /proc/1/comm 2>/dev/null)" = init ] && command -v service >/dev/null 2>&1; then echo init=sysv; [ -x /etc/init.d/${w.name.replace(/[^\w.@-]/g, '')} ] && echo script=1`,
    `  service ${n} status >/dev/null 2>&1; echo status=$?; ls /etc/rc[2345].d/S*${w.name.replace(/[^\w.@-]/g, '')} >/dev/null 2>&1 && echo boot=1`,
    `else echo init=none; fi`,
    `echo "pid1=$(cat /proc/1/comm 2>/dev/null)"`,
    `command -v systemctl >/dev/null 2>&1 && echo systemctl=1`,
    `command -v service >/dev/null 2>&1 && echo service=1`,
    ':',
  ].join('\n')
}

const ENABLED = new Set(['enabled', 'enabled-runtime', 'static', 'alias', 'indirect', 'generated', 'linked', 'linked-runtime'])

export function parseService(stdout: string): ServiceFacts {
  const kv = parseKv(stdout)
  const init = (kv.init ?? 'none') as ServiceFacts['init']
  const base = {init, pid1: kv.pid1 ?? '?', systemctl: kv.systemctl === '1', service: kv.service === '1'}
  if (init === 'systemd') {
    const found = kv.LoadState !== undefined && kv.LoadState !== 'not-found'
    return {...base, found, active: ['active', 'activating', 'reloading'].includes(kv.ActiveState ?? ''), enabled: ENABLED.has(kv.UnitFileState ?? ''), unitState: kv.UnitFileState}
  }
  if (init === 'sysv') return {...base, found: kv.script === '1', active: kv.status === '0', enabled: kv.boot === '1'}
  return {...base, found: false, active: false, enabled: false}
}

/** Why the task cannot work on a host without an init system, and what to write instead. */
export function noInitMessage(w: ServiceWant, f: ServiceFacts): string {
  const missing = [`PID 1 is "${f.pid1}", not systemd or SysV init`, '/run/systemd/system is missing']
  if (f.systemctl) missing.push('systemctl is installed but no systemd is running')
  return (
    `no init system on this host to manage service "${w.name}": ${missing.join('; ')}. ` +
    'Manage the daemon without one: a command task that starts it in the background with a pidfile (creates: the pidfile), ' +
    'and one that stops it (kill "$(cat the-pidfile)", removes: the pidfile); for Redis, use the redis_instances module'
  )
}

function commands(w: ServiceWant, f: ServiceFacts): Array<{cmd: string; did: string; would: string}> {
  const n = quote(w.name)
  const sd = f.init === 'systemd'
  const ctl = (verb: string) => (sd ? `systemctl ${verb} ${n}` : `service ${n} ${verb}`)
  const out: Array<{cmd: string; did: string; would: string}> = []
  if (w.enabled !== undefined && w.enabled !== f.enabled) {
    const sysv = w.enabled ? `{ update-rc.d ${n} defaults || chkconfig ${n} on; }` : `{ update-rc.d -f ${n} remove || chkconfig ${n} off; }`
    out.push({cmd: sd ? `systemctl ${w.enabled ? 'enable' : 'disable'} ${n}` : sysv, did: w.enabled ? 'enabled' : 'disabled', would: w.enabled ? 'would enable' : 'would disable'})
  }
  if (w.state === 'started' && !f.active) out.push({cmd: ctl('start'), did: 'started', would: 'would start'})
  if (w.state === 'stopped' && f.active) out.push({cmd: ctl('stop'), did: 'stopped', would: 'would stop'})
  if (w.state === 'restarted') out.push({cmd: ctl('restart'), did: 'restarted', would: 'would restart'})
  if (w.state === 'reloaded') out.push({cmd: f.active ? ctl('reload') : ctl('start'), did: f.active ? 'reloaded' : 'started', would: f.active ? 'would reload' : 'would start'})
  return out
}

/** Pure: facts → what to run. */
export function planService(w: ServiceWant, f: ServiceFacts): Plan<ServiceChange> {
  if (f.init === 'none') return {kind: 'fail', msg: noInitMessage(w, f)}
  if (w.daemonReload && f.init !== 'systemd') return {kind: 'fail', msg: `daemon_reload needs systemd; this host runs SysV init (remove daemon_reload)`}
  if (!f.found && (w.state !== undefined || w.enabled !== undefined))
    return {kind: 'fail', msg: `could not find the requested service ${w.name} (${f.init === 'systemd' ? 'no such unit' : `no /etc/init.d/${w.name}`})`}
  const cmds = commands(w, f)
  const reload = w.daemonReload ? ['systemctl daemon-reload'] : []
  const now = `${f.active ? 'running' : 'stopped'}, ${f.enabled ? 'enabled' : 'disabled'}`
  if (cmds.length === 0 && reload.length === 0) return {kind: 'noop', msg: `${w.name} already ${now}`}
  const did = cmds.map((c) => c.did).join(', ') || 'daemon reloaded'
  const would = cmds.map((c) => c.would).join(', ') || 'would reload the systemd daemon'
  return {kind: 'change', msg: `${w.name} ${did}`, would: `${w.name}: ${would} (now ${now})`, commands: [...reload, ...cmds.map((c) => c.cmd)], onlyReload: cmds.length === 0, init: f.init}
}

const ARGS: Record<string, ArgSpec> = {
  name: {type: 'string', required: true, aliases: ['service', 'unit']},
  state: {type: 'string', choices: ['started', 'stopped', 'restarted', 'reloaded']},
  enabled: {type: 'bool'},
  daemon_reload: {type: 'bool', default: false, aliases: ['daemon-reload']},
}

function serviceModule(name: string, description: string): ModuleSpec {
  type T = Todo<ServiceWant, ServiceFacts, ServiceChange>
  return defineModule<ServiceWant, ServiceFacts, ServiceChange>({
    name,
    description,
    args: ARGS,
    want: (_ctx, item) => {
      const a = item.args
      const n = str(a.name) ?? ''
      if (!/^[\w.@:-]+$/.test(n) || n.startsWith('-')) return {error: `${name}: service name ${JSON.stringify(n)} is not a unit name (letters, digits, . @ : _ -)`}
      if (a.state === undefined && a.enabled === undefined && a.daemon_reload !== true) return {error: `${name}: give at least one of state, enabled or daemon_reload`}
      return {name: n, state: a.state as ServiceWant['state'], enabled: a.enabled as boolean | undefined, daemonReload: a.daemon_reload === true}
    },
    probe: (_ctx, wants) => ({steps: wants.map(serviceProbe)}),
    parse: (wants, steps) => wants.map((_w, k) => (steps[k] ? parseService(steps[k]!.stdout) : undefined)),
    plan: (w, f) => planService(w, f),
    data: (_ctx, w, f) => ({name: w.name, state: f.active ? 'started' : 'stopped', enabled: f.enabled, status: {init: f.init, UnitFileState: f.unitState}}),
    apply: {
      step: (t: T) => t.plan.commands.join(' && '),
      done: (ctx, t, s, finish) => {
        if (s.rc !== 0) return {status: 'failed', msg: `${t.plan.commands.join(' && ')} failed with exit code ${s.rc}: ${s.stderr.trim().split('\n').slice(-3).join(' ')}`, rc: s.rc, stderr: s.stderr}
        const r = finish(t, t.plan.msg)
        return t.plan.onlyReload ? {...r, status: 'ok'} : r
      },
    },
  })
}

export const svcModule = serviceModule('service', 'Start, stop, restart or reload a service and enable it at boot (systemd or SysV init; fails clearly where the host has no init system)')
export const systemdModule = serviceModule('systemd', 'The service module under its systemd name (systemd hosts; fails clearly where the host has no init system)')
